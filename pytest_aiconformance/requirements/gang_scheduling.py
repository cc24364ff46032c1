"""Gang scheduling: the solutions' API facts, the gangs' sizes and objects, and the readings of
what each scheduler says, as pure functions (checks/test_gang_scheduling.py drives them).
`SOLUTIONS` is the one registry of the alternatives: the check is parametrized by it and has
one runner per entry; each names its detection and install entry in data/operators.yaml.

API facts, and where they were read:
- Volcano: Job `batch.volcano.sh/v1alpha1`, PodGroup and Queue `scheduling.volcano.sh/v1beta1`;
  members carry the annotation `scheduling.k8s.io/group-name`.
- Kueue: `kueue.x-k8s.io/v1beta1` (served by 0.14 to 0.17). Topology-Aware Scheduling (beta,
  on by default since 0.14: pkg/features/kube_features.go): a `Topology` of node-label levels,
  a ResourceFlavor naming it in `topologyName` (which then needs a nodeLabel), and the pod
  template annotation `kueue.x-k8s.io/podset-required-topology` (apis/kueue/v1beta1/
  topology_types.go). A refused workload says "topology ... doesn't allow to fit".
- KAI Scheduler (github.com/kai-scheduler/KAI-Scheduler): PodGroup `scheduling.run.ai/v2alpha2`
  and Queue `scheduling.run.ai/v2` (deployments/kai-scheduler/crds); pods use schedulerName
  `kai-scheduler` and the queue label `kai.scheduler/queue` (default leaf queue
  `default-queue`, docs/quickstart); KAI's podgrouper annotates each pod with its PodGroup,
  `pod-group-name`, and makes a batch Job one gang of `kai.scheduler/batch-min-member` members
  (docs/batch); an unschedulable PodGroup gets `status.schedulingConditions` of type
  `UnschedulableOnNodePool` ("Resources were found for 2 pods while 3 are required for gang
  scheduling").
- scheduler-plugins Coscheduling (sigs.k8s.io/scheduler-plugins): PodGroup
  `scheduling.x-k8s.io/v1alpha1` (`minMember`, `scheduleTimeoutSeconds`), pods labelled
  `scheduling.x-k8s.io/pod-group` (apis/scheduling/v1alpha1/types.go); its Helm chart runs it as
  a second scheduler whose Deployment and profile are both named `scheduler-plugins-scheduler`
  (manifests/install/charts/as-a-second-scheduler); installed as the only scheduler, its
  profile is `default-scheduler`. With leader election the chart names the Lease after the
  profile too (`leaderElection.resourceName`, in the release namespace); kube-scheduler
  releases it when it stops (ReleaseOnCancel: `holderIdentity` emptied) and a killed one stops
  renewing it (`renewTime` + `leaseDurationSeconds`, k8s.io/client-go leaderelection).
- Kubernetes' own Workload API (alpha; read in k8s.io/api v0.35.4 and v0.36.2 and the
  kube-scheduler of k8s.io/kubernetes v1.35.4). 1.35: `scheduling.k8s.io/v1alpha1` Workload
  with `spec.podGroups[].policy.gang.minCount`; a pod joins with `spec.workloadRef {name,
  podGroup}`; feature gates GenericWorkload (API, pod field) and GangScheduling (the
  scheduler's GangScheduling plugin) and `--runtime-config=scheduling.k8s.io/v1alpha1=true`.
  The plugin lets a member enter the queue once minCount members exist, holds each member it
  placed at Permit ("waiting for minCount pods from a gang to be waiting on permit", logged
  only) until minCount are placed, then binds them together; a member with no room gets the
  scheduler's PodScheduled=False Unschedulable ("0/3 nodes are available: 1 Insufficient
  cpu, ..."); the held ones are rejected after 5 minutes ("rejected due to timeout after
  waiting 5m0s at plugin GangScheduling"). No Workload status in v1alpha1.
  1.36: `scheduling.k8s.io/v1alpha2` Workload with `spec.podGroupTemplates[].schedulingPolicy
  .gang.minCount`, a PodGroup object (`spec.podGroupTemplateRef.workload`, `spec.
  schedulingPolicy`, `status.conditions` of type `PodGroupScheduled`, reason `Unschedulable`);
  a pod joins with `spec.schedulingGroup.podGroupName` (workloadRef is gone).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

from pytest_aiconformance.cluster import workloads

Obj = dict[str, Any]

VOLCANO_BATCH = "batch.volcano.sh/v1alpha1"
VOLCANO_SCHEDULING = "scheduling.volcano.sh/v1beta1"
VOLCANO_GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
KUEUE = "kueue.x-k8s.io/v1beta1"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_REQUIRED_TOPOLOGY = "kueue.x-k8s.io/podset-required-topology"
KAI_SCHEDULING = "scheduling.run.ai/v2alpha2"
KAI_QUEUES = "scheduling.run.ai/v2"
KAI_SCHEDULER = "kai-scheduler"
KAI_QUEUE_LABEL = "kai.scheduler/queue"
KAI_DEFAULT_QUEUE = "default-queue"
KAI_POD_GROUP_ANNOTATION = "pod-group-name"
KAI_MIN_MEMBER_ANNOTATION = "kai.scheduler/batch-min-member"
KAI_UNSCHEDULABLE = "UnschedulableOnNodePool"
COSCHEDULING = "scheduling.x-k8s.io/v1alpha1"
COSCHEDULING_LABEL = "scheduling.x-k8s.io/pod-group"
COSCHEDULING_IMAGE = "scheduler-plugins/kube-scheduler"  # the chart's scheduler image
COSCHEDULING_NAME = "scheduler-plugins"  # in the chart's scheduler name (profile, lease)
LEASES = "coordination.k8s.io/v1"
WORKLOAD_V1ALPHA1 = "scheduling.k8s.io/v1alpha1"  # Kubernetes 1.35
WORKLOAD_V1ALPHA2 = "scheduling.k8s.io/v1alpha2"  # Kubernetes 1.36
WORKLOAD_POD_GROUP = "workers"  # the one pod group (template) of the check's Workload
PODGROUP_SCHEDULED = "PodGroupScheduled"
DEFAULT_SCHEDULER = "default-scheduler"
HOSTNAME = "kubernetes.io/hostname"
GANG_LABEL = "gang"
CPU_REQUEST = "10m"  # what a member asks for besides its accelerator
GANG_COMMAND = ["sh", "-c", "echo member $HOSTNAME; sleep 2"]


Api = tuple[str, str]  # (apiVersion, kind)


@dataclass(frozen=True)
class Solution:
    """One gang scheduling solution: the parameter id of its checks and the APIs it serves
    (`apis`, all served when it is installed, or all of one of `alternatives`: another
    version of it)."""

    name: str
    title: str
    operator: str  # its key in data/operators.yaml; "" for one built into Kubernetes
    apis: tuple[Api, ...]
    alternatives: tuple[tuple[Api, ...], ...] = ()

    @property
    def groups(self) -> list[str]:
        return sorted({api.split("/", 1)[0] for variant in self.variants for api, _ in variant})

    @property
    def variants(self) -> tuple[tuple[Api, ...], ...]:
        return (self.apis, *self.alternatives)

    def served(self, serves: Callable[[str, str], bool]) -> tuple[Api, ...] | None:
        """The first variant whose every API the server serves; None when none is."""
        return next((v for v in self.variants if all(serves(a, k) for a, k in v)), None)


SOLUTIONS = (
    Solution("volcano", "Volcano", "volcano",
             ((VOLCANO_SCHEDULING, "PodGroup"), (VOLCANO_BATCH, "Job"))),
    Solution("kueue", "Kueue", "kueue", ((KUEUE, "ClusterQueue"), (KUEUE, "Workload"))),
    Solution("kai", "KAI Scheduler", "kai-scheduler",
             ((KAI_SCHEDULING, "PodGroup"), (KAI_QUEUES, "Queue"))),
    Solution("coscheduling", "scheduler-plugins Coscheduling", "scheduler-plugins",
             ((COSCHEDULING, "PodGroup"),)),
    # the newest shape first: a 1.36 server serves only v1alpha2
    Solution("workload-api", "Kubernetes Workload API (gang policy)", "",
             ((WORKLOAD_V1ALPHA2, "Workload"), (WORKLOAD_V1ALPHA2, "PodGroup")),
             (((WORKLOAD_V1ALPHA1, "Workload"),),)),
)
BY_NAME = {s.name: s for s in SOLUTIONS}
# What --aic-install installs when no gang scheduler is found: Kueue, whose chart is pinned in
# registry.k8s.io's OCI repository and ships in its Go module (so it installs offline too).
INSTALLED_WHEN_NONE = "kueue"


def none_found() -> str:
    """The failure when no solution is installed: gang scheduling itself is missing."""
    return ("no gang scheduler found: none of " + ", ".join(s.title for s in SOLUTIONS)
            + " serves its APIs")


# --- sizes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GangPlan:
    """A gang: how many members, pinned to which node, each asking for one unit of what (and
    its CPU request: CPU_REQUEST, or more than half of the node's free CPU when the gang is
    sized in CPU)."""

    members: int
    node: str
    resource: str  # the extended resource each member takes one of; "" for a CPU-only gang
    free: int  # free units of it on the node when planned (0 for a CPU-only gang)
    why: str  # the sizing, for the evidence
    cpu: str = CPU_REQUEST  # each member's CPU request
    free_cpu: int = 0  # the node's free millicores when the gang is sized in CPU, else 0

    def resources(self) -> dict[str, Any]:
        """A member container's resources."""
        out: dict[str, Any] = {"requests": {"cpu": self.cpu}}
        if self.resource:
            out["limits"] = {self.resource: "1"}
        return out

    def covered(self) -> list[str]:
        """What a queue's quota has to cover for the gang."""
        return [self.resource, "cpu"] if self.resource else ["cpu"]

    def cpu_quota(self) -> str:
        """CPU quota that covers the whole gang (never less than 100 cores), so that a quota
        never decides for the node."""
        total = self.members * cpu_millis(self.cpu)
        return "100" if total <= 100_000 else f"{total}m"

    @property
    def room(self) -> str:
        """What the node had free of what the gang is sized in, for messages."""
        if self.resource:
            return f"{self.free} free {self.resource}"
        return f"{self.free_cpu}m free cpu" if self.free_cpu else "room for the gang"


