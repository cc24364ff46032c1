"""Turn check results into one honest verdict per requirement of the selected checklist.

Verdicts are computed once, at session end, from CheckResult rows (which survive
pytest-xdist), so every report (terminal, verdicts.json, PRODUCT.yaml, evidence.md)
states the same thing for the same run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from pytest_aiconformance.verdicts.catalog import Requirement
from pytest_aiconformance.verdicts.model import CheckResult, RequirementVerdict, Role, Status
from pytest_aiconformance.verdicts.outcomes import Outcome

_UNOBSERVED = (Outcome.NOT_OBSERVABLE, Outcome.UNKNOWN_HARDWARE, Outcome.SKIPPED)
_REASON_LIMIT = 240


def one_line(text: str, limit: int = _REASON_LIMIT) -> str:
    """The first non-empty line of a message, whitespace collapsed, cut to `limit` characters.

    Reasons end up in table cells and YAML notes, where a traceback would be unreadable.
    """
    for line in text.splitlines():
        cleaned = re.sub(r"\s+", " ", line).strip()
        if cleaned:
            if len(cleaned) > limit:
                cleaned = cleaned[: limit - 1].rstrip() + "\u2026"
            return cleaned
    return ""


def sentence(text: str) -> str:
    """Make a one-line sentence: capital first letter, final full stop."""
    text = one_line(text)
    if not text:
        return text
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?\u2026":
        text += "."
    return text


def check_label(check: CheckResult) -> str:
    """How a check is named in reasons and notes: its title, else its JUnit name, else nodeid."""
    return check.title or check.junit_name or check.nodeid


def describe_check(check: CheckResult) -> str:
    """`'<title>' <outcome>: <reason>` as one line, e.g. for notes."""
    label = f"'{check_label(check)}'"
    why = one_line(check.reason)
    if check.outcome is Outcome.PASSED:
        return f"{label} passed"
    if check.outcome is Outcome.FAILED:
        text = f"{label} failed"
    elif check.outcome is Outcome.ERROR:
        text = f"{label} could not run (error)"
    elif check.outcome is Outcome.NOT_OBSERVABLE:
        text = f"{label} could not be observed here"
    elif check.outcome is Outcome.UNKNOWN_HARDWARE:
        text = f"{label} was skipped on unknown hardware"
    elif check.outcome is Outcome.NOT_APPLICABLE:
        text = f"{label} is not applicable"
    else:
        text = f"{label} was skipped"
    return f"{text}: {why}" if why else text


def _sort(checks: Iterable[CheckResult]) -> list[CheckResult]:
    # Results arrive in worker order under xdist; nodeid order keeps reports identical.
    return sorted(checks, key=lambda c: (c.nodeid, c.junit_name))


def _no_results_reason(req_id: str, selected_ids: set[str] | None,
                       suite_ids: set[str] | None) -> str:
    if suite_ids is not None and req_id not in suite_ids:
        return "Not checked by this suite: it has no check for this requirement yet."
    if selected_ids is not None and req_id not in selected_ids:
        return "No check was run: the checks for this requirement were deselected in this run."
    if selected_ids is not None:
        return ("No check was run: its selected checks reported no result; "
                "the run may have been interrupted.")
    return "Not checked by this suite: no check for this requirement ran."


def _verdict(req: Requirement, status: Status, reason: str, checks: list[CheckResult],
             notes: list[str], missing: Sequence[str] = ()) -> RequirementVerdict:
    return RequirementVerdict(
        id=req.id,
        category=req.category,
        level=req.level,
        status=status,
        reason=sentence(reason) or "No reason was recorded.",
        conditional=req.conditional,
        checks=checks,
        notes=[sentence(n) for n in notes if one_line(n)],
        missing=list(missing),
    )


def _essential_notes(checks: Iterable[CheckResult]) -> list[str]:
    return [f"Essential check {describe_check(c)}" for c in checks]


def _function(check: CheckResult) -> str:
    """The check function a result belongs to: its node id without the parameters."""
    return check.nodeid.split("[", 1)[0]


def _complete_solutions(essential: Sequence[CheckResult]) -> list[str]:
    """Solutions whose essential checks all passed, one for every check function that some
    solution ran (a solution that ran only one half of a pair proves nothing), sorted."""
    tied = [c for c in essential if c.solution]
    functions = {_function(c) for c in tied}
    by_solution: dict[str, list[CheckResult]] = {}
    for c in tied:
        by_solution.setdefault(c.solution, []).append(c)
    return sorted(s for s, group in by_solution.items()
                  if all(c.outcome is Outcome.PASSED for c in group)
                  and {_function(c) for c in group} == functions)


def _solution_notes(others: Sequence[CheckResult], also_complete: Sequence[str]) -> list[str]:
    """What the solutions that did not decide showed: one note per solution that does not
    apply here, else one per check of it that did not pass."""
    by_solution: dict[str, list[CheckResult]] = {}
    for c in others:
        by_solution.setdefault(c.solution, []).append(c)
    notes = []
    for solution, group in sorted(by_solution.items()):
        if solution in also_complete:
            notes.append(f"Solution {solution} also passed all its essential checks")
        elif all(c.outcome is Outcome.NOT_APPLICABLE for c in group):
            why = one_line(group[0].reason) or check_label(group[0])
            notes.append(f"Solution {solution} is not applicable: {why}")
        else:
            notes += [f"Solution {solution}: {describe_check(c)}" for c in group
                      if c.outcome is not Outcome.PASSED]
    return notes


def _decide(req: Requirement, checks: list[CheckResult],
            missing: Sequence[str] = ()) -> RequirementVerdict:
    """The verdict of one requirement that has at least one result (rules in `aggregate`)."""
    if all(c.outcome is Outcome.NOT_APPLICABLE for c in checks) and not missing:
        notes = [describe_check(c) for c in checks]
        why = one_line(checks[0].reason) or check_label(checks[0])
        return _verdict(req, Status.NA, f"Not applicable: {why}", checks, notes)
    essential = [c for c in checks if c.role is Role.ESSENTIAL]
    complete = _complete_solutions(essential)
    if complete and not missing:
        # One solution proves the requirement: the others' checks do not decide, they inform.
        chosen = complete[0]
        others = [c for c in essential if c.solution and c.solution != chosen]
        skip = {id(c) for c in others}
        return _judge(req, checks, [c for c in checks if id(c) not in skip], (),
                      solution=chosen, solution_notes=_solution_notes(others, complete[1:]))
    notes = [f"Solution {s} passed all its essential checks that ran" for s in complete]
    return _judge(req, checks, checks, missing, solution_notes=notes)


def _judge(req: Requirement, checks: list[CheckResult], considered: list[CheckResult],
           missing: Sequence[str], *, solution: str = "",
           solution_notes: Sequence[str] = ()) -> RequirementVerdict:
    """The usual rules over `considered` (all checks, or those of the proving solution and
    those tied to none); the verdict lists every check."""
    essential = [c for c in considered if c.role is Role.ESSENTIAL]
    supporting = [c for c in considered if c.role is not Role.ESSENTIAL]
    not_run = (f"Essential checks of this requirement were not run (deselected or not "
               f"collected): {', '.join(missing)}") if missing else ""

    sup_failed = [c for c in supporting if c.outcome is Outcome.FAILED]
    sup_other = [c for c in supporting if c.outcome is not Outcome.FAILED
                 and c.outcome is not Outcome.PASSED]
    ess_na = [c for c in essential if c.outcome is Outcome.NOT_APPLICABLE]
    deciding = [c for c in essential if c.outcome is not Outcome.NOT_APPLICABLE]
    passed = [c for c in deciding if c.outcome is Outcome.PASSED]
    failed = [c for c in deciding if c.outcome is Outcome.FAILED]
    # While checks were not run, a solution's failure proves nothing: one of the checks not
    # run may belong to another solution that proves the requirement.
    held = [c for c in failed if c.solution] if missing else []
    failed = [c for c in failed if not (missing and c.solution)]
    # An error is the check's own problem (API outage, broken fixture), not the platform's.
    errored = [c for c in deciding if c.outcome is Outcome.ERROR]
    unobserved = [c for c in deciding if c.outcome in _UNOBSERVED]

    # Notes every verdict carries: supporting failures and skips, essentials that did not
    # apply, and checks that passed with a teardown problem.
    side_notes = [f"Supporting check {describe_check(c)}" for c in sup_failed + sup_other]
    side_notes += _essential_notes(ess_na)
    side_notes += [f"'{check_label(c)}' passed; {one_line(c.reason)}" for c in checks
                   if c.outcome is Outcome.PASSED and one_line(c.reason)]
    side_notes += solution_notes
    if not_run:
        side_notes.append(not_run)

    if failed:
        status = Status.PARTIALLY if passed else Status.NOT_IMPLEMENTED
        lead = (f"{len(passed)} of {len(deciding)} essential checks passed; " if passed
                else "")
        return _verdict(req, status, lead + describe_check(failed[0]), checks,
                        _essential_notes(failed[1:] + held + errored + unobserved) + side_notes,
                        missing)
    if not essential:
        return _verdict(req, Status.NOT_VERIFIED,
                        "No essential check ran for this requirement; supporting checks alone "
                        "cannot decide it", checks,
                        side_notes + [f"Supporting check {describe_check(c)}"
                                      for c in supporting if c.outcome is Outcome.PASSED],
                        missing)
    if errored or unobserved:
        first = (errored + unobserved)[0]
        notes = _essential_notes([c for c in errored + unobserved if c is not first] + passed
                                 + held)
        return _verdict(req, Status.NOT_VERIFIED, describe_check(first), checks,
                        notes + side_notes, missing)
    if missing:
        return _verdict(req, Status.NOT_VERIFIED, not_run, checks,
                        _essential_notes(passed + held) + side_notes[:-1], missing)
    if not deciding:
        # Every essential check found the requirement not applicable.
        return _verdict(req, Status.NA,
                        f"Not applicable: {one_line(ess_na[0].reason) or check_label(ess_na[0])}",
                        checks, side_notes)
    titles = "; ".join(check_label(c) for c in passed)
    lead = "The essential check" if len(passed) == 1 else f"All {len(passed)} essential checks"
    reason = f"{lead} passed{f' with solution {solution}' if solution else ''}: {titles}"
    if sup_failed:
        reason += f" (supporting check {describe_check(sup_failed[0])})"
    return _verdict(req, Status.IMPLEMENTED, reason, checks, side_notes)


def aggregate(
    requirements: Sequence[Requirement],
    results: Sequence[CheckResult],
    selected_ids: set[str] | None = None,
    *,
    suite_ids: set[str] | None = None,
    expected: Mapping[str, Mapping[str, str]] | None = None,
) -> list[RequirementVerdict]:
    """One verdict per requirement, in checklist order.

    Rules, per requirement (essential checks decide, supporting checks add evidence):
    - an essential check failed -> Partially Implemented when another essential check passed,
      else Not Implemented (a failure is proof, whatever else did not run);
    - otherwise an essential check that errored (the check could not run: API outage, broken
      set-up), was not observable, ran on unknown hardware or was plainly skipped -> Not
      verified, naming it; a skipped check is never a pass, and an error is not the platform's
      failure;
    - otherwise an essential check of the requirement that this run did not run (deselected
      by -m/-k, or not collected) -> Not verified, naming the missing checks: a partial run
      does not decide a requirement;
    - otherwise every essential check not applicable (or every check) -> N/A, reasons in notes;
    - otherwise (every essential check passed) -> Implemented. Supporting checks never decide:
      a failed or skipped one is named in the notes (a failed one in the reason too).
    - no essential check ran at all -> Not verified; no result at all -> Not verified: "no
      check was run" when the requirement's checks were deselected (not in `selected_ids`),
      "not checked by this suite" when the suite has none (not in `suite_ids`).
    Alternative solutions (checks with a `solution`, e.g. one gang scheduler each): a solution
    is complete when its essential checks all passed and it ran every check function that
    some solution ran. With a complete solution and no essential check left unrun, the other
    solutions' checks do not decide (their failures, skips and absence become notes) and the
    rules above apply to the complete solution's checks plus those tied to no solution (the
    first complete solution by name; the others are noted). Otherwise the rules apply to all
    checks, except that while an essential check was not run a failure tied to a solution is
    no proof (the check not run may be another solution's).
    `expected` maps a requirement id to its essential checks (nodeid, or module::function for
    every parameter of a function, -> name).
    Results for ids outside `requirements` are ignored (checks of other checklist versions).
    """
    by_id: dict[str, list[CheckResult]] = {}
    for result in results:
        by_id.setdefault(result.requirement, []).append(result)
    verdicts: list[RequirementVerdict] = []
    for req in requirements:
        checks = _sort(by_id.get(req.id, []))
        if not checks:
            verdicts.append(_verdict(req, Status.NOT_VERIFIED,
                                     _no_results_reason(req.id, selected_ids, suite_ids), [], []))
            continue
        ran = {c.nodeid for c in checks}
        missing = sorted(name for key, name in (expected or {}).get(req.id, {}).items()
                         if key not in ran and not any(n.startswith(key + "[") for n in ran))
        verdicts.append(_decide(req, checks, missing))
    return verdicts


def must_not_implemented(verdicts: Iterable[RequirementVerdict]) -> list[RequirementVerdict]:
    """The MUST requirements that make the run fail (non-zero exit).

    A MUST counts unless it is Implemented; a conditional MUST that is N/A (its condition does
    not hold, e.g. no cluster autoscaler) does not count, as the checklist allows that. A MUST
    that no check of this run decided (deselected, or not checked by the suite) does not count
    either: a run of `-m gang_scheduling` judges gang scheduling only, and a MUST left Not
    verified because some of its essential checks were deselected was not decided.
    """
    return [
        v for v in verdicts
        if v.level == "MUST" and v.checks and v.status is not Status.IMPLEMENTED
        and not (v.status is Status.NA and v.conditional)
        and not (v.status is Status.NOT_VERIFIED and v.missing)
    ]


def summarize(verdicts: Iterable[RequirementVerdict]) -> dict[str, int]:
    """Counts per status value, every status present, in Status order."""
    counts = {s.value: 0 for s in Status}
    for v in verdicts:
        counts[v.status.value] += 1
    return counts
