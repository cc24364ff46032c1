"""Operators the checks rely on: detect an existing installation, or install with helm.

A detected installation is used untouched. With --aic-install a missing operator is
installed with the `helm` CLI, labelled as ours, and uninstalled at session end: only
what this run installed is ever removed.

An operator that owns an API group (operators.yaml `apiGroups`, e.g. KubeRay's ray.io) is
found the way the API server itself reaches it, so that any install (another Helm release
name or namespace, OLM, a vendor chart, a process outside the cluster) is recognised: the
admission webhooks whose rules name the group (and CRD conversion webhooks), the Service or
URL each one calls, the Deployments and pods that Service selects and their readiness, plus
the group's CRDs Established. The chart's labels (`deployments`) are only a hint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, NoReturn

import yaml

from pytest_aiconformance.cluster import helm
from pytest_aiconformance.cluster.client import ApiError, ClusterError, Kube
from pytest_aiconformance.cluster.helm import HelmError, HelmTool
from pytest_aiconformance.cluster.images import Image
from pytest_aiconformance.cluster.run_objects import (
    MANAGED_BY,
    MANAGER,
    RUN_LABEL,
    cluster_scoped_kinds,
)
from pytest_aiconformance.cluster.waits import Target, condition_true, wait_deleted


@dataclass(frozen=True)
class OperatorSpec:
    """How to recognise and install one operator."""

    name: str
    title: str
    crds: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()  # label selectors, any namespace
    api_groups: tuple[str, ...] = ()  # the operator's own API groups (found via webhooks)
    deviceclasses: tuple[str, ...] = ()
    apiservices: tuple[str, ...] = ()
    configmaps: tuple[str, ...] = ()  # namespace/name
    chart: dict[str, str] = field(default_factory=dict)
    namespace: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    # --aic-install: chart value path -> images.yaml key (set as repository/tag/pullPolicy),
    # and the value paths of the operator pods' nodeSelector and tolerations (used where
    # some nodes are simulated: the pods go to a node that runs containers).
    images: dict[str, str] = field(default_factory=dict)
    placement: dict[str, str] = field(default_factory=dict)  # nodeSelector, tolerations


@dataclass
class Detection:
    """What detection found for one operator."""

    spec: OperatorSpec
    present: bool
    ready: bool
    details: list[str] = field(default_factory=list)
    installed_by_us: bool = False
    operator: OperatorFinding | None = None  # only for specs with apiGroups

    def summary(self) -> str:
        state = "ready" if self.ready else ("present, not ready" if self.present else "absent")
        notes = [*self.details, *(["installed by this run"] if self.installed_by_us else [])]
        extra = f" ({'; '.join(notes)})" if notes else ""
        return f"{self.spec.title}: {state}{extra}"


@cache
def load_operator_specs() -> dict[str, OperatorSpec]:
    text = resources.files("pytest_aiconformance").joinpath("data/operators.yaml").read_text()
    data = yaml.safe_load(text)["operators"]
    specs = {}
    for name, item in data.items():
        specs[name] = OperatorSpec(
            name=name,
            title=item["title"],
            crds=tuple(item.get("crds", ())),
            deployments=tuple(item.get("deployments", ())),
            api_groups=tuple(item.get("apiGroups", ())),
            deviceclasses=tuple(item.get("deviceclasses", ())),
            apiservices=tuple(item.get("apiservices", ())),
            configmaps=tuple(item.get("configmaps", ())),
            chart=dict(item.get("chart", {})),
            namespace=item.get("namespace", ""),
            values=dict(item.get("values", {})),
            images=dict(item.get("images", {})),
            placement=dict(item.get("placement", {})),
        )
    return specs


def _deployment_ready(dep: dict[str, Any]) -> bool:
    want = dep.get("spec", {}).get("replicas", 1)
    status = dep.get("status", {})
    return bool(want) and status.get("readyReplicas", 0) >= want


# --- the operator behind an API group -------------------------------------------------------

ADMISSION = "admissionregistration.k8s.io/v1"
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


@dataclass(frozen=True)
class WebhookRoute:
    """One webhook whose rules name the operator's API group, and whom the API server calls."""

    kind: str  # ValidatingWebhookConfiguration, MutatingWebhookConfiguration or a CRD
    configuration: str  # the configuration's (or CRD's) name
    webhook: str  # the webhook's name, the one a denial quotes
    service: str = ""  # namespace/name it calls, or
    port: int | None = None
    url: str = ""  # the URL it calls (a process the API server reaches directly)

    @property
    def target(self) -> str:
        if self.url:
            return self.url
        return f"service {self.service}" + (f":{self.port}" if self.port else "")


