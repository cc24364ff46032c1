"""Operators on the lab: KubeRay as a host process with its CRDs and its validating webhook.

One lab with ``kuberay`` on serves the whole module.  The positive checks (CRDs Established, a
RayCluster reconciled to ready on simulated nodes, the webhook denying what the CRD schema
allows) run first; then the operator is stopped, which must break both admission (failurePolicy
Fail) and reconciliation, and started again, which must repair them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import labchecks
import pytest
from aiconformance_lab import Lab, LabError, LabInfo, LabShape
from kubernetes import client
from kubernetes.client.rest import ApiException

from conftest import api_client

pytestmark = pytest.mark.lab

RAY_GROUP, RAY_VERSION = "ray.io", "v1"
WEBHOOK = "vraycluster.kb.io"
WEBHOOK_PORT = 9443
SHAPE = LabShape(gpu_nodes=1, cpu_nodes=1, dra=False, metrics_server=False, kuberay=True)
# Another lab with KubeRay (another test module, an xdist worker) may hold the webhook port,
# which the operator cannot move: wait for it instead of failing at once.
PORT_WAIT_S = 600.0


def _progress(message: str) -> None:
    sys.stderr.write(f"[lab] {message}\n")


@pytest.fixture(scope="module")
def kuberay_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, LabInfo]]:
    lab = Lab(tmp_path_factory.mktemp("lab-kuberay"))
    info = lab.up(SHAPE, _progress, owner_pid=os.getpid(), port_wait_s=PORT_WAIT_S)
    yield lab, info
    lab.down(_progress)


@pytest.fixture(scope="module")
def api(kuberay_lab: tuple[Lab, LabInfo]) -> Iterator[client.ApiClient]:
    with api_client(kuberay_lab[1]) as c:
        yield c


@pytest.fixture(scope="module")
def namespace(api: client.ApiClient) -> str:
    name = f"t-ray-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name  # Goes away with the lab.


def ray_cluster(name: str, groups: list[str]) -> dict[str, Any]:
    """A small RayCluster: one head, one worker per named group (names may repeat)."""

    def template(role: str) -> dict[str, Any]:
        container = {
            "name": f"ray-{role}",
            "image": "docker.io/rayproject/ray:2.46.0",
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        }
        return {"spec": {"containers": [container]}}

    return {
        "apiVersion": f"{RAY_GROUP}/{RAY_VERSION}",
        "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": {
            "headGroupSpec": {"rayStartParams": {}, "template": template("head")},
            "workerGroupSpecs": [
                {
                    "groupName": group,
                    "replicas": 1,
                    "minReplicas": 1,
                    "maxReplicas": 1,
                    "rayStartParams": {},
                    "template": template("worker"),
                }
                for group in groups
            ],
        },
    }


def create(api: client.ApiClient, ns: str, body: dict[str, Any], dry_run: bool = False) -> Any:
    return client.CustomObjectsApi(api).create_namespaced_custom_object(
        RAY_GROUP,
        RAY_VERSION,
        ns,
        "rayclusters",
        body,
        **({"dry_run": "All"} if dry_run else {}),
    )


def denial(api: client.ApiClient, ns: str, body: dict[str, Any], dry_run: bool) -> str:
    """Create ``body``, expecting the API server to refuse it; return the refusal's message."""
    try:
        create(api, ns, body, dry_run=dry_run)
    except ApiException as err:
        try:
            return str(json.loads(err.body).get("message", err.body))
        except (TypeError, ValueError):
            return str(err.body or err.reason)
    raise AssertionError(f"RayCluster {body['metadata']['name']} was admitted")


def ray_pods(api: client.ApiClient, ns: str, cluster: str) -> list[Any]:
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"ray.io/cluster={cluster}")
    return list(pods.items)


