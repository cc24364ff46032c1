"""The real cluster_autoscaling check against the fake API server: which autoscalers it
recognises, and a GPU node group that scales from zero (no accelerator node before the run)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakeapi import FakeApiServer

from conftest import ROOT, base_args

CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_cluster_autoscaling.py"


def crd(name: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}}


def run(aic: pytest.Pytester) -> tuple[dict[str, Any], str]:
    result = aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", "--aic-timeout-scale", "0.002",
                   "--aic-keep-namespaces", "always", str(CHECK)))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    verdict = next(r for r in data["requirements"] if r["id"] == "cluster_autoscaling")
    evidence = aic.path / "report" / verdict["checks"][0]["evidence_file"] \
        if verdict["checks"][0].get("evidence_file") else None
    text = evidence.read_text() if evidence and evidence.is_file() else ""
    return verdict, text + result.stdout.str()


def test_no_autoscaler_is_na(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    verdict, _ = run(aic)
    assert verdict["status"] == "N/A"
    assert "no Karpenter, no OpenShift ClusterAutoscaler" in verdict["reason"]


def test_karpenter_scaling_from_zero_is_checked(aic: pytest.Pytester,
                                                fake: FakeApiServer) -> None:
    """Karpenter is recognised, and with no GPU node at all the pod asks for the profile's
    resource; nothing scales up on the fake server, so the check fails within its deadline."""
    for name in ("nodepools.karpenter.sh", "nodeclaims.karpenter.sh"):
        fake.cluster.add("customresourcedefinitions", crd(name))
    verdict, text = run(aic)
    [check] = verdict["checks"]
    assert check["outcome"] == "failed", text
    assert check["reason"].startswith(
        "no new node for pending pod(s) scale-0 (scale-up): no autoscaler recorded an event "
        "about scale-0, so none acted on it (is its controller running?). timed out after "), \
        check["reason"]
    assert "autoscaler: Karpenter: " in text
    assert "NodePools: none" in text
    assert "scales from zero, so the pod asks for nvidia.com/gpu" in text


def test_no_scale_up_says_what_the_autoscaler_did(aic: pytest.Pytester,
                                                   fake: FakeApiServer) -> None:
    """No GPU node, but a DRA DeviceClass installed cluster-wide: the pool still scales from
    zero through the profile's resource. Karpenter answers the pending pod with a NodeClaim
    that cannot launch: the failure quotes that NodeClaim and Karpenter's event first."""
    for name in ("nodepools.karpenter.sh", "nodeclaims.karpenter.sh"):
        fake.cluster.add("customresourcedefinitions", crd(name))
    fake.cluster.extra_groups["karpenter.sh/v1"] = {"nodepools": ("NodePool", False),
                                                    "nodeclaims": ("NodeClaim", False)}
    fake.cluster.add("nodepools.karpenter.sh", {
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}})
    fake.cluster.add("deviceclasses", {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
                                       "metadata": {"name": "gpu.nvidia.com"}})

    def karpenter(cluster: Any, key: str, obj: dict[str, Any]) -> None:
        if key != "pods":
            return
        cluster.add("nodeclaims.karpenter.sh", {
            "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": "gpu-x1", "labels": {"karpenter.sh/nodepool": "gpu"}},
            "status": {"conditions": [{"type": "Launched", "status": "False",
                                       "reason": "LaunchFailed",
                                       "message": "all offerings unavailable"}]}})
        cluster.add("events", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": obj["metadata"]["namespace"]},
            "involvedObject": {"kind": "Pod", "name": obj["metadata"]["name"]},
            "source": {"component": "karpenter"}, "reason": "Nominated",
            "message": "Pod should schedule on: nodeclaim/gpu-x1", "type": "Normal",
            "lastTimestamp": "2026-11-30T08:00:00Z"})

    fake.cluster.reactors.append(karpenter)
    verdict, text = run(aic)
    [check] = verdict["checks"]
    assert check["outcome"] == "failed", text
    assert check["reason"].startswith(
        "no new node for pending pod(s) scale-0 (scale-up): Karpenter's new NodeClaim(s): "
        "gpu-x1 (NodePool gpu, no node yet, Launched=False (LaunchFailed: all offerings "
        "unavailable)); autoscaler events: Nominated scale-0: Pod should schedule on: "
        "nodeclaim/gpu-x1. timed out after "), check["reason"]
    assert "NodePools: gpu" in text
    assert "scales from zero, so the pod asks for nvidia.com/gpu" in text


def test_freed_accelerators_get_one_more_pod(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    """gpu-1 has two GPUs, one held by another workload when the check counts: it creates two
    pods. That workload ends meanwhile, so both fit on gpu-1; the check adds a third, which
    Karpenter's (fake) new node takes: scale-up seen. Nothing removes that node here, so the
    check fails later, at scale-down."""
    from test_profile_detection import gpu_node

    for crd_name in ("nodepools.karpenter.sh", "nodeclaims.karpenter.sh"):
        fake.cluster.add("customresourcedefinitions", crd(crd_name))
    node = gpu_node("gpu-1", {"nvidia.com/gpu": "2"})
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    fake.cluster.add("nodes", node)
    fake.cluster.add("pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "other", "namespace": "team-a"},
        "spec": {"nodeName": "gpu-1", "containers": [{
            "name": "main", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
        "status": {"phase": "Running"}})

    def scheduler(cluster: Any, key: str, obj: dict[str, Any]) -> None:
        if key != "pods" or not obj["metadata"]["name"].startswith("scale-"):
            return
        index = int(obj["metadata"]["name"].split("-")[1])
        if index == 0:  # The other workload ends as the check's pods arrive.
            cluster.objects["pods"].pop("other", None)
        if index < 2:
            obj["spec"]["nodeName"] = "gpu-1"
        else:
            cluster.add("nodes", gpu_node("gpu-new", {"nvidia.com/gpu": "1"}))
            obj["spec"]["nodeName"] = "gpu-new"
        obj["status"] = {"phase": "Running"}

    fake.cluster.reactors.append(scheduler)
    verdict, text = run(aic)
    [check] = verdict["checks"]
    assert check["outcome"] == "failed", text
    assert check["reason"].startswith(
        "node(s) gpu-new still there after the workload was deleted (scale-down)"), check["reason"]
    assert "1 free nvidia.com/gpu in the cluster; creating 2 pods" in text
    assert ("all 2 pods fit on existing nodes (nvidia.com/gpu freed since they were counted); "
            "creating scale-2") in text
    assert "new node(s) created for the pending pod: gpu-new" in text
