"""Simulated gang schedulers for the real gang_scheduling check against the fake API server.

The fake API server schedules nothing, so each solution here is a controller run as a reactor
of it (`install`): it serves the solution's APIs, makes what the real solution makes when the
check creates a gang (Volcano's PodGroup and pods for a Volcano Job, Kueue's Workload for a
queued Job, KAI's podgrouper PodGroup for a kai-scheduler Job; Coscheduling reads the check's
own PodGroup), and binds the members to their node by a policy:

- GANG: what each solution is meant to do: a gang is bound only when its minimum (the
  minMember, minAvailable or min-member annotation the check set; for Kueue, admission through
  Topology-Aware Scheduling when the Job asks for a required topology) fits, and when not, the
  solution's own reason is written;
- GREEDY: every member that fits alone is bound, the rest stay Pending as a plain scheduler
  leaves them; for Kueue: admission by quota only (no Topology-Aware Scheduling), after which
  the node takes the members that fit;
- ONE: only the first member of a gang is bound (a broken gang scheduler);
- SILENT: as GANG, but a gang held out is left without any reason (Volcano, KAI,
  Coscheduling: no condition on the PodGroup or the members);
- ADMIT_ONLY (Kueue): admission by quota only; the members of a gang the node cannot take are
  created but none is bound within the window (a busy node), a gang that fits is bound;
- DROPPED (Workload API): the API server drops the pods' reference to their gang (no
  GenericWorkload gate) and the scheduler binds what fits.

The Workload API (`workload-api`: 1.35's scheduling.k8s.io/v1alpha1 Workload and pods'
workloadRef; `workload-api-v1alpha2`: 1.36's Workload, PodGroup and pods' schedulingGroup) is
kube-scheduler's own GangScheduling plugin acting on the Job controller's pods: under GANG the
members that fit wait at Permit without a condition and the others say "Insufficient ...";
GREEDY is a scheduler without the GangScheduling gate.

A member is sized in its extended resource, or in CPU when it asks for none. Free capacity is
the node's allocatable minus what bound, unfinished pods hold (their extended resource, or
their CPU requests), as the check itself computes it. Pods a gang finishes are Succeeded;
members bound while the gang is incomplete stay Running (they hold their units).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

from fakeapi import FakeCluster

Obj = dict[str, Any]

# The solutions' API facts, written out here (not taken from the check's module) so that a
# wrong fact in the check shows as a failure. Sources: see
# pytest_aiconformance/requirements/gang_scheduling.py.
VOLCANO_BATCH, VOLCANO_SCHEDULING = "batch.volcano.sh/v1alpha1", "scheduling.volcano.sh/v1beta1"
VOLCANO_GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
KUEUE, KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/v1beta1", "kueue.x-k8s.io/queue-name"
KAI_SCHEDULING, KAI_QUEUES, KAI_SCHEDULER = ("scheduling.run.ai/v2alpha2", "scheduling.run.ai/v2",
                                             "kai-scheduler")
KAI_QUEUE_LABEL, KAI_POD_GROUP_ANNOTATION = "kai.scheduler/queue", "pod-group-name"
KAI_MIN_MEMBER_ANNOTATION, KAI_UNSCHEDULABLE = ("kai.scheduler/batch-min-member",
                                                "UnschedulableOnNodePool")
COSCHEDULING, COSCHEDULING_LABEL = "scheduling.x-k8s.io/v1alpha1", "scheduling.x-k8s.io/pod-group"
# k8s.io/api v0.35.4 scheduling/v1alpha1 and v0.36.2 scheduling/v1alpha2
WORKLOAD_V1ALPHA1, WORKLOAD_V1ALPHA2 = "scheduling.k8s.io/v1alpha1", "scheduling.k8s.io/v1alpha2"
HOSTNAME = "kubernetes.io/hostname"

GANG, GREEDY, ONE, SILENT, ADMIT_ONLY = "gang", "greedy", "one", "silent", "admit-only"
DROPPED = "dropped"
SECOND_SCHEDULER = "scheduler-plugins-scheduler"

APIS: dict[str, dict[str, dict[str, tuple[str, bool]]]] = {
    "volcano": {
        VOLCANO_BATCH: {"jobs": ("Job", True)},
        VOLCANO_SCHEDULING: {"podgroups": ("PodGroup", True), "queues": ("Queue", False)},
    },
    "kueue": {
        "batch/v1": {"jobs": ("Job", True)},
        KUEUE: {"clusterqueues": ("ClusterQueue", False),
                  "localqueues": ("LocalQueue", True), "workloads": ("Workload", True),
                  "resourceflavors": ("ResourceFlavor", False),
                  "topologies": ("Topology", False)},
    },
    "kai": {
        "batch/v1": {"jobs": ("Job", True)},
        KAI_SCHEDULING: {"podgroups": ("PodGroup", True)},
        KAI_QUEUES: {"queues": ("Queue", False)},
    },
    "coscheduling": {
        "batch/v1": {"jobs": ("Job", True)},
        COSCHEDULING: {"podgroups": ("PodGroup", True)},
    },
    "workload-api": {
        "batch/v1": {"jobs": ("Job", True)},
        WORKLOAD_V1ALPHA1: {"workloads": ("Workload", True)},
    },
    "workload-api-v1alpha2": {
        "batch/v1": {"jobs": ("Job", True)},
        WORKLOAD_V1ALPHA2: {"workloads": ("Workload", True), "podgroups": ("PodGroup", True)},
    },
}


def _suffix(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:5]


def _ns(obj: Obj) -> str:
    return str(obj["metadata"].get("namespace", ""))


def member_pods(job: Obj, template: Obj, count: int, name: Callable[[int], str],
                annotations: dict[str, str] | None = None) -> list[Obj]:
    """The pods a workload controller makes from its template."""
    out = []
    for i in range(count):
        meta = copy.deepcopy(template.get("metadata", {}))
        meta.update({"name": name(i), "namespace": _ns(job)})
        meta.setdefault("annotations", {}).update(annotations or {})
        out.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                    "spec": copy.deepcopy(template["spec"]), "status": {"phase": "Pending"}})
    return out


def millicores(text: str) -> int:
    """A CPU quantity as the fake cluster reads it: "250m", "2", "0.5"."""
    return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)


def units(pod: Obj, resource: str) -> int:
    """What a pod holds of the resource: units of an extended resource (its limits), or
    millicores of CPU (its requests)."""
    if resource == "cpu":
        return sum(millicores(str(((c.get("resources") or {}).get("requests") or {}).get(
            "cpu", "0"))) for c in pod["spec"].get("containers", []))
    return sum(int(((c.get("resources") or {}).get("limits") or {}).get(resource, 0))
               for c in pod["spec"].get("containers", []))


def requested(pod: Obj) -> str:
    """What a member is sized in: its extended resource, or "cpu" for a CPU-only member."""
    for c in pod["spec"].get("containers", []):
        for r in (c.get("resources") or {}).get("limits") or {}:
            if "/" in r:
                return str(r)
    return "cpu"


def free(cluster: FakeCluster, node: str, resource: str) -> int:
    """Allocatable units (millicores for CPU) on the node minus what bound, unfinished pods
    hold."""
    allocatable = str(cluster.objects["nodes"][node]["status"]["allocatable"].get(resource, 0))
    total = millicores(allocatable) if resource == "cpu" else int(allocatable)
    held = sum(units(p, resource) for p in cluster.objects.get("pods", {}).values()
               if p["spec"].get("nodeName") == node
               and p.get("status", {}).get("phase") not in ("Succeeded", "Failed"))
    return total - held


def fitting(cluster: FakeCluster, node: str, pods: list[Obj]) -> int:
    """How many of the (equal) members the node has room for, each on its own."""
    resource = requested(pods[0])
    return min(len(pods), free(cluster, node, resource) // max(1, units(pods[0], resource)))


def place(cluster: FakeCluster, pods: list[Obj], policy: str, node: str,
          refusal: Callable[[Obj], str], minimum: int) -> int:
    """Bind the members to the node by the policy (under GANG, as many as fit once `minimum`
    of them fit, else none) and store them; returns how many were bound. A member left
    unbound says why (PodScheduled=False, Unschedulable) in `refusal`'s words."""
    fit = fitting(cluster, node, pods)
    gang = fit if fit >= minimum else 0
    take = {GANG: gang, SILENT: gang, GREEDY: fit, ONE: 1, ADMIT_ONLY: 0}[policy]
    for i, pod in enumerate(pods):
        if i < take:
            pod["spec"]["nodeName"] = node
            pod["status"] = {"phase": "Succeeded" if take == len(pods) else "Running",
                             "conditions": [{"type": "PodScheduled", "status": "True"}]}
        elif policy in (ADMIT_ONLY, SILENT):
            pod["status"] = {"phase": "Pending"}
        else:
            pod["status"] = {"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": refusal(pod)}]}
        cluster.add("pods", pod)
    return take


