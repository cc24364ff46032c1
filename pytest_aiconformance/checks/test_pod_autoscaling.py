"""pod_autoscaling: the HorizontalPodAutoscaler scales accelerator pods (a conditional MUST).

The official text: where the platform serves the HPA, it must work for pods using accelerators,
including scaling them on custom metrics. Not serving autoscaling/v2 makes both checks N/A.

Essential, CPU: an autoscaling/v2 HPA on a Deployment whose pods request an accelerator scales
up under CPU load and back down once the load stops (short behaviour windows keep this to
seconds); the scheduler still enforces accelerator capacity, so the replica beyond the free
accelerators of one node stays Pending (extended resource or DRA claim, as --allocation-mode
says; not observable when every accelerator is already allocated). CPU metrics are not what the
requirement asks for, so without the resource metrics API (metrics.k8s.io) this check is N/A.
Load: on simulated nodes the pods' usage annotation drives the simulated CPU usage; on real
nodes the pods burn CPU until a kill-switch file is created in each of them (exec).

Essential, custom metrics: accelerator pods serve a value of their own over HTTP and the HPA
scales them on it through the cluster's adapter: KEDA (a ScaledObject's metrics-api trigger,
read as an external metric) or a custom.metrics.k8s.io adapter such as prometheus-adapter (a
Prometheus gauge the platform's Prometheus scrapes; an HPA of type Pods). The check moves the
value high (scaled to 2) and low (back to 1) by rewriting the served file (exec). No custom or
external metrics API at all fails the requirement; external metrics from an adapter that is
not KEDA, or an accelerator node that is simulated, cannot show it (not observable). See
requirements/pod_autoscaling.py for the paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    ApiError,
    ClusterError,
    ClusterInfo,
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    Target,
    allocations,
    condition_true,
    events_table,
    get_table,
    monitoring,
    name,
    not_applicable,
    not_observable,
    pod_autoscaling,
    simulation,
    table,
    wait_for_event,
    watch_until,
)

REQ = "pod_autoscaling"
CM = pod_autoscaling
Obj = dict[str, Any]
Timeout = Callable[[float], float]


def _require_hpa(kube: Kube) -> None:
    """The requirement is conditional: no HPA served, nothing to judge."""
    if not kube.serves("autoscaling/v2", "HorizontalPodAutoscaler"):
        not_applicable("the cluster does not serve autoscaling/v2 HorizontalPodAutoscaler")


def _require_resource_metrics(kube: Kube) -> None:
    """CPU scaling needs metrics.k8s.io; the official text asks for custom metrics, not CPU."""
    if not kube.serves("metrics.k8s.io/v1beta1"):
        not_applicable("the resource metrics API (metrics.k8s.io/v1beta1) is not served (no "
                       "metrics-server), so the HPA cannot scale on CPU utilisation; the "
                       "requirement is judged on custom metrics (HPAScalesOnCustomMetric)")


def stop_load(kube: Kube, namespace: str, pods: list[Obj], simulated: bool) -> None:
    """The kill-switch: idle usage annotation (simulated) or the stop file (real)."""
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        if simulated:
            kube.patch("v1", "Pod", pod_name, CM.idle_patch(), namespace)
        elif pod.get("status", {}).get("phase") == "Running":
            kube.exec(namespace, pod_name, ["touch", "/tmp/stop"], container="server")


@pytest.mark.requirement(REQ, junit="HPAScalesAcceleratorPods")
def test_hpa_scales_accelerator_pods(kube: Kube, cluster_info: ClusterInfo,
                                     aic_settings: Settings, namespace: str,
                                     run_context: RunContext, evidence: EvidenceRecorder,
                                     timeout: Timeout) -> None:
    """An HPA scales accelerator pods up under load, enforces capacity, and scales back down."""
    _require_hpa(kube)
    _require_resource_metrics(kube)
    alloc = allocations.choose_allocation(cluster_info, aic_settings.profile,
                                          aic_settings.allocation_mode)
    per_node = allocations.allocatable_per_node(kube, cluster_info, alloc)
    free = allocations.free_accelerators(kube, cluster_info, alloc)
    allocations.require_free_accelerator(free, per_node, alloc,
                                         "no replica could be placed to scale")
    node, units = CM.fewest_free(free)
    simulated = simulation.node_is_simulated(kube.get("v1", "Node", node))
    max_replicas = units + 1
    evidence.note(f"Deployment 'inference' pinned to {node} ({units} free {alloc.unit}); "
                  f"each replica requests one ({alloc.describe()}); HPA maxReplicas "
                  f"{max_replicas}, so the last replica must stay Pending. Load: "
                  f"{'simulated usage annotation' if simulated else 'CPU burn in each pod'}")
    for obj in allocations.claim_objects(alloc, namespace):
        run_context.create(obj)
    run_context.create(CM.burn_deployment("inference", namespace, alloc, node, load=True,
                                          image=aic_settings.image("probe")))
    run_context.create(CM.cpu_hpa("inference", namespace, max_replicas))
    pods_target = Target("v1", "Pod", namespace, label_selector="app=inference")
    pods = watch_until(kube, pods_target,
                       lambda objs: CM.capacity_enforced(objs, units, alloc.refusal),
                       timeout=timeout(180),
                       expected=f"HPA to scale to {max_replicas} replicas with {units} bound "
                                f"and 1 Pending for '{alloc.refusal}'")
    hpa_obj = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "inference", namespace)
    evidence.command(f"kubectl get hpa -n {namespace}",
                     table([CM.cpu_hpa_row(hpa_obj)], CM.HPA_COLUMNS))
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
                   {"spec": {"template": CM.idle_patch()}}, namespace)

    down = watch_until(kube, Target("autoscaling/v2", "HorizontalPodAutoscaler", namespace,
                                    name="inference"), CM.back_to_one, timeout=timeout(180),
                       expected="HPA to scale back to 1 replica after the load stopped")
    evidence.command(f"kubectl get hpa -n {namespace}  # after the load stopped",
                     table([CM.cpu_hpa_row(next(iter(down.values())))], CM.HPA_COLUMNS))


# --- scaling on a custom metric ------------------------------------------------------------

APP = "queue-scaler"


def _exposer_ready(kube: Kube, namespace: str, timeout: Timeout) -> Obj:
    """The first replica serving the metric (its readiness probe reads the value file)."""
    pods = watch_until(kube, Target("v1", "Pod", namespace, label_selector=f"app={APP}"),
                       lambda objs: any(CM.pod_ready(o) for o in objs.values()),
                       timeout=timeout(180), expected="the metric-serving accelerator pod Ready")
    return min((o for o in pods.values() if CM.pod_ready(o)), key=name)


def _set_value(kube: Kube, namespace: str, value: float, pods: list[Obj],
               evidence: EvidenceRecorder) -> None:
    """Rewrite the served value in each running pod (a replica started later starts LOW)."""
    done = []
    for pod in pods:
        if pod.get("status", {}).get("phase") != "Running" or \
                pod["metadata"].get("deletionTimestamp"):
            continue
        out = kube.exec(namespace, name(pod), CM.write_value_command(CM.METRIC, value),
                        container="server")
        if CM.WRITTEN not in out:
            raise ClusterError(f"could not rewrite the metric in pod {name(pod)}: {out.strip()}")
        done.append(name(pod))
    evidence.note(f"{CM.METRIC} set to {value:g} (target {CM.TARGET:g} per pod) in "
                  f"{', '.join(done) or 'no running pod'} by rewriting {CM.METRICS_PATH} and "
                  f"{CM.VALUE_PATH} (kubectl exec)")


def _running_pods(kube: Kube, namespace: str) -> list[Obj]:
    return sorted(kube.items("v1", "Pod", namespace, label_selector=f"app={APP}"), key=name)


def _scale_and_return(kube: Kube, namespace: str, hpa_name: str, source: list[Obj],
                      evidence: EvidenceRecorder, timeout: Timeout, how: str) -> None:
    """Value HIGH: the HPA goes to 2 replicas; value LOW: back to 1. Evidence either way."""
    target = Target("autoscaling/v2", "HorizontalPodAutoscaler", namespace, name=hpa_name)
    _set_value(kube, namespace, CM.HIGH, source, evidence)
    up = watch_until(kube, target, CM.at_replicas(2), timeout=timeout(300),
                     describe=CM.hpa_state,
                     expected=f"HPA {hpa_name} to scale to 2 replicas on {how} "
                              f"({CM.METRIC}={CM.HIGH:g}, target {CM.TARGET:g})")
    evidence.command(f"kubectl get hpa -n {namespace} {hpa_name}",
                     table([CM.hpa_row(o) for o in up.values()], CM.HPA_COLUMNS))
    deploy = kube.get("apps/v1", "Deployment", APP, namespace)
    evidence.command(f"kubectl get deployment -n {namespace} {APP}",
                     table([[APP, deploy["spec"].get("replicas"),
                             deploy.get("status", {}).get("readyReplicas", 0)]],
                           ["NAME", "REPLICAS", "READY"]))
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(_running_pods(kube, namespace), POD_WIDE))
    events = wait_for_event(kube, namespace, "SuccessfulRescale", involved=hpa_name,
                            timeout=timeout(30))
    evidence.command(f"kubectl get events -n {namespace} --field-selector "
                     f"reason=SuccessfulRescale,involvedObject.name={hpa_name}",
                     "\n".join(str(e.get("message")) for e in events))

    _set_value(kube, namespace, CM.LOW, _running_pods(kube, namespace), evidence)
    down = watch_until(kube, target, CM.at_replicas(1), timeout=timeout(300),
                       describe=CM.hpa_state,
                       expected=f"HPA {hpa_name} to scale back to 1 replica "
                                f"({CM.METRIC}={CM.LOW:g}, target {CM.TARGET:g})")
    evidence.command(f"kubectl get hpa -n {namespace} {hpa_name}  # after the value dropped",
                     table([CM.hpa_row(o) for o in down.values()], CM.HPA_COLUMNS))


def _with_keda(kube: Kube, namespace: str, run_context: RunContext,
               evidence: EvidenceRecorder, timeout: Timeout) -> None:
    """KEDA's metrics-api trigger reads the value from the first replica over its Service."""
    source = _exposer_ready(kube, namespace, timeout)
    # Only this pod backs the Service: a replica the HPA adds starts LOW and must not answer.
    # Its deletion cost keeps it when the HPA scales back down.
    kube.patch("v1", "Pod", name(source), CM.source_patch(), namespace)
    svc = run_context.create(CM.exposer_service(APP, namespace,
                                                {"app": APP, CM.SOURCE_LABEL: "true"}))
    hpa_name = f"{APP}-keda"
    cluster_ip = str((svc.get("spec") or {}).get("clusterIP") or "")
    if not cluster_ip or cluster_ip == "None":
        raise ClusterError(f"Service {APP} got no ClusterIP ({cluster_ip or 'none'}): KEDA "
                           "has no address to read the value from")
    url = CM.value_url(cluster_ip)
    evidence.note(f"KEDA reads {url}: Service {APP}'s ClusterIP, the address "
                  f"{CM.service_url(APP, namespace)} resolves to (an address needs no cluster "
                  "DNS where KEDA's operator runs)")
    scaled = run_context.create(CM.scaled_object(APP, namespace, APP, url, hpa_name=hpa_name))
    evidence.yaml("ScaledObject (KEDA metrics-api trigger on the pods' own value)", scaled,
                  f"kubectl get scaledobject -n {namespace} {APP} -o yaml")

    watch_until(kube, Target(CM.KEDA_GV, "ScaledObject", namespace, name=APP),
                lambda objs: any(condition_true(o, "Ready") for o in objs.values()),
                timeout=timeout(120), describe=CM.conditions_line,
                expected=f"KEDA to accept ScaledObject {APP} (Ready) and create HPA {hpa_name}")
    _scale_and_return(kube, namespace, hpa_name, [source], evidence, timeout,
                      f"the external metric KEDA reads from {url}")
    hpa_obj = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", hpa_name, namespace)
    metric = CM.external_metric(hpa_obj)
    if metric:
        path = (f"/apis/{CM.EXTERNAL_GV}/namespaces/{namespace}/{metric}"
                f"?labelSelector=scaledobject.keda.sh/name={APP}")
        try:
            answer = str(kube.request("GET", path.split("?")[0], query={
                "labelSelector": f"scaledobject.keda.sh/name={APP}"}))
        except ApiError as exc:
            answer = f"{exc.status}: {exc.message}"
        except ClusterError as exc:  # e.g. a 500 from the adapter: evidence, not the verdict
            answer = str(exc)
        evidence.command(f"kubectl get --raw '{path}'", answer[:2000])


