"""high_performance_networking and 1.36 inference decisions, with cases that must fail.

Objects are written inline (synthetic) in the shapes DraNet, the SR-IOV device plugin, the
Gateway API Inference Extension (v1 and v1alpha2 status) and llm-d use.
"""

from __future__ import annotations

from pytest_aiconformance.requirements import advanced_inference_ingress as aii
from pytest_aiconformance.requirements import disaggregated_inference as dis
from pytest_aiconformance.requirements import high_performance_networking as nic


def node(name, alloc):
    return {"metadata": {"name": name}, "status": {"allocatable": alloc}}


DRANET = {"spec": {"nodeName": "gpu-1", "driver": "dra.net", "devices": [
    {"name": "eth1", "attributes": {"dra.net/ifName": {"string": "eth1"},
                                    "dra.net/rdma": {"bool": True}}},
    {"name": "eth2", "attributes": {"dra.net/ifName": {"string": "eth2"}}}]}}
GPU_SLICE = {"spec": {"nodeName": "gpu-1", "driver": "gpu.nvidia.com", "devices": [
    {"name": "gpu-0", "attributes": {"uuid": {"string": "GPU-1"},
                                     "pciAddress": {"string": "0000:01:00.0"}}}]}}


def test_dranet_devices_are_nics_gpus_are_not():
    offers = nic.classify_nics([], [DRANET, GPU_SLICE])
    assert [(o.node, o.via, o.name, o.count) for o in offers] == [("gpu-1", "DRA", "dra.net", 2)]


def test_device_plugin_nic_resources():
    offers = nic.classify_nics([node("a", {"rdma/rdma_shared_device_a": "63", "cpu": "8"}),
                                node("b", {"nvidia.com/gpu": "8", "intel.com/sriov_netdevice":
                                           "4", "vpc.amazonaws.com/efa": "0"})])
    assert sorted((o.node, o.name) for o in offers) == [
        ("a", "rdma/rdma_shared_device_a"), ("b", "intel.com/sriov_netdevice")]


def test_no_nics_anywhere():
    assert nic.classify_nics([node("a", {"nvidia.com/gpu": "1", "cpu": "4"})], [GPU_SLICE]) == []


def test_placement_only_on_capable_nodes():
    offers = nic.classify_nics([], [DRANET])
    capable = nic.capable_nodes(offers, "DRA", "dra.net")
    assert nic.placement_ok("gpu-1", capable)[0]
    ok, reason = nic.placement_ok("cpu-0", capable)
    assert not ok
    assert "which has none" in reason
    assert not nic.placement_ok(None, capable)[0]


def pool(parents, version="v1"):
    status = {"parents": parents} if version == "v1" else {"parent": parents}
    return {"metadata": {"name": "vllm-pool", "namespace": "llm"},
            "spec": {"selector": {"matchLabels": {"app": "vllm"}},
                     "endpointPickerRef": {"name": "vllm-epp", "port": {"number": 9002}}},
            "status": status}


def parent(**conds):
    return {"parentRef": {"name": "inference-gateway"},
            "conditions": [{"type": k, "status": v} for k, v in conds.items()]}


def test_pool_accepted_and_resolved():
    assert aii.pool_accepted(pool([parent(Accepted="True", ResolvedRefs="True")]))[0]
    assert aii.pool_accepted(pool([parent(Accepted="True")], "v1alpha2"))[0]


def test_pool_not_accepted_fails():
    assert not aii.pool_accepted(pool([parent(Accepted="False")]))[0]
    assert not aii.pool_accepted(pool([]))[0]
    ok, reason = aii.pool_accepted(pool([parent(Accepted="True", ResolvedRefs="False")]))
    assert not ok
    assert "ResolvedRefs=False" in reason


def test_endpoint_picker_refs():
    assert aii.endpoint_picker(pool([])) == ("vllm-epp", 9002)
    old = {"spec": {"extensionRef": {"name": "epp", "portNumber": 9002}}}
    assert aii.endpoint_picker(old) == ("epp", 9002)
    assert aii.endpoint_picker({"spec": {}}) is None


def test_ready_endpoints():
    slices = [{"endpoints": [{"conditions": {"ready": True}}, {"conditions": {"ready": False}},
                             {"conditions": {}}]}]
    assert aii.ready_endpoints(slices) == 1
    assert aii.ready_endpoints([]) == 0


def pod(name, **labels):
    return {"metadata": {"name": name, "labels": labels}}


def test_llm_d_roles():
    roles = dis.classify_roles([pod("p-0", **{"llm-d.ai/role": "prefill"}),
                                pod("d-0", **{"llm-d.ai/role": "decode"}),
                                pod("d-1", **{"llm-d.ai/role": "decode"}), pod("other")])
    assert roles is not None
    assert roles.prefill == ("p-0",)
    assert roles.decode == ("d-0", "d-1")
    assert dis.separate_pods(roles)[0]


def test_only_decode_is_not_disaggregated():
    assert dis.classify_roles([pod("d-0", **{"llm-d.ai/role": "decode"})]) is None
    assert dis.classify_roles([]) is None


def test_request_id_in_both_logs():
    rid = "aic-abc123-0011223344"
    pre = {"p-0": f"INFO prefill request {rid} 12 tokens\n", "p-1": "idle\n"}
    dec = {"d-0": f"INFO decode x-request-id={rid} done\n"}
    ok, reason = dis.request_id_in_both(pre, dec, rid)
    assert ok, reason
    assert dis.log_lines_with(pre["p-0"], rid).startswith("INFO prefill")


def test_request_id_only_in_decode_fails():
    rid = "aic-abc123-0011223344"
    ok, reason = dis.request_id_in_both({"p-0": "other request\n"}, {"d-0": rid}, rid)
    assert not ok
    assert "prefill" in reason


def test_short_request_id_is_refused():
    assert not dis.request_id_in_both({"p": "a"}, {"d": "a"}, "a")[0]
