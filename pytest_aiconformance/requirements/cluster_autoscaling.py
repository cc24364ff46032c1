"""cluster_autoscaling: the decisions of its checks (checks/test_cluster_autoscaling.py), as pure
functions over the nodes, pods, NodeClaims and events the API server listed.

- Which autoscaler: cluster-autoscaler (by detection), Karpenter with its NodePools, OpenShift's
  ClusterAutoscaler with its MachineAutoscalers; none at all is N/A (`NO_AUTOSCALER`).
- How the pods ask: a node group that scales from zero (no accelerator node yet) is asked for
  the profile's extended resource, which only a new node offers.
- Scale-up: every pod Running, one on a node that did not exist before; when all fit after all
  (accelerators freed after they were counted), one more pod, up to `MAX_EXTRA_PODS`.
- Scale-down: the new nodes gone, and no node that was there before (and not being deleted).
- When a wait runs out, why: Karpenter's NodeClaims and the node autoscalers' own events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_aiconformance.cluster.profiles import AcceleratorProfile
from pytest_aiconformance.cluster.tables import get_table, name

Obj = dict[str, Any]

OPENSHIFT = "autoscaling.openshift.io/v1"  # ClusterAutoscaler
OPENSHIFT_MACHINES = "autoscaling.openshift.io/v1beta1"  # MachineAutoscaler
KARPENTER = "karpenter.sh/v1"  # NodePool, NodeClaim
NODEPOOL_LABEL = "karpenter.sh/nodepool"
# The event sources of node autoscalers (Event source.component / reportingComponent).
AUTOSCALER_COMPONENTS = ("karpenter", "cluster-autoscaler")
# Pods added when every pod fit (accelerators freed by other workloads after the count).
MAX_EXTRA_PODS = 16
SCALE_LABEL = "app=scale"  # the label selector of the check's pods

NO_AUTOSCALER = ("no cluster autoscaler detected (no cluster-autoscaler Deployment or status "
                 "ConfigMap, no Karpenter, no OpenShift ClusterAutoscaler); pass "
                 "--aic-autoscaler if the platform provides one elsewhere")


# --- which autoscaler, and how the pods ask -----------------------------------------------------


def karpenter_summary(detected: str, pools: Iterable[Obj]) -> str:
    """Karpenter as detected, with its NodePools (the node groups it can grow)."""
    return f"{detected}; NodePools: {', '.join(name(p) for p in pools) or 'none'}"


def openshift_summary(autoscalers: Sequence[Obj], machines: Sequence[Obj]) -> str:
    """OpenShift's ClusterAutoscaler (on only where the object exists) and its machine sets'
    MachineAutoscalers."""
    return (f"OpenShift ClusterAutoscaler {', '.join(name(a) for a in autoscalers)} "
            f"with {len(machines)} MachineAutoscaler(s)")


def scale_from_zero_resource(has_accelerator_nodes: bool, allocation_mode: str,
                             profile: AcceleratorProfile) -> str:
    """The extended resource the pods ask for when no node offers an accelerator yet (a node
    group that scales from zero; "" otherwise): a DeviceClass may well exist then (a DRA driver
    installed cluster-wide), but no device does, so only the profile's resource can bring a
    new node."""
    if has_accelerator_nodes or allocation_mode == "dra" or not profile.extended_resources:
        return ""
    return profile.extended_resources[0]


def free_total(free: Mapping[str, int]) -> int:
    """Free accelerators in the cluster (a node with more allocated than allocatable counts
    none, not less)."""
    return sum(max(0, f) for f in free.values())


# --- scale-up ---------------------------------------------------------------------------------


def all_running(pods: Mapping[str, Obj], count: int) -> bool:
    """All ``count`` pods exist and run."""
    return len(pods) == count and all(
        o.get("status", {}).get("phase") == "Running" for o in pods.values())


def on_new_node(pods: Mapping[str, Obj], before: Iterable[str]) -> bool:
    """Some pod runs on a node that did not exist before the check."""
    existing = set(before)
    return any(o["spec"].get("nodeName") not in existing for o in pods.values())


def all_fit_problem(count: int, free: int, unit: str) -> str:
    """Why adding one more pod cannot lead to a scale-up ("" while up to MAX_EXTRA_PODS pods
    beyond the free count have been tried)."""
    if count - free <= MAX_EXTRA_PODS:
        return ""
    return (f"{count} pods asking for one {unit} each all run on existing nodes: "
            f"{free} were free when counted, and {count - free} more kept fitting; no "
            "pending pod to scale up for")


def new_nodes(pods: Mapping[str, Obj], before: Iterable[str]) -> list[str]:
    """The nodes the pods run on that did not exist before the check, by name."""
    return sorted({o["spec"]["nodeName"] for o in pods.values()} - set(before))


def new_node_note(created: Sequence[str], nodes: Iterable[Obj]) -> str:
    """The new nodes, with the Karpenter NodePool of each where it has one."""
    pools = {name(n): n["metadata"].get("labels", {}).get(NODEPOOL_LABEL) for n in nodes}
    return "new node(s) created for the pending pod: " + ", ".join(
        f"{n} (Karpenter NodePool {pools[n]})" if pools.get(n) else n for n in created)


def providers_of(nodes: Iterable[Obj], names: Iterable[str]) -> set[str]:
    """The providerIDs of the named nodes: a NodeClaim names its instance by providerID from
    launch on (its nodeName only once the node registered, which may come after the pod's
    binding)."""
    wanted = set(names)
    return {n["spec"]["providerID"] for n in nodes
            if name(n) in wanted and n.get("spec", {}).get("providerID")}


def claims_of(claims: Iterable[Obj], providers: set[str]) -> list[Obj]:
    """The NodeClaims of the nodes with these providerIDs."""
    return [c for c in claims if c.get("status", {}).get("providerID") in providers]


# --- scale-down -------------------------------------------------------------------------------


def lost_nodes(before: Iterable[Obj], after: Iterable[Obj]) -> set[str]:
    """Nodes that existed before the check, were not being deleted then, and are gone: a
    scale-down must remove only what the scale-up added."""
    kept = {name(n) for n in before if not n["metadata"].get("deletionTimestamp")}
    return kept - {name(n) for n in after}


# --- evidence, and why a wait ran out ---------------------------------------------------------


def node_rows(nodes: Sequence[Obj], resource: str) -> str:
    """Nodes with their allocatable accelerators (blank under DRA: devices are in slices)."""
    return get_table(sorted(nodes, key=name), [
        ("NAME", name),
        ("ACCELERATORS", lambda o: o.get("status", {}).get("allocatable", {}).get(resource, "")
         if resource else ""),
        ("CREATED", lambda o: o["metadata"].get("creationTimestamp", "")),
    ])


def claim_rows(claims: Sequence[Obj]) -> str:
    """NodeClaims as `kubectl get nodeclaims` shows them."""
    return get_table(sorted(claims, key=name), [
        ("NAME", name),
        ("NODEPOOL", lambda o: o["metadata"].get("labels", {}).get(NODEPOOL_LABEL, "")),
        ("TYPE", lambda o: o["metadata"].get("labels", {}).get(
            "node.kubernetes.io/instance-type", "")),
        ("NODE", lambda o: o.get("status", {}).get("nodeName", "")),
        ("READY", lambda o: next((c.get("status", "") for c in o.get("status", {}).get(
            "conditions", []) or [] if c.get("type") == "Ready"), "Unknown")),
    ])


def describe_claim(claim: Obj) -> str:
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


def autoscaler_events(events: Iterable[Obj], names: set[str]) -> list[Obj]:
    """The node autoscalers' events about the named objects (pods, nodes, NodeClaims)."""
    return [e for e in events if e.get("involvedObject", {}).get("name") in names and (
        (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
    ) in AUTOSCALER_COMPONENTS]


def event_lines(events: Sequence[Obj], limit: int = 3) -> str:
    """The newest events in one line: reason, object and message of each."""
    newest = sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime")
                                              or ""))[-limit:]
    return " | ".join(f"{e.get('reason', '')} {e.get('involvedObject', {}).get('name', '')}: "
                      f"{(e.get('message') or '').strip()}" for e in newest)


