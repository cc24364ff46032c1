"""The end of a run: verdicts, report files and exit status (once, on the controller), and the
verdict table on the terminal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_aiconformance.catalog import load_catalog
from pytest_aiconformance.check_records import CheckSpec, check_results
from pytest_aiconformance.reports import write_reports
from pytest_aiconformance.reports.meta import RunMeta
from pytest_aiconformance.reports.terminal import format_verdict_table
from pytest_aiconformance.run_state import RunState
from pytest_aiconformance.verdicts import aggregate, must_not_implemented


def write_verdicts(state: RunState, specs: dict[str, CheckSpec], junit_path: Path | None) -> None:
    """Aggregate the checks into verdicts and write every report from them."""
    assert state.version is not None
    results = check_results(state.records, specs)
    selected = {r.requirement for r in results}
    verdicts = aggregate(load_catalog().requirements(state.version), results,
                         selected_ids=selected, suite_ids=state.suite_ids)
    info = state.info
    settings = state.settings
    run = RunMeta(
        checklist_version=state.version,
        server_version=info.git_version if info else "",
        run_id=state.run_id,
        started=state.started,
        finished=dt.datetime.now(dt.UTC),
        kube_context=state.kube.context if state.kube else "",
        operators=tuple(d.summary() for d in info.operators.values() if d.present)
        if info else (),
        accelerator=settings.accelerator,
        allocation_mode=settings.allocation_mode,
    )
    state.report_paths = write_reports(
        settings.report_dir, verdicts, run, settings.platform,
        info.header_lines() if info else [], settings.descriptions, junit_path,
    )
    state.verdicts = list(verdicts)
    state.must_failures = [v.id for v in must_not_implemented(verdicts) if v.id in selected]


def specs_of(items: Iterable[tuple[str, CheckSpec | None]]) -> dict[str, CheckSpec]:
    return {nodeid: spec for nodeid, spec in items if spec is not None}


def terminal_summary(tr: pytest.TerminalReporter, state: RunState) -> None:
    if state.deselected:
        reasons = sorted(set(state.deselected.values()))
        tr.write_sep("-", "aiconformance: deselected by checklist version")
        for reason in reasons:
            count = sum(1 for r in state.deselected.values() if r == reason)
            tr.write_line(f"{count} check(s): {reason}")
    if not state.verdicts:
        return
    tr.write_sep("=", f"AI conformance verdicts (checklist {state.version})")
    for line in format_verdict_table(state.verdicts, width=tr._tw.fullwidth):
        tr.write_line(line)
    for kind, path in sorted(state.report_paths.items()):
        tr.write_line(f"{kind}: {path}")
    if state.must_failures:
        tr.write_line(
            f"MUST requirements not Implemented: {', '.join(state.must_failures)}", red=True
        )
