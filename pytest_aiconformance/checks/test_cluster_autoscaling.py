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
from collections.abc import Callable
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    ApiError,
    ClusterInfo,
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    Target,
    WaitTimeout,
    allocations,
    cluster_autoscaling,
    events_table,
    get_table,
    name,
    not_applicable,
    watch_until,
    workloads,
)

REQ = "cluster_autoscaling"
CA = cluster_autoscaling
SCALE_UP_S = 900
SCALE_DOWN_S = 1200
Obj = dict[str, Any]


def _autoscaler(kube: Kube, cluster_info: ClusterInfo, aic_settings: Settings
                ) -> tuple[str, bool]:
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
        pools = (kube.items(CA.KARPENTER, "NodePool") if kube.serves(CA.KARPENTER, "NodePool")
                 else [])
        found.append(CA.karpenter_summary(karpenter.summary(), pools))
        karpenter_on = kube.serves(CA.KARPENTER, "NodeClaim")
    if kube.serves(CA.OPENSHIFT, "ClusterAutoscaler"):
        enabled = kube.items(CA.OPENSHIFT, "ClusterAutoscaler")
        if enabled:
            machines = kube.items(CA.OPENSHIFT_MACHINES, "MachineAutoscaler") \
                if kube.serves(CA.OPENSHIFT_MACHINES, "MachineAutoscaler") else []
            found.append(CA.openshift_summary(enabled, machines))
    if found:
        return "; ".join(found), karpenter_on
    if aic_settings.autoscaler:
        return "declared with --aic-autoscaler", False
    not_applicable(CA.NO_AUTOSCALER)


def _allocation(cluster_info: ClusterInfo, aic_settings: Settings,
                evidence: EvidenceRecorder) -> allocations.Allocation:
    """How the pods ask for an accelerator; with no accelerator node at all (a node group that
    scales from zero) the profile's extended resource, which only a new node can offer."""
    profile = aic_settings.profile
    resource = CA.scale_from_zero_resource(bool(cluster_info.accelerator_nodes),
                                           aic_settings.allocation_mode, profile)
    if resource:
        evidence.note(f"no node offers an accelerator yet: the accelerator node group scales "
                      f"from zero, so the pod asks for {resource}, which only a new node has")
        return allocations.Allocation("device-plugin", profile, resource=resource)
    return allocations.choose_allocation(cluster_info, profile, aic_settings.allocation_mode)


def _node_claims(kube: Kube) -> list[Obj]:
    return kube.items(CA.KARPENTER, "NodeClaim")


def _events(kube: Kube, namespace: str | None) -> list[Obj]:
    """The events of a namespace (of all with None); none where they cannot be listed."""
    try:
        return kube.items("v1", "Event", namespace)
    except ApiError:
        return []


def _no_scale_up(kube: Kube, namespace: str, karpenter: bool, claims_before: set[str],
                 err: WaitTimeout) -> str:
    """Why no pod reached a new node: what the autoscaler did (or did not) about the pods."""
    pods = kube.items("v1", "Pod", namespace, label_selector=CA.SCALE_LABEL)
    claims = ([c for c in _node_claims(kube) if name(c) not in claims_before] if karpenter
              else None)
    return CA.no_scale_up(pods, claims, _events(kube, namespace), err)


def _no_scale_down(kube: Kube, new_nodes: list[str], providers: set[str], karpenter: bool,
                   err: WaitTimeout) -> str:
    """Why the new node stayed: its NodeClaim's state and the autoscalers' events about it."""
    claims = CA.claims_of(_node_claims(kube), providers) if karpenter else None
    return CA.no_scale_down(new_nodes, claims, _events(kube, None), err)


@pytest.mark.requirement(REQ)
def test_scale_up_and_down(kube: Kube, cluster_info: ClusterInfo, aic_settings: Settings,
                           namespace: str, run_context: RunContext, evidence: EvidenceRecorder,
                           timeout: Callable[[float], float]) -> None:
    """A pending accelerator pod gets a new node; the node goes away when the pod is gone."""
    summary, karpenter = _autoscaler(kube, cluster_info, aic_settings)
    evidence.note(f"autoscaler: {summary}")
    alloc = _allocation(cluster_info, aic_settings, evidence)
    before_nodes = kube.items("v1", "Node")
    before = {name(n) for n in before_nodes}
    claims_before = {name(c) for c in _node_claims(kube)} if karpenter else set()
    evidence.command("kubectl get nodes  # before", CA.node_rows(before_nodes, alloc.resource))
    # A busy cluster (nothing free) needs no filling: the one pod already cannot fit.
    free = CA.free_total(allocations.free_accelerators(kube, cluster_info, alloc))
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

    def running(objs: dict[str, Obj]) -> bool:
        return CA.all_running(objs, count)

    deadline = time.monotonic() + timeout(SCALE_UP_S)
    while True:
        try:
            pods = watch_until(kube, Target("v1", "Pod", namespace,
                                            label_selector=CA.SCALE_LABEL),
                               running,
                               timeout=max(1.0, deadline - time.monotonic()),
                               expected="every pod Running, one of them on a node that did "
                                        "not exist before (scale-up)")
        except WaitTimeout as err:
            raise AssertionError(_no_scale_up(kube, namespace, karpenter, claims_before,
                                              err)) from None
        if CA.on_new_node(pods, before):
            break
        # Every pod fit on the nodes that were there: accelerators were freed after they were
        # counted (another workload ended meanwhile). One more pod cannot fit either.
        problem = CA.all_fit_problem(count, free, alloc.unit)
        if problem:
            raise AssertionError(problem)
        evidence.note(f"all {count} pods fit on existing nodes ({alloc.unit} freed since "
                      f"they were counted); creating scale-{count}")
        create_pod(count)
        count += 1
    new_nodes = CA.new_nodes(pods, before)
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(sorted(pods.values(), key=name), POD_WIDE))
    after_up = kube.items("v1", "Node")
    evidence.command("kubectl get nodes  # after scale-up",
                     CA.node_rows(after_up, alloc.resource))
    evidence.note(CA.new_node_note(new_nodes, after_up))
    providers = CA.providers_of(after_up, new_nodes)
    if karpenter:
        claims = CA.claims_of(_node_claims(kube), providers)
        evidence.command("kubectl get nodeclaims  # of the new node(s)", CA.claim_rows(claims))
    said = CA.autoscaler_events(_events(kube, namespace), {name(p) for p in pods.values()})
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
    evidence.command("kubectl get nodes  # after scale-down", CA.node_rows(after, alloc.resource))
    assert not CA.lost_nodes(before_nodes, after), \
        "the scale-down removed nodes that existed before the check"
    evidence.note(f"node(s) {', '.join(new_nodes)} removed after the workload was deleted")
