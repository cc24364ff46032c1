"""The Go-shaped artifacts (junit.xml, results.json, e2e.log), read back the way CNCF's
validator reads them: by file format only, any failing test is an error, and a test's
subtests (`Name/...`) aggregate into its result (a failure fails it, only skips skip it,
otherwise it passes)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pytest_aiconformance.reports.go_artifacts import (
    PACKAGE,
    render_e2e_log,
    render_go_json,
    render_junit_xml,
)
from pytest_aiconformance.verdicts.catalog import load_catalog
from pytest_aiconformance.verdicts.model import CheckResult, Role
from pytest_aiconformance.verdicts.outcomes import Outcome

ROOT = Path(__file__).parents[2]
START = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
NASTY = 'pods <kueue-0> & "kueue-1" not bound'


def check(name: str, outcome: Outcome, reason: str = "", duration: float = 0.25) -> CheckResult:
    req = re.sub(r"(?<!^)([A-Z])", r"_\1", name.split("/")[0].removeprefix("Test")).lower()
    return CheckResult(nodeid=f"pytest_aiconformance/checks/test_{req}.py::test_{name}",
                       requirement=req,
                       role=Role.ESSENTIAL, outcome=outcome, reason=reason, junit_name=name,
                       title=name, duration=duration)


CHECKS = [
    check("TestGangScheduling/GangBoundTogether/volcano", Outcome.PASSED, duration=2.5),
    check("TestGangScheduling/GangBoundTogether/kueue", Outcome.FAILED, NASTY, duration=1.25),
    check("TestClusterAutoscaling/ScaleUp", Outcome.NOT_APPLICABLE, "no autoscaler detected"),
    check("TestClusterAutoscaling/ScaleDown", Outcome.NOT_OBSERVABLE, "simulated nodes"),
    check("TestSecureAcceleratorAccess/PositiveAccessTest", Outcome.PASSED, duration=3.0),
    check("TestSecureAcceleratorAccess/NegativeIsolationTest", Outcome.NOT_OBSERVABLE,
          "simulated nodes run no containers"),
    check("TestDraSupport/AllocatesDevice", Outcome.ERROR, "fixture 'kube' failed"),
    check("TestPodAutoscaling/ScalesOnCustomMetric", Outcome.SKIPPED, "no custom metrics"),
    check("TestPodAutoscaling/ScalesOnAcceleratorMetric", Outcome.UNKNOWN_HARDWARE, "tpu-v9"),
]

# What the validator must read from every format, in report order (parents first).
EXPECTED = {
    "TestClusterAutoscaling": "skip",
    "TestClusterAutoscaling/ScaleDown": "skip",
    "TestClusterAutoscaling/ScaleUp": "skip",
    "TestDraSupport": "fail",
    "TestDraSupport/AllocatesDevice": "fail",
    "TestGangScheduling": "fail",
    "TestGangScheduling/GangBoundTogether": "fail",
    "TestGangScheduling/GangBoundTogether/kueue": "fail",
    "TestGangScheduling/GangBoundTogether/volcano": "pass",
    "TestPodAutoscaling": "skip",
    "TestPodAutoscaling/ScalesOnAcceleratorMetric": "skip",
    "TestPodAutoscaling/ScalesOnCustomMetric": "skip",
    "TestSecureAcceleratorAccess": "pass",
    "TestSecureAcceleratorAccess/NegativeIsolationTest": "skip",
    "TestSecureAcceleratorAccess/PositiveAccessTest": "pass",
}

KUEUE = CHECKS[1]
EVIDENCE = {
    KUEUE.nodeid: ('$ kubectl get pods -l gang=<g1> -o wide\nNAME  STATUS  NOTE\n'
                   'kueue-0  Pending  a & b "quoted" ]]>\n'
                   '--- FAIL: TestFromAPodLog (1.00s)\n\x1b[31mred\x1b[0m\n'),
    CHECKS[4].nodeid: "$ kubectl exec probe -- nvidia-smi -L\nGPU 0: H100\n",
}
EVIDENCE_LINES = ["$ kubectl get pods -l gang=<g1> -o wide", "NAME  STATUS  NOTE",
                  'kueue-0  Pending  a & b "quoted" ]]>']


# --- the validator's reading of each format --------------------------------------------------


@dataclass
class Read:
    """One test as a parser of the artifact sees it."""

    result: str  # pass | fail | skip
    message: str = ""
    output: list[str] = field(default_factory=list)


def read_junit(text: str) -> dict[str, Read]:
    """JUnit: a <testsuites> or <testsuite> root; <failure> and <error> fail, <skipped> skips."""
    root = ET.fromstring(text)
    assert root.tag in ("testsuites", "testsuite")
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests: dict[str, Read] = {}
    for suite in suites:
        for case in suite.findall("testcase"):
            bad = case.find("failure")
            if bad is None:
                bad = case.find("error")
            skipped = case.find("skipped")
            out = case.findtext("system-out") or ""
            name = case.get("name", "")
            assert name not in tests, f"duplicate testcase {name}"
            if bad is not None:
                tests[name] = Read("fail", bad.get("message", ""), out.splitlines())
            elif skipped is not None:
                tests[name] = Read("skip", skipped.get("message", ""), out.splitlines())
            else:
                tests[name] = Read("pass", "", out.splitlines())
    return tests


def read_go_json(text: str) -> dict[str, Read]:
    """go test -json: one event a line; a test's result is its pass|fail|skip Action.

    Tests are returned in the order they started (`run`), as the other formats list them.
    """
    tests: dict[str, Read] = {}
    outputs: dict[str, list[str]] = {}
    started: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        assert {"Action", "Package"} <= set(event), event
        name = event.get("Test", "")
        if not name:
            continue
        if event["Action"] == "run":
            started.append(name)
        elif event["Action"] == "output":
            outputs.setdefault(name, []).append(event["Output"].rstrip("\n"))
        elif event["Action"] in ("pass", "fail", "skip"):
            assert name not in tests, f"two results for {name}"
            tests[name] = Read(event["Action"])
    assert sorted(started) == sorted(tests), "every test that ran has one result"
    for name, read in tests.items():
        read.output = outputs.get(name, [])
    return {name: tests[name] for name in started}


E2E_RESULT = re.compile(
    r"^(?P<indent>\s*)--- (?P<result>PASS|FAIL|SKIP): (?P<name>\S+) \((?P<secs>\d+\.\d+)s\)$")
E2E_RESULT_ANYWHERE = re.compile(r"---\s*(PASS|FAIL|SKIP):\s*(\S+)")


def read_e2e_log(text: str) -> dict[str, Read]:
    """go test -v: `--- PASS|FAIL|SKIP: Name (1.23s)` lines, indented for subtests."""
    tests: dict[str, Read] = {}
    for line in text.splitlines():
        match = E2E_RESULT.match(line)
        if match:
            name = match["name"]
            assert name not in tests, f"two results for {name}"
            assert match["indent"] == "    " * name.count("/"), line
            tests[name] = Read(match["result"].lower())
    return tests


def aggregate(tests: Mapping[str, Read], name: str) -> str | None:
    """The validator's result for `name`: itself and its subtests; None when absent."""
    results = [r.result for n, r in tests.items() if n == name or n.startswith(name + "/")]
    if not results:
        return None
    if "fail" in results:
        return "fail"
    return "skip" if all(r == "skip" for r in results) else "pass"


