"""Verdict aggregation: each rule of issue 2 item 8, with exact statuses, reasons and notes."""

from __future__ import annotations

import pytest

from pytest_aiconformance.verdicts.catalog import Requirement, load_catalog
from pytest_aiconformance.verdicts.model import CheckResult, RequirementVerdict, Role, Status
from pytest_aiconformance.verdicts.outcomes import Outcome
from pytest_aiconformance.verdicts.rules import (
    aggregate,
    must_not_implemented,
    one_line,
    sentence,
    summarize,
)

REQ = Requirement(id="gang_scheduling", category="schedulingOrchestration", level="MUST",
                  summary="A gang scheduler binds all members together or none.")
COND = Requirement(id="cluster_autoscaling", category="schedulingOrchestration", level="MUST",
                   summary="Autoscaling.", conditional=True, condition="an autoscaler exists")
SHOULD = Requirement(id="gpu_sharing", category="accelerators", level="SHOULD", summary="Share.")


def check(name: str, outcome: Outcome, reason: str = "", role: Role = Role.ESSENTIAL,
          req: str = "gang_scheduling", solution: str = "") -> CheckResult:
    return CheckResult(nodeid=f"pytest_aiconformance/checks/test_x.py::test_{name}",
                       requirement=req,
                       role=role, outcome=outcome, reason=reason, junit_name=f"TestX/{name}",
                       title=f"check {name}", solution=solution)


def one(results: list[CheckResult], req: Requirement = REQ) -> RequirementVerdict:
    [verdict] = aggregate([req], results)
    return verdict


def test_all_essential_passed_is_implemented():
    v = one([check("a", Outcome.PASSED), check("b", Outcome.PASSED)])
    assert v.status is Status.IMPLEMENTED
    assert v.reason == "All 2 essential checks passed: check a; check b."
    assert v.notes == []
    assert [c.junit_name for c in v.checks] == ["TestX/a", "TestX/b"]


def test_supporting_not_observable_is_listed_in_notes_of_implemented():
    v = one([
        check("a", Outcome.PASSED),
        check("s", Outcome.NOT_OBSERVABLE, "simulated nodes run no containers", Role.SUPPORTING),
    ])
    assert v.status is Status.IMPLEMENTED
    assert v.reason == "The essential check passed: check a."
    assert v.notes == [
        "Supporting check 'check s' could not be observed here: simulated nodes run no containers."
    ]


def test_failed_supporting_check_does_not_cap_implemented():
    """Essential checks decide; a failed supporting check is named in reason and notes."""
    v = one([
        check("a", Outcome.PASSED),
        check("s", Outcome.FAILED, "label missing", Role.SUPPORTING),
    ])
    assert v.status is Status.IMPLEMENTED
    assert v.reason == ("The essential check passed: check a (supporting check 'check s' "
                        "failed: label missing).")
    assert v.notes == ["Supporting check 'check s' failed: label missing."]


def test_some_passed_some_failed_is_partially():
    v = one([
        check("a", Outcome.PASSED),
        check("b", Outcome.FAILED, "3 of 12 pods were bound\nE  assert 3 == 0"),
    ])
    assert v.status is Status.PARTIALLY
    assert v.reason == "1 of 2 essential checks passed; 'check b' failed: 3 of 12 pods were bound."


def test_failed_and_none_passed_is_not_implemented():
    v = one([check("a", Outcome.FAILED, "gang was split"),
             check("b", Outcome.ERROR, "fixture broke")])
    assert v.status is Status.NOT_IMPLEMENTED
    assert v.reason == "'check a' failed: gang was split."
    assert v.notes == ["Essential check 'check b' could not run (error): fixture broke."]


