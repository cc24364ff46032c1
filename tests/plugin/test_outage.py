"""An API server outage is ridden out within a budget, and what still fails for want of an
answer is an error (Not verified), never a failed check (Not Implemented)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from fakeapi import FakeApiServer, write_kubeconfig
from test_bad_input import closed_port

from conftest import base_args
from pytest_aiconformance.cluster.client import PROGRESS_LOGGER, Unreachable, connect


def _kube(tmp_path: Path, port: int, budget: float):
    kube = connect(write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}"), None)
    kube.outage_budget_s = budget
    return kube


def test_without_budget_an_unreachable_server_fails_at_once(tmp_path: Path) -> None:
    kube = _kube(tmp_path, closed_port(), 0)
    started = time.monotonic()
    with pytest.raises(Unreachable, match=r"^cannot reach API server .*connection refused"):
        kube.version()
    assert time.monotonic() - started < 2


def test_a_restarting_server_is_waited_for(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    port = closed_port()
    kube = _kube(tmp_path, port, 20)
    servers: list[FakeApiServer] = []

    def come_back() -> None:
        time.sleep(1.5)  # the outage this test simulates
        servers.append(FakeApiServer(port=port).__enter__())

    thread = threading.Thread(target=come_back)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger=PROGRESS_LOGGER):
            assert kube.version()["gitVersion"] == "v1.34.2"
        # The outage is remembered: waits that it touches grant the cluster time to catch up.
        [(down, up)] = kube.outages
        assert 1.0 <= up - down < 5
        assert any("cannot reach API server" in r.getMessage() and "retrying" in r.getMessage()
                   for r in caplog.records)
    finally:
        thread.join()
        for server in servers:
            server.__exit__()


def test_budget_is_bounded(tmp_path: Path) -> None:
    kube = _kube(tmp_path, closed_port(), 1.5)
    started = time.monotonic()
    with pytest.raises(Unreachable):
        kube.version()
    assert 1.5 <= time.monotonic() - started < 5


CHECKS = """
import pytest
from pytest_aiconformance.cluster.client import ClusterError, Unreachable

@pytest.mark.requirement("gang_scheduling")
def test_gang():
    '''A gang is bound together.'''
    raise Unreachable("cannot reach API server https://10.0.0.1:6443: connection refused")

@pytest.mark.requirement("robust_controller")
def test_webhook():
    '''The operator's webhook refuses an invalid object.'''
    raise ClusterError('POST /apis/ray.io/v1/namespaces/x/rayclusters: 500 Internal Server '
                       'Error: Internal error occurred: failed calling webhook '
                       '"vraycluster.kb.io": connection refused')
"""


def test_outage_is_not_verified_and_reasons_quote_the_server(aic: pytest.Pytester) -> None:
    import json

    aic.makepyfile(test_checks=CHECKS)
    aic.runpytest(*base_args(aic, "--aic-version", "1.35"))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    got = {r["id"]: r for r in data["requirements"]}
    assert got["gang_scheduling"]["status"] == "Not verified"
    assert got["gang_scheduling"]["reason"] == (
        "'A gang is bound together.' could not run (error): call: cannot reach API server "
        "https://10.0.0.1:6443: connection refused.")
    # The operator answered through the API server: a real failure, in the server's words.
    assert got["robust_controller"]["status"] == "Not Implemented"
    assert got["robust_controller"]["reason"].startswith(
        "'The operator's webhook refuses an invalid object.' failed: POST /apis/ray.io/v1/")
    assert 'failed calling webhook "vraycluster.kb.io"' in got["robust_controller"]["reason"]
    assert "ClusterError" not in json.dumps(data)


FIXTURES = """
import pytest

@pytest.fixture
def operator():
    assert False, "KubeRay is not installed (ray.io/v1 RayCluster is not served)"

@pytest.fixture
def broken():
    raise TypeError("unsupported operand")

@pytest.mark.requirement("robust_controller")
def test_reconciled(operator):
    '''A RayCluster is reconciled.'''

@pytest.mark.requirement("gang_scheduling")
def test_gang(broken):
    '''A gang is bound together.'''
"""


def test_fixture_assertion_is_a_finding_a_broken_fixture_an_error(aic: pytest.Pytester) -> None:
    import json

    aic.makepyfile(test_checks=FIXTURES)
    aic.runpytest(*base_args(aic, "--aic-version", "1.35"))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    got = {r["id"]: r for r in data["requirements"]}
    assert got["robust_controller"]["status"] == "Not Implemented"
    assert "KubeRay is not installed" in got["robust_controller"]["reason"]
    assert got["gang_scheduling"]["status"] == "Not verified"
    assert got["gang_scheduling"]["reason"] == (
        "'A gang is bound together.' could not run (error): setup: TypeError: unsupported "
        "operand.")


def test_progress_reaches_the_terminal_while_output_is_captured(aic: pytest.Pytester) -> None:
    """Long waits and outages speak while the check runs, not only in a failure report."""
    aic.makepyfile(test_wait="""
import logging
import pytest

@pytest.mark.requirement("gang_scheduling")
def test_waits(kube):
    logging.getLogger("pytest_aiconformance.progress").info("waiting 30s/180s for pods")
""")
    result = aic.runpytest_subprocess(*base_args(aic, "--aic-version", "1.35"))
    result.stdout.fnmatch_lines(["[[]aic] waiting 30s/180s for pods"])
    result.assert_outcomes(passed=1)
