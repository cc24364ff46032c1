"""The submission directory: what it links, and that the program's offline rules accept it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import yaml

from pytest_aiconformance.reports.meta import PlatformMeta, RunMeta
from pytest_aiconformance.reports.submission import product_slug, write_submission
from pytest_aiconformance.validator.rules import validate_submission
from pytest_aiconformance.verdicts.catalog import load_catalog, official_descriptions
from pytest_aiconformance.verdicts.evidence import EvidenceRecorder
from pytest_aiconformance.verdicts.model import CheckResult, Role
from pytest_aiconformance.verdicts.outcomes import Outcome
from pytest_aiconformance.verdicts.rules import aggregate

VERSION = "1.36"
START = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
PLATFORM = PlatformMeta(
    platformName="ACME AI Cloud", platformVersion="v2.1", vendorName="ACME",
    websiteUrl="https://acme.example", documentationUrl="https://docs.acme.example",
    productLogoUrl="https://acme.example/logo.svg", description="ACME's AI platform",
    contactEmailAddress="conformance@acme.example",
    k8sConformanceUrl="https://github.com/cncf/k8s-conformance/tree/main/v1.36/acme-ai-cloud",
)


def _check(report: Path, req: str, case: str, outcome: Outcome, reason: str = "",
           role: Role = Role.ESSENTIAL) -> CheckResult:
    name = f"{load_catalog().junit_group(req)}/{case}"
    recorder = EvidenceRecorder(f"ct/test_{req}.py::test_{case}", req, name, case)
    recorder.command(f"kubectl get pods # {case}", "NAME  READY\npod-0 1/1")
    return CheckResult(nodeid=recorder.data.nodeid, requirement=req, role=role,
                       outcome=outcome, reason=reason, junit_name=name, title=case,
                       evidence_file=recorder.write(report), duration=1.5)


def _results(report: Path, failing: str | None = None) -> list[CheckResult]:
    """Every MUST passes (one fails if named), cluster_autoscaling is N/A, SHOULDs not run."""
    out = []
    for req in load_catalog().requirements(VERSION):
        if req.id == "cluster_autoscaling":
            out.append(_check(report, req.id, "ScaleUp", Outcome.NOT_APPLICABLE,
                              "no cluster autoscaler is deployed"))
        elif req.level == "MUST":
            out.append(_check(report, req.id, "Works", Outcome.PASSED))
            out.append(_check(report, req.id, "Extra", Outcome.NOT_OBSERVABLE,
                              "simulated nodes", Role.SUPPORTING))
            if req.id == failing:
                out.append(_check(report, req.id, "Breaks", Outcome.FAILED, "2 of 4 bound"))
    return out


def _write(tmp_path: Path, failing: str | None = None,
           platform: PlatformMeta = PLATFORM) -> tuple[Path, dict[str, dict[str, object]]]:
    report = tmp_path / "report"
    results = _results(report, failing)
    verdicts = aggregate(load_catalog().requirements(VERSION), results)
    run = RunMeta(checklist_version=VERSION, server_version="v1.36.1", run_id="abc123",
                  started=START, finished=START + dt.timedelta(minutes=3))
    sub = write_submission(tmp_path / "submission", verdicts, run, platform, ["2 nodes"],
                           official_descriptions(VERSION), report)
    doc = yaml.safe_load(sub.product_yaml.read_text())
    items = {i["id"]: i for cat in doc["spec"].values() for i in cat}
    return sub.product_dir, items


def test_complete_run_is_accepted_and_links_only_passed_tests(tmp_path: Path) -> None:
    product_dir, items = _write(tmp_path)
    assert product_dir == tmp_path / "submission" / "v1.36" / "acme-ai-cloud"
    prefix = "file://v1.36/acme-ai-cloud/secure_accelerator_access"
    assert items["secure_accelerator_access"]["evidence"] == [
        f"{prefix}/evidence.md",
        f"{prefix}/junit.xml#TestSecureAcceleratorAccess/Works",
        f"{prefix}/e2e.log#TestSecureAcceleratorAccess",
        f"{prefix}/results.json#TestSecureAcceleratorAccess",
    ]
    assert items["secure_accelerator_access"]["description"] == official_descriptions(
        VERSION)["secure_accelerator_access"]
    assert items["cluster_autoscaling"]["status"] == "N/A"
    assert items["cluster_autoscaling"]["evidence"] == [
        "file://v1.36/acme-ai-cloud/cluster_autoscaling/evidence.md"]
    # an undecided SHOULD: empty status and no evidence, what was seen goes to the notes
    assert items["gpu_sharing"]["status"] == ""
    assert items["gpu_sharing"]["evidence"] == []
    assert items["gpu_sharing"]["notes"]
    page = (product_dir / "secure_accelerator_access" / "evidence.md").read_text()
    assert "$ kubectl get pods # Works" in page
    assert "**Status: Implemented.**" in page
    check = validate_submission(tmp_path / "submission")
    assert check.ok, check.lines()
    assert [(f.level, f.where) for f in check.warnings] == [("warning", "cluster_autoscaling")]


def test_failed_check_is_kept_and_its_requirement_refused(tmp_path: Path) -> None:
    product_dir, items = _write(tmp_path, failing="gang_scheduling")
    assert items["gang_scheduling"]["status"] == "Partially Implemented"
    # the page is linked, the failing artifact is not, and the failure is not dropped
    assert items["gang_scheduling"]["evidence"] == [
        "file://v1.36/acme-ai-cloud/gang_scheduling/evidence.md"]
    junit = (product_dir / "gang_scheduling" / "junit.xml").read_text()
    assert 'name="TestGangScheduling/Breaks"' in junit
    assert "2 of 4 bound" in junit
    check = validate_submission(tmp_path / "submission")
    assert {f.where for f in check.errors} == {"gang_scheduling"}


def test_missing_metadata_is_a_visible_placeholder(tmp_path: Path) -> None:
    report = tmp_path / "report"
    verdicts = aggregate(load_catalog().requirements(VERSION), _results(report))
    run = RunMeta(checklist_version=VERSION, run_id="abc123", started=START)
    sub = write_submission(tmp_path / "s", verdicts, run, PlatformMeta(), [], {}, report)
    assert sub.product_dir.name == "product-name"
    assert sub.missing_metadata == (
        "platformName", "platformVersion", "vendorName", "websiteUrl", "documentationUrl",
        "productLogoUrl", "description", "contactEmailAddress", "k8sConformanceUrl")
    meta = yaml.safe_load(sub.product_yaml.read_text())["metadata"]
    assert meta["platformName"] == "[Platform Name]"
    assert meta["repoUrl"] == ""  # optional: empty is accepted, a placeholder is not
    errors = {f.where for f in validate_submission(sub.product_dir).errors}
    assert set(sub.missing_metadata) <= errors


@pytest.mark.parametrize(("name", "slug"), [("ACME AI Cloud", "acme-ai-cloud"),
                                            ("k0rdent", "k0rdent"), ("", "product-name")])
def test_product_slug(name: str, slug: str) -> None:
    assert product_slug(PlatformMeta(platformName=name)) == slug


def test_upstream_tested_requirements_use_upstream_test_names() -> None:
    """Where upstream has an automated test, our checks' top-level JUnit name is upstream's,
    so the validator finds the test it looks for without a #fragment."""
    from pytest_aiconformance.validator.rules import UPSTREAM_TESTS

    assert UPSTREAM_TESTS == {
        "secure_accelerator_access": "TestSecureAcceleratorAccess",
        "gang_scheduling": "TestGangScheduling",
        "cluster_autoscaling": "TestAcceleratorClusterAutoscaling",
    }
    for req, name in UPSTREAM_TESTS.items():
        assert load_catalog().junit_group(req) == name