def render_all(checks: list[CheckResult], evidence: Mapping[str, str] = EVIDENCE
               ) -> dict[str, str]:
    return {
        "junit": render_junit_xml(checks, evidence),
        "go_json": render_go_json(checks, evidence, START),
        "e2e": render_e2e_log(checks, evidence),
    }


READERS: dict[str, Callable[[str], dict[str, Read]]] = {
    "junit": read_junit, "go_json": read_go_json, "e2e": read_e2e_log}
RENDERED = render_all(CHECKS)


# --- every format ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(READERS))
def test_every_test_and_parent_with_gos_result_in_order(fmt):
    tests = READERS[fmt](RENDERED[fmt])
    assert {n: r.result for n, r in tests.items()} == EXPECTED
    assert list(tests) == list(EXPECTED)
    failing = sorted(n for n, r in tests.items() if r.result == "fail")
    assert failing == ["TestDraSupport", "TestDraSupport/AllocatesDevice", "TestGangScheduling",
                       "TestGangScheduling/GangBoundTogether",
                       "TestGangScheduling/GangBoundTogether/kueue"]


@pytest.mark.parametrize("fmt", list(READERS))
def test_each_parent_is_what_its_subtests_aggregate_to(fmt):
    """Present or looked up by prefix, a parent reads the same: the validator can do either."""
    tests = READERS[fmt](RENDERED[fmt])
    parents = {n.rsplit("/", 1)[0] for n in tests if "/" in n}
    assert parents == {n for n in EXPECTED if not any(c.junit_name == n for c in CHECKS)}
    for parent in parents:
        subtests = {n: r for n, r in tests.items() if n.startswith(parent + "/")}
        assert aggregate(subtests, parent) == tests[parent].result == aggregate(tests, parent)


