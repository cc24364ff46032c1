"""The lab's real node: pods really run, with simulated GPUs inside their containers, a Gateway
data plane (Envoy Gateway, or Traefik) and Prometheus, so the in-container requirements are
decided on the lab; its host state is removed on down and after a killed session.

Only one real node runs per machine (the kubelet's device-plugin socket is a fixed path), so
the labs of this module run one after the other: the conformant one (module fixture) first,
then each negative variant in its own test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiconformance_lab import Lab, LabInfo, LabShape, hostnet, realnode
from aiconformance_lab import procs as lab_procs

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(hostnet.missing_prerequisite() is not None,
                       reason=f"no real node here: {hostnet.missing_prerequisite()}"),
]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "pytest_aiconformance" / "checks"
REAL = dict(gpu_nodes=2, time_sliced_nodes=1, cpu_nodes=1, kuberay=True, kueue=True,
            trainer=True, karpenter=True, real_nodes=1, gateway=True, prometheus=True,
            keda=True, shared_gpus=1, gpu_injection="runtime", real_node_dra=True)
# A small real-node lab for the negative variants: what their one check needs.
SMALL = dict(gpu_nodes=1, cpu_nodes=0, real_nodes=1)


def _say(message: str) -> None:
    sys.stderr.write(f"[lab] {message}\n")


def _up(tmp: Path, shape: LabShape) -> tuple[Lab, LabInfo]:
    lab = Lab(tmp)
    info = lab.up(shape, _say, owner_pid=os.getpid(), port_wait_s=600)
    assert info.shape.real_nodes == shape.real_nodes, "the lab fell back to kwok only"
    return lab, info


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A state directory short enough for the kubelet's sockets (pytest's are too long)."""
    path = Path(tempfile.mkdtemp(prefix="aic-rn-"))
    yield path
    Lab(path).down(_say)  # A test that failed half-way must not leave its node behind.
    shutil.rmtree(path, ignore_errors=True)


def run_suite(info: LabInfo, report: Path, files: list[str] | None = None,
              *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """The suite as users run it against a cluster, with the lab's image table (AIC_IMAGES)."""
    targets = [str(CHECKS / f) for f in files] if files else [str(CHECKS)]
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
           "-c", str(ROOT / "pyproject.toml"), *targets, "--kubeconfig", str(info.kubeconfig),
           "--context", info.context, "--aic-report-dir", str(report), "-q", "-rs",
           "--aic-version", "1.35", *args]
    assert info.images_file is not None
    env = {**os.environ, "AIC_IMAGES": str(info.images_file)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env, check=False)


def verdicts(report: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((report / "verdicts.json").read_text())
    return {r["id"]: r for r in data["requirements"]}


def outcomes(req: dict[str, Any]) -> dict[str, str]:
    return {c["junit_name"].split("[")[0]: c["outcome"] for c in req["checks"]}


def host_state() -> dict[str, Any]:
    """What a real node changes on the host, to compare before and after."""
    def sysctl(key: str) -> str:
        return Path("/proc/sys", key).read_text().strip()

    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                           check=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            check=True).stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    return {
        "bridge": hostnet.BRIDGE in links,
        "tables": sorted(line for line in tables.splitlines() if line.strip()),
        "lab mounts": sum(1 for line in mounts.splitlines() if "/node/" in line.split()[4]),
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{hostnet.CGROUP_NAME}")),
        "sysctls": {k: sysctl(k) for k in (*hostnet.KUBELET_SYSCTLS, "net/ipv4/ip_forward")},
        "paths": {str(p): p.exists() for p in (hostnet.DEVICE_PLUGIN_DIR,
                                                hostnet.CONTAINER_LOG_LINKS,
                                                hostnet.SHIM_SOCKET_DIR)},
    }


@pytest.fixture(scope="module")
def before() -> dict[str, Any]:
    return host_state()


