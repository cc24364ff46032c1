"""Named lab shapes and the platform traits they switch on, with no lab process: parsing,
naming, the objects each trait makes, and what the checks' allocation logic reads from them
(capacity from ResourceSlices and claims, tolerations from the nodes' taints).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from aiconformance_lab import LabError, LabShape, karpenter, objects
from aiconformance_lab.__main__ import main as lab_main
from aiconformance_lab.shape import parse_taint, shape_file, shape_names

from pytest_aiconformance.cluster import allocations, probes, workloads
from pytest_aiconformance.cluster.discovery import AcceleratorNode, ClusterInfo
from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.cluster.run_objects import RunContext
from pytest_aiconformance.requirements import secure_accelerator_access
from pytest_aiconformance.run.lifecycle import lab_shape_file as _lab_shape

NAMES = ["amd", "busy", "dra-only", "mig", "scale-from-zero", "tainted-gpus"]


# --- names and files ------------------------------------------------------------------------

def test_named_shapes_are_packaged() -> None:
    assert shape_names() == NAMES
    for name in NAMES:
        assert shape_file(name).is_file()
        assert shape_file(name).name == f"{name}.yaml"


def test_each_named_shape_says_what_it_mimics() -> None:
    base = {"gpu_nodes": 2, "gpus_per_node": 1, "cpu_nodes": 1}
    assert LabShape.load("dra-only") == LabShape(**{**base, "gpus_per_node": 2},
                                                 extended_resources=False,
                                                 dra_driver="gpu.nvidia.com")
    assert LabShape.load("tainted-gpus") == LabShape(**base, gpu_taint="sku=gpu:NoSchedule")
    assert LabShape.load("mig") == LabShape(**{**base, "gpu_nodes": 1}, mig=True,
                                            mig_strategy="mixed")
    assert LabShape.load("busy") == LabShape(**base, busy=True)
    assert LabShape.load("amd") == LabShape(**base, vendor="amd", dra_driver="gpu.amd.com")
    assert LabShape.load("scale-from-zero") == LabShape(**{**base, "gpu_nodes": 0},
                                                        karpenter=True)


def test_a_file_wins_over_a_name_and_paths_are_never_names(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "busy").write_text("gpu_nodes: 3\n")
    assert shape_file("busy") == Path("busy")
    assert LabShape.load("busy") == LabShape(gpu_nodes=3)
    with pytest.raises(LabError, match=r"^file not found: missing\.yaml$"):
        shape_file("missing.yaml")
    with pytest.raises(LabError, match=r"^file not found: sub/busy$"):
        shape_file("sub/busy")


def test_unknown_name_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(LabError) as err:
        shape_file("dra_only")
    assert str(err.value) == ("unknown lab shape 'dra_only'; known: amd, busy, dra-only, mig, "
                              "scale-from-zero, tainted-gpus (or a YAML file)")


def test_aic_lab_shape_option_resolves_names(tmp_path: Path) -> None:
    assert _lab_shape("mig") == shape_file("mig")
    own = tmp_path / "own.yaml"
    own.write_text("gpu_nodes: 1\n")
    assert _lab_shape(str(own)) == own
    assert _lab_shape("") is None
    with pytest.raises(pytest.UsageError) as err:
        _lab_shape("gpu-only")
    assert str(err.value) == ("--aic-lab-shape: unknown lab shape 'gpu-only'; known: amd, busy, "
                              "dra-only, mig, scale-from-zero, tainted-gpus (or a YAML file)")
    with pytest.raises(pytest.UsageError, match=r"^--aic-lab-shape: file not found: "):
        _lab_shape(str(tmp_path / "nope.yaml"))


def test_cli_takes_a_name_with_options_on_top(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from aiconformance_lab import __main__ as cli

    seen: list[LabShape] = []

    def fake_up(self: Any, shape: LabShape, progress: Any) -> Any:
        seen.append(shape)
        raise LabError("stop here")

    monkeypatch.setattr(cli.Lab, "up", fake_up)
    assert lab_main(["up", "--shape", "tainted-gpus", "--gpu-nodes", "1", "--busy"]) == 1
    assert seen == [LabShape.load("tainted-gpus").replace(gpu_nodes=1, busy=True)]
    assert lab_main(["up", "--no-workload-api", "--kueue"]) == 1
    assert seen[-1] == LabShape().replace(workload_api=False, kueue=True)
    assert lab_main(["up", "--mig", "single", "--no-extended-resources"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "error: lab shape: mig needs extended_resources (the device plugin " \
                      "advertises MIG)"
    assert lab_main(["up", "--shape", "h100"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: unknown lab shape 'h100'; known: amd, busy, dra-only, mig, scale-from-zero, "
        "tainted-gpus (or a YAML file)"]


# --- validation -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "taint"), [
    ("sku=gpu:NoSchedule", {"key": "sku", "value": "gpu", "effect": "NoSchedule"}),
    ("nvidia.com/gpu=present:NoSchedule",
     {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}),
    ("nvidia.com/gpu:NoExecute", {"key": "nvidia.com/gpu", "effect": "NoExecute"}),
    ("dedicated=:PreferNoSchedule", {"key": "dedicated", "effect": "PreferNoSchedule"}),
])
def test_taints_in_kubectls_form(text: str, taint: dict[str, str]) -> None:
    assert parse_taint(text) == taint
    assert LabShape(gpu_taint=text).taint == taint


@pytest.mark.parametrize("text", ["sku=gpu", "sku=gpu:NoScheduling", ":NoSchedule",
                                  "a b:NoSchedule", "sku=gpu:"])
def test_malformed_taints_are_refused(text: str) -> None:
    with pytest.raises(LabError, match=r"^lab shape: gpu_taint must look like key\[=value\]"):
        LabShape(gpu_taint=text)


@pytest.mark.parametrize(("changes", "message"), [
    ({"vendor": "intel"}, "lab shape: vendor must be one of nvidia, amd, got 'intel'"),
    ({"mig_strategy": "none"}, "lab shape: mig_strategy must be one of mixed, single, "
                               "got 'none'"),
    ({"dra_driver": "gpu.intel.com"}, "lab shape: dra_driver must be one of gpu.example.com, "
                                      "gpu.nvidia.com, gpu.amd.com, got 'gpu.intel.com'"),
    ({"extended_resources": False, "dra": False},
     "lab shape: extended_resources=false leaves GPUs to DRA alone, so it needs dra"),
    ({"mig": True, "vendor": "amd"}, "lab shape: mig is NVIDIA's (vendor must be nvidia)"),
    ({"mig": True, "time_sliced_nodes": 1},
     "lab shape: mig and time_sliced_nodes do not combine here"),
    ({"vendor": "amd", "time_sliced_nodes": 1},
     "lab shape: time_sliced_nodes are NVIDIA's (vendor must be nvidia)"),
    ({"busy": "yes"}, "lab shape: busy must be true or false"),
    ({"karpenter": True, "extended_resources": False},
     "lab shape: karpenter needs extended_resources (Karpenter provisions for pods asking for "
     "an extended resource; it ignores DRA claims)"),
    ({"workload_api": 1}, "lab shape: workload_api must be true or false"),
    ({"gpu_taint": 3}, "lab shape: gpu_taint must be a string, got 3"),
])
def test_bad_combinations_are_one_line(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(LabError) as err:
        LabShape(**changes)
    assert str(err.value) == message


def test_state_files_of_older_labs_still_load() -> None:
    old = {f.name: getattr(LabShape(), f.name) for f in dataclasses.fields(LabShape)
           if f.name in ("gpu_nodes", "gpus_per_node", "time_sliced_nodes",
                         "time_slice_replicas", "cpu_nodes", "dra", "metrics_server",
                         "dra_api", "kuberay", "kueue")}
    # written before workload_api existed: such a lab runs without the Workload API, and
    # must not be reused for one that needs it
    assert LabShape.from_dict(old) == LabShape(workload_api=False)
    assert LabShape.from_dict(LabShape.load("amd").to_dict()) == LabShape.load("amd")
    assert LabShape.from_dict(LabShape().to_dict()) == LabShape()


def test_shape_files_leave_the_workload_api_on_unless_they_say_otherwise(tmp_path: Path) -> None:
    """A shape file is not a state file: a key it does not name keeps its default."""
    assert LabShape().workload_api
    assert all(LabShape.load(name).workload_api for name in NAMES)
    off = tmp_path / "off.yaml"
    off.write_text("workload-api: false\ngpu_nodes: 1\n")
    assert LabShape.load(off) == LabShape(gpu_nodes=1, workload_api=False)


def test_describe_names_the_traits() -> None:
    assert LabShape.load("dra-only").describe() == (
        "gpu_nodes=2 gpus_per_node=2 time_sliced_nodes=0 cpu_nodes=1 dra=on "
        "dra_driver=gpu.nvidia.com metrics_server=on extended_resources=off")
    assert LabShape.load("mig").describe().endswith("metrics_server=on mig=mixed")
    assert LabShape.load("amd").describe().endswith("vendor=amd")


# --- the objects each trait makes -----------------------------------------------------------

def _nodes(shape: LabShape) -> dict[str, dict[str, Any]]:
    return {n["metadata"]["name"]: n for n in objects.nodes(shape)}


def test_dra_only_nodes_advertise_no_gpu_and_slices_one_device_per_gpu() -> None:
    shape = LabShape.load("dra-only")
    nodes = _nodes(shape)
    gpu = nodes["aic-gpu-0"]
    assert not any(k.startswith("nvidia.com/") for k in gpu["status"]["allocatable"])
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.deploy.device-plugin"] == "false"
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.count"] == "2"
    device_class, *slices = objects.dra_objects(shape)
    assert device_class["metadata"]["name"] == "gpu.nvidia.com"
    assert device_class["spec"]["selectors"] == [{"cel": {"expression": (
        "device.driver == 'gpu.nvidia.com' && "
        "device.attributes['gpu.nvidia.com'].type == 'gpu'")}}]
    assert [s["spec"]["nodeName"] for s in slices] == ["aic-gpu-0", "aic-gpu-1"]
    devices = slices[0]["spec"]["devices"]
    assert [d["name"] for d in devices] == ["gpu-0", "gpu-1"]
    assert devices[1]["attributes"]["index"] == {"int": 1}
    assert devices[1]["attributes"]["type"] == {"string": "gpu"}
    assert devices[1]["attributes"]["uuid"]["string"].startswith("GPU-")
    assert objects.busy_objects(shape) == []


def test_tainted_gpu_pool_taints_gpu_nodes_only() -> None:
    nodes = _nodes(LabShape.load("tainted-gpus").replace(time_sliced_nodes=1))
    taint = [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]
    assert {n: node.get("spec", {}).get("taints") for n, node in nodes.items()} == {
        "aic-gpu-0": taint, "aic-gpu-1": taint, "aic-gpu-ts-0": taint, "aic-cpu-0": None}


def test_amd_nodes_and_driver() -> None:
    shape = LabShape.load("amd")
    gpu = _nodes(shape)["aic-gpu-0"]
    labels = gpu["metadata"]["labels"]
    assert gpu["status"]["allocatable"]["amd.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in gpu["status"]["capacity"]
    assert labels["amd.com/gpu.product-name"] == "AMD_Instinct_MI300X_OAM"
    assert labels["amd.com/gpu.family"] == "AI"
    assert labels["aic.lab/role"] == "gpu"
    assert not any(k.startswith("nvidia.com/") for k in labels)
    device_class, *slices = objects.dra_objects(shape)
    assert device_class["metadata"]["name"] == "gpu.amd.com"
    device = slices[0]["spec"]["devices"][0]
    assert device["attributes"]["cardIndex"] == {"int": 0}
    assert "uuid" not in device["attributes"]  # the ROCm driver publishes none


@pytest.mark.parametrize(("strategy", "resources", "labels"), [
    ("mixed", {"nvidia.com/gpu": "0", "nvidia.com/mig-1g.10gb": "14"},
     {"nvidia.com/mig.strategy": "mixed", "nvidia.com/mig-1g.10gb.count": "14",
      "nvidia.com/gpu.count": "2", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}),
    ("single", {"nvidia.com/gpu": "14"},
     {"nvidia.com/mig.strategy": "single", "nvidia.com/gpu.count": "14",
      "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"}),
])
def test_mig_strategies(strategy: str, resources: dict[str, str],
                        labels: dict[str, str]) -> None:
    shape = LabShape.load("mig").replace(gpus_per_node=2, mig_strategy=strategy)
    gpu = _nodes(shape)["aic-gpu-0"]
    gpu_resources = {k: v for k, v in gpu["status"]["allocatable"].items()
                     if k.startswith("nvidia.com/")}
    assert gpu_resources == resources
    got = gpu["metadata"]["labels"]
    assert {k: got[k] for k in labels} == labels
    assert got["nvidia.com/mig.capable"] == "true"
    assert got["nvidia.com/mig.config"] == "all-1g.10gb"


def test_busy_pods_hold_every_gpu_and_device() -> None:
    shape = LabShape.load("busy").replace(gpu_nodes=1, time_sliced_nodes=1)
    docs = objects.busy_objects(shape)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("ResourceClaim", "busy-aic-gpu-0"), ("Pod", "busy-aic-gpu-0"),
        ("ResourceClaim", "busy-aic-gpu-ts-0"), ("Pod", "busy-aic-gpu-ts-0")]
    assert {d["metadata"]["namespace"] for d in docs} == {"aic-lab-busy"}
    claim, pod = docs[0], docs[1]
    assert claim["spec"]["devices"]["requests"][0]["exactly"] == {
        "deviceClassName": "gpu.example.com", "allocationMode": "ExactCount", "count": 8}
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "aic-gpu-0"}
    assert pod["spec"]["resourceClaims"] == [{"name": "gpus",
                                              "resourceClaimName": "busy-aic-gpu-0"}]
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"nvidia.com/gpu": "1"}, "claims": [{"name": "gpus"}]}
    shared = docs[3]["spec"]["containers"][0]["resources"]["limits"]
    assert shared == {"nvidia.com/gpu": "4"}  # 1 GPU x 4 time-slice replicas
    no_dra = objects.busy_objects(shape.replace(dra=False))
    assert [d["kind"] for d in no_dra] == ["Pod", "Pod"]
    mixed = objects.busy_objects(LabShape.load("mig").replace(busy=True, dra=False))
    assert mixed[0]["spec"]["containers"][0]["resources"]["limits"] == {
        "nvidia.com/mig-1g.10gb": "7"}  # the 0 nvidia.com/gpu is not asked for


def test_karpenter_pool_makes_nodes_like_the_labs_gpu_nodes() -> None:
    """The NodePool's labels and taint and the instance type's resources are a GPU node's."""
    shape = LabShape.load("tainted-gpus").replace(karpenter=True, gpus_per_node=2)
    node = _nodes(shape)["aic-gpu-0"]
    node_class, pool = karpenter.cluster_objects(shape)
    assert (node_class["kind"], node_class["metadata"]["name"]) == ("KWOKNodeClass", "aic-lab-gpu")
    template = pool["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert labels == {k: v for k, v in node["metadata"]["labels"].items()
                      if "kubernetes.io/" not in k}  # Karpenter sets arch, os and hostname
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.count"] == "2"
    assert template["spec"]["taints"] == [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]
    assert template["spec"]["nodeClassRef"]["name"] == "aic-lab-gpu"
    assert {"key": "node.kubernetes.io/instance-type", "operator": "In",
            "values": ["aic-gpu-2gpu"]} in template["spec"]["requirements"]
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert pool["spec"]["limits"] == {"nvidia.com/gpu": "8"}  # 4 nodes at most
    [itype] = karpenter.instance_types(shape)
    assert itype["name"] == "aic-gpu-2gpu"
    assert itype["resources"] == node["status"]["capacity"]
    assert itype["resources"]["nvidia.com/gpu"] == "2"
    assert itype["offerings"][0]["Available"] is True
    # no taint, MIG: the pool asks for nothing else, and offers the MIG instances
    mig = LabShape.load("mig").replace(karpenter=True)
    assert "taints" not in karpenter.cluster_objects(mig)[1]["spec"]["template"]["spec"]
    assert karpenter.instance_types(mig)[0]["resources"]["nvidia.com/mig-1g.10gb"] == "7"
    assert karpenter.cluster_objects(mig)[1]["spec"]["limits"] == {
        "nvidia.com/mig-1g.10gb": "28"}


