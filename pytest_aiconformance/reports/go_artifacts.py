"""The three test artifacts CNCF's AI conformance validator reads, rendered from our checks.

From v1.37 a PRODUCT.yaml evidence link to a file named `junit.xml`, `results.json` or
`e2e.log` is parsed as the output of the upstream Go suite (gotestsum JUnit, `go test -json`,
`go test -v`), and any failing test in it fails the submission. So the files must look like
Go wrote them: every check is a subtest (its `junit_name`), every level above it a test of
its own whose result is aggregated the way `go test` does (a failing subtest fails it, only
skipped subtests skip it, otherwise it passes), and an ERROR is a failed test, since Go has no
third state. A skip is reported as a skip with its kind and reason, never as a pass.

The renderers are pure: same checks, evidence texts and start time, same bytes. Evidence is
shown as each test's output, every line behind a `| ` gutter and any `--- FAIL:` in it written
`--- FAIL :`, so nothing a command printed can read as a result line or a package status
(`FAIL`, `ok`). JUnit's `<system-out>` keeps the evidence as it was.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from pytest_aiconformance.verdicts.catalog import load_catalog
from pytest_aiconformance.verdicts.evidence import load_evidence
from pytest_aiconformance.verdicts.model import CheckResult
from pytest_aiconformance.verdicts.outcomes import Outcome

PACKAGE = "pytest-aiconformance/checks"
INDENT = "    "  # go test's indentation step (log lines, nested result lines)
GUTTER = "| "  # in front of every evidence line
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_RESULT_MARKER = re.compile(r"---\s*(PASS|FAIL|SKIP):")
# Outside XML 1.0's character set (tab, newline and carriage return are allowed), plus
# surrogates, which UTF-8 cannot encode.
_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class GoResult(StrEnum):
    """The three results `go test` knows."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


def go_result(outcome: Outcome) -> GoResult:
    """ERROR is a failure to Go; every kind of skip is a skip."""
    if outcome in (Outcome.FAILED, Outcome.ERROR):
        return GoResult.FAIL
    return GoResult.SKIP if outcome.is_skip else GoResult.PASS


def outcome_message(check: CheckResult) -> str:
    """Why a check failed or was skipped, in words that keep our outcome's meaning."""
    reason = check.reason.strip()
    if check.outcome is Outcome.ERROR:
        return ("error in set-up or teardown, the check did not run to a verdict"
                + (f": {reason}" if reason else ""))
    if check.outcome is Outcome.FAILED:
        return reason or "failed"
    if check.outcome.is_skip:
        return f"{check.outcome.value}: {reason}" if reason else check.outcome.value
    return reason


def _clean(text: str) -> str:
    """One newline convention and no characters XML or UTF-8 cannot carry (shown as \\xNN)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _INVALID_CHARS.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100
                              else f"\\u{ord(m.group(0)):04x}", text)


def _defuse(line: str) -> str:
    """Text inside a log line must not contain a result marker an unanchored regex could take
    for a test's result (`--- FAIL: ...`): `--- FAIL:` is written `--- FAIL :`."""
    return _RESULT_MARKER.sub(r"--- \1 :", line)


def _segment(part: str) -> str:
    """A test name segment as Go prints it: no whitespace (go test turns it into `_`)."""
    return re.sub(r"\s", "_", part) or "_"


def _name_parts(check: CheckResult) -> list[str]:
    name = check.junit_name
    if not name:  # a record without a declared name still gets a Go-shaped one
        func = check.nodeid.rsplit("::", 1)[-1].split("[", 1)[0].removeprefix("test_")
        case = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", func) if p)
        name = f"{load_catalog().junit_group(check.requirement)}/{case or 'Check'}"
    return [_segment(p) for p in name.split("/")]


