"""What ``--aic-install`` needs on a lab with a real node: the helm CLI and operator charts.

The charts ship inside the operators' Go modules (``GoModule.charts``), at the version whose
binary the lab's images hold, so a chart and the image it runs never disagree.  They are copied
into the state directory next to a link to the helm binary; the suite installs from there
exactly as an air-gapped user installs from a local chart directory (``--aic-charts``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .build import BuiltModule

# Go modules the kit needs on a lab with a real node: helm, and each operator whose chart
# the suite may install (its image is built from the same module: nodeimages.py).
MODULES = ("helm", "kueue")
KIT_DIR = "install"


def kit_dir(state_root: Path) -> Path:
    """Where the kit lives in a lab's state directory."""
    return state_root / KIT_DIR


def helm_path(state_root: Path) -> Path | None:
    """The helm CLI of a lab that has the kit, else None."""
    path = kit_dir(state_root) / "helm"
    return path if path.exists() else None


def charts_dir(state_root: Path) -> Path | None:
    """The chart directory (one sub-directory per chart) of a lab that has the kit."""
    path = kit_dir(state_root) / "charts"
    return path if path.is_dir() else None


def prepare(state_root: Path, built: dict[str, BuiltModule]) -> None:
    """Link helm and copy every built module's charts into the state directory."""
    kit = kit_dir(state_root)
    shutil.rmtree(kit, ignore_errors=True)
    (kit / "charts").mkdir(parents=True)
    (kit / "helm").symlink_to(built["helm"].binary("helm"))
    for result in built.values():
        for name, _, _ in result.module.charts:
            shutil.copytree(result.chart_dir(name), kit / "charts" / name)
