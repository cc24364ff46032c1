"""cluster_autoscaling: accelerator node groups grow for pending pods and shrink when idle.

A conditional MUST: it runs when a node autoscaler is detected (cluster-autoscaler by its
status ConfigMap or Deployment, Karpenter, an OpenShift ClusterAutoscaler) or declared with
--aic-autoscaler, and is N/A otherwise. One more one-accelerator pod than the cluster has free
accelerators (one pod asking for the profile's resource when the accelerator node group
scales from zero): the pod that cannot fit must run on a node that did not exist before;
once the workload is deleted, that same node must go away. When every pod fits after all
(another workload freed accelerators after they were counted, as checks running side by side
with -n do), one more pod is added, up to 16. Clouds take
15-20 minutes for this: the waits are long by default and scale with --aic-timeout-scale.
When a wait runs out, the failure says what the autoscaler did about it: Karpenter's
NodeClaims since the check began, and the autoscalers' events about the pods and nodes.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    ApiError,
    Target,
    WaitTimeout,
    allocations,
    events_table,
    get_table,
    name,
    not_applicable,
    watch_until,
    workloads,
)

REQ = "cluster_autoscaling"
SCALE_UP_S = 900
SCALE_DOWN_S = 1200
# Pods added when every pod fit (accelerators freed by other workloads after the count).
MAX_EXTRA_PODS = 16


OPENSHIFT = "autoscaling.openshift.io/v1"
KARPENTER = "karpenter.sh/v1"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
# The event sources of node autoscalers (Event source.component / reportingComponent).
AUTOSCALER_COMPONENTS = ("karpenter", "cluster-autoscaler")


def _autoscaler(kube, cluster_info, aic_settings) -> tuple[str, bool]:
    """The node autoscaler the platform runs: cluster-autoscaler (however labelled: its status
    ConfigMap counts too), Karpenter (with its NodePools), or OpenShift's ClusterAutoscaler;
    and whether Karpenter is one of them (its NodeClaims then explain what it did)."""
    found = []
    karpenter_on = False
    detection = cluster_info.operators.get("cluster-autoscaler")
    if detection is not None and detection.present:
        found.append(detection.summary())
    karpenter = cluster_info.operators.get("karpenter")
    if karpenter is not None and karpenter.present:
        pools = kube.items(KARPENTER, "NodePool") if kube.serves(KARPENTER, "NodePool") else []
        found.append(f"{karpenter.summary()}; NodePools: "
                     f"{', '.join(name(p) for p in pools) or 'none'}")
        karpenter_on = kube.serves(KARPENTER, "NodeClaim")
    if kube.serves(OPENSHIFT, "ClusterAutoscaler"):
        enabled = kube.items(OPENSHIFT, "ClusterAutoscaler")
        if enabled:
            machines = kube.items("autoscaling.openshift.io/v1beta1", "MachineAutoscaler") \
                if kube.serves("autoscaling.openshift.io/v1beta1", "MachineAutoscaler") else []
            found.append(f"OpenShift ClusterAutoscaler {', '.join(name(a) for a in enabled)} "
                         f"with {len(machines)} MachineAutoscaler(s)")
    if found:
        return "; ".join(found), karpenter_on
    if aic_settings.autoscaler:
        return "declared with --aic-autoscaler", False
    not_applicable("no cluster autoscaler detected (no cluster-autoscaler Deployment or status "
                   "ConfigMap, no Karpenter, no OpenShift ClusterAutoscaler); pass "
                   "--aic-autoscaler if the platform provides one elsewhere")


def _allocation(cluster_info, aic_settings, evidence):
    """How the pods ask for an accelerator; with no accelerator node at all (a node group that
    scales from zero) the profile's extended resource, which only a new node can offer: a
    DeviceClass may well exist then (a DRA driver installed cluster-wide), but no device does."""
    profile = aic_settings.profile
    if (not cluster_info.accelerator_nodes and aic_settings.allocation_mode != "dra"
            and profile.extended_resources):
        resource = profile.extended_resources[0]
        evidence.note(f"no node offers an accelerator yet: the accelerator node group scales "
                      f"from zero, so the pod asks for {resource}, which only a new node has")
        return allocations.Allocation("device-plugin", profile, resource=resource)
    return allocations.choose_allocation(cluster_info, profile, aic_settings.allocation_mode)


def _node_rows(nodes: list[dict[str, Any]], resource: str) -> str:
    """Nodes with their allocatable accelerators (blank under DRA: devices are in slices)."""
    return get_table(sorted(nodes, key=name), [
        ("NAME", name),
        ("ACCELERATORS", lambda o: o.get("status", {}).get("allocatable", {}).get(resource, "")
         if resource else ""),
        ("CREATED", lambda o: o["metadata"].get("creationTimestamp", "")),
    ])


def _node_claims(kube) -> list[dict[str, Any]]:
    return kube.items(KARPENTER, "NodeClaim")


def _claims_of(kube, providers: set[str]) -> list[dict[str, Any]]:
    """The NodeClaims of the nodes with these providerIDs."""
    return [c for c in _node_claims(kube) if c.get("status", {}).get("providerID") in providers]


def _claim_rows(claims: list[dict[str, Any]]) -> str:
    return get_table(sorted(claims, key=name), [
        ("NAME", name),
        ("NODEPOOL", lambda o: o["metadata"].get("labels", {}).get(NODEPOOL_LABEL, "")),
        ("TYPE", lambda o: o["metadata"].get("labels", {}).get(
            "node.kubernetes.io/instance-type", "")),
        ("NODE", lambda o: o.get("status", {}).get("nodeName", "")),
        ("READY", lambda o: next((c.get("status", "") for c in o.get("status", {}).get(
            "conditions", []) or [] if c.get("type") == "Ready"), "Unknown")),
    ])


def _describe_claim(claim: dict[str, Any]) -> str:
    """A NodeClaim in one phrase: its pool, its node, and the conditions that are not True."""
    pool = claim["metadata"].get("labels", {}).get(NODEPOOL_LABEL, "?")
    node = claim.get("status", {}).get("nodeName") or "no node yet"
    open_conditions = [
        f"{c.get('type')}={c.get('status')}"
        + (f" ({c.get('reason', '')}: {c['message']})" if c.get("message") else "")
        for c in claim.get("status", {}).get("conditions", []) or []
        if c.get("status") != "True"][:3]
    deleting = ", being deleted" if claim["metadata"].get("deletionTimestamp") else ""
    conditions = f", {'; '.join(open_conditions)}" if open_conditions else ""
    return f"{name(claim)} (NodePool {pool}, {node}{deleting}{conditions})"


def _autoscaler_events(kube, namespace: str | None, names: set[str]) -> list[dict[str, Any]]:
    """The node autoscalers' events about the named objects (pods, nodes, NodeClaims)."""
    try:
        events = kube.items("v1", "Event", namespace)
    except ApiError:
        return []
    return [e for e in events if e.get("involvedObject", {}).get("name") in names and (
        (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
    ) in AUTOSCALER_COMPONENTS]


def _event_lines(events: list[dict[str, Any]], limit: int = 3) -> str:
    newest = sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime")
                                              or ""))[-limit:]
    return " | ".join(f"{e.get('reason', '')} {e.get('involvedObject', {}).get('name', '')}: "
                      f"{(e.get('message') or '').strip()}" for e in newest)


