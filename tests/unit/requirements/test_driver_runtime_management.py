"""driver_runtime_management decisions, with cases that must fail.

The driver version "seen" comes from the recorded nvidia-smi XML (tesla-p100.xml, driver
510.47.03) and from driver_version.sh run on a fake tool; node and ResourceSlice objects are
written inline (synthetic) in the shapes GPU Feature Discovery and the NVIDIA DRA driver use.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance.cluster.discovery import AcceleratorNode
from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.parsers import parse_key_values
from pytest_aiconformance.requirements import driver_runtime_management as dv

PROBES = Path(__file__).resolve().parents[3] / "pytest_aiconformance" / "data" / "probes"
REC = Path(__file__).resolve().parents[1] / "data" / "recorded"
NVIDIA = get_profile("nvidia")
SEEN = ET.parse(REC / "nvidia-smi" / "tesla-p100.xml").getroot().findtext("driver_version")


def last_values(out: str) -> dict[str, str]:
    """A probe's output, the last value printed per key."""
    return {key: values[-1] for key, values in parse_key_values(out).items()}


def node(labels: dict[str, str] | None = None, alloc: dict[str, str] | None = None,
         name: str = "n1") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "status": {"allocatable": alloc or {}}}


def dra_device(version: str, name: str = "gpu-0") -> dict[str, Any]:
    return {"name": name, "attributes": {"driverVersion": {"version": version},
                                         "uuid": {"string": "GPU-x"}}}


def test_recorded_version_matches_label() -> None:
    adv = dv.advertised_versions(NVIDIA, node({"nvidia.com/cuda.driver-version.full": SEEN}))
    ok, reason = dv.versions_match(SEEN, adv)
    assert ok, reason


def test_semver_attribute_equals_zero_padded_driver() -> None:
    # nvidia-smi prints 535.104.05; a semver attribute cannot carry the leading zero.
    adv = dv.advertised_versions(NVIDIA, node(), [dra_device("535.104.5")])
    assert dv.versions_match("535.104.05", adv)[0]


def test_label_and_attribute_must_both_match() -> None:
    adv = dv.advertised_versions(NVIDIA, node({"nvidia.com/cuda.driver-version.full": SEEN}),
                                 [dra_device("550.54.15")])
    ok, reason = dv.versions_match(SEEN, adv)
    assert not ok
    assert "DRA attribute driverVersion" in reason


def test_mismatch_fails() -> None:
    adv = dv.advertised_versions(NVIDIA, node({"nvidia.com/cuda.driver-version.full":
                                               "550.54.15"}))
    ok, reason = dv.versions_match(SEEN, adv)
    assert not ok
    assert "550.54.15" in reason


def test_nothing_advertised_fails() -> None:
    assert not dv.versions_match(SEEN, dv.advertised_versions(NVIDIA, node()))[0]


@pytest.mark.parametrize("seen", [None, "", "NVIDIA-SMI has failed"])
def test_nothing_seen_fails(seen: str | None) -> None:
    adv = [dv.Advertised("label", SEEN)]
    assert not dv.versions_match(seen, adv)[0]


def test_intel_profile_has_no_version_source() -> None:
    # Intel publishes no driver-version label or attribute: nothing to compare with.
    adv = dv.advertised_versions(get_profile("intel"), node({"x": "1"}))
    assert adv == []


def test_driver_version_probe_with_injected_tool(tmp_path: Path) -> None:
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


def test_driver_version_probe_without_tool(tmp_path: Path) -> None:
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", **NVIDIA.probe_env(),
           "VERSION_FILE": str(tmp_path / "absent")}
    out = subprocess.run(["sh", str(PROBES / "driver_version.sh")],
                         capture_output=True, text=True, check=True, env=env).stdout
    probe = last_values(out)
    assert probe.get("TOOL_MISSING") == "1"
    assert probe.get("DRIVER_VERSION") is None
    assert not dv.versions_match(probe.get("DRIVER_VERSION"), [dv.Advertised("l", SEEN)])[0]


def test_runtime_class_selects_nodes() -> None:
    rc = {"metadata": {"name": "nvidia"}, "handler": "nvidia",
          "scheduling": {"nodeSelector": {"nvidia.com/gpu.present": "true"}}}
    assert dv.selects_node(rc, {"nvidia.com/gpu.present": "true"})
    assert not dv.selects_node(rc, {})
    assert dv.runtime_class_rows([rc]) == [["nvidia", "nvidia", "nvidia.com/gpu.present=true"]]


def test_refused_nodes_are_those_the_runtime_class_does_not_admit() -> None:
    rc = {"metadata": {"name": "nvidia"}, "handler": "nvidia",
          "scheduling": {"nodeSelector": {"nvidia.com/gpu.present": "true"}}}
    nodes = [AcceleratorNode("gpu-a", {"nvidia.com/gpu": "1"}, {"nvidia.com/gpu.present": "true"}),
             AcceleratorNode("gpu-b", {"nvidia.com/gpu": "1"}, {}),
             AcceleratorNode("gpu-c", {"nvidia.com/gpu": "1"}, {"nvidia.com/gpu.present": "false"})]
    assert dv.refused_nodes(rc, nodes) == ["gpu-b", "gpu-c"]
    # A RuntimeClass without a nodeSelector admits every node.
    assert dv.refused_nodes({"handler": "nvidia"}, nodes) == []


def test_version_readable_needs_a_tool_or_a_version_file() -> None:
    assert dv.version_readable(NVIDIA)
    # Without the tool, the version file still tells; without both, nothing does.
    assert dv.version_readable(replace(NVIDIA, tool=None))
    assert not dv.version_readable(replace(NVIDIA, tool=None, driver_version_file=None))
    assert not dv.version_readable(get_profile("dra-example"))


def slice_(node: str, pool: str, *devices: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"nodeName": node, "driver": "gpu.nvidia.com",
                     "pool": {"name": pool, "generation": 1}, "devices": list(devices)}}


def claim(pod: str, *devices: tuple[str, str]) -> dict[str, Any]:
    return {"status": {"reservedFor": [{"resource": "pods", "name": pod}], "allocation": {
        "devices": {"results": [{"request": "gpu", "driver": "gpu.nvidia.com", "pool": p,
                                 "device": d} for p, d in devices]}}}}


def test_claimed_devices_are_the_pods_allocated_slice_entries() -> None:
    slices = [slice_("n1", "n1", dra_device("550.54.15", "gpu-0"), dra_device("550.54.15",
                                                                               "gpu-1")),
              slice_("n2", "n2", dra_device("535.104.5", "gpu-0"))]
    claims = [claim("other-pod", ("n1", "gpu-0")), claim("driver-probe", ("n2", "gpu-0")),
              {"status": {}}]
    found = dv.claimed_devices(claims, slices, "driver-probe")
    assert found == [dra_device("535.104.5", "gpu-0")]
    # The device the pod holds is the one whose attribute is compared.
    adv = dv.advertised_versions(NVIDIA, node(), found)
    assert [a.value for a in adv] == ["535.104.5"]
    assert dv.claimed_devices(claims, slices, "no-such-pod") == []