def _scrape_plan(kube: Kube, namespace: str, evidence: EvidenceRecorder,
                 aic_settings: Settings) -> tuple[str, Obj | None]:
    """How the pods' gauge gets scraped: a scrape object built from the platform collector's
    own selectors (as ai_service_metrics does), else prometheus.io annotations (None)."""
    found = monitoring.find_monitoring(kube, aic_settings.prometheus)
    try:
        plan = found.plan(namespace)
    except monitoring.UnsatisfiableSelector as exc:
        how = (f"the check cannot have the platform's monitoring scrape them ({exc}), so it "
               "annotates them prometheus.io/scrape for a Prometheus that follows annotations")
        evidence.note(f"The pods expose {CM.METRIC} on {CM.METRICS_PATH}; {how}")
        return how, None
    how = f"{found.ident} scrapes them: {plan.explanation}"
    if plan.namespace_labels:
        kube.patch("v1", "Namespace", namespace, {"metadata": {"labels": plan.namespace_labels}})
    evidence.note(f"The pods expose {CM.METRIC} on {CM.METRICS_PATH}; {how}")
    return how, CM.scrape_object(plan, f"aic-{namespace}"[:63], namespace, {"app": APP})


def _run_custom_metrics(kube: Kube, namespace: str, run_context: RunContext,
                        evidence: EvidenceRecorder, timeout: Timeout, api: CM.MetricsAPI,
                        how: str, scrape: Obj | None) -> None:
    gv = api.group_version
    run_context.create(CM.exposer_service(APP, namespace, {"app": APP}))
    if scrape is not None:
        run_context.create(scrape)
        evidence.yaml(f"{scrape['kind']} for the pods' gauge", scrape,
                      f"kubectl get {scrape['kind'].lower()} -n "
                      f"{scrape['metadata']['namespace']} {name(scrape)} -o yaml")
    source = _exposer_ready(kube, namespace, timeout)
    path = f"/apis/{gv}/namespaces/{namespace}/pods/*/{CM.METRIC}"

    def fetch() -> tuple[str, dict[str, float]]:
        try:
            body = kube.request("GET", path)
        except ApiError as exc:
            return f"{exc.status}: {exc.message}", {}
        try:
            return str(body)[:2000], CM.pod_metric_values(body)
        except ValueError as exc:
            return str(exc), {}

    wait_s = timeout(300)
    (answer, values), listed = monitoring.poll(
        fetch, lambda got: name(source) in got[1], timeout=wait_s, interval=5)
    evidence.command(f"kubectl get --raw '{path}'", answer)
    if not listed:
        raise AssertionError(
            f"the custom metrics adapter ({api.describe()}) did not serve {CM.METRIC} for the "
            f"check's pod {name(source)} within {wait_s:.0f}s; GET {path} last answered: "
            f"{answer[:300]} ({how})")
    evidence.note(f"{gv} serves {CM.METRIC} for {', '.join(sorted(values))}: "
                  f"{', '.join(f'{p}={v:g}' for p, v in sorted(values.items()))}")
    hpa_obj = run_context.create(CM.pods_metric_hpa(APP, namespace, APP))
    evidence.yaml("HPA of type Pods on the pods' own gauge", hpa_obj,
                  f"kubectl get hpa -n {namespace} {APP} -o yaml")
    _scale_and_return(kube, namespace, APP, [source], evidence, timeout,
                      f"the pods' {CM.METRIC} served by {gv}")


