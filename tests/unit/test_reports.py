"""Reports: verdicts.json, PRODUCT.yaml per checklist version, evidence.md, terminal, JUnit,
and the Go-shaped e2e.log / results.json write_reports adds (their formats: test_go_artifacts)."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from pytest_aiconformance.cluster.discovery import (
    SIMULATED_ACCELERATORS_LABEL,
    ClusterInfo,
    describe_simulation,
)
from pytest_aiconformance.reports import (
    PlatformMeta,
    RunMeta,
    cncf_evidence_prefix,
    format_verdict_table,
    load_platform_meta,
    rename_testcases,
    write_reports,
)
from pytest_aiconformance.reports.evidence_md import render_evidence_md, render_requirement_page
from pytest_aiconformance.reports.go_artifacts import PACKAGE
from pytest_aiconformance.reports.junit import rename_testcases_in_text
from pytest_aiconformance.reports.product_yaml import (
    ALLOWED_STATUSES,
    FILL_IN_NOTE,
    load_template_descriptions,
    render_product_yaml,
)
from pytest_aiconformance.reports.verdicts_json import verdicts_document
from pytest_aiconformance.verdicts.catalog import load_catalog
from pytest_aiconformance.verdicts.evidence import EvidenceRecorder
from pytest_aiconformance.verdicts.model import CheckResult, RequirementVerdict, Role, Status
from pytest_aiconformance.verdicts.outcomes import Outcome
from pytest_aiconformance.verdicts.rules import aggregate

pytest_plugins = ["pytester"]

REFERENCE = Path(__file__).parents[2] / ".." / "shared" / "reference" / "conformance-versions"
VERSIONS = ["1.33", "1.34", "1.35", "1.36", "1.37"]
START = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
END = datetime(2026, 3, 1, 10, 12, 30, tzinfo=UTC)


def official(version: str) -> Path:
    path = REFERENCE / f"KubernetesAIConformance-{version}.yaml"
    if not path.is_file():
        pytest.skip(f"reference checklists not present: {REFERENCE}")
    return path


def result(req: str, name: str, outcome: Outcome, reason: str = "", role: Role = Role.ESSENTIAL,
           evidence_file: str = "", duration: float = 0.0) -> CheckResult:
    return CheckResult(nodeid=f"pytest_aiconformance/checks/test_{req}.py::test_{name}",
                       requirement=req, role=role, outcome=outcome, reason=reason,
                       junit_name=f"Test{req.title().replace('_', '')}/{name}",
                       title=f"{req} {name}", evidence_file=evidence_file, duration=duration)


def sample_results(version: str) -> list[CheckResult]:
    """A passing, a failing, an N/A and an unobservable requirement where the version has them."""
    return [
        result("ai_inference", "Routing", Outcome.PASSED, duration=3.21),
        result("gang_scheduling", "Negative", Outcome.FAILED, "3 of 12 pods were bound"),
        result("cluster_autoscaling", "ScaleUp", Outcome.NOT_APPLICABLE, "no autoscaler detected"),
        result("secure_accelerator_access", "NegativeIsolationTest", Outcome.NOT_OBSERVABLE,
               "simulated nodes run no containers"),
    ]


def run_meta(version: str = "1.35") -> RunMeta:
    return RunMeta(checklist_version=version, server_version="v1.35.3", run_id="r0a1b2",
                   started=START, finished=END, kube_context="kind-aic-lab",
                   operators=("Volcano v1.14.1 (volcano-system)", "Envoy Gateway v1.7.1"))


# ---------------------------------------------------------------- PRODUCT.yaml

@pytest.mark.parametrize("version", VERSIONS)
def test_product_yaml_matches_official_checklist(version):
    ref = yaml.safe_load(official(version).read_text())
    reqs = load_catalog().requirements(version)
    verdicts = aggregate(reqs, sample_results(version))
    text = render_product_yaml(verdicts, version, PlatformMeta(platformName="Lab"),
                               descriptions=load_template_descriptions(official(version)))
    doc = yaml.safe_load(text)
    assert doc["metadata"]["kubernetesVersion"] == f"v{version}"
    ours = {cat: [(i["id"], i["level"]) for i in items] for cat, items in doc["spec"].items()}
    theirs = {cat: [(i["id"], i["level"]) for i in items] for cat, items in ref["spec"].items()}
    assert ours == theirs
    assert list(doc["spec"]) == list(ref["spec"])
    ref_desc = {i["id"]: i["description"] for items in ref["spec"].values() for i in items}
    for items in doc["spec"].values():
        for item in items:
            assert list(item) == ["id", "description", "level", "status", "evidence", "notes"]
            assert item["description"] == ref_desc[item["id"]]
            assert item["status"] in ALLOWED_STATUSES
            assert item["notes"]


@pytest.mark.parametrize("version", VERSIONS)
def test_product_yaml_without_template_uses_summaries_and_every_id(version):
    reqs = load_catalog().requirements(version)
    text = render_product_yaml(aggregate(reqs, []), version, PlatformMeta())
    doc = yaml.safe_load(text)
    items = [i for cat in doc["spec"].values() for i in cat]
    assert [i["id"] for i in items] == [r.id for r in reqs]
    assert [i["description"] for i in items] == [r.summary for r in reqs]
    assert {i["status"] for i in items} == {""}
    assert all(i["notes"].startswith(FILL_IN_NOTE) for i in items)
    assert all(i["evidence"] == [] for i in items)


def test_product_yaml_statuses_evidence_and_notes():
    reqs = load_catalog().requirements("1.35")
    verdicts = aggregate(reqs, sample_results("1.35"))
    text = render_product_yaml(verdicts, "1.35", PlatformMeta(),
                               evidence_prefix=cncf_evidence_prefix("1.35", "My Product"))
    items = {i["id"]: i for cat in yaml.safe_load(text)["spec"].values() for i in cat}
    assert items["ai_inference"]["status"] == "Implemented"
    assert items["ai_inference"]["evidence"] == [
        "file://v1.35/my-product/junit.xml#TestAiInference/Routing"]
    assert items["gang_scheduling"]["status"] == "Not Implemented"
    assert items["gang_scheduling"]["notes"] == (
        "'gang_scheduling Negative' failed: 3 of 12 pods were bound.")
    assert items["cluster_autoscaling"]["status"] == "N/A"
    assert items["cluster_autoscaling"]["notes"] == (
        "Not applicable: no autoscaler detected. "
        "'cluster_autoscaling ScaleUp' is not applicable: no autoscaler detected.")
    sec = items["secure_accelerator_access"]
    assert sec["status"] == ""
    assert sec["notes"] == (
        f"{FILL_IN_NOTE} 'secure_accelerator_access NegativeIsolationTest' could not be observed "
        "here: simulated nodes run no containers.")
    assert sec["evidence"] == [
        "file://v1.35/my-product/junit.xml#TestSecureAcceleratorAccess/NegativeIsolationTest"]
    # Block style like the template: one requirement per block, statuses unquoted.
    assert "    - id: ai_inference\n" in text
    assert "      status: Implemented\n" in text
    assert "      status: N/A\n" in text
    assert '      status: ""\n' in text
    assert "        - file://v1.35/my-product/junit.xml#TestAiInference/Routing\n" in text


def test_product_yaml_fills_ids_missing_from_verdicts_and_metadata():
    meta = PlatformMeta(platformName="k0rdent", platformVersion="v1.9.0",
                        description='Quotes " and: colons #1')
    text = render_product_yaml([], "1.36", meta)
    doc = yaml.safe_load(text)
    assert doc["metadata"] == {
        "kubernetesVersion": "v1.36",
        "platformName": "k0rdent",
        "platformVersion": "v1.9.0",
        "vendorName": "[Vendor Name]",
        "websiteUrl": "[Website URL]",
        "repoUrl": "",
        "documentationUrl": "[Documentation URL]",
        "productLogoUrl": "[Product Logo URL]",
        "description": 'Quotes " and: colons #1',
        "contactEmailAddress": "[Contact Email Address]",
        "k8sConformanceUrl": "[URL to k8s-conformance submission, e.g., "
                             "https://github.com/cncf/k8s-conformance/tree/master/v1.36/product-name]",
    }
    ids = [i["id"] for cat in doc["spec"].values() for i in cat]
    assert ids == [r.id for r in load_catalog().requirements("1.36")]


def test_template_lacking_an_id_falls_back_to_summary(tmp_path):
    template = tmp_path / "t.yaml"
    template.write_text("spec:\n  networking:\n    - id: ai_inference\n"
                        "      description: Official words.\n")
    text = render_product_yaml([], "1.36", PlatformMeta(),
                               descriptions=load_template_descriptions(template))
    items = {i["id"]: i for cat in yaml.safe_load(text)["spec"].values() for i in cat}
    assert items["ai_inference"]["description"] == "Official words."
    assert items["gang_scheduling"]["description"] == load_catalog().get(
        "1.36", "gang_scheduling").summary
    with pytest.raises(ValueError, match=r"^template file not found: "):
        load_template_descriptions(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- platform metadata

def test_load_platform_meta(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text("platformName: k0rdent\nplatformVersion: v1.9.0\nkubernetesVersion: v1.35\n"
                    "websiteUrl: https://k0rdent.io\n")
    meta = load_platform_meta(path)
    assert meta == PlatformMeta(platformName="k0rdent", platformVersion="v1.9.0",
                                websiteUrl="https://k0rdent.io")
    assert meta.with_overrides(platformName="Other", vendorName=None) == PlatformMeta(
        platformName="Other", platformVersion="v1.9.0", websiteUrl="https://k0rdent.io")
    wrapped = tmp_path / "product.yaml"
    wrapped.write_text("metadata:\n  vendorName: ACME\nspec: {}\n")
    assert load_platform_meta(wrapped) == PlatformMeta(vendorName="ACME")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("platformName: x\nvendor: y\n", r"unknown key\(s\) vendor; allowed: kubernetesVersion, "),
        ("- a\n", r"must hold a mapping of metadata keys$"),
        ("platformName: [1, 2]\n", r"platformName must be text$"),
        ("platformName: 'x\n", r"is not valid YAML \(line \d+\)$"),
        ("metadata: {}\nextra: 1\n", r"unknown key\(s\) extra$"),
    ],
)
def test_load_platform_meta_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "platform.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        load_platform_meta(path)
    assert "\n" not in str(info.value)


def test_load_platform_meta_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"^platform metadata file not found: .*nope\.yaml$"):
        load_platform_meta(tmp_path / "nope.yaml")


# ---------------------------------------------------------------- verdicts.json

def test_verdicts_json_structure_and_exit():
    reqs = load_catalog().requirements("1.35")
    verdicts = aggregate(reqs, sample_results("1.35"))
    doc = verdicts_document(verdicts, run_meta(), PlatformMeta(platformName="Lab"), ["2 nodes"])
    assert list(doc) == ["schema", "run", "platform", "environment", "summary", "exit",
                         "requirements"]
    assert doc["run"] == {
        "checklist_version": "1.35", "server_version": "v1.35.3", "run_id": "r0a1b2",
        "started": "2026-03-01T10:00:00+00:00", "finished": "2026-03-01T10:12:30+00:00",
        "suite_version": "0.1.0", "kube_context": "kind-aic-lab",
        "operators": ["Volcano v1.14.1 (volcano-system)", "Envoy Gateway v1.7.1"],
        "accelerator": "", "allocation_mode": "",
    }
    assert doc["platform"]["platformName"] == "Lab"
    assert doc["summary"] == {"Implemented": 1, "Partially Implemented": 0,
                              "Not Implemented": 1, "N/A": 1, "Not verified": 9}
    assert doc["exit"]["failed"] is True
    assert "gang_scheduling" in doc["exit"]["must_not_implemented"]
    assert "cluster_autoscaling" not in doc["exit"]["must_not_implemented"]
    assert [r["id"] for r in doc["requirements"]] == [r.id for r in reqs]
    ai = doc["requirements"][4]
    assert ai == {
        "id": "ai_inference", "category": "networking", "level": "MUST", "conditional": False,
        "status": "Implemented", "reason": "The essential check passed: ai_inference Routing.",
        "notes": [],
        "checks": [{
            "nodeid": "pytest_aiconformance/checks/test_ai_inference.py::test_Routing",
            "junit_name": "TestAiInference/Routing", "title": "ai_inference Routing",
            "role": "essential", "outcome": "passed", "reason": "", "duration": 3.21,
            "evidence_file": "",
        }],
    }
    json.dumps(doc)  # serialisable


# ---------------------------------------------------------------- evidence.md

def _recorded(report_dir: Path) -> list[CheckResult]:
    rec = EvidenceRecorder("pytest_aiconformance/checks/test_dra.py::test_kinds", "dra_support",
                           "TestDRA/APIKindsServed", "DRA API kinds are served")
    rec.command("kubectl api-resources --api-group=resource.k8s.io",
                "NAME            APIVERSION           KIND\n"
                "deviceclasses   resource.k8s.io/v1   DeviceClass\n")
    rec.note("All four DRA kinds are served at resource.k8s.io/v1.")
    ok = rec.write(report_dir)
    bad = EvidenceRecorder("pytest_aiconformance/checks/test_gang.py::test_negative",
                           "gang_scheduling", "TestGangScheduling/Negative",
                           "Oversized gang stays unbound")
    bad.command("kubectl get pods -l volcano.sh/job-name=gang-overflow",
                "NAME   READY   STATUS\ngang-overflow-worker-0   1/1   Running\n")
    bad.diagnostic("Events", "Warning  FailedScheduling  0/2 nodes are available",
                   "kubectl get events -n aic-r0a1b2")
    bad_rel = bad.write(report_dir)
    return [
        CheckResult("pytest_aiconformance/checks/test_dra.py::test_kinds", "dra_support",
                    Role.ESSENTIAL, Outcome.PASSED, "", "TestDRA/APIKindsServed",
                    "DRA API kinds are served", ok, 0.5),
        CheckResult("pytest_aiconformance/checks/test_gang.py::test_negative", "gang_scheduling",
                    Role.ESSENTIAL, Outcome.FAILED, "1 of 12 pods was bound",
                    "TestGangScheduling/Negative", "Oversized gang stays unbound", bad_rel, 30.0),
        CheckResult("pytest_aiconformance/checks/test_sec.py::test_neg",
                    "secure_accelerator_access", Role.ESSENTIAL, Outcome.NOT_OBSERVABLE,
                    "simulated nodes run no containers",
                    "TestSecureAcceleratorAccess/NegativeIsolationTest", "Pod without request",
                    "checks/missing.json"),
    ]


def test_evidence_md_has_commands_outputs_and_reasons(tmp_path):
    results = _recorded(tmp_path)
    verdicts = aggregate(load_catalog().requirements("1.35"), results)
    page = render_evidence_md(verdicts, tmp_path, run_meta(), PlatformMeta(platformName="Lab"),
                              ["2 nodes, 4 simulated GPUs (nvidia.com/gpu)"],
                              {"dra_support": "DRA APIs are served."})
    assert page.startswith("# Kubernetes AI Conformance evidence: Lab\n")
    for expected in [
        "## Test environment\n",
        "- Kubernetes server version: v1.35.3\n",
        "  - 2 nodes, 4 simulated GPUs (nvidia.com/gpu)\n",
        "- Operators detected: Volcano v1.14.1 (volcano-system), Envoy Gateway v1.7.1\n",
        "- Run id: `r0a1b2`\n",
        "- Date: 2026-03-01T10:12:30+00:00\n",
        "## DRA support\n",
        "Requirement `dra_support` (MUST, accelerators): DRA APIs are served.\n",
        "**Status: Implemented.** The essential check passed: DRA API kinds are served.\n",
        "- DRA API kinds are served (`TestDRA/APIKindsServed`): **passed** (0.5 s)\n",
        "```\n$ kubectl api-resources --api-group=resource.k8s.io\n"
        "NAME            APIVERSION           KIND\n"
        "deviceclasses   resource.k8s.io/v1   DeviceClass\n```\n",
        "All four DRA kinds are served at resource.k8s.io/v1.\n",
        "**Status: Not Implemented.** 'Oversized gang stays unbound' failed: "
        "1 of 12 pods was bound.\n",
        "<details><summary>Failure diagnostics for Oversized gang stays unbound "
        "(1 captured before teardown)</summary>\n",
        "```\n$ kubectl get events -n aic-r0a1b2\nWarning  FailedScheduling  0/2 nodes are "
        "available\n```\n\n</details>\n",
        "**Status: Not verified.** 'Pod without request' could not be observed here: "
        "simulated nodes run no containers.\n",
        "Not run to completion: 'Pod without request' could not be observed here: "
        "simulated nodes run no containers.\n",
        "Evidence file `checks/missing.json` is missing.\n",
        "What was done: nothing; not checked by this suite: no check for this requirement ran.\n",
    ]:
        assert expected in page, expected
    ids = [line[3:] for line in page.splitlines() if line.startswith("## ")]
    assert ids[:3] == ["Test environment", "Summary", "DRA support"]
    assert len(ids) == 2 + len(load_catalog().requirements("1.35"))
    # every heading is the catalog's title of its requirement, in checklist order
    assert ids[2:] == [r.title for r in load_catalog().requirements("1.35")]
    assert "| [AI service metrics](#ai-service-metrics) (`ai_service_metrics`) | MUST |" in page


def test_evidence_md_fences_outputs_containing_backticks(tmp_path):
    rec = EvidenceRecorder("n::t", "dra_support", "TestX/Y", "x")
    rec.command("cat README.md", "```\ncode\n```")
    rel = rec.write(tmp_path)
    verdicts = aggregate(load_catalog().requirements("1.35")[:1],
                         [CheckResult("n::t", "dra_support", Role.ESSENTIAL, Outcome.PASSED,
                                      evidence_file=rel)])
    page = render_evidence_md(verdicts, tmp_path, run_meta(), PlatformMeta())
    assert "````\n$ cat README.md\n```\ncode\n```\n````\n" in page


# ---------------------------------------------------------------- terminal

def test_verdict_table():
    verdicts = aggregate(load_catalog().requirements("1.35"), sample_results("1.35"))
    lines = format_verdict_table(verdicts, width=90)
    assert all(len(line) <= 90 for line in lines[:-1])
    assert lines[0].split() == ["requirement", "level", "status", "reason"]
    row = next(line for line in lines if line.startswith("gang_scheduling "))
    assert row.split()[:3] == ["gang_scheduling", "MUST", "Not"]
    assert row.endswith("\u2026")
    assert any(line.startswith("cluster_autoscaling        MUST*   N/A") for line in lines)
    assert lines[-1] == (
        "12 requirements: 1 Implemented, 1 Not Implemented, 1 N/A, 9 Not verified; "
        "MUST not Implemented: gang_scheduling, secure_accelerator_access"
    )
    assert format_verdict_table([]) == ["no requirement verdicts"]


# ---------------------------------------------------------------- JUnit

JUNIT_TESTS = '''
import pytest

@pytest.fixture
def named(record_property, request):
    record_property("requirement", "secure_accelerator_access")
    record_property("junit_name", request.param)

@pytest.mark.parametrize("named", ["TestSecureAcceleratorAccess/NegativeIsolationTest"],
                         indirect=True)
def test_negative(named):
    print("$ kubectl get pods")

@pytest.mark.parametrize("named", ['TestOdd/<a & "b">'], indirect=True)
def test_odd(named):
    assert False, "boom"

def test_plain():
    pass

@pytest.mark.skip(reason="not observable here: lab")
def test_skipped():
    pass
'''


def _junit(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_sample=JUNIT_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--junitxml=junit.xml",
                       "-o", "junit_family=xunit1", "-o", "junit_logging=system-out",
                       "-o", "junit_log_passing_tests=true")
    path = pytester.path / "junit.xml"
    assert path.is_file()
    return path


def _cases(path: Path) -> list[tuple[str, str]]:
    root = ET.parse(path).getroot()
    return [(c.get("classname", ""), c.get("name", "")) for c in root.iter("testcase")]


def test_junit_rename_on_real_pytest_output(pytester):
    path = _junit(pytester)
    before = path.read_bytes()
    assert _cases(path) == [
        ("test_sample", "test_negative[TestSecureAcceleratorAccess/NegativeIsolationTest]"),
        ("test_sample", 'test_odd[TestOdd/<a & "b">]'),
        ("test_sample", "test_plain"),
        ("test_sample", "test_skipped"),
    ]
    assert rename_testcases(path) == 2
    assert _cases(path) == [
        ("test_sample", "TestSecureAcceleratorAccess/NegativeIsolationTest"),
        ("test_sample", 'TestOdd/<a & "b">'),
        ("test_sample", "test_plain"),
        ("test_sample", "test_skipped"),
    ]
    after = path.read_bytes()
    # Only the two name attributes changed: putting the old names back restores every byte.
    restored = after.replace(
        b'name="TestSecureAcceleratorAccess/NegativeIsolationTest" ',
        b'name="test_negative[TestSecureAcceleratorAccess/NegativeIsolationTest]" ', 1,
    ).replace(
        b'name="TestOdd/&lt;a &amp; &quot;b&quot;&gt;" ',
        b'name="test_odd[TestOdd/&lt;a &amp; &quot;b&quot;&gt;]" ', 1,
    )
    assert restored == before
    root = ET.parse(path).getroot()
    negative = next(root.iter("testcase"))
    assert negative.findtext("system-out", "").strip().endswith("$ kubectl get pods")
    # Idempotent, and the file is left alone when nothing changes.
    assert rename_testcases(path) == 0
    assert path.read_bytes() == after


def test_junit_rename_tolerates_missing_file(tmp_path):
    assert rename_testcases(tmp_path / "absent.xml") == 0
    assert rename_testcases(None) == 0


def test_rename_in_text_leaves_cases_without_property():
    xml = ('<testsuite><testcase classname="a" name="t1" time="0.1" />'
           '<testcase classname="a" name="t2"><properties>'
           '<property name="junit_name" value="TestA/Two" /></properties></testcase></testsuite>')
    new, changed = rename_testcases_in_text(xml)
    assert changed == 1
    assert new == xml.replace('name="t2"', 'name="TestA/Two"')


# ---------------------------------------------------------------- write_reports

def test_write_reports_writes_everything(pytester, tmp_path):
    junit = _junit(pytester)
    report_dir = tmp_path / "aic-report"
    results = _recorded(report_dir)
    verdicts = aggregate(load_catalog().requirements("1.35"), results)
    descriptions = load_template_descriptions(official("1.35"))
    paths = write_reports(report_dir, verdicts, run_meta(), PlatformMeta(),
                          ["2 nodes"], descriptions, junit)
    assert paths == {"verdicts": report_dir / "verdicts.json",
                     "product": report_dir / "PRODUCT.yaml",
                     "evidence": report_dir / "evidence.md",
                     "e2e": report_dir / "e2e.log", "go_json": report_dir / "results.json",
                     "junit": junit}
    doc = json.loads(paths["verdicts"].read_text())
    assert [r["id"] for r in doc["requirements"]] == [
        r.id for r in load_catalog().requirements("1.35")]
    product = yaml.safe_load(paths["product"].read_text())
    assert product["spec"]["accelerators"][0]["description"].startswith(
        "Support Dynamic Resource Allocation (DRA) APIs")
    assert "$ kubectl api-resources --api-group=resource.k8s.io" in paths["evidence"].read_text()
    assert ("test_sample", "TestSecureAcceleratorAccess/NegativeIsolationTest") in _cases(junit)
    e2e = paths["e2e"].read_text()
    assert "--- SKIP: TestSecureAcceleratorAccess/NegativeIsolationTest (" in e2e
    assert "    | $ kubectl api-resources --api-group=resource.k8s.io" in e2e
    events = [json.loads(line) for line in paths["go_json"].read_text().splitlines()]
    assert events[0]["Time"] == "2026-03-01T10:00:00Z"  # from the run's start
    assert {(e.get("Test"), e["Action"]) for e in events} >= {
        ("TestSecureAcceleratorAccess/NegativeIsolationTest", "skip")}
    # Same inputs, same bytes.
    first = {k: p.read_bytes() for k, p in paths.items()}
    write_reports(report_dir, list(reversed(verdicts)), run_meta(), PlatformMeta(),
                  ["2 nodes"], descriptions, junit)
    assert {k: p.read_bytes() for k, p in paths.items()} == first


def test_write_reports_without_junit(tmp_path):
    verdicts: list[RequirementVerdict] = aggregate(load_catalog().requirements("1.33"), [])
    paths = write_reports(tmp_path / "r", verdicts, run_meta("1.33"), PlatformMeta(), [],
                          {}, tmp_path / "missing.xml")
    assert sorted(paths) == ["e2e", "evidence", "go_json", "product", "verdicts"]
    assert paths["e2e"].read_text() == f"PASS\nok  \t{PACKAGE}\t0.000s\n"
    assert all(v.status is Status.NOT_VERIFIED for v in verdicts)


@pytest.mark.parametrize("version", VERSIONS)
def test_workload_sandboxing_in_every_report_of_137_only(tmp_path, version):
    verdicts = aggregate(load_catalog().requirements(version), [])
    paths = write_reports(tmp_path / "r", verdicts, run_meta(version), PlatformMeta(), [],
                          {}, tmp_path / "missing.xml")
    texts = {key: path.read_text() for key, path in paths.items()}
    texts["terminal"] = "\n".join(format_verdict_table(verdicts))
    for key, text in texts.items():
        if key in ("e2e", "go_json"):
            continue  # Go test output lists the checks that ran, and none did
        assert ("workload_sandboxing" in text) == (version == "1.37"), key


# ---------------------------------------------------------------- simulated runs

LAB_SIMULATED = ("aic-lab (pytest-aiconformance's local lab): kwok-simulated nodes aic-gpu-0, "
                 "aic-gpu-1; simulated accelerators on aic-real-0")
SIMULATED_HEADER = [
    "#",
    "# NOT A SUBMISSION FOR A REAL PLATFORM: this run's nodes or accelerators are simulated.",
    f"# Simulated: {LAB_SIMULATED}",
]
SIMULATED_SENTENCE = f"Decided on a simulated cluster, not a real platform: {LAB_SIMULATED}."
SIMULATED_BANNER = (
    "> **Simulated run: not a real platform.** This run's nodes or accelerators are simulated "
    f"({LAB_SIMULATED}); its verdicts are not evidence for any real platform.")


def _cluster(kwok: list[str], labelled: list[str], real: list[str]) -> ClusterInfo:
    info = ClusterInfo(server="https://x", git_version="v1.35.4", major=1, minor=35,
                       group_versions=[], nodes=len(kwok) + len(labelled) + len(real),
                       simulated_nodes=sorted(kwok))
    for name in kwok + real:
        info.node_labels[name] = {"kubernetes.io/hostname": name,
                                  SIMULATED_ACCELERATORS_LABEL: "false"}
    for name in labelled:
        info.node_labels[name] = {SIMULATED_ACCELERATORS_LABEL: "true"}
    return info


@pytest.mark.parametrize(
    ("lab", "info", "expected"),
    [
        (True, _cluster(["aic-gpu-1", "aic-gpu-0"], ["aic-real-0"], ["aic-cpu-0"]),
         LAB_SIMULATED),
        (True, None, "aic-lab (pytest-aiconformance's local lab): simulated nodes and "
                     "accelerators"),
        (True, _cluster([], [], ["n1"]), "aic-lab (pytest-aiconformance's local lab): "
                                         "simulated nodes and accelerators"),
        (False, _cluster(["k1"], [], ["n1"]), "kwok-simulated nodes k1"),
        (False, _cluster([], ["n2", "n1"], []), "simulated accelerators on n1, n2"),
        (False, _cluster(["k1"], ["k1"], []), "kwok-simulated nodes k1"),  # named once
        (False, _cluster([f"k{i}" for i in range(9)], [], []),
         "kwok-simulated nodes k0, k1, k2, k3, k4, k5 and 3 more"),
        (False, _cluster([], [], ["n1", "n2"]), ""),
        (False, None, ""),
    ],
)
def test_describe_simulation(lab, info, expected):
    assert describe_simulation(lab, info) == expected


def _simulated(run: RunMeta) -> RunMeta:
    return dataclasses.replace(run, simulated=LAB_SIMULATED)


def test_verdicts_json_names_the_simulation_only_when_simulated():
    verdicts = aggregate(load_catalog().requirements("1.35"), sample_results("1.35"))
    real = verdicts_document(verdicts, run_meta(), PlatformMeta())
    simulated = verdicts_document(verdicts, _simulated(run_meta()), PlatformMeta())
    assert "simulated" not in real["run"]
    assert simulated["run"] == {**real["run"], "simulated": LAB_SIMULATED}
    assert list(simulated["run"])[-1] == "simulated"
    assert {k: v for k, v in simulated.items() if k != "run"} == {
        k: v for k, v in real.items() if k != "run"}


def test_evidence_md_banner_and_environment_line(tmp_path):
    verdicts = aggregate(load_catalog().requirements("1.35"), _recorded(tmp_path))
    real = render_evidence_md(verdicts, tmp_path, run_meta(), PlatformMeta(platformName="Lab"),
                              ["2 nodes"])
    page = render_evidence_md(verdicts, tmp_path, _simulated(run_meta()),
                              PlatformMeta(platformName="Lab"), ["2 nodes"])
    lines = page.splitlines()
    assert lines[:4] == ["# Kubernetes AI Conformance evidence: Lab", "", SIMULATED_BANNER, ""]
    assert lines[4].startswith("Checklist: Kubernetes AI Conformance v1.35.")
    env = "- Kubernetes server version: v1.35.3\n"
    marked = f"- **Simulated, not a real platform**: {LAB_SIMULATED}\n"
    assert env + marked in page
    # exactly the two additions: without them the page is the real platform's
    assert page.replace(SIMULATED_BANNER + "\n\n", "").replace(marked, "") == real
    assert "imulated run" not in real
    assert "not a real platform" not in real
    assert real.splitlines()[2].startswith("Checklist: ")


def test_requirement_page_is_marked_only_when_simulated(tmp_path):
    verdict = aggregate(load_catalog().requirements("1.35"), _recorded(tmp_path))[0]
    real = render_requirement_page(verdict, tmp_path, run_meta(), PlatformMeta(), [], "Text.")
    page = render_requirement_page(verdict, tmp_path, _simulated(run_meta()), PlatformMeta(),
                                   [], "Text.")
    assert page.splitlines()[2] == SIMULATED_BANNER
    marked = f"- **Simulated, not a real platform**: {LAB_SIMULATED}\n"
    assert page.replace(SIMULATED_BANNER + "\n\n", "").replace(marked, "") == real
    assert "not a real platform" not in real


@pytest.mark.parametrize("version", VERSIONS)
def test_product_yaml_of_a_simulated_run_says_so_in_header_and_every_note(version):
    reqs = load_catalog().requirements(version)
    verdicts = aggregate(reqs, sample_results(version))
    real = render_product_yaml(verdicts, version, PlatformMeta(), run_id="r0a1b2")
    assert real == render_product_yaml(verdicts, version, PlatformMeta(), run_id="r0a1b2",
                                       simulated="")
    text = render_product_yaml(verdicts, version, PlatformMeta(), run_id="r0a1b2",
                               simulated=LAB_SIMULATED)
    lines = text.splitlines()
    assert lines[:8] == [
        "# Kubernetes AI Conformance Checklist",
        "# Generated by pytest-aiconformance 0.1.0 from run r0a1b2.",
        "# Statuses come from the suite's verdicts; evidence points at the JUnit testcases.",
        "# An empty status means the run could not decide it: see its notes and fill it in.",
        *SIMULATED_HEADER,
        "",
    ]
    doc, real_doc = yaml.safe_load(text), yaml.safe_load(real)
    assert doc["metadata"] == real_doc["metadata"]
    items = [i for cat in doc["spec"].values() for i in cat]
    real_items = [i for cat in real_doc["spec"].values() for i in cat]
    assert len(items) == len(reqs)
    for item, real_item in zip(items, real_items, strict=True):
        assert item["notes"] == f"{real_item['notes']} {SIMULATED_SENTENCE}"
        assert {**item, "notes": ""} == {**real_item, "notes": ""}
    assert "simulated" not in "\n".join(real.splitlines()[:6]).lower()
    assert SIMULATED_SENTENCE not in real


def test_write_reports_marks_a_simulated_run(tmp_path):
    verdicts = aggregate(load_catalog().requirements("1.35"), sample_results("1.35"))
    paths = write_reports(tmp_path / "r", verdicts, _simulated(run_meta()), PlatformMeta(),
                          ["2 nodes"], {}, None)
    assert json.loads(paths["verdicts"].read_text())["run"]["simulated"] == LAB_SIMULATED
    assert "\n".join(SIMULATED_HEADER) + "\n\nmetadata:" in paths["product"].read_text()
    assert paths["evidence"].read_text().splitlines()[2] == SIMULATED_BANNER
