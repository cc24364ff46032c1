"""Session set-up: bring up (or reuse) the lab, connect, discover, pick the checklist version.

Called from the plugin's hooks. Every failure here is a usage problem for the user and is
raised as pytest.UsageError with one line, so pytest exits non-zero without a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance.catalog import UnknownVersionError, load_catalog
from pytest_aiconformance.cluster import ClusterError, connect
from pytest_aiconformance.discovery import discover
from pytest_aiconformance.isolation import RunContext
from pytest_aiconformance.state import RunState

LAB_CONTEXT = "aic-lab"


def start_lab(state: RunState, say: Any) -> Path:
    """Start the local lab for this session (or reuse a running one); return its kubeconfig."""
    from pytest_aiconformance.lab import Lab, LabError, LabShape  # heavy; only with --aic-lab

    settings = state.settings
    try:
        shape = LabShape.from_yaml(settings.lab_shape) if settings.lab_shape \
            else conformance_shape(LabShape)
        lab = Lab()
        was_up = lab.status().healthy
        # A lab this session starts dies with it; a SIGKILLed session's lab is replaced.
        info = lab.up(shape, progress=say, owner_pid=None if was_up else os.getpid())
    except LabError as exc:
        raise pytest.UsageError(f"lab: {exc}") from None
    state.lab = lab
    state.lab_started_here = not was_up
    return Path(info.kubeconfig)


def conformance_shape(shape_type: Any) -> Any:
    """The lab the suite runs on by default: what a conformant platform would offer.

    Two GPU nodes, one time-sliced GPU node (for gpu_sharing), one CPU node, the simulated
    DRA driver, metrics-server, and the operators the lab can run.
    """
    wanted = {"gpu_nodes": 2, "time_sliced_nodes": 1, "cpu_nodes": 1, "kuberay": True,
              "kueue": True}
    known = set(getattr(shape_type, "__dataclass_fields__", {}))
    return shape_type(**{k: v for k, v in wanted.items() if k in known})


def check_report_dir(path: Path) -> None:
    """The report dir must be writable before any cluster time is spent."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".aic-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise pytest.UsageError(
            f"--aic-report-dir: cannot write to {path}: {exc.strerror or exc}"
        ) from None


def connect_and_discover(state: RunState, kubeconfig: Path | None, context: str | None) -> None:
    """Connect, discover and resolve the checklist version; UsageError on any problem."""
    try:
        kube = connect(kubeconfig, context)
        info = discover(kube)
    except ClusterError as exc:
        raise pytest.UsageError(str(exc)) from None
    state.kube = kube
    state.info = info
    state.context = RunContext(kube, state.run_id, state.settings.timeout_scale)
    if state.version is None:
        try:
            state.version = load_catalog().version_for_server(info.major, info.minor)
        except UnknownVersionError as exc:
            raise pytest.UsageError(f"{exc}; choose one with --aic-version") from None
        state.version_source = f"from server {info.git_version}"


def effective_kubeconfig(state: RunState) -> tuple[Path | None, str | None]:
    settings = state.settings
    if settings.lab:
        return None, LAB_CONTEXT
    return settings.kubeconfig, settings.context


def env_kubeconfig_for_workers(path: Path | None) -> dict[str, str]:
    return {"AIC_WORKER_KUBECONFIG": str(path)} if path else {}


def worker_kubeconfig() -> Path | None:
    value = os.environ.get("AIC_WORKER_KUBECONFIG")
    return Path(value) if value else None