SIMULATED = "aic-lab (pytest-aiconformance's local lab): kwok-simulated nodes aic-gpu-0"


def test_simulated_run_is_marked_in_product_yaml_and_pages_only(tmp_path: Path) -> None:
    """A simulated run's submission says so in PRODUCT.yaml (header and every note) and on
    every evidence page; all else is byte for byte the real run's, which says nothing of it."""
    report = tmp_path / "report"
    verdicts = aggregate(load_catalog().requirements(VERSION), _results(report))
    run = RunMeta(checklist_version=VERSION, server_version="v1.36.1", run_id="abc123",
                  started=START, finished=START + dt.timedelta(minutes=3))
    roots = {}
    for name, meta in (("real", run), ("sim", dataclasses.replace(run, simulated=SIMULATED))):
        sub = write_submission(tmp_path / name, verdicts, meta, PLATFORM, ["2 nodes"],
                               official_descriptions(VERSION), report)
        roots[name] = sub.product_dir
    real_files = sorted(p.relative_to(roots["real"]) for p in roots["real"].rglob("*"))
    assert real_files == sorted(p.relative_to(roots["sim"]) for p in roots["sim"].rglob("*"))
    sentence = f"Decided on a simulated cluster, not a real platform: {SIMULATED}."
    banner = ("> **Simulated run: not a real platform.** This run's nodes or accelerators are "
              f"simulated ({SIMULATED}); its verdicts are not evidence for any real platform.")
    env_line = f"- **Simulated, not a real platform**: {SIMULATED}\n"
    for rel in real_files:
        real_path, sim_path = roots["real"] / rel, roots["sim"] / rel
        if real_path.is_dir():
            continue
        real, sim = real_path.read_text(), sim_path.read_text()
        assert "not a real platform" not in real, rel
        if rel.name == "evidence.md":
            assert sim.splitlines()[2] == banner
            assert sim.replace(banner + "\n\n", "").replace(env_line, "") == real
        elif rel.name == "PRODUCT.yaml":
            assert "# NOT A SUBMISSION FOR A REAL PLATFORM: this run's nodes or accelerators "\
                   f"are simulated.\n# Simulated: {SIMULATED}\n\nmetadata:\n" in sim
            items = [i for c in yaml.safe_load(sim)["spec"].values() for i in c]
            real_items = [i for c in yaml.safe_load(real)["spec"].values() for i in c]
            assert [i["notes"] for i in items] == [f"{i['notes']} {sentence}"
                                                   for i in real_items]
        else:
            assert sim == real, rel
    # the marking does not change what the program's offline rules say
    assert validate_submission(tmp_path / "sim").lines() == validate_submission(
        tmp_path / "real").lines()