@pytest.mark.requirement(REQ, junit="HPAScalesOnCustomMetric")
def test_hpa_scales_on_custom_metric(kube: Kube, cluster_info: ClusterInfo,
                                     aic_settings: Settings, namespace: str,
                                     run_context: RunContext, evidence: EvidenceRecorder,
                                     timeout: Timeout) -> None:
    """An HPA scales accelerator pods on a custom metric they serve, through a metrics adapter.

    The requirement's custom-metrics half: the value comes from the accelerator pods themselves
    and reaches the HPA only through the cluster's custom or external metrics API.
    """
    _require_hpa(kube)
    gvs, apiservices, unread = CM.discover(kube)
    evidence.command("kubectl get apiservices | grep -E 'custom.metrics|external.metrics'",
                     table(CM.apiservice_rows(apiservices),
                           ["NAME", "SERVICE", "AVAILABLE", "MESSAGE"]) if apiservices
                     else "(none)" + (f"  # {unread}" if unread else ""))
    evidence.command("kubectl api-versions | grep -E 'metrics.k8s.io|keda.sh'",
                     "\n".join(gv for gv in gvs if "metrics.k8s.io/" in gv
                               or gv.startswith("keda.sh/")) or "(none)")
    keda = kube.serves(CM.KEDA_GV, "ScaledObject")
    path = CM.choose_path(CM.metrics_apis(gvs, apiservices), keda)
    evidence.note(f"path: {path.reason}")
    if path.kind is CM.PathKind.NONE:
        raise AssertionError(path.reason)
    if path.kind is CM.PathKind.EXTERNAL_OTHER:
        not_observable(path.reason)

    alloc = allocations.choose_allocation(cluster_info, aic_settings.profile,
                                          aic_settings.allocation_mode)
    per_node = allocations.allocatable_per_node(kube, cluster_info, alloc)
    free = allocations.free_accelerators(kube, cluster_info, alloc)
    allocations.require_free_accelerator(free, per_node, alloc,
                                         "no replica could be placed to scale")
    # A node that runs containers, with the most free accelerators (the second replica may
    # then run too).
    simulated = {n: simulation.node_is_simulated(kube.get("v1", "Node", n))
                 for n, f in free.items() if f > 0}
    node, units = CM.container_node(free, simulated)
    if simulated[node]:
        nodes = ", ".join(sorted(simulated))
        not_observable(f"accelerator node(s) with a free {alloc.unit} ({nodes}) are simulated "
                       "(kwok) and run no containers, so no accelerator pod can serve the metric "
                       f"the HPA would scale on ({path.reason})")
    evidence.note(f"Deployment {APP} pinned to {node} ({units} free {alloc.unit}); each replica "
                  f"requests one ({alloc.describe()}); min 1, max 2 replicas")
    how: str = ""
    scrape: Obj | None = None
    annotations: dict[str, str] | None = None
    if path.kind is CM.PathKind.CUSTOM:
        how, scrape = _scrape_plan(kube, namespace, evidence, aic_settings)
        annotations = CM.scrape_annotations() if scrape is None else None
    for obj in allocations.claim_objects(alloc, namespace):
        run_context.create(obj)
    run_context.create(CM.exposer_deployment(APP, namespace, alloc, node,
                                             image=aic_settings.image("probe"),
                                             annotations=annotations))
    if path.kind is CM.PathKind.KEDA:
        _with_keda(kube, namespace, run_context, evidence, timeout)
    else:
        assert path.api is not None, "a custom metrics path names its API"
        _run_custom_metrics(kube, namespace, run_context, evidence, timeout, path.api, how,
                            scrape)
