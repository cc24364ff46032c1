"""pod_autoscaling: the decisions of its checks (checks/test_pod_autoscaling.py), as functions
over what the API server answered; pure apart from `discover`.

Scaling on CPU (the check's first half): an HPA on a Deployment of accelerator pods pinned to
the node with the fewest free accelerators, whose pods burn CPU until a kill-switch (or, on a
simulated node, report the usage annotation); scaled up it has every accelerator of the node
bound and one replica Pending for the accelerator, then back to one replica.

Scaling on custom metrics: which path a cluster offers, the objects that prove it, and the
metrics APIs' answers read back.

The HPA reads custom metrics only through an aggregated API an adapter serves:
custom.metrics.k8s.io (per-object metrics, e.g. prometheus-adapter) or
external.metrics.k8s.io (e.g. KEDA, cloud adapters). The paths, in the order chosen:

- KEDA (its ScaledObject CRD and its metrics server behind external.metrics.k8s.io): a
  ScaledObject's metrics-api trigger reads a value the check's own pods serve over HTTP; the
  HPA KEDA creates scales on it. Needs no monitoring stack, so it is tried first.
- custom.metrics.k8s.io: the pods expose a Prometheus gauge, the platform's Prometheus
  scrapes it, the adapter serves it per pod, and an HPA of type Pods scales on it.
- external metrics from anything else (a cloud adapter): nothing generic can feed it a metric
  of the check's pods, so scaling on it cannot be observed here.
- no adapter: the HPA cannot scale on custom metrics at all (the requirement's failure).

The pods are busybox `httpd` serving two static files (the gauge in Prometheus text format
and the value as JSON) that the check rewrites with `kubectl exec` to move the metric.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kubernetes.utils import parse_quantity

from pytest_aiconformance.cluster import allocations, tables, workloads
from pytest_aiconformance.cluster.client import ApiError, Kube
from pytest_aiconformance.cluster.monitoring import MonitorPlan, service_monitor
from pytest_aiconformance.cluster.waits import condition_true

CUSTOM_GROUP = "custom.metrics.k8s.io"
EXTERNAL_GROUP = "external.metrics.k8s.io"
CUSTOM_GVS = (f"{CUSTOM_GROUP}/v1beta2", f"{CUSTOM_GROUP}/v1beta1")  # the HPA prefers v1beta2
EXTERNAL_GV = f"{EXTERNAL_GROUP}/v1beta1"
KEDA_GV = "keda.sh/v1alpha1"
APISERVICE_GV = "apiregistration.k8s.io/v1"

# The workload: a gauge an inference server would scale on, served by busybox httpd.
METRIC = "aic_inference_queue_depth"
PORT = 8080
WEB_ROOT = "/tmp/www"
# busybox httpd names the content type after the file's suffix: .txt is text/plain, the type
# Prometheus 3 accepts for the text format (a suffix-less file goes out as octet-stream).
METRICS_PATH = "/metrics.txt"
VALUE_PATH = "/value.json"
VALUE_KEY = "value"
# Only the pod carrying this label backs the Service KEDA reads, so a replica the HPA adds
# (started at the low value) cannot answer for the value the check set.
SOURCE_LABEL = "aiconformance.io/metric-source"
# ... and the ReplicaSet keeps that pod when the HPA scales back down (it deletes the pod of
# lowest cost first): without it, half the time the source goes and KEDA's trigger has no
# endpoint left to read.
DELETION_COST = {"controller.kubernetes.io/pod-deletion-cost": "1000"}


def source_patch() -> dict[str, Any]:
    """The patch that makes a running replica the metric's source (label and deletion cost)."""
    return {"metadata": {"labels": {SOURCE_LABEL: "true"}, "annotations": dict(DELETION_COST)}}

TARGET = 5  # per-pod average the HPAs aim at
HIGH = 20  # 4x the target: the HPA wants more replicas than its maximum of 2
LOW = 1  # a fifth of the target: one replica is enough