def test_karpenter_process_names_its_state_dir(tmp_path: Path) -> None:
    """The command line names the state dir: that is how `down` knows the process is its own."""
    from aiconformance_lab.spec import SpecInputs
    from aiconformance_lab.statedir import StateDir

    state = StateDir(tmp_path)
    inputs = SpecInputs(LabShape(karpenter=True), {"karpenter": Path("/bin/karpenter")},
                        {"karpenter": 1001, "karpenter-metrics": 1002},
                        None,  # type: ignore[arg-type]  # the PKI is not read
                        state)
    spec = karpenter.spec(inputs)
    assert spec.argv[0] == "/bin/karpenter"
    assert f"--instance-types-file-path={tmp_path}/etc/karpenter-instance-types.json" in spec.argv
    assert "--disable-leader-election=true" in spec.argv
    assert spec.health_url == "http://127.0.0.1:1001/readyz"
    assert spec.env == {"KUBECONFIG": f"{tmp_path}/etc/admin.kubeconfig"}


# --- what the checks read from such clusters ------------------------------------------------

class FakeKube:
    """Lists and gets of the kinds the allocation logic reads, from a fixed set of objects."""

    def __init__(self, objs: list[dict[str, Any]]) -> None:
        self.objs = objs

    def items(self, api_version: str, kind: str, namespace: str | None = None,
              label_selector: str | None = None,
              field_selector: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.objs if o["kind"] == kind]

    def get_or_none(self, api_version: str, kind: str, name: str,
                    namespace: str | None = None) -> dict[str, Any] | None:
        return next((o for o in self.objs if o["kind"] == kind
                     and o["metadata"]["name"] == name), None)


