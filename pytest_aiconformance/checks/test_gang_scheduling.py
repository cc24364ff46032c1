"""gang_scheduling: a gang scheduler binds every member of a job together, or none.

Judged per solution (Volcano, Kueue, KAI Scheduler, scheduler-plugins Coscheduling, and
Kubernetes' own Workload API gang policy in kube-scheduler): each has two halves,
parametrized by `scheduler` and marked `solution="scheduler"`, and any one solution that
passes both proves the requirement (the others' failures become notes). A solution that is
not installed (its APIs not served) is not applicable; none installed at all is the failure.

- Bound together: a gang of 2 members that fits (one accelerator each, on a node with 2 free;
  else a CPU-only gang) is bound and completes, and the scheduler's own objects show it as one
  gang of 2.
- Stays unbound: a gang one member larger than the free accelerators of a node, pinned to it,
  stays entirely unbound for a whole observation window although each member would fit
  alone, and the scheduler says why in its own words. Where no node has a free extended
  resource (GPUs only through DRA, or every GPU busy) the gang is sized in CPU instead: 2
  members on a schedulable node, each requesting more than half of its free CPU.

Kueue's gang is an admission decision, so its negative gives the ClusterQueue quota for the
whole gang: quota never blocks it, and with a quota-only admission Kueue would admit the Job
and the node would take the members that fit (the check fails). Kueue holds the gang out
only through Topology-Aware Scheduling, which admits all members onto the node's free
capacity or none (required topology at the node level).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, Protocol

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    AcceleratorProfile,
    ApiError,
    ClusterInfo,
    EvidenceRecorder,
    Kube,
    OperatorManager,
    RunContext,
    Settings,
    Target,
    allocations,
    condition_true,
    gang_scheduling,
    get_table,
    not_applicable,
    not_observable,
    table,
    watch_until,
    workloads,
)

REQ = "gang_scheduling"
G = gang_scheduling
# The solutions come from the one registry, G.SOLUTIONS; each has its runner below (`runs`).
SCHEDULERS = tuple(s.name for s in G.SOLUTIONS)
Obj = dict[str, Any]
Timeout = Callable[[float], float]


class Runner(Protocol):
    """One solution's half of a check: create its gang, then judge it (fits: bound together
    and completed; not: held out entirely, with the scheduler's reason)."""

    def __call__(self, kube: Kube, run_context: RunContext, namespace: str,
                 evidence: EvidenceRecorder, timeout: Timeout, plan: G.GangPlan, image: str,
                 *, fits: bool) -> None: ...


RUN: dict[str, Runner] = {}


def runs(solution: str) -> Callable[[Runner], Runner]:
    """Register the runner of a solution of G.SOLUTIONS (a name it lacks fails at import)."""
    name = G.BY_NAME[solution].name

    def register(runner: Runner) -> Runner:
        RUN[name] = runner
        return runner
    return register


def present(kube: Kube, scheduler: str, operators: OperatorManager | None = None) -> bool:
    """Whether the solution's APIs are served; with --aic-install, G.INSTALLED_WHEN_NONE is
    installed when no gang scheduler is present at all."""
    if operators is not None and operators.install and not any(
            present(kube, s) for s in SCHEDULERS):
        operators.ensure(G.BY_NAME[G.INSTALLED_WHEN_NONE].operator)
    return G.BY_NAME[scheduler].served(kube.serves) is not None


def require_scheduler(kube: Kube, scheduler: str, operators: OperatorManager) -> None:
    """This solution's check is not applicable when another gang scheduler is installed; with
    none installed at all, gang scheduling is missing and the check fails."""
    if present(kube, scheduler, operators):
        return
    others = [s for s in SCHEDULERS if s != scheduler and present(kube, s)]
    if others:
        not_applicable(f"{scheduler} is not installed ({', '.join(others)} is)")
    raise AssertionError(G.none_found())


def free_units(kube: Kube, cluster_info: ClusterInfo, profile: AcceleratorProfile
               ) -> tuple[str, dict[str, int]]:
    """The extended resource gangs are sized in, and its free units per node; ("", {}) when
    no node advertises one (a CPU-only or DRA-only cluster)."""
    try:
        alloc = allocations.choose_allocation(cluster_info, profile, "device-plugin")
    except AssertionError:
        return "", {}
    return alloc.resource, allocations.free_per_node(kube, cluster_info, alloc.resource)


