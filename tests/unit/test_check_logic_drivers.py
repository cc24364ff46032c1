"""driver_runtime_management and virtualized_accelerator decisions, with cases that must fail.

The driver version "seen" comes from the recorded nvidia-smi XML (tesla-p100.xml, driver
510.47.03) and from driver_version.sh run on a fake tool; node and ResourceSlice objects are
written inline (synthetic) in the shapes GPU Feature Discovery and the NVIDIA DRA driver use.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.parsers import parse_key_values
from pytest_aiconformance.requirements import driver_runtime_management as dv
from pytest_aiconformance.requirements import virtualized_accelerator as virt

PROBES = Path(__file__).resolve().parents[2] / "pytest_aiconformance" / "data" / "probes"
REC = Path(__file__).resolve().parent / "data" / "recorded"
NVIDIA = get_profile("nvidia")
SEEN = ET.parse(REC / "nvidia-smi" / "tesla-p100.xml").getroot().findtext("driver_version")


def last_values(out: str) -> dict[str, str]:
    """A probe's output, the last value printed per key."""
    return {key: values[-1] for key, values in parse_key_values(out).items()}


def node(labels=None, alloc=None, name="n1"):
    return {"metadata": {"name": name, "labels": labels or {}},
            "status": {"allocatable": alloc or {}}}


def dra_device(version, name="gpu-0"):
    return {"name": name, "attributes": {"driverVersion": {"version": version},
                                         "uuid": {"string": "GPU-x"}}}


def test_recorded_version_matches_label():
    adv = dv.advertised_versions(NVIDIA, node({"nvidia.com/cuda.driver-version.full": SEEN}))
    ok, reason = dv.versions_match(SEEN, adv)
    assert ok, reason


def test_semver_attribute_equals_zero_padded_driver():
    # nvidia-smi prints 535.104.05; a semver attribute cannot carry the leading zero.
    adv = dv.advertised_versions(NVIDIA, node(), [dra_device("535.104.5")])
    assert dv.versions_match("535.104.05", adv)[0]


def test_label_and_attribute_must_both_match():
    adv = dv.advertised_versions(NVIDIA, node({"nvidia.com/cuda.driver-version.full": SEEN}),
                                 [dra_device("550.54.15")])
    ok, reason = dv.versions_match(SEEN, adv)
    assert not ok
    assert "DRA attribute driverVersion" in reason


def test_mismatch_fails():
    adv = dv.advertised_versions(NVIDIA, node({"nvidia.com/cuda.driver-version.full":
                                               "550.54.15"}))
    ok, reason = dv.versions_match(SEEN, adv)
    assert not ok
    assert "550.54.15" in reason


def test_nothing_advertised_fails():
    assert not dv.versions_match(SEEN, dv.advertised_versions(NVIDIA, node()))[0]


@pytest.mark.parametrize("seen", [None, "", "NVIDIA-SMI has failed"])
def test_nothing_seen_fails(seen):
    adv = [dv.Advertised("label", SEEN)]
    assert not dv.versions_match(seen, adv)[0]


def test_intel_profile_has_no_version_source():
    # Intel publishes no driver-version label or attribute: nothing to compare with.
    adv = dv.advertised_versions(get_profile("intel"), node({"x": "1"}))
    assert adv == []


def test_driver_version_probe_with_injected_tool(tmp_path):
    # The probe run on a fake nvidia-smi that prints the recorded driver version.
    tool = tmp_path / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\necho {SEEN}\n")
    tool.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", **NVIDIA.probe_env()}
    out = subprocess.run(["sh", str(PROBES / "driver_version.sh")],
                         capture_output=True, text=True, check=True, env=env).stdout
    probe = last_values(out)
    assert probe.get("TOOL_MISSING") == "0"
    adv = dv.advertised_versions(NVIDIA, node({"nvidia.com/cuda.driver-version.full": SEEN}))
    assert dv.versions_match(probe.get("DRIVER_VERSION"), adv)[0]


def test_driver_version_probe_without_tool(tmp_path):
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", **NVIDIA.probe_env(),
           "VERSION_FILE": str(tmp_path / "absent")}
    out = subprocess.run(["sh", str(PROBES / "driver_version.sh")],
                         capture_output=True, text=True, check=True, env=env).stdout
    probe = last_values(out)
    assert probe.get("TOOL_MISSING") == "1"
    assert probe.get("DRIVER_VERSION") is None
    assert not dv.versions_match(probe.get("DRIVER_VERSION"), [dv.Advertised("l", SEEN)])[0]


def test_runtime_class_selects_nodes():
    rc = {"metadata": {"name": "nvidia"}, "handler": "nvidia",
          "scheduling": {"nodeSelector": {"nvidia.com/gpu.present": "true"}}}
    assert dv.selects_node(rc, {"nvidia.com/gpu.present": "true"})
    assert not dv.selects_node(rc, {})
    assert dv.runtime_class_rows([rc]) == [["nvidia", "nvidia", "nvidia.com/gpu.present=true"]]


# --- virtualization ---------------------------------------------------------------------


def test_plain_gpu_nodes_are_not_virtualized():
    nodes = [node({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "Tesla-T4"},
                  {"nvidia.com/gpu": "1", "cpu": "4"}),
             node({}, {"nvidia.com/mig-1g.10gb": "7"}, name="mig"),
             node({"nvidia.com/gpu.sharing-strategy": "time-slicing"},
                  {"nvidia.com/gpu.shared": "4"}, name="ts")]
    assert virt.classify_virtualization(nodes) == []


def test_vgpu_guest_label():
    found = virt.classify_virtualization([node({"nvidia.com/vgpu.present": "true"},
                                               {"nvidia.com/gpu": "1"})])
    assert [(f.kind, f.schedulable_resource) for f in found] == [("vgpu", "nvidia.com/gpu")]


def test_gpu_operator_sandbox_workload_configs():
    found = virt.classify_virtualization([
        node({"nvidia.com/gpu.workload.config": "vm-passthrough"},
             {"nvidia.com/GA102GL_A10": "1"}, name="pt"),
        node({"nvidia.com/gpu.workload.config": "vm-vgpu"}, {"nvidia.com/GRID_A10-4Q": "6"},
             name="vg")])
    kinds = sorted((f.node, f.kind, f.via) for f in found)
    assert ("pt", "vfio", "extended resource") in kinds
    assert ("pt", "vfio", "node label") in kinds
    assert ("vg", "vgpu", "extended resource") in kinds


def test_sriov_virtual_function_dra_devices():
    slices = [{"spec": {"nodeName": "n1", "driver": "gpu.intel.com", "devices": [
        {"name": "0000-03-00-1", "attributes": {"sriov": {"bool": True}}},
        {"name": "0000-03-00-0", "attributes": {"sriov": {"bool": False}}}]}}]
    found = virt.classify_virtualization([], slices)
    assert [f.name for f in found] == ["gpu.intel.com/0000-03-00-1"]
    assert found[0].schedulable_resource is None  # a DRA device, claimed not counted


def test_zero_allocatable_is_not_an_offer():
    assert virt.classify_virtualization([node({}, {"nvidia.com/GRID_T4-1Q": "0"})]) == []


def test_network_card_virtual_functions_are_not_accelerators():
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
