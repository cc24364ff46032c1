"""advanced_inference_ingress: Gateway API Inference Extension pools are served (a 1.36 SHOULD).

Essential: the Inference Extension API is served (inference.networking.k8s.io/v1, or the
older x-k8s.io v1alpha2) and an InferencePool is Accepted by its parent Gateway with its
references resolved; its endpoint picker (EPP) Service has ready endpoints and the pool's
selector matches Ready model-server pods. Essential (data plane): a request sent from inside
the cluster through an HTTPRoute that targets the pool is answered by a model server
(HTTP 200 on the OpenAI-compatible /v1/models), which needs the endpoint picker to choose one.
No Inference Extension API -> failure (Not Implemented); an API with no pool to show it
working -> not observable; simulated nodes -> not observable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    advanced_inference_ingress,
    condition_true,
    get_table,
    name,
    not_observable,
    probes,
    simulation,
    traffic,
)

pytestmark = pytest.mark.needs_containers


REQ = "advanced_inference_ingress"
VERSIONS = ("inference.networking.k8s.io/v1", "inference.networking.x-k8s.io/v1alpha2")
GW = "gateway.networking.k8s.io/v1"


def pools(kube: Kube, evidence: EvidenceRecorder) -> tuple[str, list[dict[str, Any]]]:
    """The served Inference Extension version and its InferencePools (not observable when
    there is none: nothing shows the extension working)."""
    served = [v for v in VERSIONS if kube.serves(v, "InferencePool")]
    if not served:
        raise AssertionError("Gateway API Inference Extension not installed: InferencePool is "
                             f"not served ({', '.join(VERSIONS)})")
    version = served[0]
    items = kube.items(version, "InferencePool")
    evidence.command("kubectl get inferencepools -A", get_table(items, [
        ("NAMESPACE", lambda o: o["metadata"]["namespace"]), ("NAME", name),
        ("ACCEPTED", lambda o: advanced_inference_ingress.pool_accepted(o)[0])]) if items
        else "No resources found")
    if not items:
        not_observable(f"{version} is served but no InferencePool exists, so nothing shows the "
                       "extension working; deploy a model-server pool and its endpoint picker")
    return version, items


def ready_pool(kube: Kube, evidence: EvidenceRecorder) -> dict[str, Any]:
    """The InferencePool to test: the first Accepted one; a failure when none is."""
    _version, items = pools(kube, evidence)
    pool, reasons = advanced_inference_ingress.first_accepted_pool(items)
    for why in reasons:
        evidence.note(why)
    assert pool, "no InferencePool is Accepted by a Gateway: " + "; ".join(reasons)
    return pool


@pytest.mark.requirement(REQ)
def test_pool_accepted_picker_serving(kube: Kube, evidence: EvidenceRecorder) -> None:
    """An InferencePool is Accepted and its endpoint picker and model servers are ready."""
    pool = ready_pool(kube, evidence)
    ns = pool["metadata"]["namespace"]
    epp = advanced_inference_ingress.endpoint_picker(pool)
    assert epp, f"InferencePool {name(pool)} names no endpoint picker"
    slices = kube.items("discovery.k8s.io/v1", "EndpointSlice", ns,
                        label_selector=f"kubernetes.io/service-name={epp[0]}")
    ready = advanced_inference_ingress.ready_endpoints(slices)
    evidence.command(f"kubectl get endpointslices -n {ns} -l kubernetes.io/service-name="
                     f"{epp[0]}", f"{ready} ready endpoint(s)")
    assert ready, f"endpoint picker Service {ns}/{epp[0]} has no ready endpoint"
    sel = advanced_inference_ingress.pool_selector(pool)
    members = kube.items("v1", "Pod", ns, label_selector=sel)
    ready_members = [p for p in members if condition_true(p, "Ready")]
    evidence.command(f"kubectl get pods -n {ns} -l {sel}",
                     get_table(members, [("NAME", name), ("NODE", lambda o: o["spec"].get(
                         "nodeName", ""))]) if members else "No resources found")
    assert ready_members, f"InferencePool {name(pool)} selects no Ready model-server pod ({sel})"


def require_data_plane(kube: Kube, what: str) -> None:
    """Skip (not observable) when every node is simulated: no pod, proxy or traffic runs."""
    nodes = kube.items("v1", "Node")
    if nodes and all(simulation.node_is_simulated(n) for n in nodes):
        not_observable(f"every node ({', '.join(name(n) for n in nodes)}) is simulated (kwok) "
                       f"and runs no containers, so {what} cannot be observed")


def route_to_pool(kube: Kube,
                  pool: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An HTTPRoute in the pool's namespace that sends traffic to it, and its Gateway."""
    ns = pool["metadata"]["namespace"]
    for rt in kube.items(GW, "HTTPRoute", ns):
        if advanced_inference_ingress.routes_to_pool(rt, name(pool)):
            parent = rt["spec"]["parentRefs"][0]
            gw = kube.get_or_none(GW, "Gateway", parent["name"], parent.get("namespace", ns))
            if gw:
                return rt, gw
    return None


@pytest.mark.requirement(REQ)
def test_request_served_through_pool(kube: Kube, namespace: str, run_context: RunContext,
                                     evidence: EvidenceRecorder,
                                     timeout: Callable[[float], float],
                                     aic_settings: Settings) -> None:
    """A request through an HTTPRoute to the pool is answered by a model server."""
    pool = ready_pool(kube, evidence)
    found = route_to_pool(kube, pool) if kube.serves(GW, "HTTPRoute") else None
    assert found, f"no HTTPRoute with a Gateway sends traffic to InferencePool {name(pool)}"
    rt, gw = found
    require_data_plane(kube, "a request served through the pool")
    addresses = gw.get("status", {}).get("addresses", []) or []
    assert addresses, f"Gateway {name(gw)} has no address"
    prefix = advanced_inference_ingress.route_path_prefix(rt)
    url = f"http://{addresses[0]['value']}{prefix.rstrip('/')}/v1/models"
    script = traffic.client_script([traffic.Case("models", url, 3)], max_time=30)
    probes.run_probe(kube, run_context, namespace,
                      traffic.client_pod("client", namespace, script, aic_settings.image("curl")),
                      timeout=timeout(300))
    answers = traffic.parse_client_log(kube.logs(namespace, "client", "client")).get(
        "models", [])
    evidence.http(f"curl -si {url}", traffic.first_raw(answers),
                  f"through HTTPRoute {name(rt)} to InferencePool {name(pool)}")
    ok, reason = advanced_inference_ingress.served_by_model_servers(answers, 3, name(pool))
    assert ok, reason
