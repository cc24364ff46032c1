"""gang_scheduling's pure decisions (pytest_aiconformance.requirements.gang_scheduling): the
solutions' registry, sizes, objects, and what each scheduler says."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.cluster.operators import load_operator_specs
from pytest_aiconformance.requirements import gang_scheduling as G

GPU = "nvidia.com/gpu"


def node(name: str, *, ready: bool = True, cordoned: bool = False,
         taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"unschedulable": cordoned, "taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def pod(name: str, node_name: str = "", phase: str = "Pending",
        conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"nodeName": node_name} if node_name else {},
            "status": {"phase": phase, "conditions": conditions or []}}


# --- sizes ----------------------------------------------------------------------------------

def test_bound_together_plan_takes_the_tightest_node_with_two_free():
    plan = G.bound_together_plan({"a": 8, "b": 2, "c": 1, "d": 2}, GPU, ["x"])
    assert plan == G.GangPlan(2, "b", GPU, 2, "b has 2 free nvidia.com/gpu: a gang of 2 "
                              "members, one nvidia.com/gpu each")
    assert plan.resources() == {"requests": {"cpu": "10m"}, "limits": {GPU: "1"}}
    assert plan.covered() == [GPU, "cpu"]


def test_bound_together_plan_is_never_a_one_member_gang():
    """No node has 2 free: a CPU-only gang of 2, said so; no node for it either: None."""
    plan = G.bound_together_plan({"a": 1, "b": 0}, GPU, ["cpu-1", "cpu-2"])
    assert plan == G.GangPlan(2, "cpu-1", "", 0,
                              "no node has 2 free nvidia.com/gpu: a CPU-only gang of 2 members "
                              "on cpu-1 (the requirement is about gang scheduling, not "
                              "accelerators)")
    assert plan.resources() == {"requests": {"cpu": "10m"}}
    assert plan.covered() == ["cpu"]
    assert G.bound_together_plan({}, "", ["n"]).why.startswith("no node has 2 free accelerators")
    assert G.bound_together_plan({"a": 1}, GPU, []) is None


def test_oversized_plan_is_one_above_the_tightest_node():
    assert G.oversized_plan({"a": 4, "b": 3, "c": 0}, GPU) == G.GangPlan(
        4, "b", GPU, 3, "b has 3 free nvidia.com/gpu: each of the 4 members would fit alone, "
        "the gang as a whole cannot")
    assert G.oversized_plan({"a": 1}, GPU).members == 2  # type: ignore[union-attr]
    assert G.oversized_plan({"a": 0}, GPU) is None
    assert G.oversized_plan({}, "") is None


def test_oversized_cpu_plan_takes_more_than_half_of_the_emptiest_node():
    """No extended resource free: 2 members, each over half the node's free CPU, on the node
    with the most free (ties by name)."""
    plan = G.oversized_cpu_plan({"a": 3000, "b": 31500, "c": 31500}, "")
    assert plan == G.GangPlan(
        2, "b", "", 0, "no node has a free accelerator (extended resource): a CPU-sized gang of "
        "2 members on b, each requesting 15751m CPU, more than half of the 31500m it has free "
        "(allocatable minus what its pods request): each member would fit alone, the gang as a "
        "whole cannot (the requirement is about gang scheduling, not accelerators)",
        cpu="15751m", free_cpu=31500)
    assert plan.resources() == {"requests": {"cpu": "15751m"}}
    assert plan.room == "31500m free cpu"
    assert plan.covered() == ["cpu"]
    # each fits alone, two do not: 2 * (f // 2 + 1) > f >= f // 2 + 1
    for room in (2, 3, 4, 999, 1000):
        each = G.cpu_millis(G.oversized_cpu_plan({"n": room}, "").cpu)  # type: ignore[union-attr]
        assert each <= room < 2 * each
    busy = G.oversized_cpu_plan({"n": 8000}, GPU)
    assert busy is not None
    assert busy.why.startswith("no node has a free nvidia.com/gpu: a CPU-sized gang")
    assert G.oversized_cpu_plan({"n": 1, "m": -200}, GPU) is None
    assert G.oversized_cpu_plan({}, "") is None


def test_the_gpu_sizing_keeps_its_room_text():
    assert G.oversized_plan({"a": 2}, GPU).room == "2 free nvidia.com/gpu"  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "millis"), [("250m", 250), ("2", 2000), ("0.5", 500),
                                              ("1.0001", 1001), ("0", 0), (4, 4000)])
def test_cpu_millis(text: str, millis: int):
    assert G.cpu_millis(text) == millis


def _ctr(cpu: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": "c", **({"resources": {"requests": {"cpu": cpu}}} if cpu else {}), **extra}


@pytest.mark.parametrize(("spec", "millis"), [
    ({"containers": [_ctr("100m"), _ctr("1"), _ctr()]}, 1100),
    # an init step heavier than the containers decides
    ({"initContainers": [_ctr("3")], "containers": [_ctr("1")]}, 3000),
    # sidecars (restartable init containers) run beside the containers and later init steps
    ({"initContainers": [_ctr("500m", restartPolicy="Always"), _ctr("2")],
      "containers": [_ctr("1")]}, 2500),
    ({"initContainers": [_ctr("500m", restartPolicy="Always")], "containers": [_ctr("1")]},
     1500),
    # the RuntimeClass overhead is added; pod-level requests replace the containers'
    ({"containers": [_ctr("1")], "overhead": {"cpu": "250m"}}, 1250),
    ({"containers": [_ctr("1")], "resources": {"requests": {"cpu": "4"}}}, 4000),
    ({"containers": [_ctr()]}, 0),
])
def test_pod_cpu_request_follows_the_schedulers_rule(spec: dict[str, Any], millis: int):
    assert G.pod_cpu_request({"spec": spec}) == millis


def test_free_cpu_counts_the_requests_of_non_terminated_pods_on_each_node():
    nodes = [{"metadata": {"name": n}, "status": {"allocatable": {"cpu": c}}}
             for n, c in (("a", "32"), ("b", "7500m"), ("c", "4"))]

    def on(node_name: str, cpu: str, phase: str = "Running") -> dict[str, Any]:
        return {"spec": {"nodeName": node_name, "containers": [_ctr(cpu)]},
                "status": {"phase": phase}}

    pods = [on("a", "4"), on("a", "2", "Succeeded"), on("a", "1", "Failed"), on("b", "500m"),
            on("b", "1", "Pending"), {"spec": {"containers": [_ctr("8")]}}, on("x", "1")]
    assert G.free_cpu(nodes, pods) == {"a": 28000, "b": 6000, "c": 4000}
    assert G.free_cpu(nodes, pods, ["b", "z"]) == {"b": 6000}


@pytest.mark.parametrize(("taint", "tolerated"), [
    ({"key": "nvidia.com/gpu", "effect": "NoSchedule"}, True),
    ({"key": "pool", "value": "a", "effect": "NoSchedule"}, True),
    ({"key": "pool", "value": "b", "effect": "NoSchedule"}, False),
    ({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}, False),
    ({"key": "dedicated", "effect": "NoExecute"}, False),
])
def test_tolerates(taint: dict[str, str], tolerated: bool):
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                   {"key": "pool", "operator": "Equal", "value": "a"},
                   {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    assert G.tolerates(tolerations, taint) is tolerated
    assert G.tolerates([{"operator": "Exists"}], taint)  # tolerates everything


def test_schedulable_nodes():
    tols = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]
    nodes = [node("z"), node("a", taints=[{"key": "kwok.x-k8s.io/node", "value": "fake",
                                           "effect": "NoSchedule"}]),
             node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane",
                                 "effect": "NoSchedule"}]),
             node("soft", taints=[{"key": "x", "effect": "PreferNoSchedule"}]),
             node("down", ready=False), node("cordoned", cordoned=True)]
    assert G.schedulable_nodes(nodes, tols) == ["a", "soft", "z"]


# --- objects --------------------------------------------------------------------------------

PLAN = G.GangPlan(3, "gpu-1", GPU, 2, "")


def test_kueue_objects_give_quota_for_the_whole_gang_and_require_one_node():
    topo, flavor, cq, lq = G.kueue_objects("aic-x", "ns", PLAN, "lq")
    assert topo["kind"] == "Topology"
    assert topo["spec"] == {"levels": [{"nodeLabel": "kubernetes.io/hostname"}]}
    assert flavor["spec"] == {"nodeLabels": {"kubernetes.io/hostname": "gpu-1"},
                              "topologyName": "aic-x"}
    [group] = cq["spec"]["resourceGroups"]
    assert group["coveredResources"] == [GPU, "cpu"]
    assert group["flavors"][0]["resources"] == [{"name": GPU, "nominalQuota": 3},
                                                {"name": "cpu", "nominalQuota": "100"}]
    assert lq["metadata"] == {"name": "lq", "namespace": "ns"}
    assert lq["spec"] == {"clusterQueue": "aic-x"}
    job = G.kueue_job("gang-big", "ns", PLAN, "lq", "img")
    assert job["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "lq"}
    assert (job["spec"]["parallelism"], job["spec"]["completions"]) == (3, 3)
    assert job["spec"]["suspend"] is True
    template = job["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "kueue.x-k8s.io/podset-required-topology": "kubernetes.io/hostname"}
    assert "nodeSelector" not in template["spec"]  # the flavor pins the node
    assert template["spec"]["containers"][0]["resources"]["limits"] == {GPU: "1"}


def test_kueue_objects_cpu_only():
    cpu = G.GangPlan(2, "n", "", 0, "")
    [group] = G.kueue_objects("q", "ns", cpu, "lq")[2]["spec"]["resourceGroups"]
    assert group["coveredResources"] == ["cpu"]
    assert group["flavors"][0]["resources"] == [{"name": "cpu", "nominalQuota": "100"}]


def test_kueue_cpu_quota_covers_a_cpu_sized_gang():
    """Quota never decides for the node: a gang of 2 x 96001m gets 192002m, not 100 cores."""
    small = G.GangPlan(2, "n", "", 0, "", cpu="16001m", free_cpu=32000)
    assert small.cpu_quota() == "100"
    big = G.GangPlan(2, "n", "", 0, "", cpu="96001m", free_cpu=192000)
    [group] = G.kueue_objects("q", "ns", big, "lq")[2]["spec"]["resourceGroups"]
    assert group["flavors"][0]["resources"] == [{"name": "cpu", "nominalQuota": "192002m"}]
    job = G.kueue_job("gang-big", "ns", big, "lq", "img")
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "96001m"}}


def test_volcano_job():
    job = G.volcano_job("gang-ok", "ns", PLAN, "default", "img")
    assert job["spec"]["minAvailable"] == 3
    [task] = job["spec"]["tasks"]
    assert task["replicas"] == 3
    assert task["template"]["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "gpu-1"}
    assert task["template"]["metadata"]["labels"] == {"gang": "gang-ok"}


def test_kai_job_and_queues():
    job = G.kai_job("gang-ok", "ns", PLAN, "default-queue", "img")
    assert job["metadata"]["annotations"] == {"kai.scheduler/batch-min-member": "3"}
    assert job["metadata"]["labels"] == {"kai.scheduler/queue": "default-queue"}
    template = job["spec"]["template"]
    assert template["metadata"]["labels"] == {"gang": "gang-ok",
                                              "kai.scheduler/queue": "default-queue"}
    assert template["spec"]["schedulerName"] == "kai-scheduler"
    parent, leaf = G.kai_queues("aic-ns")
    assert parent["apiVersion"] == leaf["apiVersion"] == "scheduling.run.ai/v2"
    assert leaf["spec"]["parentQueue"] == "aic-ns-parent"
    assert leaf["spec"]["resources"]["gpu"] == {"quota": -1, "limit": -1, "overQuotaWeight": 1}


def test_coscheduling_objects():
    pg, job = G.coscheduling_objects("gang-big", "ns", PLAN, "scheduler-plugins-scheduler",
                                     "img")
    assert pg["apiVersion"] == "scheduling.x-k8s.io/v1alpha1"
    assert pg["spec"]["minMember"] == 3
    assert job["kind"] == "Job"
    assert job["spec"]["parallelism"] == job["spec"]["completions"] == 3
    template = job["spec"]["template"]
    assert template["metadata"]["labels"] == {"gang": "gang-big",
                                              "scheduling.x-k8s.io/pod-group": "gang-big"}
    assert template["spec"]["schedulerName"] == "scheduler-plugins-scheduler"


def test_coscheduling_scheduler_name():
    def dep(name: str, image: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "scheduler-plugins"},
                "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}

    second = dep("scheduler-plugins-scheduler",
                 "registry.k8s.io/scheduler-plugins/kube-scheduler:v0.35.7")
    assert G.coscheduling_scheduler([dep("other", "registry.k8s.io/kube-scheduler"), second]) \
        == ("scheduler-plugins-scheduler", "scheduler-plugins runs as a second scheduler: "
            "Deployment scheduler-plugins/scheduler-plugins-scheduler")
    assert G.coscheduling_scheduler([])[0] == "default-scheduler"


def test_solutions_and_none_found():
    assert [s.name for s in G.SOLUTIONS] == ["volcano", "kueue", "kai", "coscheduling",
                                             "workload-api"]
    assert G.BY_NAME["kai"].groups == ["scheduling.run.ai"]
    assert G.BY_NAME["volcano"].groups == ["batch.volcano.sh", "scheduling.volcano.sh"]
    assert G.BY_NAME["workload-api"].groups == ["scheduling.k8s.io"]
    assert G.none_found() == ("no gang scheduler found: none of Volcano, Kueue, KAI Scheduler, "
                              "scheduler-plugins Coscheduling, Kubernetes Workload API (gang "
                              "policy) serves its APIs")


def test_every_solution_names_its_operators_yaml_entry():
    """The registry's facts and operators.yaml's (detection, install) agree: each installable
    solution's entry exists and lists a CRD of each of its API groups (the Workload API is
    Kubernetes' own); what --aic-install installs when none is found has a chart."""
    specs = load_operator_specs()
    for sol in G.SOLUTIONS:
        if not sol.operator:
            assert sol.name == "workload-api"
            continue
        crd_groups = {crd.split(".", 1)[1] for crd in specs[sol.operator].crds}
        assert set(sol.groups) <= crd_groups, sol.name
    assert specs[G.BY_NAME[G.INSTALLED_WHEN_NONE].operator].chart


