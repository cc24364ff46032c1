"""What one pytest process knows about the conformance run (owned by the ConformanceRun plugin)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aiconformance.cluster.client import Kube
from pytest_aiconformance.cluster.discovery import ClusterInfo
from pytest_aiconformance.cluster.run_objects import RunContext
from pytest_aiconformance.reports.submission import Submission
from pytest_aiconformance.run.check_records import PhaseRecord
from pytest_aiconformance.run.settings import Settings
from pytest_aiconformance.validator.rules import ValidationReport
from pytest_aiconformance.verdicts.model import PROP_REQUIREMENT, RequirementVerdict


@dataclass
class RunState:
    """Everything one pytest session knows about the conformance run."""

    settings: Settings
    run_id: str
    started: dt.datetime
    is_worker: bool = False
    kube: Kube | None = None
    info: ClusterInfo | None = None
    version: str | None = None  # the checklist version in force
    version_source: str = ""
    context: RunContext | None = None
    lab: Any = None  # aiconformance_lab.Lab when --aic-lab started or reused one
    lab_started_here: bool = False
    records: dict[str, PhaseRecord] = field(default_factory=dict)  # controller: nodeid -> phases
    deselected: dict[str, str] = field(default_factory=dict)  # nodeid -> reason
    suite_ids: set[str] | None = None  # requirement ids the collected suite checks
    # requirement id -> its collected essential checks (nodeid -> JUnit name), for partial runs
    suite_checks: dict[str, dict[str, str]] = field(default_factory=dict)
    junit_default: bool = False  # we pointed --junitxml at the report dir
    verdicts: list[RequirementVerdict] = field(default_factory=list)
    report_paths: dict[str, Path] = field(default_factory=dict)
    simulated: str = ""  # what of the run is simulated (RunMeta.simulated); '' on real platforms
    must_failures: list[str] = field(default_factory=list)
    submission: Submission | None = None
    submission_check: ValidationReport | None = None

    @property
    def is_conformance_run(self) -> bool:
        """Connected to a cluster, or some process ran a conformance check."""
        return self.kube is not None or any(
            PROP_REQUIREMENT in r.props for r in self.records.values())

    def header_lines(self) -> list[str]:
        lines = [f"aiconformance: run {self.run_id}, report dir {self.settings.report_dir}"]
        if self.version:
            lines.append(f"checklist version: {self.version} ({self.version_source})")
        if self.info is not None:
            lines.extend(self.info.header_lines())
        if self.settings.profile_source:
            lines.append(f"accelerator profile: {self.settings.profile.name} "
                         f"({self.settings.profile_source})")
        return lines
