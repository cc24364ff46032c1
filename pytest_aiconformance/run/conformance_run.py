"""The conformance run as a pytest plugin object: it owns the run's state, and its hooks
hand each concern to the module that does it (lifecycle, selection, check_records,
finish). plugin.py registers one per process once the options are resolved.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance.cluster.client import PROGRESS_LOGGER, ClusterError, Unreachable
from pytest_aiconformance.run import check_records, finish, lifecycle, selection
from pytest_aiconformance.run.state import RunState
from pytest_aiconformance.verdicts.model import (
    PROP_OUTAGE,
    PROP_REQUIREMENT,
    PROP_SETUP_ASSERT,
    Role,
)

STASH_KEY = pytest.StashKey["ConformanceRun"]()
CHECKS_PACKAGE = "pytest_aiconformance.checks"


class _TerminalLines(logging.Handler):
    """Long waits' and outages' progress records, as `[aic] ...` lines on the terminal.

    They happen while a check runs, when pytest captures output: capture is suspended for
    the line (as pytest's own live logging does), or it would only show up on a failure.
    """

    def __init__(self, tr: Any, capman: Any) -> None:
        super().__init__(logging.INFO)
        self.tr = tr
        self.capman = capman

    def emit(self, record: logging.LogRecord) -> None:
        suspended = self.capman.global_and_fixture_disabled() if self.capman is not None \
            else contextlib.nullcontext()
        with suspended:
            self.tr.write_line(f"\n[aic] {record.getMessage()}", flush=True)


class ConformanceRun:
    """One process's part of a conformance run (controller, worker or plain session)."""

    def __init__(self, config: pytest.Config, state: RunState) -> None:
        self.config = config
        self.state = state
        self._progress: _TerminalLines | None = None

    # --- session start --------------------------------------------------------------

    def _say(self, line: str) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"[aic] {line}")

    def _targets_conformance_checks(self) -> bool:
        """pytest-xdist controller whose targets are the conformance checks.

        The controller collects nothing, so it cannot wait for collection to show checks; the
        workers would each hit a bad kubeconfig on their own and xdist would report that as
        an internal error. Deciding from the targets lets the controller connect first and
        turn bad input into one line.
        """
        config = self.config
        if self.state.is_worker or not getattr(config.option, "numprocesses", None):
            return False
        targets = [str(a) for a in config.args] or [str(p) for p in config.getini("testpaths")]
        return any(_names_checks(t) for t in targets)

    def start(self) -> None:
        """Connect (starting the lab if asked) and show progress of long waits."""
        lifecycle.start(self.state, self._say)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None and not self.state.is_worker and self._progress is None:
            self._progress = _TerminalLines(
                tr, self.config.pluginmanager.get_plugin("capturemanager"))
            logger = logging.getLogger(PROGRESS_LOGGER)
            logger.addHandler(self._progress)
            logger.setLevel(logging.INFO)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        settings = self.state.settings
        if self.config.option.collectonly or settings.cleanup:
            return
        # Without a named cluster the plugin stays inert until collection shows checks: an
        # installed plugin must not break unrelated pytest runs.
        if settings.lab or settings.target.named or self._targets_conformance_checks():
            self.start()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist: hand the run id, version, cluster target and what the lab set (image
        table, helm, charts) to each worker."""
        node.workerinput["aic"] = {
            "run_id": self.state.run_id,
            "version": self.state.version,
            "version_source": self.state.version_source,
            "target": self.state.settings.target.to_worker(),
            "settings": self.state.settings.to_worker(),
        }

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return self.state.header_lines()

    # --- selection ------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        """Connect now if collection found checks and nobody did yet; then mark and select."""
        state = self.state
        if (state.kube is None and not config.option.collectonly
                and not state.settings.cleanup
                and any(check_records.check_spec(item) is not None for item in items)):
            self.start()
            tr = config.pluginmanager.get_plugin("terminalreporter")
            if tr is not None and not state.is_worker:
                for line in state.header_lines():
                    tr.write_line(line)
        known = {k for checks in state.suite_checks.values() for k in checks}
        for req, checks in check_records.uncollected_essentials(items, known).items():
            state.suite_checks.setdefault(req, {}).update(checks)
        selection.mark_and_select(config, state, items)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Every essential check of a collected module, before -m/-k or node ids select some:
        a requirement whose essential checks did not all run is not decided by this run."""
        for node in report.result:
            spec = check_records.check_spec(node) if isinstance(node, pytest.Item) else None
            if spec is not None and spec.role is Role.ESSENTIAL:
                self.state.suite_checks.setdefault(spec.requirement, {})[node.nodeid] = \
                    spec.junit_name

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """pytest-xdist: collect what each worker learnt (suite ids, version, deselections)."""
        output = getattr(node, "workeroutput", None)
        if isinstance(output, dict):
            selection.merge_worker_output(self.state, output)

    # --- per-check records ----------------------------------------------------------

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        spec = check_records.check_spec(item)
        if spec is not None:
            check_records.add_item_properties(item, spec, self.state.version)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        if call.when == "teardown":
            check_records.attach_evidence(item, self.state.settings.report_dir)
        if call.excinfo is not None and call.excinfo.errisinstance(Unreachable):
            item.user_properties.append((PROP_OUTAGE, call.when))
        elif (call.when == "setup" and call.excinfo is not None
              and call.excinfo.errisinstance((AssertionError, ClusterError))):
            # A fixture's assertion ("KubeRay is not installed", a reconcile that timed out)
            # or the API server's refusal (a webhook that does not answer) is a finding about
            # the platform, like one in the check's body; only no answer at all is an error.
            item.user_properties.append((PROP_SETUP_ASSERT, "true"))
        report = yield
        check_records.record_phase(item, report)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Every phase report reaches the controller (xdist workers' too): one record each."""
        if self.state.is_worker:
            return
        records = self.state.records
        has_props = any(k == PROP_REQUIREMENT for k, _ in report.user_properties)
        if not has_props and report.nodeid not in records and not (
                report.when == "setup" and report.skipped):
            return
        records.setdefault(report.nodeid, check_records.PhaseRecord(report.nodeid)).add(report)

    # --- the end --------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_drop_junit(self, session: pytest.Session) -> None:
        """Before junitxml writes: a run without conformance checks leaves no junit.xml."""
        state = self.state
        if state.is_worker or state.is_conformance_run or not state.junit_default:
            return
        state.junit_default = False
        ours = os.path.normpath(os.path.abspath(str(self.config.option.xmlpath)))
        for plugin in self.config.pluginmanager.get_plugins():
            if type(plugin).__name__ == "LogXML" and getattr(plugin, "logfile", None) == ours:
                plugin.logfile = os.devnull

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Remove what this process created; on the controller, verdicts and reports."""
        state = self.state
        lifecycle.remove_created(
            state, interrupted=session.exitstatus == pytest.ExitCode.INTERRUPTED)
        if state.is_worker or self.config.option.collectonly or state.settings.cleanup:
            return
        if state.version is None or not state.is_conformance_run:
            return  # not a conformance run (no check was collected)
        if state.info is None:
            # pytest-xdist without an explicit cluster: the workers connected, not us.
            try:
                lifecycle.start(state, self._say)
            except pytest.UsageError as exc:
                self._say(f"cluster details missing from the reports: {exc}")
        specs = finish.specs_of((item.nodeid, check_records.check_spec(item))
                                 for item in session.items)
        xmlpath = getattr(self.config.option, "xmlpath", None)
        finish.write_verdicts(state, specs, Path(xmlpath) if xmlpath else None)
        session.exitstatus = finish.exit_status(state, session.exitstatus, session.testsfailed)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        finish.terminal_summary(terminalreporter, self.state)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._progress is not None:
            logging.getLogger(PROGRESS_LOGGER).removeHandler(self._progress)
            self._progress = None
        lifecycle.close(self.state)


def _names_checks(target: str) -> bool:
    """A command-line target inside the checks package (a path or a --pyargs name)."""
    path = target.split("::")[0]
    if path.replace("/", ".").startswith(CHECKS_PACKAGE):
        return True
    parts = Path(path).parts
    return any(parts[i:i + 2] == ("pytest_aiconformance", "checks") for i in range(len(parts)))
