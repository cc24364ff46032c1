"""Per-session run state, kept in config.stash (never in module globals)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance.cluster import Kube
from pytest_aiconformance.discovery import ClusterInfo
from pytest_aiconformance.isolation import RunContext
from pytest_aiconformance.settings import Settings


@dataclass
class PhaseRecord:
    """What the controller saw of one check across its setup/call/teardown reports."""

    nodeid: str
    props: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)  # when -> passed/failed/skipped
    skip_message: str = ""
    failure: str = ""
    duration: float = 0.0


@dataclass
class RunState:
    """Everything one pytest session knows about the conformance run."""

    settings: Settings
    kubeconfig_dest: str
    run_id: str
    started: dt.datetime
    is_worker: bool = False
    kube: Kube | None = None
    kubeconfig_path: Path | None = None
    info: ClusterInfo | None = None
    version: str | None = None  # the checklist version in force
    version_source: str = ""
    context: RunContext | None = None
    lab: Any = None  # pytest_aiconformance.lab.Lab when --aic-lab started or reused one
    lab_started_here: bool = False
    records: dict[str, PhaseRecord] = field(default_factory=dict)
    deselected: dict[str, str] = field(default_factory=dict)  # nodeid -> reason
    selected_requirements: set[str] = field(default_factory=set)
    installed_operators: list[str] = field(default_factory=list)
    reports_written: dict[str, Any] = field(default_factory=dict)
    must_failures: list[str] = field(default_factory=list)
    junit_default: bool = False  # we pointed --junitxml at the report dir
    suite_ids: set[str] | None = None  # requirement ids the collected suite checks


STATE_KEY = pytest.StashKey[RunState]()
KUBECONFIG_DEST_KEY = pytest.StashKey[str]()


def get_state(config: pytest.Config) -> RunState:
    return config.stash[STATE_KEY]
SUITE_IDS_KEY = pytest.StashKey[set[str]]()  # requirement ids the collected suite checks