def bound_together_plan(free: Mapping[str, int], resource: str,
                        cpu_nodes: Sequence[str]) -> GangPlan | None:
    """A gang of two that fits: on the node with the fewest (at least two) free units, else
    a CPU-only gang on the first schedulable node; None when neither exists.

    Never a one-member "gang": that would be bound together by any scheduler.
    """
    fits = sorted((f, n) for n, f in free.items() if f >= 2)
    if fits:
        units, node = fits[0]
        return GangPlan(2, node, resource, units,
                        f"{node} has {units} free {resource}: a gang of 2 members, one "
                        f"{resource} each")
    if cpu_nodes:
        what = resource or "accelerators"
        return GangPlan(2, cpu_nodes[0], "", 0,
                        f"no node has 2 free {what}: a CPU-only gang of 2 members on "
                        f"{cpu_nodes[0]} (the requirement is about gang scheduling, not "
                        "accelerators)")
    return None


def oversized_plan(free: Mapping[str, int], resource: str) -> GangPlan | None:
    """A gang one member larger than the free units of the node with the fewest (at least
    one) free: each member would fit alone, the gang cannot. None when no unit is free."""
    fits = sorted((f, n) for n, f in free.items() if f >= 1)
    if not fits:
        return None
    units, node = fits[0]
    return GangPlan(units + 1, node, resource, units,
                    f"{node} has {units} free {resource}: each of the {units + 1} members "
                    "would fit alone, the gang as a whole cannot")