def test_error_is_not_verified_never_not_implemented():
    """An error is the check's problem (API outage, set-up), not the platform's failure."""
    v = one([check("a", Outcome.ERROR, "cannot reach API server: connection refused")])
    assert v.status is Status.NOT_VERIFIED
    assert v.reason == ("'check a' could not run (error): cannot reach API server: "
                        "connection refused.")
    v = one([check("a", Outcome.PASSED), check("b", Outcome.ERROR, "connection reset")])
    assert v.status is Status.NOT_VERIFIED
    assert v.notes == ["Essential check 'check a' passed."]
    assert must_not_implemented([v]) == [v]  # a MUST that could not be proven still counts


def test_pass_with_teardown_problem_stays_a_pass_with_a_note():
    v = one([check("a", Outcome.PASSED, "teardown: namespace still terminating")])
    assert v.status is Status.IMPLEMENTED
    assert v.notes == ["'check a' passed; teardown: namespace still terminating."]


def test_partial_run_does_not_decide():
    """Essential checks that were deselected or not collected leave it Not verified."""
    ct = "pytest_aiconformance/checks/test_x.py::test_"
    expected = {"gang_scheduling": {f"{ct}a": "TestX/a",
                                    f"{ct}b": "TestX/b",
                                    f"{ct}c": "TestX/c"}}
    [v] = aggregate([REQ], [check("a", Outcome.PASSED)], expected=expected)
    assert v.status is Status.NOT_VERIFIED
    assert v.reason == ("Essential checks of this requirement were not run (deselected or not "
                        "collected): TestX/b, TestX/c.")
    assert v.missing == ["TestX/b", "TestX/c"]
    assert v.notes == ["Essential check 'check a' passed."]
    assert must_not_implemented([v]) == []  # not decided by this run: not a failure either
    # a failure among what ran is proof enough
    [v] = aggregate([REQ], [check("a", Outcome.FAILED, "split")], expected=expected)
    assert v.status is Status.NOT_IMPLEMENTED
    assert v.notes[-1] == ("Essential checks of this requirement were not run (deselected or not "
                           "collected): TestX/b, TestX/c.")
    # all ran: decided as usual
    every = [check(n, Outcome.PASSED) for n in "abc"]
    [v] = aggregate([REQ], every, expected=expected)
    assert v.status is Status.IMPLEMENTED
    assert v.missing == []


def test_failure_beats_unobservable():
    v = one([check("a", Outcome.FAILED, "no"), check("b", Outcome.NOT_OBSERVABLE, "lab")])
    assert v.status is Status.NOT_IMPLEMENTED
    assert v.notes == ["Essential check 'check b' could not be observed here: lab."]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome.NOT_OBSERVABLE, "'check b' could not be observed here: simulated nodes."),
        (Outcome.UNKNOWN_HARDWARE, "'check b' was skipped on unknown hardware: simulated nodes."),
        (Outcome.SKIPPED, "'check b' was skipped: simulated nodes."),
    ],
)
def test_skip_is_never_a_pass(outcome, expected):
    v = one([check("a", Outcome.PASSED), check("b", outcome, "simulated nodes")])
    assert v.status is Status.NOT_VERIFIED
    assert v.reason == expected
    assert v.notes == ["Essential check 'check a' passed."]


def test_only_skips_is_not_verified():
    v = one([check("a", Outcome.SKIPPED, "")])
    assert v.status is Status.NOT_VERIFIED
    assert v.reason == "'check a' was skipped."


def test_all_not_applicable_is_na_with_reasons_as_notes():
    v = one([
        check("up", Outcome.NOT_APPLICABLE, "no cluster autoscaler detected", req=COND.id),
        check("down", Outcome.NOT_APPLICABLE, "no cluster autoscaler detected", Role.SUPPORTING,
              req=COND.id),
    ], COND)
    assert v.status is Status.NA
    assert v.reason == "Not applicable: no cluster autoscaler detected."
    assert v.notes == [
        "'check down' is not applicable: no cluster autoscaler detected.",
        "'check up' is not applicable: no cluster autoscaler detected.",
    ]
    assert v.conditional is True
    assert must_not_implemented([v]) == []