def bound_plan(kube: Kube, cluster_info: ClusterInfo, aic_settings: Settings,
               evidence: EvidenceRecorder) -> G.GangPlan:
    resource, free = free_units(kube, cluster_info, aic_settings.profile)
    tolerations = workloads.pod("x", "x", [])["spec"]["tolerations"]
    nodes = G.schedulable_nodes(kube.items("v1", "Node"), tolerations)
    plan = G.bound_together_plan(free, resource, nodes)
    if plan is None:
        not_observable(f"no node has 2 free {resource or 'accelerators'} and no node takes a "
                       "CPU-only gang (none is Ready, uncordoned and untainted for it)")
    evidence.note(plan.why)
    return plan


def oversized_plan(kube: Kube, cluster_info: ClusterInfo, aic_settings: Settings,
                   evidence: EvidenceRecorder) -> G.GangPlan:
    """One member above a node's free accelerators; where none is free, sized in CPU on a
    schedulable node (the requirement is about the all-or-nothing decision, not GPUs)."""
    resource, free = free_units(kube, cluster_info, aic_settings.profile)
    plan = G.oversized_plan(free, resource)
    if plan is None:
        tolerations = workloads.pod("x", "x", [])["spec"]["tolerations"]
        nodes = kube.items("v1", "Node")
        pods = kube.items("v1", "Pod", field_selector="status.phase!=Succeeded,"
                          "status.phase!=Failed")
        free_cpu = G.free_cpu(nodes, pods, G.schedulable_nodes(nodes, tolerations))
        evidence.note("free CPU per schedulable node (allocatable minus the requests of its "
                      "non-terminated pods): " + (", ".join(
                          f"{n} {m}m" for n, m in sorted(free_cpu.items())) or "no node"))
        plan = G.oversized_cpu_plan(free_cpu, resource)
    if plan is None:
        not_observable(f"no node has a free {resource or 'accelerator (extended resource)'} "
                       "and no schedulable node has CPU free for a CPU-sized gang")
    evidence.note(plan.why)
    return plan


def pods_table(pods: dict[str, Obj]) -> str:
    return get_table(sorted(pods.values(), key=lambda o: o["metadata"]["name"]), POD_WIDE)


def observe_unbound(kube: Kube, namespace: str, name: str, plan: G.GangPlan,
                    evidence: EvidenceRecorder, timeout: Timeout, *,
                    created: bool = True) -> dict[str, Obj]:
    """The observation window: no member may be bound while the gang cannot fit (after its
    members exist, when the workload creates them at once)."""
    target = Target("v1", "Pod", namespace, label_selector=f"{G.GANG_LABEL}={name}")
    if created:
        watch_until(kube, target, lambda objs: len(objs) == plan.members, timeout=timeout(60),
                    expected=f"all {plan.members} member pods to be created")
    window = timeout(20)
    pods = watch_until(kube, target, lambda objs: bool(G.bound_members(objs)), timeout=window,
                       invert=True, expected=f"no member of the {plan.members}-member gang may be "
                       f"bound while {plan.node} has {plan.room}")
    evidence.command(f"kubectl get pods -n {namespace} -o wide  # after a {window:.0f}s window",
                     pods_table(pods) if pods else "No resources found")
    return pods


def wait_completed(kube: Kube, namespace: str, name: str, plan: G.GangPlan,
                   evidence: EvidenceRecorder, timeout: Timeout) -> dict[str, Obj]:
    pods = watch_until(
        kube, Target("v1", "Pod", namespace, label_selector=f"{G.GANG_LABEL}={name}"),
        lambda objs: G.all_completed(objs, plan.members), timeout=timeout(180),
        expected=f"all {plan.members} gang members to be bound and complete",
    )
    evidence.command(f"kubectl get pods -n {namespace} -o wide", pods_table(pods))
    nodes = {p["spec"].get("nodeName") for p in pods.values()}
    assert nodes == {plan.node}, f"members ran on {sorted(map(str, nodes))}, not {plan.node}"
    return pods


