"""The real metrics checks against the fake API server with a cloud's managed Prometheus:
Google Cloud Managed Service for Prometheus (PodMonitoring) and Azure Monitor managed
Prometheus (azmonitoring.coreos.com ServiceMonitor). Without --aic-prometheus the checks end
not observable, naming the service and the option, and create nothing; with it they create
the managed collector's scrape object and query the URL given."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fakeapi import FakeApiServer, FakeCluster

from conftest import ROOT, base_args

SERVICE_CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_ai_service_metrics.py"
DEVICE_CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_accelerator_metrics.py"
RUN_LABEL = "aiconformance.io/run-id"
GMP = "monitoring.googleapis.com/v1"
AZURE = "azmonitoring.coreos.com/v1"
FORMS = "http(s)://HOST[:PORT][/PATH] or NAMESPACE/SERVICE:PORT[/PATH]"
GMP_QUERY_API = ("the Cloud Monitoring Prometheus API (https://monitoring.googleapis.com/v1/"
                 "projects/PROJECT/location/global/prometheus), or a GMP frontend Service that "
                 "adds credentials (NAMESPACE/frontend:9090)")
AZURE_QUERY_API = ("the Azure Monitor workspace's query endpoint (https://WORKSPACE.REGION."
                   "prometheus.monitor.azure.com), or an authenticating proxy Service in front "
                   "of it")


def _ready_deployments(cluster: FakeCluster, key: str, obj: dict[str, Any]) -> None:
    """A fake Deployment controller: every created Deployment is at once Ready."""
    if key.split(".")[0] == "deployments":
        obj["status"] = {"readyReplicas": obj["spec"].get("replicas", 1)}


def serve_gmp(fake: FakeApiServer) -> None:
    """GMP's APIs, and its collector DaemonSet in gmp-system (apps/v1 then serves DaemonSets
    too, so apps objects are kept under `<resource>.apps`)."""
    fake.cluster.extra_groups[GMP] = {"podmonitorings": ("PodMonitoring", True),
                                      "clusterpodmonitorings": ("ClusterPodMonitoring", False)}
    fake.cluster.extra_groups["apps/v1"] = {"deployments": ("Deployment", True),
                                            "daemonsets": ("DaemonSet", True)}
    fake.cluster.add("daemonsets.apps", {"apiVersion": "apps/v1", "kind": "DaemonSet",
                                         "metadata": {"name": "collector",
                                                      "namespace": "gmp-system"}})
    fake.cluster.extra_core["services"] = ("Service", True)
    fake.cluster.reactors.append(_ready_deployments)


def serve_azure(fake: FakeApiServer) -> None:
    """Azure Monitor's scrape-object APIs and its ama-metrics Deployment in kube-system."""
    fake.cluster.extra_groups[AZURE] = {"servicemonitors": ("ServiceMonitor", True),
                                        "podmonitors": ("PodMonitor", True)}
    fake.cluster.add("deployments", {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "metadata": {"name": "ama-metrics",
                                                  "namespace": "kube-system"}})
    fake.cluster.extra_core["services"] = ("Service", True)
    fake.cluster.reactors.append(_ready_deployments)


class FakePrometheus:
    """A Prometheus query API on 127.0.0.1 answering every query with fixed series."""

    def __init__(self, result: list[dict[str, Any]]) -> None:
        self.queries: list[tuple[str, str]] = []
        body = json.dumps({"status": "success",
                           "data": {"resultType": "vector", "result": result}}).encode()
        seen = self.queries

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                seen.append((url.path, parse_qs(url.query)["query"][0]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/prom"

    def __enter__(self) -> FakePrometheus:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    with FakePrometheus([]) as server:
        yield server


def run(aic: pytest.Pytester, requirement: str, node: str, *extra: str) -> dict[str, Any]:
    aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", "--aic-timeout-scale", "0.002",
                   "--aic-keep-namespaces", "always", *extra, node))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    verdict = next(r for r in data["requirements"] if r["id"] == requirement)
    [check] = verdict["checks"]
    return dict(check)


def run_service_check(aic: pytest.Pytester, *extra: str) -> dict[str, Any]:
    return run(aic, "ai_service_metrics",
               f"{SERVICE_CHECK}::test_collected_counter_equals_requests", *extra)


def not_observable_reason(title: str, seen: str, kind: str, api: str, query_api: str) -> str:
    return (f"{title} collects here ({seen}): its collectors read {kind} objects ({api}) from "
            f"every namespace; its query API is {query_api}, which the API server cannot "
            f"proxy, so nothing it collected can be read: pass that query API with "
            f"--aic-prometheus ({FORMS})")


def stored(fake: FakeApiServer, key: str) -> list[dict[str, Any]]:
    return list(fake.cluster.objects.get(key, {}).values())


def test_gmp_without_query_url_is_not_observable(aic: pytest.Pytester,
                                                 fake: FakeApiServer) -> None:
    serve_gmp(fake)
    check = run_service_check(aic)
    assert check["outcome"] == "not observable here"
    assert check["reason"] == not_observable_reason(
        "Google Cloud Managed Service for Prometheus", "DaemonSet gmp-system/collector found",
        "PodMonitoring", GMP, GMP_QUERY_API)
    assert stored(fake, "podmonitorings.monitoring.googleapis.com") == []
    assert stored(fake, "deployments.apps") == []