def wait_ready(api: client.ApiClient, ns: str, cluster: str, timeout: float = 60) -> None:
    """Head and worker pods Running and the RayCluster in state ready."""
    core = client.CoreV1Api(api)

    def running(pods: list[Any]) -> bool:
        types = {
            p.metadata.labels.get("ray.io/node-type") for p in pods if p.status.phase == "Running"
        }
        return {"head", "worker"} <= types

    ok = labchecks.wait_for(
        core.list_namespaced_pod,
        running,
        timeout=timeout,
        namespace=ns,
        label_selector=f"ray.io/cluster={cluster}",
    )
    phases = [(p.metadata.name, p.status.phase) for p in ray_pods(api, ns, cluster)]
    assert ok, f"RayCluster {cluster}: head and worker pods not Running: {phases}"
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        obj = custom.get_namespaced_custom_object(
            RAY_GROUP, RAY_VERSION, ns, "rayclusters", cluster
        )
        state = obj.get("status", {}).get("state")
        if state == "ready":
            return
        time.sleep(0.5)  # The operator updates status after the pods: short poll.
    raise AssertionError(f"RayCluster {cluster} state {state!r}, not ready after {timeout:.0f} s")


@pytest.fixture(scope="module")
def ready_cluster(api: client.ApiClient, namespace: str) -> str:
    create(api, namespace, ray_cluster("rc-ready", ["workers"]))
    wait_ready(api, namespace, "rc-ready")
    return "rc-ready"


def test_crds_established(api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    for name in ("rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io"):
        crd = ext.read_custom_resource_definition(name)
        conditions = {c.type: c.status for c in crd.status.conditions}
        assert conditions.get("Established") == "True", (name, conditions)


def test_raycluster_reaches_ready_with_head_service(
    api: client.ApiClient, namespace: str, ready_cluster: str
) -> None:
    pods = ray_pods(api, namespace, ready_cluster)
    roles = sorted(p.metadata.labels["ray.io/node-type"] for p in pods)
    assert roles == ["head", "worker"], roles
    assert all(p.spec.node_name.startswith("aic-") for p in pods)
    svc = client.CoreV1Api(api).read_namespaced_service(f"{ready_cluster}-head-svc", namespace)
    assert svc.spec.selector["ray.io/node-type"] == "head"


def test_webhook_denies_duplicate_worker_group_names(api: client.ApiClient, namespace: str) -> None:
    # Valid for the CRD schema (the dry run of distinct names passes), invalid for the operator.
    create(api, namespace, ray_cluster("rc-dup", ["a", "b"]), dry_run=True)
    message = denial(api, namespace, ray_cluster("rc-dup", ["a", "a"]), dry_run=True)
    assert f'admission webhook "{WEBHOOK}" denied the request' in message, message


def test_stopped_operator_blocks_admission_and_reconciliation(
    kuberay_lab: tuple[Lab, LabInfo], api: client.ApiClient, namespace: str, ready_cluster: str
) -> None:
    lab, _ = kuberay_lab
    core = client.CoreV1Api(api)
    head = next(
        p
        for p in ray_pods(api, namespace, ready_cluster)
        if p.metadata.labels["ray.io/node-type"] == "head"
    )
    lab.stop_component("kuberay")
    restarted = False
    try:
        assert "kuberay" in [c for c, s in lab.status().components.items() if not s.running]
        # failurePolicy Fail: nothing of the kind gets through unchecked, valid or not.
        message = denial(api, namespace, ray_cluster("rc-dup", ["a", "a"]), dry_run=True)
        assert f'failed calling webhook "{WEBHOOK}"' in message, message
        message = denial(api, namespace, ray_cluster("rc-off", ["workers"]), dry_run=False)
        assert f'failed calling webhook "{WEBHOOK}"' in message, message
        # No reconciliation: a deleted head pod stays deleted.
        core.delete_namespaced_pod(head.metadata.name, namespace, grace_period_seconds=0)
        time.sleep(8)  # The negative window: long enough for a live operator to recreate it.
        heads = [
            p
            for p in ray_pods(api, namespace, ready_cluster)
            if p.metadata.labels["ray.io/node-type"] == "head"
        ]
        assert heads == [] or all(p.metadata.name == head.metadata.name for p in heads), heads
        assert ray_pods(api, namespace, "rc-off") == []
        lab.start_component("kuberay")
        restarted = True
    finally:
        if not restarted:
            lab.start_component("kuberay")
    # Started again: the head is repaired, admission and new clusters work.
    wait_ready(api, namespace, ready_cluster)
    message = denial(api, namespace, ray_cluster("rc-dup", ["a", "a"]), dry_run=True)
    assert f'admission webhook "{WEBHOOK}" denied the request' in message, message
    create(api, namespace, ray_cluster("rc-again", ["workers"]))
    wait_ready(api, namespace, "rc-again")


def test_status_lists_kuberay_and_plain_shape_has_none(kuberay_lab: tuple[Lab, LabInfo]) -> None:
    lab, info = kuberay_lab
    status = lab.status()
    assert status.healthy
    kuberay = status.components["kuberay"]
    assert kuberay.healthy
    assert f"localhost:{WEBHOOK_PORT} serving" in kuberay.detail
    assert info.ports["kuberay-webhook"] == WEBHOOK_PORT
    assert not LabShape().kuberay
    state = json.loads((Path(info.state_dir) / "state.json").read_text())
    assert state["components"]["kuberay"]["env"]["ENABLE_WEBHOOKS"] == "true"


def test_second_kuberay_lab_reports_busy_webhook_port(
    kuberay_lab: tuple[Lab, LabInfo], tmp_path: Path
) -> None:
    """The running lab's operator holds 9443: another KubeRay lab waits as long as it is told,
    then says so, having started nothing."""
    other = Lab(tmp_path / "other")
    small = LabShape(gpu_nodes=1, cpu_nodes=0, dra=False, metrics_server=False, kuberay=True)
    notes: list[str] = []
    started = time.monotonic()
    with pytest.raises(LabError, match=f"port {WEBHOOK_PORT} for the webhook server of lab"):
        other.up(small, notes.append, port_wait_s=2)
    assert 2 <= time.monotonic() - started < 30
    assert any(f"port {WEBHOOK_PORT} is in use" in n for n in notes), notes
    assert not other.status().up
    assert kuberay_lab[0].status().healthy


# ---- Kueue ---------------------------------------------------------------------------------
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_SHAPE = LabShape(gpu_nodes=2, cpu_nodes=0, dra=False, metrics_server=False, kueue=True)
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


@pytest.fixture(scope="module")
def kueue_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, LabInfo]]:
    lab = Lab(tmp_path_factory.mktemp("lab-kueue"))
    info = lab.up(KUEUE_SHAPE, _progress, owner_pid=os.getpid())
    yield lab, info
    lab.down(_progress)