def settle(kube: Kube, namespace: str, name: str, plan: G.GangPlan,
           evidence: EvidenceRecorder, timeout: Timeout, *, fits: bool) -> dict[str, Obj]:
    """The half's outcome for gangs whose members exist at once: a fitting gang completes,
    an oversized one stays unbound for the whole window."""
    if fits:
        return wait_completed(kube, namespace, name, plan, evidence, timeout)
    return observe_unbound(kube, namespace, name, plan, evidence, timeout)


# Supporting: served APIs show a scheduler is installed, not that it schedules gangs.
@pytest.mark.requirement(REQ, role="supporting", junit="SchedulerAvailable")
def test_gang_scheduler_available(kube: Kube, cluster_info: ClusterInfo,
                                  operators: OperatorManager,
                                  evidence: EvidenceRecorder) -> None:
    """At least one gang scheduler (Volcano, Kueue, KAI, Coscheduling, the Workload API)
    serves its APIs."""
    found = [s for s in SCHEDULERS if present(kube, s, operators)]
    rows = []
    for sol in G.SOLUTIONS:
        detected = cluster_info.operators.get(sol.operator) if sol.operator else None
        served = sol.served(kube.serves)
        builtin = f"kube-scheduler ({served[0][0]})" if served and not sol.operator else "-"
        rows.append([sol.name, "yes" if served else "no",
                     detected.summary() if detected else builtin])
    evidence.command("; ".join(f"kubectl api-resources --api-group={g}"
                               for sol in G.SOLUTIONS for g in sol.groups),
                     table(rows, ["SOLUTION", "APIS SERVED", "DETECTED"]))
    assert found, G.none_found()


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.requirement(REQ, solution="scheduler")
def test_gang_bound_together(scheduler: str, kube: Kube, cluster_info: ClusterInfo,
                             aic_settings: Settings, namespace: str, run_context: RunContext,
                             evidence: EvidenceRecorder, timeout: Timeout,
                             operators: OperatorManager) -> None:
    """A gang of 2 members is bound together and completes."""
    require_scheduler(kube, scheduler, operators)
    plan = bound_plan(kube, cluster_info, aic_settings, evidence)
    image = aic_settings.image("probe")
    RUN[scheduler](kube, run_context, namespace, evidence, timeout, plan, image, fits=True)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.requirement(REQ, solution="scheduler")
def test_oversized_gang_stays_unbound(scheduler: str, kube: Kube, cluster_info: ClusterInfo,
                                      aic_settings: Settings, namespace: str,
                                      run_context: RunContext, evidence: EvidenceRecorder,
                                      timeout: Timeout, operators: OperatorManager) -> None:
    """A gang one member larger than free capacity stays entirely unbound, with a reason."""
    require_scheduler(kube, scheduler, operators)
    plan = oversized_plan(kube, cluster_info, aic_settings, evidence)
    image = aic_settings.image("probe")
    RUN[scheduler](kube, run_context, namespace, evidence, timeout, plan, image, fits=False)


# --- Volcano ----------------------------------------------------------------------------------

def volcano_queue(kube: Kube, run_context: RunContext) -> str:
    if kube.get_or_none(G.VOLCANO_SCHEDULING, "Queue", "default") is not None:
        return "default"
    name = f"aic-{run_context.run_id}"
    if kube.get_or_none(G.VOLCANO_SCHEDULING, "Queue", name) is None:
        run_context.create({"apiVersion": G.VOLCANO_SCHEDULING, "kind": "Queue",
                            "metadata": {"name": name},
                            "spec": {"weight": 1, "reclaimable": True}})
    return name