def _allocated(claim: dict[str, Any], node: str, devices: list[str]) -> dict[str, Any]:
    driver = claim["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"]
    return {**claim, "status": {"allocation": {"devices": {"results": [
        {"request": "gpus", "driver": driver, "pool": node, "device": d} for d in devices]}}}}


def _info(shape: LabShape) -> ClusterInfo:
    info = ClusterInfo(server="https://lab", git_version="v1.35.4", major=1, minor=35,
                       group_versions=["v1", "resource.k8s.io/v1"], nodes=3)
    for node in objects.nodes(shape):
        res = {k: v for k, v in node["status"]["allocatable"].items() if "/" in k}
        if node["metadata"]["labels"]["aic.lab/role"] == "gpu":
            info.accelerator_nodes.append(AcceleratorNode(
                node["metadata"]["name"], res, node["metadata"]["labels"],
                objects.dra_devices_per_node(shape), node.get("spec", {}).get("taints", [])))
    info.device_classes = [shape.dra_driver] if shape.dra else []
    return info


def test_dra_capacity_is_the_class_devices_minus_allocated_claims() -> None:
    shape = LabShape.load("dra-only")
    info = _info(shape)
    alloc = allocations.choose_allocation(info, get_profile("nvidia"), "auto")
    assert (alloc.mode, alloc.device_class) == ("dra", "gpu.nvidia.com")
    assert alloc.refusal == "cannot allocate all claims"
    claim = objects._busy_claim({"name": "c", "namespace": "t"}, "gpu.nvidia.com", 1)
    kube = FakeKube([*objects.dra_objects(shape), _allocated(claim, "aic-gpu-1", ["gpu-0"])])
    assert allocations.allocatable_per_node(kube, info, alloc) == {"aic-gpu-0": 2, "aic-gpu-1": 2}
    assert allocations.free_accelerators(kube, info, alloc) == {"aic-gpu-0": 2, "aic-gpu-1": 1}


