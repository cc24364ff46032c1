"""Managed Prometheus collectors (monitoring.MANAGED_COLLECTORS): which one is chosen when
its scrape-object API is served, the object built for it, and no query API without
--aic-prometheus."""

from __future__ import annotations

import pytest

from pytest_aiconformance.cluster import monitoring as mq

GMP, AZURE = mq.MANAGED_COLLECTORS
FORMS = "http(s)://HOST[:PORT][/PATH] or NAMESPACE/SERVICE:PORT[/PATH]"


class FakeKube:
    """Serves the (api_version, kind) pairs given; objects by kind; get by (kind, ns, name)."""

    def __init__(self, served, objects=None, named=None):
        self.served, self.objects, self.named = served, objects or {}, named or {}

    def serves(self, api_version, kind=None):
        return (api_version, kind) in self.served

    def items(self, api_version, kind, namespace=None, label_selector=None):
        return self.objects.get(kind, [])

    def get_or_none(self, api_version, kind, name, namespace=None):
        return self.named.get((kind, namespace, name))


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