def oversized_cpu_plan(free_cpu: Mapping[str, int], resource: str) -> GangPlan | None:
    """Where no extended resource is free (GPUs only through DRA, or every one busy): a gang
    of 2 on the schedulable node with the most free CPU (the emptiest, where the least can
    change during the window; ties by name), each member requesting more than half of it, so
    each fits alone and the two together cannot. None when no node has 2 millicores free.

    `free_cpu`: free millicores of the schedulable nodes only (see `free_cpu`)."""
    fits = sorted(((-f, n) for n, f in free_cpu.items() if f >= 2))
    if not fits:
        return None
    neg, node = fits[0]
    room = -neg
    each = room // 2 + 1
    what = f"free {resource}" if resource else "free accelerator (extended resource)"
    return GangPlan(2, node, "", 0,
                    f"no node has a {what}: a CPU-sized gang of 2 members on {node}, each "
                    f"requesting {each}m CPU, more than half of the {room}m it has free "
                    "(allocatable minus what its pods request): each member would fit alone, "
                    "the gang as a whole cannot (the requirement is about gang scheduling, "
                    "not accelerators)", cpu=f"{each}m", free_cpu=room)


def cpu_millis(value: Any) -> int:
    """A CPU quantity ("250m", "2", "0.5") in millicores, rounded up as the scheduler does."""
    cores: Decimal = parse_quantity(str(value))  # type: ignore[no-untyped-call]
    return math.ceil(cores * 1000)


