"""Every valued option works as `--opt value` and `--opt=value`, or says which form to use.

pytest chooses the rootdir and ini file before it knows our options, so a value after a
space is taken for a test path; a path outside the project would move the rootdir, lose the
ini settings and collect the wrong tests. Such a run must stop with one line naming the `=`
form; every other value must simply work.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dummies import KUBE_CHECK
from fakeapi import write_kubeconfig

from conftest import project_ini
from pytest_aiconformance.run.settings import OPTIONS

CHECK = """
import pytest

@pytest.mark.requirement("gang_scheduling")
def test_gang(kube):
    pass
"""

OWN_TEST = "def test_project_internal():\n    pass\n"


def _outside(pytester: pytest.Pytester) -> Path:
    """A folder next to the project, with no ini file above it."""
    folder = pytester.path.parent / f"{pytester.path.name}-outside"
    folder.mkdir(exist_ok=True)
    write_kubeconfig(folder / "kubeconfig", "http://127.0.0.1:9")
    (folder / "shape.yaml").write_text("gpu_nodes: 1\n")
    (folder / "platform.yaml").write_text("platformName: Lab\n")
    (folder / "template.yaml").write_text("spec: {}\n")
    (folder / "reports").mkdir(exist_ok=True)
    (folder / "submission").mkdir(exist_ok=True)
    (folder / "charts").mkdir(exist_ok=True)
    (folder / "helm").write_text("#!/bin/sh\nexit 0\n")
    (folder / "helm").chmod(0o755)
    return folder


def _value(flag: str, outside: Path) -> tuple[str, bool]:
    """A valid value for the flag, and whether it is a path outside the project."""
    paths = {"--kubeconfig": "kubeconfig", "--aic-lab-shape": "shape.yaml",
             "--aic-platform": "platform.yaml", "--aic-template": "template.yaml",
             "--aic-report-dir": "reports", "--aic-submission": "submission",
             "--aic-charts": "charts", "--aic-helm": "helm"}
    if flag in paths:
        return str(outside / paths[flag]), True
    plain = {"--context": "fake", "--aic-version": "1.35", "--accelerator": "amd",
             "--allocation-mode": "dra", "--aic-keep-namespaces": "always",
             "--aic-timeout-scale": "2", "--aic-platform-name": "Lab",
             "--aic-platform-version": "1.0", "--aic-vendor": "ACME",
             "--aic-prometheus": "monitoring/prometheus-operated:web",
             "--aic-gateway-class": "envoy-gateway"}
    return plain[flag], False


FLAGS = ["--kubeconfig", *(s.flag for s in OPTIONS if s.kind != "bool")]


@pytest.fixture
def checkout(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project like a checkout: ini with testpaths, checks, and the project's own tests."""
    pytester.makefile(".toml", pyproject=project_ini() + 'testpaths = ["checks"]\n')
    (pytester.path / "checks").mkdir()
    (pytester.path / "checks" / "test_gang.py").write_text(CHECK)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_own.py").write_text(OWN_TEST)
    return pytester


def test_every_valued_option_is_covered() -> None:
    assert len(FLAGS) == 19
    for flag in FLAGS:
        _value(flag, Path("/x"))  # raises KeyError for an option this file does not know


@pytest.mark.parametrize("form", ["space", "equals"])
@pytest.mark.parametrize("flag", FLAGS)
def test_valued_option_forms(checkout: pytest.Pytester, flag: str, form: str) -> None:
    value, outside_path = _value(flag, _outside(checkout))
    args = [flag, value] if form == "space" else [f"{flag}={value}"]
    result = checkout.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q",
                                           *args)
    out = "\n".join(result.stdout.lines + result.stderr.lines)
    if form == "space" and outside_path:
        errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
        assert result.ret == pytest.ExitCode.USAGE_ERROR, out
        assert len(errors) == 1, out
        assert errors[0].startswith(f"ERROR: {flag}: pytest took the path after {flag}"), out
        assert errors[0].endswith(f"write it as {flag}=PATH"), out
        assert "Traceback" not in out
        return
    assert result.ret == 0, out
    assert "checks/test_gang.py::test_gang" in out
    assert "test_project_internal" not in out
    assert "1 test collected" in out


def test_installed_command_joins_values(checkout: pytest.Pytester) -> None:
    """`aiconformance --opt PATH` works for every path option (it joins the values itself)."""
    outside = _outside(checkout)
    args: list[str] = []
    for flag in FLAGS:
        value, is_path = _value(flag, outside)
        if is_path:
            args += [flag, value]
    result = checkout.run(sys.executable, "-m", "pytest_aiconformance", "--collect-only",
                          "-q", *args)
    out = "\n".join(result.stdout.lines + result.stderr.lines)
    assert result.ret == 0, out
    assert "test_gang_scheduling.py::test_gang_scheduler_available" in out
    assert "test_project_internal" not in out




@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--aic-prometheus", "prometheus-operated:9090",
     "ERROR: --aic-prometheus: expected http(s)://HOST[:PORT][/PATH] or "
     "NAMESPACE/SERVICE:PORT[/PATH], got 'prometheus-operated:9090'"),
    ("--aic-prometheus", "monitoring/prometheus:99999",
     "ERROR: --aic-prometheus: port 99999 out of range in 'monitoring/prometheus:99999'"),
    ("--aic-gateway-class", "Envoy_Gateway",
     "ERROR: --aic-gateway-class: 'Envoy_Gateway' is not a Kubernetes object name (lower case "
     "letters, digits, '-' and '.')"),
])
def test_bad_value_is_one_error_line_before_any_cluster_io(
        pytester: pytest.Pytester, flag: str, value: str, expected: str) -> None:
    """A malformed value stops the run with one line and exit 4; the cluster is never asked."""
    from test_bad_input import closed_port

    pytester.makefile(".toml", pyproject=project_ini())
    write_kubeconfig(pytester.path / "kubeconfig", f"http://127.0.0.1:{closed_port()}")
    pytester.makepyfile(test_check=KUBE_CHECK)
    result = pytester.runpytest("-p", "no:cacheprovider",
                                f"--kubeconfig={pytester.path / 'kubeconfig'}",
                                f"--aic-report-dir={pytester.path / 'report'}", f"{flag}={value}")
    lines = result.stdout.lines + result.stderr.lines
    errors = [line for line in lines if line.startswith("ERROR")]
    assert result.ret == pytest.ExitCode.USAGE_ERROR, "\n".join(lines)
    assert errors == [expected]
    assert "cannot reach API server" not in "\n".join(lines)
    assert "Traceback" not in "\n".join(lines)
