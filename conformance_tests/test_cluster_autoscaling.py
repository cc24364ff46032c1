"""cluster_autoscaling: accelerator node groups grow for pending pods and shrink when idle.

A conditional MUST: it runs when a node autoscaler is detected (cluster-autoscaler by its
status ConfigMap or Deployment, Karpenter, an OpenShift ClusterAutoscaler) or declared with
--aic-autoscaler, and is N/A otherwise. One more one-accelerator pod than the cluster has free
accelerators (one pod asking for the profile's resource when the accelerator node group
scales from zero): the pod that cannot fit must run on a node that did not exist before;
once the workload is deleted, that same node must go away. Clouds take
15-20 minutes for this: the waits are long by default and scale with --aic-timeout-scale.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    Target,
    get_table,
    name,
    not_applicable,
    probing,
    watch_until,
    workloads,
)

REQ = "cluster_autoscaling"
SCALE_UP_S = 900
SCALE_DOWN_S = 1200


OPENSHIFT = "autoscaling.openshift.io/v1"
KARPENTER = "karpenter.sh/v1"


def _autoscaler(kube, cluster_info, aic_settings) -> str:
    """The node autoscaler the platform runs: cluster-autoscaler (however labelled: its status
    ConfigMap counts too), Karpenter (with its NodePools), or OpenShift's ClusterAutoscaler."""
    found = []
    detection = cluster_info.operators.get("cluster-autoscaler")
    if detection is not None and detection.present:
        found.append(detection.summary())
    karpenter = cluster_info.operators.get("karpenter")
    if karpenter is not None and karpenter.present:
        pools = kube.items(KARPENTER, "NodePool") if kube.serves(KARPENTER, "NodePool") else []
        found.append(f"{karpenter.summary()}; NodePools: "
                     f"{', '.join(name(p) for p in pools) or 'none'}")
    if kube.serves(OPENSHIFT, "ClusterAutoscaler"):
        enabled = kube.items(OPENSHIFT, "ClusterAutoscaler")
        if enabled:
            machines = kube.items("autoscaling.openshift.io/v1beta1", "MachineAutoscaler") \
                if kube.serves("autoscaling.openshift.io/v1beta1", "MachineAutoscaler") else []
            found.append(f"OpenShift ClusterAutoscaler {', '.join(name(a) for a in enabled)} "
                         f"with {len(machines)} MachineAutoscaler(s)")
    if found:
        return "; ".join(found)
    if aic_settings.autoscaler:
        return "declared with --aic-autoscaler"
    not_applicable("no cluster autoscaler detected (no cluster-autoscaler Deployment or status "
                   "ConfigMap, no Karpenter, no OpenShift ClusterAutoscaler); pass "
                   "--aic-autoscaler if the platform provides one elsewhere")


def _allocation(cluster_info, aic_settings, evidence):
    """How the pods ask for an accelerator; with no accelerator node at all (a node group that
    scales from zero) the profile's extended resource, which only a new node can offer."""
    profile = aic_settings.profile
    if (not cluster_info.accelerator_nodes and not cluster_info.device_classes
            and aic_settings.allocation_mode != "dra" and profile.extended_resources):
        resource = profile.extended_resources[0]
        evidence.note(f"no node offers an accelerator yet: the accelerator node group scales "
                      f"from zero, so the pod asks for {resource}, which only a new node has")
        return probing.Allocation("device-plugin", profile, resource=resource)
    return probing.choose_allocation(cluster_info, profile, aic_settings.allocation_mode)


def _node_rows(nodes: list[dict[str, Any]], resource: str) -> str:
    """Nodes with their allocatable accelerators (blank under DRA: devices are in slices)."""
    return get_table(sorted(nodes, key=name), [
        ("NAME", name),
        ("ACCELERATORS", lambda o: o.get("status", {}).get("allocatable", {}).get(resource, "")
         if resource else ""),
        ("CREATED", lambda o: o["metadata"].get("creationTimestamp", "")),
    ])


@pytest.mark.requirement(REQ)
def test_scale_up_and_down(kube, cluster_info, aic_settings, namespace, run_context, evidence,
                           timeout):
    """A pending accelerator pod gets a new node; the node goes away when the pod is gone."""
    evidence.note(f"autoscaler: {_autoscaler(kube, cluster_info, aic_settings)}")
    alloc = _allocation(cluster_info, aic_settings, evidence)
    before_nodes = kube.items("v1", "Node")
    before = {name(n) for n in before_nodes}
    evidence.command("kubectl get nodes  # before", _node_rows(before_nodes, alloc.resource))
    # A busy cluster (nothing free) needs no filling: the one pod already cannot fit.
    free = sum(max(0, f) for f in probing.free_accelerators(kube, cluster_info, alloc).values())
    count = free + 1
    evidence.note(f"{free} free {alloc.unit} in the cluster; creating {count} pods that "
                  f"each request one ({alloc.describe()}), so one cannot fit on any existing "
                  "node")
    for obj in probing.claim_objects(alloc, namespace):
        run_context.create(obj)
    for i in range(count):
        run_context.create(probing.accelerator_pod(
            f"scale-{i}", namespace, alloc,
            workloads.container("ctr", ["sleep", "3600"], image=aic_settings.image("probe")),
            restart_policy="Always", labels={"app": "scale"}))

    def landed_on_new_node(objs: dict[str, dict[str, Any]]) -> bool:
        return len(objs) == count and all(
            o.get("status", {}).get("phase") == "Running" for o in objs.values()) and any(
            o["spec"].get("nodeName") not in before for o in objs.values())

    pods = watch_until(kube, Target("v1", "Pod", namespace, label_selector="app=scale"),
                       landed_on_new_node, timeout=timeout(SCALE_UP_S),
                       expected="every pod Running, one of them on a node that did not exist "
                                "before (scale-up)")
    new_nodes = sorted({o["spec"]["nodeName"] for o in pods.values()} - before)
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(sorted(pods.values(), key=name), POD_WIDE))
    evidence.command("kubectl get nodes  # after scale-up",
                     _node_rows(kube.items("v1", "Node"), alloc.resource))
    evidence.note(f"new node(s) created for the pending pod: {', '.join(new_nodes)}")
    for pod in pods.values():
        kube.delete("v1", "Pod", name(pod), namespace, grace=0)
    watch_until(kube, Target("v1", "Node"),
                lambda objs: not any(o["metadata"]["name"] in new_nodes for o in objs.values()),
                timeout=timeout(SCALE_DOWN_S),
                expected=f"node(s) {', '.join(new_nodes)} to be removed after the workload "
                         "was deleted (scale-down)")
    after = kube.items("v1", "Node")
    evidence.command("kubectl get nodes  # after scale-down", _node_rows(after, alloc.resource))
    assert {name(n) for n in after} >= before - {name(n) for n in before_nodes
                                                 if n["metadata"].get("deletionTimestamp")}, \
        "the scale-down removed nodes that existed before the check"
    evidence.note(f"node(s) {', '.join(new_nodes)} removed after the workload was deleted")
