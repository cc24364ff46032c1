"""The real gang_scheduling check against the fake API server, with simulated gang schedulers
(gangsim): each solution is recognised by its own APIs, each half fails when the scheduler
binds part of a gang, and one solution that passes both halves decides while a broken one
is only a note."""

from __future__ import annotations

import json
from typing import Any

import gangsim
import pytest
from fakeapi import FakeApiServer
from test_profile_detection import gpu_node

from conftest import ROOT, base_args
from pytest_aiconformance.verdicts import sentence

CHECK = ROOT / "conformance_tests" / "test_gang_scheduling.py"
ORDER = ["volcano", "kueue", "kai", "coscheduling"]  # the check's parameters, in order
BOUND = "A gang of 2 members is bound together and completes."
UNBOUND = "A gang one member larger than free capacity stays entirely unbound, with a reason."
GPU = "nvidia.com/gpu"


def run(aic: pytest.Pytester, fake: FakeApiServer,
        *solutions: tuple[str, str]) -> dict[str, Any]:
    """Run the check file on one node with 2 free GPUs, the solutions simulated with their
    policies; returns the requirement's verdict, its checks by (function, solution), and
    every object the check created (cluster-scoped ones are gone after its teardown)."""
    fake.cluster.add("nodes", gpu_node("gpu-1", {GPU: "2"}))
    created: list[tuple[str, dict[str, Any]]] = []
    fake.cluster.reactors.append(lambda _, key, obj: created.append((key, obj)))
    for solution, policy in solutions:
        gangsim.install(fake.cluster, solution, policy)
    result = aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", "--aic-timeout-scale", "0.002",
                   "--aic-keep-namespaces", "always", str(CHECK)))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    verdict: dict[str, Any] = next(r for r in data["requirements"]
                                   if r["id"] == "gang_scheduling")
    verdict["by"] = {(c["nodeid"].split("::")[1].split("[")[0], c.get("solution", "")): c
                     for c in verdict["checks"]}
    verdict["stdout"] = result.stdout.str()
    verdict["created"] = created
    return verdict


def namespace(fake: FakeApiServer, half: str, solution: str) -> str:
    """The namespace the check gave this half of this solution (created in parameter order,
    the positive halves first)."""
    n = ORDER.index(solution) + (1 if half == "bound" else 5)
    prefix = "aic-gang-bound-together-" if half == "bound" else "aic-oversized-gang-stays-unbound-"
    [name] = [ns for ns in fake.cluster.objects["namespaces"]
              if ns.startswith(prefix) and ns.endswith(f"-{n}")]
    return name


def seen(fake: FakeApiServer, ns: str) -> str:
    """The members as the check's wait describes them (namespace/name: phase, by name)."""
    pods = sorted(p["metadata"]["name"] for p in fake.cluster.objects["pods"].values()
                  if p["metadata"]["namespace"] == ns)
    return "; ".join(f"{ns}/{name}: {fake.cluster.objects['pods'][name]['status']['phase']}"
                     for name in pods)


def phases(fake: FakeApiServer, ns: str) -> list[str]:
    return sorted(p["status"]["phase"] for p in fake.cluster.objects["pods"].values()
                  if p["metadata"]["namespace"] == ns)


def not_installed(solution: str, installed: str) -> str:
    return f"Solution {solution} is not applicable: {solution} is not installed ({installed} is)."


def bound_while_short(fake: FakeApiServer, solution: str, members: int, room: int) -> str:
    """The negative half's failure when members were bound although the gang cannot fit."""
    ns = namespace(fake, "unbound", solution)
    return (f"no member of the {members}-member gang may be bound while gpu-1 has {room} free "
            f"{GPU}: violated while observing Pods (gang=gang-big) in {ns}; saw: "
            f"{seen(fake, ns)}")


@pytest.mark.parametrize("solution", ORDER)
def test_a_gang_scheduler_proves_it_with_both_halves(aic: pytest.Pytester, fake: FakeApiServer,
                                                     solution: str) -> None:
    """Each solution is found by its own APIs (the others are not applicable), binds the gang
    of 2 together and holds the gang of 3 out of a node with 2 free, saying why."""
    verdict = run(aic, fake, (solution, gangsim.GANG))
    assert verdict["status"] == "Implemented", verdict["stdout"]
    assert verdict["reason"] == (f"All 2 essential checks passed with solution {solution}: "
                                 f"{BOUND}; {UNBOUND}")
    assert verdict["notes"] == [not_installed(s, solution) for s in sorted(ORDER)
                                if s != solution]
    assert phases(fake, namespace(fake, "bound", solution)) == ["Succeeded", "Succeeded"]
    # Kueue keeps the Job suspended: its members are never created
    assert phases(fake, namespace(fake, "unbound", solution)) == (
        [] if solution == "kueue" else ["Pending"] * 3)


