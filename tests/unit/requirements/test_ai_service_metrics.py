"""ai_service_metrics' decisions (pytest_aiconformance.requirements.ai_service_metrics), and the
platform monitoring it finds and asks (pytest_aiconformance.cluster.monitoring, shared with
accelerator_metrics and pod_autoscaling): the collector's selectors and the scrape object they
admit, which stack collects and where it is queried (operators' and clouds' managed
Prometheus), the exactly-N counter, on recorded Prometheus API answers and synthetic objects.

Recorded: prometheus/api-query-instant-vector.json.
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
from pytest_aiconformance.cluster import traffic
from pytest_aiconformance.parsers import PrometheusAPIError, parse_query_response
from pytest_aiconformance.parsers.http_response import parse_http_response
from pytest_aiconformance.requirements import ai_service_metrics as AS

REC = Path(__file__).resolve().parents[1] / "data" / "recorded"
UP = parse_query_response((REC / "prometheus" / "api-query-instant-vector.json").read_text())
GMP, AZURE = mq.MANAGED_COLLECTORS
FORMS = "http(s)://HOST[:PORT][/PATH] or NAMESPACE/SERVICE:PORT[/PATH]"


class FakeKube:
    """Serves the (api_version, kind) pairs given; objects by kind; get by (kind, namespace,
    name); answers every request with ``answer`` and records its path."""

    def __init__(self, served, objects=None, answer=None, named=None):
        self.served, self.objects, self.answer = served, objects or {}, answer
        self.named, self.paths = named or {}, []

    def serves(self, api_version, kind=None):
        return (api_version, kind) in self.served

    def items(self, api_version, kind, namespace=None, label_selector=None):
        return self.objects.get(kind, [])

    def get_or_none(self, api_version, kind, name, namespace=None):
        return self.named.get((kind, namespace, name))

    def request(self, method, path, **kwargs):
        self.paths.append((method, path, kwargs))
        return self.answer


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
    check = AS.counter_matches(UP, "job", "prometheus", 1)
    assert check.ok, check.reason
    assert check.final


def test_counter_ignores_other_runs_series():
    # The "node" series (value 0) is someone else's: it must not count towards ours.
    check = AS.counter_matches(UP, "job", "node", 1)
    assert not check.ok
    assert not check.final  # fewer than N: maybe not scraped yet, keep waiting


def test_counter_above_n_is_final_failure():
    check = AS.counter_matches(UP, "job", "prometheus", 0)
    assert not check.ok
    assert check.final
    assert "more than" in check.reason


def test_counter_without_series_fails():
    check = AS.counter_matches(UP, "job", "absent-run", 5)
    assert not check.ok
    assert check.value is None


def test_counter_sums_series_of_the_run():
    doc = json.loads((REC / "prometheus" / "api-query-instant-vector.json").read_text())
    for item in doc["data"]["result"]:
        item["metric"]["run"] = "r1"
        item["value"][1] = "20"
    result = parse_query_response(doc)
    assert AS.counter_matches(result, "run", "r1", 40).ok
    assert not AS.counter_matches(result, "run", "r1", 37).ok


def test_poll_stops_when_done_and_at_deadline():
    now = [0.0]
    values = iter([1, 2, 3, 4, 5, 6])
    got, ok = mq.poll(lambda: next(values), lambda v: v == 3, timeout=100, interval=1,
                      clock=lambda: now[0], pause=lambda s: now.__setitem__(0, now[0] + s))
    assert (got, ok) == (3, True)
    got, ok = mq.poll(lambda: 0, lambda v: False, timeout=10, interval=4,
                      clock=lambda: now[0], pause=lambda s: now.__setitem__(0, now[0] + s))
    assert not ok


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
    with pytest.raises(PrometheusAPIError, match=r"cannot reach http://127\.0\.0\.1:\d+"):
        mq.instant_query(FakeKube(set(), {}), endpoint, "up", timeout=2)

# --- a cloud's managed Prometheus ------------------------------------------------------------


def test_table_names_the_documented_apis():
    assert (GMP.api_version, GMP.kind, GMP.shape) == (
        "monitoring.googleapis.com/v1", "PodMonitoring", "gmp-pod")
    assert (AZURE.api_version, AZURE.kind, AZURE.shape) == (
        "azmonitoring.coreos.com/v1", "ServiceMonitor", "service")


def test_gmp_served_is_chosen_and_has_no_query_api_without_the_option():
    kube = FakeKube({(GMP.api_version, "PodMonitoring"), ("apps/v1", "DaemonSet")},
                    named={("DaemonSet", "gmp-system", "collector"): {"metadata": {}}})
    found = mq.find_monitoring(kube)
    assert found.found
    assert (found.kind, found.ident, found.managed, found.endpoint) == (
        "PodMonitoring", "Google Cloud Managed Service for Prometheus", GMP, None)
    assert found.agents == ("DaemonSet gmp-system/collector found",)
    assert found.reason == (
        "Google Cloud Managed Service for Prometheus collects here (DaemonSet "
        "gmp-system/collector found): its collectors read PodMonitoring objects "
        "(monitoring.googleapis.com/v1) from every namespace; its query API is the Cloud "
        "Monitoring Prometheus API (https://monitoring.googleapis.com/v1/projects/PROJECT/"
        "location/global/prometheus), or a GMP frontend Service that adds credentials "
        "(NAMESPACE/frontend:9090), which the API server cannot proxy, so nothing it collected "
        f"can be read: pass that query API with --aic-prometheus ({FORMS})")


def test_gmp_builds_a_pod_monitoring_beside_the_workload():
    found = mq.choose_monitoring([], [], [], mq.parse_prometheus_option("http://q:9090"),
                                 [(GMP, ["DaemonSet gmp-system/collector found"])])
    assert found.endpoint is not None
    assert found.endpoint.api_path() == "http://q:9090/api/v1/query"
    plan = found.plan("aic-x")
    assert (plan.monitor_namespace, plan.monitor_labels, plan.namespace_labels) == (
        "aic-x", {}, {})
    obj = mq.service_monitor("aic-aic-x", plan, "aic-x", {"app": "inference-app"}, "web",
                             ["aiconformance.io/run-id"])
    assert obj == {
        "apiVersion": "monitoring.googleapis.com/v1", "kind": "PodMonitoring",
        "metadata": {"name": "aic-aic-x", "namespace": "aic-x", "labels": {}},
        "spec": {"selector": {"matchLabels": {"app": "inference-app"}},
                 "endpoints": [{"port": "web", "path": "/metrics", "interval": "5s"}],
                 "targetLabels": {"fromPod": [{"from": "aiconformance.io/run-id",
                                               "to": "aiconformance_io_run_id"}]}}}


def test_azure_builds_an_azmonitoring_service_monitor():
    kube = FakeKube({(AZURE.api_version, "ServiceMonitor"), ("apps/v1", "Deployment")},
                    named={("Deployment", "kube-system", "ama-metrics"): {"metadata": {}}})
    found = mq.find_monitoring(kube, mq.parse_prometheus_option("ns/proxy:8080"))
    assert (found.kind, found.managed) == ("ServiceMonitor", AZURE)
    # DaemonSets are not served by this fake: the node collector is reported not found.
    assert found.agents == ("Deployment kube-system/ama-metrics found",
                            "DaemonSet kube-system/ama-metrics-node not found")
    assert found.endpoint is not None
    assert found.endpoint.api_path() == (
        "/api/v1/namespaces/ns/services/proxy:8080/proxy/api/v1/query")
    obj = mq.service_monitor("sm", found.plan("aic-x"), "aic-x", {"app": "a"}, "web", ["run"])
    assert obj == {
        "apiVersion": "azmonitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "sm", "namespace": "aic-x", "labels": {}},
        "spec": {"selector": {"matchLabels": {"app": "a"}},
                 "namespaceSelector": {"matchNames": ["aic-x"]}, "targetLabels": ["run"],
                 "endpoints": [{"port": "web", "path": "/metrics", "interval": "5s"}]}}


def test_the_platforms_own_prometheus_comes_before_a_managed_collector():
    prom = {"metadata": {"name": "k8s", "namespace": "monitoring"},
            "spec": {"serviceMonitorSelector": {}}}
    kube = FakeKube({(mq.MON, "Prometheus"), (mq.MON, "ServiceMonitor"),
                     (GMP.api_version, "PodMonitoring")}, {"Prometheus": [prom]})
    found = mq.find_monitoring(kube)
    assert (found.kind, found.managed) == ("Prometheus", None)
    assert found.endpoint == mq.QueryEndpoint("Prometheus monitoring/k8s", "monitoring",
                                              "prometheus-operated", "web")


def test_prometheus_operator_crds_without_objects_fall_back_to_managed():
    kube = FakeKube({(mq.MON, "Prometheus"), (mq.MON, "ServiceMonitor"),
                     (AZURE.api_version, "ServiceMonitor")})
    found = mq.find_monitoring(kube)
    assert found.managed is AZURE
    assert found.endpoint is None


def test_no_managed_collector_served_is_no_monitoring():
    found = mq.find_monitoring(FakeKube({(GMP.api_version, "ClusterPodMonitoring")}))
    assert not found.found
    with pytest.raises(mq.UnsatisfiableSelector):
        found.plan("aic-x")


# --- the one table of stacks ----------------------------------------------------------------


def test_stacks_table_orders_operators_before_managed_services():
    assert [(st.title, st.collector_kind, st.kind, st.managed) for st in mq.STACKS] == [
        ("Prometheus Operator", "Prometheus", "ServiceMonitor", False),
        ("VictoriaMetrics operator", "VMAgent", "VMServiceScrape", False),
        ("Google Cloud Managed Service for Prometheus", "", "PodMonitoring", True),
        ("Azure Monitor managed service for Prometheus", "", "ServiceMonitor", True)]
    assert mq.OPERATOR_STACKS == (mq.PROMETHEUS_OPERATOR, mq.VICTORIAMETRICS)
    assert mq.STACKS[2:] == mq.MANAGED_COLLECTORS
    assert mq.PROMETHEUS_OPERATOR.selectors == ("serviceMonitorSelector",
                                                "serviceMonitorNamespaceSelector")
    assert mq.VICTORIAMETRICS.selectors == ("serviceScrapeSelector",
                                            "serviceScrapeNamespaceSelector")


def test_found_monitoring_names_its_stack():
    prometheus = mq.choose_monitoring([KPS], [])
    assert (prometheus.stack, prometheus.managed, prometheus.kind) == (
        mq.PROMETHEUS_OPERATOR, None, "Prometheus")
    agent = mq.choose_monitoring([], [vmagent({"selectAllByDefault": True})])
    assert (agent.stack, agent.kind) == (mq.VICTORIAMETRICS, "VMAgent")
    none = mq.choose_monitoring([], [])
    assert (none.stack, none.managed, none.kind, none.ident, none.found) == (
        None, None, "", "", False)


# --- ai_service_metrics: the workload, the collector as evidence, exactly N ------------------


def test_workload_counts_requests_to_root_only():
    deploy, svc = AS.workload("aic-x", "quay.io/brancz/prometheus-example-app:v0.5.0")
    assert (deploy["kind"], deploy["metadata"], deploy["spec"]["replicas"]) == (
        "Deployment", {"name": "inference-app", "namespace": "aic-x"}, 1)
    template = deploy["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "inference-app"}
    [ctr] = template["spec"]["containers"]
    assert ctr["command"] == ["/bin/prometheus-example-app", "--bind=:8080"]
    assert ctr["image"] == "quay.io/brancz/prometheus-example-app:v0.5.0"
    assert ctr["ports"] == [{"containerPort": 8080, "name": "web"}]
    # the readiness probe must not add to the counter of requests to /
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": 8080}
    assert svc["spec"] == {"selector": {"app": "inference-app"},
                           "ports": [{"name": "web", "port": 8080, "targetPort": 8080}]}


def test_collector_evidence_of_a_prometheus_shows_its_selectors():
    command, output = AS.collector_evidence(mq.choose_monitoring([KPS], []))
    assert command == "kubectl get prometheus -A"
    assert output.splitlines() == [
        "NAMESPACE    NAME   SERVICEMONITORSELECTOR                "
        "SERVICEMONITORNAMESPACESELECTOR",
        "monitoring   k8s    {'matchLabels': {'release': 'kps'}}   {}"]


def test_collector_evidence_of_a_vmagent_shows_select_all_by_default():
    command, output = AS.collector_evidence(
        mq.choose_monitoring([], [vmagent({"selectAllByDefault": True})]))
    assert command == "kubectl get vmagent -A"
    assert output.splitlines() == [
        "NAMESPACE   NAME    SERVICESCRAPESELECTOR   SERVICESCRAPENAMESPACESELECTOR   "
        "SELECTALLBYDEFAULT",
        "vm          agent   <none>                  <none>                           True"]


def test_collector_evidence_of_a_managed_service_shows_its_api_and_collectors():
    found = mq.choose_managed(AZURE, ["Deployment kube-system/ama-metrics found",
                                      "DaemonSet kube-system/ama-metrics-node not found"], None)
    assert AS.collector_evidence(found) == (
        "kubectl api-resources --api-group=azmonitoring.coreos.com; "
        "kubectl get deployment -n kube-system ama-metrics; "
        "kubectl get daemonset -n kube-system ama-metrics-node",
        "ServiceMonitor (azmonitoring.coreos.com/v1) served\n"
        "Deployment kube-system/ama-metrics found\n"
        "DaemonSet kube-system/ama-metrics-node not found")


def test_undiscoverable_names_the_collector_and_its_scrape_kind():
    why = mq.UnsatisfiableSelector("x In () matches nothing")
    assert AS.undiscoverable(mq.choose_monitoring([KPS], []), why) == (
        "Prometheus monitoring/k8s cannot discover workload ServiceMonitors: x In () matches "
        "nothing")
    assert AS.undiscoverable(mq.choose_monitoring([], [vmagent({})]), why) == (
        "VMAgent vm/agent cannot discover workload VMServiceScrapes: x In () matches nothing")


def test_queries_select_this_runs_series():
    assert AS.up_query("aic-x", "run", "r1") == 'up{namespace="aic-x",run="r1"}'
    assert AS.counter_query("aic-x", "run", "r1") == (
        'http_requests_total{namespace="aic-x",code="200",run="r1"}')


def answer(index: int, status: int | None) -> traffic.Answer:
    if status is None:
        return traffic.Answer("req", index, None, "curl exited 7")
    response = parse_http_response(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok")
    return traffic.Answer("req", index, response)


def test_requests_problem_needs_n_answers_all_200():
    assert AS.requests_problem([answer(i, 200) for i in range(3)], 3) == ""
    assert AS.requests_problem([answer(i, 200) for i in range(2)], 3) == (
        "2 answers logged for 3 requests")
    assert AS.requests_problem([answer(0, 200), answer(1, 503), answer(2, None)], 3) == (
        "the workload answered 1 of 3 requests with 200 (200 x 1, 503 x 1, curl exited 7 x 1)")


def test_counter_table_lists_the_series_answered():
    assert AS.counter_table(UP, "job").splitlines() == [
        "NAME   POD      job          VALUE",
        "up     <none>   prometheus   1",
        "up     <none>   node         0"]

