"""Metrics decisions (pytest_aiconformance.cluster.monitoring) on recorded exporter pages and
Prometheus API answers, including inputs that must fail.

Recorded: dcgm/l40s-dcgm-exporter-metrics.txt (dcgm-exporter, one L40S),
dcgm/dcgm-exporter-readme-excerpt.txt (a page without the utilisation metric),
prometheus/api-query-instant-vector.json, prometheus/exposition-formats-example.txt; inline,
an H100's MIG instances as published in NVIDIA/dcgm-exporter issue 512 (MIG_GPU0).
"""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_aiconformance.cluster import monitoring as mq
from pytest_aiconformance.cluster.profiles import get_profile
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


# --- MIG: utilisation from the profiling ratio where GPU_UTIL is absent ---------------------

# GPU 0's lines as published in NVIDIA/dcgm-exporter issue 512 (an H100 80GB in MIG mode,
# driver 535.129.03: three 1g.10gb instances export DCGM_FI_PROF_GR_ENGINE_ACTIVE only).
MIG_GPU0 = """\
# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.
# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="GPU-58e8f5ea-13cc-013a-d88f-2bcf5ae8bc77",\
pci_bus_id="00000000:1A:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",\
GPU_I_PROFILE="1g.10gb",GPU_I_ID="7",Hostname="gsrh100-074",DCGM_FI_DRIVER_VERSION="535.129.03",\
container="kserve-container",namespace="model-playground-stg",\
pod="text-embedding-predictor-00008-deployment-57946f6c67-vdtjl"} 0.000000
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="GPU-58e8f5ea-13cc-013a-d88f-2bcf5ae8bc77",\
pci_bus_id="00000000:1A:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",\
GPU_I_PROFILE="1g.10gb",GPU_I_ID="8",Hostname="gsrh100-074",\
DCGM_FI_DRIVER_VERSION="535.129.03"} 0.000000
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="GPU-58e8f5ea-13cc-013a-d88f-2bcf5ae8bc77",\
pci_bus_id="00000000:1A:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",\
GPU_I_PROFILE="1g.10gb",GPU_I_ID="9",Hostname="gsrh100-074",DCGM_FI_DRIVER_VERSION="535.129.03",\
container="kserve-container",namespace="model-playground-stg",\
pod="tts-predictor-00011-deployment-5554f75554-8j8pl"} 0.000000
"""
# GPU 1 of the same node is not in MIG mode (nvidia-smi in the issue: 14 %, 51958 MiB used).
# Synthetic lines in the exporter's shape (the issue shows no GPU 1 lines; UUID made up).
GPU1 = "GPU-00000000-0000-0000-0000-000000000001"
MIG_GPU1 = f"""\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{{gpu="1",UUID="{GPU1}",device="nvidia1",Hostname="gsrh100-074"}} 14
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{{gpu="1",UUID="{GPU1}",device="nvidia1",Hostname="gsrh100-074"}} 51958
DCGM_FI_PROF_GR_ENGINE_ACTIVE{{gpu="1",UUID="{GPU1}",device="nvidia1",Hostname="gsrh100-074"}} \
0.140000
"""
H100 = "GPU-58e8f5ea-13cc-013a-d88f-2bcf5ae8bc77"
INSTANCES = tuple(f"{H100}/GPU_I_ID={i}" for i in (7, 8, 9))


def test_mig_page_takes_the_profiling_ratio_where_gpu_util_is_absent():
    report = mq.check_device_metrics(parse_exposition(MIG_GPU0 + MIG_GPU1), NVIDIA)
    assert report.ok, report.reason
    util = report.quantities["utilization"]
    assert util.found == "DCGM_FI_DEV_GPU_UTIL, DCGM_FI_PROF_GR_ENGINE_ACTIVE"
    assert util.device_label == "UUID"
    assert report.devices == (GPU1, *INSTANCES)
    assert report.reason == ("4 device(s) export DCGM_FI_DEV_GPU_UTIL, "
                             "DCGM_FI_PROF_GR_ENGINE_ACTIVE and DCGM_FI_DEV_FB_USED labelled "
                             "by UUID")


def test_mig_utilisation_is_in_percent_per_instance():
    util = mq.utilisation_by_device(parse_exposition(MIG_GPU0 + MIG_GPU1), NVIDIA)
    # GPU 1 keeps GPU_UTIL (listed first), not its ratio x 100.
    assert util == {INSTANCES[0]: 0.0, INSTANCES[1]: 0.0, INSTANCES[2]: 0.0, GPU1: 14.0}