class PathKind(StrEnum):
    KEDA = "KEDA"
    CUSTOM = "custom.metrics.k8s.io"
    EXTERNAL_OTHER = "external metrics, not KEDA"
    NONE = "none"


@dataclass(frozen=True)
class MetricsAPI:
    """One custom/external metrics group version: whether discovery lists it, and the
    APIService that registers it (when the run may read APIServices)."""

    group_version: str
    discovered: bool
    apiservice: str = ""
    backend: str = ""  # namespace/name of the Service behind it; "" when local or unseen
    available: str = ""  # the APIService's Available condition: "True", "False" or ""
    message: str = ""

    @property
    def usable(self) -> bool:
        return self.discovered and self.available != "False"

    def describe(self) -> str:
        by = f" (APIService {self.apiservice} -> Service {self.backend})" if self.backend \
            else (f" (APIService {self.apiservice})" if self.apiservice else "")
        if self.usable:
            return f"{self.group_version}{by}"
        if self.discovered:
            return (f"{self.group_version}{by} is registered but not Available: "
                    f"{self.message or 'no message'}")
        return f"{self.group_version}{by} is registered but not served by discovery"


def _apiservice_state(svc: Mapping[str, Any]) -> tuple[str, str, str]:
    """(backend Service as namespace/name or "", Available status, its message)."""
    backend = (svc.get("spec") or {}).get("service") or {}
    where = f"{backend.get('namespace', '')}/{backend.get('name', '')}" if backend else ""
    cond: Mapping[str, Any] = next(
        (c for c in (svc.get("status") or {}).get("conditions") or []
         if c.get("type") == "Available"), {})
    return where, str(cond.get("status", "")), str(cond.get("message", ""))


def metrics_apis(group_versions: Iterable[str],
                 apiservices: Sequence[Mapping[str, Any]]) -> list[MetricsAPI]:
    """The custom/external metrics group versions that discovery lists or an APIService
    registers, in preference order (custom v1beta2, v1beta1, external v1beta1)."""
    served = set(group_versions)
    by_gv: dict[str, Mapping[str, Any]] = {}
    for item in apiservices:
        spec = item.get("spec") or {}
        by_gv[f"{spec.get('group', '')}/{spec.get('version', '')}"] = item
    out = []
    for gv in (*CUSTOM_GVS, EXTERNAL_GV):
        svc = by_gv.get(gv)
        if svc is None:
            if gv in served:
                out.append(MetricsAPI(gv, True))
            continue
        out.append(MetricsAPI(gv, gv in served, str(svc["metadata"]["name"]),
                              *_apiservice_state(svc)))
    return out


@dataclass(frozen=True)
class ScalingPath:
    """How this cluster's HPA can be shown scaling on a custom metric, and why."""

    kind: PathKind
    api: MetricsAPI | None
    reason: str


ADAPTERS = ("prometheus-adapter (custom.metrics.k8s.io), KEDA (external.metrics.k8s.io) or a "
            "cloud provider's metrics adapter")


def _keda_backs(api: MetricsAPI) -> bool:
    """KEDA's metrics server is behind the external metrics API (unknown backend: assumed)."""
    return not api.backend or "keda" in api.backend.lower()


def choose_path(apis: Sequence[MetricsAPI], keda_served: bool) -> ScalingPath:
    """KEDA first (no monitoring stack needed), then a custom metrics adapter, then an
    external metrics adapter nothing generic can feed; none at all is the failure."""
    custom = next((a for a in apis if a.group_version in CUSTOM_GVS and a.usable), None)
    external = next((a for a in apis if a.group_version == EXTERNAL_GV and a.usable), None)
    if external is not None and keda_served and _keda_backs(external):
        return ScalingPath(PathKind.KEDA, external,
                           f"KEDA: {KEDA_GV} ScaledObject is served and {external.describe()} "
                           "serves external metrics")
    if custom is not None:
        return ScalingPath(PathKind.CUSTOM, custom,
                           f"custom metrics adapter: {custom.describe()}")
    if external is not None:
        keda = (f"KEDA's {KEDA_GV} ScaledObject is served but the external metrics API is "
                f"another adapter's" if keda_served else f"no KEDA ({KEDA_GV} ScaledObject is "
                                                         "not served)")
        return ScalingPath(PathKind.EXTERNAL_OTHER, external,
                           f"only external metrics are served ({external.describe()}; {keda}) "
                           "and no custom.metrics.k8s.io adapter: the check cannot feed a "
                           "metric of its own pods into that adapter, so scaling accelerator "
                           "pods on a custom metric cannot be observed generically")
    broken = [a.describe() for a in apis]
    detail = f" ({'; '.join(broken)})" if broken else ""
    return ScalingPath(PathKind.NONE, None,
                       "autoscaling/v2 HorizontalPodAutoscaler is served but cannot scale on "
                       f"custom metrics: neither {CUSTOM_GROUP} (v1beta2, v1beta1) nor "
                       f"{EXTERNAL_GV} is served"
                       f"{detail}; a metrics adapter provides them, e.g. {ADAPTERS}")