def insufficient(resource: str) -> Callable[[Obj], str]:
    """What kube-scheduler says of a pod the node has no room for."""
    return lambda pod: f"0/1 nodes are available: 1 Insufficient {resource}."


# --- the solutions ----------------------------------------------------------------------------

def volcano(policy: str) -> Callable[[FakeCluster, str, Obj], None]:
    """Volcano's job controller and scheduler: a PodGroup of minAvailable per Job."""
    def react(cluster: FakeCluster, key: str, job: Obj) -> None:
        if key != "jobs.batch.volcano.sh":
            return
        name, ns, spec = job["metadata"]["name"], _ns(job), job["spec"]
        [task] = spec["tasks"]
        pg_name = f"{name}-{_suffix(ns, name)}"
        pods = member_pods(job, task["template"], task["replicas"],
                           lambda i: f"{name}-{task['name']}-{i}",
                           {VOLCANO_GROUP_ANNOTATION: pg_name})
        node = task["template"]["spec"]["nodeSelector"][HOSTNAME]
        bound = place(cluster, pods, policy, node, lambda pod: (
            f"pod group is not ready, {len(pods)} Pending, {spec['minAvailable']} minAvailable"),
            int(spec.get("minAvailable", 1)))
        pg: Obj = {"apiVersion": VOLCANO_SCHEDULING, "kind": "PodGroup",
                   "metadata": {"name": pg_name, "namespace": ns,
                                "ownerReferences": [{"kind": "Job", "name": name}]},
                   "spec": {"minMember": spec["minAvailable"], "queue": spec["queue"]},
                   "status": {"phase": "Running" if bound else "Pending",
                              "succeeded": bound if bound == len(pods) else 0}}
        if not bound and policy != SILENT:
            pg["status"]["conditions"] = [{
                "type": "Unschedulable", "status": "True", "reason": "NotEnoughResources",
                "message": f"{len(pods)}/{len(pods)} tasks in gang unschedulable: pod group is "
                           f"not ready, {len(pods)} Pending, {spec['minAvailable']} "
                           "minAvailable"}]
        cluster.add("podgroups.scheduling.volcano.sh", pg)
        job["status"] = {"state": {"phase": "Completed" if bound == len(pods) else "Pending"},
                         "succeeded": bound if bound == len(pods) else 0}
    return react


