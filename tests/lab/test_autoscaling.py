"""cluster_autoscaling against real Karpenter (kwok cloud provider) on the lab.

The `scale-from-zero` shape has no GPU node: Karpenter's GPU NodePool makes one for the check's
pending pod and removes that same node once the pod is gone, so the requirement is Implemented.
With Karpenter stopped, before the check or between its scale-up and its scale-down, the check
fails within its scaled deadline and its reason names what the autoscaler did not do.  Only
test_cluster_autoscaling.py runs, each time as its own pytest process, as users run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiconformance_lab import Lab, LabInfo, LabShape, procs
from test_suite_on_lab import CHECKS, ROOT, run_suite, verdicts

from pytest_aiconformance.cluster.client import connect
from pytest_aiconformance.cluster.waits import Target, watch_until

pytestmark = pytest.mark.lab

CHECK = "test_cluster_autoscaling.py"
POOL_LABEL = "karpenter.sh/nodepool"


def _progress(message: str) -> None:
    sys.stderr.write(f"[lab] {message}\n")


@pytest.fixture(scope="module")
def zero(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, LabInfo]]:
    """A lab of the packaged scale-from-zero shape (no KubeRay: no shared port to wait for)."""
    lab = Lab(tmp_path_factory.mktemp("lab-scale-from-zero"))
    started = time.monotonic()
    info = lab.up(LabShape.load("scale-from-zero"), _progress, owner_pid=os.getpid())
    _progress(f"scale-from-zero lab up in {time.monotonic() - started:.1f} s")
    yield lab, info
    lab.down(lambda m: None)


def _nodes(info: LabInfo) -> dict[str, dict[str, Any]]:
    kube = connect(Path(info.kubeconfig), info.context)
    try:
        return {n["metadata"]["name"]: n for n in kube.items("v1", "Node")}
    finally:
        kube.close()


def _karpenter_nodes(info: LabInfo) -> list[str]:
    return sorted(n for n, node in _nodes(info).items()
                  if POOL_LABEL in node["metadata"].get("labels", {}))


def _evidence(report: Path) -> str:
    check = verdicts(report)["cluster_autoscaling"]["checks"][0]
    data = json.loads((report / check["evidence_file"]).read_text())
    return "\n".join(f"{s['command']}\n{s['output']}" for s in data["steps"])


def _timed(info: LabInfo, report: Path, scale: str) -> float:
    started = time.monotonic()
    run_suite(info, report, "--aic-timeout-scale", scale, files=[CHECK], timeout=600)
    elapsed = time.monotonic() - started
    _progress(f"{CHECK} at timeout scale {scale}: {elapsed:.0f} s")
    return elapsed


def test_gpu_pool_scales_from_zero_and_back(zero, tmp_path):
    """No GPU node before; Karpenter makes one for the pending pod, then removes that node."""
    _lab, info = zero
    nodes = _nodes(info)
    assert not any("nvidia.com/gpu" in n["status"].get("allocatable", {})
                   for n in nodes.values()), sorted(nodes)
    _timed(info, tmp_path / "r", "0.1")
    v = verdicts(tmp_path / "r")["cluster_autoscaling"]
    assert v["status"] == "Implemented", v
    evidence = _evidence(tmp_path / "r")
    assert "autoscaler: Karpenter: " in evidence
    assert "NodePools: aic-lab-gpu" in evidence
    assert "scales from zero, so the pod asks for nvidia.com/gpu" in evidence
    assert "(Karpenter NodePool aic-lab-gpu)" in evidence
    assert "Nominated" in evidence  # Karpenter's own word about the pending pod
    assert "aic-lab-gpu-" in evidence.split("kubectl get nodeclaims")[1]  # the new NodeClaim
    assert _karpenter_nodes(info) == []  # the node it made is gone again


def test_karpenter_stopped_fails_the_scale_up_naming_it(zero, tmp_path):
    """Karpenter stopped, its CRDs and NodePool in place: nothing acts on the pending pod."""
    lab, info = zero
    lab.stop_component("karpenter")
    try:
        elapsed = _timed(info, tmp_path / "r", "0.05")  # scale-up deadline: 45 s
        v = verdicts(tmp_path / "r")["cluster_autoscaling"]
        assert v["status"] == "Not Implemented", v
        reason = v["checks"][0]["reason"]
        assert reason.startswith("no new node for pending pod(s) scale-0 (scale-up): "
                                 "Karpenter created no NodeClaim since the check began; "
                                 "no autoscaler recorded an event about scale-0"), reason
        assert elapsed < 120
    finally:
        lab.start_component("karpenter")


def test_karpenter_stopped_mid_run_fails_the_scale_down(zero, tmp_path):
    """Karpenter stopped right after its node took the pod: the node stays, and the check
    says which NodeClaim still holds it."""
    lab, info = zero
    before = set(_nodes(info))
    report = tmp_path / "r"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
           "-c", str(ROOT / "pyproject.toml"), str(CHECKS / CHECK), "--kubeconfig",
           str(info.kubeconfig), "--context", info.context, "--aic-report-dir", str(report),
           "-q", "--aic-timeout-scale", "0.05"]  # scale-down deadline: 60 s
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
    stopped = False
    try:
        kube = connect(Path(info.kubeconfig), info.context)
        try:
            watch_until(kube, Target("v1", "Pod", label_selector="app=scale"),
                        lambda pods: any(p.get("status", {}).get("phase") == "Running"
                                         and p["spec"].get("nodeName") not in before
                                         for p in pods.values()),
                        timeout=120, expected="the check's pod Running on Karpenter's node")
        finally:
            kube.close()
        lab.stop_component("karpenter")
        stopped = True
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if stopped:
            lab.start_component("karpenter")
    elapsed = time.monotonic() - started
    _progress(f"{CHECK} with Karpenter stopped mid-run: {elapsed:.0f} s")
    v = verdicts(report)["cluster_autoscaling"]
    assert v["status"] == "Not Implemented", out[-3000:]
    reason = v["checks"][0]["reason"]
    assert "still there after the workload was deleted (scale-down): NodeClaim(s): " \
           "aic-lab-gpu-" in reason, reason
    assert elapsed < 180


def test_down_stops_karpenter_and_frees_its_ports(zero):
    """Karpenter is a lab process like the others: `down` finds it (its command line names the
    state dir) and stops it, freeing both its ports."""
    lab, info = zero
    pid = lab.status().components["karpenter"].pid
    assert pid is not None
    assert procs.alive(pid)
    ports = [info.ports["karpenter"], info.ports["karpenter-metrics"]]
    assert "karpenter" in lab.down(lambda m: None)
    assert not procs.alive(pid)
    assert not any(procs.port_bound(port) for port in ports)