def test_device_class_selects_by_driver_and_attribute() -> None:
    shape = LabShape.load("dra-only")
    slices = objects.dra_objects(shape)[1:]
    slices[0]["spec"]["devices"][1]["attributes"]["type"] = {"string": "mig"}
    older = {**slices[1], "spec": {**slices[1]["spec"], "pool": {
        "name": "aic-gpu-1", "generation": 0, "resourceSliceCount": 1}}}
    kube = FakeKube([objects.dra_objects(shape)[0], *slices, older])
    devices = allocations.class_devices(kube, "gpu.nvidia.com")
    assert {n: sorted(d[2] for d in devs) for n, devs in devices.items()} == {
        "aic-gpu-0": ["gpu-0"], "aic-gpu-1": ["gpu-0", "gpu-1"]}
    selector = allocations.parse_device_class({"spec": {"selectors": [{"cel": {"expression":
        'device.driver == "gpu.amd.com" && device.attributes["gpu.amd.com"].cardIndex == 0'}}]}})
    assert selector == allocations.DeviceSelector(frozenset({"gpu.amd.com"}),
                                              (("gpu.amd.com", "cardIndex", "0"),))
    # a class whose CEL names no driver: the profile's drivers' devices, never another's
    vague = {**objects.dra_objects(shape)[0], "spec": {"selectors": [{"cel": {
        "expression": "device.attributes['gpu.nvidia.com'].type == 'gpu'"}}]}}
    other = {**slices[0], "spec": {**slices[0]["spec"], "driver": "gpu.example.com"}}
    kube = FakeKube([vague, other, slices[1]])
    devices = allocations.class_devices(kube, "gpu.nvidia.com", ("gpu.nvidia.com",))
    assert {n: len(d) for n, d in devices.items()} == {"aic-gpu-1": 2}


