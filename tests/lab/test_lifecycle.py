"""Lab lifecycle: reuse or refuse, component stop/restart, leftovers of a killed session,
stale state, busy ports, the CLI, and a clean ``down`` (no process, no bound port)."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import labchecks
import pytest
from aiconformance_lab import Lab, LabError, LabInfo, LabShape, procs
from kubernetes import client

from conftest import api_client

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SMALL = LabShape(gpu_nodes=1, cpu_nodes=0, dra=False, metrics_server=False)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aiconformance_lab", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        check=False,
    )


def lab_pids(state_dir: Path) -> dict[str, int]:
    pids = {}
    for pid_file in (state_dir / "pids").glob("*.pid"):
        pid = procs.read_pid(pid_file)
        if pid is not None:
            pids[pid_file.stem] = pid
    return pids


def test_up_while_up_reuses_same_shape_and_refuses_another(lab: LabInfo) -> None:
    again = Lab(lab.state_dir).up(LabShape(), lambda _: None)
    assert again.reused
    assert again.server == lab.server
    with pytest.raises(LabError, match="another shape is running"):
        Lab(lab.state_dir).up(LabShape(gpu_nodes=3), lambda _: None)


def test_status_cli_exit_codes(lab: LabInfo, tmp_path: Path) -> None:
    ok = cli("--state-dir", str(lab.state_dir), "status")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "healthy" in ok.stdout
    down = cli("--state-dir", str(tmp_path), "status")
    assert down.returncode == 1
    assert "down" in down.stdout


def test_kubectl_sees_nodes_and_version(lab: LabInfo) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    kc = ["--kubeconfig", str(lab.kubeconfig)]
    nodes = subprocess.run(
        [kubectl, *kc, "get", "nodes", "-o", "name"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert "node/aic-gpu-0" in nodes
    version = json.loads(
        subprocess.run(
            [kubectl, *kc, "version", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        ).stdout
    )
    assert version["serverVersion"]["gitVersion"] == "v1.35.4"


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = cli("--state-dir", str(tmp_path), "stop", "kwok")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr
    no_go = cli("build", env={"PATH": str(tmp_path)})
    assert no_go.returncode == 1
    assert no_go.stderr.startswith("error:")
    assert "'go' is not on PATH" in no_go.stderr
    assert no_go.stderr.count("\n") == 1


def test_busy_port_is_reported_not_hung(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        real = procs.free_ports
        monkeypatch.setattr(procs, "free_ports", lambda n: [port, *real(n - 1)])
        started = time.monotonic()
        with pytest.raises(LabError, match=f"port {port} .* already in use"):
            Lab(tmp_path).up(SMALL, lambda _: None)
        assert time.monotonic() - started < 30
    assert not any(procs.alive(p) for p in lab_pids(tmp_path).values())


def _start_owned_lab_in_child(state_dir: Path) -> subprocess.Popen[str]:
    """A 'test session' that starts a lab it owns, then hangs (to be SIGKILLed)."""
    code = (
        "import sys; from pathlib import Path;"
        "from aiconformance_lab import Lab, LabShape;"
        f"Lab(Path({str(state_dir)!r})).up(LabShape(**{SMALL.to_dict()!r}), lambda _: None,"
        " owner_pid=__import__('os').getpid());"
        "print('READY', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(child.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=120):
            child.kill()
            pytest.fail("child session did not bring its lab up within 120 s")
    assert child.stdout.readline().strip() == "READY"
    return child


def test_killed_session_restart_components_and_clean_down(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    state = tmp_path / "lab"
    # Whatever fails below, no lab process may outlive the test (its pid files vanish with
    # the temporary directory, and nothing could find the processes afterwards).
    request.addfinalizer(lambda: Lab(state).down(lambda m: None))
    child = _start_owned_lab_in_child(state)
    first = lab_pids(state)
    assert set(first) == {"etcd", "apiserver", "controller-manager", "scheduler", "kwok"}
    child.send_signal(signal.SIGKILL)
    child.wait()
    # The lab outlives the killed session ...
    assert all(procs.alive(pid) for pid in first.values())
    # ... and the next up recognises it as leftovers and replaces it.
    messages: list[str] = []
    lab = Lab(state)
    info = lab.up(SMALL, messages.append)
    assert any("left by ended session" in m for m in messages), messages
    assert not any(procs.alive(pid) for pid in first.values())
    assert lab.status().healthy

    with api_client(info) as api:
        core = client.CoreV1Api(api)
        # Scheduler stopped: a new pod stays unscheduled; restarted: it runs.
        lab.stop_component("scheduler")
        status = lab.status()
        assert not status.healthy
        assert not status.components["scheduler"].running
        core.create_namespaced_pod("default", labchecks.gpu_pod("after-restart"))
        lab.start_component("scheduler")
        running = labchecks.wait_for(
            core.list_namespaced_pod,
            lambda pods: any(p.status.phase == "Running" for p in pods),
            timeout=60,
            namespace="default",
            field_selector="metadata.name=after-restart",
        )
        assert running, "pod did not run after the scheduler restart"
        # Every other component can be stopped and started too; the lab is healthy after.
        for name in ("apiserver", "controller-manager", "kwok"):
            lab.stop_component(name)
            assert not lab.status().components[name].running
            lab.start_component(name)
            assert lab.status().healthy, name
        assert core.read_namespaced_pod("after-restart", "default").status.phase == "Running"

    ports = Lab(state).info().ports
    pids = lab_pids(state)
    lab.down()
    assert not any(procs.alive(pid) for pid in pids.values())
    assert not any(procs.port_bound(port) for port in ports.values())
    assert (state / "logs" / "apiserver.log").is_file(), "logs are kept after down"

    # A stale state dir (pid file of a dead process) is cleaned with a message, via the CLI.
    dead = subprocess.Popen(["true"])
    dead.wait()
    (state / "pids").mkdir(exist_ok=True)
    (state / "pids" / "etcd.pid").write_text(f"{dead.pid}\n")
    up = cli(
        "--state-dir",
        str(state),
        "up",
        "--gpu-nodes",
        "1",
        "--cpu-nodes",
        "0",
        "--no-dra",
        "--no-metrics-server",
    )
    try:
        assert up.returncode == 0, up.stderr
        assert "cleaning stale state dir" in up.stderr
        assert up.stdout.strip().splitlines()[-1] == str(state / "kubeconfig")
        assert cli("--state-dir", str(state), "status").returncode == 0
    finally:
        down = cli("--state-dir", str(state), "down")
    assert down.returncode == 0
    assert cli("--state-dir", str(state), "status").returncode == 1


def test_a_host_without_real_nodes_starts_the_kwok_part(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real-node shape with a gateway and Prometheus on a host that cannot run a real node
    (no root, say): one line says why, and the kwok-only lab starts without the node's parts."""
    from aiconformance_lab import hostnet

    monkeypatch.setattr(hostnet, "missing_prerequisite", lambda *_: "not root")
    said: list[str] = []
    lab = Lab(tmp_path / "state")
    shape = LabShape(gpu_nodes=1, cpu_nodes=0, real_nodes=1, gateway=True, prometheus=True,
                     real_node_dra=True)
    try:
        info = lab.up(shape, said.append)
        assert (info.shape.real_nodes, info.shape.gateway, info.shape.prometheus,
                info.shape.real_node_dra) == (0, False, False, False)
        assert "not root: starting the kwok-only lab (checks that need containers stay Not " \
               "verified)" in said
        assert info.images_file is None
    finally:
        lab.down(lambda _: None)
