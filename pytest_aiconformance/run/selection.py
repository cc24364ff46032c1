"""Selection: requirement, level and category markers, checklist-version deselection, and
what xdist workers learn in collection merged back on the controller.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.run.check_records import check_spec
from pytest_aiconformance.run.state import RunState
from pytest_aiconformance.verdicts.catalog import load_catalog


def mark_and_select(config: pytest.Config, state: RunState, items: list[pytest.Item]) -> None:
    """Add requirement/level/category markers and deselect checks outside the version."""
    catalog = load_catalog()
    version = state.version
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    suite_ids: set[str] = set()
    for item in items:
        spec = check_spec(item)
        if spec is None:
            keep.append(item)
            continue
        suite_ids.add(spec.requirement)
        if spec.requirement not in catalog.categories:
            raise pytest.UsageError(
                f"{item.nodeid}: unknown requirement id {spec.requirement!r}"
            )
        req = catalog.get(version, spec.requirement) if version else \
            catalog.newest_containing(spec.requirement)
        item.add_marker(spec.requirement)
        item.add_marker(catalog.categories[spec.requirement])
        if req is None:
            dropped.append(item)
            state.deselected[item.nodeid] = (
                f"{spec.requirement} is not in checklist version {version}"
            )
            continue
        item.add_marker(req.marker_level)
        keep.append(item)
    state.suite_ids = suite_ids
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["aic"] = {
            "suite_ids": sorted(suite_ids),
            "suite_checks": state.suite_checks,
            "deselected": dict(state.deselected),
            "version": state.version,
            "version_source": state.version_source,
        }
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def merge_worker_output(state: RunState, output: dict[str, Any]) -> None:
    """pytest-xdist: what a worker learnt in collection, for the controller's reports."""
    aic = output.get("aic") or {}
    if "suite_ids" in aic:
        state.suite_ids = (state.suite_ids or set()) | set(aic["suite_ids"])
    state.deselected.update(aic.get("deselected") or {})
    for req, checks in (aic.get("suite_checks") or {}).items():
        state.suite_checks.setdefault(req, {}).update(checks)
    if state.version is None and aic.get("version"):
        state.version = str(aic["version"])
        state.version_source = str(aic.get("version_source") or "")