@runs("volcano")
def _volcano(kube: Kube, run_context: RunContext, namespace: str, evidence: EvidenceRecorder,
             timeout: Timeout, plan: G.GangPlan, image: str, *, fits: bool) -> None:
    """Volcano Job with minAvailable = members; its PodGroup is the gang."""
    name = "gang-ok" if fits else "gang-big"
    job = G.volcano_job(name, namespace, plan, volcano_queue(kube, run_context), image)
    evidence.yaml(f"Volcano Job with minAvailable {plan.members}", job)
    run_context.create(job)
    pods = settle(kube, namespace, name, plan, evidence, timeout, fits=fits)
    pg = G.volcano_podgroup(kube.items(G.VOLCANO_SCHEDULING, "PodGroup", namespace), name)
    assert pg is not None, "the Volcano Job has no PodGroup"
    status = pg.get("status", {})
    evidence.command(f"kubectl get podgroups -n {namespace}", table(
        [[pg["metadata"]["name"], status.get("phase", ""), pg["spec"].get("minMember"),
          status.get("running", 0), status.get("succeeded", 0)]],
        ["NAME", "STATUS", "MINMEMBER", "RUNNINGS", "SUCCEEDED"]))
    assert pg["spec"].get("minMember") == plan.members, (
        f"PodGroup minMember is {pg['spec'].get('minMember')}, not {plan.members}: the pods "
        "are not one gang")
    if fits:
        groups = {o["metadata"].get("annotations", {}).get(G.VOLCANO_GROUP_ANNOTATION)
                  for o in pods.values()}
        assert groups == {pg["metadata"]["name"]}, f"members belong to PodGroups {groups}"
        job_state = kube.get(G.VOLCANO_BATCH, "Job", name, namespace).get("status", {})
        evidence.note(f"Volcano Job state: {job_state.get('state', {}).get('phase')}; "
                      f"succeeded {job_state.get('succeeded')}")
        return
    evidence.yaml("PodGroup status (the scheduler's own reason)", status,
                  f"kubectl get podgroup {pg['metadata']['name']} -n {namespace} -o yaml")
    assert G.volcano_refusal(pg), (
        f"PodGroup gives no unschedulable reason: {status.get('conditions') or 'no conditions'}")


# --- Kueue ------------------------------------------------------------------------------------

@runs("kueue")
def _kueue(kube: Kube, run_context: RunContext, namespace: str, evidence: EvidenceRecorder,
           timeout: Timeout, plan: G.GangPlan, image: str, *, fits: bool) -> None:
    """Kueue with Topology-Aware Scheduling: quota for the whole gang, the node decides."""
    objs = G.kueue_objects(namespace, namespace, plan, "lq")
    for obj in objs:
        run_context.create(obj)
    evidence.yaml(f"Topology, ResourceFlavor, ClusterQueue (quota for all {plan.members} "
                  "members) and LocalQueue", objs)
    watch_until(kube, Target(G.KUEUE, "ClusterQueue", name=namespace),
                lambda cqs: any(condition_true(o, "Active") for o in cqs.values()),
                timeout=timeout(60), expected="the ClusterQueue to become Active")
    name = "gang-ok" if fits else "gang-big"
    job = G.kueue_job(name, namespace, plan, "lq", image)
    evidence.yaml(f"Job of {plan.members} pods, one node required", job)
    run_context.create(job)
    workloads_ = Target(G.KUEUE, "Workload", namespace)
    if fits:
        admitted = watch_until(
            kube, workloads_, lambda objs: any(condition_true(o, "Admitted")
                                               for o in objs.values()),
            timeout=timeout(120), expected=f"Kueue to admit the {plan.members}-pod Job")
        wait_completed(kube, namespace, name, plan, evidence, timeout)
        [wl] = admitted.values()
        counts = [ps.get("count") for ps in wl["spec"].get("podSets", [])]
        evidence.yaml("Workload admission (one unit for the whole Job)",
                      wl.get("status", {}).get("admission", {}),
                      f"kubectl get workloads -n {namespace} -o yaml")
        assert counts == [plan.members], f"the Workload's pod sets count {counts}, not one of "\
            f"{plan.members}: the Job was not admitted as one gang"
        return
    watch_until(kube, workloads_, lambda objs: bool(objs), timeout=timeout(60),
                expected="Kueue to create the Job's Workload")
    observe_unbound(kube, namespace, name, plan, evidence, timeout, created=False)
    wls = kube.items(G.KUEUE, "Workload", namespace)
    evidence.yaml("Workload conditions (Kueue's own reason)",
                  [w.get("status", {}).get("conditions", []) for w in wls],
                  f"kubectl get workloads -n {namespace} -o yaml")
    assert not any(condition_true(w, "Admitted") for w in wls), \
        "Kueue admitted the Job although the node cannot take the whole gang"
    assert G.kueue_refusal(wls), f"Kueue gives no QuotaReserved=False reason: " \
        f"{[w.get('status', {}).get('conditions') for w in wls]}"


# --- KAI Scheduler ----------------------------------------------------------------------------