def kueue(policy: str) -> Callable[[FakeCluster, str, Obj], None]:
    """Kueue's controllers: an Active ClusterQueue, a Workload per queued Job, and admission
    by quota (and, under GANG, by Topology-Aware Scheduling onto the flavor's node)."""
    def react(cluster: FakeCluster, key: str, obj: Obj) -> None:
        if key == "clusterqueues.kueue.x-k8s.io":
            obj["status"] = {"conditions": [{"type": "Active", "status": "True"}]}
            return
        labels = obj["metadata"].get("labels") or {}
        if key != "jobs.batch" or KUEUE_QUEUE_LABEL not in labels:
            return
        name, ns, spec = obj["metadata"]["name"], _ns(obj), obj["spec"]
        count, template = spec["parallelism"], spec["template"]
        lq = cluster.objects["localqueues.kueue.x-k8s.io"][labels[KUEUE_QUEUE_LABEL]]
        cq = cluster.objects["clusterqueues.kueue.x-k8s.io"][lq["spec"]["clusterQueue"]]
        [flavor] = cq["spec"]["resourceGroups"][0]["flavors"]
        rf = cluster.objects["resourceflavors.kueue.x-k8s.io"][flavor["name"]]
        node = rf["spec"]["nodeLabels"][HOSTNAME]
        probe = {"spec": template["spec"]}
        resource = requested(probe)
        quota = {r["name"]: str(r["nominalQuota"]) for r in flavor["resources"]}
        need = count * units(probe, resource)
        quota_ok = need <= (millicores(quota.get("cpu", "0")) if resource == "cpu"
                            else int(quota.get(resource, 0)))
        # TAS acts only for a pod set that asks for a topology, on a flavor that names one
        tas = policy == GANG and bool(rf["spec"].get("topologyName")) and (
            "kueue.x-k8s.io/podset-required-topology" in (
                template.get("metadata", {}).get("annotations") or {}))
        tas_ok = need <= free(cluster, node, resource)
        admit = quota_ok and (tas_ok or not tas)
        wl: Obj = {"apiVersion": KUEUE, "kind": "Workload",
                   "metadata": {"name": f"job-{name}-{_suffix(ns, name)}", "namespace": ns},
                   "spec": {"queueName": lq["metadata"]["name"],
                            "podSets": [{"name": "main", "count": count,
                                         "template": template}]}}
        if not admit:
            topology = rf["spec"]["topologyName"]
            why = (f"couldn't assign flavors to pod set main: topology \"{topology}\" doesn't "
                   f"allow to fit any of {count} pod(s)" if quota_ok else
                   f"couldn't assign flavors to pod set main: insufficient quota for {resource} "
                   f"in flavor {flavor['name']}, request > maximum capacity "
                   f"({need}{'m' if resource == 'cpu' else ''} > {quota.get(resource, 0)})")
            wl["status"] = {"conditions": [
                {"type": "QuotaReserved", "status": "False", "reason": "Pending",
                 "message": why},
                {"type": "Admitted", "status": "False", "reason": "NoReservation",
                 "message": "The workload has no reservation"}]}
            cluster.add("workloads.kueue.x-k8s.io", wl)
            return
        wl["status"] = {
            "conditions": [{"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved"},
                           {"type": "Admitted", "status": "True", "reason": "Admitted"}],
            "admission": {"clusterQueue": cq["metadata"]["name"], "podSetAssignments": [
                {"name": "main", "count": count, "flavors": {resource: flavor["name"]}}]}}
        cluster.add("workloads.kueue.x-k8s.io", wl)
        spec["suspend"] = False
        template = copy.deepcopy(template)
        template["spec"]["nodeSelector"] = dict(rf["spec"]["nodeLabels"])  # Kueue injects it
        pods = member_pods(obj, template, count, lambda i: f"{name}-{_suffix(ns, name, str(i))}")
        late = policy == ADMIT_ONLY and not tas_ok
        place(cluster, pods, ADMIT_ONLY if late else GREEDY, node, insufficient(resource), 1)
    return react