@pytest.mark.parametrize(("served", "variant"), [
    # 1.35: only v1alpha1's Workload (its PriorityClass is no reason)
    ({("scheduling.k8s.io/v1alpha1", "Workload")}, (("scheduling.k8s.io/v1alpha1", "Workload"),)),
    # 1.36: v1alpha2's Workload and PodGroup; the newer wins where both were served
    ({("scheduling.k8s.io/v1alpha2", "Workload"), ("scheduling.k8s.io/v1alpha2", "PodGroup"),
      ("scheduling.k8s.io/v1alpha1", "Workload")},
     (("scheduling.k8s.io/v1alpha2", "Workload"), ("scheduling.k8s.io/v1alpha2", "PodGroup"))),
    # v1alpha2 without its PodGroup is not a gang API; Kueue's Workload is not Kubernetes'
    ({("scheduling.k8s.io/v1alpha2", "Workload"), ("kueue.x-k8s.io/v1beta1", "Workload"),
      ("scheduling.k8s.io/v1alpha1", "PriorityClass")}, None),
])
def test_the_workload_api_is_recognised_by_either_served_version(
        served: set[tuple[str, str]], variant: Any):
    assert G.BY_NAME["workload-api"].served(lambda a, k: (a, k) in served) == variant
    kueue = G.BY_NAME["kueue"].served(lambda a, k: a.startswith("kueue"))
    assert kueue == G.BY_NAME["kueue"].apis


