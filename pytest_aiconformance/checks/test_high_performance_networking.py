"""high_performance_networking: extra high-performance NICs are discoverable and placed with
the pods that need them (a 1.36 SHOULD).

Essential: nodes offer extra NICs, preferably as DRA devices of a network DRA driver (DraNet,
SR-IOV / RDMA drivers), else as device-plugin resources (RDMA, SR-IOV, EFA). Essential
(scheduler, control plane): a pod that requests one NIC is bound only to a node that offers
one; and a pod that requests one but is pinned to a node without any stays unbound.
No NIC offer anywhere -> failure (Not Implemented).
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
    Target,
    high_performance_networking,
    table,
    watch_until,
    workloads,
)

pytestmark = pytest.mark.needs_containers


REQ = "high_performance_networking"
DRA = "resource.k8s.io/v1"


def survey(kube: Kube, evidence: EvidenceRecorder
           ) -> tuple[list[dict[str, Any]], list[high_performance_networking.NicOffer]]:
    """The nodes and every NIC offer on them, recorded as a table."""
    nodes = kube.items("v1", "Node")
    slices = kube.items(DRA, "ResourceSlice") if kube.serves(DRA, "ResourceSlice") else []
    offers = high_performance_networking.classify_nics(nodes, slices)
    evidence.command("kubectl get resourceslices; kubectl get nodes (allocatable NIC resources)",
                     table(high_performance_networking.offer_rows(offers),
                           ["NODE", "VIA", "DRIVER/RESOURCE", "COUNT", "DEVICES"])
                     if offers else "no NIC devices or resources found")
    return nodes, offers


@pytest.mark.requirement(REQ)
def test_extra_nics_discoverable(kube: Kube, evidence: EvidenceRecorder) -> None:
    """Nodes publish extra NICs, preferably as DRA devices."""
    _nodes, offers = survey(kube, evidence)
    assert offers, ("Not Implemented: no node offers an extra NIC (no network DRA driver "
                    "publishes devices; no RDMA / SR-IOV / EFA device-plugin resource)")
    dra = [o for o in offers if o.via == "DRA"]
    evidence.note(f"{len(offers)} NIC offer(s); "
                  + ("published as DRA devices" if dra else
                     "only as device-plugin resources (DRA is preferred)"))


def nic_pod(pod_name: str, namespace: str, offer: high_performance_networking.NicOffer,
            device_class: str, node: str | None, image: str) -> list[dict[str, Any]]:
    """A pod requesting one NIC of the offer (a claim template for DRA), optionally pinned."""
    objs: list[dict[str, Any]] = []
    if offer.via == "DRA":
        objs.append(workloads.claim_template(f"{pod_name}-nic", namespace, device_class))
        ctr = workloads.container("ctr", ["sleep", "3600"], image=image, claims=["accel"])
        pod = workloads.pod(pod_name, namespace, [ctr],
                            claim_templates={"accel": f"{pod_name}-nic"},
                            node_selector={"kubernetes.io/hostname": node} if node else None)
    else:
        ctr = workloads.container("ctr", ["sleep", "3600"], image=image,
                                  resources_={"limits": {offer.name: "1"}})
        pod = workloads.pod(pod_name, namespace, [ctr],
                            node_selector={"kubernetes.io/hostname": node} if node else None)
    return [*objs, pod]


@pytest.mark.requirement(REQ)
def test_nic_pod_on_capable_node_only(kube: Kube, namespace: str, run_context: RunContext,
                                      evidence: EvidenceRecorder,
                                      timeout: Callable[[float], float],
                                      aic_settings: Settings) -> None:
    """A pod needing a NIC lands only on a node that has one."""
    nodes, offers = survey(kube, evidence)
    assert offers, "no node offers an extra NIC (see ExtraNicsDiscoverable)"
    offer = high_performance_networking.preferred_offer(offers)
    device_class = ""
    if offer.via == "DRA":
        device_class = high_performance_networking.device_class_for(
            kube.items(DRA, "DeviceClass"), offer.name) or ""
        if not device_class:
            device_class = f"aic-nic-{run_context.run_id}"
            run_context.create(high_performance_networking.driver_device_class(device_class,
                                                                               offer.name))
    capable = high_performance_networking.capable_nodes(offers, offer.via, offer.name)
    for obj in nic_pod("needs-nic", namespace, offer, device_class, None,
                       aic_settings.image("probe")):
        run_context.create(obj)
    bound = watch_until(kube, Target("v1", "Pod", namespace, name="needs-nic"),
                        lambda objs: any(o["spec"].get("nodeName") for o in objs.values()),
                        timeout=timeout(120), expected="pod needs-nic bound to a node")
    node = next(iter(bound.values()))["spec"]["nodeName"]
    ok, reason = high_performance_networking.placement_ok(node, capable)
    evidence.command(f"kubectl get pod needs-nic -n {namespace} -o wide",
                     table([["needs-nic", node]], ["NAME", "NODE"]))
    evidence.note(reason)
    assert ok, reason
    without = high_performance_networking.nodes_without(nodes, capable)
    if not without:
        evidence.note("every schedulable node has a NIC: no node to show a refusal on")
        return
    for obj in nic_pod("pinned-no-nic", namespace, offer, device_class, without[0],
                       aic_settings.image("probe")):
        run_context.create(obj)
    final = watch_until(kube, Target("v1", "Pod", namespace, name="pinned-no-nic"),
                        lambda objs: any(o["spec"].get("nodeName") for o in objs.values()),
                        timeout=timeout(30), invert=True,
                        expected=f"pod pinned to {without[0]} (no NIC) to stay unbound")
    pod = next(iter(final.values()))
    msg = high_performance_networking.scheduling_message(pod)
    evidence.command(f"kubectl get pod pinned-no-nic -n {namespace}",
                     f"pinned-no-nic   Pending   <none>   {msg}")
