"""What a lab reports about itself: how to reach it, and the health of its components."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .kubeconfig import CONTEXT
from .shape import LabShape


@dataclass(frozen=True)
class LabInfo:
    """How to reach a running lab."""

    kubeconfig: Path
    server: str
    shape: LabShape
    state_dir: Path
    context: str = CONTEXT
    reused: bool = False
    ports: dict[str, int] = field(default_factory=dict)
    # AIC_IMAGES-format overrides naming the images built for the real node (None: no node).
    images_file: Path | None = None
    # --aic-install's kit on a lab with a real node (installkit.py): helm and local charts.
    helm: Path | None = None
    charts_dir: Path | None = None


@dataclass(frozen=True)
class ComponentStatus:
    """One component's process and health."""

    name: str
    pid: int | None
    running: bool
    healthy: bool
    detail: str
    rss_kib: int = 0

    def line(self) -> str:
        """Human-readable one-liner for ``status``."""
        state = "healthy" if self.healthy else ("running" if self.running else "stopped")
        pid = f"pid {self.pid}" if self.pid and self.running else "no process"
        rss = f"{self.rss_kib // 1024} MiB" if self.running else "-"
        return f"{self.name:<19} {state:<8} {pid:<12} {rss:>8}  {self.detail}"


@dataclass(frozen=True)
class LabStatus:
    """Whether the lab is up and healthy, and per-component detail."""

    state_dir: Path
    up: bool
    healthy: bool
    components: dict[str, ComponentStatus]
    shape: LabShape | None = None
    server: str | None = None
    kubeconfig: Path | None = None
    rss_kib: int = 0

    def summary(self) -> str:
        """Multi-line report for the CLI."""
        if not self.up:
            return f"lab in {self.state_dir}: down"
        head = "healthy" if self.healthy else "UNHEALTHY"
        lines = [f"lab in {self.state_dir}: up, {head}"]
        if self.shape is not None:
            lines.append(f"shape: {self.shape.describe()}")
        lines.append(f"server: {self.server}  memory (RSS): {self.rss_kib // 1024} MiB")
        lines += [c.line() for c in self.components.values()]
        lines.append(f"kubeconfig: {self.kubeconfig}")
        return "\n".join(lines)