def _requested_cpu(containers: Iterable[Mapping[str, Any]]) -> list[int]:
    return [cpu_millis(((c.get("resources") or {}).get("requests") or {}).get("cpu", "0"))
            for c in containers]


def pod_cpu_request(pod: Mapping[str, Any]) -> int:
    """The CPU a pod holds on its node, in millicores, by the scheduler's rule (component-
    helpers resource.PodRequests): pod-level requests when set, else the larger of its
    containers plus sidecars (restartable init containers) and its heaviest init step (an
    init container plus the sidecars started before it), plus the RuntimeClass overhead."""
    spec = pod.get("spec") or {}
    overhead = cpu_millis((spec.get("overhead") or {}).get("cpu", "0"))
    pod_level = ((spec.get("resources") or {}).get("requests") or {}).get("cpu")
    if pod_level is not None:
        return cpu_millis(pod_level) + overhead
    sidecars, init_peak = 0, 0
    for ctr in spec.get("initContainers") or []:
        [req] = _requested_cpu([ctr])
        if ctr.get("restartPolicy") == "Always":
            sidecars += req
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, sidecars + req)
    return max(sum(_requested_cpu(spec.get("containers") or [])) + sidecars,
               init_peak) + overhead


def free_cpu(nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]],
             names: Iterable[str] | None = None) -> dict[str, int]:
    """Free CPU per node in millicores: allocatable minus what the non-terminated pods bound
    to it request (what the scheduler counts); only the nodes in `names` when given."""
    wanted = None if names is None else set(names)
    out = {}
    for node in nodes:
        name = str(node["metadata"]["name"])
        if wanted is None or name in wanted:
            out[name] = cpu_millis(
                (node.get("status", {}).get("allocatable") or {}).get("cpu", "0"))
    for pod in pods:
        where = (pod.get("spec") or {}).get("nodeName")
        if where in out and (pod.get("status") or {}).get("phase") not in ("Succeeded",
                                                                           "Failed"):
            out[where] -= pod_cpu_request(pod)
    return out


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether one of the tolerations tolerates the taint (Kubernetes' matching rules)."""
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if not tol.get("key"):
            if tol.get("operator") == "Exists":
                return True
            continue
        if tol.get("key") != taint.get("key"):
            continue
        if tol.get("operator") == "Exists" or tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def schedulable_nodes(nodes: Iterable[Obj], tolerations: Sequence[Mapping[str, Any]]) -> list[str]:
    """Ready, uncordoned nodes whose scheduling taints our pods tolerate, by name."""
    out = []
    for node in nodes:
        conditions = node.get("status", {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        taints = [t for t in node.get("spec", {}).get("taints") or []
                  if t.get("effect") in ("NoSchedule", "NoExecute")]
        if ready and not node.get("spec", {}).get("unschedulable") and all(
                tolerates(tolerations, t) for t in taints):
            out.append(str(node["metadata"]["name"]))
    return sorted(out)


# --- objects --------------------------------------------------------------------------------


def member_spec(plan: GangPlan, image: str, scheduler: str | None = None) -> Obj:
    """A member pod's spec: restricted, pinned to the plan's node, one unit each."""
    ctr = workloads.container("worker", GANG_COMMAND, image=image, resources_=plan.resources())
    pod = workloads.pod("member", "unused", [ctr], node_selector={HOSTNAME: plan.node},
                        scheduler_name=scheduler)
    spec: Obj = pod["spec"]
    return spec


def volcano_job(name: str, namespace: str, plan: GangPlan, queue: str, image: str) -> Obj:
    """A Volcano Job whose one task has `members` replicas and minAvailable `members`."""
    return {
        "apiVersion": VOLCANO_BATCH, "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedulerName": "volcano", "minAvailable": plan.members, "queue": queue,
            "tasks": [{"name": "worker", "replicas": plan.members,
                       "template": {"metadata": {"labels": {GANG_LABEL: name}},
                                    "spec": member_spec(plan, image)}}],
        },
    }


def kueue_objects(name: str, namespace: str, plan: GangPlan, local_queue: str) -> list[Obj]:
    """Topology (node level), a ResourceFlavor on the plan's node naming it, a ClusterQueue
    whose quota covers the whole gang, and a LocalQueue: quota never blocks the gang, so only
    an all-or-nothing decision against the node's free capacity can keep it out."""
    quota = [{"name": plan.resource, "nominalQuota": plan.members}] if plan.resource else []
    return [
        {"apiVersion": KUEUE, "kind": "Topology", "metadata": {"name": name},
         "spec": {"levels": [{"nodeLabel": HOSTNAME}]}},
        {"apiVersion": KUEUE, "kind": "ResourceFlavor", "metadata": {"name": name},
         "spec": {"nodeLabels": {HOSTNAME: plan.node}, "topologyName": name}},
        {"apiVersion": KUEUE, "kind": "ClusterQueue", "metadata": {"name": name},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": plan.covered(),
             "flavors": [{"name": name, "resources": [
                 *quota, {"name": "cpu", "nominalQuota": plan.cpu_quota()}]}]}]}},
        {"apiVersion": KUEUE, "kind": "LocalQueue",
         "metadata": {"name": local_queue, "namespace": namespace},
         "spec": {"clusterQueue": name}},
    ]


