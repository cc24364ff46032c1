"""Per-check records: what a check declares, its evidence, its phases and its one outcome.

A check is a test item with a `requirement` marker. Its JUnit name comes from one rule
(`junit_name`), its evidence from one recorder per item, and its outcome from one derivation
(`derive_outcome`) that serves both the JUnit `verdict` property written on the worker and
the verdicts computed on the controller, so the two cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_aiconformance.verdicts.catalog import load_catalog
from pytest_aiconformance.verdicts.evidence import EvidenceRecorder
from pytest_aiconformance.verdicts.model import (
    PROP_EVIDENCE,
    PROP_JUNIT_NAME,
    PROP_LEVEL,
    PROP_OUTAGE,
    PROP_OUTCOME,
    PROP_REASON,
    PROP_REQUIREMENT,
    PROP_ROLE,
    PROP_SETUP_ASSERT,
    PROP_SOLUTION,
    PROP_TITLE,
    PROP_VERSION,
    CheckResult,
    Role,
)
from pytest_aiconformance.verdicts.outcomes import Outcome, classify_skip

MARKER = "requirement"
NEEDS_CONTAINERS = "needs_containers"

# --- what a check declares ----------------------------------------------------------------


@dataclass(frozen=True)
class CheckSpec:
    """What the requirement marker of one check says, with its JUnit name resolved."""

    requirement: str
    role: Role
    junit_name: str
    title: str
    solution: str = ""  # the value of the parameter that `solution=` names, if any


def camel(text: str) -> str:
    """`gang_bound_together` -> `GangBoundTogether` (Go test names)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text)
                   if part)


def junit_name(requirement: str, function: str, declared: str | None = None,
               param_id: str | None = None) -> str:
    """The check's stable JUnit name, shaped like the upstream Go suite's test names.

    The group is the requirement's (catalog `junit`, e.g. `TestSecureAcceleratorAccess`); the
    case is `declared` (a case name, or a whole `Group/Case`) or the function name in
    CamelCase. A parametrized check gets its parameter as a subtest (`.../volcano`), so two
    parameters never share a name or an evidence file.
    """
    if declared and "/" in declared:
        name = declared
    else:
        case = declared or camel(function.split("[", 1)[0].removeprefix("test_")) or "Check"
        name = f"{load_catalog().junit_group(requirement)}/{case}"
    if param_id:
        name += "/" + re.sub(r"\s+", "_", param_id)
    return name