@dataclass(frozen=True)
class ServiceBackend:
    """What answers behind one Service a webhook calls: the pods its selector picks and the
    Deployments whose pod template carries that selector."""

    service: str  # namespace/name
    problem: str = ""  # the API server's words when the Service cannot be read
    external: str = ""  # set when the Service points outside the cluster
    selector: tuple[tuple[str, str], ...] = ()
    deployments: tuple[str, ...] = ()  # "namespace/name ready/desired"
    pods: tuple[tuple[str, bool], ...] = ()  # (namespace/name, Ready)

    @property
    def ready_pods(self) -> list[str]:
        return [pod for pod, ready in self.pods if ready]

    def describe(self) -> str:
        if self.problem:
            return f"service {self.service}: {self.problem}"
        if self.external:
            return f"service {self.service} -> {self.external} (outside the cluster)"
        sel = ",".join(f"{k}={v}" for k, v in self.selector)
        deps = f"Deployment {', '.join(self.deployments)}; " if self.deployments else ""
        return (f"service {self.service} (selector {sel}) -> {deps}"
                f"{len(self.ready_pods)} of {len(self.pods)} pods Ready")


@dataclass(frozen=True)
class Assessment:
    """Whether the operator behind the group was found: where it runs, and why we say so."""

    ok: bool
    location: str  # "in the cluster", "outside the cluster" or ""
    reason: str


@dataclass
class OperatorFinding:
    """Everything found about the operator behind one or more API groups."""

    groups: tuple[str, ...]
    crds: list[tuple[str, str]] = field(default_factory=list)  # (name, Established|...)
    routes: list[WebhookRoute] = field(default_factory=list)
    backends: dict[str, ServiceBackend] = field(default_factory=dict)  # by namespace/name
    hinted: list[tuple[str, bool, str]] = field(default_factory=list)  # (ns/name, ready, r/d)
    hints: tuple[str, ...] = ()  # the label selectors tried
    problems: list[str] = field(default_factory=list)  # lookups the API server refused

    @property
    def present(self) -> bool:
        return bool([c for c in self.crds if c[1] != "absent"] or self.routes or self.hinted)

    def assess(self) -> Assessment:
        return assess_operator(self)

    def summary(self) -> str:
        verdict = self.assess()
        return verdict.reason if not verdict.ok else f"{verdict.location}: {verdict.reason}"


def _group_of_rule(rule: dict[str, Any], groups: tuple[str, ...]) -> bool:
    """A rule names the group explicitly; a '*' rule belongs to a policy engine (Kyverno,
    Gatekeeper), not to the group's operator, so it does not count."""
    return any(g in groups for g in rule.get("apiGroups") or [])


def _route(kind: str, configuration: str, webhook: str,
           client: dict[str, Any]) -> WebhookRoute:
    svc = client.get("service") or {}
    if svc:
        return WebhookRoute(kind, configuration, webhook,
                            f"{svc.get('namespace', '')}/{svc.get('name', '')}",
                            svc.get("port"))
    return WebhookRoute(kind, configuration, webhook, url=str(client.get("url", "")))


def _listed(kube: Kube, finding: OperatorFinding, api_version: str, kind: str,
            namespace: str | None = None, selector: str | None = None) -> list[dict[str, Any]]:
    """Objects of a kind; a kind not served is none, a refusal is recorded in its own words."""
    if not kube.serves(api_version, kind):
        return []
    try:
        return kube.items(api_version, kind, namespace, label_selector=selector)
    except ApiError as exc:
        if exc.status not in (401, 403):
            raise
        finding.problems.append(f"cannot list {kind}s: {exc.message}")
        return []


