"""Selection: requirement, level and category markers, checklist-version deselection, and
what xdist workers learn in collection merged back on the controller."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pytest_aiconformance.catalog import load_catalog
from pytest_aiconformance.check_records import check_spec
from pytest_aiconformance.run_state import RunState


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


def join_option_values(config: pytest.Config, flags: set[str]) -> None:
    """Rewrite `--opt value` as `--opt=value` in the invocation args the xdist workers get.

    Workers parse the controller's invocation args before every option is registered there,
    so a separated value (e.g. `--aic-report-dir /tmp/r`) would be taken for a test path.
    """
    args = [str(a) for a in config.invocation_params.args]
    joined = join_values(args, flags)
    if joined != args:
        config.invocation_params = dataclasses.replace(config.invocation_params,
                                                       args=tuple(joined))


def join_values(args: list[str], flags: set[str]) -> list[str]:
    """`[--opt, value]` -> `[--opt=value]` for the given flags; everything else unchanged."""
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--":  # the rest are positional
            out.extend(args[i:])
            break
        if args[i] in flags and i + 1 < len(args):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out