def kai(policy: str) -> Callable[[FakeCluster, str, Obj], None]:
    """KAI's podgrouper (one PodGroup per Job, minMember from the Job's annotation) and its
    scheduler."""
    def react(cluster: FakeCluster, key: str, job: Obj) -> None:
        template = job.get("spec", {}).get("template", {})
        if key != "jobs.batch" or template.get("spec", {}).get("schedulerName") != KAI_SCHEDULER:
            return
        name, ns = job["metadata"]["name"], _ns(job)
        minimum = int((job["metadata"].get("annotations") or {}).get(
            KAI_MIN_MEMBER_ANNOTATION, "1"))
        pg_name = f"pg-{name}-{_suffix(ns, name)}"
        pods = member_pods(job, template, job["spec"]["parallelism"],
                           lambda i: f"{name}-{_suffix(ns, name, str(i))}",
                           {KAI_POD_GROUP_ANNOTATION: pg_name})
        node = template["spec"]["nodeSelector"][HOSTNAME]
        room = fitting(cluster, node, pods)
        bound = place(cluster, pods, policy, node, lambda pod: (
            f"Resources were found for {room} pods while {minimum} are required for gang "
            "scheduling."), minimum)
        pg: Obj = {"apiVersion": KAI_SCHEDULING, "kind": "PodGroup",
                   "metadata": {"name": pg_name, "namespace": ns},
                   "spec": {"minMember": minimum,
                            "queue": template["metadata"]["labels"][KAI_QUEUE_LABEL]},
                   "status": {}}
        if not bound and policy != SILENT:
            pg["status"]["schedulingConditions"] = [{
                "type": KAI_UNSCHEDULABLE, "reason": "Unschedulable", "status": "True",
                "nodePool": "default",
                "message": f"PodSchedulingErrors: Resources were found for {room} pods while "
                           f"{minimum} are required for gang scheduling."}]
        cluster.add("podgroups.scheduling.run.ai", pg)
    return react


