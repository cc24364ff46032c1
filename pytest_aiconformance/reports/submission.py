"""A CNCF submission directory from one run: `DIR/vX.Y/<product>/` with PRODUCT.yaml and, per
requirement, an evidence page and the three test artifacts the program's validator parses.

The validator rejects a submission whose linked artifacts contain any failure, and a linked
test that was skipped while the status is Implemented. So each requirement gets its own
artifacts (its checks only, failures included: nothing is dropped), and PRODUCT.yaml links
them only where they can honestly back the status: an Implemented requirement whose checks
did not fail links each passed test; every decided requirement links its evidence page; an
undecided SHOULD links nothing (empty status and no evidence is what the program skips).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_aiconformance.reports.evidence_md import render_requirement_page
from pytest_aiconformance.reports.go_artifacts import (
    load_evidence_texts,
    render_e2e_log,
    render_go_json,
    render_junit_xml,
)
from pytest_aiconformance.reports.meta import OPTIONAL_METADATA, PlatformMeta, RunMeta
from pytest_aiconformance.reports.product_yaml import complete_verdicts, render_product_yaml
from pytest_aiconformance.verdicts.catalog import load_catalog
from pytest_aiconformance.verdicts.model import RequirementVerdict, Status
from pytest_aiconformance.verdicts.outcomes import Outcome

PLACEHOLDER_PRODUCT = "product-name"


@dataclass(frozen=True)
class Submission:
    """Where the submission went and what the user must still fill in."""

    product_dir: Path
    product_yaml: Path
    missing_metadata: tuple[str, ...]


def product_slug(platform: PlatformMeta) -> str:
    """The product directory name: the platform name in lower case, dashes for the rest."""
    slug = re.sub(r"[^a-z0-9.-]+", "-", platform.platformName.lower()).strip("-.")
    return slug or PLACEHOLDER_PRODUCT


def _links(verdict: RequirementVerdict, prefix: str) -> list[str]:
    """What PRODUCT.yaml links as this requirement's evidence (see the module docstring)."""
    if verdict.status is Status.NOT_VERIFIED and verdict.level == "SHOULD":
        return []
    links = [f"{prefix}{verdict.id}/evidence.md"]
    clean = not any(c.outcome in (Outcome.FAILED, Outcome.ERROR) for c in verdict.checks)
    if verdict.status is Status.IMPLEMENTED and clean:
        base = f"{prefix}{verdict.id}"
        links += [f"{base}/junit.xml#{c.junit_name}" for c in verdict.checks
                  if c.outcome is Outcome.PASSED]
        group = load_catalog().junit_group(verdict.id)
        links += [f"{base}/e2e.log#{group}", f"{base}/results.json#{group}"]
    return links


def write_submission(
    root: Path,
    verdicts: Sequence[RequirementVerdict],
    run: RunMeta,
    platform: PlatformMeta,
    environment: Sequence[str],
    descriptions: Mapping[str, str],
    report_dir: Path,
) -> Submission:
    """Write `root/vX.Y/<product>/`; returns its paths and the metadata left to fill in."""
    version = run.checklist_version
    product = product_slug(platform)
    product_dir = root / f"v{version}" / product
    product_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"file://v{version}/{product}/"
    ordered = complete_verdicts(version, verdicts)
    summaries = {r.id: r.summary for r in load_catalog().requirements(version)}
    evidence: dict[str, list[str]] = {}
    for verdict in ordered:
        req_dir = product_dir / verdict.id
        req_dir.mkdir(exist_ok=True)
        text = descriptions.get(verdict.id) or summaries.get(verdict.id, "")
        (req_dir / "evidence.md").write_text(
            render_requirement_page(verdict, report_dir, run, platform, environment, text),
            encoding="utf-8")
        checks = list(verdict.checks)
        if checks:
            texts = load_evidence_texts(report_dir, checks)
            (req_dir / "junit.xml").write_text(render_junit_xml(checks, texts),
                                               encoding="utf-8")
            (req_dir / "e2e.log").write_text(render_e2e_log(checks, texts), encoding="utf-8")
            (req_dir / "results.json").write_text(render_go_json(checks, texts, run.started),
                                                  encoding="utf-8")
        evidence[verdict.id] = _links(verdict, prefix)
    path = product_dir / "PRODUCT.yaml"
    path.write_text(render_product_yaml(ordered, version, platform, descriptions=descriptions,
                                        summaries=summaries, run_id=run.run_id,
                                        evidence=evidence, simulated=run.simulated),
                    encoding="utf-8")
    missing = tuple(key for key, value in platform.to_json().items()
                    if not value and key not in OPTIONAL_METADATA)
    return Submission(product_dir, path, missing)
