"""The test artifacts a CNCF submission links, read the way the program's validator reads them.

`junit.xml` (gotestsum / go-junit-report), `results.json` (`go test -json` events) and
`e2e.log` (`go test -v`): each yields the tests it records and every failure in it, with
subtests aggregated under a parent that has no result of its own.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class ArtifactOutcome(Enum):
    """A test's result as an artifact records it."""

    MISSING = "not found"
    PASS = "passed"
    FAIL = "failed"
    SKIP = "skipped"


class ArtifactError(ValueError):
    """A linked test artifact that cannot be read as its kind."""


@dataclass
class ArtifactResults:
    """The tests one artifact records, and every failure in it."""

    tests: dict[str, ArtifactOutcome] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def record(self, name: str, outcome: ArtifactOutcome) -> None:
        """Keep the latest result of a name, except that a failure is never overwritten."""
        if self.tests.get(name) is ArtifactOutcome.FAIL:
            return
        self.tests[name] = outcome
        if outcome is ArtifactOutcome.FAIL:
            self.failures.append(name)

    def outcome(self, name: str) -> ArtifactOutcome:
        """The named test's result; without it, its subtests': any fail, all skip, or pass."""
        if name in self.tests:
            return self.tests[name]
        subtests = [o for n, o in self.tests.items() if n.startswith(name + "/")]
        if not subtests:
            return ArtifactOutcome.MISSING
        if ArtifactOutcome.FAIL in subtests:
            return ArtifactOutcome.FAIL
        if all(o is ArtifactOutcome.SKIP for o in subtests):
            return ArtifactOutcome.SKIP
        return ArtifactOutcome.PASS


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_junit(data: bytes) -> ArtifactResults:
    """gotestsum / go-junit-report XML: `<testsuites>` or `<testsuite>` root, nested suites."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ArtifactError(f"not valid XML ({exc})") from None
    results = ArtifactResults()

    def walk(node: ET.Element) -> None:
        for child in node:
            if _local(child.tag) != "testcase":
                continue
            marks = {_local(c.tag) for c in child}
            if marks & {"failure", "error"}:
                outcome = ArtifactOutcome.FAIL
            elif "skipped" in marks:
                outcome = ArtifactOutcome.SKIP
            else:
                outcome = ArtifactOutcome.PASS
            results.record(child.get("name", ""), outcome)
        for child in node:
            if _local(child.tag) == "testsuite":
                walk(child)

    walk(root)
    if not results.tests:
        raise ArtifactError("no <testcase> elements in it")
    return results


_GO_ACTIONS = {"pass": ArtifactOutcome.PASS, "fail": ArtifactOutcome.FAIL,
               "skip": ArtifactOutcome.SKIP}


def _go_field(event: dict[str, Any], name: str, line: int) -> str:
    """A field as Go's JSON decoder finds it: exact key first, else any case."""
    value = event.get(name)
    if name not in event:
        value = next((v for k, v in event.items() if k.lower() == name.lower()), None)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ArtifactError(f"line {line}: {name} is not a string")
    return value


def parse_go_test_json(text: str) -> ArtifactResults:
    """`go test -json` events, one object per line; a package failure alone still counts."""
    results = ArtifactResults()
    package_failures: list[str] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise ArtifactError(f"line {number} is not JSON ({exc})") from None
        if event is None:
            continue
        if not isinstance(event, dict):
            raise ArtifactError(f"line {number} is not a JSON object")
        outcome = _GO_ACTIONS.get(_go_field(event, "Action", number))
        package = _go_field(event, "Package", number)
        test = _go_field(event, "Test", number)
        if outcome is None:
            continue
        if not test:
            if outcome is ArtifactOutcome.FAIL:
                package_failures.append(package)
            continue
        results.record(test, outcome)
    if not results.failures:
        # A package that failed without a failing test did not build or panicked.
        results.failures = [f"package {p}" for p in package_failures]
    if not results.tests and not results.failures:
        raise ArtifactError("no test results in it (no pass, fail or skip events)")
    return results


_E2E_RESULT = re.compile(r"^[\t\n\f\r ]*--- (PASS|FAIL|SKIP): ([^\t\n\f\r ]+)")


def parse_e2e_log(text: str) -> ArtifactResults:
    """`go test -v` output: `--- PASS|FAIL|SKIP: Name` lines, indented for subtests."""
    results = ArtifactResults()
    for line in text.split("\n"):
        match = _E2E_RESULT.match(line)
        if match:
            results.record(match.group(2), ArtifactOutcome[match.group(1)])
    if not results.tests:
        raise ArtifactError("no '--- PASS/FAIL/SKIP: Name' result lines in it")
    return results


ARTIFACT_KINDS = {"junit.xml": "JUnit XML", "results.json": "go test -json",
                  "e2e.log": "go test -v log"}


def parse_artifact(path: Path) -> ArtifactResults:
    """Parse a file named junit.xml, results.json or e2e.log (any case) as that kind."""
    kind = path.name.lower()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read it ({exc.strerror or exc})") from None
    if kind == "junit.xml":
        return parse_junit(data)
    text = data.decode("utf-8", errors="replace")
    if kind == "results.json":
        return parse_go_test_json(text)
    return parse_e2e_log(text)