def kueue_job(name: str, namespace: str, plan: GangPlan, local_queue: str, image: str) -> Obj:
    """A suspended batch/v1 Job of `members` pods that must share one node (required topology
    at the node level), queued in the LocalQueue."""
    spec = member_spec(plan, image)
    spec.pop("nodeSelector", None)  # the ResourceFlavor pins the node; Kueue injects it
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {KUEUE_QUEUE_LABEL: local_queue}},
            "spec": {"parallelism": plan.members, "completions": plan.members,
                     "backoffLimit": 0, "suspend": True,
                     "template": {"metadata": {"labels": {GANG_LABEL: name},
                                               "annotations": {KUEUE_REQUIRED_TOPOLOGY: HOSTNAME}},
                                  "spec": spec}}}


def kai_queues(name: str) -> list[Obj]:
    """A parent and a leaf KAI Queue without quota limits (when there is no default-queue)."""
    unlimited = {"quota": -1, "limit": -1, "overQuotaWeight": 1}
    resources = {r: dict(unlimited) for r in ("cpu", "gpu", "memory")}
    return [
        {"apiVersion": KAI_QUEUES, "kind": "Queue", "metadata": {"name": f"{name}-parent"},
         "spec": {"resources": resources}},
        {"apiVersion": KAI_QUEUES, "kind": "Queue", "metadata": {"name": name},
         "spec": {"parentQueue": f"{name}-parent", "resources": resources}},
    ]


