"""accelerator_metrics: per-accelerator metrics through a standard, machine-readable endpoint.

The exporter named by the accelerator profile (dcgm-exporter, AMD device-metrics-exporter,
Intel XPU Manager) is found by its Service and scraped through the API server's pod proxy;
the page must parse as Prometheus exposition text. Essential: utilisation and memory-used
metrics exist per device and carry a device label (UUID / gpu / card id); per device the
first of the profile's names with a sample counts (MIG instances export only
DCGM_FI_PROF_GR_ENGINE_ACTIVE, a ratio compared in percent); temperature, power, memory totals
and interconnect are SHOULD quantities, written as evidence lines. Essential (real
accelerators): utilisation of the device on the loaded node rises between a sample before and
a sample during a short load that requests one accelerator; where the profile pins no load
(accelerators.yaml `load`), that check is supporting on the run and skips (unknown hardware).
Supporting: the platform's Prometheus (--aic-prometheus, else the one the Prometheus or
VictoriaMetrics operator runs) holds the exporter's per-device utilisation series; a cloud's
managed Prometheus (GMP, Azure Monitor) is asked only at the query API --aic-prometheus names.
Unknown accelerator -> unknown hardware. No exporter -> failure (a MUST). Simulated nodes run
no exporter and no load -> not observable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    AcceleratorProfile,
    ClusterInfo,
    EvidenceRecorder,
    Kube,
    MetricNames,
    ParseError,
    RunContext,
    Settings,
    Target,
    accelerator_metrics,
    allocations,
    failed_pod,
    get_table,
    make_supporting,
    monitoring,
    name,
    not_observable,
    parse_exposition,
    simulation,
    unknown_hardware,
    watch_until,
    workloads,
)

pytestmark = pytest.mark.needs_containers


REQ = "accelerator_metrics"
AM = accelerator_metrics
LOAD_SECONDS = 90
Obj = dict[str, Any]


def metric_names(profile: AcceleratorProfile) -> tuple[AcceleratorProfile, MetricNames]:
    """The profile's exporter metric names; a profile that names none is unknown hardware."""
    if profile.metrics is None:
        unknown_hardware(f"profile {profile.name} names no metrics exporter")
    return profile, profile.metrics


def accelerator_nodes(cluster_info: ClusterInfo) -> list[str]:
    nodes = [n.name for n in cluster_info.accelerator_nodes]
    assert nodes, "no node advertises an accelerator, so no accelerator metric can exist"
    return nodes


def find_exporter(kube: Kube, exporter: str) -> tuple[Obj, list[Obj]]:
    """The exporter's Service (name contains the profile's exporter name) and its pods."""
    svc = AM.exporter_service(kube.items("v1", "Service"), exporter)
    if svc is None:
        raise AssertionError(f"no {exporter} Service found in any namespace: the accelerator "
                             "metrics exporter is not installed")
    pods = kube.items("v1", "Pod", svc["metadata"]["namespace"],
                      label_selector=AM.pod_selector(svc))
    return svc, pods


def scrape(kube: Kube, pod: Obj, port: int | str) -> str:
    text = kube.request("GET", AM.proxy_path(pod, port))
    return text if isinstance(text, str) else str(text)


def _exporter_on(kube: Kube, cluster_info: ClusterInfo, aic_settings: Settings
                 ) -> tuple[AcceleratorProfile, MetricNames, Obj, list[Obj]]:
    profile, names = metric_names(aic_settings.profile)
    nodes = accelerator_nodes(cluster_info)
    # Simulated devices have no utilisation or memory for any exporter to read.
    simulation.require_running_containers(kube, nodes)
    svc, pods = find_exporter(kube, names.exporter)
    running = AM.running_on(pods, nodes)
    assert running, (f"{names.exporter} Service {svc['metadata']['namespace']}/{name(svc)} has "
                     f"no Running pod on an accelerator node ({', '.join(nodes)})")
    return profile, names, svc, running


@pytest.mark.requirement(REQ)
def test_device_metrics_exported(kube: Kube, cluster_info: ClusterInfo, aic_settings: Settings,
                                 evidence: EvidenceRecorder) -> None:
    """Utilisation and memory metrics per device, with a device label, from the exporter."""
    _profile, names, svc, pods = _exporter_on(kube, cluster_info, aic_settings)
    pod = pods[0]
    port = AM.metrics_port(svc)
    text = scrape(kube, pod, port)
    try:
        expo = parse_exposition(text)
    except ParseError as exc:
        raise AssertionError(f"{names.exporter} /metrics is not valid exposition text: "
                             f"{exc}") from None
    report = AM.check_device_metrics(expo, names)
    wanted = AM.profile_names(names)
    excerpt = AM.page_excerpt(text, wanted)
    evidence.command(
        f"kubectl get --raw {AM.proxy_path(pod, port)} | grep -E '{'|'.join(wanted[:6])}'",
        "\n".join(excerpt) or "(none of the profile's metric names)",
        f"{names.exporter} on {pod['spec']['nodeName']}")
    evidence.log("per quantity (MUST: utilization, memory_used; the rest SHOULD)",
                 "\n".join(report.lines(names.device_labels)))
    evidence.note(report.reason)
    assert report.ok, report.reason


