"""high_performance_networking decisions, with cases that must fail.

Objects are written inline (synthetic) in the shapes DraNet, the SR-IOV device plugin and the
RDMA shared device plugin use.
"""

from __future__ import annotations

from typing import Any

from pytest_aiconformance.requirements import high_performance_networking as nic


def node(name: str, alloc: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": spec, "status": {"allocatable": alloc}}


DRANET = {"spec": {"nodeName": "gpu-1", "driver": "dra.net", "devices": [
    {"name": "eth1", "attributes": {"dra.net/ifName": {"string": "eth1"},
                                    "dra.net/rdma": {"bool": True}}},
    {"name": "eth2", "attributes": {"dra.net/ifName": {"string": "eth2"}}}]}}
GPU_SLICE = {"spec": {"nodeName": "gpu-1", "driver": "gpu.nvidia.com", "devices": [
    {"name": "gpu-0", "attributes": {"uuid": {"string": "GPU-1"},
                                     "pciAddress": {"string": "0000:01:00.0"}}}]}}


def test_dranet_devices_are_nics_gpus_are_not() -> None:
    offers = nic.classify_nics([], [DRANET, GPU_SLICE])
    assert [(o.node, o.via, o.name, o.count) for o in offers] == [("gpu-1", "DRA", "dra.net", 2)]


def test_device_plugin_nic_resources() -> None:
    offers = nic.classify_nics([node("a", {"rdma/rdma_shared_device_a": "63", "cpu": "8"}),
                                node("b", {"nvidia.com/gpu": "8", "intel.com/sriov_netdevice":
                                           "4", "vpc.amazonaws.com/efa": "0"})])
    assert sorted((o.node, o.name) for o in offers) == [
        ("a", "rdma/rdma_shared_device_a"), ("b", "intel.com/sriov_netdevice")]


def test_no_nics_anywhere() -> None:
    assert nic.classify_nics([node("a", {"nvidia.com/gpu": "1", "cpu": "4"})], [GPU_SLICE]) == []


def test_placement_only_on_capable_nodes() -> None:
    offers = nic.classify_nics([], [DRANET])
    capable = nic.capable_nodes(offers, "DRA", "dra.net")
    assert nic.placement_ok("gpu-1", capable)[0]
    ok, reason = nic.placement_ok("cpu-0", capable)
    assert not ok
    assert "which has none" in reason
    assert not nic.placement_ok(None, capable)[0]


def test_offer_rows_for_the_evidence_table() -> None:
    offers = nic.classify_nics([node("a", {"rdma/hca": "2"})], [DRANET])
    assert nic.offer_rows(offers) == [["gpu-1", "DRA", "dra.net", 2, "eth1, eth2"],
                                      ["a", "extended resource", "rdma/hca", 2, ""]]


def test_dra_offers_are_preferred_over_device_plugin_resources() -> None:
    plugin = nic.NicOffer("a", "extended resource", "intel.com/sriov_netdevice", 4)
    dra_b = nic.NicOffer("b", "DRA", "dra.net", 2)
    dra_a = nic.NicOffer("a", "DRA", "dra.net", 2)
    assert nic.preferred_offer([plugin, dra_b, dra_a]) is dra_a
    assert nic.preferred_offer([plugin]) is plugin


def test_device_class_of_a_driver() -> None:
    classes = [{"metadata": {"name": "gpu.nvidia.com"},
                "spec": {"selectors": [{"cel": {"expression":
                                                'device.driver == "gpu.nvidia.com"'}}]}},
               {"metadata": {"name": "dranet"},
                "spec": {"selectors": [{"cel": {"expression": 'device.driver == "dra.net"'}}]}}]
    assert nic.device_class_for(classes, "dra.net") == "dranet"
    assert nic.device_class_for(classes, "sriovnetwork.io") is None


def test_driver_device_class_selects_the_driver() -> None:
    cls = nic.driver_device_class("aic-nic-x", "dra.net")
    assert cls == {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
                   "metadata": {"name": "aic-nic-x"},
                   "spec": {"selectors": [{"cel": {"expression": 'device.driver == "dra.net"'}}]}}
    assert nic.device_class_for([cls], "dra.net") == "aic-nic-x"


def test_nodes_without_a_nic_leave_out_capable_and_cordoned_ones() -> None:
    nodes = [node("gpu-1", {}), node("cpu-b", {}), node("cordoned", {}, unschedulable=True),
             node("cpu-a", {})]
    assert nic.nodes_without(nodes, {"gpu-1"}) == ["cpu-a", "cpu-b"]
    assert nic.nodes_without(nodes[:1], {"gpu-1"}) == []


def test_scheduling_message() -> None:
    pending = {"status": {"conditions": [
        {"type": "Initialized", "status": "True"},
        {"type": "PodScheduled", "status": "False",
         "message": "0/3 nodes are available: 1 Insufficient rdma/hca."}]}}
    assert nic.scheduling_message(pending) == "0/3 nodes are available: 1 Insufficient rdma/hca."
    assert nic.scheduling_message({"status": {}}) == ""