@pytest.fixture(scope="module")
def kapi(kueue_lab: tuple[Lab, LabInfo]) -> Iterator[client.ApiClient]:
    with api_client(kueue_lab[1]) as c:
        yield c


@pytest.fixture(scope="module")
def queue(kapi: client.ApiClient) -> tuple[str, str]:
    """A namespace with LocalQueue "lq" on a ClusterQueue of 2 GPUs (created as v1beta1)."""
    custom = client.CustomObjectsApi(kapi)
    ns = f"t-kq-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kapi).create_namespace(client.V1Namespace(metadata={"name": ns}))
    custom.create_cluster_custom_object(
        KUEUE_GROUP,
        "v1beta1",
        "resourceflavors",
        {
            "apiVersion": f"{KUEUE_GROUP}/v1beta1",
            "kind": "ResourceFlavor",
            "metadata": {"name": ns},
        },
    )
    custom.create_cluster_custom_object(
        KUEUE_GROUP,
        "v1beta1",
        "clusterqueues",
        {
            "apiVersion": f"{KUEUE_GROUP}/v1beta1",
            "kind": "ClusterQueue",
            "metadata": {"name": ns},
            "spec": {
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": [labchecks.GPU, "cpu"],
                        "flavors": [
                            {
                                "name": ns,
                                "resources": [
                                    {"name": labchecks.GPU, "nominalQuota": 2},
                                    {"name": "cpu", "nominalQuota": "10"},
                                ],
                            }
                        ],
                    }
                ],
            },
        },
    )
    custom.create_namespaced_custom_object(
        KUEUE_GROUP,
        "v1beta1",
        ns,
        "localqueues",
        {
            "apiVersion": f"{KUEUE_GROUP}/v1beta1",
            "kind": "LocalQueue",
            "metadata": {"name": "lq"},
            "spec": {"clusterQueue": ns},
        },
    )
    return ns, ns


def gpu_job(name: str, members: int, suspend: bool = True) -> client.V1Job:
    pod = labchecks.gpu_pod(name, labels={"job": name})
    pod.spec.restart_policy = "Never"
    pod.spec.containers[0].resources.requests = {"cpu": "10m"}
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name, labels={QUEUE_LABEL: "lq"}),
        spec=client.V1JobSpec(
            parallelism=members,
            completions=members,
            suspend=suspend,
            template=client.V1PodTemplateSpec(metadata=pod.metadata, spec=pod.spec),
        ),
    )