def test_busy_cluster_is_not_observable_in_both_modes() -> None:
    shape = LabShape.load("busy")
    info = _info(shape)
    docs = objects.busy_objects(shape)
    held = [_allocated(d, d["metadata"]["name"].removeprefix("busy-"),
                       [f"gpu-{i}" for i in range(8)]) for d in docs if d["kind"] ==
            "ResourceClaim"]
    kube = FakeKube([*objects.dra_objects(shape), *held])
    alloc = allocations.choose_allocation(info, get_profile("dra-example"), "auto")
    total = allocations.allocatable_per_node(kube, info, alloc)
    free = allocations.free_accelerators(kube, info, alloc)
    assert free == {"aic-gpu-0": 0, "aic-gpu-1": 0}
    with pytest.raises(pytest.skip.Exception) as err:
        allocations.require_free_accelerator(free, total, alloc, "nothing to fill")
    assert str(err.value) == (
        "not observable here: every device of DeviceClass gpu.example.com is allocated "
        "(aic-gpu-0: 8 of 8 in use, aic-gpu-1: 8 of 8 in use), so nothing to fill")
    with pytest.raises(AssertionError, match=r"^no node offers a nvidia\.com/gpu$"):
        allocations.require_free_accelerator({}, {}, allocations.Allocation(
            "device-plugin", get_profile("nvidia"), resource="nvidia.com/gpu"), "x")
    allocations.require_free_accelerator({"a": 1}, {"a": 2}, alloc, "x")  # one free: go on