@pytest.mark.gpu
@pytest.mark.requirement(REQ)
def test_utilisation_moves_under_load(kube: Kube, cluster_info: ClusterInfo,
                                      aic_settings: Settings, namespace: str,
                                      run_context: RunContext, evidence: EvidenceRecorder,
                                      timeout: Callable[[float], float],
                                      request: pytest.FixtureRequest) -> None:
    """Device utilisation rises between a sample before and a sample during a short load."""
    load = aic_settings.profile.load
    if load is None or load.image not in aic_settings.images:
        make_supporting(request.node)
        evidence.note(f"supporting on this run: profile {aic_settings.profile.name} pins no "
                      "load (accelerators.yaml load, an images.yaml key)")
        unknown_hardware(f"no load image is pinned for profile {aic_settings.profile.name}, "
                         "so utilisation under load cannot be driven")
    profile, names, svc, pods = _exporter_on(kube, cluster_info, aic_settings)
    alloc = allocations.choose_allocation(cluster_info, aic_settings.profile,
                                          aic_settings.allocation_mode)
    if alloc.mode == "dra":
        run_context.create(workloads.claim_template("one-device", namespace, alloc.device_class))
    port = AM.metrics_port(svc)
    before_all = {p["spec"]["nodeName"]: AM.utilisation_by_device(
        parse_exposition(scrape(kube, p, port)), names) for p in pods}
    rtc = profile.runtime_class if profile.runtime_class in cluster_info.runtime_classes else None
    run_context.create(AM.load_pod(namespace, alloc, LOAD_SECONDS, rtc,
                                   aic_settings.image(load.image), load.command))
    running = watch_until(kube, Target("v1", "Pod", namespace, name="gpu-load"),
                          lambda objs: any(o.get("status", {}).get("phase") == "Running"
                                           for o in objs.values()),
                          timeout=timeout(300), expected="load pod gpu-load Running",
                          give_up=failed_pod)
    node = next(iter(running.values()))["spec"]["nodeName"]
    exporter = next((p for p in pods if p["spec"]["nodeName"] == node), None)
    assert exporter is not None, f"no {names.exporter} pod on {node}, where the load runs"
    before = before_all.get(node, {})
    evidence.command(f"# utilisation % ({', '.join(names.utilization)}) on {node} before the "
                     "load", AM.device_lines(before))
    during, moved = monitoring.poll(
        lambda: AM.utilisation_by_device(parse_exposition(scrape(kube, exporter, port)), names),
        lambda now: AM.utilisation_moved(before, now)[0],
        timeout=timeout(LOAD_SECONDS - 10), interval=5)
    evidence.command(f"# utilisation % ({', '.join(names.utilization)}) on {node} during the "
                     "load", AM.device_lines(during))
    evidence.command(f"kubectl get pods -n {namespace} -o wide", get_table(
        list(running.values()), [("NAME", name), ("NODE", lambda o: o["spec"]["nodeName"])]))
    ok, reason = AM.utilisation_moved(before, during)
    evidence.note(reason)
    assert moved, reason
    assert ok, reason


@pytest.mark.requirement(REQ, role="supporting")
def test_device_metrics_in_prometheus(kube: Kube, cluster_info: ClusterInfo,
                                      aic_settings: Settings,
                                      evidence: EvidenceRecorder) -> None:
    """The platform's Prometheus collected the exporter's per-device utilisation series."""
    _profile, names = metric_names(aic_settings.profile)
    accelerator_nodes(cluster_info)
    found = monitoring.find_monitoring(kube, aic_settings.prometheus)
    if found.endpoint is None:
        if found.managed is not None:  # its reason names the option already
            not_observable(found.reason)
        not_observable(f"no Prometheus-compatible query API to ask: {found.reason}; name "
                       "one with --aic-prometheus")
    promql = AM.utilisation_query(names)
    result = monitoring.instant_query(kube, found.endpoint, promql)
    rows = AM.series_rows(result, names)
    evidence.command(f"curl -s '{found.endpoint.api_path()}' --data-urlencode "
                     f"'query={promql}'",
                     "\n".join(" ".join(r) for r in rows) or "(empty)",
                     f"query API: {found.endpoint.describe()}")
    ok, reason = AM.collected_utilisation(result, names)
    evidence.note(reason)
    assert ok, reason