def check_spec(item: pytest.Item) -> CheckSpec | None:
    """The CheckSpec of an item that carries a requirement marker, else None."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    if not marker.args or not isinstance(marker.args[0], str):
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.requirement needs the requirement id as first argument"
        )
    requirement = marker.args[0]
    role_text = marker.kwargs.get("role", "essential")
    try:
        role = Role(role_text)
    except ValueError:
        raise pytest.UsageError(
            f"{item.nodeid}: role must be 'essential' or 'supporting', not {role_text!r}"
        ) from None
    callspec = getattr(item, "callspec", None)
    name = junit_name(requirement, item.name, marker.kwargs.get("junit"),
                      callspec.id if callspec is not None else None)
    doc = (getattr(getattr(item, "function", None), "__doc__", None) or "").strip()
    title = marker.kwargs.get("title") or (doc.splitlines()[0] if doc else item.name)
    return CheckSpec(requirement, role, name, title, _solution(item, marker, callspec))


def _solution(item: pytest.Item, marker: pytest.Mark, callspec: object) -> str:
    """`solution="<param>"` names the parameter whose value is the alternative solution the
    check exercises (verdicts: any one complete solution proves the requirement)."""
    param = marker.kwargs.get("solution")
    if param is None:
        return ""
    params = getattr(callspec, "params", None) or {}
    if not isinstance(param, str) or param not in params:
        raise pytest.UsageError(
            f"{item.nodeid}: solution={param!r} must name a parameter of this check "
            f"(parametrized: {', '.join(sorted(params)) or 'none'})"
        )
    return str(params[param])


def make_supporting(item: pytest.Item) -> None:
    """On this cluster the check can only add evidence (e.g. the vendor has no load image to
    run): its role becomes supporting for this run, so it cannot leave the requirement Not
    verified. Call it before skipping; the verdict reads the role the reports carry."""
    item.user_properties[:] = [(k, v) for k, v in item.user_properties if k != PROP_ROLE]
    item.user_properties.append((PROP_ROLE, Role.SUPPORTING.value))


def uncollected_essentials(items: list[pytest.Item],
                           known: set[str]) -> dict[str, dict[str, str]]:
    """Essential checks declared in the modules of these items but not collected (a run given
    node ids collects only those): requirement -> {module::function: JUnit name}."""
    found: dict[str, dict[str, str]] = {}
    modules = {item.nodeid.split("::", 1)[0]: getattr(item, "module", None) for item in items
               if check_spec(item) is not None}
    for prefix, module in modules.items():
        for name, obj in vars(module).items() if module is not None else ():
            key = f"{prefix}::{name}"
            marks = [m for m in getattr(obj, "pytestmark", []) if m.name == MARKER]
            if not name.startswith("test") or not marks or any(
                    k == key or k.startswith(key + "[") for k in known):
                continue
            mark = marks[0]
            if mark.kwargs.get("role", "essential") == "essential" and mark.args:
                found.setdefault(str(mark.args[0]), {})[key] = junit_name(
                    str(mark.args[0]), name, mark.kwargs.get("junit"))
    return found


def add_item_properties(item: pytest.Item, spec: CheckSpec, version: str | None) -> None:
    """Properties every check's JUnit testcase carries (requirement, level, version...)."""
    catalog = load_catalog()
    version = version or catalog.known_versions[-1]
    req = catalog.get(version, spec.requirement)
    props = [
        (PROP_REQUIREMENT, spec.requirement),
        (PROP_LEVEL, req.level if req else ""),
        (PROP_VERSION, version),
        (PROP_ROLE, spec.role.value),
        (PROP_JUNIT_NAME, spec.junit_name),
        (PROP_TITLE, spec.title),
        *([(PROP_SOLUTION, spec.solution)] if spec.solution else []),
    ]
    have = {k for k, _ in item.user_properties}
    item.user_properties.extend((k, v) for k, v in props if k not in have)


# --- evidence -----------------------------------------------------------------------------

EVIDENCE_KEY = pytest.StashKey[EvidenceRecorder]()


def evidence_for(item: pytest.Item) -> EvidenceRecorder:
    """The item's evidence recorder (one per check)."""
    if EVIDENCE_KEY not in item.stash:
        spec = check_spec(item)
        requirement = spec.requirement if spec else ""
        name = spec.junit_name if spec else item.nodeid
        title = spec.title if spec else item.name
        item.stash[EVIDENCE_KEY] = EvidenceRecorder(item.nodeid, requirement, name, title)
    return item.stash[EVIDENCE_KEY]


def attach_evidence(item: pytest.Item, report_dir: Path | None) -> None:
    """Before the teardown report: evidence into <system-out> and into a file per check."""
    recorder = item.stash.get(EVIDENCE_KEY, None)
    if recorder is None or recorder.empty:
        return
    item.add_report_section("teardown", "stdout (evidence)", recorder.data.render())
    if report_dir is not None:
        item.user_properties.append((PROP_EVIDENCE, recorder.write(report_dir)))


# --- phases and the one outcome derivation ------------------------------------------------


def skip_message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


# `pkg.module.ClusterError: ` before a message: the class says nothing to a user, the
# message (the API server's own words, where it answered) says everything.
# (Our exceptions show module-qualified; a builtin other than AssertionError, e.g. TypeError,
# names a bug in a check and stays.)
_EXCEPTION_PREFIX = re.compile(r"^(?:(?:[a-z_]\w*\.)+[A-Z]\w*|AssertionError): ")


def failure_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or str(report.longrepr or "failed")
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    return _EXCEPTION_PREFIX.sub("", first)[:500]


