"""Verdict aggregation end to end: dummy checks -> verdicts.json, PRODUCT.yaml, exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from dummies import CHECKS, EXPECTED_134

from conftest import base_args
from pytest_aiconformance.verdicts.catalog import load_catalog

ALLOWED = {"Implemented", "Not Implemented", "Partially Implemented", "N/A", ""}


def results(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    data = json.loads((pytester.path / "report" / "verdicts.json").read_text())
    return {r["id"]: r for r in data["requirements"]}


def product(pytester: pytest.Pytester) -> dict[str, Any]:
    return yaml.safe_load((pytester.path / "report" / "PRODUCT.yaml").read_text())


def product_items(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for items in doc["spec"].values() for item in items}


@pytest.fixture
def suite(aic: pytest.Pytester) -> pytest.Pytester:
    aic.makepyfile(test_checks=CHECKS)
    return aic


def test_verdicts_134(suite: pytest.Pytester) -> None:
    result = suite.runpytest(*base_args(suite, "--aic-version", "1.34"))
    result.assert_outcomes(passed=5, failed=2, skipped=4, deselected=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    reqs = results(suite)
    assert list(reqs) == [r.id for r in load_catalog().requirements("1.34")]
    assert {k: v["status"] for k, v in reqs.items()} == EXPECTED_134
    for req in reqs.values():
        assert set(req) >= {"id", "level", "status", "reason", "checks"}

    dra = reqs["dra_support"]
    assert dra["level"] == "MUST"
    assert dra["reason"] == "The essential check passed: DRA kinds are served."
    assert dra["notes"] == ["Supporting check 'Device metadata reaches the container.' could "
                            "not be observed here: simulated nodes run no containers."] or \
        any("could not be observed here: simulated nodes run no containers" in n
            for n in dra["notes"]), dra["notes"]
    outcomes = {c["junit_name"]: (c["role"], c["outcome"]) for c in dra["checks"]}
    assert outcomes == {
        "TestDRASupport/APIKindsServed": ("essential", "passed"),
        "TestDRASupport/DeviceMetadataInContainer": ("supporting", "not observable here"),
    }

    gang = reqs["gang_scheduling"]
    assert gang["reason"].startswith("1 of 2 essential checks passed;")
    assert "2 of 4 gang members were bound" in gang["reason"]

    assert "no GatewayClass is accepted" in reqs["ai_inference"]["reason"]

    na = reqs["cluster_autoscaling"]
    assert na["conditional"] is True
    assert na["reason"] == "Not applicable: no cluster autoscaler is deployed."
    assert any("no cluster autoscaler is deployed" in n for n in na["notes"])

    skipped = reqs["accelerator_metrics"]
    assert skipped["checks"][0]["outcome"] == "skipped"
    assert "metrics endpoint not reachable from here" in skipped["reason"]

    svc = reqs["ai_service_metrics"]
    assert "the lab runs no Prometheus" in svc["reason"]

    assert "Not checked by this suite" in reqs["pod_autoscaling"]["reason"]

    doc = product(suite)
    items = product_items(doc)
    assert items["cluster_autoscaling"]["status"] == "N/A"
    assert "no cluster autoscaler is deployed" in items["cluster_autoscaling"]["notes"]
    assert items["accelerator_metrics"]["status"] == ""  # Not verified: left for the user
    assert "fill" in items["accelerator_metrics"]["notes"]
    assert items["gang_scheduling"]["status"] == "Partially Implemented"
    assert items["secure_accelerator_access"]["evidence"] == [
        "junit.xml#TestSecureAcceleratorAccess/NegativeIsolationTest"]


@pytest.mark.parametrize("version", load_catalog().known_versions)
def test_product_yaml_per_version(suite: pytest.Pytester, version: str) -> None:
    result = suite.runpytest(*base_args(suite, "--aic-version", version,
                                        "--aic-platform-name", "Fake Platform"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    doc = product(suite)
    assert doc["metadata"]["kubernetesVersion"] == f"v{version}"
    assert doc["metadata"]["platformName"] == "Fake Platform"
    items = product_items(doc)
    catalog = {r.id: r for r in load_catalog().requirements(version)}
    assert set(items) == set(catalog)
    reqs = results(suite)
    for req_id, item in items.items():
        assert item["status"] in ALLOWED, item
        assert item["level"] == catalog[req_id].level
        expected = "" if reqs[req_id]["status"] == "Not verified" else reqs[req_id]["status"]
        assert item["status"] == expected
        if item["status"] in ("N/A", ""):
            assert item["notes"], item
        for ref in item["evidence"]:
            assert ref.startswith("junit.xml#Test"), ref
    assert items["gang_scheduling"]["status"] == "Partially Implemented"
    if version == "1.33":
        assert items["dra_support"]["level"] == "SHOULD"
    if version in ("1.35", "1.36", "1.37"):
        assert items["gpu_sharing"]["status"] == ""  # plain skip: not verified
    if version in ("1.36", "1.37"):
        assert "dra_support" not in items
        assert items["disaggregated_inference"]["status"] == "Implemented"
    assert ("workload_sandboxing" in items) == (version == "1.37")


@pytest.mark.parametrize(("select", "ret"), [
    # Passing MUSTs only; the other MUSTs had no check selected: exit 0.
    ("test_secure_pass or test_dra_pass", 0),
    # A conditional MUST that is N/A does not count.
    ("test_autoscaler_na", 0),
    # A MUST whose only check was skipped is Not verified: non-zero though pytest passed.
    ("test_metrics_plain_skip", 1),
    # Essential pass + unobservable: Not verified MUST -> non-zero.
    ("test_service_metrics_pass or test_service_metrics_unobservable", 1),
    # Supporting unobservable alone, its essential check deselected: a partial run does not
    # decide the MUST (Not verified, naming the missing check), so it does not fail the run.
    ("test_dra_supporting_unobservable", 0),
])
def test_exit_status_counts_selected_musts(suite: pytest.Pytester, select: str,
                                           ret: int) -> None:
    result = suite.runpytest(*base_args(suite, "--aic-version", "1.34", "-k", select))
    assert result.ret == ret, result.stdout.str()
    assert not result.parseoutcomes().get("failed")
    if ret:
        result.stdout.fnmatch_lines(["MUST requirements not Implemented: *"])


def test_should_not_verified_exits_zero(suite: pytest.Pytester) -> None:
    result = suite.runpytest(*base_args(suite, "--aic-version", "1.36", "-k", "test_sharing_skip"))
    assert result.ret == 0
    assert results(suite)["gpu_sharing"]["status"] == "Not verified"


def test_terminal_table_and_reports_listed(suite: pytest.Pytester) -> None:
    result = suite.runpytest(*base_args(suite, "--aic-version", "1.34"))
    result.stdout.fnmatch_lines([
        "*AI conformance verdicts (checklist 1.34)*",
        "*gang_scheduling*MUST*Partially Implemented*",
    ])
    for name in ("verdicts.json", "PRODUCT.yaml", "evidence.md", "junit.xml", "e2e.log",
                 "results.json"):
        assert (suite.path / "report" / name).is_file(), name


def test_version_from_server(suite: pytest.Pytester, fake: Any) -> None:
    fake.cluster.git_version = "v1.35.1"
    result = suite.runpytest(*base_args(suite))
    result.stdout.fnmatch_lines(["checklist version: 1.35 (from server v1.35.1)"])
    fake.cluster.git_version = "v1.40.0"
    result = suite.runpytest(*base_args(suite))
    newest = load_catalog().known_versions[-1]
    result.stdout.fnmatch_lines([f"checklist version: {newest} (from server v1.40.0)"])
    text = Path(suite.path / "report" / "PRODUCT.yaml").read_text()
    assert f"kubernetesVersion: v{newest}" in text


POD_AUTOSCALING_NA = """
import pytest
from pytest_aiconformance.verdicts.outcomes import not_applicable

