"""The end of a run: verdicts, report files and exit status (once, on the controller), and the
verdict table on the terminal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_aiconformance.cluster.discovery import describe_simulation
from pytest_aiconformance.reports import write_reports
from pytest_aiconformance.reports.meta import RunMeta
from pytest_aiconformance.reports.submission import write_submission
from pytest_aiconformance.reports.terminal import format_verdict_table
from pytest_aiconformance.run.check_records import CheckSpec, check_results, derive_outcome
from pytest_aiconformance.run.state import RunState
from pytest_aiconformance.validator.rules import NA_ALLOWED_MUSTS, validate_submission
from pytest_aiconformance.verdicts.catalog import load_catalog, official_descriptions
from pytest_aiconformance.verdicts.model import PROP_REQUIREMENT, RequirementVerdict, Status
from pytest_aiconformance.verdicts.outcomes import Outcome
from pytest_aiconformance.verdicts.rules import aggregate, must_not_implemented


def write_verdicts(state: RunState, specs: dict[str, CheckSpec], junit_path: Path | None) -> None:
    """Aggregate the checks into verdicts and write every report from them."""
    assert state.version is not None
    results = check_results(state.records, specs)
    selected = {r.requirement for r in results}
    verdicts = aggregate(load_catalog().requirements(state.version), results,
                         selected_ids=selected, suite_ids=state.suite_ids,
                         expected=state.suite_checks)
    info = state.info
    settings = state.settings
    state.simulated = describe_simulation(settings.lab, info)
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
        simulated=state.simulated,
    )
    environment = info.header_lines() if info else []
    descriptions = settings.descriptions or official_descriptions(state.version)
    state.report_paths = write_reports(
        settings.report_dir, verdicts, run, settings.platform, environment, descriptions,
        junit_path,
    )
    if settings.submission is not None:
        state.submission = write_submission(settings.submission, verdicts, run,
                                            settings.platform, environment, descriptions,
                                            settings.report_dir)
        state.submission_check = validate_submission(state.submission.product_dir)
    state.verdicts = list(verdicts)
    state.must_failures = [v.id for v in must_not_implemented(verdicts) if v.id in selected]


def exit_status(state: RunState, status: int, failed_reports: int) -> int:
    """The run's exit status: non-zero when a MUST this run decided is not Implemented, or
    when a failure is not a verdict (a check errored, a teardown failed, a test without a
    requirement failed); a failed check that only counts toward a verdict, such as a SHOULD
    the platform does not implement, is in the verdict table and the reports, not in the
    exit status.  ``failed_reports``: pytest's count of failed reports (every phase)."""
    if state.must_failures:
        return int(pytest.ExitCode.TESTS_FAILED) if status == 0 else status
    if status != pytest.ExitCode.TESTS_FAILED:
        return status
    # Failures that are verdicts: of a SHOULD, or of a MUST decided all the same (another
    # solution implements it); a failed check of a MUST left undecided still fails the run.
    settled = {v.id for v in state.verdicts if v.level != "MUST"
               or v.status in (Status.IMPLEMENTED, Status.NA)}
    verdict_failures = 0
    for record in state.records.values():
        phases = [when for when, out in record.outcomes.items() if out == "failed"]
        if not phases:
            continue
        outcome, _ = derive_outcome(record)
        if record.props.get(PROP_REQUIREMENT) not in settled or outcome is not Outcome.FAILED \
                or len(phases) > 1:
            return status
        verdict_failures += 1
    # A failed report no check record accounts for (a test without a requirement): the run
    # failed for a reason that is no verdict.
    return int(pytest.ExitCode.OK) if verdict_failures == failed_reports else status


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
    if state.simulated:
        tr.write_line(f"SIMULATED, not a real platform: {state.simulated} "
                      "(every report says so)", yellow=True)
    for kind, path in sorted(state.report_paths.items()):
        tr.write_line(f"{kind}: {path}")
    if state.must_failures:
        tr.write_line(
            f"MUST requirements not Implemented: {', '.join(state.must_failures)}", red=True
        )
    for verdict in refused_na(state.verdicts):
        tr.write_line(f"{verdict.id} is N/A ({verdict.reason}): an honest verdict, but the CNCF "
                      "validator accepts N/A for no MUST but cluster_autoscaling, so a "
                      "submission will be refused until the platform implements it", yellow=True)
    if state.submission is not None:
        _submission_summary(tr, state)


def refused_na(verdicts: list[RequirementVerdict]) -> list[RequirementVerdict]:
    """MUSTs this run found N/A that the program's validator will not accept as N/A."""
    return [v for v in verdicts if v.level == "MUST" and v.status is Status.NA
            and v.id not in NA_ALLOWED_MUSTS]


def _submission_summary(tr: pytest.TerminalReporter, state: RunState) -> None:
    """Where the submission is, what to fill in, and what the program's validator would say."""
    submission = state.submission
    assert submission is not None
    tr.write_sep("-", "CNCF submission")
    tr.write_line(f"submission: {submission.product_yaml}")
    if submission.missing_metadata:
        tr.write_line("fill before submitting (PRODUCT.yaml metadata, or --aic-platform): "
                      + ", ".join(submission.missing_metadata), yellow=True)
    check = state.submission_check
    if check is None:
        return
    for finding in check.findings:
        tr.write_line(finding.line(), red=finding.level == "error")
    verdict = ("the validator's offline rules accept it" if check.ok else
               "the CNCF validator would refuse it for the errors above")
    tr.write_line(f"aiconformance validate {submission.product_dir}: {verdict}")