def test_gmp_with_query_url_creates_a_pod_monitoring_and_queries_the_url(
        aic: pytest.Pytester, fake: FakeApiServer, prometheus: FakePrometheus) -> None:
    serve_gmp(fake)
    check = run_service_check(aic, f"--aic-prometheus={prometheus.url}")
    [monitor] = stored(fake, "podmonitorings.monitoring.googleapis.com")
    namespace = monitor["metadata"]["namespace"]
    run_id = monitor["metadata"]["labels"][RUN_LABEL]
    assert monitor["metadata"]["name"] == f"aic-{namespace}"[:63]
    assert monitor["spec"] == {
        "selector": {"matchLabels": {"app": "inference-app"}},
        "endpoints": [{"port": "web", "path": "/metrics", "interval": "5s"}],
        "targetLabels": {"fromPod": [{"from": RUN_LABEL, "to": "aiconformance_io_run_id"}]}}
    # The pods the PodMonitoring selects carry the run label it copies onto the series.
    [deploy] = [d for d in stored(fake, "deployments.apps")
                if d["metadata"]["namespace"] == namespace]
    assert deploy["spec"]["template"]["metadata"]["labels"][RUN_LABEL] == run_id
    up = f'up{{namespace="{namespace}",aiconformance_io_run_id="{run_id}"}}'
    assert prometheus.queries
    assert set(prometheus.queries) == {("/prom/api/v1/query", up)}
    assert check["outcome"] == "failed"
    assert check["reason"] == ("Google Cloud Managed Service for Prometheus did not discover "
                               "the workload (up == 1) within the wait")


def test_azure_without_query_url_is_not_observable(aic: pytest.Pytester,
                                                   fake: FakeApiServer) -> None:
    serve_azure(fake)
    check = run_service_check(aic)
    assert check["outcome"] == "not observable here"
    assert check["reason"] == not_observable_reason(
        "Azure Monitor managed service for Prometheus",
        "Deployment kube-system/ama-metrics found; DaemonSet kube-system/ama-metrics-node "
        "not found", "ServiceMonitor", AZURE, AZURE_QUERY_API)
    assert stored(fake, "servicemonitors.azmonitoring.coreos.com") == []


def test_azure_with_query_url_creates_a_service_monitor_and_queries_the_url(
        aic: pytest.Pytester, fake: FakeApiServer, prometheus: FakePrometheus) -> None:
    serve_azure(fake)
    check = run_service_check(aic, f"--aic-prometheus={prometheus.url}")
    [monitor] = stored(fake, "servicemonitors.azmonitoring.coreos.com")
    namespace = monitor["metadata"]["namespace"]
    run_id = monitor["metadata"]["labels"][RUN_LABEL]
    assert monitor["apiVersion"] == AZURE
    assert monitor["spec"] == {
        "selector": {"matchLabels": {"app": "inference-app"}},
        "namespaceSelector": {"matchNames": [namespace]},
        "targetLabels": [RUN_LABEL],
        "endpoints": [{"port": "web", "path": "/metrics", "interval": "5s"}]}
    up = f'up{{namespace="{namespace}",aiconformance_io_run_id="{run_id}"}}'
    assert prometheus.queries
    assert set(prometheus.queries) == {("/prom/api/v1/query", up)}
    assert check["outcome"] == "failed"
    assert check["reason"] == ("Azure Monitor managed service for Prometheus did not discover "
                               "the workload (up == 1) within the wait")


def gpu_node(fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", {"apiVersion": "v1", "kind": "Node",
                               "metadata": {"name": "gpu-1", "labels": {}},
                               "status": {"allocatable": {"nvidia.com/gpu": "1"}}})


def run_device_check(aic: pytest.Pytester, *extra: str) -> dict[str, Any]:
    return run(aic, "accelerator_metrics",
               f"{DEVICE_CHECK}::test_device_metrics_in_prometheus", *extra)


def test_device_metrics_with_gmp_and_no_url_is_not_observable(aic: pytest.Pytester,
                                                              fake: FakeApiServer) -> None:
    serve_gmp(fake)
    gpu_node(fake)
    check = run_device_check(aic)
    assert check["outcome"] == "not observable here"
    assert check["reason"] == not_observable_reason(
        "Google Cloud Managed Service for Prometheus", "DaemonSet gmp-system/collector found",
        "PodMonitoring", GMP, GMP_QUERY_API)


def test_device_metrics_with_gmp_are_read_at_the_url(aic: pytest.Pytester,
                                                     fake: FakeApiServer) -> None:
    serve_gmp(fake)
    gpu_node(fake)
    series = [{"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "UUID": "GPU-1", "gpu": "0",
                          "Hostname": "gpu-1", "namespace": "gpu-operator"},
               "value": [1735689600, "3"]}]
    with FakePrometheus(series) as prometheus:
        check = run_device_check(aic, f"--aic-prometheus={prometheus.url}")
    assert prometheus.queries == [
        ("/prom/api/v1/query", '{__name__=~"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_PROF_GR_ENGINE_ACTIVE"}')]
    assert check["outcome"] == "passed"
