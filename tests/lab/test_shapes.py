"""Named lab shapes that mimic real platforms: the whole suite on each, and the verdicts a
platform of that shape must get.

GPUs only through DRA, a tainted GPU pool (AKS's sku=gpu, which no profile lists), MIG
partitions, AMD GPUs and a cluster whose every GPU is taken. Each shape runs with Kueue and
KubeRay, as a platform offering gang scheduling and an AI operator would. Each lab is its own,
in a temporary state directory, stopped after its one suite run; the suite runs in a
subprocess the way users run it, and its outcome is read back from verdicts.json. What a
simulated node cannot show (anything inside a container) is Not verified everywhere; what the
control plane decides is asserted exactly, including the failures a shape must produce.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiconformance_lab import Lab, LabShape

from pytest_aiconformance.cluster.client import connect

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
CAPACITY = "TestSecureAcceleratorAccess/CapacityEnforced"
IMPL, NI, NV, NA = "Implemented", "Not Implemented", "Not verified", "N/A"
# Requirements whose every essential check needs a running container: Not verified on kwok.
IN_CONTAINER = {"driver_runtime_management": NV, "virtualized_accelerator": NV,
                "ai_inference": NV, "accelerator_metrics": NV, "ai_service_metrics": NV}
PI = "Partially Implemented"
# No cluster autoscaler runs on the lab (a conditional MUST). The HPA scales accelerator pods
# on CPU, but no custom/external metrics adapter runs, so scaling on a custom metric fails.
CONTROL_PLANE = {"cluster_autoscaling": NA, "pod_autoscaling": PI, "robust_controller": IMPL}


@dataclass
class ShapeRun:
    """One shape's lab as the suite saw it, kept after the lab is gone."""

    shape: LabShape
    proc: subprocess.CompletedProcess[str]
    report: Path
    nodes: dict[str, dict[str, Any]]
    device_classes: list[str]
    seconds: float

    @property
    def verdicts(self) -> dict[str, dict[str, Any]]:
        data = json.loads((self.report / "verdicts.json").read_text())
        return {r["id"]: r for r in data["requirements"]}

    def check(self, req: str, junit_name: str) -> dict[str, Any]:
        return next(c for c in self.verdicts[req]["checks"]
                    if c["junit_name"].split("[")[0] == junit_name)

    def evidence(self, req: str, junit_name: str) -> str:
        """The check's own evidence (its JSON file), as the lines a reviewer reads: each step's
        command and output."""
        data = json.loads(
            (self.report / self.check(req, junit_name)["evidence_file"]).read_text())
        return "\n".join(f"{step.get('command', '')}\n{step.get('output', '')}"
                         for step in data["steps"])

    def explain(self) -> str:
        return self.proc.stdout[-4000:] + self.proc.stderr[-1500:]


_RUNS: dict[str, ShapeRun] = {}


def shape_run(name: str, tmp_path_factory: pytest.TempPathFactory) -> ShapeRun:
    """The suite on the named shape (plus Kueue and KubeRay), run once per session."""
    if name in _RUNS:
        return _RUNS[name]
    tmp = tmp_path_factory.mktemp(f"shape-{name}")
    shape = dataclasses.replace(LabShape.load(name), kuberay=True, kueue=True)
    lab = Lab(tmp / "lab")
    try:
        # KubeRay's webhook port is fixed: wait for another lab of this session to free it.
        info = lab.up(shape, lambda m: sys.stderr.write(f"[lab] {m}\n"),
                      owner_pid=os.getpid(), port_wait_s=600)
        kube = connect(Path(info.kubeconfig), info.context)
        try:
            nodes = {n["metadata"]["name"]: n for n in kube.items("v1", "Node")}
            classes = [c["metadata"]["name"]
                       for c in kube.items("resource.k8s.io/v1", "DeviceClass")]
        finally:
            kube.close()
        report = tmp / "report"
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
               "-c", str(ROOT / "pyproject.toml"), str(ROOT / "pytest_aiconformance" / "checks"),
               f"--kubeconfig={info.kubeconfig}", "--context", info.context,
               "--aic-version", "1.35", "--aic-timeout-scale", "0.5",
               f"--aic-report-dir={report}", "-q", "-rs"]
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT,
                              check=False)
        seconds = time.monotonic() - started
        sys.stderr.write(f"[suite] shape {name}: {seconds:.0f}s, exit {proc.returncode}\n")
    finally:
        lab.down(lambda _: None)
    _RUNS[name] = ShapeRun(shape, proc, report, nodes, classes, seconds)
    return _RUNS[name]