def kai_job(name: str, namespace: str, plan: GangPlan, queue: str, image: str) -> Obj:
    """A batch/v1 Job of `members` pods for kai-scheduler, made one gang of `members`."""
    labels = {KAI_QUEUE_LABEL: queue}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels),
                         "annotations": {KAI_MIN_MEMBER_ANNOTATION: str(plan.members)}},
            "spec": {"parallelism": plan.members, "completions": plan.members,
                     "backoffLimit": 0,
                     "template": {"metadata": {"labels": {GANG_LABEL: name, **labels}},
                                  "spec": member_spec(plan, image, KAI_SCHEDULER)}}}


def coscheduling_objects(name: str, namespace: str, plan: GangPlan, scheduler: str,
                         image: str) -> list[Obj]:
    """A PodGroup of minMember `members`, then a batch/v1 Job of `members` pods labelled with
    it for `scheduler` (a Job, so that its pods complete as every workload's do: a simulated
    node completes only a Job's pods)."""
    return [{"apiVersion": COSCHEDULING, "kind": "PodGroup",
             "metadata": {"name": name, "namespace": namespace},
             "spec": {"minMember": plan.members, "scheduleTimeoutSeconds": 10}},
            {"apiVersion": "batch/v1", "kind": "Job",
             "metadata": {"name": name, "namespace": namespace},
             "spec": {"parallelism": plan.members, "completions": plan.members,
                      "backoffLimit": 0,
                      "template": {"metadata": {"labels": {GANG_LABEL: name,
                                                           COSCHEDULING_LABEL: name}},
                                   "spec": member_spec(plan, image, scheduler)}}}]


def coscheduling_scheduler(deployments: Iterable[Obj],
                           leases: Iterable[Obj] = ()) -> tuple[str, str]:
    """The schedulerName that runs Coscheduling, and how it was found: the chart's second
    scheduler (its Deployment's name is its profile's), else a second scheduler's
    leader-election Lease (named after its profile, as the chart names it; a scheduler run
    outside the cluster shows only that), else the default scheduler."""
    for dep in sorted(deployments, key=lambda d: str(d["metadata"]["name"])):
        containers = dep.get("spec", {}).get("template", {}).get("spec", {}).get(
            "containers") or []
        if any(COSCHEDULING_IMAGE in str(c.get("image", "")) for c in containers):
            meta = dep["metadata"]
            return (str(meta["name"]), f"scheduler-plugins runs as a second scheduler: "
                    f"Deployment {meta.get('namespace', '')}/{meta['name']}")
    lease = coscheduling_lease(leases)
    if lease is not None:
        meta = lease["metadata"]
        return (str(meta["name"]), "scheduler-plugins runs as a second scheduler: its "
                f"leader-election Lease {meta.get('namespace', '')}/{meta['name']} (named "
                "after its profile, as the chart names it)")
    return (DEFAULT_SCHEDULER, "no scheduler-plugins Deployment or leader-election Lease "
            "found: Coscheduling is taken to run in the default scheduler's profile")


def coscheduling_lease(leases: Iterable[Obj]) -> Obj | None:
    """The leader-election Lease of a scheduler-plugins scheduler (its name names
    scheduler-plugins and ends in "scheduler", as the chart's does), by namespace and name."""
    found = [lease for lease in leases
             if COSCHEDULING_NAME in str(lease["metadata"]["name"])
             and str(lease["metadata"]["name"]).endswith("scheduler")]
    return min(found, key=lambda o: (str(o["metadata"].get("namespace", "")),
                                     str(o["metadata"]["name"])), default=None)


