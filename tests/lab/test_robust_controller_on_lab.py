"""robust_controller on real labs, one operator each: Kubeflow Trainer alone, then stopped
(its webhook configurations stay: the negative), and KubeRay alone. Only that check file runs,
as a separate pytest process pointed at the lab; verdicts are read back from verdicts.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiconformance_lab import Lab, LabInfo, LabShape

from pytest_aiconformance.cluster.client import connect
from pytest_aiconformance.cluster.run_objects import selector_all_runs

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_robust_controller.py"


def _up(tmp: Path, shape: LabShape) -> tuple[Lab, LabInfo]:
    lab = Lab(tmp)
    # KubeRay's webhook port is fixed: wait for another lab of this host to free it.
    return lab, lab.up(shape, lambda m: sys.stderr.write(f"[lab] {m}\n"),
                       owner_pid=os.getpid(), port_wait_s=600)


def robust_controller(info: LabInfo, report: Path, *args: str) -> dict[str, Any]:
    """Run the robust_controller checks against the lab; the requirement's verdict."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
           "-c", str(ROOT / "pyproject.toml"), str(CHECK), "--kubeconfig", str(info.kubeconfig),
           "--context", info.context, "--aic-report-dir", str(report), "-q", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          check=False)
    assert (report / "verdicts.json").is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
    data = json.loads((report / "verdicts.json").read_text())
    return next(r for r in data["requirements"] if r["id"] == "robust_controller")


def leftovers(info: LabInfo) -> list[str]:
    """Namespaces and TrainingRuntimes of any run still there."""
    kube = connect(Path(info.kubeconfig), info.context)
    sel = selector_all_runs()
    left = [f"Namespace/{n['metadata']['name']}"
            for n in kube.items("v1", "Namespace", label_selector=sel)]
    if kube.serves("trainer.kubeflow.org/v1alpha1", "TrainingRuntime"):
        left += [f"TrainingRuntime/{o['metadata']['name']}" for o in kube.items(
            "trainer.kubeflow.org/v1alpha1", "TrainingRuntime", label_selector=sel)]
    kube.close()
    return left


def outcomes(verdict: dict[str, Any]) -> dict[str, str]:
    return {c["junit_name"].removeprefix("TestRobustController/"): c["outcome"]
            for c in verdict["checks"]}


def test_trainer_alone_implements_then_stopped_does_not(tmp_path):
    """Trainer without KubeRay proves the requirement; with Trainer stopped (CRDs and webhook
    configurations in place) it is Not Implemented, in the API server's words naming the
    webhook, and the check namespaces are still cleaned up."""
    lab, info = _up(tmp_path / "lab", LabShape(gpu_nodes=1, cpu_nodes=1, trainer=True))
    try:
        assert info.ports["trainer-webhook"] != 9443  # chosen free, like every other port
        v = robust_controller(info, tmp_path / "up")
        assert v["status"] == "Implemented", v
        assert "with solution trainer" in v["reason"], v["reason"]
        got = outcomes(v)
        for case in ("WebhookDeniesInvalid", "WorkloadReconciled", "ChildRepaired",
                     "OperatorInstalled"):
            assert got[f"{case}/trainer"] == "passed", got
            assert got[f"{case}/kuberay"] == "not applicable", got
        assert leftovers(info) == []
        lab.stop_component("trainer")
        v = robust_controller(info, tmp_path / "stopped", "--aic-timeout-scale", "0.3")
        assert v["status"] == "Not Implemented", v
        got = outcomes(v)
        for case in ("WebhookDeniesInvalid", "WorkloadReconciled", "ChildRepaired"):
            assert got[f"{case}/trainer"] == "failed", got
        assert 'failed calling webhook "validator.' in v["reason"], v["reason"]
        assert "trainer.kubeflow.org" in v["reason"], v["reason"]
        assert "pytest_aiconformance" not in v["reason"], v["reason"]
        assert leftovers(info) == []
    finally:
        lab.down(lambda m: None)


def test_kuberay_alone_still_implements(tmp_path):
    """KubeRay without Trainer proves the requirement as before; Trainer's checks are not
    applicable."""
    lab, info = _up(tmp_path / "lab", LabShape(gpu_nodes=1, cpu_nodes=1, kuberay=True))
    try:
        v = robust_controller(info, tmp_path / "r")
        assert v["status"] == "Implemented", v
        assert "with solution kuberay" in v["reason"], v["reason"]
        got = outcomes(v)
        for case in ("WebhookDeniesInvalid", "WorkloadReconciled", "ChildRepaired"):
            assert got[f"{case}/kuberay"] == "passed", got
            assert got[f"{case}/trainer"] == "not applicable", got
        assert any(n.startswith("Solution trainer is not applicable: Kubeflow Trainer is not "
                                "installed") for n in v["notes"]), v["notes"]
    finally:
        lab.down(lambda m: None)