@pytest.mark.parametrize(("outcomes", "parent"), [
    ([Outcome.PASSED, Outcome.FAILED, Outcome.NOT_APPLICABLE], "fail"),
    ([Outcome.PASSED, Outcome.ERROR], "fail"),
    ([Outcome.NOT_APPLICABLE, Outcome.NOT_OBSERVABLE, Outcome.UNKNOWN_HARDWARE,
      Outcome.SKIPPED], "skip"),
    ([Outcome.PASSED, Outcome.NOT_OBSERVABLE], "pass"),
    ([Outcome.PASSED], "pass"),
])
@pytest.mark.parametrize("fmt", list(READERS))
def test_parent_aggregation(fmt, outcomes, parent):
    checks = [check(f"TestGpuSharing/Case{i}", o, "why") for i, o in enumerate(outcomes)]
    tests = READERS[fmt](render_all(checks)[fmt])
    assert tests["TestGpuSharing"].result == parent
    assert [tests[c.junit_name].result for c in checks] == [
        {"passed": "pass", "failed": "fail", "error": "fail"}.get(o.value, "skip")
        for o in outcomes]


@pytest.mark.parametrize("fmt", list(READERS))
def test_same_inputs_same_bytes(fmt):
    shuffled = list(CHECKS)
    random.Random(7).shuffle(shuffled)
    again = render_all(shuffled, dict(reversed(list(EVIDENCE.items()))))
    assert again[fmt] == RENDERED[fmt]
    assert again[fmt].encode() == RENDERED[fmt].encode()


@pytest.mark.parametrize("fmt", list(READERS))
def test_no_checks_is_an_empty_passing_package(fmt):
    assert READERS[fmt](render_all([])[fmt]) == {}


@pytest.mark.parametrize("fmt", list(READERS))
def test_same_name_twice_gets_gos_suffix(fmt):
    one = check("TestDraSupport/Allocates", Outcome.PASSED)
    two = CheckResult(**{**one.__dict__, "nodeid": one.nodeid + "[b]",
                         "outcome": Outcome.FAILED})
    tests = READERS[fmt](render_all([two, one], {})[fmt])
    assert {n: r.result for n, r in tests.items()} == {
        "TestDraSupport": "fail", "TestDraSupport/Allocates": "pass",
        "TestDraSupport/Allocates#01": "fail"}


@pytest.mark.parametrize("fmt", list(READERS))
def test_whitespace_in_a_name_becomes_underscore(fmt):
    tests = READERS[fmt](render_all([check("TestDraSupport/two words", Outcome.PASSED)])[fmt])
    assert list(tests) == ["TestDraSupport", "TestDraSupport/two_words"]


# --- junit.xml -------------------------------------------------------------------------------


def test_junit_shape_is_gotestsums():
    root = ET.fromstring(RENDERED["junit"])
    assert RENDERED["junit"].startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')
    assert root.tag == "testsuites"
    assert root.attrib == {"tests": "15", "failures": "5", "errors": "0", "time": "8.250"}
    (suite,) = root
    assert suite.tag == "testsuite"
    assert suite.attrib == {"name": PACKAGE, "tests": "15", "failures": "5", "errors": "0",
                            "skipped": "7", "time": "8.250"}
    cases = suite.findall("testcase")
    assert {c.get("classname") for c in cases} == {PACKAGE}
    times = {c.get("name"): c.get("time") for c in cases}
    assert times["TestGangScheduling"] == "3.750"
    assert times["TestGangScheduling/GangBoundTogether/kueue"] == "1.250"
    assert root.find(".//error") is None  # an ERROR is a <failure>, as in Go