def test_essential_na_with_passing_supporting_is_na():
    v = one([
        check("a", Outcome.NOT_APPLICABLE, "HPA not supported"),
        check("s", Outcome.PASSED, "", Role.SUPPORTING),
    ])
    assert v.status is Status.NA
    assert v.notes == ["Essential check 'check a' is not applicable: HPA not supported."]


def test_essential_na_with_failed_supporting_is_na_with_the_failure_noted():
    v = one([
        check("a", Outcome.NOT_APPLICABLE, "HPA not supported"),
        check("s", Outcome.FAILED, "boom", Role.SUPPORTING),
    ])
    assert v.status is Status.NA
    assert v.reason == "Not applicable: HPA not supported."
    assert v.notes == ["Supporting check 'check s' failed: boom.",
                       "Essential check 'check a' is not applicable: HPA not supported."]


def test_only_supporting_checks_cannot_decide():
    v = one([check("s", Outcome.PASSED, "", Role.SUPPORTING)])
    assert v.status is Status.NOT_VERIFIED
    assert v.reason == ("No essential check ran for this requirement; supporting checks alone "
                        "cannot decide it.")
    assert v.notes == ["Supporting check 'check s' passed."]


def test_no_results_reasons():
    reqs = [REQ, COND, SHOULD]
    deselected, interrupted, absent = aggregate(
        reqs, [], selected_ids={"cluster_autoscaling", "gpu_sharing"},
        suite_ids={"gang_scheduling", "cluster_autoscaling"},
    )
    assert deselected.reason == ("No check was run: the checks for this requirement were "
                                 "deselected in this run.")
    assert absent.reason == "Not checked by this suite: it has no check for this requirement yet."
    assert interrupted.reason == ("No check was run: its selected checks reported no result; "
                                  "the run may have been interrupted.")
    assert interrupted.status is Status.NOT_VERIFIED
    assert absent.status is Status.NOT_VERIFIED
    [plain] = aggregate([REQ], [])
    assert plain.reason == "Not checked by this suite: no check for this requirement ran."
    assert plain.checks == []


@pytest.mark.parametrize("version", ["1.36", "1.37"])
def test_checklist_order_every_id_and_foreign_results_ignored(version):
    reqs = load_catalog().requirements(version)
    results = [check("a", Outcome.PASSED, req="robust_controller"),
               check("z", Outcome.PASSED, req="dra_support"),  # dra_support is not in 1.36+
               check("s", Outcome.NOT_APPLICABLE, "no sandbox RuntimeClass (gVisor, Kata) exists",
                     req="workload_sandboxing")]  # only in 1.37
    verdicts = aggregate(reqs, results)
    assert [v.id for v in verdicts] == [r.id for r in reqs]
    assert [v.level for v in verdicts] == [r.level for r in reqs]
    assert verdicts[-1].status is Status.IMPLEMENTED
    assert all(v.reason and "\n" not in v.reason for v in verdicts)
    by_id = {v.id: v for v in verdicts}
    if version == "1.37":
        assert by_id["workload_sandboxing"].status is Status.NA
        assert by_id["workload_sandboxing"].level == "SHOULD"
    else:
        assert "workload_sandboxing" not in by_id


def test_order_of_results_does_not_matter():
    results = [check("b", Outcome.FAILED, "x"), check("a", Outcome.PASSED)]
    assert one(results) == one(list(reversed(results)))


def test_must_not_implemented_and_summary():
    verdicts = aggregate([REQ, COND, SHOULD], [
        check("a", Outcome.PASSED),
        check("b", Outcome.NOT_OBSERVABLE, "lab", req=COND.id),
        check("c", Outcome.FAILED, "no", req=SHOULD.id),
    ])
    assert [v.status for v in verdicts] == [Status.IMPLEMENTED, Status.NOT_VERIFIED,
                                            Status.NOT_IMPLEMENTED]
    assert [v.id for v in must_not_implemented(verdicts)] == ["cluster_autoscaling"]
    assert summarize(verdicts) == {"Implemented": 1, "Partially Implemented": 0,
                                   "Not Implemented": 1, "N/A": 0, "Not verified": 1}


