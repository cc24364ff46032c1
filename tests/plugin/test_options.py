"""Help, collection without a cluster, and --kubeconfig next to other plugins."""

from __future__ import annotations

import os
import sys
import time

import pytest
from fakeapi import FakeApiServer

from conftest import ROOT, base_args
from pytest_aiconformance.run.settings import OPTIONS

DOCUMENTED = [
    "--kubeconfig", "--context", "--aic-version", "--accelerator", "--allocation-mode",
    "--aic-install", "--aic-lab", "--aic-report-dir", "--aic-keep-namespaces",
    "--aic-timeout-scale", "--aic-cleanup", "--aic-platform", "--aic-platform-name",
    "--aic-platform-version", "--aic-vendor", "--aic-template",
]

NO_NETWORK = """
import socket
def _refuse(self, *args, **kwargs):
    raise RuntimeError("network connection attempted during collection")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
"""


def test_help_shows_group_with_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help", "-p", "no:cacheprovider")
    assert result.ret == 0
    text = result.stdout.str()
    group = text[text.index("Kubernetes AI Conformance:"):]
    group = group[: group.index("\n\n")]
    for flag in DOCUMENTED + [spec.flag for spec in OPTIONS]:
        assert f"  {flag}" in group, flag
    assert "AIC_VERSION]" in group


def test_collect_only_real_checks_fast_and_offline(pytester: pytest.Pytester) -> None:
    """The real checks collect in < 2 s with no cluster and without touching the network."""
    (pytester.path / "sitecustomize.py").write_text(NO_NETWORK)
    env_path = os.pathsep.join([str(pytester.path), os.environ.get("PYTHONPATH", "")])
    pytester._monkeypatch.setenv("PYTHONPATH", env_path)
    pytester._monkeypatch.setenv("KUBECONFIG", str(pytester.path / "nonexistent"))
    start = time.monotonic()
    result = pytester.run(sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                          "-c", str(ROOT / "pyproject.toml"),
                          str(ROOT / "pytest_aiconformance" / "checks"))
    elapsed = time.monotonic() - start
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, out
    assert "test_dra_support.py::test_dra_api_kinds_served" in out
    assert "network connection attempted" not in out
    assert "ERROR" not in out
    assert elapsed < 2.0, f"collection took {elapsed:.2f}s"


def test_plugin_inert_without_conformance_checks(pytester: pytest.Pytester) -> None:
    """An unrelated test run (no kubeconfig) works and writes no report dir."""
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--aic-report-dir",
                                           str(pytester.path / "report"))
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "report").exists()


OTHER_PLUGIN = """
def pytest_addoption(parser):
    parser.getgroup("other").addoption("--kubeconfig", dest="{dest}", default=None,
                                       help="the other plugin's kubeconfig")
"""

HEADER_CHECK = """
import pytest

@pytest.mark.requirement("secure_accelerator_access")
def test_ok(kube):
    assert kube.server.startswith("http://127.0.0.1:")
"""


@pytest.mark.parametrize("order", ["before", "after"])
def test_kubeconfig_shared_with_other_plugin(aic: pytest.Pytester, fake: FakeApiServer,
                                            order: str) -> None:
    aic.makepyfile(test_header=HEADER_CHECK)
    if order == "before":
        # -p plugins register before entry points: theirs is registered first.
        aic.makepyfile(otherkube=OTHER_PLUGIN.format(dest="kubeconfig"))
        extra = ["-p", "otherkube"]
    else:
        # A conftest's pytest_addoption runs after every installed plugin's.
        aic.makeconftest(OTHER_PLUGIN.format(dest="kube_config_path"))
        extra = []
    result = aic.runpytest_subprocess(*base_args(aic, *extra))
    out = result.stdout.str()
    assert result.ret == 0, out + result.stderr.str()
    assert f"cluster: {fake.url} Kubernetes v1.34.2" in out
    result.assert_outcomes(passed=1)


def test_kubeconfig_when_loaded_from_checkout_conftest(aic: pytest.Pytester,
                                                       fake: FakeApiServer) -> None:
    """Not installed: a checkout's conftest lists the plugin; --kubeconfig still works."""
    aic.makepyfile(test_header=HEADER_CHECK)
    aic.makeconftest('pytest_plugins = ["pytest_aiconformance.plugin"]\n')
    aic._monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = aic.runpytest_subprocess(*base_args(aic))
    out = result.stdout.str()
    assert result.ret == 0, out + result.stderr.str()
    assert f"cluster: {fake.url}" in out