def statuses(run: ShapeRun) -> dict[str, str]:
    return {rid: v["status"] for rid, v in run.verdicts.items()}


# The verdict each shape must get, requirement by requirement (checklist 1.35).
MATRIX: dict[str, dict[str, str]] = {
    "dra-only": {"dra_support": IMPL, "gpu_sharing": NI, "gang_scheduling": IMPL,
                 "secure_accelerator_access": NV, **IN_CONTAINER, **CONTROL_PLANE},
    "tainted-gpus": {"dra_support": IMPL, "gpu_sharing": NI, "gang_scheduling": IMPL,
                     "secure_accelerator_access": NV, **IN_CONTAINER, **CONTROL_PLANE},
    "mig": {"dra_support": IMPL, "gpu_sharing": NV, "gang_scheduling": IMPL,
            "secure_accelerator_access": NV, **IN_CONTAINER, **CONTROL_PLANE},
    "amd": {"dra_support": IMPL, "gpu_sharing": NV, "gang_scheduling": IMPL,
            "secure_accelerator_access": NV, **IN_CONTAINER, **CONTROL_PLANE},
    # Every GPU and every DRA device is taken: what needs a free one cannot be observed.
    # Gang scheduling can: its oversized gang is sized in CPU where no GPU is free.
    "busy": {"dra_support": NV, "gpu_sharing": NI, "gang_scheduling": IMPL,
             "secure_accelerator_access": NV, **IN_CONTAINER, **CONTROL_PLANE,
             "pod_autoscaling": NI},
}


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_verdict_matrix_on_shape(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    run = shape_run(name, tmp_path_factory)
    assert (run.report / "verdicts.json").is_file(), run.explain()
    assert statuses(run) == MATRIX[name], run.explain()
    # A MUST the lab decides is not Implemented (pod_autoscaling): the exit status says so.
    assert run.proc.returncode == 1, run.explain()


def test_dra_only_capacity_through_claims(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No nvidia.com/gpu anywhere: N+1 claims on a node with N GPUs, the scheduler's refusal."""
    run = shape_run("dra-only", tmp_path_factory)
    assert run.check("secure_accelerator_access", CAPACITY)["outcome"] == "passed", run.explain()
    evidence = run.evidence("secure_accelerator_access", CAPACITY)
    assert "device of DeviceClass gpu.nvidia.com on aic-gpu-0: 2 in its ResourceSlices, " \
           "2 free; creating 3 pods" in evidence
    assert "cannot allocate all claims" in evidence


def test_tainted_pool_capacity_lands_on_tainted_nodes(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """GPU nodes tainted sku=gpu:NoSchedule: the check's pods tolerate it and land there."""
    run = shape_run("tainted-gpus", tmp_path_factory)
    taints = {n: node["spec"].get("taints") for n, node in run.nodes.items()}
    tainted = [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]
    assert taints == {"aic-gpu-0": tainted, "aic-gpu-1": tainted, "aic-cpu-0": None}
    assert run.check("secure_accelerator_access", CAPACITY)["outcome"] == "passed", run.explain()
    evidence = run.evidence("secure_accelerator_access", CAPACITY)
    assert "nvidia.com/gpu on aic-gpu-0: 1 allocatable, 1 free; creating 2 pods" in evidence
    assert "Insufficient nvidia.com/gpu" in evidence
    # The session header of the reviewer page lists the taint the pods had to tolerate.
    assert "aic-gpu-0 (nvidia.com/gpu=1, 8 DRA devices, taint sku=gpu:NoSchedule)" in \
        (run.report / "evidence.md").read_text()
    # `kubectl get pods -o wide` as the check saw it settle: one bound to the tainted node.
    nodes = sorted(m[1] for m in re.finditer(r"^gpu-\d\s+\S+\s+\S+\s+(\S+)\s", evidence,
                                             re.MULTILINE))
    assert nodes == ["<none>", "aic-gpu-0"]


def test_busy_cluster_is_not_observable_not_failed(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Nothing free to fill: the checks that need a free GPU or device say so (never a failure)."""
    run = shape_run("busy", tmp_path_factory)
    check = run.check("secure_accelerator_access", CAPACITY)
    assert check["outcome"] == "not observable here", run.explain()
    assert check["reason"] == (
        "every nvidia.com/gpu is allocated (aic-gpu-0: 1 of 1 in use, aic-gpu-1: 1 of 1 in "
        "use), so no node has one free to fill and overfill")
    claim = run.check("dra_support", "TestDRASupport/ClaimAllocatedAndReserved")
    assert claim["outcome"] == "not observable here", run.explain()
    assert claim["reason"] == (
        "every device of DeviceClass gpu.example.com is allocated (aic-gpu-0: 8 of 8 in use, "
        "aic-gpu-1: 8 of 8 in use), so no claim can be allocated for a new pod")


@pytest.mark.parametrize("name", ["busy", "dra-only"])
def test_no_free_gpu_sizes_the_oversized_gang_in_cpu(
        name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No free nvidia.com/gpu (all busy, or none advertised): the gang negative holds a
    CPU-sized gang of 2 out of aic-cpu-0, with Kueue's TAS and with kube-scheduler's own gang
    policy (the Workload API)."""
    run = shape_run(name, tmp_path_factory)
    why = "no node has a free nvidia.com/gpu" if name == "busy" else \
        "no node has a free accelerator (extended resource)"
    for solution in ("kueue", "workload-api"):
        junit = f"TestGangScheduling/OversizedGangStaysUnbound/{solution}"
        assert run.check("gang_scheduling", junit)["outcome"] == "passed", run.explain()
        evidence = run.evidence("gang_scheduling", junit)
        assert f"{why}: a CPU-sized gang of 2 members on aic-cpu-0, each requesting 16001m CPU, " \
               "more than half of the 32000m it has free" in evidence
    assert "Insufficient cpu" in run.evidence(
        "gang_scheduling", "TestGangScheduling/OversizedGangStaysUnbound/workload-api")


@pytest.mark.parametrize("name", ["amd", "mig"])
def test_vendor_labs_offer_their_resources_and_labels(
        name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """What the AMD GPU Operator and NVIDIA's MIG manager make of a node, read from the API."""
    run = shape_run(name, tmp_path_factory)
    gpu = run.nodes["aic-gpu-0"]
    labels, allocatable = gpu["metadata"]["labels"], gpu["status"]["allocatable"]
    if name == "amd":
        assert sorted(run.nodes) == ["aic-cpu-0", "aic-gpu-0", "aic-gpu-1"]
        assert allocatable["amd.com/gpu"] == "1"
        assert "nvidia.com/gpu" not in allocatable
        assert labels["amd.com/gpu.product-name"] == "AMD_Instinct_MI300X_OAM"
        assert labels["amd.com/gpu.family"] == "AI"
        assert not any(k.startswith("nvidia.com/") for k in labels)
        assert run.device_classes == ["gpu.amd.com"]
    else:
        assert sorted(run.nodes) == ["aic-cpu-0", "aic-gpu-0"]
        assert allocatable["nvidia.com/mig-1g.10gb"] == "7"
        assert allocatable["nvidia.com/gpu"] == "0"
        assert labels["nvidia.com/mig.strategy"] == "mixed"
        assert labels["nvidia.com/mig.capable"] == "true"
        assert labels["nvidia.com/mig-1g.10gb.count"] == "7"
        assert run.device_classes == ["gpu.example.com"]