def test_mig_mixed_picks_the_mig_resource_not_the_zero_gpu() -> None:
    info = _info(LabShape.load("mig").replace(dra=False))
    alloc = allocations.choose_allocation(info, get_profile("nvidia"), "auto")
    assert alloc.resource == "nvidia.com/mig-1g.10gb"
    assert alloc.refusal == "Insufficient nvidia.com/mig-1g.10gb"


def test_accelerator_pod_asks_the_chosen_way() -> None:
    profile = get_profile("nvidia")
    ctr = workloads.container("c", ["sleep", "1"], image="x",
                              resources_={"limits": {"cpu": "200m"}})
    plugin = allocations.Allocation("device-plugin", profile, resource="nvidia.com/gpu")
    pod = allocations.accelerator_pod("p", "ns", plugin, ctr)
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "200m", "nvidia.com/gpu": "1"}}
    assert "resourceClaims" not in pod["spec"]
    assert allocations.claim_objects(plugin, "ns") == []
    dra = allocations.Allocation("dra", profile, device_class="gpu.nvidia.com")
    pod = allocations.accelerator_pod("p", "ns", dra, ctr, claim_template="one")
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "200m"}, "claims": [{"name": "accel"}]}
    assert pod["spec"]["resourceClaims"] == [{"name": "accel",
                                              "resourceClaimTemplateName": "one"}]
    assert [o["kind"] for o in allocations.claim_objects(dra, "ns")] == ["ResourceClaimTemplate"]
    assert ctr["resources"] == {"limits": {"cpu": "200m"}}  # the caller's container untouched


def test_pods_tolerate_the_taints_found_on_accelerator_nodes() -> None:
    info = _info(LabShape.load("tainted-gpus"))
    for node in info.accelerator_nodes:
        node.taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
    info.accelerator_nodes[0].taints.append({"key": "pool", "effect": "NoExecute"})
    assert info.accelerator_taints() == [
        {"key": "sku", "value": "gpu", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        {"key": "pool", "effect": "NoExecute"}]
    before = workloads.pod("p", "ns", [])["spec"]["tolerations"]
    ctx = RunContext(None, "r1", tolerations=workloads.tolerations_for(
        info.accelerator_taints()))
    # the run context adds the nodes' taints to every pod spec it creates (a node's condition
    # is never tolerated), templates included; the builder's own list is left as it was
    nodes = [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
             {"key": "pool", "operator": "Exists", "effect": "NoExecute"}]
    assert ctx.labelled(workloads.pod("p", "ns", []))["spec"]["tolerations"] == [*before, *nodes]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"template": {"spec": workloads.pod("p", "ns", [])["spec"]}}}
    assert ctx.labelled(job)["spec"]["template"]["spec"]["tolerations"] == [*before, *nodes]
    assert workloads.pod("p", "ns", [])["spec"]["tolerations"] == before