@pytest.mark.requirement("pod_autoscaling")
def test_hpa():
    not_applicable("the platform does not serve autoscaling/v2")

@pytest.mark.requirement("cluster_autoscaling")
def test_cas():
    not_applicable("no cluster autoscaler is deployed")
"""


def test_refused_na_is_announced(aic: pytest.Pytester) -> None:
    """pod_autoscaling N/A stays N/A, and the user learns the program will refuse it;
    cluster_autoscaling N/A (which the program accepts) is not announced."""
    aic.makepyfile(test_na=POD_AUTOSCALING_NA)
    result = aic.runpytest(*base_args(aic, "--aic-version", "1.36"))
    assert results(aic)["pod_autoscaling"]["status"] == "N/A"
    result.stdout.fnmatch_lines([
        "pod_autoscaling is N/A (*autoscaling/v2*): an honest verdict, but the CNCF validator "
        "accepts N/A for no MUST but cluster_autoscaling*"])
    assert "cluster_autoscaling is N/A" not in result.stdout.str()


PARTIAL = """
import pytest

@pytest.mark.requirement("secure_accelerator_access")
def test_capacity_enforced():
    '''N+1 pods on N accelerators leave one Pending.'''

@pytest.mark.gpu
@pytest.mark.requirement("secure_accelerator_access", junit="PositiveAccessTest")
def test_positive_access():
    '''A pod sees exactly its device.'''