def _no_scale_up(kube, namespace: str, karpenter: bool, claims_before: set[str],
                 err: WaitTimeout) -> str:
    """Why no pod reached a new node: what the autoscaler did (or did not) about the pods."""
    pods = kube.items("v1", "Pod", namespace, label_selector="app=scale")
    pending = sorted(name(p) for p in pods if not p["spec"].get("nodeName"))
    about = ", ".join(pending) or "the pods"
    parts = []
    if karpenter:
        claims = [c for c in _node_claims(kube) if name(c) not in claims_before]
        parts.append("Karpenter's new NodeClaim(s): " + "; ".join(map(_describe_claim, claims))
                     if claims else "Karpenter created no NodeClaim since the check began")
    events = _autoscaler_events(kube, namespace, set(pending))
    if events:
        parts.append(f"autoscaler events: {_event_lines(events)}")
    else:
        parts.append(f"no autoscaler recorded an event about {about}, so none acted on it "
                     "(is its controller running?)")
    return f"no new node for pending pod(s) {about} (scale-up): {'; '.join(parts)}. {err}"


def _no_scale_down(kube, new_nodes: list[str], providers: set[str], karpenter: bool,
                   err: WaitTimeout) -> str:
    """Why the new node stayed: its NodeClaim's state and the autoscalers' events about it."""
    parts = []
    claims: list[dict[str, Any]] = []
    if karpenter:
        claims = _claims_of(kube, providers)
        parts.append("NodeClaim(s): " + "; ".join(map(_describe_claim, claims)) if claims
                     else "no NodeClaim of Karpenter's owns the node any more")
    events = _autoscaler_events(kube, None, set(new_nodes) | {name(c) for c in claims})
    parts.append(f"autoscaler events: {_event_lines(events)}" if events else
                 "no autoscaler recorded an event about the node, so none acted on it "
                 "(is its controller running?)")
    return (f"node(s) {', '.join(new_nodes)} still there after the workload was deleted "
            f"(scale-down): {'; '.join(parts)}. {err}")