def test_na_on_unconditional_must_still_fails_the_run():
    v = one([check("a", Outcome.NOT_APPLICABLE, "no gateway")])
    assert [x.id for x in must_not_implemented([v])] == ["gang_scheduling"]


def test_one_line_and_sentence():
    assert one_line("\n  first   line \nsecond") == "first line"
    assert one_line("x" * 300, limit=10) == "x" * 9 + "\u2026"
    assert sentence("failed: it broke") == "Failed: it broke."
    assert sentence("done?") == "Done?"
    assert sentence("") == ""


# --- alternative solutions (issue 13): one complete solution proves the requirement --------

def gang(solution: str, bound: Outcome, unbound: Outcome, reason: str = "") -> list[CheckResult]:
    """A solution's two halves, parametrized by the solution like test_gang_scheduling's."""
    return [check(f"bound[{solution}]", bound, reason if bound is not Outcome.PASSED else "",
                  solution=solution),
            check(f"unbound[{solution}]", unbound,
                  reason if unbound is not Outcome.PASSED else "", solution=solution)]


P, F, NA = Outcome.PASSED, Outcome.FAILED, Outcome.NOT_APPLICABLE


def test_one_complete_solution_proves_it_and_the_others_become_notes():
    v = one([*gang("kueue", P, P),
             *gang("volcano", P, F, "3 of 4 gang members were bound"),
             *gang("kai", NA, NA, "kai is not installed (kueue, volcano is)"),
             check("available", P, role=Role.SUPPORTING)])
    assert v.status is Status.IMPLEMENTED
    assert v.reason == ("All 2 essential checks passed with solution kueue: check bound[kueue]; "
                        "check unbound[kueue].")
    assert v.notes == [
        "Solution kai is not applicable: kai is not installed (kueue, volcano is).",
        "Solution volcano: 'check unbound[volcano]' failed: 3 of 4 gang members were bound.",
    ]
    assert len(v.checks) == 7
    assert must_not_implemented([v]) == []


def test_a_solution_must_pass_both_halves():
    """A half that was not observable leaves its solution incomplete: the usual rules decide."""
    v = one([*gang("kueue", P, Outcome.NOT_OBSERVABLE, "no node has a free nvidia.com/gpu"),
             *gang("volcano", NA, NA, "volcano is not installed (kueue is)")])
    assert v.status is Status.NOT_VERIFIED
    assert v.reason == ("'check unbound[kueue]' could not be observed here: no node has a free "
                        "nvidia.com/gpu.")
    assert v.notes == [
        "Essential check 'check bound[kueue]' passed.",
        "Essential check 'check bound[volcano]' is not applicable: volcano is not installed "
        "(kueue is).",
        "Essential check 'check unbound[volcano]' is not applicable: volcano is not installed "
        "(kueue is).",
    ]
    # a failed half: the usual rules, over every check
    v = one([*gang("kueue", P, F, "2 of 3 members were bound"),
             *gang("volcano", NA, NA, "volcano is not installed (kueue is)")])
    assert v.status is Status.PARTIALLY
    assert v.reason == ("1 of 2 essential checks passed; 'check unbound[kueue]' failed: 2 of 3 "
                        "members were bound.")


def test_no_solution_installed_is_the_checks_failure():
    none = "no gang scheduler found: none of Volcano, Kueue APIs are served"
    v = one([*gang("kueue", F, F, none), *gang("volcano", F, F, none)])
    assert v.status is Status.NOT_IMPLEMENTED
    assert v.reason == f"'check bound[kueue]' failed: {none}."
    assert v.notes == [f"Essential check 'check {n}' failed: {none}." for n in
                       ("bound[volcano]", "unbound[kueue]", "unbound[volcano]")]
    assert [x.id for x in must_not_implemented([v])] == ["gang_scheduling"]


