"""`aiconformance validate`: the CNCF submission rules, each broken case with its exact finding."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aiconformance.parsers.test_artifacts import (
    ArtifactOutcome,
    parse_e2e_log,
    parse_go_test_json,
    parse_junit,
)
from pytest_aiconformance.validator import rules as validator
from pytest_aiconformance.validator.rules import (
    ERROR,
    NOT_CHECKED,
    WARNING,
    Finding,
    SubmissionInputError,
    resolve_evidence,
    validate_submission,
)
from pytest_aiconformance.verdicts.catalog import load_catalog

REPO = Path(__file__).parents[2]
PRODUCT = "v1.36/acme"

JUNIT_OK = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="0">
  <testsuite name="sigs.k8s.io/ai-conformance/test" tests="3">
    <testcase classname="test" name="TestSecureAcceleratorAccess" time="3.1"></testcase>
    <testcase classname="test" name="TestSecureAcceleratorAccess/NoRequestSeesNone"></testcase>
    <testcase classname="test" name="TestGPUSharing">
      <skipped message="no time-slicing configured"></skipped>
    </testcase>
  </testsuite>
</testsuites>
"""

E2E_OK = """=== RUN   TestGangScheduling
=== RUN   TestGangScheduling/all_or_nothing
    --- PASS: TestGangScheduling/all_or_nothing (10.00s)
--- PASS: TestGangScheduling (12.00s)
PASS
ok  \tsigs.k8s.io/ai-conformance/test\t12.1s
"""


def go_event(action: str, test: str = "", package: str = "sigs.k8s.io/ai-conformance/test") -> str:
    event = {"Action": action, "Package": package}
    if test:
        event["Test"] = test
    return json.dumps(event)


RESULTS_OK = "\n".join([
    go_event("start"),
    go_event("run", "TestAcceleratorClusterAutoscaling"),
    go_event("pass", "TestAcceleratorClusterAutoscaling"),
    go_event("pass"),
]) + "\n"
RESULTS_SKIPPED = RESULTS_OK.replace(go_event("pass", "TestAcceleratorClusterAutoscaling"),
                                     go_event("skip", "TestAcceleratorClusterAutoscaling"))

METADATA: dict[str, str] = {
    "kubernetesVersion": "v1.36",
    "platformName": "Acme Kubernetes",
    "platformVersion": "2.4.0",
    "vendorName": "Acme Corp",
    "websiteUrl": "https://acme.example/kubernetes",
    "repoUrl": "https://github.com/acme/acme-k8s",
    "documentationUrl": "https://docs.acme.example",
    "productLogoUrl": "https://acme.example/logo.svg",
    "description": "Acme's Kubernetes platform for AI workloads.",
    "contactEmailAddress": "conformance@acme.example",
    "k8sConformanceUrl": "https://github.com/cncf/k8s-conformance/tree/master/v1.36/acme",
}

# Evidence per MUST of 1.36; SHOULDs other than gpu_sharing stay unanswered (skipped upstream).
EVIDENCE: dict[str, list[str]] = {
    "secure_accelerator_access": ["junit.xml#TestSecureAcceleratorAccess"],
    "gang_scheduling": ["file://v1.36/acme/e2e.log#TestGangScheduling"],
    "cluster_autoscaling": ["results.json"],
    "ai_inference": ["https://docs.acme.example/inference"],
    "pod_autoscaling": ["evidence/pod_autoscaling.md"],
    "accelerator_metrics": ["file://evidence/metrics.txt"],
    "ai_service_metrics": ["https://docs.acme.example/metrics"],
    "robust_controller": ["evidence/kuberay.md"],
}