def test_junit_failures_and_skips_carry_their_reasons():
    tests = read_junit(RENDERED["junit"])
    assert tests["TestGangScheduling/GangBoundTogether/kueue"].message == NASTY
    assert tests["TestDraSupport/AllocatesDevice"].message == (
        "error in set-up or teardown, the check did not run to a verdict: "
        "fixture 'kube' failed")
    assert tests["TestClusterAutoscaling/ScaleUp"].message == (
        "not applicable: no autoscaler detected")
    assert tests["TestClusterAutoscaling/ScaleDown"].message == (
        "not observable here: simulated nodes")
    assert tests["TestPodAutoscaling/ScalesOnAcceleratorMetric"].message == (
        "unknown hardware: tpu-v9")
    assert tests["TestPodAutoscaling/ScalesOnCustomMetric"].message == (
        "skipped: no custom metrics")
    assert tests["TestGangScheduling"].message == (
        "failed subtests: TestGangScheduling/GangBoundTogether/kueue")
    assert tests["TestClusterAutoscaling"].message == "every subtest was skipped"
    root = ET.fromstring(RENDERED["junit"])
    failure = root.find(".//testcase[@name='TestDraSupport/AllocatesDevice']/failure")
    assert failure is not None
    assert failure.get("type") == "error"
    assert failure.text == failure.get("message")


def test_junit_evidence_is_system_out_and_escaped():
    tests = read_junit(RENDERED["junit"])
    out = tests["TestGangScheduling/GangBoundTogether/kueue"].output
    assert out[:3] == EVIDENCE_LINES
    assert out[3] == "--- FAIL: TestFromAPodLog (1.00s)"  # kept as it was: XML, not a log
    assert out[4] == "\\x1b[31mred\\x1b[0m"  # not a character XML 1.0 can carry
    assert tests["TestSecureAcceleratorAccess/PositiveAccessTest"].output == [
        "$ kubectl exec probe -- nvidia-smi -L", "GPU 0: H100"]
    assert tests["TestGangScheduling"].output == []
    raw = RENDERED["junit"]
    assert 'message="pods &lt;kueue-0&gt; &amp; &quot;kueue-1&quot; not bound"' in raw
    assert "a &amp; b \"quoted\" ]]&gt;" in raw
    assert "<kueue-0>" not in raw
    assert "\x1b" not in raw


def test_junit_multiline_reason_survives_in_the_attribute():
    reason = 'line <1> & "one"\nline 2'
    tests = read_junit(render_junit_xml([check("TestDraSupport/X", Outcome.FAILED, reason)], {}))
    assert tests["TestDraSupport/X"].message == reason


def test_junit_timestamp_when_given():
    text = render_junit_xml(CHECKS, EVIDENCE, timestamp=START)
    assert ET.fromstring(text)[0].get("timestamp") == "2026-03-01T10:00:00Z"
    assert ET.fromstring(RENDERED["junit"])[0].get("timestamp") is None


# --- results.json (go test -json) --------------------------------------------------------------