def kai_queue(kube: Kube, run_context: RunContext, namespace: str) -> str:
    if kube.get_or_none(G.KAI_QUEUES, "Queue", G.KAI_DEFAULT_QUEUE) is not None:
        return G.KAI_DEFAULT_QUEUE
    for obj in G.kai_queues(namespace):
        run_context.create(obj)
    return namespace


@runs("kai")
def _kai(kube: Kube, run_context: RunContext, namespace: str, evidence: EvidenceRecorder,
         timeout: Timeout, plan: G.GangPlan, image: str, *, fits: bool) -> None:
    """A batch Job for kai-scheduler; KAI's podgrouper makes its PodGroup the gang."""
    name = "gang-ok" if fits else "gang-big"
    job = G.kai_job(name, namespace, plan, kai_queue(kube, run_context, namespace), image)
    evidence.yaml(f"Job for kai-scheduler, {G.KAI_MIN_MEMBER_ANNOTATION} {plan.members}", job)
    run_context.create(job)
    target = Target("v1", "Pod", namespace, label_selector=f"{G.GANG_LABEL}={name}")
    if fits:
        pods = wait_completed(kube, namespace, name, plan, evidence, timeout)
    else:
        pods = watch_until(
            kube, target, lambda objs: len(objs) == plan.members and all(
                o["metadata"].get("annotations", {}).get(G.KAI_POD_GROUP_ANNOTATION)
                for o in objs.values()),
            timeout=timeout(60), expected=f"all {plan.members} members, each in a PodGroup")
        observe_unbound(kube, namespace, name, plan, evidence, timeout)
    groups = {o["metadata"].get("annotations", {}).get(G.KAI_POD_GROUP_ANNOTATION)
              for o in pods.values()}
    [group] = groups if len(groups) == 1 else [None]
    assert group, f"members belong to PodGroups {sorted(map(str, groups))}"
    pg = kube.get(G.KAI_SCHEDULING, "PodGroup", str(group), namespace)
    evidence.yaml("KAI PodGroup", {"spec": pg.get("spec", {}), "status": pg.get("status", {})},
                  f"kubectl get podgroup {pg['metadata']['name']} -n {namespace} -o yaml")
    assert pg["spec"].get("minMember") == plan.members, (
        f"PodGroup minMember is {pg['spec'].get('minMember')}, not {plan.members}: the pods "
        f"are not one gang (does this KAI read {G.KAI_MIN_MEMBER_ANNOTATION}?)")
    if not fits:
        assert G.kai_refusal(pg), (
            "PodGroup gives no unschedulable reason: "
            f"{pg.get('status', {}).get('schedulingConditions') or 'no schedulingConditions'}")


# --- scheduler-plugins Coscheduling -----------------------------------------------------------

def _listed(kube: Kube, api_version: str, kind: str, **selectors: str) -> list[Obj]:
    """The objects, or none where the suite may not list them."""
    try:
        return kube.items(api_version, kind, **selectors)
    except ApiError as exc:
        if exc.status != 403:
            raise
        return []


def coscheduling_scheduler(kube: Kube, evidence: EvidenceRecorder) -> str:
    """The chart's Deployment, else a second scheduler's leader-election Lease, names the
    profile; a Lease nobody holds or renews says the scheduler is not running (its gang would
    wait for nobody)."""
    deps = _listed(kube, "apps/v1", "Deployment", label_selector="component=scheduler")
    leases = [] if G.coscheduling_scheduler(deps)[0] != G.DEFAULT_SCHEDULER else _listed(
        kube, G.LEASES, "Lease")
    scheduler, how = G.coscheduling_scheduler(deps, leases)
    evidence.note(f"schedulerName {scheduler}: {how}")
    lease = G.coscheduling_lease(leases)
    if lease is not None and lease["metadata"]["name"] == scheduler:
        gone = G.lease_gone(lease, datetime.datetime.now(datetime.UTC))
        evidence.yaml("the second scheduler's leader-election Lease", lease.get("spec", {}),
                      f"kubectl get lease {scheduler} -n "
                      f"{lease['metadata'].get('namespace', '')} -o yaml")
        assert not gone, f"the scheduler-plugins scheduler {scheduler} is not running: {gone}"
    return scheduler


