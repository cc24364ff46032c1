"""gang_scheduling against real scheduler-plugins Coscheduling on the lab.

A kwok-only lab whose one gang scheduler is Coscheduling (Kueue off, the Workload API off):
the second scheduler ``scheduler-plugins-scheduler`` and the PodGroup controller run as host
processes.  The check finds the profile by the scheduler's leader-election Lease, binds a gang
of 2 together and holds an oversized gang out with the plugin's own reason: Implemented.  With
the scheduler stopped, the check fails naming the released Lease (Not Implemented); with the
same second scheduler running without the plugin (``coscheduling_plugin: false``) the gang that
fits is bound, but so is the oversized gang's fitting member, and that half fails naming it
(Partially Implemented).  Only test_gang_scheduling.py runs,
each time as its own pytest process, as users run it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiconformance_lab import Lab, LabInfo, LabShape, procs
from test_suite_on_lab import run_suite, verdicts

pytestmark = pytest.mark.lab

CHECK = "test_gang_scheduling.py"
SCHEDULER, CONTROLLER = "scheduler-plugins-scheduler", "scheduler-plugins-controller"
# Coscheduling alone: no other gang scheduler, no real node (kwok only).
SHAPE = LabShape(coscheduling=True, workload_api=False, kueue=False, real_nodes=0)
BOUND = "TestGangScheduling/GangBoundTogether"
UNBOUND = "TestGangScheduling/OversizedGangStaysUnbound"
OTHERS = ("volcano", "kueue", "kai", "workload-api")


def _progress(message: str) -> None:
    sys.stderr.write(f"[lab] {message}\n")


def _up(tmp_path_factory: pytest.TempPathFactory, name: str,
        shape: LabShape) -> tuple[Lab, LabInfo]:
    lab = Lab(tmp_path_factory.mktemp(name))
    started = time.monotonic()
    info = lab.up(shape, _progress, owner_pid=os.getpid())
    _progress(f"{name} lab up in {time.monotonic() - started:.1f} s")
    return lab, info


@pytest.fixture(scope="module")
def cosched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, LabInfo]]:
    lab, info = _up(tmp_path_factory, "lab-coscheduling", SHAPE)
    yield lab, info
    lab.down(lambda m: None)


def _gang(info: LabInfo, report: Path) -> dict[str, Any]:
    started = time.monotonic()
    proc = run_suite(info, report, files=[CHECK], timeout=600)
    _progress(f"{CHECK}: {time.monotonic() - started:.0f} s, exit {proc.returncode}")
    assert (report / "verdicts.json").is_file(), proc.stdout[-3000:] + proc.stderr[-1500:]
    return verdicts(report)["gang_scheduling"]


def _checks(verdict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The checks by junit name (``Name/solution``)."""
    return {c["junit_name"]: c for c in verdict["checks"]}


def _evidence(report: Path, check: dict[str, Any]) -> str:
    data = json.loads((report / check["evidence_file"]).read_text())
    return "\n".join(f"{s.get('command') or ''}\n{s.get('output') or ''}" for s in data["steps"])


def test_coscheduling_alone_implements_gang_scheduling(cosched, tmp_path):
    _lab, info = cosched
    report = tmp_path / "r"
    v = _gang(info, report)
    checks = _checks(v)
    assert v["status"] == "Implemented", v
    assert v["reason"].startswith("All 2 essential checks passed with solution coscheduling"), v
    for half in (BOUND, UNBOUND):
        assert checks[f"{half}/coscheduling"]["outcome"] == "passed", checks
        for other in OTHERS:
            assert checks[f"{half}/{other}"]["outcome"] == "not applicable", checks
    unbound = _evidence(report, checks[f"{UNBOUND}/coscheduling"])
    # Found by its lease, held alive by the running scheduler.
    assert ("schedulerName scheduler-plugins-scheduler: scheduler-plugins runs as a second "
            "scheduler: its leader-election Lease scheduler-plugins/scheduler-plugins-scheduler"
            in unbound), unbound
    # The plugin's own words on the member it could not place, and the PodGroup controller's
    # status (it runs too).
    # Which of the plugin's two PostFilter rejections a member gets depends on which member
    # the scheduler tried first and when: either is Coscheduling refusing a partial gang.
    assert (("gets rejected due to Pod gang-big-" in unbound
            and "unschedulable even after PostFilter" in unbound)
            or "optimistic rejection in PostFilter" in unbound), unbound
    assert "occupiedBy:" in unbound, unbound


def test_scheduler_stopped_fails_naming_it(cosched, tmp_path):
    lab, info = cosched
    lab.stop_component(SCHEDULER)
    try:
        v = _gang(info, tmp_path / "r")
        checks = _checks(v)
        assert v["status"] == "Not Implemented", v
        why = ("the scheduler-plugins scheduler scheduler-plugins-scheduler is not running: "
               "nobody holds its leader-election Lease scheduler-plugins/"
               "scheduler-plugins-scheduler (released: the scheduler stopped)")
        for half in (BOUND, UNBOUND):
            check = checks[f"{half}/coscheduling"]
            assert (check["outcome"], check["reason"]) == ("failed", why), check
    finally:
        lab.start_component(SCHEDULER)


def test_down_stops_both_processes_and_frees_their_ports(cosched):
    """A later command (a fresh Lab on the state dir, as after a killed session) finds both by
    their pid files and command lines and stops them."""
    lab, info = cosched
    status = lab.status()
    pids = [status.components[n].pid for n in (SCHEDULER, CONTROLLER)]
    assert all(pid is not None and procs.alive(pid) for pid in pids), status
    stopped = Lab(lab.state_dir).down(lambda m: None)
    assert {SCHEDULER, CONTROLLER} <= set(stopped)
    assert not any(procs.alive(pid) for pid in pids if pid is not None)
    assert not any(procs.port_bound(info.ports[n]) for n in (SCHEDULER, CONTROLLER))


def test_second_scheduler_without_the_plugin_fails_the_oversized_gang(tmp_path_factory,
                                                                     tmp_path):
    lab, info = _up(tmp_path_factory, "lab-coscheduling-no-plugin",
                    SHAPE.replace(coscheduling_plugin=False))
    try:
        v = _gang(info, tmp_path / "r")
    finally:
        lab.down(lambda m: None)
    checks = _checks(v)
    # A plain scheduler binds a gang that fits (it never waits for one)...
    assert checks[f"{BOUND}/coscheduling"]["outcome"] == "passed", checks
    # ...and binds the member that fits of a gang that does not: half the requirement.
    unbound = checks[f"{UNBOUND}/coscheduling"]
    assert unbound["outcome"] == "failed", unbound
    assert unbound["reason"].startswith(
        "no member of the 2-member gang may be bound while aic-gpu-0 has 1 free nvidia.com/gpu: "
        "violated while observing Pods (gang=gang-big)"), unbound
    # The member it bound, by the pod's node (the scheduler's event may not be recorded yet).
    assert re.search(r"gang-big-\w+: \w+ on aic-gpu-0", unbound["reason"]), unbound
    assert v["status"] == "Partially Implemented", (v["status"], v["reason"])
    assert v["reason"].startswith(
        "1 of 2 essential checks passed; 'A gang one member larger than free capacity stays "
        "entirely unbound, with a reason.' failed: no member of the 2-member gang may be "
        "bound while aic-gpu-0"), v["reason"]