def _group_crd_names(kube: Kube, spec: OperatorSpec) -> list[str]:
    """The spec's CRDs plus every resource the cluster serves in the operator's groups."""
    names = list(spec.crds)
    for gv in kube.group_versions():
        group = gv.split("/", 1)[0]
        if "/" in gv and group in spec.api_groups:
            names += [f"{r['name']}.{group}" for r in kube.resources(gv) if "/" not in r["name"]]
    return sorted(set(names))


def _backend(kube: Kube, ref: str) -> ServiceBackend:
    """Follow a webhook's Service to the pods it selects and the Deployments behind them."""
    namespace, _, svc_name = ref.partition("/")
    try:
        svc = kube.get("v1", "Service", svc_name, namespace)
    except ApiError as exc:
        return ServiceBackend(ref, problem=exc.message)
    except ClusterError as exc:  # the core API serves no Services (only in fakes)
        return ServiceBackend(ref, problem=str(exc))
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return ServiceBackend(ref, external=f"ExternalName {spec.get('externalName', '')}")
    selector = {str(k): str(v) for k, v in (spec.get("selector") or {}).items()}
    if not selector:
        return ServiceBackend(ref, external="endpoints set by hand (no selector)")
    text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    try:
        pods = [p for p in kube.items("v1", "Pod", namespace, label_selector=text)
                if p["metadata"].get("namespace", namespace) == namespace]
        listed = kube.items("apps/v1", "Deployment", namespace)
    except ApiError as exc:
        if exc.status not in (401, 403):
            raise
        return ServiceBackend(ref, problem=exc.message)
    deployments = []
    for dep in listed:
        labels = ((dep.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
            "labels") or {}
        if dep["metadata"].get("namespace", namespace) == namespace and all(
                labels.get(k) == v for k, v in selector.items()):
            status = dep.get("status") or {}
            want = (dep.get("spec") or {}).get("replicas", 1)
            deployments.append(f"{namespace}/{dep['metadata']['name']} "
                               f"{status.get('readyReplicas', 0)}/{want} Ready")
    return ServiceBackend(
        ref, selector=tuple(sorted(selector.items())), deployments=tuple(sorted(deployments)),
        pods=tuple(sorted((f"{namespace}/{p['metadata']['name']}", condition_true(p, "Ready"))
                          for p in pods)))


def find_operator(kube: Kube, spec: OperatorSpec) -> OperatorFinding:
    """Find the operator behind spec.api_groups as the API server reaches it (module doc)."""
    finding = OperatorFinding(spec.api_groups, hints=spec.deployments)
    for crd_name in _group_crd_names(kube, spec):
        obj = kube.get_or_none(*CRD, crd_name)
        state = "absent" if obj is None else (
            "Established" if condition_true(obj, "Established") else "not Established")
        finding.crds.append((crd_name, state))
        conversion = ((obj or {}).get("spec") or {}).get("conversion") or {}
        if conversion.get("strategy") == "Webhook":
            client = (conversion.get("webhook") or {}).get("clientConfig") or {}
            finding.routes.append(_route("CustomResourceDefinition", crd_name, "conversion",
                                         client))
    for kind in WEBHOOK_KINDS:
        for cfg in _listed(kube, finding, ADMISSION, kind):
            for wh in cfg.get("webhooks") or []:
                if any(_group_of_rule(r, spec.api_groups) for r in wh.get("rules") or []):
                    finding.routes.append(_route(kind, cfg["metadata"]["name"],
                                                 str(wh.get("name", "")),
                                                 wh.get("clientConfig") or {}))
    for ref in sorted({r.service for r in finding.routes if r.service}):
        finding.backends[ref] = _backend(kube, ref)
    for selector in spec.deployments:
        for dep in _listed(kube, finding, "apps/v1", "Deployment", selector=selector):
            status = dep.get("status") or {}
            want = (dep.get("spec") or {}).get("replicas", 1)
            finding.hinted.append((f"{dep['metadata'].get('namespace', '')}/"
                                   f"{dep['metadata']['name']}", _deployment_ready(dep),
                                   f"{status.get('readyReplicas', 0)}/{want}"))
    return finding


def assess_operator(finding: OperatorFinding) -> Assessment:
    """The group's CRDs must be Established and an operator must stand behind them: a webhook
    whose Service selects a Ready pod, a webhook that calls a URL or an external Service (a
    process outside the cluster), or, with no webhook, a Ready Deployment carrying the chart's
    labels. CRDs alone prove nothing: anyone can apply them."""
    groups = ", ".join(finding.groups)
    existing = [(n, s) for n, s in finding.crds if s != "absent"]
    if not existing:
        return Assessment(False, "", f"no CRD of API group {groups} exists")
    bad = [f"{n} {s}" for n, s in finding.crds if s != "Established"]
    if bad:
        return Assessment(False, "", f"CRDs of {groups} not Established: {'; '.join(bad)}")
    in_cluster, outside, broken = [], [], []
    for route in finding.routes:
        via = f"{route.kind} {route.configuration} webhook {route.webhook}"
        if route.url:
            outside.append(f"{via} calls {route.url}")
            continue
        backend = finding.backends.get(route.service)
        if backend is None:
            continue
        if backend.external:
            outside.append(f"{via} calls {backend.describe()}")
        elif backend.ready_pods:
            in_cluster.append(f"{via} calls {backend.describe()}")
        else:
            broken.append(f"{via} calls {backend.describe()}")
    if in_cluster:
        return Assessment(True, "in the cluster", "; ".join(dict.fromkeys(in_cluster)))
    if outside:
        return Assessment(True, "outside the cluster", "; ".join(dict.fromkeys(outside)))
    ready = [f"Deployment {d} {rd} Ready" for d, ok, rd in finding.hinted if ok]
    if ready and not broken:
        return Assessment(True, "in the cluster",
                          f"{', '.join(ready)} (found by its labels); no admission webhook "
                          f"has a rule for {groups}")
    missing = list(dict.fromkeys(broken))
    if not finding.routes:
        missing.append(f"no ValidatingWebhookConfiguration or MutatingWebhookConfiguration "
                       f"has a rule for API group {groups}")
    if finding.hinted:
        missing += [f"Deployment {d} {rd} Ready" for d, _ok, rd in finding.hinted]
    else:
        missing.append("no Deployment labelled " + " or ".join(finding.hints)
                       if finding.hints else "no Deployment hint")
    missing += finding.problems
    crds = ", ".join(n for n, _ in existing)
    return Assessment(False, "", f"CRDs {crds} are Established but no operator was found "
                                 f"behind them: {'; '.join(missing)}")


def detect(kube: Kube, spec: OperatorSpec) -> Detection:
    """Look for the operator's CRDs, DeviceClasses, APIServices and Deployments (for an
    operator with apiGroups: the operator behind its webhooks, `find_operator`)."""
    details: list[str] = []
    signals: list[bool] = []
    ready_signals: list[bool] = []
    def conditioned(api_version: str, kind: str, label: str, names: tuple[str, ...],
                    condition: str) -> None:
        """Objects that exist (present) and report a condition True (ready)."""
        for name in names:
            obj = kube.get_or_none(api_version, kind, name)
            ok = obj is not None and condition_true(obj, condition)
            signals.append(obj is not None)
            ready_signals.append(ok)
            if obj is not None:
                details.append(f"{label} {name} {condition if ok else 'not ' + condition}")

    finding = find_operator(kube, spec) if spec.api_groups else None
    if finding is not None:
        # The operator's CRDs and Deployments are part of the finding.
        signals.append(finding.present)
        ready_signals.append(finding.assess().ok)
        details.append(finding.summary())
    else:
        conditioned("apiextensions.k8s.io/v1", "CustomResourceDefinition", "CRD", spec.crds,
                    "Established")
    if spec.deviceclasses and kube.serves("resource.k8s.io/v1", "DeviceClass"):
        for name in spec.deviceclasses:
            found = kube.get_or_none("resource.k8s.io/v1", "DeviceClass", name) is not None
            signals.append(found)
            ready_signals.append(found)
            if found:
                details.append(f"DeviceClass {name}")
    conditioned("apiregistration.k8s.io/v1", "APIService", "APIService", spec.apiservices,
                "Available")
    for ref in spec.configmaps:
        ns, _, name = ref.partition("/")
        found = kube.get_or_none("v1", "ConfigMap", name, ns) is not None
        signals.append(found)
        if found:
            details.append(f"ConfigMap {ref}")
    if spec.deployments and finding is None:
        deps: list[dict[str, Any]] = []
        for selector in spec.deployments:
            try:
                deps.extend(kube.items("apps/v1", "Deployment", label_selector=selector))
            except ApiError as exc:
                if exc.status != 403:
                    raise
        if deps:
            ready = all(_deployment_ready(d) for d in deps)
            names = sorted(f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in deps)
            details.append(f"Deployment {', '.join(names)} {'ready' if ready else 'not ready'}")
            signals.append(True)
            ready_signals.append(ready)
        else:
            signals.append(False)
    present = any(signals)
    ready = present and all(ready_signals) if ready_signals else present
    return Detection(spec=spec, present=present, ready=ready, details=details,
                     operator=finding)


def detect_all(kube: Kube) -> dict[str, Detection]:
    out = {}
    for name, spec in load_operator_specs().items():
        try:
            out[name] = detect(kube, spec)
        except ClusterError as exc:
            out[name] = Detection(spec, present=False, ready=False,
                                  details=[f"probe failed: {exc}"])
    return out


@dataclass
class OperatorManager:
    """Per-session operator access: detect once, install with helm only when asked.

    Detection results are cached for the session. With ``helm`` (--aic-install) a missing
    operator is installed as release ``aic-<name>``, labelled with the run id, into a
    namespace the run creates labelled when absent; uninstall() removes exactly those
    releases (the run's sweep then deletes the namespaces it created), nothing else.
    """

    kube: Kube
    run_id: str
    helm: HelmTool | None = None
    images: dict[str, Image] = field(default_factory=dict)
    # Whether a Node object is simulated (simulation.node_is_simulated).
    is_simulated: Callable[[dict[str, Any]], bool] = lambda node: False
    # What an install that cannot happen does (the fixture ends the run with one line); the
    # default raises the HelmError.
    fatal: Callable[[str], NoReturn] | None = None
    timeout_s: float = 600.0
    detected: dict[str, Detection] = field(default_factory=dict)
    installed: list[str] = field(default_factory=list)
    created_namespaces: set[str] = field(default_factory=set)

    @property
    def install(self) -> bool:
        """Whether missing operators are installed (--aic-install)."""
        return self.helm is not None

    def ensure(self, name: str) -> Detection:
        """The operator's detection; installs it first if missing and --aic-install is set."""
        specs = load_operator_specs()
        if name not in specs:
            raise KeyError(f"unknown operator {name!r}; known: {', '.join(sorted(specs))}")
        if name not in self.detected:
            spec = specs[name]
            found = detect(self.kube, spec)
            if not found.present and self.helm is not None:
                try:
                    described = self._install(spec, self.helm)
                except HelmError as exc:
                    if self.fatal is None:
                        raise
                    self.fatal(f"--aic-install: {exc}")
                self.kube.forget_discovery()  # The chart's CRDs are new APIs.
                found = detect(self.kube, spec)
                found.installed_by_us = True
                found.details.append(f"Helm release {helm.release_name(name)} in "
                                     f"{spec.namespace}: chart {described}")
            self.detected[name] = found
        return self.detected[name]

    def _install(self, spec: OperatorSpec, tool: HelmTool) -> str:
        if not spec.chart:
            raise HelmError(f"--aic-install cannot install {spec.title}: operators.yaml names "
                            "no chart for it")
        self._namespace(spec.namespace)
        values = helm.install_values(spec.values, spec.images, self.images, spec.placement,
                                     self._container_node())
        # Recorded before helm runs: an interrupted install is uninstalled too.
        self.installed.append(spec.name)
        return helm.install(tool, spec.name, spec.chart, spec.namespace, values, self.run_id,
                            self.timeout_s)

    def _namespace(self, name: str) -> None:
        """Create the release's namespace, labelled as this run's, unless it exists."""
        try:
            self.kube.get("v1", "Namespace", name)
            return
        except ApiError as exc:
            if exc.status != 404:
                raise
        self.kube.create({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": name, "labels": {
                              MANAGED_BY: MANAGER, RUN_LABEL: self.run_id}}})
        self.created_namespaces.add(name)

    def _container_node(self) -> dict[str, Any] | None:
        """A node that runs containers, when some nodes are simulated (kwok) and would only
        pretend to run the operator's pods (an untainted one first); None when every node
        is real."""
        nodes = self.kube.items("v1", "Node")
        real = sorted((n for n in nodes if not self.is_simulated(n)),
                      key=lambda n: (bool(n.get("spec", {}).get("taints")),
                                     str(n["metadata"]["name"])))
        if len(real) == len(nodes):
            return None
        if not real:
            raise HelmError("--aic-install: every node is simulated (kwok); the operator's "
                            "pods could not run anywhere")
        return real[0]

    def _delete_run_objects_of(self, spec: OperatorSpec, say: Callable[[str], None]) -> None:
        """Delete this run's cluster-scoped objects of the operator's API groups, and wait for
        this run's namespaces already being deleted, while the operator still runs."""
        groups = {crd.split(".", 1)[1] for crd in spec.crds if "." in crd}
        selector = f"{MANAGED_BY}={MANAGER},{RUN_LABEL}={self.run_id}"
        deleted = []
        for api_version, kind in cluster_scoped_kinds(self.kube):
            if api_version.split("/")[0] not in groups:
                continue
            for obj in self.kube.items(api_version, kind, label_selector=selector):
                say(f"deleting {kind} {obj['metadata']['name']} before {spec.title} goes")
                self.kube.delete(api_version, kind, obj["metadata"]["name"])
                deleted.append((api_version, kind))
        for api_version, kind in dict.fromkeys(deleted):
            wait_deleted(self.kube, Target(api_version, kind, label_selector=selector),
                         timeout=self.timeout_s)
        for ns in self.kube.items("v1", "Namespace", label_selector=selector):
            if ns["metadata"].get("deletionTimestamp"):
                wait_deleted(self.kube, Target("v1", "Namespace", name=ns["metadata"]["name"]),
                             timeout=self.timeout_s)

    def uninstall(self, say: Callable[[str], None] = lambda line: None) -> list[str]:
        """Remove what this run installed (newest first); returns problems.

        The run's own objects of each operator's API groups go first, while the operator still
        runs: it removes the finalizers it put on them (Kueue's on its flavors and queues), and
        once it is gone nothing would, leaving them, its CRDs and namespaces stuck deleting.
        """
        problems = []
        specs = load_operator_specs()
        tool = self.helm
        for name in reversed(self.installed if tool is not None else []):
            try:
                self._delete_run_objects_of(specs[name], say)
            except ClusterError as exc:
                problems.append(f"deleting the run's {specs[name].title} objects before the "
                                f"uninstall: {exc}")
        for name in reversed(self.installed):
            if tool is None:
                break
            try:
                helm.uninstall(tool, name, specs[name].namespace, self.timeout_s)
            except HelmError as exc:
                problems.append(str(exc))
        self.installed.clear()
        for namespace in sorted(self.created_namespaces):  # Made and labelled by this run.
            try:
                say(f"deleting namespace {namespace}")
                self.kube.delete("v1", "Namespace", namespace)
                wait_deleted(self.kube, Target("v1", "Namespace", name=namespace),
                             timeout=self.timeout_s)
            except ClusterError as exc:
                problems.append(f"deleting namespace {namespace}: {exc}")
        self.created_namespaces.clear()
        return problems
