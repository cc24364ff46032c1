"""secure_accelerator_access decisions on synthetic Pod, node and profile objects, with cases
that must fail: which node is filled past capacity, when the scheduler has refused the extra
pod, and which nodes can show two pods distinct devices.

Node labels follow GPU Feature Discovery (time-slicing, renamed replicas) and GKE's
time-sharing and multi-instance GPU pages.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pytest_aiconformance.cluster.discovery import AcceleratorNode
from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.requirements import secure_accelerator_access

NVIDIA = get_profile("nvidia")
# Time-slicing of a device subset with renamed replicas: the replicated devices are
# advertised as nvidia.com/gpu.shared, the others stay whole as nvidia.com/gpu.
RENAMED_LABELS = {"nvidia.com/gpu.count": "3", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                  "nvidia.com/gpu.replicas": "4",
                  "nvidia.com/gpu.sharing-strategy": "time-slicing"}


# --- nodes whose pods may share a device (left out of the distinct-devices check) -----------


def test_gke_time_sharing_nodes_cannot_show_distinct_devices() -> None:
    gke = AcceleratorNode("g", {"nvidia.com/gpu": "4"}, {
        "cloud.google.com/gke-gpu-sharing-strategy": "time-sharing",
        "cloud.google.com/gke-max-shared-clients-per-gpu": "4"})
    assert secure_accelerator_access.shared_devices(gke, NVIDIA) == (
        "cloud.google.com/gke-gpu-sharing-strategy=time-sharing")
    clients = AcceleratorNode("c", {"nvidia.com/gpu": "4"}, {
        "cloud.google.com/gke-max-shared-clients-per-gpu": "2"})
    assert secure_accelerator_access.shared_devices(clients, NVIDIA) == (
        "cloud.google.com/gke-max-shared-clients-per-gpu=2")
    # MIG partitions are distinct devices: two pods there must see different UUIDs.
    mig = AcceleratorNode("m", {"nvidia.com/gpu": "7"}, {
        "cloud.google.com/gke-gpu-partition-size": "1g.5gb"})
    assert secure_accelerator_access.shared_devices(mig, NVIDIA) == ""


def test_whole_gpus_beside_renamed_replicas_are_not_shared() -> None:
    resources = {"nvidia.com/gpu": "2", "nvidia.com/gpu.shared": "4"}
    mixed = AcceleratorNode("mixed", resources, dict(RENAMED_LABELS))
    assert secure_accelerator_access.shared_devices(mixed, NVIDIA, "nvidia.com/gpu") == ""
    assert secure_accelerator_access.shared_devices(mixed, NVIDIA, "nvidia.com/gpu.shared") == (
        "nvidia.com/gpu.sharing-strategy=time-slicing")
    assert secure_accelerator_access.shared_devices(mixed, NVIDIA) == (
        "nvidia.com/gpu.sharing-strategy=time-slicing")
    # Replicas kept under the plain name: those GPUs are shared.
    plain = AcceleratorNode("plain", {"nvidia.com/gpu": "8"}, dict(RENAMED_LABELS))
    assert secure_accelerator_access.shared_devices(plain, NVIDIA, "nvidia.com/gpu") == (
        "nvidia.com/gpu.sharing-strategy=time-slicing")


def test_nodes_with_two_devices() -> None:
    nodes = [AcceleratorNode("one", {"nvidia.com/gpu": "1"}, {}),
             AcceleratorNode("two", {"nvidia.com/gpu": "2"}, {}),
             AcceleratorNode("dra", {}, {}, dra_devices=4),
             AcceleratorNode("empty", {"nvidia.com/gpu": ""}, {})]
    assert [n.name for n in secure_accelerator_access.multi_device_nodes(
        nodes, "nvidia.com/gpu")] == ["two", "dra"]
    # DRA mode names no resource: only the published devices count.
    assert [n.name for n in secure_accelerator_access.multi_device_nodes(nodes, None)] == ["dra"]


def test_shared_nodes_say_why() -> None:
    ts = AcceleratorNode("ts", {"nvidia.com/gpu": "8"}, dict(RENAMED_LABELS))
    plain = AcceleratorNode("plain", {"nvidia.com/gpu": "2"}, {"nvidia.com/gpu.count": "2"})
    assert secure_accelerator_access.shared_nodes([ts, plain], NVIDIA, "nvidia.com/gpu") == {
        "ts": "nvidia.com/gpu.sharing-strategy=time-slicing"}
    assert secure_accelerator_access.shared_nodes([plain], NVIDIA, "nvidia.com/gpu") == {}


# --- capacity: fill one node past its free accelerators ----------------------------------------


def test_fill_node_with_the_fewest_free() -> None:
    assert secure_accelerator_access.fill_node({"b": 2, "a": 2, "c": 0, "d": 4}) == ("a", 2)
    assert secure_accelerator_access.fill_node({"gpu-0": 8}) == ("gpu-0", 8)


def pod(node: str | None = None, message: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending" if node is None else "Running"}
    if message is not None:
        status["conditions"] = [{"type": "PodScheduled", "status": "False",
                                 "reason": "Unschedulable", "message": message}]
    return {"spec": {"nodeName": node} if node else {}, "status": status}


REFUSED = "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) didn't match " \
          "Pod's node affinity/selector."


def test_unschedulable_reason() -> None:
    assert secure_accelerator_access.unschedulable_reason(pod(None, REFUSED)) == REFUSED
    assert secure_accelerator_access.unschedulable_reason(pod("gpu-0")) == ""
    scheduled = {"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}
    assert secure_accelerator_access.unschedulable_reason(scheduled) == ""


def test_capacity_settled_needs_the_free_bound_and_one_refused() -> None:
    refusal = "Insufficient nvidia.com/gpu"
    settled = [pod("gpu-0"), pod("gpu-0"), pod(None, REFUSED)]
    assert secure_accelerator_access.capacity_settled(settled, 2, refusal)
    # Not yet refused (the scheduler has not tried it): not settled.
    assert not secure_accelerator_access.capacity_settled(
        [pod("gpu-0"), pod("gpu-0"), pod()], 2, refusal)
    # Refused for another reason (e.g. a taint): not the capacity refusal.
    tainted = pod(None, "0/1 nodes are available: 1 node(s) had untolerated taint.")
    assert not secure_accelerator_access.capacity_settled(
        [pod("gpu-0"), pod("gpu-0"), tainted], 2, refusal)
    # All bound: the accelerator was not enforced.
    assert not secure_accelerator_access.capacity_settled(
        [pod("gpu-0"), pod("gpu-0"), pod("gpu-0")], 2, refusal)
    dra = pod(None, "0/2 nodes are available: 1 cannot allocate all claims.")
    assert secure_accelerator_access.capacity_settled([pod("n"), dra], 1,
                                                      "cannot allocate all claims")


# --- the all-devices variable without a request --------------------------------------------


def test_vendor_runtime_class_only_where_the_cluster_has_it() -> None:
    assert NVIDIA.runtime_class == "nvidia"
    assert secure_accelerator_access.vendor_runtime_class(NVIDIA, ["runc", "nvidia"]) == "nvidia"
    assert secure_accelerator_access.vendor_runtime_class(NVIDIA, ["runc"]) is None
    no_class = replace(NVIDIA, runtime_class=None)
    assert secure_accelerator_access.vendor_runtime_class(no_class, ["nvidia"]) is None