def discover(kube: Kube) -> tuple[list[str], list[dict[str, Any]], str]:
    """Served group versions, the metrics APIServices, and why APIServices are unknown ("" when
    they could be read)."""
    gvs = kube.group_versions()
    if not kube.serves(APISERVICE_GV, "APIService"):
        return gvs, [], f"{APISERVICE_GV} is not served"
    try:
        services = kube.items(APISERVICE_GV, "APIService")
    except ApiError as exc:
        return gvs, [], f"APIServices could not be read: {exc.message}"
    groups = (CUSTOM_GROUP, EXTERNAL_GROUP)
    return gvs, [s for s in services if (s.get("spec") or {}).get("group") in groups], ""


def apiservice_rows(apiservices: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """NAME, SERVICE, AVAILABLE, MESSAGE as `kubectl get apiservices` shows them."""
    rows = []
    for svc in sorted(apiservices, key=lambda s: str(s["metadata"]["name"])):
        backend, available, message = _apiservice_state(svc)
        rows.append([str(svc["metadata"]["name"]), backend or "Local", available or "-",
                     message or "-"])
    return rows


# --- the workload ----------------------------------------------------------------------------


def number(value: float) -> str:
    return f"{value:g}"


def exposition(metric: str, value: float) -> str:
    """The gauge in Prometheus text format."""
    return (f"# HELP {metric} Requests waiting in the inference queue (pytest-aiconformance)\n"
            f"# TYPE {metric} gauge\n{metric} {number(value)}\n")


def value_document(value: float) -> str:
    """The value as JSON, for KEDA's metrics-api trigger (valueLocation `value`)."""
    return json.dumps({VALUE_KEY: value})


# A file is replaced whole (written aside, then renamed), so a scrape never reads half of it.
_WRITE = 'w() { printf "%s" "$2" > "$1.tmp" && mv "$1.tmp" "$1"; }'
_FILES = f'w {WEB_ROOT}{METRICS_PATH} "$1"; w {WEB_ROOT}{VALUE_PATH} "$2"'


def serve_command(metric: str, value: float) -> list[str]:
    """Write both files at the starting value, then serve them in the foreground."""
    script = (f"set -e; mkdir -p {WEB_ROOT}; {_WRITE}; {_FILES}; "
              f"exec httpd -f -p {PORT} -h {WEB_ROOT}")
    return ["sh", "-c", script, "sh", exposition(metric, value), value_document(value)]


WRITTEN = "aic-value-written"


def write_value_command(metric: str, value: float) -> list[str]:
    """Rewrite both files in a running pod (kubectl exec) to move the metric; prints WRITTEN
    only when both were replaced (exec reports no exit status)."""
    script = f"set -e; {_WRITE}; {_FILES}; echo {WRITTEN}"
    return ["sh", "-c", script, "sh", exposition(metric, value), value_document(value)]


def exposer_deployment(name: str, namespace: str, alloc: allocations.Allocation, node: str, *,
                       image: str, metric: str = METRIC, value: float = LOW,
                       annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One replica pinned to `node`; every replica asks for one accelerator the chosen way and
    serves the metric (starting at `value`)."""
    ctr = workloads.container("server", serve_command(metric, value), image=image)
    ctr["ports"] = [{"containerPort": PORT, "name": "http"}]
    ctr["readinessProbe"] = {"httpGet": {"path": VALUE_PATH, "port": PORT},
                             "periodSeconds": 2}
    pod = allocations.accelerator_pod(name, namespace, alloc, ctr, restart_policy="Always",
                                  node_selector={"kubernetes.io/hostname": node},
                                  labels={"app": name}, annotations=dict(annotations or {}))
    return workloads.deployment(pod)


def scrape_annotations() -> dict[str, str]:
    """The prometheus.io annotations a Prometheus without the operator's CRDs may follow."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT),
            "prometheus.io/path": METRICS_PATH}


def exposer_service(name: str, namespace: str, selector: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {"selector": dict(selector),
                     "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]}}


def service_url(name: str, namespace: str) -> str:
    """The Service's in-cluster DNS URL of the value (shown in evidence: what the ClusterIP
    URL KEDA reads stands for)."""
    return f"http://{name}.{namespace}.svc:{PORT}{VALUE_PATH}"


def value_url(cluster_ip: str) -> str:
    """The URL KEDA's metrics-api trigger reads: the Service's ClusterIP, the address its DNS
    name resolves to. An address works wherever KEDA's operator runs (a pod, or a host
    process of a cluster without DNS for it); the name needs cluster DNS there."""
    host = f"[{cluster_ip}]" if ":" in cluster_ip else cluster_ip
    return f"http://{host}:{PORT}{VALUE_PATH}"


def scrape_object(plan: MonitorPlan, name: str, namespace: str,
                  selector: Mapping[str, str]) -> dict[str, Any]:
    """The collector's scrape object (monitoring.service_monitor) for the gauge's path."""
    return service_monitor(name, plan, namespace, selector, "http", [], path=METRICS_PATH)


def fast_behavior() -> dict[str, Any]:
    """HPA behaviour that acts on the next sync (no stabilisation, up to double or half per
    5 s), so a scaling decision shows within seconds of the metric moving."""
    rule = {"stabilizationWindowSeconds": 0,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}]}
    return {"scaleUp": rule, "scaleDown": copy.deepcopy(rule)}


def scaled_object(name: str, namespace: str, deployment: str, url: str, *, hpa_name: str,
                  max_replicas: int = 2, target: float = TARGET) -> dict[str, Any]:
    """A KEDA ScaledObject scaling `deployment` on the JSON value at `url` (metrics-api)."""
    return {
        "apiVersion": KEDA_GV, "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": deployment},
            "pollingInterval": 5,
            "minReplicaCount": 1, "maxReplicaCount": max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"name": hpa_name,
                                                           "behavior": fast_behavior()}},
            "triggers": [{"type": "metrics-api", "metricType": "AverageValue",
                          "metadata": {"url": url, "format": "json",
                                       "valueLocation": VALUE_KEY,
                                       "targetValue": number(target)}}],
        },
    }