def test_workload_api_objects_of_1_35():
    plan = G.GangPlan(2, "n1", "", 0, "", cpu="16001m")
    workload, job = G.workload_api_objects("gang-big", "ns", plan, "img",
                                           "scheduling.k8s.io/v1alpha1")
    assert workload == {"apiVersion": "scheduling.k8s.io/v1alpha1", "kind": "Workload",
                        "metadata": {"name": "gang-big", "namespace": "ns"},
                        "spec": {"podGroups": [{"name": "workers",
                                                "policy": {"gang": {"minCount": 2}}}]}}
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert (job["spec"]["parallelism"], job["spec"]["completions"]) == (2, 2)
    template = job["spec"]["template"]
    assert template["metadata"]["labels"] == {"gang": "gang-big"}
    assert template["spec"]["workloadRef"] == {"name": "gang-big", "podGroup": "workers"}
    assert template["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "n1"}
    assert "schedulerName" not in template["spec"]  # kube-scheduler's default profile
    assert G.workload_min_count(workload) == 2


def test_workload_api_objects_of_1_36():
    workload, podgroup, job = G.workload_api_objects("gang-ok", "ns", PLAN, "img",
                                                     "scheduling.k8s.io/v1alpha2")
    assert workload["spec"] == {"podGroupTemplates": [{
        "name": "workers", "schedulingPolicy": {"gang": {"minCount": 3}}}]}
    assert (podgroup["apiVersion"], podgroup["kind"]) == ("scheduling.k8s.io/v1alpha2",
                                                          "PodGroup")
    assert podgroup["spec"] == {
        "podGroupTemplateRef": {"workload": {"workloadName": "gang-ok",
                                             "podGroupTemplateName": "workers"}},
        "schedulingPolicy": {"gang": {"minCount": 3}}}
    spec = job["spec"]["template"]["spec"]
    assert spec["schedulingGroup"] == {"podGroupName": "gang-ok"}
    assert "workloadRef" not in spec
    assert spec["containers"][0]["resources"]["limits"] == {GPU: "1"}
    assert G.workload_min_count(workload) == G.workload_min_count(podgroup) == 3
    assert G.workload_min_count({"kind": "Workload", "spec": {"podGroupTemplates": [
        {"name": "workers", "schedulingPolicy": {"basic": {}}}]}}) is None


def test_workload_membership_as_the_api_server_kept_it():
    pods = {"a": {"spec": {"workloadRef": {"name": "w", "podGroup": "workers"}}},
            "b": {"spec": {}}}
    assert G.workload_membership(pods, "scheduling.k8s.io/v1alpha1") == {"a": "w/workers",
                                                                        "b": ""}
    pods = {"a": {"spec": {"schedulingGroup": {"podGroupName": "pg"}}}, "b": {"spec": {}}}
    assert G.workload_membership(pods, "scheduling.k8s.io/v1alpha2") == {"a": "pg", "b": ""}


def test_podgroup_refusal():
    pg = {"status": {"conditions": [
        {"type": "PodGroupScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 1 Insufficient cpu."}]}}
    assert G.podgroup_refusal(pg) == ("PodGroupScheduled Unschedulable 0/3 nodes are available: "
                                      "1 Insufficient cpu.")
    pg["status"]["conditions"][0]["status"] = "True"
    assert G.podgroup_refusal(pg) == ""
    assert G.podgroup_refusal({}) == ""


# --- what happened, and what the scheduler said ---------------------------------------------

def test_bound_and_completed():
    pods = {"a": pod("a", "n1", "Succeeded"), "b": pod("b")}
    assert G.bound_members(pods) == ["a"]
    assert not G.all_completed(pods, 2)
    pods["b"] = pod("b", "n1", "Succeeded")
    assert G.all_completed(pods, 2)
    assert not G.all_completed(pods, 3)


def test_volcano_podgroup_is_the_one_its_job_owns():
    def podgroup(name: str, owner_kind: str, owner: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "ownerReferences": [
            {"apiVersion": "batch.volcano.sh/v1alpha1", "kind": owner_kind, "name": owner}]}}

    theirs = podgroup("other-1f2e", "Job", "other")
    mine = podgroup("gang-ok-9c3d", "Job", "gang-ok")
    same_name = podgroup("gang-ok-x", "Deployment", "gang-ok")  # not a Job's
    assert G.volcano_podgroup([theirs, same_name, mine], "gang-ok") is mine
    assert G.volcano_podgroup([theirs, same_name, {"metadata": {"name": "bare"}}],
                              "gang-ok") is None


