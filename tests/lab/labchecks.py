"""Capability checks run against a lab, shared by the positive and the negative tests.

Each check raises ``AssertionError`` with a message saying what was missing.  The positive tests
run them on the full lab; the negative tests run the same function on a lab without the
capability and expect that error, which proves the check can fail.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

GPU = "nvidia.com/gpu"
DRA_DRIVER = "gpu.example.com"
IMAGE = "registry.k8s.io/pause:3.10"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_for(
    list_fn: Callable[..., Any],
    predicate: Callable[[list[Any]], Any],
    *,
    timeout: float,
    **kwargs: Any,
) -> Any:
    """List, then watch, until ``predicate(items)`` is truthy; return its value (or None).

    Returns None at the deadline instead of raising, so callers can build a precise message.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        listing = list_fn(**kwargs)
        items = {f"{o.metadata.namespace}/{o.metadata.name}": o for o in listing.items}
        result = predicate(list(items.values()))
        if result:
            return result
        w = watch.Watch()
        try:
            for event in w.stream(
                list_fn,
                resource_version=listing.metadata.resource_version,
                timeout_seconds=max(1, int(remaining)),
                **kwargs,
            ):
                obj = event["object"]
                key = f"{obj.metadata.namespace}/{obj.metadata.name}"
                if event["type"] == "DELETED":
                    items.pop(key, None)
                else:
                    items[key] = obj
                result = predicate(list(items.values()))
                if result:
                    return result
                if time.monotonic() > deadline:
                    return None
        except ApiException as err:
            if err.status != 410:  # Expired resourceVersion: list again.
                raise
        finally:
            w.stop()


def gpu_pod(name: str, gpus: int = 1, labels: dict[str, str] | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {"app": name}),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="main",
                    image=IMAGE,
                    resources=client.V1ResourceRequirements(limits={GPU: str(gpus)}),
                )
            ],
            termination_grace_period_seconds=0,
        ),
    )


def _events(core: client.CoreV1Api, ns: str, name: str) -> list[Any]:
    return [e for e in core.list_namespaced_event(ns).items if e.involved_object.name == name]


def _phase(pod: Any) -> str:
    return str(pod.status.phase) if pod.status else "?"


def _wait_running(core: client.CoreV1Api, ns: str, name: str, timeout: float,
                  what: str) -> Any:
    """The pod once Running; a failure names the pod's events."""
    pod = wait_for(
        core.list_namespaced_pod,
        lambda pods: next((p for p in pods if _phase(p) == "Running"), None),
        timeout=timeout,
        namespace=ns,
        field_selector=f"metadata.name={name}",
    )
    if pod is None:
        events = [f"{e.reason}: {e.message}" for e in _events(core, ns, name)]
        raise AssertionError(f"{what} {name} not Running after {timeout:.0f} s; events: {events}")
    return pod


def check_gpu_pod_runs(api: client.ApiClient, ns: str, timeout: float = 60) -> str:
    """A pod requesting one nvidia.com/gpu is scheduled onto a GPU node and runs."""
    core = client.CoreV1Api(api)
    name = unique("gpu")
    core.create_namespaced_pod(ns, gpu_pod(name))
    pod = _wait_running(core, ns, name, timeout, "GPU pod")
    node = core.read_node(pod.spec.node_name)
    labels = node.metadata.labels or {}
    assert labels.get("nvidia.com/gpu.present") == "true", f"{node.metadata.name} is no GPU node"
    assert int(node.status.allocatable.get(GPU, "0")) >= 1
    scheduled = [e for e in _events(core, ns, name) if e.reason == "Scheduled"]
    assert scheduled, "no Scheduled event: the pod was not placed by the scheduler"
    assert (
        scheduled[0].reporting_component or scheduled[0].source.component
    ) == "default-scheduler"
    return str(pod.spec.node_name)


def check_gpu_overcommit(
    api: client.ApiClient, ns: str, total_gpus: int = 2, timeout: float = 60
) -> None:
    """With ``total_gpus`` GPUs, total+1 one-GPU pods leave exactly one Pending, with an
    ``Insufficient nvidia.com/gpu`` FailedScheduling event."""
    core = client.CoreV1Api(api)
    names = [unique("gpu") for _ in range(total_gpus + 1)]
    for name in names:
        core.create_namespaced_pod(ns, gpu_pod(name, labels={"check": "overcommit"}))

    def settled(pods: list[Any]) -> Any:
        running = [p for p in pods if _phase(p) == "Running"]
        pending = [p for p in pods if _phase(p) == "Pending"]
        if len(running) != total_gpus or len(pending) != 1:
            return None
        reasons = [
            e.message or ""
            for e in _events(core, ns, pending[0].metadata.name)
            if e.reason == "FailedScheduling"
        ]
        return pending[0] if any(f"Insufficient {GPU}" in r for r in reasons) else None

    pending = wait_for(
        core.list_namespaced_pod,
        settled,
        timeout=timeout,
        namespace=ns,
        label_selector="check=overcommit",
    )
    if pending is None:
        pods = core.list_namespaced_pod(ns, label_selector="check=overcommit").items
        phases = {p.metadata.name: _phase(p) for p in pods}
        raise AssertionError(
            f"expected {total_gpus} Running and 1 Pending (Insufficient {GPU}); got {phases}"
        )


