"""verdicts.json: the machine-readable record of a run, for CI and for re-rendering reports.

Named so because `results.json` is what CNCF's validator parses as `go test -json` output
(see `go_artifacts`).

Keys and ordering are fixed (checklist order, checks by nodeid) so two runs of the same
cluster, serial or under pytest-xdist, differ only in times and durations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pytest_aiconformance.reports.meta import PlatformMeta, RunMeta
from pytest_aiconformance.verdicts.model import CheckResult, RequirementVerdict
from pytest_aiconformance.verdicts.rules import must_not_implemented, summarize

SCHEMA_VERSION = 1


def check_to_json(check: CheckResult) -> dict[str, Any]:
    """One check; `solution` only for a check tied to an alternative solution."""
    out: dict[str, Any] = {
        "nodeid": check.nodeid,
        "junit_name": check.junit_name,
        "title": check.title,
        "role": check.role.value,
        "outcome": check.outcome.value,
        "reason": check.reason,
        "duration": round(check.duration, 3),
        "evidence_file": check.evidence_file,
    }
    if check.solution:
        out["solution"] = check.solution
    return out


def verdict_to_json(verdict: RequirementVerdict) -> dict[str, Any]:
    return {
        "id": verdict.id,
        "category": verdict.category,
        "level": verdict.level,
        "conditional": verdict.conditional,
        "status": verdict.status.value,
        "reason": verdict.reason,
        "notes": list(verdict.notes),
        "checks": [check_to_json(c) for c in sorted(verdict.checks, key=lambda c: c.nodeid)],
    }


def verdicts_document(
    verdicts: Sequence[RequirementVerdict],
    run: RunMeta,
    platform: PlatformMeta,
    environment: Sequence[str] = (),
) -> dict[str, Any]:
    """The verdicts.json content as a dict (verdicts stay in the order given: checklist order)."""
    failing = must_not_implemented(verdicts)
    return {
        "schema": SCHEMA_VERSION,
        "run": run.to_json(),
        "platform": platform.to_json(),
        "environment": list(environment),
        "summary": summarize(verdicts),
        "exit": {
            "must_not_implemented": [v.id for v in failing],
            "failed": bool(failing),
        },
        "requirements": [verdict_to_json(v) for v in verdicts],
    }


def render_verdicts_json(
    verdicts: Sequence[RequirementVerdict],
    run: RunMeta,
    platform: PlatformMeta,
    environment: Sequence[str] = (),
) -> str:
    return json.dumps(verdicts_document(verdicts, run, platform, environment), indent=2,
                      ensure_ascii=False) + "\n"