def events(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_go_json_events_per_test():
    evs = events(RENDERED["go_json"])
    assert evs[0] == {"Time": "2026-03-01T10:00:00Z", "Action": "start", "Package": PACKAGE}
    assert all(e["Package"] == PACKAGE for e in evs)
    name = "TestGangScheduling/GangBoundTogether/kueue"
    mine = [e for e in evs if e.get("Test") == name]
    assert [e["Action"] for e in mine] == ["run", "output"] + ["output"] * 6 + ["output", "fail"]
    assert mine[1]["Output"] == f"=== RUN   {name}\n"
    assert [e["Output"] for e in mine[2:5]] == [f"    | {line}\n" for line in EVIDENCE_LINES]
    assert mine[5]["Output"] == "    | --- FAIL : TestFromAPodLog (1.00s)\n"
    assert mine[6]["Output"] == "    | \\x1b[31mred\\x1b[0m\n"
    assert mine[7]["Output"] == f"    {NASTY}\n"
    assert mine[8]["Output"] == f"        --- FAIL: {name} (1.25s)\n"
    assert mine[9]["Elapsed"] == 1.25
    tops = [e for e in evs if e.get("Test") == "TestSecureAcceleratorAccess"]
    assert tops[-2]["Output"] == "--- PASS: TestSecureAcceleratorAccess (3.25s)\n"
    assert tops[-1] == {"Time": tops[-1]["Time"], "Action": "pass", "Package": PACKAGE,
                        "Test": "TestSecureAcceleratorAccess", "Elapsed": 3.25}


def test_go_json_every_result_has_elapsed_and_reasons_are_output():
    tests = read_go_json(RENDERED["go_json"])
    finals = [e for e in events(RENDERED["go_json"]) if e["Action"] in ("pass", "fail", "skip")]
    assert all("Elapsed" in e for e in finals)
    assert "    not applicable: no autoscaler detected" in (
        tests["TestClusterAutoscaling/ScaleUp"].output)
    assert ("    error in set-up or teardown, the check did not run to a verdict: "
            "fixture 'kube' failed") in tests["TestDraSupport/AllocatesDevice"].output


def test_go_json_package_result_and_times():
    evs = events(RENDERED["go_json"])
    assert [e.get("Output") for e in evs[-3:-1]] == ["FAIL\n", f"FAIL\t{PACKAGE}\t8.250s\n"]
    assert evs[-1] == {"Time": "2026-03-01T10:00:08.25Z", "Action": "fail", "Package": PACKAGE,
                       "Elapsed": 8.25}
    times = [datetime.fromisoformat(str(e["Time"])) for e in evs]
    assert times == sorted(times)
    assert times[0] == START
    assert times[-1] == START + timedelta(seconds=8.25)
    passing = events(render_go_json(CHECKS[4:5], {}, START))
    assert [e.get("Output") for e in passing[-3:-1]] == ["PASS\n", f"ok  \t{PACKAGE}\t3.000s\n"]
    assert passing[-1]["Action"] == "pass"


def test_go_json_time_keeps_the_start_offset_and_defaults_to_epoch():
    local = datetime(2026, 3, 1, 11, 0, 0, 120000, tzinfo=UTC).astimezone(
        timezone(timedelta(hours=1)))
    evs = events(render_go_json(CHECKS[:1], {}, local))
    assert evs[0]["Time"] == "2026-03-01T12:00:00.12+01:00"
    assert events(render_go_json(CHECKS[:1], {}, None))[0]["Time"] == "1970-01-01T00:00:00Z"


def test_go_json_escapes_round_trip():
    tests = read_go_json(RENDERED["go_json"])
    kueue = tests["TestGangScheduling/GangBoundTogether/kueue"]
    assert f"    | {EVIDENCE_LINES[2]}" in kueue.output
    assert '"Output":"    | kueue-0  Pending  a & b \\"quoted\\" ]]>\\n"' in RENDERED["go_json"]


# --- e2e.log (go test -v) ----------------------------------------------------------------------


def test_e2e_log_layout_is_go_test_vs():
    lines = RENDERED["e2e"].splitlines()
    start = lines.index("=== RUN   TestGangScheduling")
    end = lines.index("        --- PASS: TestGangScheduling/GangBoundTogether/volcano (2.50s)")
    assert lines[start:end + 1] == [
        "=== RUN   TestGangScheduling",
        "=== RUN   TestGangScheduling/GangBoundTogether",
        "=== RUN   TestGangScheduling/GangBoundTogether/kueue",
        *[f"    | {line}" for line in EVIDENCE_LINES],
        "    | --- FAIL : TestFromAPodLog (1.00s)",
        "    | \\x1b[31mred\\x1b[0m",
        "=== RUN   TestGangScheduling/GangBoundTogether/volcano",
        "--- FAIL: TestGangScheduling (3.75s)",
        "    --- FAIL: TestGangScheduling/GangBoundTogether (3.75s)",
        "        --- FAIL: TestGangScheduling/GangBoundTogether/kueue (1.25s)",
        f"            {NASTY}",
        "        --- PASS: TestGangScheduling/GangBoundTogether/volcano (2.50s)",
    ]
    assert lines[-2:] == ["FAIL", f"FAIL\t{PACKAGE}\t8.250s"]


def test_e2e_log_reasons_follow_their_result_line():
    lines = RENDERED["e2e"].splitlines()

    def after(result_line: str) -> str:
        return lines[lines.index(result_line) + 1]

    assert after("    --- SKIP: TestClusterAutoscaling/ScaleUp (0.25s)") == (
        "        not applicable: no autoscaler detected")
    assert after("    --- SKIP: TestSecureAcceleratorAccess/NegativeIsolationTest (0.25s)") == (
        "        not observable here: simulated nodes run no containers")
    assert after("    --- FAIL: TestDraSupport/AllocatesDevice (0.25s)") == (
        "        error in set-up or teardown, the check did not run to a verdict: "
        "fixture 'kube' failed")
    assert after("    --- SKIP: TestPodAutoscaling/ScalesOnCustomMetric (0.25s)") == (
        "        skipped: no custom metrics")


def test_e2e_log_passing_run_ends_ok():
    text = render_e2e_log(CHECKS[4:6], {})
    assert text.splitlines()[-2:] == ["PASS", f"ok  \t{PACKAGE}\t3.250s"]


@pytest.mark.parametrize("fmt", ["e2e", "go_json"])
def test_evidence_cannot_pass_for_a_result(fmt):
    """Even an unanchored `--- FAIL: X` search finds only the real tests."""
    text = RENDERED[fmt]
    if fmt == "go_json":
        text = "".join(str(e.get("Output", "")) for e in events(text))
    names = {m.group(2) for m in E2E_RESULT_ANYWHERE.finditer(text)}
    assert names == set(EXPECTED)
    assert not any(line.strip() in ("PASS", "FAIL") or line.startswith("ok ")
                   for line in text.splitlines()[:-2])


# --- the real suite's names --------------------------------------------------------------------

PROBE = '''
import os
import pytest
from pytest_aiconformance.run.check_records import check_spec


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    with open(os.environ["AIC_JUNIT_NAMES"], "w") as out:
        for item in items:
            spec = check_spec(item)
            out.write(f"{item.nodeid}\\t{spec.requirement if spec else ''}\\t"
                      f"{spec.junit_name if spec else ''}\\n")
'''


def test_real_suite_checks_have_distinct_junit_names(tmp_path):
    """Two checks sharing a name would merge into one Go test (or get a `#01` suffix)."""
    (tmp_path / "aic_junit_names_probe.py").write_text(PROBE)
    listing = tmp_path / "names.tsv"
    env = {**os.environ, "AIC_JUNIT_NAMES": str(listing),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "aic_junit_names_probe", "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
         str(ROOT / "pytest_aiconformance" / "checks")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    collected = re.search(r"(\d+) tests? collected", proc.stdout)
    assert collected, proc.stdout[-2000:]
    rows = [line.split("\t") for line in listing.read_text().splitlines()]
    assert len(rows) == int(collected.group(1)) >= 44
    names = [name for _nodeid, _req, name in rows]
    assert all(names), [r for r in rows if not r[2]]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    catalog = load_catalog()
    for nodeid, requirement, name in rows:
        assert name.startswith(catalog.junit_group(requirement) + "/"), (nodeid, name)
        assert not re.search(r"\s", name), name


@pytest.mark.parametrize("kind", ["junit.xml", "results.json", "e2e.log"])
def test_the_suites_own_validator_reads_what_we_write(kind: str) -> None:
    """Round trip through the production parsers that `aiconformance validate` uses."""
    from pytest_aiconformance.parsers.test_artifacts import (
        parse_e2e_log,
        parse_go_test_json,
        parse_junit,
    )

    if kind == "junit.xml":
        read = parse_junit(render_junit_xml(CHECKS, EVIDENCE).encode())
    elif kind == "results.json":
        read = parse_go_test_json(render_go_json(CHECKS, EVIDENCE, START))
    else:
        read = parse_e2e_log(render_e2e_log(CHECKS, EVIDENCE))
    words = {"passed": "pass", "failed": "fail", "skipped": "skip"}
    assert {name: words[o.value] for name, o in read.tests.items()} == EXPECTED
    assert sorted(read.failures) == sorted(n for n, o in EXPECTED.items() if o == "fail")
