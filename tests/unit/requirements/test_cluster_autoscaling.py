"""cluster_autoscaling's decisions (pytest_aiconformance.requirements.cluster_autoscaling) on
synthetic nodes, pods, Karpenter NodeClaims (karpenter.sh/v1, status.providerID, nodeName and
conditions as Karpenter writes them) and Events (source.component or reportingComponent)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.cluster.waits import WaitTimeout
from pytest_aiconformance.requirements import cluster_autoscaling as CA

NVIDIA = get_profile("nvidia")
ERR = WaitTimeout("timed out after 900s waiting for every pod Running")


def node(name: str, *, gpus: str = "", pool: str = "", provider: str = "",
         deleting: bool = False, created: str = "2026-11-30T08:00:00Z") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created,
                            "labels": {CA.NODEPOOL_LABEL: pool} if pool else {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T09:00:00Z"
    return {"metadata": meta, "spec": {"providerID": provider} if provider else {},
            "status": {"allocatable": {"nvidia.com/gpu": gpus} if gpus else {}}}


def pod(name: str, node_name: str = "", phase: str = "Pending") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"nodeName": node_name} if node_name else {},
            "status": {"phase": phase}}


def claim(name: str, *, pool: str = "gpu", node_name: str = "", provider: str = "",
          conditions: list[dict[str, str]] | None = None,
          deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {
        CA.NODEPOOL_LABEL: pool, "node.kubernetes.io/instance-type": "g6.xlarge"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T09:00:00Z"
    status: dict[str, Any] = {"conditions": conditions or []}
    if node_name:
        status["nodeName"] = node_name
    if provider:
        status["providerID"] = provider
    return {"apiVersion": CA.KARPENTER, "kind": "NodeClaim", "metadata": meta, "status": status}


def event(about: str, reason: str, message: str, *, component: str = "",
          reporting: str = "", at: str = "2026-11-30T08:00:00Z") -> dict[str, Any]:
    out: dict[str, Any] = {"involvedObject": {"name": about}, "reason": reason,
                           "message": message, "lastTimestamp": at}
    if component:
        out["source"] = {"component": component}
    if reporting:
        out["reportingComponent"] = reporting
    return out


LAUNCH_FAILED = claim("gpu-x1", conditions=[
    {"type": "Launched", "status": "False", "reason": "LaunchFailed",
     "message": "all offerings unavailable"},
    {"type": "Initialized", "status": "Unknown"}])


# --- which autoscaler, and how the pods ask -----------------------------------------------------


def test_autoscaler_summaries():
    assert CA.karpenter_summary("Karpenter: ready", [{"metadata": {"name": "gpu"}},
                                                     {"metadata": {"name": "cpu"}}]) == (
        "Karpenter: ready; NodePools: gpu, cpu")
    assert CA.karpenter_summary("Karpenter: ready", []) == "Karpenter: ready; NodePools: none"
    assert CA.openshift_summary([{"metadata": {"name": "default"}}],
                                [{"metadata": {"name": "m1"}}, {"metadata": {"name": "m2"}}]) == (
        "OpenShift ClusterAutoscaler default with 2 MachineAutoscaler(s)")


def test_a_node_group_scaling_from_zero_is_asked_for_the_profiles_resource():
    assert CA.scale_from_zero_resource(False, "device-plugin", NVIDIA) == "nvidia.com/gpu"
    # A DeviceClass may exist without any device: still the extended resource, unless DRA
    # was asked for explicitly.
    assert CA.scale_from_zero_resource(False, "auto", NVIDIA) == "nvidia.com/gpu"
    assert CA.scale_from_zero_resource(False, "dra", NVIDIA) == ""
    assert CA.scale_from_zero_resource(True, "device-plugin", NVIDIA) == ""
    bare = dataclasses.replace(NVIDIA, extended_resources=())
    assert CA.scale_from_zero_resource(False, "device-plugin", bare) == ""


def test_free_total_ignores_overcommitted_nodes():
    assert CA.free_total({"gpu-1": 2, "gpu-2": -1, "gpu-3": 0}) == 2
    assert CA.free_total({}) == 0


# --- scale-up ---------------------------------------------------------------------------------


def test_scale_up_needs_every_pod_running_and_one_on_a_new_node():
    pods = {"scale-0": pod("scale-0", "gpu-1", "Running"),
            "scale-1": pod("scale-1", "gpu-new", "Running")}
    assert CA.all_running(pods, 2)
    assert not CA.all_running(pods, 3)
    assert not CA.all_running({**pods, "scale-2": pod("scale-2")}, 3)
    assert CA.on_new_node(pods, {"gpu-1"})
    assert not CA.on_new_node(pods, {"gpu-1", "gpu-new"})
    assert CA.new_nodes(pods, {"gpu-1"}) == ["gpu-new"]


@pytest.mark.parametrize(("count", "free", "problem"), [
    (17, 1, ""),
    (18, 1, "18 pods asking for one GPU each all run on existing nodes: 1 were free when "
            "counted, and 17 more kept fitting; no pending pod to scale up for"),
])
def test_extra_pods_stop_after_max(count: int, free: int, problem: str):
    assert CA.MAX_EXTRA_PODS == 16
    assert CA.all_fit_problem(count, free, "GPU") == problem


def test_new_node_note_names_the_karpenter_pool():
    nodes = [node("gpu-a", pool="gpu"), node("gpu-b")]
    assert CA.new_node_note(["gpu-a", "gpu-b"], nodes) == (
        "new node(s) created for the pending pod: gpu-a (Karpenter NodePool gpu), gpu-b")


def test_claims_of_the_new_nodes_by_provider_id():
    nodes = [node("gpu-a", provider="aws:///us-east-1a/i-0a"), node("gpu-b"),
             node("old", provider="aws:///us-east-1a/i-0old")]
    providers = CA.providers_of(nodes, ["gpu-a", "gpu-b"])
    assert providers == {"aws:///us-east-1a/i-0a"}
    # the claim's nodeName may still be missing; its providerID names the instance
    mine = claim("gpu-a1", provider="aws:///us-east-1a/i-0a")
    other = claim("old1", provider="aws:///us-east-1a/i-0old", node_name="old")
    assert CA.claims_of([mine, other, claim("pending")], providers) == [mine]


# --- scale-down -------------------------------------------------------------------------------


def test_lost_nodes_are_those_removed_that_were_not_going_anyway():
    before = [node("gpu-1"), node("cpu-1"), node("drained", deleting=True)]
    assert CA.lost_nodes(before, [node("gpu-1"), node("cpu-1")]) == set()
    assert CA.lost_nodes(before, [node("gpu-1"), node("gpu-new")]) == {"cpu-1"}


# --- evidence, and why a wait ran out ---------------------------------------------------------


def test_node_rows_show_accelerators_only_for_an_extended_resource():
    nodes = [node("gpu-2", gpus="4", created="2026-11-30T08:05:00Z"), node("cpu-1")]
    assert CA.node_rows(nodes, "nvidia.com/gpu").splitlines() == [
        "NAME    ACCELERATORS   CREATED",
        "cpu-1   <none>         2026-11-30T08:00:00Z",
        "gpu-2   4              2026-11-30T08:05:00Z"]
    assert CA.node_rows(nodes, "").splitlines()[2] == "gpu-2   <none>         2026-11-30T08:05:00Z"


def test_claim_rows_and_description():
    ready = claim("gpu-a1", node_name="gpu-a", conditions=[{"type": "Ready", "status": "True"}])
    assert CA.claim_rows([ready, LAUNCH_FAILED]).splitlines() == [
        "NAME     NODEPOOL   TYPE        NODE     READY",
        "gpu-a1   gpu        g6.xlarge   gpu-a    True",
        "gpu-x1   gpu        g6.xlarge   <none>   Unknown"]
    assert CA.describe_claim(LAUNCH_FAILED) == (
        "gpu-x1 (NodePool gpu, no node yet, Launched=False (LaunchFailed: all offerings "
        "unavailable); Initialized=Unknown)")
    assert CA.describe_claim(claim("gpu-a1", node_name="gpu-a", deleting=True)) == (
        "gpu-a1 (NodePool gpu, gpu-a, being deleted)")


def test_only_the_node_autoscalers_events_about_the_objects_count():
    events = [event("scale-0", "Nominated", "Pod should schedule on: nodeclaim/gpu-x1",
                    component="karpenter"),
              event("scale-0", "TriggeredScaleUp", "pod triggered scale-up",
                    reporting="cluster-autoscaler"),
              event("scale-0", "FailedScheduling", "0/1 nodes are available",
                    component="default-scheduler"),
              event("other", "Nominated", "elsewhere", component="karpenter")]
    assert CA.autoscaler_events(events, {"scale-0"}) == events[:2]
    assert CA.autoscaler_events(events, {"nobody"}) == []


def test_event_lines_keep_the_newest():
    events = [event(f"p{i}", "R", f" m{i} ", component="karpenter",
                    at=f"2026-11-30T08:0{i}:00Z") for i in (3, 1, 4, 2)]
    assert CA.event_lines(events) == "R p2: m2 | R p3: m3 | R p4: m4"
    assert CA.event_lines(events, limit=1) == "R p4: m4"


def test_no_scale_up_quotes_karpenters_claim_and_event():
    pods = [pod("scale-1"), pod("scale-0", "gpu-1", "Running"), pod("scale-2")]
    events = [event("scale-1", "Nominated", "Pod should schedule on: nodeclaim/gpu-x1",
                    component="karpenter")]
    assert CA.no_scale_up(pods, [LAUNCH_FAILED], events, ERR) == (
        "no new node for pending pod(s) scale-1, scale-2 (scale-up): Karpenter's new "
        "NodeClaim(s): gpu-x1 (NodePool gpu, no node yet, Launched=False (LaunchFailed: all "
        "offerings unavailable); Initialized=Unknown); autoscaler events: Nominated scale-1: "
        "Pod should schedule on: nodeclaim/gpu-x1. timed out after 900s waiting for every pod "
        "Running")


def test_no_scale_up_without_anything_said():
    assert CA.no_scale_up([pod("scale-0")], [], [], ERR) == (
        "no new node for pending pod(s) scale-0 (scale-up): Karpenter created no NodeClaim "
        "since the check began; no autoscaler recorded an event about scale-0, so none acted "
        "on it (is its controller running?). timed out after 900s waiting for every pod "
        "Running")
    # without Karpenter nothing is said about NodeClaims; no pod pending: "the pods"
    assert CA.no_scale_up([pod("scale-0", "gpu-1", "Running")], None, [], ERR) == (
        "no new node for pending pod(s) the pods (scale-up): no autoscaler recorded an event about "
        "the pods, so none acted on it (is its controller running?). timed out after 900s "
        "waiting for every pod Running")


def test_no_scale_down_quotes_the_claim_and_events_about_node_or_claim():
    owning = claim("gpu-a1", node_name="gpu-a", conditions=[
        {"type": "Drifted", "status": "False"}])
    events = [event("gpu-a1", "DisruptionBlocked", "Cannot disrupt NodeClaim: pdb blocks",
                    component="karpenter"),
              event("gpu-a", "ScaleDown", "node removal in progress",
                    reporting="cluster-autoscaler", at="2026-11-30T07:00:00Z"),
              event("gpu-b", "ScaleDown", "not this node", reporting="cluster-autoscaler")]
    assert CA.no_scale_down(["gpu-a"], [owning], events, ERR) == (
        "node(s) gpu-a still there after the workload was deleted (scale-down): NodeClaim(s): "
        "gpu-a1 (NodePool gpu, gpu-a, Drifted=False); autoscaler events: ScaleDown gpu-a: node "
        "removal in progress | DisruptionBlocked gpu-a1: Cannot disrupt NodeClaim: pdb blocks. "
        "timed out after 900s waiting for every pod Running")
    assert CA.no_scale_down(["gpu-a", "gpu-c"], None, events[2:], ERR) == (
        "node(s) gpu-a, gpu-c still there after the workload was deleted (scale-down): no "
        "autoscaler recorded an event about the node, so none acted on it (is its controller "
        "running?). timed out after 900s waiting for every pod Running")
    assert CA.no_scale_down(["gpu-a"], [], [], ERR).startswith(
        "node(s) gpu-a still there after the workload was deleted (scale-down): no NodeClaim "
        "of Karpenter's owns the node any more; no autoscaler recorded")