def product_document() -> dict[str, Any]:
    spec: dict[str, list[dict[str, Any]]] = {}
    for req in load_catalog().requirements("1.36"):
        entry: dict[str, Any] = {"id": req.id, "description": req.summary, "level": req.level,
                                 "status": "", "evidence": [], "notes": ""}
        if req.level == "MUST":
            entry.update(status="Implemented", evidence=list(EVIDENCE[req.id]))
        spec.setdefault(req.category, []).append(entry)
    spec["accelerators"][1].update(status="Not Implemented",
                                   notes="No sharing offered.")  # gpu_sharing
    return {"metadata": dict(METADATA), "spec": spec}


def write_product(root: Path, document: dict[str, Any], product: str = PRODUCT) -> Path:
    product_dir = root / product
    product_dir.mkdir(parents=True, exist_ok=True)
    (product_dir / "PRODUCT.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return product_dir


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A complete 1.36 submission in tmp_path/v1.36/acme with all three artifact kinds."""
    product_dir = write_product(tmp_path, product_document())
    (product_dir / "junit.xml").write_text(JUNIT_OK)
    (product_dir / "e2e.log").write_text(E2E_OK)
    (product_dir / "results.json").write_text(RESULTS_OK)
    (product_dir / "evidence").mkdir()
    for name in ("pod_autoscaling.md", "metrics.txt", "kuberay.md"):
        (product_dir / "evidence" / name).write_text("captured output\n")
    return product_dir


def edit(product_dir: Path, change: Any) -> None:
    """Apply `change(document)` to the product's PRODUCT.yaml."""
    path = product_dir / "PRODUCT.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def entry(document: dict[str, Any], req_id: str) -> dict[str, Any]:
    for items in document["spec"].values():
        for item in items:
            if item["id"] == req_id:
                return item
    raise KeyError(req_id)


def problems(product_dir: Path) -> list[Finding]:
    """Errors and warnings (NOT CHECKED left out), without the product label."""
    report = validate_submission(product_dir)
    return [replace(f, product="") for f in report.findings if f.level != NOT_CHECKED]


# --- the good submission ------------------------------------------------------


def test_good_submission_is_ok_with_only_not_checked(good: Path):
    report = validate_submission(good)
    assert report.ok
    assert report.products == [PRODUCT]
    assert {f.level for f in report.findings} == {NOT_CHECKED}
    where = sorted(f.where for f in report.findings)
    assert where == sorted([
        "websiteUrl", "repoUrl", "documentationUrl", "productLogoUrl", "k8sConformanceUrl",
        "vendorName", "ai_inference", "ai_service_metrics",
    ])
    vendor = next(f for f in report.findings if f.where == "vendorName")
    assert vendor.message == ("'Acme Corp' must match a CNCF member's name in the landscape"
                              " exactly (https://landscape.cncf.io/members); not looked up"
                              " offline")
    url = next(f for f in report.findings if f.where == "websiteUrl")
    assert url.message == ("https://acme.example/kubernetes must answer with an HTTP status"
                           " below 400; not fetched offline")
    assert report.summary().startswith("OK: 0 errors, 0 warnings, 8 not checked (v1.36/acme)")


def test_repository_root_and_version_dir_find_the_same_product(good: Path):
    for path in (good.parent.parent, good.parent):
        report = validate_submission(path)
        assert report.products == [PRODUCT]
        assert report.ok


# --- spec ---------------------------------------------------------------------


def test_missing_requirement_id(good: Path):
    def drop(doc: dict[str, Any]) -> None:
        doc["spec"]["observability"] = [i for i in doc["spec"]["observability"]
                                        if i["id"] != "ai_service_metrics"]
    edit(good, drop)
    assert problems(good) == [
        Finding(ERROR, "ai_service_metrics", "requirement is missing from spec.observability")]


def test_missing_category(good: Path):
    edit(good, lambda doc: doc["spec"].pop("operator"))
    assert problems(good) == [
        Finding(ERROR, "operator", "category is missing from spec (it holds robust_controller)")]


def test_must_not_implemented(good: Path):
    edit(good, lambda doc: entry(doc, "robust_controller").update(status="Not Implemented"))
    assert problems(good) == [Finding(
        ERROR, "robust_controller", "a MUST must be Implemented; status is 'Not Implemented'")]


def test_must_with_empty_status_is_invalid_and_not_implemented(good: Path):
    edit(good, lambda doc: entry(doc, "pod_autoscaling").update(status=""))
    assert problems(good) == [
        Finding(ERROR, "pod_autoscaling", "status '' is not one of Implemented,"
                " Partially Implemented, Not Implemented, N/A"),
        Finding(ERROR, "pod_autoscaling", "a MUST must be Implemented; status is ''"),
    ]


def test_na_without_notes(good: Path):
    edit(good, lambda doc: entry(doc, "gpu_sharing").update(status="N/A", notes="  "))
    assert problems(good) == [
        Finding(ERROR, "gpu_sharing", "status N/A needs notes saying why")]


def test_cluster_autoscaling_na_is_a_warning(good: Path):
    edit(good, lambda doc: entry(doc, "cluster_autoscaling").update(
        status="N/A", evidence=[], notes="The platform ships no cluster autoscaler."))
    assert problems(good) == [Finding(
        WARNING, "cluster_autoscaling",
        "a MUST marked N/A: the reviewer checks the reason given in notes")]
    assert validate_submission(good).ok


def test_cluster_autoscaling_not_implemented_is_an_error(good: Path):
    edit(good, lambda doc: entry(doc, "cluster_autoscaling").update(
        status="Not Implemented", evidence=[]))
    assert problems(good) == [Finding(
        ERROR, "cluster_autoscaling", "a MUST must be Implemented, or N/A with the reason in"
        " notes; status is 'Not Implemented'")]


def test_other_conditional_must_cannot_be_na(good: Path):
    edit(good, lambda doc: entry(doc, "pod_autoscaling").update(
        status="N/A", notes="No HPA."))
    assert problems(good) == [Finding(
        ERROR, "pod_autoscaling", "a MUST must be Implemented; status is 'N/A'")]


def test_should_with_empty_status_and_no_evidence_is_skipped(good: Path):
    edit(good, lambda doc: entry(doc, "virtualized_accelerator").update(
        status="", evidence=[], notes=""))
    assert problems(good) == []


def test_should_with_empty_status_but_evidence_is_an_error(good: Path):
    edit(good, lambda doc: entry(doc, "virtualized_accelerator").update(
        evidence=["https://docs.acme.example/vgpu"]))
    assert problems(good) == [Finding(
        ERROR, "virtualized_accelerator", "status '' is not one of Implemented,"
        " Partially Implemented, Not Implemented, N/A")]


def test_invalid_status_spelling(good: Path):
    edit(good, lambda doc: entry(doc, "gpu_sharing").update(status="not implemented"))
    assert problems(good) == [Finding(
        ERROR, "gpu_sharing", "status 'not implemented' is not one of Implemented,"
        " Partially Implemented, Not Implemented, N/A")]


# --- metadata -----------------------------------------------------------------


def test_placeholder_metadata_value(good: Path):
    edit(good, lambda doc: doc["metadata"].update(platformName="[Platform Name]"))
    assert problems(good) == [Finding(
        ERROR, "platformName", "still holds the template placeholder [Platform Name]")]


def test_bad_k8s_conformance_url(good: Path):
    url = "https://github.com/cncf/k8s-conformance/pull/4251"
    edit(good, lambda doc: doc["metadata"].update(k8sConformanceUrl=url))
    assert problems(good) == [Finding(
        ERROR, "k8sConformanceUrl", f"{url} is not a Kubernetes conformance submission link;"
        " expected https://github.com/cncf/k8s-conformance/tree/main/vX.Y/<product>"
        " (or tree/master)")]
    assert "k8sConformanceUrl" not in {f.where for f in validate_submission(good).not_checked}


def test_missing_and_empty_metadata(good: Path):
    def change(doc: dict[str, Any]) -> None:
        del doc["metadata"]["k8sConformanceUrl"]
        del doc["metadata"]["repoUrl"]  # optional
        doc["metadata"]["description"] = ""
    edit(good, change)
    assert problems(good) == [
        Finding(ERROR, "description", "required field is empty"),
        Finding(ERROR, "k8sConformanceUrl",
                "required field is missing (or k8s_conformance_url)"),
    ]


def test_snake_case_metadata_keys_are_accepted(good: Path):
    def change(doc: dict[str, Any]) -> None:
        doc["metadata"]["contact_email_address"] = doc["metadata"].pop("contactEmailAddress")
    edit(good, change)
    assert problems(good) == []


def test_unquoted_number_is_not_text(good: Path):
    path = good / "PRODUCT.yaml"
    path.write_text(path.read_text().replace("platformVersion: 2.4.0", "platformVersion: 2.4"))
    assert problems(good) == [Finding(
        ERROR, "platformVersion", "must be text, but YAML reads 2.4 as a number: put it in"
        " quotes")]


def test_logo_not_svg_is_a_warning(good: Path):
    edit(good, lambda doc: doc["metadata"].update(productLogoUrl="https://acme.example/l.png"))
    assert problems(good) == [Finding(
        WARNING, "productLogoUrl", "https://acme.example/l.png is not an .svg, .eps or .ai"
        " file; the program asks for the logo in one of those formats")]


# --- version ------------------------------------------------------------------


def test_unknown_version_is_an_error(tmp_path: Path):
    doc = product_document()
    doc["metadata"]["kubernetesVersion"] = "v1.20"
    product_dir = write_product(tmp_path, doc, "v1.20/acme")
    known = ", ".join(load_catalog().known_versions)
    assert problems(product_dir) == [Finding(
        ERROR, "kubernetesVersion", f"no AI conformance checklist for version 1.20"
        f" (known: {known})")]


def test_directory_outside_a_version_dir_uses_kubernetes_version(good: Path, tmp_path: Path):
    """Links written as v1.36/acme/... still resolve: that is where the program will see them."""
    product_dir = good.rename(tmp_path / "acme")
    assert validate_submission(product_dir).products == ["acme"]
    assert problems(product_dir) == [Finding(
        WARNING, "directory", "the program reads the version from the path vX.Y/<product>/,"
        " and acme/ is not in a vX.Y directory; submit it as v1.36/acme/ (checked here as 1.36,"
        " from kubernetesVersion)")]


def test_kubernetes_version_differing_from_the_directory(good: Path):
    edit(good, lambda doc: doc["metadata"].update(kubernetesVersion="v1.35"))
    assert problems(good) == [Finding(
        WARNING, "kubernetesVersion", "says v1.35, but the directory is v1.36; the checklist of"
        " the directory is the one applied")]


def test_hybrid_warning_only_from_1_37(good: Path, monkeypatch: pytest.MonkeyPatch):
    """1.37 rule: an Implemented upstream-tested requirement should link a test artifact."""
    edit(good, lambda doc: entry(doc, "gang_scheduling").update(
        evidence=["https://docs.acme.example/gang"]))
    assert problems(good) == []

    catalog = load_catalog()
    with_137 = replace(catalog, versions={**catalog.versions,
                                          "1.37": catalog.versions["1.36"]})
    monkeypatch.setattr(validator, "load_catalog", lambda: with_137)
    root = good.parent.parent
    (root / "v1.36").rename(root / "v1.37")
    product_dir = root / "v1.37" / "acme"
    edit(product_dir, lambda doc: doc["metadata"].update(
        kubernetesVersion="v1.37",
        k8sConformanceUrl="https://github.com/cncf/k8s-conformance/tree/main/v1.37/acme"))
    path = product_dir / "PRODUCT.yaml"
    path.write_text(path.read_text().replace("file://v1.36/acme/", "file://v1.37/acme/"))
    assert problems(product_dir) == [Finding(
        WARNING, "gang_scheduling", "Implemented and covered by the upstream test"
        " TestGangScheduling, but no test artifact is linked; for 1.37 and later, linking the"
        " suite's e2e.log, junit.xml or results.json is recommended")]


# --- evidence paths -----------------------------------------------------------


@pytest.mark.parametrize(("link", "reason"), [
    ("../x", "it leads outside the product directory v1.36/acme/"),
    ("evidence/../../x", "it leads outside the product directory v1.36/acme/"),
    ("file://../../secret", "it leads outside the product directory v1.36/acme/"),
    ("file://v1.36/other/junit.xml",
     "it points into another product's directory; evidence files must be inside v1.36/acme/"),
    ("v1.35/acme/junit.xml",
     "it points into another product's directory; evidence files must be inside v1.36/acme/"),
    ("file://#TestX", "the file path is empty"),
])
def test_evidence_outside_the_product_dir(good: Path, link: str, reason: str):
    (good.parent / "other").mkdir()
    (good.parent / "other" / "junit.xml").write_text(JUNIT_OK)
    edit(good, lambda doc: entry(doc, "robust_controller").update(evidence=[link]))
    assert problems(good) == [
        Finding(ERROR, "robust_controller", f"evidence {link} is refused: {reason}")]


def test_missing_evidence_file(good: Path):
    edit(good, lambda doc: entry(doc, "robust_controller").update(evidence=["evidence/gone.md"]))
    assert problems(good) == [Finding(
        ERROR, "robust_controller",
        "evidence file evidence/gone.md does not exist (no v1.36/acme/evidence/gone.md)")]


def test_resolve_evidence_forms(tmp_path: Path):
    product_dir = tmp_path / "v1.37" / "gke"
    for link, relative, fragment in [
        ("junit.xml", "junit.xml", ""),
        ("junit.xml#TestGangScheduling", "junit.xml", "TestGangScheduling"),
        ("file://e2e.log", "e2e.log", ""),
        ("file://v1.37/gke/junit.xml#TestX", "junit.xml", "TestX"),
        ("file:///v1.37/gke/results.json", "results.json", ""),
        ("artifacts/junit.xml", "artifacts/junit.xml", ""),
    ]:
        ref = resolve_evidence(product_dir, link)
        assert (ref.relative, ref.fragment) == (relative, fragment), link
        assert ref.path == product_dir / relative
    with pytest.raises(ValueError, match="leads outside"):
        resolve_evidence(product_dir, ".")


# --- test artifacts -----------------------------------------------------------

FAILING_ARTIFACTS = {
    "junit.xml": JUNIT_OK.replace(
        '<testcase classname="test" name="TestGPUSharing">',
        '<testcase name="TestOther"><failure message="boom">x</failure></testcase>\n'
        '    <testcase classname="test" name="TestGPUSharing">'),
    "e2e.log": E2E_OK + "--- FAIL: TestOther (1.00s)\n",
    "results.json": RESULTS_OK + go_event("fail", "TestOther") + "\n",
}
ARTIFACT_OWNER = {"junit.xml": "secure_accelerator_access", "e2e.log": "gang_scheduling",
                  "results.json": "cluster_autoscaling"}
ARTIFACT_LINK = {"junit.xml": "junit.xml", "e2e.log": "file://v1.36/acme/e2e.log",
                 "results.json": "results.json"}


@pytest.mark.parametrize("name", sorted(FAILING_ARTIFACTS))
def test_failing_test_anywhere_in_a_linked_artifact(good: Path, name: str):
    (good / name).write_text(FAILING_ARTIFACTS[name])
    assert problems(good) == [Finding(
        ERROR, ARTIFACT_OWNER[name],
        f"test artifact {ARTIFACT_LINK[name]} records failing tests: TestOther")]


def test_artifact_failures_are_reported_once(good: Path):
    (good / "junit.xml").write_text(FAILING_ARTIFACTS["junit.xml"])
    edit(good, lambda doc: entry(doc, "gang_scheduling").update(
        evidence=["junit.xml#TestOther", "e2e.log"]))
    # gang_scheduling comes first in the checklist, so the artifact's failures go there.
    assert problems(good) == [
        Finding(ERROR, "gang_scheduling",
                "test artifact junit.xml records failing tests: TestOther"),
        Finding(ERROR, "gang_scheduling", "test TestOther failed in junit.xml"),
    ]


def test_linked_test_failed(good: Path):
    (good / "e2e.log").write_text(E2E_OK.replace("--- PASS: TestGangScheduling (",
                                                 "--- FAIL: TestGangScheduling ("))
    assert problems(good) == [
        Finding(ERROR, "gang_scheduling", "test artifact file://v1.36/acme/e2e.log records"
                " failing tests: TestGangScheduling"),
        Finding(ERROR, "gang_scheduling",
                "test TestGangScheduling failed in file://v1.36/acme/e2e.log"),
    ]


def test_implemented_with_skipped_linked_test(good: Path):
    (good / "results.json").write_text(RESULTS_SKIPPED)
    assert problems(good) == [Finding(
        ERROR, "cluster_autoscaling", "status is Implemented, but test"
        " TestAcceleratorClusterAutoscaling was skipped in results.json")]


def test_skipped_test_is_fine_when_na(good: Path):
    (good / "results.json").write_text(RESULTS_SKIPPED)
    edit(good, lambda doc: entry(doc, "cluster_autoscaling").update(
        status="N/A", notes="No cluster autoscaler."))
    assert [f.level for f in problems(good)] == [WARNING]


def test_subtest_aggregation_with_one_failing_subtest(good: Path):
    (good / "junit.xml").write_text("""<testsuite name="t">
  <testcase name="TestSecureAcceleratorAccess/OneDevice"></testcase>
  <testcase name="TestSecureAcceleratorAccess/NoRequest">
    <failure message="saw a device">/dev/nvidia0</failure>
  </testcase>
</testsuite>
""")
    assert problems(good) == [
        Finding(ERROR, "secure_accelerator_access", "test artifact junit.xml records failing"
                " tests: TestSecureAcceleratorAccess/NoRequest"),
        Finding(ERROR, "secure_accelerator_access",
                "test TestSecureAcceleratorAccess failed in junit.xml"),
    ]


def test_linked_test_missing_from_artifact(good: Path):
    edit(good, lambda doc: entry(doc, "secure_accelerator_access").update(
        evidence=["junit.xml#TestNotThere"]))
    assert problems(good) == [Finding(
        ERROR, "secure_accelerator_access", "test TestNotThere is not in junit.xml")]


def test_unparsable_artifact(good: Path):
    (good / "results.json").write_text('{"Action": "pass"\n')
    [finding] = problems(good)
    assert finding.where == "cluster_autoscaling"
    assert finding.message.startswith(
        "test artifact results.json cannot be read as go test -json: line 1 is not JSON")


def test_other_file_names_are_only_checked_for_existence(good: Path):
    (good / "evidence" / "kuberay.md").write_text("--- FAIL: TestEverything (1.00s)\n")
    assert problems(good) == []


def test_subtest_aggregation_rules():
    results = parse_e2e_log("--- PASS: TestX/a (1s)\n--- SKIP: TestX/b (0s)\n"
                            "--- SKIP: TestY/a (0s)\n--- SKIP: TestY/b (0s)\n")
    assert results.outcome("TestX") is ArtifactOutcome.PASS
    assert results.outcome("TestY") is ArtifactOutcome.SKIP
    assert results.outcome("TestZ") is ArtifactOutcome.MISSING


def test_a_failure_is_never_overwritten():
    results = parse_e2e_log("--- FAIL: TestW (1s)\n--- PASS: TestW (1s)\n")
    assert results.outcome("TestW") is ArtifactOutcome.FAIL
    assert results.failures == ["TestW"]


def test_package_failure_without_failing_test():
    results = parse_go_test_json(go_event("output", package="p") + "\n"
                                 + go_event("fail", package="p") + "\n")
    assert results.failures == ["package p"]
    failing = parse_go_test_json(go_event("fail", "TestA", "p") + "\n"
                                 + go_event("fail", package="p") + "\n")
    assert failing.failures == ["TestA"]


def test_junit_error_element_is_a_failure_and_empty_junit_is_invalid():
    results = parse_junit(b'<testsuites><testsuite><testcase name="T"><error/></testcase>'
                          b"</testsuite></testsuites>")
    assert results.outcome("T") is ArtifactOutcome.FAIL
    with pytest.raises(ValueError, match="no <testcase>"):
        parse_junit(b"<testsuites></testsuites>")


# --- input errors -------------------------------------------------------------


def test_input_errors(tmp_path: Path):
    with pytest.raises(SubmissionInputError, match="no such directory"):
        validate_submission(tmp_path / "nope")
    with pytest.raises(SubmissionInputError, match=r"no PRODUCT\.yaml"):
        validate_submission(tmp_path)
    bad = tmp_path / "v1.36" / "bad"
    bad.mkdir(parents=True)
    (bad / "PRODUCT.yaml").write_text("metadata: [unclosed\n")
    with pytest.raises(SubmissionInputError, match=r"not valid YAML at line 2"):
        validate_submission(bad)


def test_wrong_shape_is_one_error(tmp_path: Path):
    doc = product_document()
    entry(doc, "gang_scheduling")["evidence"] = "e2e.log"
    product_dir = write_product(tmp_path, doc)
    assert problems(product_dir) == [Finding(
        ERROR, "PRODUCT.yaml", "cannot be read as a submission:"
        " spec.schedulingOrchestration[0].evidence must be a list, not text")]


# --- the command --------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_aiconformance", "validate", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def test_cli_ok_exits_0(good: Path):
    result = run_cli(str(good.parent.parent))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("NOT CHECKED ") for line in lines[:-1])
    assert "NOT CHECKED vendorName: 'Acme Corp' must match" in result.stdout
    assert lines[-1].startswith("OK: 0 errors")
    assert result.stderr == ""


