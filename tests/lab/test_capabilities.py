"""The lab's capabilities (issue 3, "Done when"), each also shown to fail without it.

The same check functions run on the full lab (must pass) and on a lab with the capability
removed (must raise), so a check that cannot fail would be caught here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import labchecks
import pytest
from aiconformance_lab import LabInfo, LabShape
from kubernetes import client

from conftest import api_client, drop_namespace, make_namespace, start_lab

pytestmark = pytest.mark.lab


# ---- the full lab -------------------------------------------------------------------------
def test_gpu_pod_runs_on_gpu_node(api: client.ApiClient, ns: str) -> None:
    node = labchecks.check_gpu_pod_runs(api, ns)
    assert node.startswith("aic-gpu-")


def test_third_gpu_pod_pending_with_insufficient_gpu(api: client.ApiClient, ns: str) -> None:
    labchecks.check_gpu_overcommit(api, ns, total_gpus=2)


def test_resource_claim_allocated_and_reserved(api: client.ApiClient, ns: str) -> None:
    result = labchecks.check_dra_claim(api, ns)
    assert result["device"].startswith("gpu-")


def test_hpa_scales_gpu_deployment_up(api: client.ApiClient, ns: str) -> None:
    assert labchecks.check_hpa_scales_up(api, ns, max_replicas=2) == 2


def test_nodes_look_like_gpu_operator_nodes(api: client.ApiClient) -> None:
    nodes = {n.metadata.name: n for n in client.CoreV1Api(api).list_node().items}
    assert sorted(nodes) == ["aic-cpu-0", "aic-gpu-0", "aic-gpu-1"]
    gpu = nodes["aic-gpu-0"]
    labels = gpu.metadata.labels
    for key in (
        "nvidia.com/gpu.product",
        "nvidia.com/gpu.memory",
        "nvidia.com/cuda.driver.major",
        "nvidia.com/cuda.runtime.major",
    ):
        assert labels[key]
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.count"] == "1"
    assert gpu.status.allocatable["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in nodes["aic-cpu-0"].status.allocatable
    assert client.VersionApi(api).get_code().git_version == "v1.35.4"


# ---- capabilities removed -----------------------------------------------------------------
@pytest.fixture(scope="module")
def bare_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    """GPU nodes as usual, but no DRA driver and no metrics-server."""
    lab, info = start_lab(
        tmp_path_factory.mktemp("lab-bare"), LabShape(dra=False, metrics_server=False)
    )
    yield info
    lab.down()


@pytest.fixture(scope="module")
def gpuless_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    """No GPU nodes at all (a different GPU node count); everything else on."""
    lab, info = start_lab(tmp_path_factory.mktemp("lab-nogpu"), LabShape(gpu_nodes=0))
    yield info
    lab.down()


@pytest.fixture
def bare(bare_lab: LabInfo) -> Iterator[tuple[client.ApiClient, str]]:
    with api_client(bare_lab) as c:
        name = make_namespace(c)
        yield c, name
        drop_namespace(c, name)


@pytest.fixture
def gpuless(gpuless_lab: LabInfo) -> Iterator[tuple[client.ApiClient, str]]:
    with api_client(gpuless_lab) as c:
        name = make_namespace(c)
        yield c, name
        drop_namespace(c, name)


def test_without_dra_driver_claim_check_fails(bare: tuple[client.ApiClient, str]) -> None:
    api, ns = bare
    with pytest.raises(AssertionError, match=r"precondition: no DeviceClass gpu\.example\.com"):
        labchecks.check_dra_claim(api, ns)


def test_without_metrics_server_hpa_check_fails(bare: tuple[client.ApiClient, str]) -> None:
    api, ns = bare
    with pytest.raises(AssertionError, match="FailedGetResourceMetric"):
        labchecks.check_hpa_scales_up(api, ns, timeout=20)


def test_without_gpu_nodes_gpu_pod_check_fails(gpuless: tuple[client.ApiClient, str]) -> None:
    api, ns = gpuless
    with pytest.raises(AssertionError, match=r"Insufficient nvidia\.com/gpu"):
        labchecks.check_gpu_pod_runs(api, ns, timeout=10)


def test_without_gpu_nodes_overcommit_check_fails(gpuless: tuple[client.ApiClient, str]) -> None:
    api, ns = gpuless
    with pytest.raises(AssertionError, match="expected 2 Running and 1 Pending"):
        labchecks.check_gpu_overcommit(api, ns, total_gpus=2, timeout=10)


def test_without_gpu_nodes_hpa_check_fails(gpuless: tuple[client.ApiClient, str]) -> None:
    """Metrics-server is there, but GPU pods never run, so there is nothing to scale on."""
    api, ns = gpuless
    with pytest.raises(AssertionError, match="did not scale up"):
        labchecks.check_hpa_scales_up(api, ns, timeout=20)


def test_without_dra_api_claim_check_fails(tmp_path_factory: pytest.TempPathFactory) -> None:
    """resource.k8s.io/v1 switched off entirely: the API server really does not serve it."""
    lab, info = start_lab(
        tmp_path_factory.mktemp("lab-nodra-api"),
        LabShape(gpu_nodes=1, dra=False, dra_api=False, metrics_server=False),
    )
    try:
        with api_client(info) as api:
            assert not labchecks.dra_served(api)
            with pytest.raises(AssertionError, match=r"precondition: resource.k8s.io/v1 is not"):
                labchecks.check_dra_claim(api, "default")
    finally:
        lab.down()


def test_job_pods_complete(api: client.ApiClient, ns: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(
        ns,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "done"},
            "spec": {
                "completions": 2,
                "parallelism": 2,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": labchecks.IMAGE}],
                    }
                },
            },
        },
    )
    job = labchecks.wait_for(
        batch.list_namespaced_job,
        lambda jobs: next((j for j in jobs if (j.status.succeeded or 0) == 2), None),
        timeout=60,
        namespace=ns,
        field_selector="metadata.name=done",
    )
    assert job is not None, "Job did not complete: kwok's pod-complete stage is not active"
    batch.delete_namespaced_job("done", ns, propagation_policy="Background")


def test_metrics_api_serves_node_and_pod_usage(api: client.ApiClient, ns: str) -> None:
    """What `kubectl top` reads: node usage, and a pod's usage from its annotation."""
    core = client.CoreV1Api(api)
    pod = labchecks.gpu_pod("busy")
    pod.metadata.annotations = {"kwok.x-k8s.io/usage-cpu": "750m"}
    core.create_namespaced_pod(ns, pod)
    metrics = client.CustomObjectsApi(api)
    # The metrics API cannot be watched: poll it, with a deadline (two scrapes are needed).
    deadline = time.monotonic() + 60
    usage = None
    while time.monotonic() < deadline and usage is None:
        items = metrics.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", ns, "pods")
        for item in items["items"]:
            if item["metadata"]["name"] == "busy" and item["containers"]:
                usage = item["containers"][0]["usage"]["cpu"]
        if usage is None:
            time.sleep(1)
    assert usage is not None, "no pod metrics within 60 s"
    millicores = int(usage[:-1]) // 1_000_000 if usage.endswith("n") else int(usage.rstrip("m"))
    assert 700 <= millicores <= 800, usage
    nodes = metrics.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"]
    assert {n["metadata"]["name"] for n in nodes} >= {"aic-gpu-0", "aic-gpu-1", "aic-cpu-0"}
