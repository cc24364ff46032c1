"""accelerator_metrics: the decisions of its checks (checks/test_accelerator_metrics.py), as
pure functions over what the exporter and the platform's Prometheus answered.

- Which exporter: the Service whose name contains the profile's exporter name (and selects
  pods), its Running pods on accelerator nodes, the port its page is read on.
- The page: utilisation and memory-used metrics per device with a device label (per device
  the first profile name with a sample: MIG instances export only the profiling ratio); the
  SHOULD quantities as evidence lines.
- Under load: utilisation, in percent, moving between a sample before and during a bounded
  load (`load_pod`) that requests one accelerator.
- Collected: the platform's Prometheus holds device-labelled utilisation series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_aiconformance.cluster import allocations, tables, workloads
from pytest_aiconformance.cluster.profiles import MetricNames
from pytest_aiconformance.parsers import Exposition, QueryResult, Sample

Obj = dict[str, Any]


# --- the exporter ---------------------------------------------------------------------------


def exporter_service(services: Iterable[Obj], exporter: str) -> Obj | None:
    """The exporter's Service: the first, by namespace and name, whose name contains the
    profile's exporter name and which selects pods (None when there is none)."""
    found = [s for s in services if exporter in tables.name(s) and s["spec"].get("selector")]
    return min(found, key=lambda s: (s["metadata"]["namespace"], tables.name(s)), default=None)


def pod_selector(service: Obj) -> str:
    """The Service's selector as a label selector, to list the exporter's pods."""
    return ",".join(f"{k}={v}" for k, v in sorted(service["spec"]["selector"].items()))


def metrics_port(service: Obj) -> int | str:
    """The port the exporter's pods serve their page on (the Service's first target port)."""
    port = service["spec"]["ports"][0]
    target: int | str = port.get("targetPort") or port["port"]
    return target


def running_on(pods: Iterable[Obj], nodes: Iterable[str]) -> list[Obj]:
    """The exporter pods Running on these (accelerator) nodes, by node name."""
    wanted = set(nodes)
    running = [p for p in pods if p.get("status", {}).get("phase") == "Running"
               and p["spec"].get("nodeName") in wanted]
    return sorted(running, key=lambda p: str(p["spec"]["nodeName"]))


def proxy_path(pod: Obj, port: int | str) -> str:
    """The API server's pod-proxy path of the exporter pod's metrics page."""
    return (f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{tables.name(pod)}:{port}"
            "/proxy/metrics")


# --- the page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceMetric:
    """One quantity of the profile table, as found (or not) on a metrics page."""

    quantity: str
    names: tuple[str, ...]
    found: str | None  # the metric name(s) found, comma-separated when devices differ
    samples: tuple[Sample, ...]
    device_label: str | None  # the device label every sample carries, if any

    def line(self, devices_key: Callable[[Sample], str]) -> str:
        """One evidence line: the names found and up to 8 device values, or what was looked
        for."""
        if self.found is None:
            return f"{self.quantity}: not exported (looked for {', '.join(self.names) or '-'})"
        vals = ", ".join(f"{devices_key(s)}={s.value:g}" for s in self.samples[:8])
        more = f" (+{len(self.samples) - 8} more)" if len(self.samples) > 8 else ""
        return f"{self.quantity}: {self.found} {vals}{more}"


MUST_QUANTITIES = ("utilization", "memory_used")
SHOULD_QUANTITIES = ("memory_free", "memory_total", "temperature", "power", "interconnect")


def device_key(sample: Sample, device_label: str, instance_label: str | None = None) -> str:
    """The device a sample is about: its device label's value, plus the partition (a MIG GPU
    instance) when the sample names one, since each partition is its own device."""
    key = sample.labels[device_label]
    instance = sample.labels.get(instance_label) if instance_label else None
    return f"{key}/{instance_label}={instance}" if instance else key


def _per_device(expo: Exposition, names: Sequence[str], device_labels: Sequence[str],
                instance_label: str | None
                ) -> tuple[str | None, dict[str, tuple[str, tuple[Sample, ...]]]]:
    """The device label every sample of the first name found carries, and per device the
    first name (in profile order) with samples for it: (label, {device: (name, samples)}).
    Later names add the devices the earlier ones lack (samples without the label count for
    none)."""
    found = [(name, expo.find(name)) for name in names]
    found = [(name, samples) for name, samples in found if samples]
    chosen: dict[str, tuple[str, tuple[Sample, ...]]] = {}
    if not found:
        return None, chosen
    label = next((lbl for lbl in device_labels
                  if all(s.labels.get(lbl) for s in found[0][1])), None)
    if label is None:
        return None, chosen
    for name, samples in found:
        groups: dict[str, list[Sample]] = {}
        for s in samples:
            if s.labels.get(label):
                groups.setdefault(device_key(s, label, instance_label), []).append(s)
        for key, group in groups.items():
            chosen.setdefault(key, (name, tuple(group)))
    return label, chosen


def find_quantity(expo: Exposition, quantity: str, names: Iterable[str],
                  device_labels: Sequence[str], instance_label: str | None = None
                  ) -> DeviceMetric:
    """Per device the first profile name with samples; the device label all samples carry.

    Without a common device label the first name with samples is reported as found, with no
    device label (the check then says the samples lack one).
    """
    names = tuple(names)
    label, chosen = _per_device(expo, names, device_labels, instance_label)
    if label is None:
        for name in names:
            samples = expo.find(name)
            if samples:
                return DeviceMetric(quantity, names, name, samples, None)
        return DeviceMetric(quantity, names, None, (), None)
    used = [n for n in names if any(name == n for name, _ in chosen.values())]
    samples = tuple(s for n in used for name, group in chosen.values() if name == n
                    for s in group)
    return DeviceMetric(quantity, names, ", ".join(used), samples, label)


