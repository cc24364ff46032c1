"""ai_inference: a Gateway API implementation routes inference traffic (a MUST).

Control plane: a GatewayClass is Accepted by its controller (the one named by
--aic-gateway-class, else the first Accepted one by name); a Gateway of that class is
Programmed; an HTTPRoute is Accepted with its references resolved (all observed by watches).
Data plane, from a client pod inside the cluster (one pod, a bounded loop of curl requests):
- a path match (/v1/completions) reaches backend A and a header match (/v1/chat/completions
  with the OpenAI-style model header x-ai-eg-model) reaches backend B; A and B are two distinct
  http-echo Deployments and Services answering different bodies;
- a weighted split (A:4, B:1) over N requests lands within a stated binomial tolerance;
- unmatched requests (an unknown path, and the chat path without the model header) are
  rejected by the data plane: a 4xx without the X-App-Name header that only the backend sets.
No Gateway API (or no GatewayClass accepted by a controller) is a failure: the requirement
is a MUST. Simulated nodes run no proxy and no pod: the traffic checks are not observable there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    ClusterError,
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    Target,
    WaitTimeout,
    ai_inference,
    collect_diagnostics,
    condition,
    condition_true,
    get_table,
    name,
    not_observable,
    probes,
    simulation,
    traffic,
    watch_until,
    workloads,
)

pytestmark = pytest.mark.needs_containers


REQ = "ai_inference"
GW = "gateway.networking.k8s.io/v1"
MODEL_HEADER = "x-ai-eg-model"
N_SPLIT = 200
WEIGHTS = {"a": 4, "b": 1}
PORT = 5678
WARMUP_S = 60  # per route, before --aic-timeout-scale


def require_gateway_api(kube: Kube) -> None:
    """A failure (the requirement is a MUST) when the Gateway API kinds are not served."""
    missing = [k for k in ("GatewayClass", "Gateway", "HTTPRoute") if not kube.serves(GW, k)]
    if missing:
        raise AssertionError(
            f"no Gateway API implementation found: {GW} does not serve {', '.join(missing)} "
            "(install a Gateway API implementation, e.g. Envoy Gateway, with its CRDs)")


def accepted_class(kube: Kube, evidence: EvidenceRecorder | InferenceRun,
                   timeout: Callable[[float], float],
                   wanted: str | None = None) -> dict[str, Any]:
    """The GatewayClass to use, Accepted by its controller: ``wanted`` (--aic-gateway-class),
    else the first Accepted one by name; waits briefly for it."""
    classes = kube.items(GW, "GatewayClass")
    evidence.command("kubectl get gatewayclass", get_table(classes, [
        ("NAME", name), ("CONTROLLER", lambda o: o["spec"].get("controllerName", "")),
        ("ACCEPTED", lambda o: condition(o, "Accepted"))]))
    if not classes:
        raise AssertionError("no Gateway API implementation found: no GatewayClass exists")
    if wanted is not None:
        if wanted not in {name(c) for c in classes}:
            raise AssertionError(
                f"GatewayClass {wanted} (--aic-gateway-class) does not exist; GatewayClasses: "
                f"{', '.join(sorted(name(c) for c in classes))}")
        found = watch_until(
            kube, Target(GW, "GatewayClass", name=wanted),
            lambda objs: any(condition_true(o, "Accepted") for o in objs.values()),
            timeout=timeout(30), expected=f"GatewayClass {wanted} Accepted=True",
            describe=lambda objs: "; ".join(f"{name(o)} Accepted={condition(o, 'Accepted')}"
                                            for o in objs.values()))
        return next(iter(found.values()))
    found = watch_until(
        kube, Target(GW, "GatewayClass"),
        lambda objs: any(condition_true(o, "Accepted") for o in objs.values()),
        timeout=timeout(30), expected="a GatewayClass with Accepted=True")
    return ai_inference.first_accepted_class(found.values())


def require_data_plane(kube: Kube, what: str) -> None:
    """Skip (not observable) when every node is simulated: no pod, proxy or traffic runs."""
    nodes = kube.items("v1", "Node")
    if nodes and all(simulation.node_is_simulated(n) for n in nodes):
        not_observable(f"every node ({', '.join(name(n) for n in nodes)}) is simulated (kwok) "
                       f"and runs no containers, so {what} cannot be observed")


def backend(label: str, namespace: str, body: str, image: str) -> list[dict[str, Any]]:
    """An http-echo Deployment and Service answering ``body`` (X-App-Name: http-echo)."""
    app = f"echo-{label}"
    ctr = workloads.container("echo", ["/http-echo", f"-listen=:{PORT}", f"-text={body}"],
                              image=image)
    ctr["ports"] = [{"containerPort": PORT, "name": "http"}]
    ctr["readinessProbe"] = {"httpGet": {"path": "/", "port": PORT}, "periodSeconds": 2}
    deploy = workloads.deployment(
        workloads.pod(app, namespace, [ctr], restart_policy="Always", labels={"app": app}))
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": app, "namespace": namespace},
           "spec": {"selector": {"app": app},
                    "ports": [{"name": "http", "port": 80, "targetPort": PORT}]}}
    return [deploy, svc]


def gateway(namespace: str, class_name: str) -> dict[str, Any]:
    """The Gateway the route attaches to: one HTTP listener on port 80."""
    return {"apiVersion": GW, "kind": "Gateway",
            "metadata": {"name": "inference-gw", "namespace": namespace},
            "spec": {"gatewayClassName": class_name,
                     "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}


def route(namespace: str, model_b: str) -> dict[str, Any]:
    """The HTTPRoute under test: a path match to a, an OpenAI-style header match to b, and a
    weighted split between them."""

    def ref(label: str, weight: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": f"echo-{label}", "port": 80}
        if weight is not None:
            out["weight"] = weight
        return out

    return {"apiVersion": GW, "kind": "HTTPRoute",
            "metadata": {"name": "inference", "namespace": namespace},
            "spec": {"parentRefs": [{"name": "inference-gw"}], "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/v1/completions"}}],
                 "backendRefs": [ref("a")]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/v1/chat/completions"},
                              "headers": [{"type": "Exact", "name": MODEL_HEADER,
                                           "value": model_b}]}],
                 "backendRefs": [ref("b")]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/v1/split"}}],
                 "backendRefs": [ref("a", WEIGHTS["a"]), ref("b", WEIGHTS["b"])]},
            ]}}


@dataclass
class InferenceRun:
    """What the module's one gateway setup and traffic run produced, replayed per check."""

    steps: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    diagnostics: list[Any] = field(default_factory=list)
    failure: str = ""
    skip: str = ""
    answers: dict[str, list[traffic.Answer]] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)
    address: str = ""

    def command(self, cmd: str, output: str, title: str = "") -> None:
        self.steps.append(("command", (cmd, output, title)))

    def note(self, text: str) -> None:
        self.steps.append(("note", (text,)))

    def yaml(self, title: str, obj: Any, command: str = "") -> None:
        self.steps.append(("yaml", (title, obj, command)))

    def log(self, title: str, text: str, command: str = "") -> None:
        self.steps.append(("log", (title, text, command)))

    def http(self, command: str, response: str, title: str = "") -> None:
        self.steps.append(("http", (command, response, title)))

    def replay(self, evidence: EvidenceRecorder, *, setup_only: bool = False) -> None:
        """Record the setup's evidence in a check's recorder, then its skip or failure."""
        for kind, args in self.steps:
            if setup_only and kind == "http":
                continue
            getattr(evidence, kind)(*args)
        evidence.data.diagnostics.extend(self.diagnostics)
        if self.skip:
            pytest.skip(self.skip)
        if self.failure:
            raise AssertionError(self.failure)


