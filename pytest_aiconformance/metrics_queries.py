"""Decisions of the metrics checks, kept pure: selectors, counters, device metrics, utilisation.

- ServiceMonitor discovery: labels that satisfy the Prometheus CR's own selectors (the
  prometheus-operator rule: a null selector matches nothing, an empty one matches all; a null
  namespace selector means "the Prometheus object's own namespace only").
- The exactly-N check: the collected counter of this run's series equals N, no more, no less.
- Accelerator metrics: utilisation and memory per device with a device label; the SHOULD
  quantities as evidence lines; utilisation moving between a sample before and during load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_aiconformance.accelerators import MetricNames
from pytest_aiconformance.parsers import Exposition, QueryResult, Sample

T = TypeVar("T")


class UnsatisfiableSelector(ValueError):
    """No label set can satisfy the selector (e.g. In with no values)."""


def labels_satisfying(selector: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Labels that make an object match a LabelSelector; None when the selector is null.

    matchLabels are copied; ``In`` takes its first value; ``Exists`` gets the value
    ``aiconformance``; ``NotIn`` / ``DoesNotExist`` add nothing (our objects carry no such
    label unless an earlier rule set it, which is then an unsatisfiable selector).
    """
    if selector is None:
        return None
    labels = {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}
    forbidden: dict[str, set[str] | None] = {}
    for expr in selector.get("matchExpressions") or []:
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        if op == "In":
            if not values:
                raise UnsatisfiableSelector(f"{key} In () matches nothing")
            if key in labels and labels[key] not in values:
                raise UnsatisfiableSelector(f"{key}={labels[key]} contradicts {key} In {values}")
            labels.setdefault(key, values[0])
        elif op == "Exists":
            labels.setdefault(key, "aiconformance")
        elif op == "NotIn":
            forbidden[key] = set(values)
        elif op == "DoesNotExist":
            forbidden[key] = None
        else:
            raise UnsatisfiableSelector(f"unknown selector operator {op!r}")
    for key, bad in forbidden.items():
        if key in labels and (bad is None or labels[key] in bad):
            raise UnsatisfiableSelector(f"label {key}={labels[key]} is excluded by the selector")
    return labels


@dataclass(frozen=True)
class MonitorPlan:
    """Where and how to create a ServiceMonitor so that a given Prometheus picks it up."""

    prometheus: str  # namespace/name
    monitor_namespace: str
    monitor_labels: dict[str, str]
    namespace_labels: dict[str, str]  # labels our workload namespace must carry
    explanation: str


def plan_service_monitor(prometheus: Mapping[str, Any], workload_namespace: str) -> MonitorPlan:
    """Read a Prometheus CR's serviceMonitorSelector / serviceMonitorNamespaceSelector.

    Raises UnsatisfiableSelector when this Prometheus selects no ServiceMonitor at all.
    """
    meta = prometheus.get("metadata", {})
    spec = prometheus.get("spec", {}) or {}
    prom_ns = str(meta.get("namespace", ""))
    ident = f"{prom_ns}/{meta.get('name', '')}"
    if "serviceMonitorSelector" not in spec or spec.get("serviceMonitorSelector") is None:
        raise UnsatisfiableSelector(
            f"Prometheus {ident} has no serviceMonitorSelector: it selects no ServiceMonitor")
    labels = labels_satisfying(spec["serviceMonitorSelector"]) or {}
    ns_selector = spec.get("serviceMonitorNamespaceSelector")
    if ns_selector is None:
        return MonitorPlan(ident, prom_ns, labels, {},
                           f"serviceMonitorNamespaceSelector is null (own namespace only): the "
                           f"ServiceMonitor goes into {prom_ns} and selects namespace "
                           f"{workload_namespace}; labels {labels or '{}'} from "
                           "serviceMonitorSelector")
    ns_labels = labels_satisfying(ns_selector) or {}
    return MonitorPlan(ident, workload_namespace, labels, ns_labels,
                       f"ServiceMonitor labels {labels or '{}'} from serviceMonitorSelector; "
                       f"namespace labels {ns_labels or '{}'} from "
                       "serviceMonitorNamespaceSelector")


def service_monitor(name: str, plan: MonitorPlan, workload_namespace: str,
                    selector: Mapping[str, str], port: str, target_labels: Sequence[str],
                    interval: str = "5s") -> dict[str, Any]:
    """A monitoring.coreos.com/v1 ServiceMonitor following a plan."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": plan.monitor_namespace,
                     "labels": dict(plan.monitor_labels)},
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "namespaceSelector": {"matchNames": [workload_namespace]},
            "targetLabels": list(target_labels),
            "endpoints": [{"port": port, "path": "/metrics", "interval": interval}],
        },
    }


def prometheus_label_name(label: str) -> str:
    """How a Kubernetes label name appears as a Prometheus label (targetLabels sanitising)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in label)


@dataclass(frozen=True)
class CounterCheck:
    ok: bool
    value: float | None
    reason: str
    final: bool  # True when waiting longer cannot change the verdict (value above N)