@dataclass(frozen=True)
class DeviceMetricsReport:
    """The page's verdict (the MUST quantities per device, with a device label), every
    quantity as found, and the devices utilisation names."""

    ok: bool
    reason: str
    quantities: dict[str, DeviceMetric]
    devices: tuple[str, ...]

    def lines(self, device_labels: Sequence[str]) -> list[str]:
        """One evidence line per quantity, each value keyed by the first device label set."""
        def key(s: Sample) -> str:
            for lbl in device_labels:
                if s.labels.get(lbl):
                    return f"{lbl}={s.labels[lbl]}"
            return "?"
        return [q.line(key) for q in self.quantities.values()]


def check_device_metrics(expo: Exposition, metrics: MetricNames) -> DeviceMetricsReport:
    """Utilisation and memory-used metrics exist per device and carry a device label."""
    found = {q: find_quantity(expo, q, getattr(metrics, q), metrics.device_labels,
                              metrics.instance_label)
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
        devices = tuple(sorted({device_key(s, util.device_label, metrics.instance_label)
                                for s in util.samples}))
    if problems:
        return DeviceMetricsReport(False, "; ".join(problems), found, devices)
    return DeviceMetricsReport(
        True, f"{len(devices)} device(s) export {found['utilization'].found} and "
              f"{found['memory_used'].found} labelled by {util.device_label}", found, devices)


def utilisation_by_device(expo: Exposition, metrics: MetricNames) -> dict[str, float]:
    """Utilisation in percent per device (per device the first profile name with a sample;
    ratio metrics are scaled to percent, so GPU_UTIL and GR_ENGINE_ACTIVE compare alike)."""
    _label, chosen = _per_device(expo, metrics.utilization, metrics.device_labels,
                                 metrics.instance_label)
    out: dict[str, float] = {}
    for dev, (name, samples) in chosen.items():
        scale = 100.0 if name in metrics.ratio_metrics else 1.0
        out[dev] = max(s.value for s in samples) * scale
    return out


def collected_utilisation(result: QueryResult, metrics: MetricNames) -> tuple[bool, str]:
    """The platform's Prometheus holds utilisation series of the profile's names, each with a
    device label (the exporter's pages were scraped and collected)."""
    names = set(metrics.utilization)
    series = [s for s in result.series if s.metric.get("__name__") in names]
    if not series:
        return False, (f"no series of {', '.join(metrics.utilization)} in the platform's "
                       f"Prometheus ({len(result.series)} other series)")
    labelled = [s for s in series if any(s.metric.get(lbl) for lbl in metrics.device_labels)]
    if not labelled:
        return False, (f"{len(series)} utilisation series without a device label "
                       f"({', '.join(metrics.device_labels)})")
    hosts = sorted({str(s.metric.get(metrics.host_label or "", "")) for s in labelled} - {""})
    where = f" from {', '.join(hosts[:8])}" if hosts else ""
    found = sorted({str(s.metric.get("__name__")) for s in labelled})
    return True, (f"{len(labelled)} utilisation series ({', '.join(found)}) with a device "
                  f"label collected{where}")


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


def profile_names(metrics: MetricNames) -> list[str]:
    """Every metric name the profile gives, MUST quantities first, in profile order."""
    return [n for q in MUST_QUANTITIES + SHOULD_QUANTITIES for n in getattr(metrics, q)]


def page_excerpt(text: str, wanted: Sequence[str], limit: int = 12) -> list[str]:
    """The page's sample lines of the wanted metric names (evidence), at most ``limit``."""
    return [line for line in text.splitlines()
            if line.split("{", 1)[0].split(" ", 1)[0] in wanted][:limit]


def device_lines(utilisation: Mapping[str, float]) -> str:
    """Utilisation per device, one line each, for evidence ("(none)" when empty)."""
    return "\n".join(f"{d}: {v:g}" for d, v in sorted(utilisation.items())) or "(none)"


def load_pod(namespace: str, alloc: allocations.Allocation, seconds: int,
             runtime_class: str | None, image: str, command: str) -> Obj:
    """A bounded load (the profile's command, e.g. CUDA nbody, repeated for ``seconds``)."""
    ctr = workloads.container(
        "load", ["sh", "-c", f"end=$(( $(date +%s) + {seconds} )); while [ $(date +%s) -lt "
                             f"$end ]; do {command} 2>&1 | tail -1; done"],
        image=image, **allocations.accelerator_request(alloc))
    return workloads.pod("gpu-load", namespace, [ctr], claim_templates=(
        {"accel": "one-device"} if alloc.mode == "dra" else None), runtime_class=runtime_class)


def utilisation_query(metrics: MetricNames) -> str:
    """The PromQL that selects every utilisation series of the profile's names."""
    return '{__name__=~"' + "|".join(metrics.utilization) + '"}'


def series_rows(result: QueryResult, metrics: MetricNames, limit: int = 12) -> list[list[str]]:
    """Name, host, device and instance labels and value of the first series, for evidence."""
    labels = [metrics.host_label, *metrics.device_labels, metrics.instance_label]
    return [[str(s.metric.get("__name__"))]
            + [str(s.metric.get(lbl, "")) for lbl in labels if lbl] + [f"{s.value:g}"]
            for s in result.series[:limit]]