@pytest.mark.requirement(REQ)
def test_scale_up_and_down(kube, cluster_info, aic_settings, namespace, run_context, evidence,
                           timeout):
    """A pending accelerator pod gets a new node; the node goes away when the pod is gone."""
    summary, karpenter = _autoscaler(kube, cluster_info, aic_settings)
    evidence.note(f"autoscaler: {summary}")
    alloc = _allocation(cluster_info, aic_settings, evidence)
    before_nodes = kube.items("v1", "Node")
    before = {name(n) for n in before_nodes}
    claims_before = {name(c) for c in _node_claims(kube)} if karpenter else set()
    evidence.command("kubectl get nodes  # before", _node_rows(before_nodes, alloc.resource))
    # A busy cluster (nothing free) needs no filling: the one pod already cannot fit.
    free = sum(max(0, f) for f in allocations.free_accelerators(kube, cluster_info, alloc).values())
    count = free + 1
    evidence.note(f"{free} free {alloc.unit} in the cluster; creating {count} pods that "
                  f"each request one ({alloc.describe()}), so one cannot fit on any existing "
                  "node")
    for obj in allocations.claim_objects(alloc, namespace):
        run_context.create(obj)

    def create_pod(i: int) -> None:
        run_context.create(allocations.accelerator_pod(
            f"scale-{i}", namespace, alloc,
            workloads.container("ctr", ["sleep", "3600"], image=aic_settings.image("probe")),
            restart_policy="Always", labels={"app": "scale"}))

    for i in range(count):
        create_pod(i)

    def running(objs: dict[str, dict[str, Any]]) -> bool:
        return len(objs) == count and all(
            o.get("status", {}).get("phase") == "Running" for o in objs.values())

    def on_new_node(objs: dict[str, dict[str, Any]]) -> bool:
        return any(o["spec"].get("nodeName") not in before for o in objs.values())

    deadline = time.monotonic() + timeout(SCALE_UP_S)
    while True:
        try:
            pods = watch_until(kube, Target("v1", "Pod", namespace, label_selector="app=scale"),
                               running, timeout=max(1.0, deadline - time.monotonic()),
                               expected="every pod Running, one of them on a node that did "
                                        "not exist before (scale-up)")
        except WaitTimeout as err:
            raise AssertionError(_no_scale_up(kube, namespace, karpenter, claims_before,
                                              err)) from None
        if on_new_node(pods):
            break
        # Every pod fit on the nodes that were there: accelerators were freed after they were
        # counted (another workload ended meanwhile). One more pod cannot fit either.
        if count - free > MAX_EXTRA_PODS:
            raise AssertionError(
                f"{count} pods asking for one {alloc.unit} each all run on existing nodes: "
                f"{free} were free when counted, and {count - free} more kept fitting; no "
                "pending pod to scale up for")
        evidence.note(f"all {count} pods fit on existing nodes ({alloc.unit} freed since "
                      f"they were counted); creating scale-{count}")
        create_pod(count)
        count += 1
    new_nodes = sorted({o["spec"]["nodeName"] for o in pods.values()} - before)
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(sorted(pods.values(), key=name), POD_WIDE))
    after_up = kube.items("v1", "Node")
    evidence.command("kubectl get nodes  # after scale-up", _node_rows(after_up, alloc.resource))
    pools = {name(n): n["metadata"].get("labels", {}).get(NODEPOOL_LABEL) for n in after_up}
    evidence.note("new node(s) created for the pending pod: " + ", ".join(
        f"{n} (Karpenter NodePool {pools[n]})" if pools.get(n) else n for n in new_nodes))
    # A NodeClaim names its instance by providerID from launch on (its nodeName only once the
    # node registered, which may come after the pod's binding).
    providers = {n["spec"]["providerID"] for n in after_up
                 if name(n) in new_nodes and n.get("spec", {}).get("providerID")}
    if karpenter:
        claims = _claims_of(kube, providers)
        evidence.command("kubectl get nodeclaims  # of the new node(s)", _claim_rows(claims))
    said = _autoscaler_events(kube, namespace, {name(p) for p in pods.values()})
    if said:
        evidence.command(f"kubectl get events -n {namespace}  # the autoscaler's, about the pods",
                         events_table(said))
    for pod in pods.values():
        kube.delete("v1", "Pod", name(pod), namespace, grace=0)
    try:
        watch_until(kube, Target("v1", "Node"),
                    lambda objs: not any(o["metadata"]["name"] in new_nodes
                                         for o in objs.values()),
                    timeout=timeout(SCALE_DOWN_S),
                    expected=f"node(s) {', '.join(new_nodes)} to be removed after the workload "
                             "was deleted (scale-down)")
    except WaitTimeout as err:
        raise AssertionError(_no_scale_down(kube, new_nodes, providers, karpenter,
                                            err)) from None
    after = kube.items("v1", "Node")
    evidence.command("kubectl get nodes  # after scale-down", _node_rows(after, alloc.resource))
    assert {name(n) for n in after} >= before - {name(n) for n in before_nodes
                                                 if n["metadata"].get("deletionTimestamp")}, \
        "the scale-down removed nodes that existed before the check"
    evidence.note(f"node(s) {', '.join(new_nodes)} removed after the workload was deleted")
