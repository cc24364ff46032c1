"""pod_autoscaling: the HorizontalPodAutoscaler scales accelerator pods (a conditional MUST).

Essential: an autoscaling/v2 HPA on a Deployment whose pods request an accelerator scales
up under CPU load and back down once the load stops (short behaviour windows keep this to
seconds); the scheduler still enforces accelerator capacity, so the replica beyond the free
accelerators of one node stays Pending (extended resource or DRA claim, as --allocation-mode
says; not observable when every accelerator is already allocated). Supporting: the
custom/external metrics path, when an adapter serves those APIs.
Load: on simulated nodes the pods' usage annotation drives the simulated CPU usage; on real
nodes the pods burn CPU until a kill-switch file is created in each of them (exec).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    ApiError,
    Target,
    events_table,
    get_table,
    not_applicable,
    probing,
    table,
    wait_for_event,
    watch_until,
    workloads,
)

REQ = "pod_autoscaling"
USAGE_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
BURN = ("trap 'exit 0' TERM; while [ ! -e /tmp/stop ]; do :; done; "
        "while :; do sleep 1; done")


def _require_hpa(kube) -> None:
    if not kube.serves("autoscaling/v2", "HorizontalPodAutoscaler"):
        not_applicable("the cluster does not serve autoscaling/v2 HorizontalPodAutoscaler")
    if not kube.serves("metrics.k8s.io/v1beta1"):
        raise AssertionError("the resource metrics API (metrics.k8s.io) is not served: the "
                             "HPA cannot read CPU utilisation (no metrics-server?)")


def hpa(name: str, namespace: str, max_replicas: int) -> dict[str, Any]:
    fast = {"stabilizationWindowSeconds": 0,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}]}
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1, "maxReplicas": max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "behavior": {"scaleUp": fast, "scaleDown": fast},
        },
    }


def deployment(name: str, namespace: str, alloc, node: str, load: bool,
               image: str) -> dict[str, Any]:
    """Replicas pinned to `node`, each asking for one accelerator (its own claim under DRA)."""
    ctr = workloads.container("server", ["sh", "-c", BURN], image=image,
                              resources_={"requests": {"cpu": "100m"},
                                          "limits": {"cpu": "200m"}})
    pod = probing.accelerator_pod(name, namespace, alloc, ctr, restart_policy="Always",
                                  node_selector={"kubernetes.io/hostname": node},
                                  annotations={USAGE_ANNOTATION: "190m" if load else "1m"},
                                  labels={"app": name})
    template = {"metadata": {"labels": {"app": name},
                             "annotations": pod["metadata"]["annotations"]},
                "spec": pod["spec"]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": template}}


def hpa_row(obj: dict[str, Any]) -> list[Any]:
    status = obj.get("status", {})
    cur = next((m["resource"]["current"].get("averageUtilization") for m in
                status.get("currentMetrics", []) or [] if m.get("type") == "Resource"), None)
    return [obj["metadata"]["name"], f"cpu: {cur if cur is not None else '<unknown>'}%/50%",
            obj["spec"]["minReplicas"], obj["spec"]["maxReplicas"],
            status.get("currentReplicas", 0), status.get("desiredReplicas", 0)]


def stop_load(kube, namespace: str, pods: list[dict[str, Any]], simulated: bool) -> None:
    """The kill-switch: idle usage annotation (simulated) or the stop file (real)."""
    for pod in pods:
        name = pod["metadata"]["name"]
        if simulated:
            kube.patch("v1", "Pod", name, {"metadata": {"annotations": {USAGE_ANNOTATION: "1m"}}},
                       namespace)
        elif pod.get("status", {}).get("phase") == "Running":
            kube.exec(namespace, name, ["touch", "/tmp/stop"], container="server")


@pytest.mark.requirement(REQ, junit="HPAScalesAcceleratorPods")
def test_hpa_scales_accelerator_pods(kube, cluster_info, aic_settings, namespace, run_context,
                                     evidence, timeout):
    """An HPA scales accelerator pods up under load, enforces capacity, and scales back down."""
    _require_hpa(kube)
    alloc = probing.choose_allocation(cluster_info, aic_settings.profile,
                                      aic_settings.allocation_mode)
    per_node = probing.allocatable_per_node(kube, cluster_info, alloc)
    free = probing.free_accelerators(kube, cluster_info, alloc)
    probing.require_free_accelerator(free, per_node, alloc,
                                     "no replica could be placed to scale")
    node, units = min(((n, f) for n, f in free.items() if f > 0),
                      key=lambda kv: (kv[1], kv[0]))
    simulated = probing.node_is_simulated(kube.get("v1", "Node", node))
    max_replicas = units + 1
    evidence.note(f"Deployment 'inference' pinned to {node} ({units} free {alloc.unit}); "
                  f"each replica requests one ({alloc.describe()}); HPA maxReplicas "
                  f"{max_replicas}, so the last replica must stay Pending. Load: "
                  f"{'simulated usage annotation' if simulated else 'CPU burn in each pod'}")
    for obj in probing.claim_objects(alloc, namespace):
        run_context.create(obj)
    run_context.create(deployment("inference", namespace, alloc, node, load=True,
                                  image=aic_settings.image("probe")))
    run_context.create(hpa("inference", namespace, max_replicas))
    pods_target = Target("v1", "Pod", namespace, label_selector="app=inference")

    def scaled_up(objs: dict[str, dict[str, Any]]) -> bool:
        bound = [o for o in objs.values() if o["spec"].get("nodeName")
                 and not o["metadata"].get("deletionTimestamp")]
        pending = [o for o in objs.values() if not o["spec"].get("nodeName")
                   and alloc.refusal in str(o.get("status", {}))]
        return len(bound) == units and len(pending) == 1

    pods = watch_until(kube, pods_target, scaled_up, timeout=timeout(180),
                       expected=f"HPA to scale to {max_replicas} replicas with {units} bound "
                                f"and 1 Pending for '{alloc.refusal}'")
    hpa_obj = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "inference", namespace)
    evidence.command(f"kubectl get hpa -n {namespace}",
                     table([hpa_row(hpa_obj)], ["NAME", "TARGETS", "MINPODS", "MAXPODS",
                                                "REPLICAS", "DESIRED"]))
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(sorted(pods.values(), key=lambda o: o["metadata"]["name"]),
                               POD_WIDE))
    pending = next(o for o in pods.values() if not o["spec"].get("nodeName"))
    pending_name = pending["metadata"]["name"]
    refused = kube.items("v1", "Event", namespace,
                         field_selector=f"involvedObject.name={pending_name}")
    evidence.command(f"kubectl get events -n {namespace} --field-selector "
                     f"involvedObject.name={pending_name}", events_table(refused))
    events = wait_for_event(kube, namespace, "SuccessfulRescale", involved="inference",
                            timeout=timeout(30))
    evidence.command(f"kubectl get events -n {namespace} --field-selector "
                     "reason=SuccessfulRescale",
                     "\n".join(str(e.get("message")) for e in events))

    stop_load(kube, namespace, list(pods.values()), simulated)
    if simulated:
        # Replicas the HPA adds from now on start idle too.
        kube.patch("apps/v1", "Deployment", "inference",
                   {"spec": {"template": {"metadata": {"annotations": {USAGE_ANNOTATION: "1m"}}}}},
                   namespace)

    def scaled_down(objs: dict[str, dict[str, Any]]) -> bool:
        status = next(iter(objs.values()), {}).get("status", {})
        return status.get("currentReplicas") == 1 and status.get("desiredReplicas") == 1

    down = watch_until(kube, Target("autoscaling/v2", "HorizontalPodAutoscaler", namespace,
                                    name="inference"), scaled_down, timeout=timeout(180),
                       expected="HPA to scale back to 1 replica after the load stopped")
    evidence.command(f"kubectl get hpa -n {namespace}  # after the load stopped",
                     table([hpa_row(next(iter(down.values())))],
                           ["NAME", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "DESIRED"]))


@pytest.mark.requirement(REQ, role="supporting")
def test_custom_metrics_path(kube, namespace, run_context, evidence, timeout, aic_settings):
    """An HPA reads a custom or external metric through an adapter, when one is installed."""
    served = [gv for gv in ("custom.metrics.k8s.io/v1beta2", "custom.metrics.k8s.io/v1beta1",
                            "external.metrics.k8s.io/v1beta1") if kube.serves(gv)]
    if not served:
        not_applicable("no metrics adapter serves custom.metrics.k8s.io or "
                       "external.metrics.k8s.io (e.g. prometheus-adapter)")
    gv = served[0]
    resources = kube.resources(gv)
    pod_metrics = sorted(r["name"].split("/", 1)[1] for r in resources
                         if r["name"].startswith("pods/"))
    evidence.command(f"kubectl get --raw /apis/{gv} | jq '.resources[].name'",
                     "\n".join(r["name"] for r in resources[:20]))
    if "custom" not in gv or not pod_metrics:
        not_applicable(f"{gv} serves no per-pod metric to scale on")
    metric = pod_metrics[0]
    run_context.create(workloads.pod("metric-src", namespace, [workloads.container(
        "ctr", ["sleep", "3600"], image=aic_settings.image("probe"))],
        labels={"app": "metric-src"}, restart_policy="Always"))
    try:
        value = kube.request("GET", f"/apis/{gv}/namespaces/{namespace}/pods/*/{metric}")
    except ApiError as exc:
        raise AssertionError(f"{gv} did not answer for pods/{metric}: {exc.message}") from None
    evidence.command(f"kubectl get --raw /apis/{gv}/namespaces/{namespace}/pods/*/{metric}",
                     str(value)[:2000])