def loaded(instance: str, ratio: str) -> str:
    """GPU 0's page with one instance's ratio replaced, as a sample during a load."""
    head, tail = MIG_GPU0.split(f'GPU_I_ID="{instance}"', 1)
    value_at = tail.index("} 0.000000") + 2
    return head + f'GPU_I_ID="{instance}"' + tail[:value_at] + ratio + tail[value_at + 8:]


def test_mig_instance_under_load_moves():
    before = mq.utilisation_by_device(parse_exposition(MIG_GPU0), NVIDIA)
    during = mq.utilisation_by_device(parse_exposition(loaded("8", "0.620000")), NVIDIA)
    assert during == {INSTANCES[0]: 0.0, INSTANCES[1]: 62.0, INSTANCES[2]: 0.0}
    ok, reason = mq.utilisation_moved(before, during)
    assert ok, reason
    assert f"{INSTANCES[1]}: 0 -> 62" in reason


def test_mig_ratio_rise_below_one_percent_does_not_count():
    # 0.005 is half a percent: the ratio is compared in percent, not as a raw value.
    before = mq.utilisation_by_device(parse_exposition(MIG_GPU0), NVIDIA)
    during = mq.utilisation_by_device(parse_exposition(loaded("7", "0.005000")), NVIDIA)
    assert during[INSTANCES[0]] == 0.5
    assert not mq.utilisation_moved(before, during)[0]


def test_later_names_without_the_device_label_count_for_no_device():
    # synthetic: the second name's sample carries no UUID, so it names no device
    text = (f'DCGM_FI_DEV_GPU_UTIL{{UUID="{GPU1}"}} 14\n'
            'DCGM_FI_PROF_GR_ENGINE_ACTIVE{Hostname="n1"} 0.5\n')
    assert mq.utilisation_by_device(parse_exposition(text), NVIDIA) == {GPU1: 14.0}


def test_all_mig_page_without_memory_metrics_fails():
    # Some exporter versions export no FB_* for GPU instances (NVIDIA/dcgm-exporter 380, 512):
    # the memory MUST quantity is then missing, and the check says so.
    report = mq.check_device_metrics(parse_exposition(MIG_GPU0), NVIDIA)
    assert not report.ok
    assert report.reason == "no memory_used metric (DCGM_FI_DEV_FB_USED)"
    assert report.devices == INSTANCES


# --- which monitoring, where to query it ----------------------------------------------------


def vmagent(spec, name="agent", namespace="vm"):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_vmagent_select_all_by_default_takes_our_scrape_anywhere():
    plan = mq.plan_vm_service_scrape(vmagent({"selectAllByDefault": True}), "aic-x")
    assert (plan.kind, plan.api_version) == ("VMServiceScrape", mq.VM)
    assert (plan.monitor_namespace, plan.monitor_labels, plan.namespace_labels) == (
        "aic-x", {}, {})
    scrape = mq.service_monitor("s", plan, "aic-x", {"app": "a"}, "web", ["run"])
    assert scrape["apiVersion"] == "operator.victoriametrics.com/v1beta1"
    assert scrape["kind"] == "VMServiceScrape"
    assert scrape["spec"] == {"selector": {"matchLabels": {"app": "a"}},
                              "namespaceSelector": {"matchNames": ["aic-x"]},
                              "targetLabels": ["run"],
                              "endpoints": [{"port": "web", "path": "/metrics",
                                             "interval": "5s"}]}


def test_vmagent_without_selectors_or_select_all_selects_nothing():
    with pytest.raises(mq.UnsatisfiableSelector, match="selects no VMServiceScrape"):
        mq.plan_vm_service_scrape(vmagent({}), "aic-x")


def test_vmagent_null_namespace_selector_means_own_namespace():
    plan = mq.plan_vm_service_scrape(
        vmagent({"serviceScrapeSelector": {"matchLabels": {"team": "ml"}}}), "aic-x")
    assert (plan.monitor_namespace, plan.monitor_labels, plan.namespace_labels) == (
        "vm", {"team": "ml"}, {})


def test_vmagent_null_object_selector_takes_every_object_of_selected_namespaces():
    plan = mq.plan_vm_service_scrape(vmagent({
        "serviceScrapeNamespaceSelector": {"matchLabels": {"monitoring": "on"}}}), "aic-x")
    assert (plan.monitor_namespace, plan.monitor_labels, plan.namespace_labels) == (
        "aic-x", {}, {"monitoring": "on"})


