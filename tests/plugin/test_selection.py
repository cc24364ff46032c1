"""Marker and checklist-version selection of checks."""

from __future__ import annotations

import pytest
from dummies import CHECKS

ALL = {"test_dra_pass", "test_dra_supporting_unobservable", "test_gang_pass", "test_gang_fail",
       "test_inference_fail", "test_autoscaler_na", "test_metrics_plain_skip",
       "test_service_metrics_pass", "test_service_metrics_unobservable", "test_secure_pass",
       "test_sharing_skip", "test_disagg_pass", "test_not_a_check"}
DRA = {"test_dra_pass", "test_dra_supporting_unobservable"}
IN_135_ONLY_PLUS = {"test_sharing_skip"}
IN_136_ONLY = {"test_disagg_pass"}


def collected(pytester: pytest.Pytester, *args: str) -> tuple[set[str], str]:
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider",
                                "--strict-markers", "-W", "error", *args)
    out = result.stdout.str()
    assert result.ret in (0, 5), out + result.stderr.str()
    names = {line.split("::", 1)[1] for line in result.stdout.lines if "::" in line}
    return names, out


@pytest.fixture
def suite(aic: pytest.Pytester) -> pytest.Pytester:
    aic.makepyfile(test_checks=CHECKS)
    return aic


@pytest.mark.parametrize(("args", "expected"), [
    (["-m", "must", "--aic-version", "1.34"],
     DRA | {"test_gang_pass", "test_gang_fail", "test_inference_fail", "test_autoscaler_na",
            "test_metrics_plain_skip", "test_service_metrics_pass",
            "test_service_metrics_unobservable", "test_secure_pass"}),
    (["-m", "should", "--aic-version", "1.34"], set()),
    (["-m", "should", "--aic-version", "1.33"], DRA),
    (["-m", "must", "--aic-version", "1.33"],
     {"test_gang_pass", "test_gang_fail", "test_inference_fail", "test_autoscaler_na",
      "test_metrics_plain_skip", "test_service_metrics_pass",
      "test_service_metrics_unobservable", "test_secure_pass"}),
    (["-m", "should", "--aic-version", "1.36"], IN_135_ONLY_PLUS | IN_136_ONLY),
    (["-m", "gang_scheduling", "--aic-version", "1.34"], {"test_gang_pass", "test_gang_fail"}),
    (["-m", "accelerators", "--aic-version", "1.35"], DRA | IN_135_ONLY_PLUS),
    (["-m", "accelerators", "--aic-version", "1.36"], IN_135_ONLY_PLUS),
    (["-m", "schedulingOrchestration and not must", "--aic-version", "1.36"], set()),
    (["--aic-version", "1.36"],
     ALL - DRA),
    (["--aic-version", "1.37"], ALL - DRA),
    (["-m", "should", "--aic-version", "1.37"], IN_135_ONLY_PLUS | IN_136_ONLY),
    (["-m", "security", "--aic-version", "1.37"], {"test_secure_pass"}),
])
def test_marker_and_version_selection(suite: pytest.Pytester, args: list[str],
                                      expected: set[str]) -> None:
    names, _ = collected(suite, *args)
    assert names == expected


def test_version_deselection_prints_reason(suite: pytest.Pytester) -> None:
    names, out = collected(suite, "--aic-version", "1.33")
    assert names == ALL - IN_135_ONLY_PLUS - IN_136_ONLY
    assert "1 check(s): gpu_sharing is not in checklist version 1.33" in out
    assert "1 check(s): disaggregated_inference is not in checklist version 1.33" in out
    assert "11/13 tests collected (2 deselected)" in out


def test_version_136_deselects_dra(suite: pytest.Pytester) -> None:
    names, out = collected(suite, "--aic-version", "1.36")
    assert not names & DRA
    assert "2 check(s): dra_support is not in checklist version 1.36" in out


def test_workload_sandboxing_only_in_137(aic: pytest.Pytester) -> None:
    aic.makepyfile(test_sandbox="""
        import pytest
        @pytest.mark.requirement("workload_sandboxing")
        def test_sandbox_kernel():
            pass
    """)
    names, out = collected(aic, "--aic-version", "1.36")
    assert names == set()
    assert "1 check(s): workload_sandboxing is not in checklist version 1.36" in out
    names, _ = collected(aic, "-m", "workload_sandboxing and should and security",
                         "--aic-version", "1.37")
    assert names == {"test_sandbox_kernel"}


def test_strict_markers_clean(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--strict-markers", "-W", "error", "-p", "no:cacheprovider",
                             "--markers")
    assert result.ret == 0
    for marker in ("requirement(", "must:", "should:", "gpu:", "gang_scheduling:",
                   "accelerators:", "pod_security("):
        assert f"@pytest.mark.{marker}" in result.stdout.str(), marker


def test_unknown_requirement_id_is_one_line(aic: pytest.Pytester) -> None:
    aic.makepyfile(test_bad="""
        import pytest
        @pytest.mark.requirement("no_such_requirement")
        def test_x():
            pass
    """)
    result = aic.runpytest("--collect-only", "-q", "-p", "no:cacheprovider",
                           "--aic-version", "1.34")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *unknown requirement id 'no_such_requirement'"])