def pods_metric_hpa(name: str, namespace: str, deployment: str, metric: str = METRIC, *,
                    max_replicas: int = 2, target: float = TARGET) -> dict[str, Any]:
    """An autoscaling/v2 HPA of type Pods: the average of the pods' `metric` against
    `target`."""
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": deployment},
            "minReplicas": 1, "maxReplicas": max_replicas,
            "metrics": [{"type": "Pods", "pods": {
                "metric": {"name": metric},
                "target": {"type": "AverageValue", "averageValue": number(target)}}}],
            "behavior": fast_behavior(),
        },
    }


# --- reading answers back --------------------------------------------------------------------


def quantity(text: Any) -> float:
    """A Kubernetes quantity ("500m", "20", "1k") as a number; ValueError when it is none."""
    try:
        return float(parse_quantity(str(text)))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"not a quantity: {text!r}") from exc


def pod_metric_values(body: Any) -> dict[str, float]:
    """Per pod the value of a custom.metrics MetricValueList (`.../pods/*/<metric>`)."""
    if not isinstance(body, Mapping):
        raise ValueError(f"not a MetricValueList: {str(body)[:200]!r}")
    out: dict[str, float] = {}
    for item in body.get("items") or []:
        described = item.get("describedObject") or {}
        if described.get("kind", "Pod") != "Pod" or not described.get("name"):
            continue
        out[str(described["name"])] = quantity(item.get("value"))
    return out