@pytest.mark.parametrize(("text", "expected"), [
    ("monitoring/prometheus-k8s:9090",
     "/api/v1/namespaces/monitoring/services/prometheus-k8s:9090/proxy/api/v1/query"),
    ("monitoring/prometheus-operated:web",
     "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/api/v1/query"),
    ("vm/vmselect-main:8481/select/0/prometheus/",
     "/api/v1/namespaces/vm/services/vmselect-main:8481/proxy/select/0/prometheus/api/v1/query"),
    ("http://prometheus.example:9090", "http://prometheus.example:9090/api/v1/query"),
    ("https://vm.example/select/0/prometheus/",
     "https://vm.example/select/0/prometheus/api/v1/query"),
])
def test_prometheus_option_forms(text, expected):
    endpoint = mq.parse_prometheus_option(text)
    assert endpoint.api_path() == expected
    assert endpoint.source == "--aic-prometheus"


@pytest.mark.parametrize(("text", "message"), [
    ("prometheus-operated:9090", "expected http(s)://HOST[:PORT][/PATH] or "
                                 "NAMESPACE/SERVICE:PORT[/PATH], got 'prometheus-operated:9090'"),
    ("monitoring/prometheus", "expected http(s)://HOST[:PORT][/PATH] or "
                              "NAMESPACE/SERVICE:PORT[/PATH], got 'monitoring/prometheus'"),
    ("Monitoring/prom:9090", "expected http(s)://HOST[:PORT][/PATH] or "
                             "NAMESPACE/SERVICE:PORT[/PATH], got 'Monitoring/prom:9090'"),
    ("monitoring/prom:70000", "port 70000 out of range in 'monitoring/prom:70000'"),
    ("monitoring/prom:123-", "'123-' is neither a port number nor a port name in "
                             "'monitoring/prom:123-'"),
    ("http://:9090", "expected http(s)://HOST[:PORT][/PATH] or NAMESPACE/SERVICE:PORT[/PATH], "
                     "got 'http://:9090'"),
    ("http://prom:99999", "bad port in 'http://prom:99999'"),
    ("http://prom:9090/?x=1", "expected http(s)://HOST[:PORT][/PATH] or "
                              "NAMESPACE/SERVICE:PORT[/PATH], got 'http://prom:9090/?x=1'"),
])
def test_prometheus_option_rejects(text, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        mq.parse_prometheus_option(text)
    assert str(err.value) == message


KPS = prom({"serviceMonitorSelector": {"matchLabels": {"release": "kps"}},
            "serviceMonitorNamespaceSelector": {}})
VMSINGLE = {"metadata": {"name": "main", "namespace": "vm"}}
OTHER_SINGLE = {"metadata": {"name": "aaa", "namespace": "vm"}}


def test_prometheus_cr_is_queried_at_prometheus_operated():
    found = mq.choose_monitoring([KPS], [vmagent({"selectAllByDefault": True})], [VMSINGLE])
    assert (found.kind, found.ident) == ("Prometheus", "Prometheus monitoring/k8s")
    assert found.endpoint == mq.QueryEndpoint("Prometheus monitoring/k8s", "monitoring",
                                              "prometheus-operated", "web")
    assert found.plan("aic-x").kind == "ServiceMonitor"


def test_option_names_the_query_api_the_collector_stays():
    option = mq.parse_prometheus_option("https://metrics.example/api/prom")
    found = mq.choose_monitoring([KPS], [], [], option)
    assert found.kind == "Prometheus"
    assert found.endpoint is option
    assert found.reason == ("Prometheus monitoring/k8s (Prometheus Operator) discovers "
                            "ServiceMonitors; queried at https://metrics.example/api/prom "
                            "(--aic-prometheus)")


def test_vmagent_is_queried_at_the_vmsingle_it_writes_to():
    agent = vmagent({"selectAllByDefault": True, "remoteWrite": [
        {"url": "http://vmsingle-main.vm.svc:8429/api/v1/write"}]})
    found = mq.choose_monitoring([], [agent], [OTHER_SINGLE, VMSINGLE])
    assert (found.kind, found.ident) == ("VMAgent", "VMAgent vm/agent")
    assert found.endpoint == mq.QueryEndpoint("VMSingle vm/main", "vm", "vmsingle-main", "http")
    assert found.endpoint.api_path() == (
        "/api/v1/namespaces/vm/services/vmsingle-main:http/proxy/api/v1/query")
    assert found.plan("aic-x").kind == "VMServiceScrape"


def test_vmagent_without_vmsingle_needs_the_option():
    found = mq.choose_monitoring([], [vmagent({"selectAllByDefault": True})], [])
    assert found.endpoint is None
    assert found.reason == ("VMAgent vm/agent (VictoriaMetrics operator) discovers "
                            "VMServiceScrapes; no VMSingle to query: name the query API (e.g. a "
                            "VMCluster's vmselect) with --aic-prometheus")


def test_no_collector_is_no_monitoring():
    found = mq.choose_monitoring([], [], [VMSINGLE])
    assert (found.kind, found.collector, found.endpoint) == ("", None, None)
    with pytest.raises(mq.UnsatisfiableSelector, match="no Prometheus"):
        found.plan("aic-x")


class FakeKube:
    """Serves the groups and objects a test gives; records query paths."""

    def __init__(self, served, objects, answer=None):
        self.served, self.objects, self.answer, self.paths = served, objects, answer, []

    def serves(self, api_version, kind=None):
        return (api_version, kind) in self.served

    def items(self, api_version, kind, namespace=None, label_selector=None):
        return self.objects.get(kind, [])

    def request(self, method, path, **kwargs):
        self.paths.append((method, path, kwargs))
        return self.answer


def test_find_monitoring_says_which_crds_are_served():
    kube = FakeKube({(mq.VM, "VMAgent"), (mq.VM, "VMServiceScrape")}, {})
    found = mq.find_monitoring(kube)
    assert found.reason == ("no platform monitoring found: the VictoriaMetrics operator's CRDs "
                            "exist but no Prometheus or VMAgent object does")
    assert mq.find_monitoring(FakeKube(set(), {})).reason == (
        "no platform monitoring found: none of monitoring.coreos.com/v1 Prometheus/"
        "ServiceMonitor (Prometheus Operator, e.g. kube-prometheus-stack), "
        "operator.victoriametrics.com/v1beta1 VMAgent/VMServiceScrape (VictoriaMetrics "
        "operator), monitoring.googleapis.com/v1 PodMonitoring (Google Cloud Managed Service "
        "for Prometheus), azmonitoring.coreos.com/v1 ServiceMonitor (Azure Monitor managed "
        "service for Prometheus) is served")


def test_instant_query_through_the_service_proxy():
    body = (REC / "prometheus" / "api-query-instant-vector.json").read_text()
    kube = FakeKube(set(), {}, body)
    endpoint = mq.QueryEndpoint("x", "monitoring", "prometheus-operated", "web")
    result = mq.instant_query(kube, endpoint, "up")
    assert [s.metric.get("job") for s in result.series] == ["prometheus", "node"]
    assert kube.paths == [("GET", "/api/v1/namespaces/monitoring/services/prometheus-operated:"
                                  "web/proxy/api/v1/query", {"query": {"query": "up"}})]


def test_instant_query_to_a_url():
    body = (REC / "prometheus" / "api-query-instant-vector.json").read_bytes()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = mq.parse_prometheus_option(f"http://127.0.0.1:{server.server_port}/prom")
        result = mq.instant_query(FakeKube(set(), {}), endpoint, 'up{job="node"}')
    finally:
        server.shutdown()
        server.server_close()
    assert len(result.series) == 2
    assert seen == ["/prom/api/v1/query?query=up%7Bjob%3D%22node%22%7D"]


def closed_port() -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_instant_query_to_an_unreachable_url_is_a_query_error():
    endpoint = mq.parse_prometheus_option(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(mq.PrometheusAPIError, match=r"cannot reach http://127\.0\.0\.1:\d+"):
        mq.instant_query(FakeKube(set(), {}), endpoint, "up", timeout=2)


def test_collected_utilisation_needs_device_labelled_series():
    doc = json.loads((REC / "prometheus" / "api-query-instant-vector.json").read_text())
    doc["data"]["result"] = [
        {"metric": {"__name__": "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "UUID": H100, "GPU_I_ID": "7",
                    "Hostname": "gsrh100-074"}, "value": [1435781451.781, "0"]},
        {"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "UUID": GPU1,
                    "Hostname": "gsrh100-074"}, "value": [1435781451.781, "14"]}]
    ok, reason = mq.collected_utilisation(parse_query_response(doc), NVIDIA)
    assert ok, reason
    assert reason == ("2 utilisation series (DCGM_FI_DEV_GPU_UTIL, "
                      "DCGM_FI_PROF_GR_ENGINE_ACTIVE) with a device label collected from "
                      "gsrh100-074")
    ok, reason = mq.collected_utilisation(UP, NVIDIA)
    assert not ok
    assert reason == ("no series of DCGM_FI_DEV_GPU_UTIL, DCGM_FI_PROF_GR_ENGINE_ACTIVE in the "
                      "platform's Prometheus (2 other series)")