def coscheduling(policy: str, scheduler: str = SECOND_SCHEDULER
                 ) -> Callable[[FakeCluster, str, Obj], None]:
    """The Job controller and the Coscheduling plugin in `scheduler`: a Job's pods labelled
    with a PodGroup are placed once minMember of them exist."""
    def react(cluster: FakeCluster, key: str, job: Obj) -> None:
        template = job.get("spec", {}).get("template", {})
        group = (template.get("metadata", {}).get("labels") or {}).get(COSCHEDULING_LABEL)
        if key != "jobs.batch" or not group or template["spec"].get(
                "schedulerName") != scheduler:
            return
        name, ns = job["metadata"]["name"], _ns(job)
        pg = cluster.objects["podgroups.scheduling.x-k8s.io"][group]
        pods = member_pods(job, template, job["spec"]["parallelism"],
                           lambda i: f"{name}-{_suffix(ns, name, str(i))}")
        minimum = int(pg["spec"]["minMember"])
        if len(pods) < minimum:
            for pod in pods:
                cluster.add("pods", pod)
            return
        resource = requested(pods[0])
        first = pods[0]["metadata"]["name"]
        bound = place(cluster, pods, policy, template["spec"]["nodeSelector"][HOSTNAME],
                      lambda p: (f"0/1 nodes are available: 1 Insufficient {resource}. "
                                 f"PodGroup {ns}/{group} gets rejected due to Pod {first} is "
                                 "unschedulable even after PostFilter"), minimum)
        pg["status"] = {"phase": "Scheduled" if bound else "Pending", "scheduled": bound}
    return react


