"""The run's reports: results.json, PRODUCT.yaml, evidence.md and the renamed JUnit file.

All are rendered from the same verdicts, once, at session end (on the xdist controller),
so they cannot disagree with each other or with the terminal table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_aiconformance.catalog import UnknownVersionError, load_catalog
from pytest_aiconformance.model import RequirementVerdict
from pytest_aiconformance.reports.evidence_md import descriptions_for, render_evidence_md
from pytest_aiconformance.reports.junit import cncf_evidence_prefix, evidence_ref, rename_testcases
from pytest_aiconformance.reports.meta import PlatformMeta, RunMeta, load_platform_meta
from pytest_aiconformance.reports.product_yaml import complete_verdicts, render_product_yaml
from pytest_aiconformance.reports.results_json import render_results_json
from pytest_aiconformance.reports.terminal import format_verdict_table, totals_line

RESULTS_JSON = "results.json"
PRODUCT_YAML = "PRODUCT.yaml"
EVIDENCE_MD = "evidence.md"


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
    """Write every report into `report_dir`; returns {"results"|"product"|"evidence"|"junit": path}.

    The verdicts carry their checks, which is what the reports render; `descriptions` are the
    official texts of --aic-template. The JUnit file is renamed in place when it exists
    ("junit" is absent from the result otherwise).
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    version = run.checklist_version
    ordered = complete_verdicts(version, verdicts)
    summaries = _summaries(version)
    paths = {
        "results": report_dir / RESULTS_JSON,
        "product": report_dir / PRODUCT_YAML,
        "evidence": report_dir / EVIDENCE_MD,
    }
    paths["results"].write_text(render_results_json(ordered, run, platform, environment),
                                encoding="utf-8")
    paths["product"].write_text(
        render_product_yaml(ordered, version, platform, descriptions=descriptions,
                            evidence_prefix=evidence_prefix, summaries=summaries,
                            run_id=run.run_id),
        encoding="utf-8",
    )
    paths["evidence"].write_text(
        render_evidence_md(ordered, report_dir, run, platform, environment,
                           descriptions_for(descriptions, summaries)),
        encoding="utf-8",
    )
    if junit_path is not None and junit_path.is_file():
        rename_testcases(junit_path)
        paths["junit"] = junit_path
    return paths


__all__ = [
    "EVIDENCE_MD",
    "PRODUCT_YAML",
    "RESULTS_JSON",
    "PlatformMeta",
    "RunMeta",
    "cncf_evidence_prefix",
    "evidence_ref",
    "format_verdict_table",
    "load_platform_meta",
    "rename_testcases",
    "totals_line",
    "write_reports",
]
