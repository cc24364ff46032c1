"""Glue from the run state to verdicts and report files (controller only, once)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pytest_aiconformance.catalog import load_catalog
from pytest_aiconformance.model import CheckResult, RequirementVerdict
from pytest_aiconformance.reports import write_reports
from pytest_aiconformance.reports.meta import PlatformMeta, RunMeta, load_platform_meta
from pytest_aiconformance.reports.terminal import format_verdict_table
from pytest_aiconformance.state import RunState
from pytest_aiconformance.verdicts import aggregate, must_not_implemented


def platform_meta(state: RunState) -> PlatformMeta:
    settings = state.settings
    try:
        base = load_platform_meta(settings.platform_file) if settings.platform_file \
            else PlatformMeta()
    except ValueError as exc:
        raise pytest.UsageError(f"--aic-platform: {exc}") from None
    if settings.platform_overrides:
        import dataclasses

        base = dataclasses.replace(base, **settings.platform_overrides)
    return base


def write_all(config: pytest.Config, state: RunState, results: list[CheckResult]) -> None:
    assert state.version is not None
    catalog = load_catalog()
    requirements = catalog.requirements(state.version)
    selected = {r.requirement for r in results}
    verdicts = aggregate(requirements, results, selected_ids=selected,
                         suite_ids=state.suite_ids)
    info = state.info
    operators = tuple(d.summary() for d in info.operators.values() if d.present) if info else ()
    run = RunMeta(
        checklist_version=state.version,
        server_version=info.git_version if info else "",
        run_id=state.run_id,
        started=state.started,
        finished=dt.datetime.now(dt.UTC),
        kube_context=state.kube.context if state.kube else "",
        operators=operators,
        accelerator=state.settings.accelerator,
        allocation_mode=state.settings.allocation_mode,
    )
    environment = info.header_lines() if info else []
    xmlpath = getattr(config.option, "xmlpath", None)
    paths = write_reports(
        state.settings.report_dir, verdicts, results, run, platform_meta(state), environment,
        state.settings.template, Path(xmlpath) if xmlpath else None,
    )
    state.reports_written = {"paths": paths, "verdicts": verdicts}
    state.must_failures = [
        v.id for v in must_not_implemented(verdicts) if v.id in selected
    ]


def terminal_summary(tr: pytest.TerminalReporter, state: RunState) -> None:
    verdicts: list[RequirementVerdict] = state.reports_written.get("verdicts", [])
    if state.deselected:
        reasons = sorted(set(state.deselected.values()))
        tr.write_sep("-", "aiconformance: deselected by checklist version")
        for reason in reasons:
            count = sum(1 for r in state.deselected.values() if r == reason)
            tr.write_line(f"{count} check(s): {reason}")
    if not verdicts:
        return
    tr.write_sep("=", f"AI conformance verdicts (checklist {state.version})")
    for line in format_verdict_table(verdicts, width=tr._tw.fullwidth):
        tr.write_line(line)
    for kind, path in sorted(state.reports_written.get("paths", {}).items()):
        tr.write_line(f"{kind}: {path}")
    if state.must_failures:
        tr.write_line(
            f"MUST requirements not Implemented: {', '.join(state.must_failures)}", red=True
        )
