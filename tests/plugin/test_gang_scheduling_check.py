"""The real gang_scheduling check against the fake API server, with simulated gang schedulers
(gangsim): each solution is recognised by its own APIs, each half fails when the scheduler
binds part of a gang, and one solution that passes both halves decides while a broken one
is only a note. Where no node has a free GPU (GPUs only through DRA, or all busy) the
oversized gang is sized in CPU, and the same holds."""

from __future__ import annotations

import json
from typing import Any

import gangsim
import pytest
from fakeapi import FakeApiServer
from test_profile_detection import gpu_node

from conftest import ROOT, base_args
from pytest_aiconformance.verdicts.rules import sentence

CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_gang_scheduling.py"
ORDER = ["volcano", "kueue", "kai", "coscheduling", "workload-api"]  # the check's parameters
BOUND = "A gang of 2 members is bound together and completes."
UNBOUND = "A gang one member larger than free capacity stays entirely unbound, with a reason."
GPU = "nvidia.com/gpu"


def ready(node: dict[str, Any]) -> dict[str, Any]:
    """A node the check may pin a CPU-only gang to (Ready, no taint)."""
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return node


def busy_pod() -> dict[str, Any]:
    """A running pod of someone else's holding both GPUs of gpu-1 and 4 of its 32 CPUs."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "trainer", "namespace": "team-a"},
            "spec": {"nodeName": "gpu-1", "containers": [{
                "name": "main", "resources": {"requests": {"cpu": "4"},
                                              "limits": {GPU: "2"}}}]},
            "status": {"phase": "Running"}}


def no_free_gpu(fake: FakeApiServer, node: str) -> None:
    """gpu-1 as a DRA-only node (no extended resource) or as a node whose GPUs are all busy."""
    if node == "dra-only":
        fake.cluster.add("nodes", ready(gpu_node("gpu-1", labels={
            "nvidia.com/gpu.deploy.device-plugin": "false"})))
    else:
        fake.cluster.add("nodes", ready(gpu_node("gpu-1", {GPU: "2"})))
        fake.cluster.add("pods", busy_pod())


# what the CPU-sized negative says of gpu-1 (32 CPUs; 4 of them requested on the busy node)
CPU_SIZING = {
    "dra-only": "no node has a free accelerator (extended resource): a CPU-sized gang of 2 "
                "members on gpu-1, each requesting 16001m CPU, more than half of the 32000m it "
                "has free (allocatable minus what its pods request): each member would fit "
                "alone, the gang as a whole cannot",
    "busy": "no node has a free nvidia.com/gpu: a CPU-sized gang of 2 members on gpu-1, each "
            "requesting 14001m CPU, more than half of the 28000m it has free (allocatable "
            "minus what its pods request): each member would fit alone, the gang as a whole "
            "cannot",
}


def run(aic: pytest.Pytester, fake: FakeApiServer, *solutions: tuple[str, str],
        node: str = "gpu") -> dict[str, Any]:
    """Run the check file on one node, gpu-1 (`gpu`: 2 free GPUs; `dra-only` or `busy`: no
    free GPU, see `no_free_gpu`), the solutions simulated with their policies; returns the
    requirement's verdict, its checks by (function, solution), and every object the check
    created (cluster-scoped ones are gone after its teardown)."""
    if node == "gpu":
        fake.cluster.add("nodes", gpu_node("gpu-1", {GPU: "2"}))
    else:
        no_free_gpu(fake, node)
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
    verdict["evidence"] = {key: (aic.path / "report" / c["evidence_file"]).read_text()
                           for key, c in verdict["by"].items() if c.get("evidence_file")}
    verdict["stdout"] = result.stdout.str()
    verdict["created"] = created
    return verdict


def namespace(fake: FakeApiServer, half: str, solution: str) -> str:
    """The namespace the check gave this half of this solution (created in parameter order,
    the positive halves first)."""
    n = ORDER.index(solution) + (1 if half == "bound" else len(ORDER) + 1)
    prefix = "aic-gang-bound-together-" if half == "bound" else "aic-oversized-gang-stays-unbound-"
    [name] = [ns for ns in fake.cluster.objects["namespaces"]
              if ns.startswith(prefix) and ns.endswith(f"-{n}")]
    return name


def seen(fake: FakeApiServer, ns: str) -> str:
    """The members as the check's wait describes them (namespace/name: phase, and the node of
    a bound one, by name)."""
    pods = {p["metadata"]["name"]: p for p in fake.cluster.objects["pods"].values()
            if p["metadata"]["namespace"] == ns}

    def one(name: str) -> str:
        pod = pods[name]
        node = pod["spec"].get("nodeName")
        return f"{ns}/{name}: {pod['status']['phase']}" + (f" on {node}" if node else "")

    return "; ".join(one(name) for name in sorted(pods))


def phases(fake: FakeApiServer, ns: str) -> list[str]:
    return sorted(p["status"]["phase"] for p in fake.cluster.objects["pods"].values()
                  if p["metadata"]["namespace"] == ns)


def not_installed(solution: str, installed: str) -> str:
    return f"Solution {solution} is not applicable: {solution} is not installed ({installed} is)."


def bound_while_short(fake: FakeApiServer, solution: str, members: int, room: int | str) -> str:
    """The negative half's failure when members were bound although the gang cannot fit
    (`room`: free GPUs of gpu-1, or what it had free as the check says it)."""
    ns = namespace(fake, "unbound", solution)
    free = f"{room} free {GPU}" if isinstance(room, int) else room
    return (f"no member of the {members}-member gang may be bound while gpu-1 has {free}: "
            f"violated while observing Pods (gang=gang-big) in {ns}; saw: {seen(fake, ns)}")


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


@pytest.mark.parametrize("solution", ["volcano", "kai", "coscheduling", "workload-api"])
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
        not_installed("workload-api", "kai, coscheduling"),
    ]
    assert "MUST requirements not Implemented" not in verdict["stdout"]


@pytest.mark.parametrize(("solution", "reason"), [
    ("volcano", "PodGroup gives no unschedulable reason: no conditions"),
    ("kai", "PodGroup gives no unschedulable reason: no schedulingConditions"),
    ("coscheduling", "no member says why it is not scheduled (PodScheduled=False, "
                     "Unschedulable)"),
    ("workload-api", "kube-scheduler gives no reason for the gang it holds (PodScheduled=False "
                     "Unschedulable on a member)"),
], ids=["volcano", "kai", "coscheduling", "workload-api"])
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


# --- no free GPU: the oversized gang sized in CPU ---------------------------------------------

@pytest.mark.parametrize("node", ["dra-only", "busy"])
@pytest.mark.parametrize("solution", ORDER)
def test_without_a_free_gpu_the_oversized_gang_is_sized_in_cpu(
        aic: pytest.Pytester, fake: FakeApiServer, solution: str, node: str) -> None:
    """GPUs only through DRA, or every GPU busy: the negative is no longer "not observable"
    but a gang of 2 each asking for more than half of gpu-1's free CPU; a gang scheduler holds
    it out, saying why, and proves the requirement as with GPUs."""
    verdict = run(aic, fake, (solution, gangsim.GANG), node=node)
    key = ("test_oversized_gang_stays_unbound", solution)
    assert verdict["by"][key]["outcome"] == "passed", verdict["stdout"]
    assert verdict["status"] == "Implemented", verdict["stdout"]
    assert verdict["reason"] == (f"All 2 essential checks passed with solution {solution}: "
                                 f"{BOUND}; {UNBOUND}")
    assert CPU_SIZING[node] in verdict["evidence"][key]
    ns = namespace(fake, "unbound", solution)
    assert phases(fake, ns) == ([] if solution == "kueue" else ["Pending"] * 2)
    cpu = {"dra-only": "16001m", "busy": "14001m"}[node]
    members = [c["resources"] for _, o in verdict["created"] for c in gangsim.containers(o)
               if o["metadata"].get("namespace") == ns]
    assert members, verdict["created"]
    assert all(r == {"requests": {"cpu": cpu}} for r in members), members


@pytest.mark.parametrize(("solution", "node"), [
    ("volcano", "dra-only"), ("kueue", "busy"), ("kai", "dra-only"), ("coscheduling", "busy"),
    ("workload-api", "dra-only"), ("workload-api", "busy")])
def test_a_greedy_scheduler_fails_the_cpu_sized_gang(
        aic: pytest.Pytester, fake: FakeApiServer, solution: str, node: str) -> None:
    """Without all-or-nothing the node takes the one member that fits (Kueue: admitted by
    quota, then bound by the node): the CPU-sized negative fails naming it."""
    verdict = run(aic, fake, (solution, gangsim.GREEDY), node=node)
    unbound = verdict["by"][("test_oversized_gang_stays_unbound", solution)]
    assert verdict["by"][("test_gang_bound_together", solution)]["outcome"] == "passed"
    room = {"dra-only": "32000m free cpu", "busy": "28000m free cpu"}[node]
    assert (unbound["outcome"], unbound["reason"]) == (
        "failed", bound_while_short(fake, solution, 2, room))
    assert phases(fake, namespace(fake, "unbound", solution)) == ["Pending", "Running"]
    assert verdict["status"] == "Partially Implemented"


def test_kueue_quota_covers_a_cpu_sized_gang_larger_than_100_cores(
        aic: pytest.Pytester, fake: FakeApiServer) -> None:
    """On a node with 256 free CPUs each member asks for 128001m: the ClusterQueue's CPU quota
    covers both, so only Topology-Aware Scheduling can keep the gang out (and does)."""
    node = ready(gpu_node("big-1", {"cpu": "256"}))
    fake.cluster.add("nodes", node)
    gangsim.install(fake.cluster, "kueue", gangsim.GANG)
    created: list[tuple[str, dict[str, Any]]] = []
    fake.cluster.reactors.append(lambda _, key, obj: created.append((key, obj)))
    aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", "--aic-timeout-scale", "0.002",
                   "--aic-keep-namespaces", "always", "-k", "oversized and kueue", str(CHECK)))
    verdict = json.loads((aic.path / "report" / "verdicts.json").read_text())
    [check] = [c for r in verdict["requirements"] for c in r["checks"]
               if "oversized" in c["nodeid"]]
    assert check["outcome"] == "passed", check
    [cq] = [o for key, o in created if key == "clusterqueues.kueue.x-k8s.io"]
    assert cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"] == [
        {"name": "cpu", "nominalQuota": "256002m"}]
    [wl] = fake.cluster.objects["workloads.kueue.x-k8s.io"].values()
    assert "doesn't allow to fit any of 2 pod(s)" in wl["status"]["conditions"][0]["message"]


# --- the Workload API -------------------------------------------------------------------------

def test_the_workload_api_of_1_36_is_recognised_and_its_podgroup_read(
        aic: pytest.Pytester, fake: FakeApiServer) -> None:
    """A 1.36 server serves scheduling.k8s.io/v1alpha2 (Workload and PodGroup) instead of
    v1alpha1: the check builds the PodGroup, its pods name it in schedulingGroup, and the
    negative quotes the PodGroup's PodGroupScheduled=False besides the member's refusal."""
    verdict = run(aic, fake, ("workload-api-v1alpha2", gangsim.GANG))
    assert verdict["status"] == "Implemented", verdict["stdout"]
    assert verdict["reason"].startswith("All 2 essential checks passed with solution "
                                        "workload-api")
    kinds = sorted((key, o["apiVersion"]) for key, o in verdict["created"]
                   if key.endswith(".scheduling.k8s.io"))
    assert kinds == [("podgroups.scheduling.k8s.io", "scheduling.k8s.io/v1alpha2")] * 2 + [
        ("workloads.scheduling.k8s.io", "scheduling.k8s.io/v1alpha2")] * 2
    evidence = verdict["evidence"][("test_oversized_gang_stays_unbound", "workload-api")]
    assert "kube-scheduler's own reasons: PodGroupScheduled Unschedulable 1 of 3 pods " \
           "cannot be placed: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu." in evidence
    assert "kubectl get workloads.scheduling.k8s.io/gang-big " \
           "podgroups.scheduling.k8s.io/gang-big -n" in evidence
    pods = [o for key, o in verdict["created"] if key == "jobs.batch"]
    assert {o["spec"]["template"]["spec"]["schedulingGroup"]["podGroupName"] for o in pods} == {
        "gang-ok", "gang-big"}


def test_the_workload_api_holds_the_gang_at_permit_and_quotes_the_refused_member(
        aic: pytest.Pytester, fake: FakeApiServer) -> None:
    """1.35: the two members that fit wait at Permit without a condition, the third says
    Insufficient; nothing is bound, and the Workload shows the gang of 3."""
    verdict = run(aic, fake, ("workload-api", gangsim.GANG))
    key = ("test_oversized_gang_stays_unbound", "workload-api")
    assert verdict["by"][key]["outcome"] == "passed", verdict["stdout"]
    evidence = verdict["evidence"][key]
    assert "a member without one is held at the GangScheduling plugin's Permit" in evidence
    assert "Insufficient nvidia.com/gpu" in evidence
    [workload] = [o for k, o in verdict["created"] if k == "workloads.scheduling.k8s.io"
                  and o["metadata"]["name"] == "gang-big"]
    assert workload["spec"] == {"podGroups": [{"name": "workers",
                                               "policy": {"gang": {"minCount": 3}}}]}
    ns = namespace(fake, "unbound", "workload-api")
    conditions = sorted(len(p["status"].get("conditions", []))
                        for p in fake.cluster.objects["pods"].values()
                        if p["metadata"]["namespace"] == ns)
    assert conditions == [0, 0, 1]


def test_an_api_server_dropping_the_pods_workload_reference_fails_both_halves(
        aic: pytest.Pytester, fake: FakeApiServer) -> None:
    """The Workload kind is served but the members arrive without their workloadRef (an API
    server without GenericWorkload drops it) and a plain scheduler binds them: the positive
    fails on membership although its pods completed, the negative on the bound members."""
    verdict = run(aic, fake, ("workload-api", gangsim.DROPPED))
    bound = verdict["by"][("test_gang_bound_together", "workload-api")]
    unbound = verdict["by"][("test_oversized_gang_stays_unbound", "workload-api")]
    assert bound["outcome"] == "failed"
    assert bound["reason"] == ("members joined [''], not gang-ok/workers (an API server without "
                               "the GenericWorkload feature gate drops the pods' reference)")
    assert unbound["outcome"] == "failed"
    assert unbound["reason"] == bound_while_short(fake, "workload-api", 3, 2)
    assert verdict["status"] == "Not Implemented"
