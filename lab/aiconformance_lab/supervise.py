"""Starting a component's process from its spec, and waiting until it is healthy."""

from __future__ import annotations

import time

from . import health, procs
from .errors import LabError
from .spec import ProcessSpec
from .statedir import StateDir

START_TIMEOUT_S = 60.0


def launch(spec: ProcessSpec, state: StateDir) -> int:
    """Start the component detached (pid file and log in ``state``); refuse busy ports."""
    if procs.port_bound(spec.port):
        raise LabError(
            f"port {spec.port} for lab component {spec.name} is already in use"
            " by another process; run 'down' or free the port"
        )
    if spec.webhook_port and procs.port_bound(spec.webhook_port):
        raise LabError(webhook_port_busy(spec.name, spec.webhook_port))
    return procs.start(
        spec.argv,
        state.log_file(spec.name),
        state.pid_file(spec.name),
        state.root,
        env=spec.env,
    )


def wait_healthy(spec: ProcessSpec, state: StateDir) -> None:
    """Wait for the component's health endpoint; fail fast if its process exits."""
    pid = procs.read_pid(state.pid_file(spec.name))
    deadline = time.monotonic() + START_TIMEOUT_S
    log = state.log_file(spec.name)
    detail = ""
    while time.monotonic() < deadline:
        if pid is None or not procs.alive(pid):
            raise LabError(_exit_message(spec, procs.log_tail(log), str(log)))
        ok, detail = health.probe(spec, state.pki)
        if ok:
            return
        time.sleep(0.1)  # Process readiness: nothing to watch yet.
    raise LabError(
        f"lab component {spec.name} not healthy after {START_TIMEOUT_S:.0f} s ({detail}); see {log}"
    )


def _exit_message(spec: ProcessSpec, tail: str, log: str) -> str:
    """Why a component exited at start, from the tail of its log."""
    if "address already in use" in tail:
        if spec.webhook_port and f":{spec.webhook_port}" in tail:
            return f"{webhook_port_busy(spec.name, spec.webhook_port)}; see {log}"
        return (
            f"lab component {spec.name}: port {spec.port} is busy"
            f" (address already in use); see {log}"
        )
    return f"lab component {spec.name} exited at start: {tail[-300:]}; see {log}"


def webhook_port_busy(name: str, port: int) -> str:
    """The message for a webhook port held by another process."""
    if name != "kuberay":  # Other operators' webhook ports are chosen free at start.
        return (
            f"port {port} for the webhook server of lab component {name} is already in use"
            " by another process; run 'down' or free the port"
        )
    return (
        f"port {port} for the webhook server of lab component {name} is already in use"
        " (another lab with this operator, or another program); the operator binds it on all"
        " interfaces and cannot move it, so run 'down' on the other lab or free the port, or"
        f" start this lab without {name}"
    )
