"""Metrics decisions (pytest_aiconformance.metrics_queries) on recorded exporter pages and
Prometheus API answers, including inputs that must fail.

Recorded: dcgm/l40s-dcgm-exporter-metrics.txt (dcgm-exporter, one L40S),
dcgm/dcgm-exporter-readme-excerpt.txt (a page without the utilisation metric),
prometheus/api-query-instant-vector.json, prometheus/exposition-formats-example.txt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_aiconformance import metrics_queries as mq
from pytest_aiconformance.accelerators import get_profile
from pytest_aiconformance.parsers import parse_exposition, parse_query_response

REC = Path(__file__).resolve().parent / "data" / "recorded"
NVIDIA = get_profile("nvidia").metrics
L40S = parse_exposition((REC / "dcgm" / "l40s-dcgm-exporter-metrics.txt").read_text())
README = parse_exposition((REC / "dcgm" / "dcgm-exporter-readme-excerpt.txt").read_text())
UP = parse_query_response((REC / "prometheus" / "api-query-instant-vector.json").read_text())
UUID = "GPU-5b4e07f6-3a86-4340-039d-25f2a83cdc43"


# --- ServiceMonitor from the Prometheus CR's selectors ------------------------------------


def prom(spec):
    return {"metadata": {"name": "k8s", "namespace": "monitoring"}, "spec": spec}


def test_kube_prometheus_stack_release_selector():
    # kube-prometheus-stack's default: serviceMonitorSelector matchLabels release=<name>,
    # serviceMonitorNamespaceSelector {} (all namespaces).
    plan = mq.plan_service_monitor(prom({
        "serviceMonitorSelector": {"matchLabels": {"release": "kps"}},
        "serviceMonitorNamespaceSelector": {}}), "aic-x")
    assert plan.monitor_namespace == "aic-x"
    assert plan.monitor_labels == {"release": "kps"}
    assert plan.namespace_labels == {}


def test_null_namespace_selector_means_own_namespace():
    plan = mq.plan_service_monitor(prom({"serviceMonitorSelector": {}}), "aic-x")
    assert plan.monitor_namespace == "monitoring"
    sm = mq.service_monitor("sm", plan, "aic-x", {"app": "a"}, "web", ["aiconformance.io/run-id"])
    assert sm["metadata"]["namespace"] == "monitoring"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["aic-x"]}


def test_namespace_selector_labels_our_namespace():
    plan = mq.plan_service_monitor(prom({
        "serviceMonitorSelector": {"matchExpressions": [
            {"key": "team", "operator": "In", "values": ["ml", "ops"]},
            {"key": "monitored", "operator": "Exists"},
            {"key": "skip", "operator": "DoesNotExist"}]},
        "serviceMonitorNamespaceSelector": {"matchLabels": {"monitoring": "on"}}}), "aic-x")
    assert plan.monitor_labels == {"team": "ml", "monitored": "aiconformance"}
    assert plan.namespace_labels == {"monitoring": "on"}


def test_null_service_monitor_selector_selects_nothing():
    with pytest.raises(mq.UnsatisfiableSelector, match="selects no ServiceMonitor"):
        mq.plan_service_monitor(prom({"podMonitorSelector": {}}), "aic-x")


@pytest.mark.parametrize("selector", [
    {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
    {"matchLabels": {"a": "x"}, "matchExpressions": [{"key": "a", "operator": "NotIn",
                                                      "values": ["x"]}]},
    {"matchLabels": {"a": "x"}, "matchExpressions": [{"key": "a", "operator": "In",
                                                      "values": ["y"]}]},
    {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
])
def test_unsatisfiable_selectors(selector):
    with pytest.raises(mq.UnsatisfiableSelector):
        mq.labels_satisfying(selector)


def test_prometheus_label_name():
    assert mq.prometheus_label_name("aiconformance.io/run-id") == "aiconformance_io_run_id"


# --- exactly N ----------------------------------------------------------------------------


def test_counter_matches_recorded_vector():
    check = mq.counter_matches(UP, "job", "prometheus", 1)
    assert check.ok, check.reason
    assert check.final


def test_counter_ignores_other_runs_series():
    # The "node" series (value 0) is someone else's: it must not count towards ours.
    check = mq.counter_matches(UP, "job", "node", 1)
    assert not check.ok
    assert not check.final  # fewer than N: maybe not scraped yet, keep waiting


def test_counter_above_n_is_final_failure():
    check = mq.counter_matches(UP, "job", "prometheus", 0)
    assert not check.ok
    assert check.final
    assert "more than" in check.reason


def test_counter_without_series_fails():
    check = mq.counter_matches(UP, "job", "absent-run", 5)
    assert not check.ok
    assert check.value is None


def test_counter_sums_series_of_the_run():
    doc = json.loads((REC / "prometheus" / "api-query-instant-vector.json").read_text())
    for item in doc["data"]["result"]:
        item["metric"]["run"] = "r1"
        item["value"][1] = "20"
    result = parse_query_response(doc)
    assert mq.counter_matches(result, "run", "r1", 40).ok
    assert not mq.counter_matches(result, "run", "r1", 37).ok


def test_poll_stops_when_done_and_at_deadline():
    now = [0.0]
    values = iter([1, 2, 3, 4, 5, 6])
    got, ok = mq.poll(lambda: next(values), lambda v: v == 3, timeout=100, interval=1,
                      clock=lambda: now[0], pause=lambda s: now.__setitem__(0, now[0] + s))
    assert (got, ok) == (3, True)
    got, ok = mq.poll(lambda: 0, lambda v: False, timeout=10, interval=4,
                      clock=lambda: now[0], pause=lambda s: now.__setitem__(0, now[0] + s))
    assert not ok


# --- device metrics -----------------------------------------------------------------------


def test_l40s_page_has_device_metrics():
    report = mq.check_device_metrics(L40S, NVIDIA)
    assert report.ok, report.reason
    assert report.devices == (UUID,)
    assert report.quantities["utilization"].device_label == "UUID"
    lines = report.lines(NVIDIA.device_labels)
    assert any(line.startswith("temperature: DCGM_FI_DEV_GPU_TEMP UUID=") for line in lines)
    assert any(line.startswith("power: DCGM_FI_DEV_POWER_USAGE") for line in lines)
    assert any(line.startswith("interconnect: not exported") for line in lines)


def test_readme_page_lacks_utilisation():
    report = mq.check_device_metrics(README, NVIDIA)
    assert not report.ok
    assert "no utilization metric" in report.reason


def test_metrics_without_device_label_fail():
    text = "DCGM_FI_DEV_GPU_UTIL{Hostname=\"n1\"} 5\nDCGM_FI_DEV_FB_USED{Hostname=\"n1\"} 10\n"
    report = mq.check_device_metrics(parse_exposition(text), NVIDIA)  # synthetic
    assert not report.ok
    assert "lack a device label" in report.reason


def test_generic_exposition_is_not_accelerator_metrics():
    expo = parse_exposition((REC / "prometheus" / "exposition-formats-example.txt").read_text())
    assert not mq.check_device_metrics(expo, NVIDIA).ok


def test_amd_names_are_used_for_amd():
    text = ('gpu_gfx_activity{gpu_id="0",hostname="n"} 7\n'
            'gpu_used_vram{gpu_id="0",hostname="n"} 1024\n')  # synthetic, AMD names
    report = mq.check_device_metrics(parse_exposition(text), get_profile("amd").metrics)
    assert report.ok, report.reason


def test_utilisation_moved_on_recorded_sample():
    before = mq.utilisation_by_device(L40S, NVIDIA)
    assert before == {UUID: 0.0}
    during_text = (REC / "dcgm" / "l40s-dcgm-exporter-metrics.txt").read_text().replace(
        'DCGM_FI_DRIVER_VERSION="595.58.03"} 0\n# HELP DCGM_FI_DEV_MEM_COPY_UTIL',
        'DCGM_FI_DRIVER_VERSION="595.58.03"} 97\n# HELP DCGM_FI_DEV_MEM_COPY_UTIL')
    during = mq.utilisation_by_device(parse_exposition(during_text), NVIDIA)
    assert during == {UUID: 97.0}
    ok, reason = mq.utilisation_moved(before, during)
    assert ok, reason


def test_utilisation_not_moved_fails():
    before = mq.utilisation_by_device(L40S, NVIDIA)
    ok, reason = mq.utilisation_moved(before, dict(before))
    assert not ok
    assert "did not rise" in reason


def test_utilisation_on_another_device_does_not_count():
    ok, reason = mq.utilisation_moved({"GPU-a": 0.0}, {"GPU-b": 90.0})
    assert not ok
    assert "no device in both" in reason


def test_utilisation_drop_does_not_count():
    assert not mq.utilisation_moved({"g": 50.0}, {"g": 10.0})[0]