@pytest.mark.parametrize("scheduler", ["volcano", "kueue"])
@pytest.mark.requirement("gang_scheduling")
def test_gang_bound(scheduler):
    '''Bound together.'''
"""


@pytest.mark.parametrize(("select", "missing"), [
    (["-m", "not gpu"], {"secure_accelerator_access": ["TestSecureAcceleratorAccess/"
                                                       "PositiveAccessTest"]}),
    (["-k", "capacity or volcano"], {
        "secure_accelerator_access": ["TestSecureAcceleratorAccess/PositiveAccessTest"],
        "gang_scheduling": ["TestGangScheduling/GangBound/kueue"]}),
])
def test_partial_run_does_not_decide(aic: pytest.Pytester, select: list[str],
                                     missing: dict[str, list[str]]) -> None:
    """A requirement whose essential checks were not all selected is Not verified, naming the
    missing ones, and is not counted as a failed MUST."""
    aic.makepyfile(test_partial=PARTIAL)
    result = aic.runpytest(*base_args(aic, "--aic-version", "1.35", *select))
    assert result.ret == 0, result.stdout.str()
    got = results(aic)
    for req, names in missing.items():
        assert got[req]["status"] == "Not verified", got[req]
        assert got[req]["reason"] == ("Essential checks of this requirement were not run "
                                      f"(deselected or not collected): {', '.join(names)}.")
    product = yaml.safe_load((aic.path / "report" / "PRODUCT.yaml").read_text())
    statuses = {i["id"]: i["status"] for cat in product["spec"].values() for i in cat}
    assert statuses["secure_accelerator_access"] == ""


def test_node_id_selection_is_partial_too(aic: pytest.Pytester) -> None:
    aic.makepyfile(test_partial=PARTIAL)
    result = aic.runpytest(*base_args(aic, "--aic-version", "1.35",
                                      "test_partial.py::test_capacity_enforced"))
    assert result.ret == 0, result.stdout.str()
    assert results(aic)["secure_accelerator_access"]["status"] == "Not verified"


SOLUTIONS = """
import pytest
from pytest_aiconformance.verdicts.outcomes import not_applicable