def counter_matches(result: QueryResult, run_label: str, run_id: str, n: int) -> CounterCheck:
    """The run's counter series, summed, equals exactly ``n``.

    Only series carrying ``run_label=run_id`` count. No series yet: not ok (keep waiting).
    A value above ``n`` is final: something counted requests this run never sent.
    """
    mine = [s for s in result.series if s.metric.get(run_label) == run_id]
    if not mine:
        others = len(result.series)
        return CounterCheck(False, None, f"no series with {run_label}={run_id!r} "
                                         f"({others} other series)", False)
    value = sum(s.value for s in mine)
    if value == n:
        return CounterCheck(True, value, f"collected counter = {value:g} = {n} requests sent",
                            True)
    if value > n:
        return CounterCheck(False, value, f"collected counter = {value:g}, more than the "
                                          f"{n} requests sent", True)
    return CounterCheck(False, value, f"collected counter = {value:g}, fewer than the {n} "
                                      "requests sent (not yet scraped?)", False)


def poll(fetch: Callable[[], T], done: Callable[[T], bool], *, timeout: float,
         interval: float, clock: Callable[[], float] = time.monotonic,
         pause: Callable[[float], None] = time.sleep) -> tuple[T, bool]:
    """Call ``fetch`` until ``done`` holds or the deadline passes; (last value, satisfied).

    For HTTP APIs that offer no watch (Prometheus, exporters); Kubernetes objects are waited
    on with watches instead (waiting.watch_until).
    """
    deadline = clock() + timeout
    while True:
        value = fetch()
        if done(value):
            return value, True
        left = deadline - clock()
        if left <= 0:
            return value, False
        pause(min(interval, left))


# --- accelerator metrics -------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceMetric:
    """One quantity of the profile table, as found (or not) on a metrics page."""

    quantity: str
    names: tuple[str, ...]
    found: str | None  # the metric name found
    samples: tuple[Sample, ...]
    device_label: str | None  # the device label every sample carries, if any

    def line(self, devices_key: Callable[[Sample], str]) -> str:
        if self.found is None:
            return f"{self.quantity}: not exported (looked for {', '.join(self.names) or '-'})"
        vals = ", ".join(f"{devices_key(s)}={s.value:g}" for s in self.samples[:8])
        more = f" (+{len(self.samples) - 8} more)" if len(self.samples) > 8 else ""
        return f"{self.quantity}: {self.found} {vals}{more}"


MUST_QUANTITIES = ("utilization", "memory_used")
SHOULD_QUANTITIES = ("memory_free", "memory_total", "temperature", "power", "interconnect")


def find_quantity(expo: Exposition, quantity: str, names: Iterable[str],
                  device_labels: Sequence[str]) -> DeviceMetric:
    """The first profile name with samples; the device label all its samples carry."""
    names = tuple(names)
    for name in names:
        samples = expo.find(name)
        if samples:
            label = next((lbl for lbl in device_labels
                          if all(s.labels.get(lbl) for s in samples)), None)
            return DeviceMetric(quantity, names, name, samples, label)
    return DeviceMetric(quantity, names, None, (), None)


@dataclass(frozen=True)
class DeviceMetricsReport:
    ok: bool
    reason: str
    quantities: dict[str, DeviceMetric]
    devices: tuple[str, ...]

    def lines(self, device_labels: Sequence[str]) -> list[str]:
        def key(s: Sample) -> str:
            for lbl in device_labels:
                if s.labels.get(lbl):
                    return f"{lbl}={s.labels[lbl]}"
            return "?"
        return [q.line(key) for q in self.quantities.values()]


def check_device_metrics(expo: Exposition, metrics: MetricNames) -> DeviceMetricsReport:
    """Utilisation and memory-used metrics exist per device and carry a device label."""
    found = {q: find_quantity(expo, q, getattr(metrics, q), metrics.device_labels)
             for q in MUST_QUANTITIES + SHOULD_QUANTITIES}
    problems = []
    for q in MUST_QUANTITIES:
        dm = found[q]
        if dm.found is None:
            problems.append(f"no {q} metric ({', '.join(dm.names)})")
        elif dm.device_label is None:
            problems.append(f"{dm.found} samples lack a device label "
                            f"({', '.join(metrics.device_labels)})")
    util = found["utilization"]
    devices: tuple[str, ...] = ()
    if util.found and util.device_label:
        devices = tuple(sorted({s.labels[util.device_label] for s in util.samples}))
    if problems:
        return DeviceMetricsReport(False, "; ".join(problems), found, devices)
    return DeviceMetricsReport(
        True, f"{len(devices)} device(s) export {found['utilization'].found} and "
              f"{found['memory_used'].found} labelled by {util.device_label}", found, devices)


def utilisation_by_device(expo: Exposition, metrics: MetricNames) -> dict[str, float]:
    """Utilisation per device (first profile name that has samples, first device label)."""
    dm = find_quantity(expo, "utilization", metrics.utilization, metrics.device_labels)
    if dm.found is None or dm.device_label is None:
        return {}
    out: dict[str, float] = {}
    for s in dm.samples:
        dev = s.labels[dm.device_label]
        out[dev] = max(out.get(dev, 0.0), s.value)
    return out


def utilisation_moved(before: Mapping[str, float], during: Mapping[str, float],
                      min_delta: float = 1.0) -> tuple[bool, str]:
    """Some device's utilisation rose by at least ``min_delta`` while the load ran.

    Devices are matched by their label; a device missing from either sample cannot count.
    """
    common = sorted(set(before) & set(during))
    if not common:
        return False, (f"no device in both samples (before: {sorted(before)}, "
                       f"during: {sorted(during)})")
    moved = [d for d in common if during[d] - before[d] >= min_delta]
    desc = "; ".join(f"{d}: {before[d]:g} -> {during[d]:g}" for d in common)
    if moved:
        return True, f"utilisation rose under load: {desc}"
    return False, f"utilisation did not rise by {min_delta:g} under load: {desc}"