def no_scale_up(pods: Iterable[Obj], new_claims: Sequence[Obj] | None, events: Iterable[Obj],
                err: Exception) -> str:
    """Why no pod reached a new node: what the autoscaler did (or did not) about the pending
    pods. ``new_claims``: Karpenter's NodeClaims created since the check began (None without
    Karpenter); ``events``: the namespace's events."""
    pending = sorted(name(p) for p in pods if not p["spec"].get("nodeName"))
    about = ", ".join(pending) or "the pods"
    parts = []
    if new_claims is not None:
        parts.append("Karpenter's new NodeClaim(s): " + "; ".join(map(describe_claim, new_claims))
                     if new_claims else "Karpenter created no NodeClaim since the check began")
    said = autoscaler_events(events, set(pending))
    if said:
        parts.append(f"autoscaler events: {event_lines(said)}")
    else:
        parts.append(f"no autoscaler recorded an event about {about}, so none acted on it "
                     "(is its controller running?)")
    return f"no new node for pending pod(s) {about} (scale-up): {'; '.join(parts)}. {err}"


def no_scale_down(created: Sequence[str], claims: Sequence[Obj] | None, events: Iterable[Obj],
                  err: Exception) -> str:
    """Why the new nodes stayed: their NodeClaims' state (None without Karpenter) and the
    autoscalers' events (of every namespace) about the nodes and those NodeClaims."""
    parts = []
    if claims is not None:
        parts.append("NodeClaim(s): " + "; ".join(map(describe_claim, claims)) if claims
                     else "no NodeClaim of Karpenter's owns the node any more")
    said = autoscaler_events(events, set(created) | {name(c) for c in claims or []})
    parts.append(f"autoscaler events: {event_lines(said)}" if said else
                 "no autoscaler recorded an event about the node, so none acted on it "
                 "(is its controller running?)")
    return (f"node(s) {', '.join(created)} still there after the workload was deleted "
            f"(scale-down): {'; '.join(parts)}. {err}")
