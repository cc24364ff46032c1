"""The files of one lab, all under its state directory.

PKI, kubeconfigs, etcd data, pid files, logs and ``state.json`` (shape, ports and the exact
command line of every component, so a single component can be stopped and started again later,
by another process) live in one directory; this module knows their names and keeps them tidy.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import locks, procs
from .build import cache_root
from .errors import LabError
from .pki import PKIPaths

STATE_VERSION = 1


def default_state_dir() -> Path:
    """``$AIC_LAB_STATE_DIR`` or ``<cache>/lab``."""
    override = os.environ.get("AIC_LAB_STATE_DIR")
    return Path(override).expanduser() if override else cache_root() / "lab"


@dataclass(frozen=True)
class StateDir:
    """The state directory ``root`` of a lab and the files in it."""

    root: Path

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig of the lab (self-contained; context ``aic-lab``)."""
        return self.root / "kubeconfig"

    @property
    def state_file(self) -> Path:
        """``state.json``: how the running lab was started."""
        return self.root / "state.json"

    @property
    def pki(self) -> PKIPaths:
        """The lab's PKI files."""
        return PKIPaths(self.root / "pki")

    @property
    def etc(self) -> Path:
        """Configuration files of the components (kubeconfigs, kwok and Kueue configs)."""
        return self.root / "etc"

    def operator_dir(self, name: str) -> Path:
        """Files an operator reads at start (serving certificates)."""
        return self.root / "operators" / name

    def pid_file(self, name: str) -> Path:
        """Pid file of a component."""
        return self.root / "pids" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        """Log of a component (kept after ``down`` for diagnosis)."""
        return self.root / "logs" / f"{name}.log"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One lab operation at a time per state directory (also across processes)."""
        with locks.exclusive(self.root / ".lock"):
            yield

    def load_state(self) -> dict[str, Any] | None:
        """The contents of ``state.json``; None when missing, unreadable or of another version."""
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return None
        return data

    def write_state(self, state: dict[str, Any]) -> None:
        """Write ``state.json`` (``state`` plus the format version)."""
        self.state_file.write_text(json.dumps({"version": STATE_VERSION, **state}, indent=2))

    def live_pids(self) -> dict[str, int]:
        """Components whose pid file names a live process of this lab."""
        marker = str(self.root)
        live: dict[str, int] = {}
        pid_dir = self.root / "pids"
        if not pid_dir.is_dir():
            return live
        for pid_file in sorted(pid_dir.glob("*.pid")):
            pid = procs.read_pid(pid_file)
            if pid is not None and procs.is_ours(pid, marker):
                live[pid_file.stem] = pid
        return live

    def has_pid_files(self) -> bool:
        """Whether pid files are left (of processes that may be gone)."""
        pid_dir = self.root / "pids"
        return pid_dir.is_dir() and any(pid_dir.iterdir())

    def remove_pid_files(self) -> None:
        """Forget every component's pid."""
        shutil.rmtree(self.root / "pids", ignore_errors=True)

    def fresh(self) -> None:
        """Remove what belongs to a previous lab; keep its logs one generation back."""
        node = self.root / "node"
        if node.is_dir() and _mounts_under(node):
            raise LabError(f"{node} still has mounts (a real node not cleaned up); run 'down'")
        for name in ("pids", "etcd", "pki", "etc", "operators", "node"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        for name in ("state.json", "kubeconfig"):
            (self.root / name).unlink(missing_ok=True)
        logs = self.root / "logs"
        if logs.is_dir():
            previous = self.root / "logs.previous"
            shutil.rmtree(previous, ignore_errors=True)
            logs.rename(previous)
        for name in ("pids", "etc", "logs"):
            (self.root / name).mkdir(parents=True, exist_ok=True)


def _mounts_under(directory: Path) -> list[str]:
    """Mount points below ``directory`` (removing it recursively would cross them)."""
    prefix = str(directory) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    return [p for p in (line.split()[4] for line in lines) if p.startswith(prefix)]
