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
from pytest_aiconformance.catalog import load_catalog
from pytest_aiconformance.checks import check_spec
from pytest_aiconformance.isolation import new_run_id
from pytest_aiconformance.settings import KUBECONFIG_HELP, OPTIONS, resolve
from pytest_aiconformance.state import KUBECONFIG_DEST_KEY, STATE_KEY, RunState, get_state

pytest_plugins = ["pytest_aiconformance.fixtures"]

GROUP = "aiconformance"
OUR_KUBECONFIG_DEST = "aic_kubeconfig"


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
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
    if _loaded_by_conftest(pluginmanager):
        # Our pytest_load_initial_conftests will not run (that hook is running now).
        _add_kubeconfig(parser)


def _loaded_by_conftest(pluginmanager: pytest.PytestPluginManager) -> bool:
    """A checkout's conftest.py lists us in pytest_plugins (package not installed)."""
    return any(
        str(getattr(plugin, "__file__", "") or "").endswith("conftest.py")
        for plugin in pluginmanager.get_plugins()
    )


def _find_dest(parser: pytest.Parser, flag: str) -> str | None:
    """The dest of an already registered option, whichever plugin registered it."""
    groups = [parser._anonymous, *parser._groups]
    for group in groups:
        for opt in group.options:
            if flag in opt.names():
                return str(opt.dest)
    return None


def _add_kubeconfig(parser: pytest.Parser) -> str:
    """--kubeconfig: reuse another plugin's option of that name, else add ours."""
    dest = _find_dest(parser, "--kubeconfig")
    if dest is None:
        parser.getgroup(GROUP).addoption(
            "--kubeconfig", dest=OUR_KUBECONFIG_DEST, default=None, metavar="PATH",
            help=KUBECONFIG_HELP,
        )
        dest = OUR_KUBECONFIG_DEST
    return dest


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    """Register --kubeconfig late, after every installed plugin and conftest had its turn.

    pytest-kind and pytest-helm-charts register an option of the same name; if one did
    (before or after us), we read that option (same meaning) instead of crashing on a
    duplicate.
    """
    result = yield
    early_config.stash[KUBECONFIG_DEST_KEY] = _add_kubeconfig(parser)
    return result


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
    dest = _kubeconfig_dest(config)
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
    conformance = not state.is_worker and not config.option.collectonly and not settings.cleanup
    if conformance and hasattr(config.option, "xmlpath") and config.option.xmlpath is None:
        config.option.xmlpath = str(settings.report_dir / "junit.xml")
        state.junit_default = True
    if not state.is_worker:
        valued = {spec.flag for spec in OPTIONS if spec.kind != "bool"} | {"--kubeconfig"}
        report_flow.join_option_values(config, valued)
        # Phase reports (xdist workers' included) reach this collector on the controller.
        config.pluginmanager.register(report_flow.Collector(state), "aiconformance-collector")
    _install_sigterm(config)


def _kubeconfig_dest(config: pytest.Config) -> str:
    if KUBECONFIG_DEST_KEY not in config.stash:
        config.stash[KUBECONFIG_DEST_KEY] = (
            _find_dest(config._parser, "--kubeconfig") or OUR_KUBECONFIG_DEST
        )
    return config.stash[KUBECONFIG_DEST_KEY]


def _install_sigterm(config: pytest.Config) -> None:
    """SIGTERM leads to the same orderly teardown as Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return
    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--aic-cleanup: remove every labelled leftover of earlier runs, then exit."""
    if config.option.help or not getattr(config.option, "aic_cleanup", False):
        return None
    dest = _kubeconfig_dest(config)
    return report_flow.run_cleanup(config, resolve(config, dest))


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if STATE_KEY not in config.stash or config.option.collectonly:
        return
    state = get_state(config)
    if state.settings.cleanup:
        return
    if not (report_flow.targets_cluster(state)
            or report_flow.distributed_conformance_run(config, state)):
        return  # connects after collection, and only if it found conformance checks
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
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        report_flow.start_late(config, state, items)
    report_flow.mark_and_select(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: collect what each worker learnt (suite ids, version, deselections)."""
    state = node.config.stash.get(STATE_KEY, None)
    output = getattr(node, "workeroutput", None)
    if state is not None and isinstance(output, dict):
        report_flow.merge_worker_output(state, output)


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


@pytest.hookimpl(tryfirst=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_drop_junit(session: pytest.Session) -> None:
    """Before junitxml writes: a run without conformance checks leaves no junit.xml behind."""
    state = session.config.stash.get(STATE_KEY, None)
    if state is not None and not state.is_worker and not report_flow.is_conformance_run(state):
        report_flow.silence_default_junit(session.config, state)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if STATE_KEY in config.stash:
        report_flow.terminal_summary(terminalreporter, get_state(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    if STATE_KEY in config.stash:
        report_flow.unconfigure(config, get_state(config))