def hpa_replicas(hpa: Mapping[str, Any]) -> tuple[int, int]:
    """(currentReplicas, desiredReplicas) of an HPA's status (0 when not yet set)."""
    status = hpa.get("status") or {}
    return int(status.get("currentReplicas") or 0), int(status.get("desiredReplicas") or 0)


def hpa_targets(hpa: Mapping[str, Any]) -> str:
    """The TARGETS column of `kubectl get hpa`: current/target per Pods or External metric."""
    spec_metrics = (hpa.get("spec") or {}).get("metrics") or []
    current = (hpa.get("status") or {}).get("currentMetrics") or []
    parts = []
    for i, metric in enumerate(spec_metrics):
        kind = str(metric.get("type", ""))
        source = metric.get(kind[:1].lower() + kind[1:]) or {}
        target = source.get("target") or {}
        want = target.get("averageValue") or target.get("value") or "?"
        now = "<unknown>"
        if i < len(current) and current[i].get("type") == kind:
            got = (current[i].get(kind[:1].lower() + kind[1:]) or {}).get("current") or {}
            now = str(got.get("averageValue") or got.get("value") or "<unknown>")
        name = (source.get("metric") or {}).get("name", kind)
        parts.append(f"{name}: {now}/{want}")
    return ", ".join(parts) or "<none>"


def hpa_row(hpa: Mapping[str, Any]) -> list[Any]:
    """NAME, TARGETS, MINPODS, MAXPODS, REPLICAS, DESIRED."""
    spec = hpa.get("spec") or {}
    current, desired = hpa_replicas(hpa)
    return [hpa["metadata"]["name"], hpa_targets(hpa), spec.get("minReplicas", 1),
            spec.get("maxReplicas"), current, desired]


HPA_COLUMNS = ["NAME", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "DESIRED"]


# --- scaling on CPU ----------------------------------------------------------------------------

USAGE_ANNOTATION = "kwok.x-k8s.io/usage-cpu"  # a simulated pod's CPU usage
BURN = ("trap 'exit 0' TERM; while [ ! -e /tmp/stop ]; do :; done; "
        "while :; do sleep 1; done")
CPU_TARGET = 50  # the HPA's averageUtilization target, in percent


def fewest_free(free: Mapping[str, int]) -> tuple[str, int]:
    """The node with the fewest (at least one) free accelerators, ties by name: the fewer
    replicas fit, the sooner one must stay Pending."""
    return min(((n, f) for n, f in free.items() if f > 0), key=lambda kv: (kv[1], kv[0]))


def cpu_hpa(name: str, namespace: str, max_replicas: int) -> dict[str, Any]:
    """An autoscaling/v2 HPA on CPU utilisation of the Deployment of the same name."""
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1, "maxReplicas": max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": CPU_TARGET}}}],
            "behavior": fast_behavior(),
        },
    }


def burn_deployment(name: str, namespace: str, alloc: allocations.Allocation, node: str,
                    load: bool, image: str) -> dict[str, Any]:
    """Replicas pinned to `node`, each asking for one accelerator (its own claim under DRA),
    burning CPU (real nodes) or reporting high usage (simulated nodes) while `load`."""
    ctr = workloads.container("server", ["sh", "-c", BURN], image=image,
                              resources_={"requests": {"cpu": "100m"},
                                          "limits": {"cpu": "200m"}})
    pod = allocations.accelerator_pod(name, namespace, alloc, ctr, restart_policy="Always",
                                      node_selector={"kubernetes.io/hostname": node},
                                      annotations={USAGE_ANNOTATION: "190m" if load else "1m"},
                                      labels={"app": name})
    return workloads.deployment(pod)