def test_shared_devices_are_recognised() -> None:
    """A time-sliced node's pods may rightly share one device: no distinct-device proof there."""
    nvidia = get_profile("nvidia")
    info = _info(LabShape(gpu_nodes=1, time_sliced_nodes=1, gpus_per_node=2))
    reasons = {n.name: secure_accelerator_access.shared_devices(n, nvidia)
               for n in info.accelerator_nodes}
    assert sorted(reasons.values()) == ["", "nvidia.com/gpu.sharing-strategy=time-slicing"]
    plain = AcceleratorNode("n", {"nvidia.com/gpu.shared": "8"}, {})
    assert (secure_accelerator_access.shared_devices(plain, nvidia)
            == "advertises nvidia.com/gpu.shared")
    replicas = AcceleratorNode("r", {"nvidia.com/gpu": "8"}, {"nvidia.com/gpu.replicas": "4"})
    assert secure_accelerator_access.shared_devices(replicas, nvidia) == "nvidia.com/gpu.replicas=4"


def _ran(started: str, finished: str) -> dict[str, object]:
    return {"status": {"containerStatuses": [{"state": {"terminated": {
        "startedAt": started, "finishedAt": finished, "exitCode": 0}}}]}}


def test_ran_together_needs_every_pod_running_at_once() -> None:
    together = [_ran("2026-11-30T07:00:01Z", "2026-11-30T07:00:21Z"),
                _ran("2026-11-30T07:00:03Z", "2026-11-30T07:00:23Z")]
    assert probes.ran_together(together)
    one_after_another = [_ran("2026-11-30T07:00:01Z", "2026-11-30T07:00:02Z"),
                         _ran("2026-11-30T07:00:05Z", "2026-11-30T07:00:06Z")]
    assert not probes.ran_together(one_after_another)
    assert not probes.ran_together([{"status": {}}, *together])  # no record: no proof


def test_pods_with_a_device_use_the_vendors_runtime_class_where_it_exists() -> None:
    info = _info(LabShape(gpu_nodes=1, cpu_nodes=0))
    nvidia = get_profile("nvidia")
    alloc = allocations.choose_allocation(info, nvidia, "device-plugin")
    assert alloc.runtime_class == ""  # the lab has no RuntimeClass nvidia
    info.runtime_classes = ["nvidia"]
    alloc = allocations.choose_allocation(info, nvidia, "device-plugin")
    assert alloc.runtime_class == "nvidia"
    ctr = workloads.container("c", ["true"], image="busybox")
    pod = allocations.accelerator_pod("p", "ns", alloc, ctr)
    assert pod["spec"]["runtimeClassName"] == "nvidia"
    assert probes.probe_pod("q", "ns", [ctr], alloc=alloc)["spec"]["runtimeClassName"] == "nvidia"
    assert "runtimeClassName" not in probes.probe_pod("r", "ns", [ctr])["spec"]


# --- the control plane's command lines ------------------------------------------------------