@pytest.fixture(scope="module")
def inference_run(kube: Kube, run_context: RunContext, aic_settings: Settings,
                  timeout: Callable[[float], float]) -> Iterator[InferenceRun]:
    """Set up the gateway and send the traffic once; every check of the module replays it."""
    run = InferenceRun()
    ns = ""
    # A module fixture is set up before the function-scoped autouse fixture that keeps a
    # needs_containers check's pods off simulated nodes, so keep this module's pods off them
    # here: on a cluster with both kinds, a backend or client on a kwok node never answers.
    outer_keep_off = run_context.keep_off_nodes
    run_context.keep_off_nodes = simulation.simulated_nodes(kube)
    try:
        require_gateway_api(kube)
        gwc = accepted_class(kube, run, timeout, aic_settings.gateway_class)
        ns = run_context.namespace("ai-inference", check=REQ)
        body_a, body_b = f"backend-a-{run_context.run_id}", f"backend-b-{run_context.run_id}"
        model_b = f"model-b-{run_context.run_id}"
        run.bodies = {"a": body_a, "b": body_b}
        echo = aic_settings.image("http-echo")
        for obj in backend("a", ns, body_a, echo) + backend("b", ns, body_b, echo):
            run_context.create(obj)
        run_context.create(gateway(ns, name(gwc)))
        rt = route(ns, model_b)
        run_context.create(rt)
        run.yaml("HTTPRoute: path match, OpenAI-style header match, weighted split", rt["spec"])
        routes = watch_until(
            kube, Target(GW, "HTTPRoute", ns, name="inference"),
            lambda objs: any(ai_inference.route_accepted(o) for o in objs.values()),
            timeout=timeout(120),
            expected="HTTPRoute inference Accepted=True and ResolvedRefs=True",
            describe=lambda objs: "; ".join(ai_inference.route_conditions(o)
                                          for o in objs.values()))
        run.command(f"kubectl get httproute inference -n {ns} -o jsonpath='{{.status.parents}}'",
                    "\n".join(ai_inference.route_conditions(o)
                              for o in routes.values()))
        require_data_plane(kube, "the Gateway's data plane and traffic through it")
        gws = watch_until(
            kube, Target(GW, "Gateway", ns, name="inference-gw"),
            lambda objs: any(condition_true(o, "Programmed") for o in objs.values()),
            timeout=timeout(180), expected="Gateway inference-gw Programmed=True")
        gw_obj = next(iter(gws.values()))
        addresses = gw_obj.get("status", {}).get("addresses", []) or []
        run.command(f"kubectl get gateway inference-gw -n {ns}", get_table([gw_obj], [
            ("NAME", name), ("CLASS", lambda o: o["spec"]["gatewayClassName"]),
            ("ADDRESS", lambda o: ",".join(a.get("value", "") for a in addresses)),
            ("PROGRAMMED", lambda o: condition(o, "Programmed"))]))
        if not addresses:
            raise AssertionError("Gateway inference-gw is Programmed but has no address")
        run.address = str(addresses[0]["value"])
        watch_until(kube, Target("apps/v1", "Deployment", ns),
                    lambda objs: len(objs) == 2 and all(
                        o.get("status", {}).get("readyReplicas", 0) >= 1 for o in objs.values()),
                    timeout=timeout(180), expected="both http-echo backends Ready")
        base = f"http://{run.address}"
        tol = ai_inference.binomial_tolerance(N_SPLIT, WEIGHTS)
        cases = [
            traffic.Case("path", f"{base}/v1/completions", 3),
            traffic.Case("header", f"{base}/v1/chat/completions", 3,
                         headers=((MODEL_HEADER, model_b),)),
            traffic.Case("split", f"{base}/v1/split", N_SPLIT),
            traffic.Case("nopath", f"{base}/not-routed-{run_context.run_id}", 2),
            traffic.Case("noheader", f"{base}/v1/chat/completions", 2),
        ]
        warmup = timeout(WARMUP_S)
        script = (traffic.warmup_script(f"{base}/v1/completions", body_a, seconds=warmup)
                  + traffic.warmup_script(f"{base}/v1/chat/completions", body_b,
                                          ((MODEL_HEADER, model_b),), seconds=warmup)
                  + traffic.client_script(cases))
        pod = traffic.client_pod("client", ns, script, aic_settings.image("curl"))
        probes.run_probe(kube, run_context, ns, pod, timeout=timeout(300))
        log = kube.logs(ns, "client", "client")
        run.note(f"client pod 'client' in {ns} sent {sum(c.count for c in cases)} requests to "
                 f"the Gateway address {run.address}; weighted split: {N_SPLIT} requests, "
                 f"weights a:{WEIGHTS['a']} b:{WEIGHTS['b']}, tolerance ±{tol:.2f} "
                 "(4 binomial standard deviations)")
        bad = traffic.warmups_ok(log)
        if bad:
            raise AssertionError("routes never answered from the expected backend within "
                                 f"{warmup:.0f} s: {'; '.join(bad)}")
        run.answers = traffic.parse_client_log(log)
    except pytest.skip.Exception as exc:
        run.skip = str(exc.msg)
    except (AssertionError, WaitTimeout, ClusterError) as exc:
        run.failure = str(exc)
        if ns:
            scratch = EvidenceRecorder("", REQ, "")
            collect_diagnostics(kube, ns, scratch)
            run.diagnostics = scratch.data.diagnostics
    finally:
        run_context.keep_off_nodes = outer_keep_off
    yield run
    if ns:
        keep = aic_settings.keep_namespaces
        if keep == "always" or (keep == "on-failure" and run.failure):
            run_context.forget(ns)
        else:
            run_context.teardown(only_namespace=ns)


