"""pytest-aiconformance: options, markers and hooks. Features live in their own modules."""

from __future__ import annotations

import datetime as dt
import inspect
import itertools
import signal
from collections.abc import Generator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from pytest_aiconformance.cluster.run_objects import new_run_id
from pytest_aiconformance.run import lifecycle
from pytest_aiconformance.run.check_records import NEEDS_CONTAINERS
from pytest_aiconformance.run.conformance_run import STASH_KEY, ConformanceRun
from pytest_aiconformance.run.option_values import join_option_values
from pytest_aiconformance.run.settings import KUBECONFIG_HELP, OPTIONS, ClusterTarget, resolve
from pytest_aiconformance.run.state import RunState
from pytest_aiconformance.verdicts.catalog import load_catalog

pytest_plugins = ["pytest_aiconformance.run.fixtures"]

GROUP = "aiconformance"
OUR_KUBECONFIG_DEST = "aic_kubeconfig"
KUBECONFIG_DEST_KEY = pytest.StashKey[str]()
VALUED_FLAGS = frozenset({spec.flag for spec in OPTIONS if spec.kind != "bool"} | {"--kubeconfig"})


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup(GROUP, "Kubernetes AI Conformance")
    for spec in OPTIONS:
        kwargs: dict[str, Any] = {"dest": spec.dest, "help": spec.help, "default": None}
        if spec.kind == "bool":
            kwargs["action"] = "store_true"
        elif spec.kind == "choice":
            kwargs["metavar"] = "{" + ",".join(spec.choices) + "}"
        elif spec.metavar:
            kwargs["metavar"] = spec.metavar
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


def _refuse_misread_rootdir(early_config: pytest.Config, args: list[str]) -> None:
    """`--opt PATH`: pytest picks the rootdir and ini file before it knows our options, so it
    takes PATH for a test path; where that moves the rootdir (a file outside the project),
    the run would lose the ini settings and collect the wrong tests. Say so in one line."""
    try:
        from _pytest.config.findpaths import determine_setup
    except ImportError:  # pragma: no cover - a pytest without it cannot be checked
        return
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a in VALUED_FLAGS]
    if not values:
        return
    ns = early_config.known_args_namespace
    kept = [a for a in ns.file_or_dir if a not in values]
    kwargs: dict[str, Any] = {"inifile": ns.inifilename, "args": kept,
                              "rootdir_cmd_arg": ns.rootdir or None,
                              "invocation_dir": early_config.invocation_params.dir}
    if "override_ini" in inspect.signature(determine_setup).parameters:
        kwargs["override_ini"] = ns.override_ini
    rootpath, inipath = determine_setup(**kwargs)[:2]
    if (Path(rootpath), inipath) == (early_config.rootpath, early_config.inipath):
        return
    flag = next((a for a, v in itertools.pairwise(args)
                 if a in VALUED_FLAGS and Path(v).expanduser().exists()), "--kubeconfig")
    raise pytest.UsageError(
        f"{flag}: pytest took the path after {flag} for a test path and chose the wrong "
        f"rootdir ({early_config.rootpath}); write it as {flag}=PATH"
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    """Refuse a rootdir moved by an option's value; register --kubeconfig late.

    --kubeconfig comes after every installed plugin and conftest had its turn: pytest-kind and
    pytest-helm-charts register an option of the same name; if one did (before or after us),
    we read that option (same meaning) instead of crashing on a duplicate.
    """
    if not early_config.known_args_namespace.help:
        _refuse_misread_rootdir(early_config, args)
    result = yield
    early_config.stash[KUBECONFIG_DEST_KEY] = _add_kubeconfig(parser)
    return result


def _kubeconfig_dest(config: pytest.Config) -> str:
    if KUBECONFIG_DEST_KEY not in config.stash:
        config.stash[KUBECONFIG_DEST_KEY] = (
            _find_dest(config._parser, "--kubeconfig") or OUR_KUBECONFIG_DEST
        )
    return config.stash[KUBECONFIG_DEST_KEY]


def pytest_configure(config: pytest.Config) -> None:
    catalog = load_catalog()
    config.addinivalue_line(
        "markers",
        "requirement(id, role='essential', junit=None, title=None, solution=None): the AI "
        "conformance requirement a check decides; role 'supporting' adds evidence without "
        "deciding; junit names the case when it is not the function's name in CamelCase; "
        "solution names the parametrize argument whose values are alternative solutions",
    )
    config.addinivalue_line("markers", "must: checks of MUST requirements")
    config.addinivalue_line("markers", "should: checks of SHOULD requirements")
    config.addinivalue_line("markers", "gpu: checks that need real accelerators")
    config.addinivalue_line("markers", "lab: project tests that need the local lab")
    config.addinivalue_line(
        "markers", f"{NEEDS_CONTAINERS}: the check runs containers; on a cluster whose nodes "
        "are all simulated it is not observable")
    config.addinivalue_line(
        "markers", "pod_security(level): Pod Security level of the check's namespace")
    for req_id in catalog.all_ids:
        config.addinivalue_line("markers", f"{req_id}: checks of requirement {req_id}")
    for category in sorted(set(catalog.categories.values())):
        config.addinivalue_line("markers", f"{category}: checks in category {category}")

    if config.option.help:
        return
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    shared = (workerinput or {}).get("aic", {})
    target = ClusterTarget.from_worker(shared["target"]) if "target" in shared else None
    settings = resolve(config, _kubeconfig_dest(config), target)
    if "settings" in shared:
        settings = settings.with_worker(shared["settings"])
    state = RunState(
        settings=settings,
        run_id=shared.get("run_id") or new_run_id(),
        started=dt.datetime.now(dt.UTC),
        is_worker=workerinput is not None,
        version=shared.get("version") or settings.version,
        version_source=shared.get("version_source") or ("--aic-version" if settings.version
                                                         else ""),
    )
    conformance = not state.is_worker and not config.option.collectonly and not settings.cleanup
    if conformance and hasattr(config.option, "xmlpath") and config.option.xmlpath is None:
        config.option.xmlpath = str(settings.report_dir / "junit.xml")
        state.junit_default = True
    if not state.is_worker:
        join_option_values(config, set(VALUED_FLAGS))
    run = ConformanceRun(config, state)
    config.stash[STASH_KEY] = run
    config.pluginmanager.register(run, "aiconformance-run")
    _install_sigterm(config)


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
    return lifecycle.run_cleanup(resolve(config, _kubeconfig_dest(config)))