@runs("coscheduling")
def _coscheduling(kube: Kube, run_context: RunContext, namespace: str,
                  evidence: EvidenceRecorder, timeout: Timeout, plan: G.GangPlan, image: str,
                  *, fits: bool) -> None:
    """A PodGroup of minMember = members and a Job whose pods are labelled with it."""
    name = "gang-ok" if fits else "gang-big"
    objs = G.coscheduling_objects(name, namespace, plan, coscheduling_scheduler(kube, evidence),
                                  image)
    evidence.yaml(f"PodGroup with minMember {plan.members} and the Job of its members", objs)
    for obj in objs:
        run_context.create(obj)
    pods = settle(kube, namespace, name, plan, evidence, timeout, fits=fits)
    pg = kube.get(G.COSCHEDULING, "PodGroup", name, namespace)
    evidence.yaml("PodGroup", {"spec": pg.get("spec", {}), "status": pg.get("status", {})},
                  f"kubectl get podgroup {name} -n {namespace} -o yaml")
    assert pg["spec"].get("minMember") == plan.members, (
        f"PodGroup minMember is {pg['spec'].get('minMember')}, not {plan.members}: the pods "
        "are not one gang")
    if not fits:
        refusals = G.pod_refusals(pods)
        evidence.note(f"the scheduler's own reasons: {refusals or 'none'}")
        assert refusals, "no member says why it is not scheduled (PodScheduled=False, " \
            "Unschedulable)"


# --- the Workload API (kube-scheduler's GangScheduling plugin) --------------------------------

@runs("workload-api")
def _workload_api(kube: Kube, run_context: RunContext, namespace: str,
                  evidence: EvidenceRecorder, timeout: Timeout, plan: G.GangPlan, image: str,
                  *, fits: bool) -> None:
    """A Workload whose pod group has a gang policy of minCount = members (v1alpha2: and its
    PodGroup), and a Job whose pods join it; kube-scheduler itself holds or binds them."""
    served = G.BY_NAME["workload-api"].served(kube.serves)
    assert served is not None, "the Workload API is no longer served"
    version = served[0][0]
    name = "gang-ok" if fits else "gang-big"
    objs = G.workload_api_objects(name, namespace, plan, image, version)
    evidence.yaml(f"{version} gang of minCount {plan.members} and the Job that joins it", objs)
    for obj in objs:
        run_context.create(obj)
    pods = settle(kube, namespace, name, plan, evidence, timeout, fits=fits)
    gang = [kube.get(version, kind, name, namespace) for kind in
            (["Workload"] if version == G.WORKLOAD_V1ALPHA1 else ["Workload", "PodGroup"])]
    group = version.split("/")[0]
    evidence.yaml("the gang as the API server keeps it",
                  [{"kind": o["kind"], "spec": o.get("spec", {}), "status": o.get("status", {})}
                   for o in gang],
                  "kubectl get " + " ".join(f"{o['kind'].lower()}s.{group}/{name}" for o in gang)
                  + f" -n {namespace} -o yaml")
    counts = {o["kind"]: G.workload_min_count(o) for o in gang}
    assert set(counts.values()) == {plan.members}, (
        f"gang minCount {counts}, not {plan.members}: the pods are not one gang")
    joined = G.workload_membership(pods, version)
    expected = f"{name}/{G.WORKLOAD_POD_GROUP}" if version == G.WORKLOAD_V1ALPHA1 else name
    assert set(joined.values()) == {expected}, (
        f"members joined {sorted(set(joined.values()))}, not {expected} (an API server "
        "without the GenericWorkload feature gate drops the pods' reference)")
    if fits:
        return
    said = G.pod_refusals(pods)
    refusals = "; ".join(filter(None, [
        G.podgroup_refusal(gang[-1]) if version == G.WORKLOAD_V1ALPHA2 else "", said]))
    evidence.note(f"kube-scheduler's own reasons: {refusals or 'none'}; a member without one "
                  "is held at the GangScheduling plugin's Permit until minCount members are "
                  "placed (it logs \"waiting for minCount pods from a gang to be waiting on "
                  "permit\")")
    assert refusals, "kube-scheduler gives no reason for the gang it holds (PodScheduled=False "\
        "Unschedulable on a member" + (", PodGroupScheduled=False on the PodGroup)"
                                       if version == G.WORKLOAD_V1ALPHA2 else ")")


# Every solution of the registry has its runner (a solution added there without one fails here).
assert set(RUN) == set(SCHEDULERS), f"no runner for {sorted(set(SCHEDULERS) - set(RUN))}"
