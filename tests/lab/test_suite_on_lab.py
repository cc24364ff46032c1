"""The conformance suite itself, run against real labs: the verdict matrix, negative labs,
reports, cleanup after a normal run, after SIGINT, and --aic-cleanup after SIGKILL.

Each run is a separate pytest process (the way users run it), pointed at a lab by its
kubeconfig; the verdicts are read back from verdicts.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from aiconformance_lab import Lab, LabInfo, LabShape

from pytest_aiconformance.cluster.client import connect
from pytest_aiconformance.cluster.run_objects import cluster_scoped_kinds, selector_all_runs
from pytest_aiconformance.validator.rules import validate_submission

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "pytest_aiconformance" / "checks"


def _shape(**kw: Any) -> LabShape:
    names = {f.name for f in fields(LabShape)}
    return LabShape(**{k: v for k, v in kw.items() if k in names})


PLATFORM = """platformName: Lab
platformVersion: v1.0
vendorName: The pytest-aiconformance Project
websiteUrl: https://example.org
documentationUrl: https://example.org/docs
productLogoUrl: https://example.org/logo.svg
description: The suite's own lab
contactEmailAddress: lab@example.org
k8sConformanceUrl: https://github.com/cncf/k8s-conformance/tree/main/v1.35/lab
"""

CONFORMANT = dict(gpu_nodes=2, time_sliced_nodes=1, cpu_nodes=1, kuberay=True, kueue=True,
                  trainer=True, karpenter=True)


def _up(tmp: Path, shape: LabShape) -> tuple[Lab, LabInfo]:
    lab = Lab(tmp)
    # KubeRay's webhook port is fixed: wait for another lab of this session to free it.
    return lab, lab.up(shape, lambda m: sys.stderr.write(f"[lab] {m}\n"),
                       owner_pid=os.getpid(), port_wait_s=600)


@pytest.fixture(scope="module")
def conformant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, LabInfo]]:
    lab, info = _up(tmp_path_factory.mktemp("lab-conformant"), _shape(**CONFORMANT))
    yield lab, info
    lab.down(lambda m: None)


def run_suite(info: LabInfo, report: Path, *args: str, timeout: float = 900,
              files: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    targets = [str(CHECKS / f) for f in files] if files else [str(CHECKS)]
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
           "-c", str(ROOT / "pyproject.toml"), *targets, "--kubeconfig", str(info.kubeconfig),
           "--context", info.context, "--aic-report-dir", str(report), "-q", "-rs", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          check=False)


def verdicts(report: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((report / "verdicts.json").read_text())
    return {r["id"]: r for r in data["requirements"]}


def check_outcomes(req: dict[str, Any]) -> dict[str, str]:
    return {c["junit_name"].split("[")[0]: c["outcome"] for c in req["checks"]}


def labelled_leftovers(info: LabInfo) -> list[str]:
    kube = connect(Path(info.kubeconfig), info.context)
    sel = selector_all_runs()
    left = [f"Namespace/{n['metadata']['name']}"
            for n in kube.items("v1", "Namespace", label_selector=sel)]
    for api_version, kind in cluster_scoped_kinds(kube):
        left += [f"{kind}/{o['metadata']['name']}"
                 for o in kube.items(api_version, kind, label_selector=sel)]
    kube.close()
    return left


def test_verdict_matrix_on_conformant_lab(conformant, tmp_path):
    """Control-plane requirements are decided for real; in-container ones stay Not verified."""
    _lab, info = conformant
    report = tmp_path / "report"
    platform = tmp_path / "platform.yaml"
    platform.write_text(PLATFORM)
    started = time.monotonic()
    proc = run_suite(info, report, "--aic-version", "1.35", f"--aic-platform={platform}",
                     f"--aic-submission={tmp_path / 'submission'}")
    elapsed = time.monotonic() - started
    sys.stderr.write(f"[suite] full run on the lab: {elapsed:.0f}s, exit {proc.returncode}\n")
    assert (report / "verdicts.json").is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
    for name in ("junit.xml", "PRODUCT.yaml", "evidence.md", "verdicts.json", "e2e.log",
                 "results.json"):
        assert (report / name).is_file(), name
    v = verdicts(report)
    assert v["dra_support"]["status"] == "Implemented", v["dra_support"]
    # The HPA scales accelerator pods on CPU, but no custom/external metrics adapter runs on
    # the lab, and the checklist asks for scaling on custom metrics too.
    assert v["pod_autoscaling"]["status"] == "Partially Implemented", v["pod_autoscaling"]
    assert check_outcomes(v["pod_autoscaling"]) == {
        "TestPodAutoscaling/HPAScalesAcceleratorPods": "passed",
        "TestPodAutoscaling/HPAScalesOnCustomMetric": "failed"}
    sharing = check_outcomes(v["gpu_sharing"])
    assert sharing["TestGPUSharing/SharedUnitsAdvertised"] == "passed"
    assert sharing["TestGPUSharing/OversubscribedPodsRun"] == "passed"
    assert v["gpu_sharing"]["status"] == "Not verified"
    access = check_outcomes(v["secure_accelerator_access"])
    assert access["TestSecureAcceleratorAccess/CapacityEnforced"] == "passed"
    assert v["secure_accelerator_access"]["status"] == "Not verified"
    # Karpenter (kwok provider) gives the pending GPU pod a node and removes it afterwards.
    assert v["cluster_autoscaling"]["status"] == "Implemented", v["cluster_autoscaling"]
    assert v["robust_controller"]["status"] == "Implemented", v["robust_controller"]
    # KubeRay and Trainer both run: each proves it alone, the first by name decides.
    assert "with solution kuberay" in v["robust_controller"]["reason"]
    assert any(n.startswith("Solution trainer also passed all its essential checks")
               for n in v["robust_controller"]["notes"]), v["robust_controller"]["notes"]
    # Kueue runs on the lab (Volcano cannot be built here): all-or-nothing admission; the
    # lab's kube-scheduler gang-schedules Workload API gangs too: Kueue decides by name order
    assert v["gang_scheduling"]["status"] == "Implemented", v["gang_scheduling"]
    assert "with solution kueue" in v["gang_scheduling"]["reason"], v["gang_scheduling"]
    gang = v["gang_scheduling"]["checks"]
    assert {c["outcome"] for c in gang if "kueue" in c["nodeid"]} == {"passed"}
    assert {c["outcome"] for c in gang if "workload-api" in c["nodeid"]} == {"passed"}
    assert "Solution workload-api also passed all its essential checks." in \
        v["gang_scheduling"]["notes"], v["gang_scheduling"]["notes"]
    assert {c["outcome"] for c in gang if "volcano" in c["nodeid"]} == {"not applicable"}
    for rid in ("ai_inference", "ai_service_metrics", "accelerator_metrics"):
        assert v[rid]["status"] == "Not verified", v[rid]
        assert "simulated" in v[rid]["reason"]
    # a MUST is not Implemented, so the run must say so with its exit status
    assert proc.returncode == 1
    assert labelled_leftovers(info) == []
    # The submission: the program's offline rules accept every requirement the lab decides;
    # the refusals are exactly the MUSTs the lab leaves Not verified.
    check = validate_submission(tmp_path / "submission")
    assert check.products == ["v1.35/lab"], check.lines()
    assert {f.where for f in check.errors} == {
        "ai_inference", "accelerator_metrics", "ai_service_metrics",
        "secure_accelerator_access", "pod_autoscaling"}, check.lines()
    assert check.warnings == [], check.lines()  # no MUST is N/A any more
    assert "aiconformance validate" in proc.stdout


@pytest.mark.parametrize(("shape", "status", "cause"), [
    # the API is served but no driver publishes devices: the API check alone passes
    ({"dra": False}, "Partially Implemented", "DeviceClass"),
    # resource.k8s.io/v1 switched off: nothing passes
    ({"dra": False, "dra_api": False}, "Not Implemented", "resource.k8s.io/v1"),
])
def test_lab_without_dra_fails_dra_support(tmp_path, shape, status, cause):
    lab, info = _up(tmp_path / "lab", _shape(gpu_nodes=1, cpu_nodes=0, **shape))
    try:
        proc = run_suite(info, tmp_path / "r", "--aic-timeout-scale", "0.3",
                         files=["test_dra_support.py"])
        v = verdicts(tmp_path / "r")["dra_support"]
        assert v["status"] == status, v
        assert cause in v["reason"], v["reason"]
        assert proc.returncode == 1
    finally:
        lab.down(lambda m: None)


def test_lab_without_metrics_server_fails_pod_autoscaling(tmp_path):
    lab, info = _up(tmp_path / "lab", _shape(metrics_server=False, gpu_nodes=1, cpu_nodes=0))
    try:
        run_suite(info, tmp_path / "r", "--aic-timeout-scale", "0.3",
                  files=["test_pod_autoscaling.py"])
        v = verdicts(tmp_path / "r")["pod_autoscaling"]
        assert v["status"] == "Not Implemented", v
        # Without metrics.k8s.io the CPU half does not apply; the custom-metrics half decides.
        assert check_outcomes(v) == {
            "TestPodAutoscaling/HPAScalesAcceleratorPods": "not applicable",
            "TestPodAutoscaling/HPAScalesOnCustomMetric": "failed"}, v
        assert "custom.metrics.k8s.io" in v["reason"], v["reason"]
    finally:
        lab.down(lambda m: None)


def test_lab_without_operators_fails_gang_and_robust_controller(tmp_path):
    """No gang scheduler and no AI operator: both MUSTs are Not Implemented, naming why."""
    lab, info = _up(tmp_path / "lab", _shape(gpu_nodes=1, cpu_nodes=1, workload_api=False))
    try:
        run_suite(info, tmp_path / "r", "--aic-timeout-scale", "0.3",
                  files=["test_gang_scheduling.py", "test_robust_controller.py"])
        v = verdicts(tmp_path / "r")
        assert v["gang_scheduling"]["status"] == "Not Implemented", v["gang_scheduling"]
        assert "no gang scheduler found" in v["gang_scheduling"]["reason"]
        assert v["robust_controller"]["status"] == "Not Implemented", v["robust_controller"]
        assert "KubeRay is not installed" in v["robust_controller"]["reason"]
    finally:
        lab.down(lambda m: None)


@pytest.mark.parametrize(("workload_api", "status", "cause"), [
    (True, "Implemented", "with solution workload-api"),
    (False, "Not Implemented", "no gang scheduler found"),
], ids=["workload-api", "no-workload-api"])
def test_lab_gang_scheduling_by_the_workload_api(tmp_path, workload_api, status, cause):
    """No operator at all, GPUs only through DRA: kube-scheduler's own gang policy (the alpha
    Workload API) proves gang scheduling, the oversized gang sized in CPU; without the Workload
    API nothing does."""
    lab, info = _up(tmp_path / "lab", _shape(gpu_nodes=1, cpu_nodes=1, extended_resources=False,
                                             workload_api=workload_api))
    try:
        started = time.monotonic()
        proc = run_suite(info, tmp_path / "r", "--aic-timeout-scale", "0.3",
                         files=["test_gang_scheduling.py"])
        sys.stderr.write(f"[suite] gang_scheduling, workload_api={workload_api}: "
                         f"{time.monotonic() - started:.0f}s\n")
        v = verdicts(tmp_path / "r")["gang_scheduling"]
        assert v["status"] == status, v
        assert cause in v["reason"], v["reason"]
        assert proc.returncode == (0 if workload_api else 1), proc.stdout[-3000:]
        if workload_api:
            [big] = [c for c in v["checks"] if c["nodeid"].endswith(
                "test_oversized_gang_stays_unbound[workload-api]")]
            evidence = (tmp_path / "r" / big["evidence_file"]).read_text()
            assert "a CPU-sized gang of 2 members on aic-cpu-0, each requesting 16001m CPU" \
                in evidence
            assert "Insufficient cpu" in evidence  # kube-scheduler's own words
    finally:
        lab.down(lambda m: None)


def test_stopped_operators_fail_gang_and_robust_controller(conformant, tmp_path):
    """KubeRay, Trainer and Kueue stopped, their CRDs and webhook configurations still in
    place: presence is not operation, so both MUSTs are Not Implemented, naming the webhook."""
    lab, info = conformant
    lab.stop_component("kuberay")
    lab.stop_component("trainer")
    lab.stop_component("kueue")
    try:
        run_suite(info, tmp_path / "r", "--aic-timeout-scale", "0.3",
                  files=["test_gang_scheduling.py", "test_robust_controller.py"])
        v = verdicts(tmp_path / "r")
        for rid in ("gang_scheduling", "robust_controller"):
            assert v[rid]["status"] == "Not Implemented", v[rid]
            assert "webhook" in v[rid]["reason"], v[rid]["reason"]
            assert "pytest_aiconformance" not in v[rid]["reason"], v[rid]["reason"]
    finally:
        lab.start_component("kuberay")
        lab.start_component("trainer")
        lab.start_component("kueue")


def test_scheduler_stopped_mid_run_fails_within_timeout(conformant, tmp_path):
    """With the scheduler stopped, the capacity check fails within its own (scaled) deadline."""
    lab, info = conformant
    lab.stop_component("scheduler")
    try:
        started = time.monotonic()
        run_suite(info, tmp_path / "r", "--aic-timeout-scale", "0.2",
                  "-k", "capacity_enforced", files=["test_secure_accelerator_access.py"])
        elapsed = time.monotonic() - started
        v = verdicts(tmp_path / "r")["secure_accelerator_access"]
        assert check_outcomes(v)["TestSecureAcceleratorAccess/CapacityEnforced"] == "failed"
        assert v["status"] == "Not Implemented"
        assert "timed out" in v["reason"], v["reason"]
        assert "bound" in v["reason"], v["reason"]
        assert elapsed < 120
    finally:
        lab.start_component("scheduler")


def test_apiserver_restart_mid_run_changes_no_verdict(conformant, tmp_path):
    """The API server goes away for ~10 s while checks run: every call waits it out, and the
    verdicts are those of an undisturbed run of the same checks."""
    lab, info = conformant
    files = ["test_dra_support.py", "test_gang_scheduling.py"]
    calm = run_suite(info, tmp_path / "calm", files=files)
    expected = {k: v["status"] for k, v in verdicts(tmp_path / "calm").items()}
    assert expected["dra_support"] == "Implemented", calm.stdout[-2000:]
    assert expected["gang_scheduling"] == "Implemented", calm.stdout[-2000:]
    proc = _start_suite(info, tmp_path / "stormy", files)
    try:
        _wait_for_labelled_namespace(info, 120)
        lab.stop_component("apiserver")
        stopped = time.monotonic()
        while time.monotonic() - stopped < 10:  # the outage: nothing to wait for but time
            assert proc.poll() is None, "the run ended during the outage"
            time.sleep(0.5)
    finally:
        lab.start_component("apiserver")
    out, _ = proc.communicate(timeout=600)
    got = {k: v["status"] for k, v in verdicts(tmp_path / "stormy").items()}
    assert got == expected, out[-4000:]
    assert "cannot reach API server" in out  # the wait was said on the terminal
    assert labelled_leftovers(info) == []


def _wait_for_labelled_namespace(info: LabInfo, deadline: float) -> str:
    kube = connect(Path(info.kubeconfig), info.context)
    try:
        from pytest_aiconformance.cluster.waits import Target, watch_until

        found = watch_until(kube, Target("v1", "Namespace", label_selector=selector_all_runs()),
                            lambda objs: bool(objs), timeout=deadline,
                            expected="the suite to create its first namespace")
        return next(iter(found.values()))["metadata"]["name"]
    finally:
        kube.close()


def _start_suite(info: LabInfo, report: Path, files: list[str]) -> subprocess.Popen[str]:
    """The suite as a child process, once no labelled namespace of an earlier test is left
    (one still terminating would be taken for the child's first)."""
    kube = connect(Path(info.kubeconfig), info.context)
    try:
        from pytest_aiconformance.cluster.waits import Target, wait_deleted

        wait_deleted(kube, Target("v1", "Namespace", label_selector=selector_all_runs()),
                     timeout=180)
    finally:
        kube.close()
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
           "-c", str(ROOT / "pyproject.toml"), *[str(CHECKS / f) for f in files],
           "--kubeconfig", str(info.kubeconfig), "--context", info.context,
           "--aic-report-dir", str(report), "-q"]
    # SIGINT as a terminal's Ctrl-C finds it: a shell that starts this session in the
    # background (CI runners, nohup ... &) ignores SIGINT, and the child would inherit that.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cleanup_run(info: LabInfo) -> subprocess.CompletedProcess[str]:
    """``--aic-cleanup``: what a user runs after a killed session."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT), "-c",
         str(ROOT / "pyproject.toml"), "--kubeconfig", str(info.kubeconfig), "--context",
         info.context, "--aic-cleanup"], capture_output=True, text=True, timeout=300, cwd=ROOT,
        check=False)


def test_sigint_mid_check_leaves_nothing(conformant, tmp_path):
    _lab, info = conformant
    proc = _start_suite(info, tmp_path / "r", ["test_pod_autoscaling.py"])
    try:
        _wait_for_labelled_namespace(info, 60)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=30)
            # What the session was doing when Ctrl-C did not end it, for the failure report;
            # its leftovers are removed so that the next test starts clean.
            _cleanup_run(info)
            pytest.fail(f"the suite did not end within 180 s of SIGINT; its output:\n"
                        f"{out[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in out or "Interrupted" in out, out[-2000:]
    assert labelled_leftovers(info) == []


def test_cleanup_removes_what_a_sigkilled_run_left(conformant, tmp_path):
    _lab, info = conformant
    proc = _start_suite(info, tmp_path / "r", ["test_pod_autoscaling.py"])
    try:
        ns = _wait_for_labelled_namespace(info, 60)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"Namespace/{ns}" in labelled_leftovers(info)
    cleanup = _cleanup_run(info)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert f"deleting namespace {ns}" in cleanup.stdout
    assert labelled_leftovers(info) == []