@pytest.mark.requirement(REQ)
def test_gateway_class_accepted(kube: Kube, evidence: EvidenceRecorder,
                                timeout: Callable[[float], float],
                                aic_settings: Settings) -> None:
    """A Gateway API implementation is installed and has Accepted a GatewayClass."""
    require_gateway_api(kube)
    gwc = accepted_class(kube, evidence, timeout, aic_settings.gateway_class)
    chosen = " (--aic-gateway-class)" if aic_settings.gateway_class else ""
    evidence.note(f"GatewayClass {name(gwc)}{chosen} (controller "
                  f"{gwc['spec'].get('controllerName')}) is Accepted")


@pytest.mark.requirement(REQ)
def test_gateway_programmed_route_accepted(inference_run: InferenceRun,
                                          evidence: EvidenceRecorder) -> None:
    """A Gateway is Programmed and an HTTPRoute with path, header and weighted rules Accepted."""
    inference_run.replay(evidence, setup_only=True)
    assert inference_run.address


def _case(run: InferenceRun, label: str, evidence: EvidenceRecorder,
          title: str) -> list[traffic.Answer]:
    """One case's answers, recorded as the first raw response and a status summary."""
    answers = run.answers.get(label, [])
    evidence.http(f"curl -si http://{run.address}/...  # case {label}: "
                  f"{traffic.status_summary(answers)}", traffic.first_raw(answers), title)
    return answers


