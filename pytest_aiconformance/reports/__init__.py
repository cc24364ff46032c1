"""The run's reports: verdicts.json, PRODUCT.yaml, evidence.md, the Go-shaped test artifacts
(e2e.log and results.json, as CNCF's validator reads them) and the renamed JUnit file.

All are rendered from the same verdicts, once, at session end (on the xdist controller),
so they cannot disagree with each other or with the terminal table. The gotestsum-shaped
JUnit (`render_junit_xml`) is not written here: the report dir's junit.xml stays pytest's,
which CI dashboards read; a submission writer renders its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_aiconformance.reports.evidence_md import descriptions_for, render_evidence_md
from pytest_aiconformance.reports.go_artifacts import (
    load_evidence_texts,
    render_e2e_log,
    render_go_json,
    render_junit_xml,
)
from pytest_aiconformance.reports.junit import cncf_evidence_prefix, evidence_ref, rename_testcases
from pytest_aiconformance.reports.meta import PlatformMeta, RunMeta, load_platform_meta
from pytest_aiconformance.reports.product_yaml import complete_verdicts, render_product_yaml
from pytest_aiconformance.reports.terminal import format_verdict_table, totals_line
from pytest_aiconformance.reports.verdicts_json import render_verdicts_json
from pytest_aiconformance.verdicts.catalog import UnknownVersionError, load_catalog
from pytest_aiconformance.verdicts.model import RequirementVerdict

VERDICTS_JSON = "verdicts.json"
PRODUCT_YAML = "PRODUCT.yaml"
EVIDENCE_MD = "evidence.md"
E2E_LOG = "e2e.log"  # go test -v text
GO_JSON = "results.json"  # go test -json events (the name CNCF's validator knows)


def _summaries(version: str) -> dict[str, str]:
    catalog = load_catalog()
    try:
        return {r.id: r.summary for r in catalog.requirements(version)}
    except UnknownVersionError:
        return {}


def write_reports(
    report_dir: Path,
    verdicts: Sequence[RequirementVerdict],
    run: RunMeta,
    platform: PlatformMeta,
    environment: list[str],
    descriptions: Mapping[str, str],
    junit_path: Path | None,
    *,
    evidence_prefix: str = "junit.xml#",
) -> dict[str, Path]:
    """Write every report into `report_dir`; returns their paths by kind.

    Kinds: "verdicts", "product", "evidence", "e2e", "go_json", and "junit" when the JUnit
    file exists (it is renamed in place). The verdicts carry their checks, which is what the
    reports render; `descriptions` are the official texts of --aic-template.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    version = run.checklist_version
    ordered = complete_verdicts(version, verdicts)
    summaries = _summaries(version)
    paths = {
        "verdicts": report_dir / VERDICTS_JSON,
        "product": report_dir / PRODUCT_YAML,
        "evidence": report_dir / EVIDENCE_MD,
        "e2e": report_dir / E2E_LOG,
        "go_json": report_dir / GO_JSON,
    }
    paths["verdicts"].write_text(render_verdicts_json(ordered, run, platform, environment),
                                 encoding="utf-8")
    paths["product"].write_text(
        render_product_yaml(ordered, version, platform, descriptions=descriptions,
                            evidence_prefix=evidence_prefix, summaries=summaries,
                            run_id=run.run_id, simulated=run.simulated),
        encoding="utf-8",
    )
    paths["evidence"].write_text(
        render_evidence_md(ordered, report_dir, run, platform, environment,
                           descriptions_for(descriptions, summaries)),
        encoding="utf-8",
    )
    checks = [c for v in ordered for c in v.checks]
    texts = load_evidence_texts(report_dir, checks)
    paths["e2e"].write_text(render_e2e_log(checks, texts), encoding="utf-8")
    paths["go_json"].write_text(render_go_json(checks, texts, run.started or run.finished),
                                encoding="utf-8")
    if junit_path is not None and junit_path.is_file():
        rename_testcases(junit_path)
        paths["junit"] = junit_path
    return paths


__all__ = [
    "E2E_LOG",
    "EVIDENCE_MD",
    "GO_JSON",
    "PRODUCT_YAML",
    "VERDICTS_JSON",
    "PlatformMeta",
    "RunMeta",
    "cncf_evidence_prefix",
    "evidence_ref",
    "format_verdict_table",
    "load_evidence_texts",
    "load_platform_meta",
    "rename_testcases",
    "render_e2e_log",
    "render_go_json",
    "render_junit_xml",
    "totals_line",
    "write_reports",
]