@dataclass
class _Test:
    """One Go test: a check, a parent made of its subtests, or both."""

    name: str
    depth: int
    check: CheckResult | None = None
    children: dict[str, _Test] = field(default_factory=dict)

    def subtests(self) -> list[_Test]:
        return [self.children[k] for k in sorted(self.children)]

    @property
    def elapsed(self) -> float:
        """A parent's time includes its subtests', as when Go runs them in sequence."""
        own = self.check.duration if self.check else 0.0
        return max(own, 0.0) + sum(c.elapsed for c in self.subtests())

    @property
    def result(self) -> GoResult:
        results = [c.result for c in self.children.values()]
        if self.check is not None:
            results.append(go_result(self.check.outcome))
        if GoResult.FAIL in results:
            return GoResult.FAIL
        if results and all(r is GoResult.SKIP for r in results):
            return GoResult.SKIP
        return GoResult.PASS

    def failed_subtests(self) -> list[str]:
        return [t.name for t in self.walk() if t is not self and t.check is not None
                and go_result(t.check.outcome) is GoResult.FAIL]

    def message(self) -> str:
        """The failure or skip message (empty for a pass)."""
        result = self.result
        if result is GoResult.PASS:
            return ""
        if self.check is not None and go_result(self.check.outcome) is result:
            return _clean(outcome_message(self.check))
        if result is GoResult.FAIL:
            return "failed subtests: " + ", ".join(self.failed_subtests())
        return "every subtest was skipped"

    def walk(self) -> Iterator[_Test]:
        """This test, then its subtests depth first: the order go test reports them in."""
        yield self
        for child in self.subtests():
            yield from child.walk()


def _tests(checks: Iterable[CheckResult]) -> list[_Test]:
    """The top-level tests, sorted; a second check with the same name gets `#01` like Go's."""
    top: dict[str, _Test] = {}
    for check in sorted(checks, key=lambda c: (_name_parts(c), c.nodeid)):
        parts = _name_parts(check)
        level = top
        node: _Test | None = None
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            key = part
            if last and key in level and level[key].check is not None:
                n = 1
                while f"{part}#{n:02d}" in level:
                    n += 1
                key = f"{part}#{n:02d}"
            if key not in level:
                prefix = f"{node.name}/" if node is not None else ""
                level[key] = _Test(name=prefix + key, depth=depth)
            node = level[key]
            level = node.children
        assert node is not None
        node.check = check
    return [top[k] for k in sorted(top)]


def _evidence_lines(test: _Test, evidence: Mapping[str, str]) -> list[str]:
    if test.check is None:
        return []
    text = _clean(evidence.get(test.check.nodeid, "")).rstrip("\n")
    if not text.strip():
        return []
    return [f"{INDENT}{GUTTER}{_defuse(line)}".rstrip() for line in text.split("\n")]


def _reason_lines(test: _Test, indent: str) -> list[str]:
    """The check's own failure or skip reason (a parent's result speaks for itself)."""
    if test.check is None or go_result(test.check.outcome) is GoResult.PASS:
        return []
    return [f"{indent}{_defuse(line)}".rstrip()
            for line in _clean(outcome_message(test.check)).split("\n")]


def _result_line(test: _Test) -> str:
    return f"{INDENT * test.depth}--- {test.result}: {test.name} ({test.elapsed:.2f}s)"


def _totals(tops: Sequence[_Test]) -> tuple[GoResult, float]:
    failed = any(t.result is GoResult.FAIL for t in tops)
    return (GoResult.FAIL if failed else GoResult.PASS), sum(t.elapsed for t in tops)


def _summary_lines(package: str, tops: Sequence[_Test]) -> list[str]:
    """The lines go test ends a package with: `PASS` + `ok ...` or `FAIL` + `FAIL ...`."""
    result, total = _totals(tops)
    status = "ok  " if result is GoResult.PASS else "FAIL"
    return [str(result), f"{status}\t{package}\t{total:.3f}s"]


# --- junit.xml (gotestsum) -------------------------------------------------------------------


def render_junit_xml(
    checks: Sequence[CheckResult],
    evidence: Mapping[str, str],
    *,
    package: str = PACKAGE,
    timestamp: datetime | None = None,
) -> str:
    """gotestsum's JUnit shape: one suite for the package, a testcase per test and parent.

    Failures (ERROR included, its message saying so) are `<failure>`, every skip kind is
    `<skipped>` with its reason, and a check's evidence is its `<system-out>`.
    """
    tops = _tests(checks)
    tests = [t for top in tops for t in top.walk()]
    failures = sum(t.result is GoResult.FAIL for t in tests)
    skipped = sum(t.result is GoResult.SKIP for t in tests)
    _, total = _totals(tops)
    root = ET.Element("testsuites", {
        "tests": str(len(tests)), "failures": str(failures), "errors": "0",
        "time": f"{total:.3f}",
    })
    suite_attrs = {
        "name": package, "tests": str(len(tests)), "failures": str(failures), "errors": "0",
        "skipped": str(skipped), "time": f"{total:.3f}",
    }
    if timestamp is not None:
        suite_attrs["timestamp"] = _rfc3339(timestamp)
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    for test in tests:
        case = ET.SubElement(suite, "testcase", {
            "classname": package, "name": test.name, "time": f"{test.elapsed:.3f}",
        })
        message = test.message()
        if test.result is GoResult.FAIL:
            kind = test.check.outcome.value if test.check is not None and go_result(
                test.check.outcome) is GoResult.FAIL else "subtests"
            failure = ET.SubElement(case, "failure", {"message": message, "type": kind})
            failure.text = message
        elif test.result is GoResult.SKIP:
            ET.SubElement(case, "skipped", {"message": message})
        if test.check is not None:
            text = _clean(evidence.get(test.check.nodeid, ""))
            if text.strip():
                ET.SubElement(case, "system-out").text = text
    ET.indent(root, space="  ")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode") + "\n")