SCHEDULERS = ["alpha", "beta", "gamma"]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.requirement("gang_scheduling", solution="scheduler")
def test_bound(scheduler):
    '''Bound together.'''
    if scheduler == "gamma":
        not_applicable("gamma is not installed (alpha, beta are)")


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.requirement("gang_scheduling", solution="scheduler")
def test_unbound(scheduler):
    '''Stays unbound.'''
    if scheduler == "gamma":
        not_applicable("gamma is not installed (alpha, beta are)")
    assert scheduler != "alpha", "2 of 3 members were bound"
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_one_complete_solution_decides(aic: pytest.Pytester, xdist: list[str]) -> None:
    """beta passes both halves: Implemented, alpha's failure and gamma's absence are notes;
    the solution survives pytest-xdist into verdicts.json and the JUnit properties."""
    aic.makepyfile(test_solutions=SOLUTIONS)
    result = aic.runpytest_subprocess(*base_args(aic, "--aic-version", "1.35", *xdist))
    # test_unbound[alpha] failed, but it counts toward a MUST that beta implements: a verdict,
    # not a failed run.
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert "MUST requirements not Implemented" not in result.stdout.str()
    gang = results(aic)["gang_scheduling"]
    assert gang["status"] == "Implemented"
    assert gang["reason"] == ("All 2 essential checks passed with solution beta: Bound together.; "
                              "Stays unbound.")
    assert gang["notes"] == [
        "Solution alpha: 'Stays unbound.' failed: 2 of 3 members were bound.",
        "Solution gamma is not applicable: gamma is not installed (alpha, beta are).",
    ]
    assert [(c["junit_name"], c["solution"], c["outcome"]) for c in gang["checks"]] == [
        ("TestGangScheduling/Bound/alpha", "alpha", "passed"),
        ("TestGangScheduling/Bound/beta", "beta", "passed"),
        ("TestGangScheduling/Bound/gamma", "gamma", "not applicable"),
        ("TestGangScheduling/Unbound/alpha", "alpha", "failed"),
        ("TestGangScheduling/Unbound/beta", "beta", "passed"),
        ("TestGangScheduling/Unbound/gamma", "gamma", "not applicable"),
    ]
    junit = (aic.path / "report" / "junit.xml").read_text()
    assert junit.count('<property name="solution" value="beta" />') == 2, junit


def test_no_complete_solution_uses_the_usual_rules(aic: pytest.Pytester) -> None:
    aic.makepyfile(test_solutions=SOLUTIONS)
    result = aic.runpytest(*base_args(aic, "--aic-version", "1.35", "-k", "not beta"))
    gang = results(aic)["gang_scheduling"]
    assert gang["status"] == "Not verified"  # beta's checks were deselected: not decided
    assert gang["reason"] == ("Essential checks of this requirement were not run (deselected or "
                              "not collected): TestGangScheduling/Bound/beta, "
                              "TestGangScheduling/Unbound/beta.")
    assert "Essential check 'Stays unbound.' failed: 2 of 3 members were bound." in gang["notes"]
    # test_unbound[alpha] failed and the MUST is left undecided: the failure fails the run.
    assert result.ret == 1


def test_solution_must_name_a_parameter(aic: pytest.Pytester) -> None:
    aic.makepyfile(test_bad="""
import pytest

@pytest.mark.requirement("gang_scheduling", solution="scheduler")
def test_x():
    pass
""")
    result = aic.runpytest(*base_args(aic, "--aic-version", "1.35"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_x: solution='scheduler' must name a parameter of this "
                                 "check (parametrized: none)*"])


SHOULD_FAILS = """
import pytest

@pytest.mark.requirement("dra_support", junit="DRAKindsServed")
def test_must_passes():
    pass

@pytest.mark.requirement("virtualized_accelerator")
def test_should_fails():
    assert False, "no node offers a virtualized accelerator"

def test_plain_failure():
    assert False, "not a check"

@pytest.fixture
def broken():
    raise RuntimeError("fixture bug")

@pytest.mark.requirement("gpu_sharing")
def test_should_errors(broken):
    pass
"""


@pytest.mark.parametrize(("select", "ret", "should"), [
    # A SHOULD the platform does not implement is a verdict, not a failed run.
    ("test_must_passes or test_should_fails", 0, "Not Implemented"),
    # A failure that is no verdict fails the run: a test without a requirement...
    ("test_must_passes or test_should_fails or test_plain_failure", 1, "Not Implemented"),
    # ... or a check that errored (its fixture broke: nothing was decided).
    ("test_must_passes or test_should_errors", 1, "Not verified"),
])
def test_should_failures_do_not_fail_the_run(aic: pytest.Pytester, select: str,
                                             ret: int, should: str) -> None:
    aic.makepyfile(test_should=SHOULD_FAILS)
    result = aic.runpytest(*base_args(aic, "--aic-version", "1.35", "-k", select))
    assert result.ret == ret, result.stdout.str()
    assert results(aic)["virtualized_accelerator"]["status"] == should
    assert results(aic)["dra_support"]["status"] == "Implemented"