def _control_plane(shape: LabShape, tmp_path: Path) -> dict[str, list[str]]:
    from aiconformance_lab import controlplane
    from aiconformance_lab.pki import PKIPaths
    from aiconformance_lab.spec import SpecInputs
    from aiconformance_lab.statedir import StateDir

    ports = {name: 30000 + i for i, name in enumerate(
        ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler"))}
    inputs = SpecInputs(shape, {"aiclab": tmp_path / "aiclab"}, ports,
                        PKIPaths(tmp_path / "pki"), StateDir(tmp_path))
    return {spec.name: spec.argv for spec in controlplane.specs(inputs)}


def _flags(argv: list[str], name: str) -> list[str]:
    return [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]


def test_the_workload_api_turns_on_its_gates_and_api_version(tmp_path: Path) -> None:
    """Default lab: GenericWorkload and GangScheduling on the API server and the scheduler,
    scheduling.k8s.io/v1alpha1 served; neither gate on etcd or the controller-manager."""
    argv = _control_plane(LabShape(), tmp_path)
    gates = "GenericWorkload=true,GangScheduling=true"
    assert _flags(argv["apiserver"], "feature-gates") == [gates]
    assert _flags(argv["scheduler"], "feature-gates") == [gates]
    assert _flags(argv["apiserver"], "runtime-config") == ["scheduling.k8s.io/v1alpha1=true"]
    assert not _flags(argv["controller-manager"], "feature-gates")
    assert not any("feature-gates" in a for a in argv["etcd"])


def test_without_the_workload_api_nothing_alpha_is_on(tmp_path: Path) -> None:
    argv = _control_plane(LabShape(workload_api=False), tmp_path)
    for name in ("apiserver", "scheduler"):
        assert not _flags(argv[name], "feature-gates"), argv[name]
        assert not _flags(argv[name], "runtime-config"), argv[name]
    no_dra = _control_plane(LabShape(workload_api=False, dra=False, dra_api=False), tmp_path)
    assert _flags(no_dra["apiserver"], "runtime-config") == ["resource.k8s.io/v1=false"]


def test_one_runtime_config_flag_carries_both_api_switches(tmp_path: Path) -> None:
    argv = _control_plane(LabShape(dra=False, dra_api=False), tmp_path)["apiserver"]
    assert _flags(argv, "runtime-config") == [
        "resource.k8s.io/v1=false,scheduling.k8s.io/v1alpha1=true"]
    assert "--authorization-mode=RBAC" in argv


def test_describe_says_when_the_workload_api_is_off() -> None:
    assert "workload_api" not in LabShape().describe()
    assert LabShape(workload_api=False).describe().split()[4:6] == ["dra=on",
                                                                   "workload_api=off"]


def test_up_flags_for_the_real_node_variants() -> None:
    """Every real-node shape key has an `up` flag (negative variants by hand, no YAML file)."""
    from aiconformance_lab.__main__ import _parser, _shape

    args = _parser().parse_args([
        "up", "--real-nodes", "1", "--gateway", "--prometheus", "--shared-gpus", "1",
        "--gpu-injection", "runtime-envvar", "--gpu-exporter", "frozen-util", "--real-node-dra"])
    shape = _shape(args)
    assert (shape.real_nodes, shape.gateway, shape.prometheus, shape.shared_gpus,
            shape.gpu_injection, shape.gpu_exporter, shape.real_node_dra,
            shape.gpu_plugin_mode) == (1, True, True, 1, "runtime-envvar", "frozen-util", True,
                                       "isolated")
    plain = _shape(_parser().parse_args(["up", "--gpu-plugin-mode", "all-devices",
                                          "--real-nodes", "1"]))
    assert (plain.gpu_plugin_mode, plain.gateway, plain.real_node_dra) == ("all-devices",
                                                                          False, False)


def test_gateway_impl_of_state_files_and_shape_files(tmp_path: Path) -> None:
    """A state file written before gateway_impl existed describes a Traefik lab; a shape file
    that does not name it gets Envoy Gateway, the default; without a gateway it stays default."""
    state = {**LabShape(real_nodes=1).to_dict(), "gateway": True}
    del state["gateway_impl"]
    assert LabShape.from_dict(state).gateway_impl == "traefik"
    state["gateway"] = False
    assert LabShape.from_dict(state) == LabShape(real_nodes=1)
    shape_file = tmp_path / "gw.yaml"
    shape_file.write_text("real_nodes: 1\ngateway: true\n")
    assert LabShape.from_yaml(shape_file).gateway_impl == "envoy-gateway"
    shape_file.write_text("real_nodes: 1\ngateway: true\ngateway-impl: traefik\n")
    assert LabShape.from_yaml(shape_file).gateway_impl == "traefik"


def test_a_host_without_real_nodes_gets_the_kwok_part_of_any_shape() -> None:
    """The conformance shape on a host that cannot run a real node: what lives there goes
    (replacing real_nodes alone was refused: gateway and prometheus need a real node)."""
    from pytest_aiconformance.run.lifecycle import conformance_shape

    full = conformance_shape(LabShape)
    with pytest.raises(LabError, match="gateway needs real_nodes"):
        full.replace(real_nodes=0)
    kwok = full.without_real_nodes()
    assert (kwok.real_nodes, kwok.gateway, kwok.prometheus, kwok.shared_gpus,
            kwok.gpu_injection, kwok.real_node_dra) == (0, False, False, 0, "plugin", False)
    assert (kwok.gpu_nodes, kwok.time_sliced_nodes, kwok.kuberay, kwok.kueue, kwok.trainer,
            kwok.karpenter, kwok.keda) == (full.gpu_nodes, 1, True, True, True, True, True)
