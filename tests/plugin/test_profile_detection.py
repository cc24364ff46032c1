"""The accelerator profile comes from the cluster unless the user names one.

Against the fake API server: nodes with NVIDIA or AMD extended resources, a DRA driver's
ResourceSlices only, vendor labels only, several vendors, none; and --accelerator (or its
environment variable) winning over what was found. The report header says how the profile
was chosen, and the checks see the chosen profile in `aic_settings`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakeapi import FakeApiServer

from conftest import ROOT, base_args

CHECK = """
import pytest

@pytest.mark.requirement("gang_scheduling")
def test_profile(aic_settings):
    assert aic_settings.profile.name == "{profile}"
    assert aic_settings.accelerator == "{profile}"
"""


def gpu_node(name: str, resources: dict[str, str] | None = None,
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    allocatable = {"cpu": "32", "memory": "256Gi", **(resources or {})}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "status": {"capacity": allocatable, "allocatable": allocatable}}


def resource_slice(node: str, driver: str, devices: int) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": f"{node}-{driver}"},
            "spec": {"driver": driver, "nodeName": node,
                     "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                     "devices": [{"name": f"gpu-{i}"} for i in range(devices)]}}


def run(aic: pytest.Pytester, profile: str, *extra: str) -> pytest.RunResult:
    aic.makepyfile(test_profile=CHECK.format(profile=profile))
    return aic.runpytest(*base_args(aic, *extra))


def header(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith("accelerator profile:")]


def test_nvidia_nodes_get_the_nvidia_profile(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("g1", {"nvidia.com/gpu": "8"},
                                       {"nvidia.com/gpu.present": "true"}))
    fake.cluster.add("nodes", gpu_node("cpu1"))
    result = run(aic, "nvidia")
    result.assert_outcomes(passed=1)
    assert header(result) == [
        "accelerator profile: nvidia (detected: nvidia 8 devices on 1 node via nvidia.com/gpu)"]


def test_amd_nodes_get_the_amd_profile_without_a_flag(aic: pytest.Pytester,
                                                      fake: FakeApiServer) -> None:
    for name in ("m1", "m2"):
        fake.cluster.add("nodes", gpu_node(name, {"amd.com/gpu": "8"},
                                           {"amd.com/gpu.family": "AI"}))
    result = run(aic, "amd")
    result.assert_outcomes(passed=1)
    assert header(result) == [
        "accelerator profile: amd (detected: amd 16 devices on 2 nodes via amd.com/gpu)"]
    verdicts = json.loads((aic.path / "report" / "verdicts.json").read_text())
    assert verdicts["run"]["accelerator"] == "amd"


def test_dra_only_cluster_gets_its_drivers_profile(aic: pytest.Pytester,
                                                   fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("m1"))
    fake.cluster.add("resourceslices", resource_slice("m1", "gpu.amd.com", 4))
    result = run(aic, "amd")
    result.assert_outcomes(passed=1)
    assert header(result) == [
        "accelerator profile: amd (detected: amd 4 devices on 1 node via DRA driver "
        "gpu.amd.com)"]


def test_vendor_labels_alone_name_the_profile(aic: pytest.Pytester,
                                              fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("i1", labels={
        "intel.feature.node.kubernetes.io/gpu": "true"}))
    result = run(aic, "intel")
    result.assert_outcomes(passed=1)
    assert header(result) == [
        "accelerator profile: intel (detected: intel 1 device on 1 node via node label "
        "intel.feature.node.kubernetes.io/gpu=true)"]


def test_several_vendors_the_most_devices_wins(aic: pytest.Pytester,
                                              fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("g1", {"nvidia.com/gpu": "2"}))
    fake.cluster.add("nodes", gpu_node("m1", {"amd.com/gpu": "8"}))
    result = run(aic, "amd")
    result.assert_outcomes(passed=1)
    assert header(result) == [
        "accelerator profile: amd (detected: most devices among 2 vendors: amd 8 devices on "
        "1 node via amd.com/gpu; nvidia 2 devices on 1 node via nvidia.com/gpu; choose "
        "another with --accelerator)"]


def test_no_accelerator_falls_back_to_nvidia_and_says_so(aic: pytest.Pytester,
                                                         fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("cpu1"))
    result = run(aic, "nvidia")
    result.assert_outcomes(passed=1)
    assert header(result) == [
        "accelerator profile: nvidia (default: no accelerator of a known vendor found in "
        "extended resources, DRA drivers or node labels; choose one with --accelerator)"]


def test_explicit_accelerator_wins_over_the_cluster(aic: pytest.Pytester,
                                                    fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("m1", {"amd.com/gpu": "8"}))
    result = run(aic, "nvidia", "--accelerator", "nvidia")
    result.assert_outcomes(passed=1)
    assert header(result) == ["accelerator profile: nvidia (--accelerator)"]


def test_environment_accelerator_wins_over_the_cluster(aic: pytest.Pytester,
                                                       fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("g1", {"nvidia.com/gpu": "8"}))
    aic._monkeypatch.setenv("AIC_ACCELERATOR", "intel")
    result = run(aic, "intel")
    result.assert_outcomes(passed=1)
    assert header(result) == ["accelerator profile: intel (AIC_ACCELERATOR)"]


def test_load_check_is_supporting_where_the_profile_pins_no_load(
        aic: pytest.Pytester, fake: FakeApiServer) -> None:
    """The real accelerator_metrics load check on AMD nodes: it skips (no load image for AMD)
    as a supporting check, so it cannot leave the requirement Not verified by itself."""
    fake.cluster.add("nodes", gpu_node("m1", {"amd.com/gpu": "8"}))
    check = ROOT / "pytest_aiconformance" / "checks" / "test_accelerator_metrics.py"
    # The fake cannot delete a namespace's pods: the check's namespace is kept instead.
    result = aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-keep-namespaces", "always",
                   f"{check}::test_utilisation_moves_under_load"))
    out = "\n".join(result.stdout.lines + result.stderr.lines)
    result.assert_outcomes(skipped=1)
    verdicts = json.loads((aic.path / "report" / "verdicts.json").read_text())
    metrics = next(r for r in verdicts["requirements"] if r["id"] == "accelerator_metrics")
    assert [(c["role"], c["outcome"], c["reason"]) for c in metrics["checks"]] == [
        ("supporting", "unknown hardware",
         "no load image is pinned for profile amd, so utilisation under load cannot be "
         "driven")], out
