"""Turn check results into one honest verdict per requirement of the selected checklist.

Verdicts are computed once, at session end, from CheckResult rows (which survive
pytest-xdist), so every report (terminal, verdicts.json, PRODUCT.yaml, evidence.md)
states the same thing for the same run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pytest_aiconformance.catalog import Requirement
from pytest_aiconformance.model import CheckResult, RequirementVerdict, Role, Status
from pytest_aiconformance.outcomes import Outcome

_FAILED = (Outcome.FAILED, Outcome.ERROR)
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
             notes: list[str]) -> RequirementVerdict:
    return RequirementVerdict(
        id=req.id,
        category=req.category,
        level=req.level,
        status=status,
        reason=sentence(reason) or "No reason was recorded.",
        conditional=req.conditional,
        checks=checks,
        notes=[sentence(n) for n in notes if one_line(n)],
    )


def _decide(req: Requirement, checks: list[CheckResult]) -> RequirementVerdict:
    """The rules of issue 2 item 8 for one requirement that has at least one result."""
    if all(c.outcome is Outcome.NOT_APPLICABLE for c in checks):
        notes = [describe_check(c) for c in checks]
        why = one_line(checks[0].reason) or check_label(checks[0])
        return _verdict(req, Status.NA, f"Not applicable: {why}", checks, notes)

    essential = [c for c in checks if c.role is Role.ESSENTIAL]
    supporting = [c for c in checks if c.role is not Role.ESSENTIAL]
    sup_failed = [c for c in supporting if c.outcome in _FAILED]
    sup_skipped = [c for c in supporting if c.outcome.is_skip]
    ess_na = [c for c in essential if c.outcome is Outcome.NOT_APPLICABLE]
    deciding = [c for c in essential if c.outcome is not Outcome.NOT_APPLICABLE]
    passed = [c for c in deciding if c.outcome is Outcome.PASSED]
    failed = [c for c in deciding if c.outcome in _FAILED]
    unobserved = [c for c in deciding if c.outcome in _UNOBSERVED]

    # Notes every verdict carries: supporting problems and essentials that did not apply.
    side_notes = [f"Supporting check {describe_check(c)}" for c in sup_failed]
    side_notes += [f"Supporting check {describe_check(c)}" for c in sup_skipped]
    side_notes += [f"Essential check {describe_check(c)}" for c in ess_na]

    if not essential:
        return _verdict(req, Status.NOT_VERIFIED,
                        "No essential check ran for this requirement; supporting checks alone "
                        "cannot decide it", checks, side_notes
                        + [f"Supporting check {describe_check(c)}" for c in supporting
                           if c.outcome is Outcome.PASSED])
    if not deciding:
        # Every essential check found the requirement not applicable.
        if sup_failed:
            return _verdict(req, Status.NOT_VERIFIED,
                            f"Essential checks found it not applicable but supporting check "
                            f"{describe_check(sup_failed[0])}", checks, side_notes)
        return _verdict(req, Status.NA,
                        f"Not applicable: {one_line(ess_na[0].reason) or check_label(ess_na[0])}",
                        checks, side_notes)

    extra_failures = [f"Essential check {describe_check(c)}" for c in failed[1:]]
    if passed and failed:
        return _verdict(req, Status.PARTIALLY,
                        f"{len(passed)} of {len(deciding)} essential checks passed; "
                        f"{describe_check(failed[0])}", checks,
                        extra_failures + [f"Essential check {describe_check(c)}"
                                          for c in unobserved] + side_notes)
    if failed:
        return _verdict(req, Status.NOT_IMPLEMENTED, describe_check(failed[0]), checks,
                        extra_failures + [f"Essential check {describe_check(c)}"
                                          for c in unobserved] + side_notes)
    if unobserved:
        notes = [f"Essential check {describe_check(c)}" for c in unobserved[1:]]
        notes += [f"Essential check {describe_check(c)}" for c in passed]
        return _verdict(req, Status.NOT_VERIFIED, describe_check(unobserved[0]), checks,
                        notes + side_notes)
    titles = "; ".join(check_label(c) for c in passed)
    if sup_failed:
        return _verdict(req, Status.PARTIALLY,
                        f"Every essential check passed but supporting check "
                        f"{describe_check(sup_failed[0])}", checks, side_notes)
    lead = "The essential check" if len(passed) == 1 else f"All {len(passed)} essential checks"
    return _verdict(req, Status.IMPLEMENTED, f"{lead} passed: {titles}", checks, side_notes)


def aggregate(
    requirements: Sequence[Requirement],
    results: Sequence[CheckResult],
    selected_ids: set[str] | None = None,
    *,
    suite_ids: set[str] | None = None,
) -> list[RequirementVerdict]:
    """One verdict per requirement, in checklist order.

    Rules, per requirement (essential checks decide, supporting checks add evidence):
    - every check not applicable (or every essential one, with no supporting failure) -> N/A,
      the reasons in the notes;
    - essential checks passed, none failed, none unobserved -> Implemented; supporting checks
      that were skipped are listed in the notes;
    - but a failed supporting check caps it at Partially Implemented and is named in the reason
      (it never disappears into an Implemented);
    - some essential checks passed and some failed (or errored) -> Partially Implemented;
    - essential checks failed and none passed -> Not Implemented;
    - otherwise (an essential check not observable, on unknown hardware or plainly skipped, none
      failed; or no essential check at all) -> Not verified, naming what could not be observed.
      A skipped check is never a pass.
    - no result at all -> Not verified: "no check was run" when the requirement's checks were
      deselected (not in `selected_ids`), "not checked by this suite" when the suite has none
      (not in `suite_ids`, or neither set given).
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
        else:
            verdicts.append(_decide(req, checks))
    return verdicts


def must_not_implemented(verdicts: Iterable[RequirementVerdict]) -> list[RequirementVerdict]:
    """The MUST requirements that make the run fail (non-zero exit).

    A MUST counts unless it is Implemented; a conditional MUST that is N/A (its condition does
    not hold, e.g. no cluster autoscaler) does not count, as the checklist allows that. A MUST
    that no check of this run decided (deselected, or not checked by the suite) does not count
    either: a run of `-m gang_scheduling` judges gang scheduling only.
    """
    return [
        v for v in verdicts
        if v.level == "MUST" and v.checks and v.status is not Status.IMPLEMENTED
        and not (v.status is Status.NA and v.conditional)
    ]


def summarize(verdicts: Iterable[RequirementVerdict]) -> dict[str, int]:
    """Counts per status value, every status present, in Status order."""
    counts = {s.value: 0 for s in Status}
    for v in verdicts:
        counts[v.status.value] += 1
    return counts
