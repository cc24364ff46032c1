"""Gang scheduling's pure decisions: sizes, objects, and what each scheduler says."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance import gang_scheduling as G

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
    pg, *pods = G.coscheduling_objects("gang-big", "ns", PLAN, "scheduler-plugins-scheduler",
                                       "img")
    assert pg["apiVersion"] == "scheduling.x-k8s.io/v1alpha1"
    assert pg["spec"]["minMember"] == 3
    assert [p["metadata"]["name"] for p in pods] == ["gang-big-0", "gang-big-1", "gang-big-2"]
    assert {p["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] for p in pods} == {
        "gang-big"}
    assert {p["spec"]["schedulerName"] for p in pods} == {"scheduler-plugins-scheduler"}


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
    assert [s.name for s in G.SOLUTIONS] == ["volcano", "kueue", "kai", "coscheduling"]
    assert G.BY_NAME["kai"].groups == ["scheduling.run.ai"]
    assert G.BY_NAME["volcano"].groups == ["batch.volcano.sh", "scheduling.volcano.sh"]
    assert G.none_found() == ("no gang scheduler found: none of Volcano, Kueue, KAI Scheduler, "
                              "scheduler-plugins Coscheduling serves its APIs")


# --- what happened, and what the scheduler said ---------------------------------------------

def test_bound_and_completed():
    pods = {"a": pod("a", "n1", "Succeeded"), "b": pod("b")}
    assert G.bound_members(pods) == ["a"]
    assert not G.all_completed(pods, 2)
    pods["b"] = pod("b", "n1", "Succeeded")
    assert G.all_completed(pods, 2)
    assert not G.all_completed(pods, 3)


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