def _rfc3339(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def lease_gone(lease: Obj, now: datetime.datetime) -> str:
    """Why a leader-election Lease shows that its scheduler is not running ("" while a holder
    renews it): released (no holder: the scheduler stopped), or not renewed for twice its
    duration (killed)."""
    spec = lease.get("spec") or {}
    meta = lease["metadata"]
    where = f"Lease {meta.get('namespace', '')}/{meta['name']}"
    holder = spec.get("holderIdentity")
    if not holder:
        return f"nobody holds its leader-election {where} (released: the scheduler stopped)"
    renewed = _rfc3339(str(spec.get("renewTime") or ""))
    duration = int(spec.get("leaseDurationSeconds") or 15)
    if renewed is None:
        return f"its leader-election {where} has no renewTime (held by {holder})"
    age = (now - renewed).total_seconds()
    if age > 2 * duration:
        return (f"its leader-election {where} was last renewed {age:.0f} s ago by {holder} "
                f"(lease duration {duration} s): the scheduler is gone")
    return ""


def workload_api_objects(name: str, namespace: str, plan: GangPlan, image: str,
                         version: str) -> list[Obj]:
    """The Workload API's gang, in the served version, then a batch/v1 Job of `members` pods
    that join it (a Job, so that its pods complete as every workload's do).

    v1alpha1 (1.35): a Workload whose pod group has a gang policy of minCount `members`;
    the pods name it in `spec.workloadRef`. v1alpha2 (1.36): a Workload whose pod group
    template has that policy, and a PodGroup made from the template (what a controller does);
    the pods name the PodGroup in `spec.schedulingGroup`."""
    gang = {"gang": {"minCount": plan.members}}
    spec = member_spec(plan, image)
    meta = {"name": name, "namespace": namespace}
    if version == WORKLOAD_V1ALPHA1:
        objs: list[Obj] = [{"apiVersion": version, "kind": "Workload", "metadata": dict(meta),
                            "spec": {"podGroups": [{"name": WORKLOAD_POD_GROUP,
                                                    "policy": gang}]}}]
        spec["workloadRef"] = {"name": name, "podGroup": WORKLOAD_POD_GROUP}
    else:
        objs = [{"apiVersion": version, "kind": "Workload", "metadata": dict(meta),
                 "spec": {"podGroupTemplates": [{"name": WORKLOAD_POD_GROUP,
                                                 "schedulingPolicy": gang}]}},
                {"apiVersion": version, "kind": "PodGroup", "metadata": dict(meta),
                 "spec": {"podGroupTemplateRef": {"workload": {
                     "workloadName": name, "podGroupTemplateName": WORKLOAD_POD_GROUP}},
                          "schedulingPolicy": gang}}]
        spec["schedulingGroup"] = {"podGroupName": name}
    objs.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": dict(meta),
                 "spec": {"parallelism": plan.members, "completions": plan.members,
                          "backoffLimit": 0,
                          "template": {"metadata": {"labels": {GANG_LABEL: name}},
                                       "spec": spec}}})
    return objs