@dataclass
class PhaseRecord:
    """What was seen of one check across its setup/call/teardown reports."""

    nodeid: str
    props: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)  # when -> passed/failed/skipped
    skip_message: str = ""
    failure: str = ""  # "<when>: <first line>" of the first failing phase
    duration: float = 0.0

    def add(self, report: pytest.TestReport) -> None:
        self.props.update({str(k): str(v) for k, v in report.user_properties})
        self.outcomes[report.when] = report.outcome
        self.duration += report.duration
        if report.skipped and not self.skip_message:
            self.skip_message = skip_message(report)
        if report.failed and not self.failure:
            self.failure = f"{report.when}: {failure_line(report)}"


def derive_outcome(record: PhaseRecord) -> tuple[Outcome, str]:
    """The check's outcome and reason from the phases seen so far (the only such rule)."""
    outs = record.outcomes
    if outs.get("setup") == "failed":
        if record.props.get(PROP_SETUP_ASSERT):
            return Outcome.FAILED, record.failure
        return Outcome.ERROR, record.failure
    if outs.get("call") == "failed":
        if record.props.get(PROP_OUTAGE) == "call":
            # The API server did not answer within the outage budget: nothing was proven.
            return Outcome.ERROR, record.failure
        return Outcome.FAILED, record.failure.removeprefix("call: ")
    if "skipped" in (outs.get("setup"), outs.get("call")):
        return classify_skip(record.skip_message)
    if outs.get("call") == "passed":
        # What the check proved stands; a teardown problem travels as a note.
        return Outcome.PASSED, record.failure if outs.get("teardown") == "failed" else ""
    return Outcome.ERROR, "the check did not complete (interrupted?)"


RECORD_KEY = pytest.StashKey[PhaseRecord]()


def record_phase(item: pytest.Item, report: pytest.TestReport) -> PhaseRecord:
    """Remember this phase on the item; once the outcome is known, put it in the properties.

    The `verdict` property must be on the item before the teardown report, which is the
    one the JUnit writer takes the properties from.
    """
    record = item.stash.setdefault(RECORD_KEY, PhaseRecord(item.nodeid))
    record.add(report)
    decided = report.when == "call" or (report.when == "setup" and not report.passed)
    if decided and check_spec(item) is not None:
        outcome, reason = derive_outcome(record)
        item.user_properties[:] = [
            (k, v) for k, v in item.user_properties if k not in (PROP_OUTCOME, PROP_REASON)
        ]
        item.user_properties.extend([(PROP_OUTCOME, outcome.value), (PROP_REASON, reason)])
    return record


def failed_so_far(item: pytest.Item) -> bool:
    """Whether a phase of this item failed (fixtures collect diagnostics then)."""
    record = item.stash.get(RECORD_KEY, None)
    return record is not None and "failed" in record.outcomes.values()


def check_results(records: Mapping[str, PhaseRecord],
                  specs: Mapping[str, CheckSpec]) -> list[CheckResult]:
    """One CheckResult per check from the phase records (controller side)."""
    results = []
    for nodeid, record in records.items():
        props = record.props
        spec = specs.get(nodeid)
        requirement = props.get(PROP_REQUIREMENT) or (spec.requirement if spec else "")
        if not requirement:
            continue
        outcome, reason = derive_outcome(record)
        role_text = props.get(PROP_ROLE) or (spec.role.value if spec else "essential")
        results.append(CheckResult(
            nodeid=nodeid,
            requirement=requirement,
            role=Role(role_text),
            outcome=outcome,
            reason=reason,
            junit_name=props.get(PROP_JUNIT_NAME) or (spec.junit_name if spec else nodeid),
            title=props.get(PROP_TITLE) or (spec.title if spec else nodeid),
            evidence_file=props.get(PROP_EVIDENCE, ""),
            duration=round(record.duration, 3),
            solution=props.get(PROP_SOLUTION) or (spec.solution if spec else ""),
        ))
    results.sort(key=lambda r: r.nodeid)
    return results
