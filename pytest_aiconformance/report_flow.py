"""The run's flow around the checks: session start, selection, per-check records, the end.

plugin.py forwards its hooks here so that it stays a list of hooks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance import session as session_setup
from pytest_aiconformance.catalog import load_catalog
from pytest_aiconformance.checks import CheckSpec, check_spec
from pytest_aiconformance.cluster import ClusterError, connect
from pytest_aiconformance.evidence import EvidenceRecorder
from pytest_aiconformance.isolation import sweep
from pytest_aiconformance.model import (
    PROP_EVIDENCE,
    PROP_JUNIT_NAME,
    PROP_LEVEL,
    PROP_OUTCOME,
    PROP_REASON,
    PROP_REQUIREMENT,
    PROP_ROLE,
    PROP_TITLE,
    PROP_VERSION,
    CheckResult,
    Role,
)
from pytest_aiconformance.outcomes import Outcome, classify_skip
from pytest_aiconformance.settings import Settings
from pytest_aiconformance.state import STATE_KEY, PhaseRecord, RunState

EVIDENCE_KEY = pytest.StashKey[EvidenceRecorder]()
OUTCOME_KEY = pytest.StashKey[dict[str, str]]()


# --- session start --------------------------------------------------------------------


def targets_cluster(state: RunState) -> bool:
    """Whether the options name a cluster, so that the session connects up front.

    Without --kubeconfig, --context or --aic-lab the plugin stays inert until collection
    shows conformance checks: an installed plugin must not break unrelated pytest runs.
    """
    settings = state.settings
    return settings.lab or settings.kubeconfig is not None or settings.context is not None


def join_option_values(config: pytest.Config, flags: set[str]) -> None:
    """Rewrite `--opt value` as `--opt=value` in the invocation args the xdist workers get.

    Workers parse the controller's invocation args before every option is registered there,
    so a separated value (e.g. `--aic-report-dir /tmp/r`) would be taken for a test path.
    """
    args = [str(a) for a in config.invocation_params.args]
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in flags and i + 1 < len(args):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    if out != args:
        config.invocation_params = dataclasses.replace(config.invocation_params,
                                                       args=tuple(out))


def distributed_conformance_run(config: pytest.Config, state: RunState) -> bool:
    """pytest-xdist controller whose targets are the conformance checks.

    The controller collects nothing, so it cannot wait for collection to show checks; the
    workers would each hit a bad kubeconfig on their own and xdist would report that as an
    internal error. Deciding from the targets lets the controller connect first and turn bad
    input into one line.
    """
    if state.is_worker or not getattr(config.option, "numprocesses", None):
        return False
    targets = [str(a) for a in config.args] or [str(p) for p in config.getini("testpaths")]
    return any("conformance_tests" in Path(t.split("::")[0]).parts
               or t.split("::")[0] == "conformance_tests" for t in targets)


def start_session(config: pytest.Config, state: RunState) -> None:
    """Lab (if asked), connection, discovery and version; once per process."""
    if state.kube is not None:
        return
    tr = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if tr is not None:
            tr.write_line(f"[aic] {line}")

    session_setup.check_report_dir(state.settings.report_dir)
    kubeconfig, context = session_setup.effective_kubeconfig(state)
    if state.is_worker:
        shared = getattr(config, "workerinput", {}).get("aic", {})
        if shared.get("kubeconfig"):
            kubeconfig = Path(shared["kubeconfig"])
    elif state.settings.lab:
        kubeconfig = session_setup.start_lab(state, say)
        context = session_setup.LAB_CONTEXT
        os.environ["AIC_WORKER_KUBECONFIG"] = str(kubeconfig)
    state.kubeconfig_path = kubeconfig
    session_setup.connect_and_discover(state, kubeconfig, context)
    if state.kube is not None and tr is not None and not state.is_worker:
        state.kube.progress = lambda line: tr.write_line(f"\n[aic] {line}", flush=True)


def start_late(config: pytest.Config, state: RunState, items: list[pytest.Item]) -> None:
    """Collection is done: connect now if it found conformance checks and nobody did yet."""
    if state.kube is not None or config.option.collectonly or state.settings.cleanup:
        return
    if not any(check_spec(item) is not None for item in items):
        return
    start_session(config, state)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and not state.is_worker:
        for line in header_lines(state):
            tr.write_line(line)


def is_conformance_run(state: RunState) -> bool:
    """Connected to a cluster, or some process ran a conformance check."""
    return state.kube is not None or any(
        PROP_REQUIREMENT in r.props for r in state.records.values()
    )


def silence_default_junit(config: pytest.Config, state: RunState) -> None:
    """Not a conformance run: drop the junit.xml we defaulted into the report dir."""
    if not state.junit_default:
        return
    state.junit_default = False
    ours = os.path.normpath(os.path.abspath(str(config.option.xmlpath)))
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "LogXML" and getattr(plugin, "logfile", None) == ours:
            plugin.logfile = os.devnull


def header_lines(state: RunState) -> list[str]:
    lines = [f"aiconformance: run {state.run_id}, report dir {state.settings.report_dir}"]
    if state.version:
        lines.append(f"checklist version: {state.version} ({state.version_source})")
    if state.info is not None:
        lines.extend(state.info.header_lines())
    return lines


# --- selection --------------------------------------------------------------------------


def mark_and_select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add requirement/level/category markers and deselect checks outside the version."""
    catalog = load_catalog()
    state: RunState | None = config.stash.get(STATE_KEY, None)
    version = state.version if state else None
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
            if state is not None:
                state.deselected[item.nodeid] = (
                    f"{spec.requirement} is not in checklist version {version}"
                )
            continue
        item.add_marker(req.marker_level)
        keep.append(item)
    if state is not None:
        state.suite_ids = suite_ids
        workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["aic"] = {
                "suite_ids": sorted(suite_ids),
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
    if state.version is None and aic.get("version"):
        state.version = str(aic["version"])
        state.version_source = str(aic.get("version_source") or "")


def add_item_properties(item: pytest.Item, spec: CheckSpec, state: RunState) -> None:
    """Properties every check's JUnit testcase carries (requirement, level, version...)."""
    catalog = load_catalog()
    version = state.version or catalog.known_versions[-1]
    req = catalog.get(version, spec.requirement)
    props = [
        (PROP_REQUIREMENT, spec.requirement),
        (PROP_LEVEL, req.level if req else ""),
        (PROP_VERSION, version),
        (PROP_ROLE, spec.role.value),
        (PROP_JUNIT_NAME, spec.junit_name),
        (PROP_TITLE, spec.title),
    ]
    have = {k for k, _ in item.user_properties}
    item.user_properties.extend((k, v) for k, v in props if k not in have)


# --- per-check records ------------------------------------------------------------------


def evidence_for(item: pytest.Item) -> EvidenceRecorder:
    """The item's evidence recorder (one per check)."""
    if EVIDENCE_KEY not in item.stash:
        spec = check_spec(item)
        requirement = spec.requirement if spec else ""
        junit = spec.junit_name if spec else item.nodeid
        title = spec.title if spec else item.name
        item.stash[EVIDENCE_KEY] = EvidenceRecorder(item.nodeid, requirement, junit, title)
    return item.stash[EVIDENCE_KEY]


def attach_evidence(item: pytest.Item) -> None:
    """Before the teardown report: evidence into <system-out> and into a file per check."""
    if EVIDENCE_KEY not in item.stash:
        return
    recorder = item.stash[EVIDENCE_KEY]
    if recorder.empty:
        return
    item.add_report_section("teardown", "stdout (evidence)", recorder.data.render())
    config = item.config
    state: RunState | None = config.stash.get(STATE_KEY, None)
    if state is None:
        return
    rel = recorder.write(state.settings.report_dir)
    item.user_properties.append((PROP_EVIDENCE, rel))


def _skip_message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


def _failure_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or str(report.longrepr or "failed")
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    return first[:500]


def record_phase(item: pytest.Item, report: pytest.TestReport) -> None:
    """Remember this phase's outcome on the item; add the verdict property before teardown."""
    outcomes = item.stash.setdefault(OUTCOME_KEY, {})
    outcomes[report.when] = report.outcome
    if check_spec(item) is None:
        return
    if report.when in ("setup", "call") and (report.failed or report.skipped
                                               or report.when == "call"):
        outcome, reason = phase_outcome(report)
        item.user_properties[:] = [
            (k, v) for k, v in item.user_properties if k not in (PROP_OUTCOME, PROP_REASON)
        ]
        item.user_properties.extend([(PROP_OUTCOME, outcome.value), (PROP_REASON, reason)])


def phase_outcome(report: pytest.TestReport) -> tuple[Outcome, str]:
    if report.skipped:
        return classify_skip(_skip_message(report))
    if report.failed:
        return (Outcome.FAILED if report.when == "call" else Outcome.ERROR), _failure_line(report)
    return Outcome.PASSED, ""


class Collector:
    """Receives every phase report on the controller and keeps one record per check."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = {str(k): str(v) for k, v in report.user_properties}
        if (PROP_REQUIREMENT not in props and report.nodeid not in self.state.records
                and not (report.when == "setup" and report.skipped)):
            return
        record = self.state.records.setdefault(report.nodeid, PhaseRecord(report.nodeid))
        record.props.update(props)
        record.outcomes[report.when] = report.outcome
        record.duration += report.duration
        if report.skipped and not record.skip_message:
            record.skip_message = _skip_message(report)
        if report.failed and not record.failure:
            record.failure = f"{report.when}: {_failure_line(report)}"


def check_results(state: RunState, items_specs: dict[str, CheckSpec]) -> list[CheckResult]:
    """One CheckResult per check from the phase records."""
    results = []
    for nodeid, record in state.records.items():
        props = record.props
        spec = items_specs.get(nodeid)
        requirement = props.get(PROP_REQUIREMENT) or (spec.requirement if spec else "")
        if not requirement:
            continue
        outs = record.outcomes
        if outs.get("setup") == "failed":
            outcome, reason = Outcome.ERROR, record.failure
        elif outs.get("call") == "failed":
            outcome, reason = Outcome.FAILED, record.failure.removeprefix("call: ")
        elif "skipped" in (outs.get("setup"), outs.get("call")):
            outcome, reason = classify_skip(record.skip_message)
        elif outs.get("teardown") == "failed":
            outcome, reason = Outcome.ERROR, record.failure
        elif outs.get("call") == "passed":
            outcome, reason = Outcome.PASSED, ""
        else:
            outcome, reason = Outcome.ERROR, "the check did not complete (interrupted?)"
        role_text = props.get(PROP_ROLE) or (spec.role.value if spec else "essential")
        results.append(CheckResult(
            nodeid=nodeid,
            requirement=requirement,
            role=Role(role_text),
            outcome=outcome,
            reason=reason,
            junit_name=props.get(PROP_JUNIT_NAME) or (spec.junit_name if spec else nodeid),
            title=props.get(PROP_TITLE) or (spec.title if spec else nodeid),
            evidence_file=props.get(PROP_EVIDENCE, ""),
            duration=round(record.duration, 3),
        ))
    results.sort(key=lambda r: r.nodeid)
    return results


# --- the end ----------------------------------------------------------------------------


def _say_stderr(line: str) -> None:
    sys.stderr.write(f"[aic] {line}\n")


def finish_session(session: pytest.Session, state: RunState) -> None:
    """Verdicts and reports, once, on the controller; exit status from the MUSTs."""
    config = session.config
    if state.context is not None:
        # Every process tears down what it created (xdist workers included).
        problems = state.context.teardown()
        if session.exitstatus == pytest.ExitCode.INTERRUPTED and not state.is_worker:
            # A create interrupted after the server stored the object is not tracked;
            # the run-id label still finds it.
            try:
                sweep(state.context.kube, _say_stderr, run_id=state.run_id)
            except ClusterError as exc:
                problems.append(f"sweep of run {state.run_id}: {exc}")
        for problem in problems:
            sys.stderr.write(f"[aic] teardown: {problem}\n")
    if state.is_worker or config.option.collectonly or state.settings.cleanup:
        return
    if state.version is None or not is_conformance_run(state):
        return  # not a conformance run (no check was collected)
    if state.info is None:
        # pytest-xdist without an explicit cluster: the workers connected, not us.
        try:
            start_session(config, state)
        except pytest.UsageError as exc:
            sys.stderr.write(f"[aic] cluster details missing from the reports: {exc}\n")
    specs = {item.nodeid: s for item in session.items if (s := check_spec(item)) is not None}
    results = check_results(state, specs)
    from pytest_aiconformance import reporting

    reporting.write_all(config, state, results)
    if state.must_failures and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def terminal_summary(tr: pytest.TerminalReporter, state: RunState) -> None:
    from pytest_aiconformance import reporting

    reporting.terminal_summary(tr, state)


def unconfigure(config: pytest.Config, state: RunState) -> None:
    if state.kube is not None:
        state.kube.close()
    keep_lab = os.environ.get("AIC_LAB_KEEP", "") in ("1", "true", "yes")
    if state.lab is not None and state.lab_started_here and not state.is_worker and not keep_lab:
        state.lab.down()


def run_cleanup(config: pytest.Config, settings: Settings) -> int:
    """--aic-cleanup: sweep every labelled leftover; prints what it deletes."""
    def say(line: str) -> None:
        sys.stdout.write(f"[aic] {line}\n")
        sys.stdout.flush()

    kubeconfig, context = settings.kubeconfig, settings.context
    if settings.lab:
        from pytest_aiconformance.lab import Lab

        lab = Lab()
        if not lab.status().healthy:
            say("the lab is not running; nothing to clean")
            return 0
        kubeconfig, context = lab.kubeconfig, session_setup.LAB_CONTEXT
    try:
        kube = connect(kubeconfig, context)
        count = sweep(kube, say)
    except ClusterError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(pytest.ExitCode.USAGE_ERROR)
    say(f"cleanup done: {count} object(s) deleted")
    return 0


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)