def workload_min_count(obj: Mapping[str, Any]) -> int | None:
    """The gang minCount of the check's pod group in a Workload (v1alpha1 pod group, v1alpha2
    template) or a v1alpha2 PodGroup; None when it has no gang policy."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "PodGroup":
        policy = spec.get("schedulingPolicy") or {}
    else:
        groups = spec.get("podGroups") or spec.get("podGroupTemplates") or []
        group: Mapping[str, Any] = next(
            (g for g in groups if g.get("name") == WORKLOAD_POD_GROUP), {})
        policy = group.get("policy") or group.get("schedulingPolicy") or {}
    count = (policy.get("gang") or {}).get("minCount")
    return int(count) if count is not None else None


def workload_membership(pods: Mapping[str, Obj], version: str) -> dict[str, str]:
    """Per member the gang it joined as the API server kept it ("" when the field is gone:
    an API server without the GenericWorkload gate drops it): v1alpha1 `workloadRef`
    as "<name>/<podGroup>", v1alpha2 `schedulingGroup.podGroupName`."""
    out = {}
    for name, pod in pods.items():
        spec = pod.get("spec") or {}
        if version == WORKLOAD_V1ALPHA1:
            ref = spec.get("workloadRef") or {}
            out[name] = f"{ref['name']}/{ref.get('podGroup', '')}" if ref.get("name") else ""
        else:
            out[name] = str((spec.get("schedulingGroup") or {}).get("podGroupName") or "")
    return out


# --- what happened, and what the scheduler said ---------------------------------------------


def volcano_podgroup(podgroups: Iterable[Obj], job: str) -> Obj | None:
    """The PodGroup Volcano made for the check's Job (the one its Job owns), if any yet."""
    for pg in podgroups:
        owners = pg["metadata"].get("ownerReferences", [])
        if any(o.get("kind") == "Job" and o.get("name") == job for o in owners):
            return pg
    return None


def bound_members(pods: Mapping[str, Obj]) -> list[str]:
    """Names of the members a node was assigned to."""
    return sorted(str(p["metadata"]["name"]) for p in pods.values()
                  if p.get("spec", {}).get("nodeName"))


def all_completed(pods: Mapping[str, Obj], members: int) -> bool:
    return len(pods) == members and all(
        p.get("status", {}).get("phase") == "Succeeded" for p in pods.values())


def _said(conditions: Iterable[Mapping[str, Any]]) -> list[str]:
    return [" ".join(str(c.get(k, "")) for k in ("type", "reason", "message")
                     if c.get(k)).strip() for c in conditions]


def volcano_refusal(podgroup: Obj) -> str:
    """Volcano's own reason for not scheduling a PodGroup ("" when it gave none)."""
    said = _said(podgroup.get("status", {}).get("conditions") or [])
    return "; ".join(s for s in said if "NotEnoughResources" in s or "Unschedulable" in s)


def kai_refusal(podgroup: Obj) -> str:
    """KAI's own reason for not scheduling a PodGroup ("" when it gave none)."""
    conds = [c for c in podgroup.get("status", {}).get("schedulingConditions") or []
             if c.get("type") == KAI_UNSCHEDULABLE or c.get("reason") == "Unschedulable"]
    return "; ".join(_said(conds))


def kueue_refusal(workloads_: Iterable[Obj]) -> str:
    """Kueue's own reason for not reserving quota (QuotaReserved=False; "" when none)."""
    conds = [c for w in workloads_ for c in w.get("status", {}).get("conditions") or []
             if c.get("type") == "QuotaReserved" and c.get("status") == "False"]
    return "; ".join(_said(conds))


def pod_refusals(pods: Mapping[str, Obj]) -> str:
    """The scheduler's own reason on members it did not place (PodScheduled=False,
    Unschedulable; "" when none says so)."""
    out = []
    for pod in sorted(pods.values(), key=lambda p: str(p["metadata"]["name"])):
        for c in pod.get("status", {}).get("conditions") or []:
            if (c.get("type") == "PodScheduled" and c.get("status") == "False"
                    and c.get("reason") == "Unschedulable"):
                out.append(f"{pod['metadata']['name']}: {c.get('message', 'Unschedulable')}")
    return "; ".join(out)


def podgroup_refusal(podgroup: Obj) -> str:
    """The scheduler's own reason on a v1alpha2 PodGroup it did not schedule
    (PodGroupScheduled=False; "" when none)."""
    conds = [c for c in podgroup.get("status", {}).get("conditions") or []
             if c.get("type") == PODGROUP_SCHEDULED and c.get("status") == "False"]
    return "; ".join(_said(conds))