@pytest.mark.requirement(REQ)
def test_path_and_header_match(inference_run: InferenceRun, evidence: EvidenceRecorder) -> None:
    """A path match and an OpenAI-style header match reach their intended, distinct backends."""
    inference_run.replay(evidence, setup_only=True)
    path = _case(inference_run, "path", evidence, "path /v1/completions -> backend a")
    header = _case(inference_run, "header", evidence,
                   f"/v1/chat/completions with {MODEL_HEADER} -> backend b")
    for answers, key in ((path, "a"), (header, "b")):
        verdict = ai_inference.routed_to(answers, inference_run.bodies[key])
        evidence.note(verdict.reason)
        assert verdict.ok, verdict.reason


@pytest.mark.requirement(REQ)
def test_weighted_split(inference_run: InferenceRun, evidence: EvidenceRecorder) -> None:
    """A weighted split between two distinct backends lands within the stated tolerance."""
    inference_run.replay(evidence, setup_only=True)
    answers = _case(inference_run, "split", evidence, "weighted rule /v1/split")
    bodies = inference_run.bodies
    counts = ai_inference.count_backends(answers, [bodies["a"], bodies["b"]])
    evidence.command(f"# responses per backend over {N_SPLIT} requests",
                     "\n".join(f"{k}: {v}" for k, v in counts.items()))
    tol = ai_inference.binomial_tolerance(N_SPLIT, WEIGHTS)
    verdict = ai_inference.split_within_tolerance(
        counts, {bodies["a"]: WEIGHTS["a"], bodies["b"]: WEIGHTS["b"]}, len(answers), tol)
    evidence.note(verdict.reason)
    assert len(answers) == N_SPLIT, f"{len(answers)} answers logged for {N_SPLIT} requests"
    assert verdict.ok, verdict.reason


@pytest.mark.requirement(REQ)
def test_unmatched_rejected(inference_run: InferenceRun, evidence: EvidenceRecorder) -> None:
    """Unmatched requests are rejected by the data plane, without the backend-only header."""
    inference_run.replay(evidence, setup_only=True)
    for label, title in (("nopath", "unknown path"),
                         ("noheader", f"/v1/chat/completions without {MODEL_HEADER}")):
        answers = _case(inference_run, label, evidence, title)
        verdict = ai_inference.rejected_by_data_plane(answers)
        evidence.note(f"{title}: {verdict.reason}")
        assert verdict.ok, f"{title}: {verdict.reason}"