def workload_condition(api: client.ApiClient, ns: str, kind: str, timeout: float) -> Any:
    """Wait for a Workload in ``ns`` with condition ``kind`` True; return it (or None)."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for wl in custom.list_namespaced_custom_object(KUEUE_GROUP, "v1beta2", ns, "workloads")[
            "items"
        ]:
            conds = wl.get("status", {}).get("conditions", []) or []
            if any(c["type"] == kind and c["status"] == "True" for c in conds):
                return wl
        time.sleep(0.5)  # Kueue updates Workload status asynchronously: short poll.
    return None


def test_kueue_serves_v1beta1_through_its_conversion_webhook(
    kapi: client.ApiClient, queue: tuple[str, str]
) -> None:
    cq = client.CustomObjectsApi(kapi).get_cluster_custom_object(
        KUEUE_GROUP, "v1beta2", "clusterqueues", queue[1]
    )
    assert cq["apiVersion"] == f"{KUEUE_GROUP}/v1beta2"
    quota = cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]
    assert quota == {"name": labchecks.GPU, "nominalQuota": "2"}


def test_kueue_webhook_suspends_a_queued_job(
    kapi: client.ApiClient, queue: tuple[str, str]
) -> None:
    job = client.BatchV1Api(kapi).create_namespaced_job(
        queue[0], gpu_job("dry", 1, suspend=False), dry_run="All"
    )
    assert job.spec.suspend is True  # Set by Kueue's mutating webhook (mjob.kb.io).


def test_kueue_admits_a_gang_within_quota_and_it_completes(
    kapi: client.ApiClient, queue: tuple[str, str]
) -> None:
    ns = queue[0]
    client.BatchV1Api(kapi).create_namespaced_job(ns, gpu_job("gang", 2))
    assert workload_condition(kapi, ns, "Admitted", 30), "the 2-pod Job was not admitted"
    done = labchecks.wait_for(
        client.CoreV1Api(kapi).list_namespaced_pod,
        lambda pods: len(pods) == 2 and all(p.status.phase == "Succeeded" for p in pods),
        timeout=60,
        namespace=ns,
        label_selector="job=gang",
    )
    assert done, "the admitted Job's pods did not both run and complete"


def test_stopped_kueue_blocks_jobs_and_restart_repairs(
    kueue_lab: tuple[Lab, LabInfo], kapi: client.ApiClient, queue: tuple[str, str]
) -> None:
    lab, ns = kueue_lab[0], queue[0]
    batch = client.BatchV1Api(kapi)
    lab.stop_component("kueue")
    try:
        with pytest.raises(ApiException) as denied:
            batch.create_namespaced_job(ns, gpu_job("off", 1), dry_run="All")
        message = json.loads(denied.value.body)["message"]
        assert 'failed calling webhook "mjob.kb.io"' in message, message
    finally:
        lab.start_component("kueue")
    assert lab.status().components["kueue"].healthy
    # Over quota (3 GPUs on a 2-GPU queue): never admitted, no pod, Kueue says why.
    batch.create_namespaced_job(ns, gpu_job("big", 3))
    custom = client.CustomObjectsApi(kapi)

    def big() -> Any:
        items = custom.list_namespaced_custom_object(KUEUE_GROUP, "v1beta2", ns, "workloads")
        owned = [w for w in items["items"] if w["metadata"]["ownerReferences"][0]["name"] == "big"]
        return owned[0] if owned else None

    deadline = time.monotonic() + 30
    conds: dict[str, Any] = {}
    while time.monotonic() < deadline and conds.get("QuotaReserved", {}).get("status") != "False":
        wl = big()
        conds = {c["type"]: c for c in (wl or {}).get("status", {}).get("conditions", []) or []}
        time.sleep(0.5)  # Kueue updates Workload status asynchronously: short poll.
    assert conds.get("QuotaReserved", {}).get("status") == "False", conds
    assert "insufficient" in conds["QuotaReserved"]["message"].lower(), conds
    time.sleep(5)  # The negative window: a wrongly admitted Job would have pods by now.
    assert conds.get("Admitted", {}).get("status") != "True"
    assert client.CoreV1Api(kapi).list_namespaced_pod(ns, label_selector="job=big").items == []