def test_a_failure_tied_to_no_solution_still_decides():
    v = one([*gang("kueue", P, P), check("webhook", F, "the webhook refused the Job")])
    assert v.status is Status.PARTIALLY
    assert v.reason == ("2 of 3 essential checks passed; 'check webhook' failed: the webhook "
                        "refused the Job.")
    v = one([*gang("kueue", P, P), check("webhook", Outcome.ERROR, "connection reset")])
    assert v.status is Status.NOT_VERIFIED
    assert v.reason == "'check webhook' could not run (error): connection reset."


def test_two_complete_solutions_name_the_first_and_note_the_other():
    v = one([*gang("volcano", P, P), *gang("kueue", P, P)])
    assert v.status is Status.IMPLEMENTED
    assert v.reason == ("All 2 essential checks passed with solution kueue: check bound[kueue]; "
                        "check unbound[kueue].")
    assert v.notes == ["Solution volcano also passed all its essential checks."]


def test_every_solution_not_applicable_is_na():
    v = one([*gang("kueue", NA, NA, "kueue is not installed"),
             check("available", NA, "nothing installed", role=Role.SUPPORTING)])
    assert v.status is Status.NA
    assert v.reason == "Not applicable: nothing installed."  # the first check by node id


def test_partial_run_rules_hold_for_solutions():
    """A partial run does not decide, and a solution's failure is no proof while another
    solution's checks were not run."""
    ct = "pytest_aiconformance/checks/test_x.py::test_"
    expected = {"gang_scheduling": {f"{ct}{h}[{s}]": f"TestX/{h}/{s}"
                                    for h in ("bound", "unbound") for s in ("kueue", "volcano")}}
    [v] = aggregate([REQ], gang("kueue", P, P), expected=expected)
    assert v.status is Status.NOT_VERIFIED
    assert v.reason == ("Essential checks of this requirement were not run (deselected or not "
                        "collected): TestX/bound/volcano, TestX/unbound/volcano.")
    assert v.notes == ["Essential check 'check bound[kueue]' passed.",
                       "Essential check 'check unbound[kueue]' passed.",
                       "Solution kueue passed all its essential checks that ran."]
    assert must_not_implemented([v]) == []
    # kueue failed, volcano was deselected: volcano might prove it
    [v] = aggregate([REQ], gang("kueue", P, F, "members were bound"), expected=expected)
    assert v.status is Status.NOT_VERIFIED
    assert v.missing == ["TestX/bound/volcano", "TestX/unbound/volcano"]
    assert v.notes == ["Essential check 'check bound[kueue]' passed.",
                       "Essential check 'check unbound[kueue]' failed: members were bound."]
    # a failure tied to no solution is proof whatever did not run
    expected["gang_scheduling"][f"{ct}webhook"] = "TestX/webhook"
    [v] = aggregate([REQ], [*gang("kueue", P, F, "members were bound"),
                            check("webhook", F, "refused")], expected=expected)
    assert v.status is Status.PARTIALLY
    assert v.reason == "1 of 3 essential checks passed; 'check webhook' failed: refused."
    assert v.notes[0] == "Essential check 'check unbound[kueue]' failed: members were bound."
    # everything ran: decided by the complete solution
    every = [*gang("kueue", P, P), *gang("volcano", F, F, "no"), check("webhook", P)]
    [v] = aggregate([REQ], every, expected=expected)
    assert v.status is Status.IMPLEMENTED
    assert v.missing == []


def test_solution_in_verdicts_json():
    from pytest_aiconformance.reports.verdicts_json import check_to_json

    tied, plain = gang("kueue", P, P)[0], check("a", P)
    assert check_to_json(tied)["solution"] == "kueue"
    assert "solution" not in check_to_json(plain)