def test_cli_errors_exit_1(good: Path):
    edit(good, lambda doc: entry(doc, "robust_controller").update(status="Not Implemented"))
    result = run_cli(str(good))
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("ERROR robust_controller: a MUST must be Implemented; status is 'Not Implemented'"
            in result.stdout.splitlines())
    assert result.stdout.splitlines()[-1].startswith("FAILED: 1 error, 0 warnings")
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("case", ["no-dir", "missing", "empty", "bad-yaml", "two-args"])
def test_cli_usage_errors_exit_2_with_one_line(tmp_path: Path, case: str):
    bad = tmp_path / "v1.36" / "bad"
    bad.mkdir(parents=True)
    (bad / "PRODUCT.yaml").write_text("spec:\n  - [\n")
    args = {"no-dir": [], "missing": [str(tmp_path / "nope")], "empty": [str(bad / "x")],
            "bad-yaml": [str(tmp_path)], "two-args": [str(tmp_path), str(tmp_path)]}[case]
    if case == "empty":
        (bad / "x").mkdir()
    result = run_cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("ERROR: ")
    assert "Traceback" not in result.stderr


def test_main_forwards_validate_only(monkeypatch: pytest.MonkeyPatch):
    from pytest_aiconformance import __main__ as entry_point

    seen: list[list[str]] = []
    monkeypatch.setattr(validator, "main", lambda argv: seen.append(list(argv)) or 0)
    assert entry_point.main(["validate", "somewhere"]) == 0
    assert seen == [["somewhere"]]