class RealLab:
    """The conformant real-node lab of this module, started on first use; the negative
    variants stop it first (one real node per machine)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.lab: Lab | None = None
        self.info: LabInfo | None = None

    def get(self) -> tuple[Lab, LabInfo]:
        if self.lab is None or self.info is None:
            started = time.monotonic()
            self.lab, self.info = _up(self.state_dir, LabShape(**REAL))
            _say(f"real-node conformant lab up in {time.monotonic() - started:.0f} s")
        return self.lab, self.info

    def stop(self) -> None:
        if self.lab is not None:
            self.lab.down(_say)
        self.lab = self.info = None


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory,
           before: dict[str, Any]) -> Iterator[RealLab]:
    lab = RealLab(tmp_path_factory.mktemp("rn"))
    yield lab
    lab.stop()
    assert host_state() == before


@pytest.fixture
def real(holder: RealLab) -> tuple[Lab, LabInfo]:
    return holder.get()


def test_verdict_matrix_on_real_node_lab(real, tmp_path):
    """Every MUST the lab can run is decided for real and Implemented."""
    _lab, info = real
    report = tmp_path / "report"
    started = time.monotonic()
    proc = run_suite(info, report)
    _say(f"full suite on the real-node lab: {time.monotonic() - started:.0f} s, "
         f"exit {proc.returncode}")
    assert (report / "verdicts.json").is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
    v = verdicts(report)
    implemented = ("dra_support", "ai_inference", "gang_scheduling", "cluster_autoscaling",
                   "pod_autoscaling", "accelerator_metrics", "ai_service_metrics",
                   "secure_accelerator_access", "robust_controller",
                   "driver_runtime_management")
    got = {rid: v[rid]["status"] for rid in implemented}
    assert got == {rid: "Implemented" for rid in implemented}, \
        {rid: v[rid]["reason"] for rid in implemented if got[rid] != "Implemented"}
    access = outcomes(v["secure_accelerator_access"])
    assert set(access.values()) == {"passed"}, access
    # gpu_sharing on the real node's renamed time-sliced replicas (shared_gpus), identity read
    # inside its pods; the isolated nvidia.com/gpu beside them keeps DistinctDevices there.
    assert v["gpu_sharing"]["status"] == "Implemented", v["gpu_sharing"]
    assert set(outcomes(v["gpu_sharing"]).values()) == {"passed"}, v["gpu_sharing"]
    # The real node's DRA kubelet plugin prepared the claim with a CDI spec containerd
    # applied: the claimed device's name is in the container (DeviceMetadataInContainer).
    assert set(outcomes(v["dra_support"]).values()) == {"passed"}, v["dra_support"]
    # The NVIDIA runtime (handler and RuntimeClass nvidia) injected the driver tool; the
    # RuntimeClass is the lab's and admits the accelerator nodes.
    assert set(outcomes(v["driver_runtime_management"]).values()) == {"passed"}, \
        v["driver_runtime_management"]
    log = realnode.runtime_log(info.state_dir).read_text()
    assert "from volume mounts under /var/run/nvidia-container-devices" in log, log
    assert "NVIDIA_VISIBLE_DEVICES=all of an unprivileged container ignored" in log, log
    evidence = (report / "evidence.md").read_text()
    assert "aic-real-0: time-slicing: 4 x nvidia.com/gpu.shared from 1 device(s)" in evidence
    assert "aic-real-0 left out" not in evidence  # DistinctDevices compared its whole GPUs
    # The Gateway is Envoy Gateway's: an Envoy pod on the real node behind a ClusterIP
    # Service; the path and header matches and the weighted split are real HTTP through it.
    assert set(outcomes(v["ai_inference"]).values()) == {"passed"}
    assert ("GatewayClass aic-lab-envoy-gateway (controller "
            "gateway.envoyproxy.io/gatewayclass-controller) is Accepted") in evidence
    assert "sent 210 requests to the Gateway address 10.96." in evidence
    # The reports say the accelerators are simulated.
    run = json.loads((report / "verdicts.json").read_text())["run"]
    assert "simulated accelerators on aic-real-0" in run["simulated"], run
    assert "NOT A SUBMISSION FOR A REAL PLATFORM" in (report / "PRODUCT.yaml").read_text()
    # Every MUST Implemented: the suite's exit status says so.
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_pods_reach_the_api_and_each_other(real):
    """Pod networking: the kubernetes Service (kube-proxy) and cluster DNS from a pod."""
    _lab, info = real
    env = {**os.environ, "KUBECONFIG": str(info.kubeconfig)}
    images = _images(info)
    name = "netcheck"
    manifest = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": "aic-real-0"},
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "c", "image": images["curl"],
                # Always exits 0: what it saw is in its log.
                "command": ["sh", "-c",
                            "nslookup kubernetes.default.svc.cluster.local 2>&1;"
                            " echo | nc -w 5 kubernetes.default.svc 443 && echo tcp=ok;"
                            " nslookup example.com >/dev/null 2>&1 || echo outside=refused;"
                            " true"],
            }],
        },
    }
    subprocess.run(["kubectl", "apply", "-f", "-"], input=json.dumps(manifest), text=True,
                   env=env, check=True, capture_output=True)
    try:
        subprocess.run(["kubectl", "wait", "--for=jsonpath={.status.phase}=Succeeded",
                        f"pod/{name}", "--timeout=60s"], env=env, check=True,
                       capture_output=True)
        logs = subprocess.run(["kubectl", "logs", name], env=env, check=True,
                              capture_output=True, text=True).stdout
    finally:
        subprocess.run(["kubectl", "delete", "pod", name, "--wait=false"], env=env,
                       check=False, capture_output=True)
    assert "10.96.0.1" in logs, logs  # cluster DNS: the kubernetes Service's address
    assert "tcp=ok" in logs, logs  # the Service through kube-proxy to the API server
    assert "outside=refused" in logs, logs  # no name outside the cluster resolves


def _images(info: LabInfo) -> dict[str, str]:
    import yaml

    assert info.images_file is not None
    data = yaml.safe_load(info.images_file.read_text())
    return {k: str(v) for k, v in data["images"].items()}


@pytest.mark.parametrize(("variant", "files", "rid", "cause"), [
    (dict(gpu_plugin_mode="all-devices"), ["test_secure_accelerator_access.py"],
     "secure_accelerator_access", "sees 2 devices"),
    (dict(gpu_exporter="no-device-labels", prometheus=True), ["test_accelerator_metrics.py"],
     "accelerator_metrics", "device label"),
    (dict(gpu_exporter="frozen-util", prometheus=True), ["test_accelerator_metrics.py"],
     "accelerator_metrics", "did not rise"),
    (dict(gateway=False), ["test_ai_inference.py"], "ai_inference", "GatewayClass"),
    (dict(prometheus=False), ["test_ai_service_metrics.py"], "ai_service_metrics",
     "Prometheus"),
    # The NVIDIA runtime honours NVIDIA_VISIBLE_DEVICES set by an unprivileged pod itself
    # (the toolkit's accept-nvidia-visible-devices-envvar-when-unprivileged, with the device
    # plugin's envvar strategy): nvidia-smi and the devices reach a pod with no allocation.
    # driver_runtime_management runs next to it and must stay Implemented.
    (dict(gpu_injection="runtime-envvar"),
     ["test_secure_accelerator_access.py", "test_driver_runtime_management.py"],
     "secure_accelerator_access",
     "NVIDIA_VISIBLE_DEVICES=all with RuntimeClass nvidia and no request exposes 2 devices"),
], ids=["isolation-broken", "exporter-no-device-labels", "exporter-frozen-util",
        "no-gateway", "no-prometheus", "runtime-injects-without-allocation"])
def test_negative_variant_flips_its_requirement(holder, tmp_path, short_dir, variant, files,
                                               rid, cause):
    """Each broken piece makes its requirement no longer Implemented, naming the cause."""
    holder.stop()  # One real node per machine.
    lab, info = _up(short_dir, LabShape(**{**SMALL, **variant}))
    try:
        report = tmp_path / "report"
        proc = run_suite(info, report, files)
        log = realnode.runtime_log(info.state_dir)
        runtime_log = log.read_text() if log.is_file() else ""
    finally:
        lab.down(_say)
    assert (report / "verdicts.json").is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
    v = verdicts(report)
    # Not Implemented, or Partially where the variant breaks only some of its checks (a
    # frozen exporter still labels its devices).
    assert v[rid]["status"] in ("Not Implemented", "Partially Implemented"), \
        (v[rid], proc.stdout[-2000:])
    said = " ".join([v[rid]["reason"], *v[rid]["notes"],
                     *(c.get("reason") or "" for c in v[rid]["checks"])])
    assert cause in said, v[rid]
    # Exactly this requirement flips: every other one the files decided stays Implemented.
    decided = {r: v[r]["status"] for r in v if r != rid and v[r]["status"] != "Not verified"}
    assert set(decided.values()) <= {"Implemented"}, decided
    if variant.get("gpu_injection") == "runtime-envvar":
        failed = {k for k, o in outcomes(v[rid]).items() if o != "passed"}
        assert failed == {"TestSecureAcceleratorAccess/RuntimeClassWithoutRequest"}, v[rid]
        # The runtime itself did it: every GPU, from the pod's own variable.
        assert "(from NVIDIA_VISIBLE_DEVICES=all of an unprivileged container)" in runtime_log, \
            runtime_log


def test_traefik_gateway_routes_inference_traffic(holder, tmp_path, short_dir):
    """The lab's other Gateway API implementation (gateway_impl: traefik, one host process on
    the node's bridge) passes ai_inference too: the check holds for more than one data plane."""
    holder.stop()
    lab, info = _up(short_dir, LabShape(**{**SMALL, "gateway": True, "gateway_impl": "traefik"}))
    try:
        report = tmp_path / "report"
        proc = run_suite(info, report, ["test_ai_inference.py"])
    finally:
        lab.down(_say)
    assert (report / "verdicts.json").is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
    v = verdicts(report)
    assert v["ai_inference"]["status"] == "Implemented", (v["ai_inference"], proc.stdout[-2000:])
    evidence = (report / "evidence.md").read_text()
    assert ("GatewayClass aic-lab-traefik (controller traefik.io/gateway-controller) is "
            "Accepted") in evidence
    assert "sent 210 requests to the Gateway address 10.213.0.1" in evidence


