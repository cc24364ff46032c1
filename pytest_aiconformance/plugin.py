"""pytest-aiconformance: options, markers and hooks. Features live in their own modules."""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections.abc import Generator
from types import FrameType
from typing import Any

import pytest

from pytest_aiconformance import report_flow
from pytest_aiconformance import session as session_setup
from pytest_aiconformance.catalog import load_catalog
from pytest_aiconformance.checks import check_spec
from pytest_aiconformance.isolation import new_run_id
from pytest_aiconformance.settings import KUBECONFIG_HELP, OPTIONS, resolve
from pytest_aiconformance.state import KUBECONFIG_DEST_KEY, STATE_KEY, RunState, get_state

pytest_plugins = ["pytest_aiconformance.fixtures"]

GROUP = "aiconformance"
OUR_KUBECONFIG_DEST = "aic_kubeconfig"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "Kubernetes AI Conformance")
    for spec in OPTIONS:
        kwargs: dict[str, Any] = {"dest": spec.dest, "help": spec.help}
        if spec.kind == "bool":
            kwargs["action"] = "store_true"
            kwargs["default"] = None
        else:
            kwargs["default"] = None
            if spec.metavar:
                kwargs["metavar"] = spec.metavar
        if spec.kind == "choice":
            kwargs["metavar"] = "{" + ",".join(spec.choices) + "}"
        if spec.env:
            kwargs["help"] = f"{spec.help} [env {spec.env}]"
        group.addoption(spec.flag, **kwargs)
        parser.addini(spec.dest, spec.help, default=None)
    parser.addini("aic_kubeconfig", KUBECONFIG_HELP, default=None)


def _find_dest(parser: pytest.Parser, flag: str) -> str | None:
    """The dest of an already registered option, whichever plugin registered it."""
    groups = [parser._anonymous, *parser._groups]
    for group in groups:
        for opt in group.options:
            if flag in opt.names():
                return str(opt.dest)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """Register --kubeconfig late, after every installed plugin had its turn.

    pytest-kind and pytest-helm-charts register an option of the same name; if one did,
    we read that option (same meaning) instead of crashing on a duplicate.
    """
    dest = _find_dest(parser, "--kubeconfig")
    if dest is None:
        parser.getgroup(GROUP).addoption(
            "--kubeconfig", dest=OUR_KUBECONFIG_DEST, default=None, metavar="PATH",
            help=KUBECONFIG_HELP,
        )
        dest = OUR_KUBECONFIG_DEST
    early_config.stash[KUBECONFIG_DEST_KEY] = dest


def pytest_configure(config: pytest.Config) -> None:
    catalog = load_catalog()
    config.addinivalue_line(
        "markers",
        "requirement(id, role='essential', junit=None, title=None): the AI conformance "
        "requirement a check decides; role 'supporting' adds evidence without deciding",
    )
    config.addinivalue_line("markers", "must: checks of MUST requirements")
    config.addinivalue_line("markers", "should: checks of SHOULD requirements")
    config.addinivalue_line("markers", "gpu: checks that need real accelerators")
    config.addinivalue_line("markers", "lab: project tests that need the local lab")
    for req_id in catalog.all_ids:
        config.addinivalue_line("markers", f"{req_id}: checks of requirement {req_id}")
    for category in sorted(set(catalog.categories.values())):
        config.addinivalue_line("markers", f"{category}: checks in category {category}")

    if config.option.help:
        return
    dest = config.stash.get(KUBECONFIG_DEST_KEY, OUR_KUBECONFIG_DEST)
    settings = resolve(config, dest)
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    shared = (workerinput or {}).get("aic", {})
    state = RunState(
        settings=settings,
        kubeconfig_dest=dest,
        run_id=shared.get("run_id") or new_run_id(),
        started=dt.datetime.now(dt.UTC),
        is_worker=workerinput is not None,
        version=shared.get("version") or settings.version,
        version_source=shared.get("version_source") or ("--aic-version" if settings.version
                                                         else ""),
    )
    config.stash[STATE_KEY] = state
    if not state.is_worker and not config.option.collectonly and not settings.cleanup:
        session_setup.check_report_dir(settings.report_dir)
        if getattr(config.option, "xmlpath", None) is None and hasattr(config.option, "xmlpath"):
            config.option.xmlpath = str(settings.report_dir / "junit.xml")
    if not state.is_worker:
        # Phase reports (xdist workers' included) reach this collector on the controller.
        config.pluginmanager.register(report_flow.Collector(state), "aiconformance-collector")
    _install_sigterm(config)


def _install_sigterm(config: pytest.Config) -> None:
    """SIGTERM leads to the same orderly teardown as Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return
    config.add_cleanup(lambda: signal.signal(signal.SIGTERM, previous))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--aic-cleanup: remove every labelled leftover of earlier runs, then exit."""
    if config.option.help or not getattr(config.option, "aic_cleanup", False):
        return None
    dest = config.stash.get(KUBECONFIG_DEST_KEY, OUR_KUBECONFIG_DEST)
    return report_flow.run_cleanup(config, resolve(config, dest))


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if STATE_KEY not in config.stash or config.option.collectonly:
        return
    state = get_state(config)
    if state.settings.cleanup:
        return
    report_flow.start_session(config, state)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: hand the controller's run id, version and kubeconfig to each worker."""
    state = get_state(node.config)
    node.workerinput["aic"] = {
        "run_id": state.run_id,
        "version": state.version,
        "version_source": state.version_source,
        "kubeconfig": os.environ.get("AIC_WORKER_KUBECONFIG", ""),
    }


def pytest_report_header(config: pytest.Config) -> list[str]:
    if STATE_KEY not in config.stash:
        return []
    return report_flow.header_lines(get_state(config))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add id/level/category markers; deselect checks outside the checklist version."""
    report_flow.mark_and_select(config, items)


def pytest_runtest_setup(item: pytest.Item) -> None:
    spec = check_spec(item)
    if spec is not None and STATE_KEY in item.config.stash:
        report_flow.add_item_properties(item, spec, get_state(item.config))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    if call.when == "teardown":
        report_flow.attach_evidence(item)
    report = yield
    report_flow.record_phase(item, report)
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if STATE_KEY not in config.stash:
        return
    report_flow.finish_session(session, get_state(config))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if STATE_KEY in config.stash:
        report_flow.terminal_summary(terminalreporter, get_state(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    if STATE_KEY in config.stash:
        report_flow.unconfigure(config, get_state(config))