# --- results.json (go test -json) ------------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    """Go's time.Time in JSON: RFC 3339 with the fraction's trailing zeros trimmed."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    if fraction:
        text += "." + fraction
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return text + "Z"
    zone = moment.strftime("%z")
    return f"{text}{zone[:3]}:{zone[3:]}"


def render_go_json(
    checks: Sequence[CheckResult],
    evidence: Mapping[str, str],
    start: datetime | None,
    *,
    package: str = PACKAGE,
) -> str:
    """`go test -json` events: per test `run`, its `output` lines, then `pass|fail|skip`.

    Times run from `start` (the run's start; the Unix epoch when unknown, never "now")
    through the checks' durations in report order, so the same inputs give the same file.
    """
    origin = start or EPOCH
    tops = _tests(checks)
    lines: list[str] = []

    def emit(offset: float, action: str, test: str = "", output: str = "",
             elapsed: float | None = None) -> None:
        event: dict[str, Any] = {
            "Time": _rfc3339(origin + timedelta(seconds=offset)), "Action": action,
            "Package": package,
        }
        if test:
            event["Test"] = test
        if elapsed is not None:
            event["Elapsed"] = elapsed
        if action == "output":
            event["Output"] = output
        lines.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))

    def run(test: _Test, offset: float) -> float:
        emit(offset, "run", test.name)
        emit(offset, "output", test.name, f"=== RUN   {test.name}\n")
        for line in _evidence_lines(test, evidence) + _reason_lines(test, INDENT):
            emit(offset, "output", test.name, line + "\n")
        own = max(test.check.duration, 0.0) if test.check else 0.0
        clock = offset + own
        for child in test.subtests():
            clock = run(child, clock)
        end = offset + test.elapsed
        emit(end, "output", test.name, _result_line(test) + "\n")
        emit(end, test.result.lower(), test.name, elapsed=round(test.elapsed, 2))
        return end

    emit(0.0, "start")
    clock = 0.0
    for top in tops:
        clock = run(top, clock)
    result, total = _totals(tops)
    for line in _summary_lines(package, tops):
        emit(total, "output", output=line + "\n")
    emit(total, result.lower(), elapsed=round(total, 3))
    return "\n".join(lines) + "\n"


# --- e2e.log (go test -v) --------------------------------------------------------------------


def render_e2e_log(
    checks: Sequence[CheckResult],
    evidence: Mapping[str, str],
    *,
    package: str = PACKAGE,
) -> str:
    """`go test -v` text: `=== RUN` and evidence as each test runs, then Go's result block.

    As in go test's verbose output, a parent's `--- PASS|FAIL|SKIP` line comes when it ends,
    its subtests' lines under it, indented one step per level; a failing or skipped check's
    reason follows its line, one step further in.
    """
    tops = _tests(checks)
    lines: list[str] = []

    def run(test: _Test) -> None:
        lines.append(f"=== RUN   {test.name}")
        lines.extend(_evidence_lines(test, evidence))
        for child in test.subtests():
            run(child)

    def report(test: _Test) -> None:
        lines.append(_result_line(test))
        lines.extend(_reason_lines(test, INDENT * (test.depth + 1)))
        for child in test.subtests():
            report(child)

    for top in tops:
        run(top)
        report(top)
    lines.extend(_summary_lines(package, tops))
    return "\n".join(lines) + "\n"


# --- inputs ----------------------------------------------------------------------------------


def load_evidence_texts(report_dir: Path, checks: Iterable[CheckResult]) -> dict[str, str]:
    """nodeid -> rendered evidence, for the checks whose evidence file exists in `report_dir`."""
    texts: dict[str, str] = {}
    for check in checks:
        data = load_evidence(report_dir, check.evidence_file)
        if data is not None:
            texts[check.nodeid] = data.render()
    return texts