def test_volcano_refusal():
    pg = {"status": {"conditions": [
        {"type": "Scheduled", "status": "False", "reason": "NotEnoughResources",
         "message": "3/3 tasks in gang unschedulable: pod group is not ready, 3 Pending"}]}}
    assert G.volcano_refusal(pg) == ("Scheduled NotEnoughResources 3/3 tasks in gang "
                                     "unschedulable: pod group is not ready, 3 Pending")
    assert G.volcano_refusal({"status": {}}) == ""


def test_kai_refusal():
    """As KAI writes it (docs/batch; pkg/scheduler status_updater)."""
    pg = {"status": {"schedulingConditions": [{
        "type": "UnschedulableOnNodePool", "reason": "Unschedulable", "status": "True",
        "nodePool": "default",
        "message": "PodSchedulingErrors: Resources were found for 2 pods while 3 are required "
                   "for gang scheduling."}]}}
    assert G.kai_refusal(pg) == (
        "UnschedulableOnNodePool Unschedulable PodSchedulingErrors: Resources were found for 2 "
        "pods while 3 are required for gang scheduling.")
    assert G.kai_refusal({"status": {"schedulingConditions": []}}) == ""


def test_kueue_refusal():
    wl = {"status": {"conditions": [
        {"type": "QuotaReserved", "status": "False", "reason": "Pending",
         "message": "couldn't assign flavors to pod set main: topology \"aic\" doesn't allow "
                    "to fit any of 3 pod(s)"},
        {"type": "Admitted", "status": "False", "reason": "NoReservation"}]}}
    assert G.kueue_refusal([wl]) == ("QuotaReserved Pending couldn't assign flavors to pod set "
                                     "main: topology \"aic\" doesn't allow to fit any of 3 "
                                     "pod(s)")
    assert G.kueue_refusal([{"status": {}}]) == ""


def test_pod_refusals():
    refused = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
               "message": "0/3 nodes are available: 1 Insufficient nvidia.com/gpu. PodGroup "
                          "ns/gang-big gets rejected due to Pod gang-big-2 is unschedulable "
                          "even after PostFilter"}
    pods = {"b": pod("gang-big-2", conditions=[refused]),
            "a": pod("gang-big-0", conditions=[{"type": "PodScheduled", "status": "True"}])}
    assert G.pod_refusals(pods) == f"gang-big-2: {refused['message']}"
    assert G.pod_refusals({"a": pod("a")}) == ""