def dra_served(api: client.ApiClient) -> bool:
    groups = client.ApisApi(api).get_api_versions().groups
    return any(
        g.name == "resource.k8s.io" and any(v.version == "v1" for v in g.versions) for g in groups
    )


def check_dra_claim(api: client.ApiClient, ns: str, timeout: float = 60) -> dict[str, str]:
    """A pod with a ResourceClaimTemplate gets an allocated, reserved claim on a device of the
    simulated driver."""
    if not dra_served(api):
        raise AssertionError("precondition: resource.k8s.io/v1 is not served")
    resource = client.ResourceV1Api(api)
    try:
        resource.read_device_class(DRA_DRIVER)
    except ApiException as err:
        if err.status == 404:
            raise AssertionError(
                f"precondition: no DeviceClass {DRA_DRIVER} (no DRA driver)"
            ) from err
        raise
    template = unique("gpu-claim")
    resource.create_namespaced_resource_claim_template(
        ns,
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": template},
            "spec": {
                "spec": {
                    "devices": {
                        "requests": [{"name": "gpu", "exactly": {"deviceClassName": DRA_DRIVER}}]
                    }
                }
            },
        },
    )
    core = client.CoreV1Api(api)
    name = unique("dra")
    core.create_namespaced_pod(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {"name": "main", "image": IMAGE, "resources": {"claims": [{"name": "gpu"}]}}
                ],
                "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": template}],
            },
        },
    )
    pod = _wait_running(core, ns, name, timeout, "DRA pod")
    statuses = pod.status.resource_claim_statuses or []
    assert statuses, "pod status names no ResourceClaim"
    assert statuses[0].resource_claim_name, "pod status names no ResourceClaim"
    claim = resource.read_namespaced_resource_claim(statuses[0].resource_claim_name, ns)
    allocation = claim.status.allocation if claim.status else None
    assert allocation is not None, f"claim {claim.metadata.name} is not allocated"
    result = allocation.devices.results[0]
    assert result.driver == DRA_DRIVER, f"allocated by {result.driver}, not {DRA_DRIVER}"
    reserved = [r.name for r in claim.status.reserved_for or []]
    assert name in reserved, f"claim reserved for {reserved}, not for pod {name}"
    slices = resource.list_resource_slice(field_selector=f"spec.nodeName={pod.spec.node_name}")
    devices = {d.name for s in slices.items if s.spec.driver == DRA_DRIVER for d in s.spec.devices}
    assert result.device in devices, f"device {result.device} not in {pod.spec.node_name}'s slices"
    return {"node": pod.spec.node_name, "pool": result.pool, "device": result.device}


def check_hpa_scales_up(
    api: client.ApiClient, ns: str, max_replicas: int = 2, timeout: float = 150
) -> int:
    """An autoscaling/v2 HPA on CPU utilisation scales a Deployment of GPU pods up, driven by
    the simulated usage annotation (900m used of 1 CPU requested, target 50%)."""
    apps = client.AppsV1Api(api)
    autoscaling = client.AutoscalingV2Api(api)
    name = unique("hpa")
    labels = {"app": name}
    apps.create_namespaced_deployment(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {"kwok.x-k8s.io/usage-cpu": "900m"},
                    },
                    "spec": {
                        "terminationGracePeriodSeconds": 0,
                        "containers": [
                            {
                                "name": "main",
                                "image": IMAGE,
                                "resources": {
                                    "requests": {"cpu": "1"},
                                    "limits": {GPU: "1", "cpu": "1"},
                                },
                            }
                        ],
                    },
                },
            },
        },
    )
    autoscaling.create_namespaced_horizontal_pod_autoscaler(
        ns,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": 1,
                "maxReplicas": max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ],
            },
        },
    )
    hpa = wait_for(
        autoscaling.list_namespaced_horizontal_pod_autoscaler,
        lambda items: next(
            (h for h in items if h.status and (h.status.desired_replicas or 0) >= max_replicas),
            None,
        ),
        timeout=timeout,
        namespace=ns,
        field_selector=f"metadata.name={name}",
    )
    if hpa is None:
        current = autoscaling.read_namespaced_horizontal_pod_autoscaler(name, ns)
        conditions = [
            f"{c.type}={c.status} {c.reason}: {c.message}"
            for c in (current.status.conditions or [])
        ]
        reasons = sorted({e.reason for e in _events(client.CoreV1Api(api), ns, name)})
        raise AssertionError(
            f"HPA {name} did not scale up within {timeout:.0f} s; conditions: {conditions};"
            f" event reasons: {reasons}"
        )
    deployment = wait_for(
        apps.list_namespaced_deployment,
        lambda items: next((d for d in items if (d.spec.replicas or 0) >= max_replicas), None),
        timeout=30,
        namespace=ns,
        field_selector=f"metadata.name={name}",
    )
    assert deployment is not None, "HPA wanted more replicas but the Deployment was not scaled"
    return int(deployment.spec.replicas)