@pytest.mark.parametrize("solution", ORDER)
def test_members_bound_although_the_gang_cannot_fit_fail_the_negative(
        aic: pytest.Pytester, fake: FakeApiServer, solution: str) -> None:
    """A scheduler without all-or-nothing binds the 2 members that fit: the negative fails
    naming the bound members. For Kueue this is admission by quota alone: the check's
    ClusterQueue gives quota for the whole gang, so only Topology-Aware Scheduling can keep it
    out, and the negative cannot pass by construction."""
    verdict = run(aic, fake, (solution, gangsim.GREEDY))
    unbound = verdict["by"][("test_oversized_gang_stays_unbound", solution)]
    assert verdict["by"][("test_gang_bound_together", solution)]["outcome"] == "passed"
    assert unbound["outcome"] == "failed"
    assert unbound["reason"] == bound_while_short(fake, solution, 3, 2)
    assert phases(fake, namespace(fake, "unbound", solution)) == ["Pending", "Running",
                                                                  "Running"]
    assert verdict["status"] == "Partially Implemented"
    assert verdict["reason"] == sentence(
        f"1 of 2 essential checks passed; '{UNBOUND}' failed: {unbound['reason']}")
    if solution == "kueue":
        [cq] = [o for key, o in verdict["created"] if key == "clusterqueues.kueue.x-k8s.io"
                and o["metadata"]["name"] == namespace(fake, "unbound", "kueue")]
        [flavor] = cq["spec"]["resourceGroups"][0]["flavors"]
        assert flavor["resources"][0] == {"name": GPU, "nominalQuota": 3}


@pytest.mark.parametrize("solution", ["volcano", "kai", "coscheduling"])
def test_a_partly_bound_gang_fails_both_halves(aic: pytest.Pytester, fake: FakeApiServer,
                                               solution: str) -> None:
    """A broken gang scheduler that binds one member of each gang: the positive times out with
    one member running, the negative (sized to the one GPU left) sees it bind a member; the
    only solution installed is broken, so the requirement is Not Implemented."""
    verdict = run(aic, fake, (solution, gangsim.ONE))
    bound = verdict["by"][("test_gang_bound_together", solution)]
    unbound = verdict["by"][("test_oversized_gang_stays_unbound", solution)]
    ns = namespace(fake, "bound", solution)
    assert bound["outcome"] == "failed"
    assert bound["reason"] == (
        "timed out after 0s waiting for all 2 gang members to be bound and complete (Pods "
        f"(gang=gang-ok) in {ns}); last seen: {seen(fake, ns)}")
    assert phases(fake, ns) == ["Pending", "Running"]
    assert unbound["outcome"] == "failed"
    assert unbound["reason"] == bound_while_short(fake, solution, 2, 1)
    assert verdict["status"] == "Not Implemented"
    assert verdict["reason"] == sentence(f"'{BOUND}' failed: {bound['reason']}")
    assert verdict["notes"][0] == sentence(
        f"Essential check '{UNBOUND}' failed: {unbound['reason']}")


def test_kueue_admitting_a_gang_the_node_cannot_take_fails_the_negative(
        aic: pytest.Pytester, fake: FakeApiServer) -> None:
    """Kueue admits the oversized Job by quota and its members are created, none bound yet:
    the admission itself is the failure, whatever the node does later."""
    verdict = run(aic, fake, ("kueue", gangsim.ADMIT_ONLY))
    unbound = verdict["by"][("test_oversized_gang_stays_unbound", "kueue")]
    assert unbound["outcome"] == "failed"
    assert unbound["reason"] == ("Kueue admitted the Job although the node cannot take the "
                                 "whole gang")
    assert phases(fake, namespace(fake, "unbound", "kueue")) == ["Pending"] * 3
    assert verdict["status"] == "Partially Implemented"


def test_one_solution_passing_both_halves_decides_and_a_broken_one_is_a_note(
        aic: pytest.Pytester, fake: FakeApiServer) -> None:
    """KAI holds the gang out, Coscheduling (checked after it) binds what fits: Implemented
    with KAI, Coscheduling's failure named in the notes, not a downgrade."""
    verdict = run(aic, fake, ("kai", gangsim.GANG), ("coscheduling", gangsim.GREEDY))
    unbound = verdict["by"][("test_oversized_gang_stays_unbound", "coscheduling")]
    assert unbound["outcome"] == "failed"
    assert unbound["reason"] == bound_while_short(fake, "coscheduling", 3, 2)
    assert verdict["status"] == "Implemented", verdict["stdout"]
    assert verdict["reason"] == f"All 2 essential checks passed with solution kai: {BOUND}; " \
        f"{UNBOUND}"
    assert verdict["notes"] == [
        sentence(f"Solution coscheduling: '{UNBOUND}' failed: {unbound['reason']}"),
        not_installed("kueue", "kai, coscheduling"),
        not_installed("volcano", "kai, coscheduling"),
    ]
    assert "MUST requirements not Implemented" not in verdict["stdout"]


@pytest.mark.parametrize(("solution", "reason"), [
    ("volcano", "PodGroup gives no unschedulable reason: no conditions"),
    ("kai", "PodGroup gives no unschedulable reason: no schedulingConditions"),
    ("coscheduling", "no member says why it is not scheduled (PodScheduled=False, "
                     "Unschedulable)"),
], ids=["volcano", "kai", "coscheduling"])
def test_a_gang_held_out_without_the_schedulers_reason_fails_the_negative(
        aic: pytest.Pytester, fake: FakeApiServer, solution: str, reason: str) -> None:
    """Unbound members alone could be any scheduler that is down; the negative also needs
    the scheduler's own words on why the gang waits."""
    verdict = run(aic, fake, (solution, gangsim.SILENT))
    unbound = verdict["by"][("test_oversized_gang_stays_unbound", solution)]
    assert verdict["by"][("test_gang_bound_together", solution)]["outcome"] == "passed"
    assert (unbound["outcome"], unbound["reason"]) == ("failed", reason)
    assert phases(fake, namespace(fake, "unbound", solution)) == ["Pending"] * 3
    assert verdict["status"] == "Partially Implemented"