def scheduler_plugins_deployment() -> Obj:
    """The chart's second scheduler, as the check finds it (component=scheduler)."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": SECOND_SCHEDULER, "namespace": "scheduler-plugins",
                         "labels": {"component": "scheduler"}},
            "spec": {"template": {"spec": {"containers": [{
                "name": "scheduler",
                "image": "registry.k8s.io/scheduler-plugins/kube-scheduler:v0.35.7"}]}}}}


def workload_api(policy: str, version: str = WORKLOAD_V1ALPHA1
                 ) -> Callable[[FakeCluster, str, Obj], None]:
    """The Job controller and kube-scheduler's GangScheduling plugin: a Job whose pods join
    a gang (v1alpha1: workloadRef to a Workload's pod group; v1alpha2: schedulingGroup naming
    a PodGroup) is bound all together once its minCount fits; under GANG the members that
    fit wait at Permit (no condition) and the rest are Unschedulable, and a v1alpha2
    PodGroup says PodGroupScheduled=False."""
    def react(cluster: FakeCluster, key: str, job: Obj) -> None:
        template = job.get("spec", {}).get("template", {})
        spec = template.get("spec", {})
        ref = spec.get("workloadRef") if version == WORKLOAD_V1ALPHA1 else (
            spec.get("schedulingGroup"))
        if key != "jobs.batch" or not ref:
            return
        name, ns = job["metadata"]["name"], _ns(job)
        if version == WORKLOAD_V1ALPHA1:
            workload = cluster.objects["workloads.scheduling.k8s.io"][ref["name"]]
            [group] = [g for g in workload["spec"]["podGroups"] if g["name"] == ref["podGroup"]]
            minimum = int(group["policy"]["gang"]["minCount"])
            podgroup = None
        else:
            podgroup = cluster.objects["podgroups.scheduling.k8s.io"][ref["podGroupName"]]
            minimum = int(podgroup["spec"]["schedulingPolicy"]["gang"]["minCount"])
        if policy == DROPPED:
            spec.pop("workloadRef", None)
            spec.pop("schedulingGroup", None)
        pods = member_pods(job, template, job["spec"]["parallelism"],
                           lambda i: f"{name}-{_suffix(ns, name, str(i))}")
        node = spec["nodeSelector"][HOSTNAME]
        fit = fitting(cluster, node, pods)
        take = {GANG: fit if fit >= minimum else 0, SILENT: fit if fit >= minimum else 0,
                GREEDY: fit, ONE: 1, DROPPED: fit}[policy]
        why = (f"0/1 nodes are available: 1 Insufficient {requested(pods[0])}. preemption: "
               "0/1 nodes are available: 1 No preemption victims found for incoming pod.")
        for i, pod in enumerate(pods):
            if i < take:
                pod["spec"]["nodeName"] = node
                pod["status"] = {"phase": "Succeeded" if take == len(pods) else "Running",
                                 "conditions": [{"type": "PodScheduled", "status": "True"}]}
            elif policy == SILENT or (policy == GANG and i < fit):  # held at Permit
                pod["status"] = {"phase": "Pending"}
            else:
                pod["status"] = {"phase": "Pending", "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": why}]}
            cluster.add("pods", pod)
        if podgroup is not None and policy != SILENT:
            podgroup["status"] = {"conditions": [
                {"type": "PodGroupScheduled", "status": "True", "reason": "Scheduled"} if take
                else {"type": "PodGroupScheduled", "status": "False", "reason": "Unschedulable",
                      "message": f"{len(pods) - fit} of {len(pods)} pods cannot be placed: "
                                 + why}]}
    return react


CONTROLLERS: dict[str, Callable[[str], Callable[[FakeCluster, str, Obj], None]]] = {
    "volcano": volcano, "kueue": kueue, "kai": kai, "coscheduling": coscheduling,
    "workload-api": workload_api,
    "workload-api-v1alpha2": lambda policy: workload_api(policy, WORKLOAD_V1ALPHA2)}


def containers(obj: Obj) -> list[Obj]:
    """The member containers of an object the check created (a Volcano, batch or Kueue Job);
    none for any other object."""
    spec = obj.get("spec") or {}
    templates = [t["template"] for t in spec.get("tasks") or []] + (
        [spec["template"]] if "template" in spec else [])
    return [c for t in templates for c in t.get("spec", {}).get("containers") or []]


def install(cluster: FakeCluster, solution: str, policy: str) -> None:
    """Serve the solution's APIs and run its simulated controllers with the policy."""
    for gv, resources in APIS[solution].items():
        cluster.extra_groups.setdefault(gv, {}).update(resources)
    if solution == "coscheduling":
        cluster.add("deployments", scheduler_plugins_deployment())
    cluster.reactors.append(CONTROLLERS[solution](policy))