def test_time_sliced_real_node_shows_gpu_sharing(holder, tmp_path, short_dir):
    """The real node's device plugin in time-slicing mode (GPU Operator-style labels, 4
    replicas per GPU): pods on it share devices, and gpu_sharing is Implemented, its identity
    probe read inside pods on that node."""
    holder.stop()
    lab, info = _up(short_dir, LabShape(**{**SMALL, "gpu_plugin_mode": "time-slicing"}))
    try:
        report = tmp_path / "report"
        proc = run_suite(info, report, ["test_gpu_sharing.py"])
    finally:
        lab.down(_say)
    assert (report / "verdicts.json").is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
    v = verdicts(report)
    assert v["gpu_sharing"]["status"] == "Implemented", (v["gpu_sharing"], proc.stdout[-2000:])
    assert set(outcomes(v["gpu_sharing"]).values()) == {"passed"}


def test_real_node_dra_device_in_container(holder, tmp_path, short_dir):
    """The real node's DRA kubelet plugin (real_node_dra): its ResourceSlice, a claim prepared
    with a CDI spec containerd applies, and dra_support's in-container check decided there."""
    holder.stop()
    lab, info = _up(short_dir, LabShape(**{**SMALL, "shared_gpus": 1, "gpu_injection": "runtime",
                                           "real_node_dra": True}))
    try:
        report = tmp_path / "report"
        proc = run_suite(info, report, ["test_dra_support.py"])
    finally:
        lab.down(_say)
    assert (report / "verdicts.json").is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
    v = verdicts(report)
    assert v["dra_support"]["status"] == "Implemented", (v["dra_support"], proc.stdout[-2000:])
    assert set(outcomes(v["dra_support"]).values()) == {"passed"}, v["dra_support"]
    assert "pinned to aic-real-0" in (report / "evidence.md").read_text()


def test_killed_session_leaves_nothing_on_the_host(holder, short_dir, before):
    """SIGKILL every process of a real-node lab (the session too): down then removes the
    node's containers and host state, and the host is exactly as it was."""
    holder.stop()
    state = short_dir
    script = (f"from aiconformance_lab import Lab, LabShape\n"
              f"Lab({str(state)!r}).up(LabShape(gpu_nodes=1, cpu_nodes=0, real_nodes=1),"
              f" owner_pid=__import__('os').getpid())\n"
              f"import time; time.sleep(600)\n")
    session = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not Lab(state).status().healthy and time.monotonic() < deadline:
            time.sleep(1)  # Another process's lab: polling only.
        assert Lab(state).status().healthy
        assert host_state()["bridge"]
    finally:
        session.send_signal(signal.SIGKILL)
        session.wait()
    pids = [int(f.read_text()) for f in (state / "pids").glob("*.pid")]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(lab_procs.alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)  # Not our children: polling only.
    assert Lab(state).down(_say) == []  # Nothing left running; its host state goes anyway.
    assert host_state() == before
