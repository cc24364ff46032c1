"""--aic-install with real Helm on the lab.

A lab with a real node and no gang scheduler (no Kueue, Workload API gates off): the suite's
--aic-install runs the lab's helm (built from helm.sh/helm/v3) on the Kueue chart that ships in
the sigs.k8s.io/kueue module, with the Kueue image the lab built from the same module; the
controller pod really runs on the real node, gang_scheduling is Implemented through it, and
after the run the release, its namespace and its cluster-wide objects are gone.  A lab whose
Kueue was there before is left exactly as it was, and a chart that cannot be found ends the
run with one line.

One real node per machine: the real-node lab here starts after test_real_node.py's are down
(lab tests run sequentially).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiconformance_lab import Lab, LabInfo, LabShape, hostnet, realnode
from aiconformance_lab.build import build_modules

from pytest_aiconformance.cluster.client import Kube, connect

pytestmark = [pytest.mark.lab]

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_gang_scheduling.py"
NO_GANG = dict(gpu_nodes=2, cpu_nodes=1, kueue=False, workload_api=False)
KUEUE_KINDS = ("clusterqueues.kueue.x-k8s.io", "localqueues.kueue.x-k8s.io",
               "workloads.kueue.x-k8s.io")
needs_real_node = pytest.mark.skipif(hostnet.missing_prerequisite() is not None,
                                     reason=f"no real node here: "
                                            f"{hostnet.missing_prerequisite()}")


def _say(message: str) -> None:
    sys.stderr.write(f"[lab] {message}\n")


def _suite(args: list[str], report: Path, env: dict[str, str] | None = None,
           timeout: float = 900) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
           "-c", str(ROOT / "pyproject.toml"), str(CHECK), "--aic-report-dir", str(report),
           "--aic-version", "1.35", "-q", "-rs", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})}, check=False)


def _gang(report: Path) -> dict[str, Any]:
    data = json.loads((report / "verdicts.json").read_text())
    return next(r for r in data["requirements"] if r["id"] == "gang_scheduling")


def _helm_releases(helm: Path, info: LabInfo) -> list[str]:
    out = subprocess.run([str(helm), "--kubeconfig", str(info.kubeconfig), "list", "-A", "-a",
                          "-o", "json"], capture_output=True, text=True, check=True).stdout
    return sorted(f"{r['namespace']}/{r['name']}" for r in json.loads(out or "[]"))


def _kueue_state(kube: Kube) -> dict[str, Any]:
    """Everything of Kueue's the suite could touch, by name and resourceVersion."""
    state: dict[str, Any] = {}
    for name in KUEUE_KINDS:
        crd = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        state[name] = crd["metadata"]["resourceVersion"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for obj in kube.items("admissionregistration.k8s.io/v1", kind):
            if "kueue" in obj["metadata"]["name"]:
                state[f"{kind}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
    for kind in ("Secret", "Service", "ConfigMap"):
        for obj in kube.items("v1", kind, "kueue-system"):
            state[f"{kind}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
    return state


class PodWatch:
    """Kueue pods seen in kueue-system while the suite runs (node, phase, image, ready)."""

    def __init__(self, info: LabInfo) -> None:
        self.kube = connect(Path(info.kubeconfig), info.context)
        self.seen: dict[str, dict[str, Any]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                pods = self.kube.items("v1", "Pod", "kueue-system")
            except Exception:  # the namespace comes and goes
                continue
            for pod in pods:
                ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in pod.get("status", {}).get("conditions", []))
                phase = pod.get("status", {}).get("phase")
                entry = self.seen.setdefault(pod["metadata"]["name"], {"ready": False})
                entry.update(node=pod["spec"].get("nodeName"),
                             image=pod["spec"]["containers"][0]["image"], phase=phase)
                # Ready while Running, at some point (it ends Succeeded once uninstalled).
                entry["ready"] = entry["ready"] or (ready and phase == "Running")

    def __enter__(self) -> PodWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.kube.close()


@pytest.fixture(scope="module")
def node_lab() -> Iterator[tuple[Lab, LabInfo, Path]]:
    """A real-node lab without any gang scheduler (a short state dir: kubelet sockets)."""
    path = Path(tempfile.mkdtemp(prefix="aic-hi-"))
    lab = Lab(path)
    started = time.monotonic()
    info = lab.up(LabShape(**NO_GANG, real_nodes=1), _say, owner_pid=os.getpid(),
                  port_wait_s=600)
    assert info.shape.real_nodes == 1, "the lab fell back to kwok only"
    _say(f"real-node lab without a gang scheduler up in {time.monotonic() - started:.0f} s")
    yield lab, info, path
    lab.down(_say)
    shutil.rmtree(path, ignore_errors=True)


@needs_real_node
def test_aic_install_installs_kueue_with_helm_and_removes_it(node_lab, tmp_path):
    _lab, info, state_dir = node_lab
    assert info.helm is not None
    assert info.charts_dir is not None
    chart = yaml.safe_load((info.charts_dir / "kueue" / "Chart.yaml").read_text())
    assert chart["version"] == "0.17.0"
    shape = tmp_path / "shape.yaml"
    shape.write_text(yaml.safe_dump(info.shape.to_dict()))
    report = tmp_path / "report"
    started = time.monotonic()
    # As users run it on the lab: --aic-lab reuses the running lab of that shape.
    with PodWatch(info) as watch:
        proc = _suite(["--aic-lab", f"--aic-lab-shape={shape}", "--aic-install"], report,
                      env={"AIC_LAB_STATE_DIR": str(state_dir)})
    elapsed = time.monotonic() - started
    out = proc.stdout + proc.stderr
    _say(f"gang_scheduling with --aic-install: {elapsed:.0f} s; Kueue pods {watch.seen}")
    assert proc.returncode == 0, out[-4000:]
    gang = _gang(report)
    assert gang["status"] == "Implemented", out[-4000:]
    outcomes = {c["junit_name"]: c["outcome"] for c in gang["checks"]}
    kueue = {n: o for n, o in outcomes.items() if "kueue" in n}
    assert kueue, outcomes
    assert set(kueue.values()) == {"passed"}, outcomes
    # The controller really ran, on the real node, from the image the lab built.
    assert watch.seen, "no Kueue pod was ever seen"
    ran = [p for p in watch.seen.values() if p["ready"]]
    assert ran, watch.seen
    assert {p["node"] for p in ran} == {realnode.NODE_NAME}, watch.seen
    assert all(p["image"].startswith("aic-lab.local/kueue:") for p in ran), watch.seen
    # Gone after the run: the release, the namespace it made, Kueue's CRDs and webhooks.
    assert _helm_releases(info.helm, info) == []
    kube = connect(Path(info.kubeconfig), info.context)
    try:
        names = {n["metadata"]["name"] for n in kube.items("v1", "Namespace")}
        assert "kueue-system" not in names
        crds = {c["metadata"]["name"] for c in
                kube.items("apiextensions.k8s.io/v1", "CustomResourceDefinition")}
        assert not crds & set(KUEUE_KINDS)
        hooks = [h["metadata"]["name"] for kind in ("MutatingWebhookConfiguration",
                                                    "ValidatingWebhookConfiguration")
                 for h in kube.items("admissionregistration.k8s.io/v1", kind)]
        assert not [h for h in hooks if "kueue" in h], hooks
    finally:
        kube.close()


@needs_real_node
def test_chart_that_cannot_be_found_is_one_line(node_lab, tmp_path):
    _lab, info, _ = node_lab
    assert info.helm is not None
    assert info.images_file is not None
    empty = tmp_path / "charts"
    empty.mkdir()
    report = tmp_path / "report"
    proc = _suite(["--kubeconfig", str(info.kubeconfig), "--context", info.context,
                   "--aic-install", f"--aic-helm={info.helm}", f"--aic-charts={empty}"],
                  report, env={"AIC_IMAGES": str(info.images_file)}, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out[-3000:]
    assert (f"--aic-install: chart kueue 0.17.0 not found in {empty} (looked for "
            "kueue/Chart.yaml and kueue-0.17.0.tgz)") in out
    assert "Traceback" not in out
    assert _helm_releases(info.helm, info) == []


@needs_real_node
def test_ctrl_c_during_the_install_uninstalls_it(node_lab, tmp_path):
    """SIGINT to the run (as a terminal's Ctrl-C: the whole process group) while helm waits:
    the release and the namespace the run made are gone when the run has ended."""
    _lab, info, state_dir = node_lab
    assert info.helm is not None
    shape = tmp_path / "shape.yaml"
    shape.write_text(yaml.safe_dump(info.shape.to_dict()))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
           "-c", str(ROOT / "pyproject.toml"), str(CHECK), "--aic-report-dir",
           str(tmp_path / "report"), "--aic-version", "1.35", "-q", "--aic-lab",
           f"--aic-lab-shape={shape}", "--aic-install"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "AIC_LAB_STATE_DIR": str(state_dir)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            # As a terminal's Ctrl-C finds it (a background launcher ignores
                            # SIGINT, and the child would inherit that).
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not _helm_releases(info.helm, info):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "helm never made the release"
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0, out[-3000:]
    assert "KeyboardInterrupt" in out or "Interrupted" in out or "--aic-install:" in out, \
        out[-3000:]
    assert _helm_releases(info.helm, info) == [], out[-3000:]
    kube = connect(Path(info.kubeconfig), info.context)
    try:
        names = {n["metadata"]["name"] for n in kube.items("v1", "Namespace")}
    finally:
        kube.close()
    assert "kueue-system" not in names, out[-3000:]


def test_preexisting_kueue_is_left_untouched(tmp_path):
    """Kueue already there (the lab's own): --aic-install installs nothing, changes nothing."""
    state = Path(tempfile.mkdtemp(prefix="aic-hk-"))
    lab = Lab(state)
    try:
        info = lab.up(LabShape(**{**NO_GANG, "kueue": True}), _say, owner_pid=os.getpid())
        built = build_modules(("helm", "kueue"), _say)
        helm = built["helm"].binary("helm")
        charts = built["kueue"].directory / "charts"
        kube = connect(Path(info.kubeconfig), info.context)
        before = _kueue_state(kube)
        report = tmp_path / "report"
        proc = _suite(["--kubeconfig", str(info.kubeconfig), "--context", info.context,
                       "--aic-install", f"--aic-helm={helm}", f"--aic-charts={charts}"], report)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert _gang(report)["status"] == "Implemented", out[-4000:]
        assert _kueue_state(kube) == before
        assert _helm_releases(helm, info) == []
        kube.close()
    finally:
        lab.down(_say)
        shutil.rmtree(state, ignore_errors=True)
