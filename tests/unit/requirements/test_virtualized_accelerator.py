"""virtualized_accelerator decisions, with cases that must fail.

Node and ResourceSlice objects are written inline (synthetic) in the shapes the GPU Operator
(sandbox workloads, vGPU), KubeVirt and Intel's DRA driver (SR-IOV virtual functions) use.
"""

from __future__ import annotations

from typing import Any

from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.requirements import virtualized_accelerator as virt

NVIDIA = get_profile("nvidia")


def node(labels: dict[str, str] | None = None, alloc: dict[str, str] | None = None,
         name: str = "n1") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "status": {"allocatable": alloc or {}}}

def test_plain_gpu_nodes_are_not_virtualized() -> None:
    nodes = [node({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "Tesla-T4"},
                  {"nvidia.com/gpu": "1", "cpu": "4"}),
             node({}, {"nvidia.com/mig-1g.10gb": "7"}, name="mig"),
             node({"nvidia.com/gpu.sharing-strategy": "time-slicing"},
                  {"nvidia.com/gpu.shared": "4"}, name="ts")]
    assert virt.classify_virtualization(nodes) == []


def test_vgpu_guest_label() -> None:
    found = virt.classify_virtualization([node({"nvidia.com/vgpu.present": "true"},
                                               {"nvidia.com/gpu": "1"})])
    assert [(f.kind, f.schedulable_resource) for f in found] == [("vgpu", "nvidia.com/gpu")]


def test_gpu_operator_sandbox_workload_configs() -> None:
    found = virt.classify_virtualization([
        node({"nvidia.com/gpu.workload.config": "vm-passthrough"},
             {"nvidia.com/GA102GL_A10": "1"}, name="pt"),
        node({"nvidia.com/gpu.workload.config": "vm-vgpu"}, {"nvidia.com/GRID_A10-4Q": "6"},
             name="vg")])
    kinds = sorted((f.node, f.kind, f.via) for f in found)
    assert ("pt", "vfio", "extended resource") in kinds
    assert ("pt", "vfio", "node label") in kinds
    assert ("vg", "vgpu", "extended resource") in kinds


def test_sriov_virtual_function_dra_devices() -> None:
    slices = [{"spec": {"nodeName": "n1", "driver": "gpu.intel.com", "devices": [
        {"name": "0000-03-00-1", "attributes": {"sriov": {"bool": True}}},
        {"name": "0000-03-00-0", "attributes": {"sriov": {"bool": False}}}]}}]
    found = virt.classify_virtualization([], slices)
    assert [f.name for f in found] == ["gpu.intel.com/0000-03-00-1"]
    assert found[0].schedulable_resource is None  # a DRA device, claimed not counted


def test_zero_allocatable_is_not_an_offer() -> None:
    assert virt.classify_virtualization([node({}, {"nvidia.com/GRID_T4-1Q": "0"})]) == []


def test_network_card_virtual_functions_are_not_accelerators() -> None:
    nodes = [node({}, {"intel.com/sriov_netdevice": "8", "nvidia.com/hostdev": "4",
                       "openshift.io/mlxnics": "2"}, name="nic")]
    slices = [{"spec": {"nodeName": "nic", "driver": "sriovnetwork.k8snetworkplumbingwg.io",
                        "devices": [{"name": "vf-0", "attributes": {"sriov": {"bool": True}}}]}},
              {"spec": {"nodeName": "nic", "driver": "dra.net",
                        "devices": [{"name": "eth1", "attributes": {"sriov": {"bool": True}}}]}}]
    assert virt.classify_virtualization(nodes, slices) == []
    # an accelerator vendor's VF stays an offer next to them
    nodes[0]["status"]["allocatable"]["amd.com/gpu_vf"] = "2"
    assert [f.name for f in virt.classify_virtualization(nodes, slices)] == ["amd.com/gpu_vf"]


PASSTHROUGH = node({"nvidia.com/gpu.workload.config": "vm-passthrough"},
                   {"nvidia.com/GA102GL_A10": "2", "cpu": "8"}, name="pt")
VGPU = node({"nvidia.com/gpu.workload.config": "vm-vgpu"}, {"nvidia.com/GRID_A10-4Q": "6"},
            name="vg")
VF_SLICE = {"spec": {"nodeName": "intel", "driver": "gpu.intel.com", "devices": [
    {"name": "0000-03-00-1", "attributes": {"sriov": {"bool": True}}}]}}


def test_node_rows_show_the_labels_and_extended_resources() -> None:
    assert virt.node_rows([PASSTHROUGH, node(name="plain", alloc={"cpu": "4"})]) == [
        ["pt", "vm-passthrough", "", "nvidia.com/GA102GL_A10"], ["plain", "", "", ""]]


def test_labels_alone_are_no_device_offer() -> None:
    labelled = node({"nvidia.com/gpu.workload.config": "vm-vgpu"}, name="label-only")
    found = virt.classify_virtualization([labelled])
    assert [(f.kind, f.via) for f in found] == [("vgpu", "node label")]
    assert virt.device_offers(found) == []
    assert virt.pod_target(found) is None
    assert virt.summarize(found) == "1 offer(s) of vgpu"
    assert virt.summarize([]) == "none"


def test_pod_target_is_the_first_schedulable_resource() -> None:
    found = virt.classify_virtualization([VGPU, PASSTHROUGH], [VF_SLICE])
    target = virt.pod_target(found)
    assert target is not None
    assert (target.node, target.kind, target.name) == ("pt", "vfio", "nvidia.com/GA102GL_A10")
    # A DRA virtual function is a device offer, but not one this check can request.
    dra_only = virt.classify_virtualization([], [VF_SLICE])
    assert [f.via for f in virt.device_offers(dra_only)] == ["DRA device"]
    assert virt.pod_target(dra_only) is None


def test_device_globs_per_kind() -> None:
    assert virt.device_globs("vfio", NVIDIA) == ("/dev/vfio/[0-9]*", "/dev/vfio/vfio")
    glob, control = virt.device_globs("vgpu", NVIDIA)
    assert glob == NVIDIA.device_files.glob
    assert control == " ".join(NVIDIA.device_files.control)
    # A vendor whose device files are unknown: nothing to count with.
    assert virt.device_globs("sriov-vf", get_profile("dra-example"))[0] == ""