def idle_patch() -> dict[str, Any]:
    """The usage annotation of an idle simulated pod (the load stopped)."""
    return {"metadata": {"annotations": {USAGE_ANNOTATION: "1m"}}}


def cpu_hpa_row(hpa: Mapping[str, Any]) -> list[Any]:
    """NAME, TARGETS (cpu: current%/target%), MINPODS, MAXPODS, REPLICAS, DESIRED."""
    status = hpa.get("status", {})
    cur = next((m["resource"]["current"].get("averageUtilization") for m in
                status.get("currentMetrics", []) or [] if m.get("type") == "Resource"), None)
    return [hpa["metadata"]["name"],
            f"cpu: {cur if cur is not None else '<unknown>'}%/{CPU_TARGET}%",
            hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"],
            status.get("currentReplicas", 0), status.get("desiredReplicas", 0)]


def capacity_enforced(pods: Mapping[str, Mapping[str, Any]], units: int, refusal: str) -> bool:
    """Scaled up to the node's capacity: `units` replicas bound (not being deleted) and one
    more Pending with the scheduler's refusal for the accelerator in its status."""
    bound = [o for o in pods.values() if o["spec"].get("nodeName")
             and not o["metadata"].get("deletionTimestamp")]
    pending = [o for o in pods.values() if not o["spec"].get("nodeName")
               and refusal in str(o.get("status", {}))]
    return len(bound) == units and len(pending) == 1


def back_to_one(hpas: Mapping[str, Mapping[str, Any]]) -> bool:
    """The (one) HPA has scaled back to one replica, current and desired."""
    status = next(iter(hpas.values()), {}).get("status", {})
    return bool(status.get("currentReplicas") == 1 and status.get("desiredReplicas") == 1)


# --- scaling on a custom metric: the replicas and the node ----------------------------------------


def pod_ready(pod: dict[str, Any]) -> bool:
    """A replica that serves the metric: Running, not being deleted, Ready."""
    return (pod.get("status", {}).get("phase") == "Running"
            and not pod["metadata"].get("deletionTimestamp") and condition_true(pod, "Ready"))


def container_node(free: Mapping[str, int], simulated: Mapping[str, bool]) -> tuple[str, int]:
    """Among the nodes with a free accelerator (`simulated` has exactly those), one that runs
    containers, with the most free accelerators (the second replica may then run too); ties by
    name. A simulated node only when there is no other."""
    return min(((n, free[n]) for n in simulated),
               key=lambda kv: (simulated[kv[0]], -kv[1], kv[0]))


def hpa_state(hpas: Mapping[str, Mapping[str, Any]]) -> str:
    """The HPAs' targets and replicas in one line, for a wait that runs out."""
    return "; ".join(f"{tables.name(dict(o))}: {hpa_targets(o)}, replicas "
                     f"{hpa_replicas(o)[0]}, desired {hpa_replicas(o)[1]}"
                     for o in hpas.values()) or "no HPA"


def at_replicas(replicas: int) -> Callable[[Mapping[str, Mapping[str, Any]]], bool]:
    """A watch condition: the HPA is at `replicas`, current and desired."""
    return lambda hpas: any(hpa_replicas(o) == (replicas, replicas) for o in hpas.values())


def conditions_line(objs: Mapping[str, Mapping[str, Any]]) -> str:
    """Every status condition of the objects in one line, for a wait that runs out (KEDA's
    ScaledObject says there why it is not Ready)."""
    return "; ".join(f"{c.get('type')}={c.get('status')} {c.get('reason', '')}: "
                     f"{c.get('message', '')}" for o in objs.values()
                     for c in o.get("status", {}).get("conditions") or []) or "no status"


def external_metric(hpa: Mapping[str, Any]) -> str:
    """The name of the first External metric an HPA scales on ("" when none): the one KEDA's
    metrics server serves for a ScaledObject."""
    return str(next((m["external"]["metric"]["name"] for m in hpa["spec"].get("metrics", [])
                     if m.get("type") == "External"), ""))
