"""gang_scheduling: a gang scheduler binds every member of a job together, or none.

Volcano: a Volcano Job whose PodGroup has minMember N is bound together and completes;
a gang one member larger than the free accelerators of a node stays entirely unbound for a
whole observation window although single members would fit, and the PodGroup says why.
Kueue: a Job is admitted only when quota covers all of its pods (all-or-nothing admission
of accelerator pods, with quota equal to the real free capacity); a larger one stays
suspended with Kueue's reason. Gang membership is proven from the objects themselves.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    Target,
    condition_true,
    get_table,
    not_applicable,
    probing,
    table,
    watch_until,
    workloads,
)

REQ = "gang_scheduling"
VC_BATCH = "batch.volcano.sh/v1alpha1"
VC_SCHED = "scheduling.volcano.sh/v1beta1"
KUEUE = "kueue.x-k8s.io/v1beta1"
GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
SCHEDULERS = ("volcano", "kueue")


def present(kube, scheduler: str, operators=None) -> bool:
    """Whether the scheduler's APIs are served; with --aic-install, Volcano is installed when
    no gang scheduler is present at all."""
    if operators is not None and operators.install and not any(
            present(kube, s) for s in SCHEDULERS):
        operators.ensure("volcano")
    if scheduler == "volcano":
        return kube.serves(VC_SCHED, "PodGroup") and kube.serves(VC_BATCH, "Job")
    return kube.serves(KUEUE, "ClusterQueue") and kube.serves(KUEUE, "Workload")


def require_scheduler(kube, scheduler: str, operators) -> None:
    """This solution's check is not applicable when another gang scheduler is installed; with
    none installed at all, gang scheduling is missing and the check fails."""
    if present(kube, scheduler, operators):
        return
    others = [s for s in SCHEDULERS if s != scheduler and present(kube, s)]
    if others:
        not_applicable(f"{scheduler} is not installed ({', '.join(others)} is)")
    raise AssertionError("no gang scheduler found: neither Volcano nor Kueue APIs are served")


def free_units(kube, cluster_info, profile) -> tuple[str, str, int]:
    """The node with the fewest free accelerators (at least one), and how many are free."""
    alloc = probing.choose_allocation(cluster_info, profile, "device-plugin")
    free = {n: f for n, f in probing.free_per_node(kube, cluster_info, alloc.resource).items()
            if f >= 1}
    best = min(((n, f) for n, f in free.items()), key=lambda kv: (kv[1], kv[0]), default=None)
    assert best, f"no node has a free {alloc.resource}"
    return alloc.resource, best[0], best[1]


def vcjob(name: str, namespace: str, members: int, resource: str, node: str,
          queue: str, image: str) -> dict[str, Any]:
    ctr = workloads.container("worker", ["sh", "-c", "echo member $HOSTNAME; sleep 2"],
                              image=image, resources_={"limits": {resource: "1"}})
    pod = workloads.pod(name, namespace, [ctr], node_selector={"kubernetes.io/hostname": node})
    return {
        "apiVersion": VC_BATCH, "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedulerName": "volcano", "minAvailable": members, "queue": queue,
            "tasks": [{"name": "worker", "replicas": members,
                       "template": {"metadata": {"labels": {"gang": name}},
                                    "spec": pod["spec"]}}],
        },
    }


def volcano_queue(kube, run_context) -> str:
    if kube.get_or_none(VC_SCHED, "Queue", "default") is not None:
        return "default"
    name = f"aic-{run_context.run_id}"
    run_context.create({"apiVersion": VC_SCHED, "kind": "Queue", "metadata": {"name": name},
                        "spec": {"weight": 1, "reclaimable": True}})
    return name


def podgroup_of(kube, namespace: str, job: str) -> dict[str, Any] | None:
    for pg in kube.items(VC_SCHED, "PodGroup", namespace):
        owners = pg["metadata"].get("ownerReferences", [])
        if any(o.get("kind") == "Job" and o.get("name") == job for o in owners):
            return pg
    return None


def pg_table(pg: dict[str, Any]) -> str:
    st = pg.get("status", {})
    return table([[pg["metadata"]["name"], st.get("phase", ""), pg["spec"].get("minMember"),
                   st.get("running", 0), st.get("succeeded", 0)]],
                 ["NAME", "STATUS", "MINMEMBER", "RUNNINGS", "SUCCEEDED"])


# Supporting: served APIs show a scheduler is installed, not that it schedules gangs.
@pytest.mark.requirement(REQ, role="supporting", junit="SchedulerAvailable")
def test_gang_scheduler_available(kube, cluster_info, operators, evidence):
    """At least one gang scheduler (Volcano or Kueue) is installed and its APIs served."""
    found = [s for s in SCHEDULERS if present(kube, s, operators)]
    rows = [[s, "yes" if present(kube, s) else "no",
             cluster_info.operators.get(s).summary() if cluster_info.operators.get(s) else "-"]
            for s in SCHEDULERS]
    evidence.command("kubectl api-resources --api-group=scheduling.volcano.sh; "
                     "kubectl api-resources --api-group=kueue.x-k8s.io",
                     table(rows, ["SCHEDULER", "APIS SERVED", "DETECTED"]))
    assert found, "no gang scheduler found: neither Volcano nor Kueue APIs are served"


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.requirement(REQ)
def test_gang_bound_together(scheduler, kube, cluster_info, aic_settings, namespace, run_context,
                             evidence, timeout, operators):
    """An N-member gang is bound together and completes."""
    require_scheduler(kube, scheduler, operators)
    resource, node, free = free_units(kube, cluster_info, aic_settings.profile)
    members = min(2, free) if free >= 2 else 1
    if scheduler == "kueue":
        _kueue_gang(kube, run_context, namespace, evidence, timeout, resource, node, members,
                    quota=free, expect_admitted=True, image=aic_settings.image("probe"))
        return
    queue = volcano_queue(kube, run_context)
    job = vcjob("gang-ok", namespace, members, resource, node, queue,
                aic_settings.image("probe"))
    evidence.yaml(f"Volcano Job with minAvailable {members}", job)
    run_context.create(job)
    pods = watch_until(
        kube, Target("v1", "Pod", namespace, label_selector="gang=gang-ok"),
        lambda objs: len(objs) == members and all(
            o.get("status", {}).get("phase") == "Succeeded" for o in objs.values()),
        timeout=timeout(180), expected=f"all {members} gang members to run and complete",
    )
    pg = podgroup_of(kube, namespace, "gang-ok")
    assert pg is not None, "the Volcano Job has no PodGroup"
    evidence.command(f"kubectl get podgroups -n {namespace}", pg_table(pg))
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(sorted(pods.values(), key=lambda o: o["metadata"]["name"]),
                               POD_WIDE))
    assert pg["spec"].get("minMember") == members, f"PodGroup minMember is "\
        f"{pg['spec'].get('minMember')}, not {members}: the pods are not one gang"
    groups = {o["metadata"].get("annotations", {}).get(GROUP_ANNOTATION) for o in pods.values()}
    assert groups == {pg["metadata"]["name"]}, f"members belong to PodGroups {groups}"
    job_state = kube.get(VC_BATCH, "Job", "gang-ok", namespace).get("status", {})
    evidence.note(f"Volcano Job state: {job_state.get('state', {}).get('phase')}; "
                  f"succeeded {job_state.get('succeeded')}")


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.requirement(REQ)
def test_oversized_gang_stays_unbound(scheduler, kube, cluster_info, aic_settings, namespace,
                                      run_context, evidence, timeout, operators):
    """A gang one member larger than free capacity stays entirely unbound, with a reason."""
    require_scheduler(kube, scheduler, operators)
    resource, node, free = free_units(kube, cluster_info, aic_settings.profile)
    members = free + 1
    evidence.note(f"{node} has {free} free {resource}: each of the {members} members would "
                  "fit alone, the gang as a whole cannot")
    if scheduler == "kueue":
        _kueue_gang(kube, run_context, namespace, evidence, timeout, resource, node, members,
                    quota=free, expect_admitted=False,
                    image=aic_settings.image("probe"))
        return
    queue = volcano_queue(kube, run_context)
    run_context.create(vcjob("gang-big", namespace, members, resource, node, queue,
                             aic_settings.image("probe")))
    target = Target("v1", "Pod", namespace, label_selector="gang=gang-big")
    watch_until(kube, target, lambda objs: len(objs) == members, timeout=timeout(60),
                expected=f"Volcano to create all {members} member pods")
    window = timeout(20)
    pods = watch_until(kube, target,
                       lambda objs: any(o["spec"].get("nodeName") for o in objs.values()),
                       timeout=window, invert=True,
                       expected="no gang member may be bound while the gang cannot fit")
    evidence.command(f"kubectl get pods -n {namespace} -o wide  # after a {window:.0f}s window",
                     get_table(sorted(pods.values(), key=lambda o: o["metadata"]["name"]),
                               POD_WIDE))
    pg = podgroup_of(kube, namespace, "gang-big")
    assert pg is not None, "the Volcano Job has no PodGroup"
    evidence.yaml("PodGroup status (the scheduler's own reason)", pg.get("status", {}),
                  f"kubectl get podgroup {pg['metadata']['name']} -n {namespace} -o yaml")
    assert pg["spec"].get("minMember") == members
    reasons = " ".join(f"{c.get('reason', '')} {c.get('message', '')}"
                       for c in pg.get("status", {}).get("conditions", []) or [])
    assert "NotEnoughResources" in reasons or "Unschedulable" in reasons, (
        f"PodGroup gives no unschedulable reason: {reasons or 'no conditions'}"
    )


def _kueue_gang(kube, run_context, namespace, evidence, timeout, resource: str, node: str,
                members: int, *, quota: int, expect_admitted: bool, image: str) -> None:
    """Kueue: quota equal to the real free capacity; admission must be all-or-nothing."""
    flavor = f"aic-{run_context.run_id}-{namespace[-2:].strip('-')}"
    run_context.create({"apiVersion": KUEUE, "kind": "ResourceFlavor", "metadata":
                        {"name": flavor}, "spec": {"nodeLabels": {"kubernetes.io/hostname": node}}})
    run_context.create({"apiVersion": KUEUE, "kind": "ClusterQueue", "metadata": {"name": flavor},
                        "spec": {"namespaceSelector": {}, "resourceGroups": [{
                            "coveredResources": [resource, "cpu"],
                            "flavors": [{"name": flavor, "resources": [
                                {"name": resource, "nominalQuota": quota},
                                {"name": "cpu", "nominalQuota": "100"}]}]}]}})
    run_context.create({"apiVersion": KUEUE, "kind": "LocalQueue",
                        "metadata": {"name": "lq", "namespace": namespace},
                        "spec": {"clusterQueue": flavor}})
    ctr = workloads.container("worker", ["sh", "-c", "sleep 2"], image=image,
                              resources_={"requests": {"cpu": "10m"},
                                          "limits": {resource: "1"}})
    pod = workloads.pod("x", namespace, [ctr])
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "gang", "namespace": namespace,
                        "labels": {"kueue.x-k8s.io/queue-name": "lq"}},
           "spec": {"parallelism": members, "completions": members, "suspend": True,
                    "template": {"metadata": {"labels": {"gang": "gang"}},
                                 "spec": pod["spec"]}}}
    run_context.create(job)

    def admitted(objs: dict[str, dict[str, Any]]) -> bool:
        return any(condition_true(o, "Admitted") for o in objs.values())

    target = Target(KUEUE, "Workload", namespace)
    if expect_admitted:
        watch_until(kube, target, admitted, timeout=timeout(120),
                    expected=f"Kueue to admit the {members}-pod Job")
        pods = watch_until(kube, Target("v1", "Pod", namespace, label_selector="gang=gang"),
                           lambda objs: len(objs) == members and all(
                               o["spec"].get("nodeName") for o in objs.values()),
                           timeout=timeout(120), expected=f"all {members} pods bound")
        evidence.command(f"kubectl get pods -n {namespace} -o wide",
                         get_table(list(pods.values()), POD_WIDE))
        return
    wl = watch_until(kube, target, admitted, timeout=timeout(20), invert=True,
                     expected="the oversized Job must not be admitted")
    pods = kube.items("v1", "Pod", namespace, label_selector="gang=gang")
    assert not pods, f"{len(pods)} pods of the unadmitted Job exist"
    conds = [c for o in wl.values() for c in o.get("status", {}).get("conditions", []) or []]
    evidence.yaml("Workload conditions (Kueue's own reason)", conds,
                  f"kubectl get workloads -n {namespace} -o yaml")
    assert any(c.get("type") == "QuotaReserved" and c.get("status") == "False" for c in conds), \
        f"Kueue gives no QuotaReserved=False reason: {conds}"
