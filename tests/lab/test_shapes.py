"""Named lab shapes that mimic real platforms, and the checks that must hold on them.

GPUs only through DRA, a tainted GPU pool (AKS's sku=gpu, which no profile lists) and a
cluster whose every GPU is taken: the capacity half of secure_accelerator_access must pass
on the first two (its pods on the tainted nodes) and be "not observable here" on the third.
The AMD and MIG labs must offer the resources and labels those platforms' operators set.
Each lab is its own, in a temporary state directory, stopped at the end; the suite runs in a
subprocess the way users run it, and its outcome is read back from verdicts.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance.cluster import connect
from pytest_aiconformance.lab import Lab, LabInfo, LabShape

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
CAPACITY = "TestSecureAcceleratorAccess/CapacityEnforced"


def _progress(message: str) -> None:
    sys.stderr.write(f"[lab] {message}\n")


@pytest.fixture
def named_lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LabInfo]:
    """The lab of the named shape in `request.param`, stopped at the end."""
    lab = Lab(tmp_path / "lab")
    try:
        yield lab.up(LabShape.load(request.param), _progress, owner_pid=os.getpid())
    finally:
        lab.down(lambda _: None)


def run_capacity_check(info: LabInfo, report: Path,
                       accelerator: str = "nvidia") -> subprocess.CompletedProcess[str]:
    """The capacity check alone, against the lab, with the accelerator profile named."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
           "-c", str(ROOT / "pyproject.toml"),
           str(ROOT / "conformance_tests" / "test_secure_accelerator_access.py"),
           "-k", "capacity", f"--kubeconfig={info.kubeconfig}", "--context", info.context,
           "--accelerator", accelerator, "--aic-timeout-scale", "0.5",
           f"--aic-report-dir={report}", "-q", "-rs"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT,
                          check=False)


def capacity_check(report: Path) -> dict[str, Any]:
    data = json.loads((report / "verdicts.json").read_text())
    req = next(r for r in data["requirements"] if r["id"] == "secure_accelerator_access")
    return next(c for c in req["checks"] if c["junit_name"].split("[")[0] == CAPACITY)


def evidence_text(report: Path) -> str:
    return (report / "evidence.md").read_text()


@pytest.mark.parametrize("named_lab", ["dra-only"], indirect=True)
def test_capacity_with_gpus_only_through_dra(named_lab: LabInfo, tmp_path: Path) -> None:
    """No nvidia.com/gpu anywhere: N+1 claims on a node with N GPUs, the scheduler's refusal."""
    proc = run_capacity_check(named_lab, tmp_path / "r")
    check = capacity_check(tmp_path / "r")
    assert check["outcome"] == "passed", proc.stdout[-3000:]
    evidence = evidence_text(tmp_path / "r")
    assert "device of DeviceClass gpu.nvidia.com on aic-gpu-0: 2 in its ResourceSlices, " \
           "2 free; creating 3 pods" in evidence
    assert "cannot allocate all claims" in evidence


@pytest.mark.parametrize("named_lab", ["tainted-gpus"], indirect=True)
def test_capacity_on_a_tainted_gpu_pool(named_lab: LabInfo, tmp_path: Path) -> None:
    """GPU nodes tainted sku=gpu:NoSchedule: the check's pods tolerate it and land there."""
    kube = connect(Path(named_lab.kubeconfig), named_lab.context)
    try:
        taints = {n["metadata"]["name"]: n["spec"].get("taints")
                  for n in kube.items("v1", "Node")}
    finally:
        kube.close()
    tainted = [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]
    assert taints == {"aic-gpu-0": tainted, "aic-gpu-1": tainted, "aic-cpu-0": None}
    proc = run_capacity_check(named_lab, tmp_path / "r")
    check = capacity_check(tmp_path / "r")
    assert check["outcome"] == "passed", proc.stdout[-3000:]
    evidence = evidence_text(tmp_path / "r")
    assert "nvidia.com/gpu on aic-gpu-0: 1 allocatable, 1 free; creating 2 pods" in evidence
    assert "Insufficient nvidia.com/gpu" in evidence
    assert "aic-gpu-0 (nvidia.com/gpu=1, 8 DRA devices, taint sku=gpu:NoSchedule)" in evidence
    # `kubectl get pods -o wide` as the check saw it settle: one bound to the tainted node.
    nodes = sorted(m[1] for m in re.finditer(r"^gpu-\d\s+\S+\s+\S+\s+(\S+)\s", evidence,
                                             re.MULTILINE))
    assert nodes == ["<none>", "aic-gpu-0"]


@pytest.mark.parametrize("named_lab", ["busy"], indirect=True)
def test_capacity_not_observable_when_every_gpu_is_busy(named_lab: LabInfo,
                                                        tmp_path: Path) -> None:
    """Nothing free to fill: the check cannot decide, and says why (never a failure).

    Both ways of asking: the lab's pods hold every nvidia.com/gpu (device plugin) and, through
    ResourceClaims the scheduler allocated, every device of the example DRA driver.
    """
    proc = run_capacity_check(named_lab, tmp_path / "r")
    check = capacity_check(tmp_path / "r")
    assert check["outcome"] == "not observable here", proc.stdout[-3000:]
    assert check["reason"] == (
        "every nvidia.com/gpu is allocated (aic-gpu-0: 1 of 1 in use, aic-gpu-1: 1 of 1 in "
        "use), so no node has one free to fill and overfill")
    proc = run_capacity_check(named_lab, tmp_path / "dra", accelerator="dra-example")
    check = capacity_check(tmp_path / "dra")
    assert check["outcome"] == "not observable here", proc.stdout[-3000:]
    assert check["reason"] == (
        "every device of DeviceClass gpu.example.com is allocated (aic-gpu-0: 8 of 8 in use, "
        "aic-gpu-1: 8 of 8 in use), so no node has one free to fill and overfill")


@pytest.mark.parametrize("named_lab", ["amd", "mig"], indirect=True)
def test_vendor_labs_offer_their_resources_and_labels(named_lab: LabInfo) -> None:
    """What the AMD GPU Operator and NVIDIA's MIG manager make of a node, read from the API."""
    kube = connect(Path(named_lab.kubeconfig), named_lab.context)
    try:
        nodes = {n["metadata"]["name"]: n for n in kube.items("v1", "Node")}
        classes = [c["metadata"]["name"] for c in kube.items("resource.k8s.io/v1",
                                                             "DeviceClass")]
    finally:
        kube.close()
    gpu = nodes["aic-gpu-0"]
    labels, allocatable = gpu["metadata"]["labels"], gpu["status"]["allocatable"]
    if named_lab.shape.vendor == "amd":
        assert sorted(nodes) == ["aic-cpu-0", "aic-gpu-0", "aic-gpu-1"]
        assert allocatable["amd.com/gpu"] == "1"
        assert "nvidia.com/gpu" not in allocatable
        assert labels["amd.com/gpu.product-name"] == "AMD_Instinct_MI300X_OAM"
        assert labels["amd.com/gpu.family"] == "AI"
        assert not any(k.startswith("nvidia.com/") for k in labels)
        assert classes == ["gpu.amd.com"]
    else:
        assert sorted(nodes) == ["aic-cpu-0", "aic-gpu-0"]
        assert allocatable["nvidia.com/mig-1g.10gb"] == "7"
        assert allocatable["nvidia.com/gpu"] == "0"
        assert labels["nvidia.com/mig.strategy"] == "mixed"
        assert labels["nvidia.com/mig.capable"] == "true"
        assert labels["nvidia.com/mig-1g.10gb.count"] == "7"
        assert classes == ["gpu.example.com"]
