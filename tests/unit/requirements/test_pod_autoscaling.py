"""pod_autoscaling's logic (pytest_aiconformance.requirements.pod_autoscaling): the CPU half's
HPA, workload and readings, and the custom-metrics half's path discovery offers, the objects the
check creates and the metrics APIs' answers read back (shapes as the API servers write them)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance.cluster import allocations
from pytest_aiconformance.cluster.monitoring import plan_service_monitor, plan_vm_service_scrape
from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.parsers import parse_exposition
from pytest_aiconformance.requirements import pod_autoscaling as cm
from pytest_aiconformance.verdicts.catalog import load_catalog
from pytest_aiconformance.verdicts.model import CheckResult, Role, Status
from pytest_aiconformance.verdicts.outcomes import Outcome
from pytest_aiconformance.verdicts.rules import aggregate

CUSTOM_V2, CUSTOM_V1 = cm.CUSTOM_GVS
BASE = ["v1", "apps/v1", "autoscaling/v2", "apiregistration.k8s.io/v1"]


def apiservice(group: str, version: str = "v1beta1", service: tuple[str, str] | None = None,
               available: str = "True", message: str = "all checks passed") -> dict[str, Any]:
    spec: dict[str, Any] = {"group": group, "version": version}
    if service:
        spec["service"] = {"namespace": service[0], "name": service[1], "port": 443}
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{version}.{group}"}, "spec": spec,
            "status": {"conditions": [{"type": "Available", "status": available,
                                       "reason": "Passed" if available == "True"
                                       else "FailedDiscoveryCheck", "message": message}]}}


KEDA_SVC = apiservice(cm.EXTERNAL_GROUP, service=("keda", "keda-operator-metrics-apiserver"))
ADAPTER_V1 = apiservice(cm.CUSTOM_GROUP, service=("monitoring", "prometheus-adapter"))
ADAPTER_V2 = apiservice(cm.CUSTOM_GROUP, "v1beta2", ("monitoring", "prometheus-adapter"))


# --- discovery and the path -------------------------------------------------------------------


def test_no_adapter_fails_naming_what_is_missing_and_what_provides_it() -> None:
    path = cm.choose_path(cm.metrics_apis([*BASE, "metrics.k8s.io/v1beta1"], []), False)
    assert path.kind is cm.PathKind.NONE
    assert path.api is None
    assert path.reason == (
        "autoscaling/v2 HorizontalPodAutoscaler is served but cannot scale on custom metrics: "
        "neither custom.metrics.k8s.io (v1beta2, v1beta1) nor external.metrics.k8s.io/v1beta1 "
        "is served; a metrics adapter provides them, e.g. prometheus-adapter "
        "(custom.metrics.k8s.io), KEDA (external.metrics.k8s.io) or a cloud provider's "
        "metrics adapter")


def test_a_registered_adapter_that_is_not_available_is_no_adapter() -> None:
    down = apiservice(cm.CUSTOM_GROUP, service=("monitoring", "prometheus-adapter"),
                      available="False", message="failing or missing response from "
                      "https://10.96.7.7:443/apis/custom.metrics.k8s.io/v1beta1: "
                      "dial tcp 10.96.7.7:443: connect: connection refused")
    apis = cm.metrics_apis([*BASE, CUSTOM_V1], [down])
    assert apis == [cm.MetricsAPI(CUSTOM_V1, True, "v1beta1.custom.metrics.k8s.io",
                                  "monitoring/prometheus-adapter", "False",
                                  down["status"]["conditions"][0]["message"])]
    path = cm.choose_path(apis, False)
    assert path.kind is cm.PathKind.NONE
    assert ("(custom.metrics.k8s.io/v1beta1 (APIService v1beta1.custom.metrics.k8s.io -> "
            "Service monitoring/prometheus-adapter) is registered but not Available: failing "
            "or missing response from https://10.96.7.7:443") in path.reason


def test_custom_metrics_prefers_v1beta2() -> None:
    apis = cm.metrics_apis([*BASE, CUSTOM_V2, CUSTOM_V1], [ADAPTER_V1, ADAPTER_V2])
    assert [a.group_version for a in apis] == [CUSTOM_V2, CUSTOM_V1]
    path = cm.choose_path(apis, False)
    assert path.kind is cm.PathKind.CUSTOM
    assert path.api is not None
    assert path.api.group_version == CUSTOM_V2
    assert path.reason == ("custom metrics adapter: custom.metrics.k8s.io/v1beta2 (APIService "
                           "v1beta2.custom.metrics.k8s.io -> Service "
                           "monitoring/prometheus-adapter)")


def test_discovery_alone_counts_when_apiservices_cannot_be_read() -> None:
    apis = cm.metrics_apis([*BASE, CUSTOM_V1], [])
    assert apis == [cm.MetricsAPI(CUSTOM_V1, True)]
    assert cm.choose_path(apis, False).reason == \
        "custom metrics adapter: custom.metrics.k8s.io/v1beta1"


def test_keda_is_chosen_over_a_custom_adapter() -> None:
    apis = cm.metrics_apis([*BASE, CUSTOM_V1, cm.EXTERNAL_GV], [ADAPTER_V1, KEDA_SVC])
    path = cm.choose_path(apis, True)
    assert path.kind is cm.PathKind.KEDA
    assert path.api is not None
    assert path.api.group_version == cm.EXTERNAL_GV
    assert path.reason == ("KEDA: keda.sh/v1alpha1 ScaledObject is served and "
                           "external.metrics.k8s.io/v1beta1 (APIService "
                           "v1beta1.external.metrics.k8s.io -> Service "
                           "keda/keda-operator-metrics-apiserver) serves external metrics")


def test_keda_crds_with_another_external_adapter_fall_back_to_custom_metrics() -> None:
    cloud = apiservice(cm.EXTERNAL_GROUP, service=("kube-system", "stackdriver-adapter"))
    apis = cm.metrics_apis([*BASE, CUSTOM_V1, cm.EXTERNAL_GV], [ADAPTER_V1, cloud])
    assert cm.choose_path(apis, True).kind is cm.PathKind.CUSTOM
    only_external = cm.choose_path(cm.metrics_apis([*BASE, cm.EXTERNAL_GV], [cloud]), True)
    assert only_external.kind is cm.PathKind.EXTERNAL_OTHER
    assert ("KEDA's keda.sh/v1alpha1 ScaledObject is served but the external metrics API is "
            "another adapter's") in only_external.reason


def test_external_metrics_without_keda_cannot_be_driven() -> None:
    cloud = apiservice(cm.EXTERNAL_GROUP, service=("kube-system", "cloud-metrics-adapter"))
    path = cm.choose_path(cm.metrics_apis([*BASE, cm.EXTERNAL_GV], [cloud]), False)
    assert path.kind is cm.PathKind.EXTERNAL_OTHER
    assert path.reason == (
        "only external metrics are served (external.metrics.k8s.io/v1beta1 (APIService "
        "v1beta1.external.metrics.k8s.io -> Service kube-system/cloud-metrics-adapter); no KEDA "
        "(keda.sh/v1alpha1 ScaledObject is not served)) and no custom.metrics.k8s.io adapter: "
        "the check cannot feed a metric of its own pods into that adapter, so scaling "
        "accelerator pods on a custom metric cannot be observed generically")


def test_apiservice_rows() -> None:
    local = apiservice(cm.CUSTOM_GROUP, available="False", message="")
    assert cm.apiservice_rows([KEDA_SVC, local]) == [
        ["v1beta1.custom.metrics.k8s.io", "Local", "False", "-"],
        ["v1beta1.external.metrics.k8s.io", "keda/keda-operator-metrics-apiserver", "True",
         "all checks passed"]]


# --- the workload -----------------------------------------------------------------------------


def test_exposition_is_a_valid_gauge() -> None:
    expo = parse_exposition(cm.exposition(cm.METRIC, 20))
    [sample] = expo.find(cm.METRIC)
    assert sample.value == 20
    assert expo.types[cm.METRIC] == "gauge"
    assert cm.value_document(1.5) == '{"value": 1.5}'


def _in(tmp: Path, command: list[str]) -> list[str]:
    return [part.replace(cm.WEB_ROOT, str(tmp)) for part in command]


def test_write_value_command_replaces_both_files(tmp_path: Path) -> None:
    for value in (cm.HIGH, cm.LOW):
        done = subprocess.run(_in(tmp_path, cm.write_value_command(cm.METRIC, value)),
                              capture_output=True, text=True, check=True)
        assert done.stdout.strip() == cm.WRITTEN
        page = (tmp_path / cm.METRICS_PATH.lstrip("/")).read_text()
        assert parse_exposition(page).find(cm.METRIC)[0].value == value
        assert (tmp_path / cm.VALUE_PATH.lstrip("/")).read_text() == f'{{"value": {value}}}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.txt", "value.json"]


def test_write_value_command_says_nothing_when_it_cannot_write(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    command = [p.replace(cm.WEB_ROOT, str(missing)) for p in
               cm.write_value_command(cm.METRIC, 3)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert cm.WRITTEN not in done.stdout
    assert done.returncode != 0


def test_serve_command_writes_the_start_value_then_execs_httpd(tmp_path: Path) -> None:
    command = _in(tmp_path / "www", cm.serve_command(cm.METRIC, cm.LOW))
    assert command[2].endswith(f"exec httpd -f -p {cm.PORT} -h {tmp_path}/www")
    command[2] = command[2].replace(f"exec httpd -f -p {cm.PORT} -h {tmp_path}/www",
                                    "echo served")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "served"
    assert (tmp_path / "www" / "value.json").read_text() == '{"value": 1}'


@pytest.mark.parametrize("mode", ["device-plugin", "dra"])
def test_exposer_deployment(mode: str) -> None:
    alloc = allocations.Allocation(mode, get_profile("nvidia"), resource="nvidia.com/gpu",
                               device_class="gpu.nvidia.com")
    dep = cm.exposer_deployment("queue-scaler", "ns", alloc, "gpu-1", image="busybox:1.36.1",
                                annotations=cm.scrape_annotations())
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "queue-scaler"}}
    template = dep["spec"]["template"]
    assert template["metadata"] == {
        "labels": {"app": "queue-scaler"},
        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                        "prometheus.io/path": "/metrics.txt"}}
    spec = template["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "gpu-1"}
    assert spec["restartPolicy"] == "Always"
    [ctr] = spec["containers"]
    assert ctr["name"] == "server"
    assert ctr["command"] == cm.serve_command(cm.METRIC, cm.LOW)
    assert ctr["ports"] == [{"containerPort": 8080, "name": "http"}]
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/value.json", "port": 8080}
    if mode == "dra":
        assert ctr["resources"] == {"claims": [{"name": "accel"}]}
        assert spec["resourceClaims"] == [{"name": "accel",
                                           "resourceClaimTemplateName": "one-device"}]
    else:
        assert ctr["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    plain = cm.exposer_deployment("q", "ns", alloc, "gpu-1", image="b")
    assert "annotations" not in plain["spec"]["template"]["metadata"]


def test_service_and_url() -> None:
    svc = cm.exposer_service("queue-scaler", "ns", {"app": "queue-scaler", cm.SOURCE_LABEL: "true"})
    assert svc["spec"] == {"selector": {"app": "queue-scaler",
                                        "aiconformance.io/metric-source": "true"},
                           "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}
    assert cm.service_url("queue-scaler", "ns") == "http://queue-scaler.ns.svc:8080/value.json"
    assert cm.value_url("10.96.4.7") == "http://10.96.4.7:8080/value.json"
    assert cm.value_url("fd00:10:96::4") == "http://[fd00:10:96::4]:8080/value.json"
    assert cm.source_patch() == {"metadata": {
        "labels": {"aiconformance.io/metric-source": "true"},
        "annotations": {"controller.kubernetes.io/pod-deletion-cost": "1000"}}}


def test_scaled_object() -> None:
    obj = cm.scaled_object("queue-scaler", "ns", "queue-scaler",
                           "http://queue-scaler.ns.svc:8080/value.json",
                           hpa_name="queue-scaler-keda")
    spec = obj["spec"]
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    assert obj["kind"] == "ScaledObject"
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "queue-scaler"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 2)
    assert spec["triggers"] == [{
        "type": "metrics-api", "metricType": "AverageValue",
        "metadata": {"url": "http://queue-scaler.ns.svc:8080/value.json", "format": "json",
                     "valueLocation": "value", "targetValue": "5"}}]
    hpa_config = spec["advanced"]["horizontalPodAutoscalerConfig"]
    assert hpa_config["name"] == "queue-scaler-keda"
    assert hpa_config["behavior"] == cm.fast_behavior()


def test_pods_metric_hpa_and_behaviour() -> None:
    hpa = cm.pods_metric_hpa("queue-scaler", "ns", "queue-scaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 2)
    assert hpa["spec"]["metrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": "aic_inference_queue_depth"},
        "target": {"type": "AverageValue", "averageValue": "5"}}}]
    fast = cm.fast_behavior()
    assert fast["scaleUp"] == fast["scaleDown"] == {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}]}
    assert fast["scaleUp"] is not fast["scaleDown"]
    # HIGH drives the HPA past its maximum, LOW down to its minimum
    assert cm.HIGH / cm.TARGET >= 2
    assert cm.LOW / cm.TARGET * 2 <= 1


def test_scrape_object_points_at_the_gauge() -> None:
    prometheus = {"metadata": {"namespace": "monitoring", "name": "k8s"},
                  "spec": {"serviceMonitorSelector": {"matchLabels": {"release": "kps"}},
                           "serviceMonitorNamespaceSelector": {}}}
    sm = cm.scrape_object(plan_service_monitor(prometheus, "ns"), "aic-ns", "ns",
                          {"app": "queue-scaler"})
    assert sm["kind"] == "ServiceMonitor"
    assert sm["metadata"] == {"name": "aic-ns", "namespace": "ns",
                              "labels": {"release": "kps"}}
    assert sm["spec"]["selector"] == {"matchLabels": {"app": "queue-scaler"}}
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics.txt",
                                        "interval": "5s"}]
    vmagent = {"metadata": {"namespace": "vm", "name": "agent"},
               "spec": {"selectAllByDefault": True}}
    scrape = cm.scrape_object(plan_vm_service_scrape(vmagent, "ns"), "aic-ns", "ns",
                              {"app": "queue-scaler"})
    assert scrape["kind"] == "VMServiceScrape"
    assert scrape["spec"]["endpoints"][0]["path"] == "/metrics.txt"


# --- answers read back ----------------------------------------------------------------------

# GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/aic_inference_queue_depth
# (prometheus-adapter), and the v1beta1 shape (metricName instead of metric)
V1BETA2_LIST = {
    "kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "metadata": {},
    "items": [
        {"describedObject": {"kind": "Pod", "namespace": "ns", "name": "queue-scaler-a",
                             "apiVersion": "/v1"},
         "metric": {"name": "aic_inference_queue_depth", "selector": None},
         "timestamp": "2026-05-04T10:01:12Z", "value": "20"},
        {"describedObject": {"kind": "Pod", "namespace": "ns", "name": "queue-scaler-b",
                             "apiVersion": "/v1"},
         "metric": {"name": "aic_inference_queue_depth", "selector": None},
         "timestamp": "2026-05-04T10:01:12Z", "value": "500m"},
    ]}
V1BETA1_LIST = {
    "kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta1",
    "metadata": {"selfLink": "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/pods/%2A/m"},
    "items": [{"describedObject": {"kind": "Pod", "namespace": "ns", "name": "queue-scaler-a",
                                   "apiVersion": "/v1"},
               "metricName": "aic_inference_queue_depth",
               "timestamp": "2026-05-04T10:01:12Z", "value": "1k"},
              {"describedObject": {"kind": "Service", "namespace": "ns", "name": "x"},
               "metricName": "aic_inference_queue_depth", "value": "3"}]}


def test_pod_metric_values() -> None:
    assert cm.pod_metric_values(V1BETA2_LIST) == {"queue-scaler-a": 20.0,
                                                  "queue-scaler-b": 0.5}
    assert cm.pod_metric_values(V1BETA1_LIST) == {"queue-scaler-a": 1000.0}
    assert cm.pod_metric_values({"kind": "MetricValueList", "items": []}) == {}
    with pytest.raises(ValueError, match="not a MetricValueList"):
        cm.pod_metric_values("404 page not found")
    bad = {"items": [{"describedObject": {"kind": "Pod", "name": "p"}, "value": "lots"}]}
    with pytest.raises(ValueError, match="not a quantity: 'lots'"):
        cm.pod_metric_values(bad)


# The HPA KEDA creates (External) and the check's own (Pods), after a scale-up.
KEDA_HPA = {
    "metadata": {"name": "queue-scaler-keda"},
    "spec": {"minReplicas": 1, "maxReplicas": 2, "metrics": [{"type": "External", "external": {
        "metric": {"name": "s0-metric-api-value",
                   "selector": {"matchLabels": {"scaledobject.keda.sh/name": "queue-scaler"}}},
        "target": {"type": "AverageValue", "averageValue": "5"}}}]},
    "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentMetrics": [
        {"type": "External", "external": {"metric": {"name": "s0-metric-api-value"},
                                          "current": {"averageValue": "10"}}}]}}
PODS_HPA = {
    "metadata": {"name": "queue-scaler"},
    "spec": {"minReplicas": 1, "maxReplicas": 2, "metrics": [{"type": "Pods", "pods": {
        "metric": {"name": "aic_inference_queue_depth"},
        "target": {"type": "AverageValue", "averageValue": "5"}}}]},
    "status": {"currentReplicas": 1, "desiredReplicas": 2, "currentMetrics": [
        {"type": "Pods", "pods": {"metric": {"name": "aic_inference_queue_depth"},
                                  "current": {"averageValue": "20"}}}]}}


def test_hpa_rows() -> None:
    assert cm.hpa_row(KEDA_HPA) == ["queue-scaler-keda", "s0-metric-api-value: 10/5", 1, 2,
                                    2, 2]
    assert cm.hpa_row(PODS_HPA) == ["queue-scaler", "aic_inference_queue_depth: 20/5", 1, 2,
                                    1, 2]
    fresh = {"metadata": {"name": "h"}, "spec": PODS_HPA["spec"]}
    assert cm.hpa_replicas(fresh) == (0, 0)
    assert cm.hpa_targets(fresh) == "aic_inference_queue_depth: <unknown>/5"


# --- scaling on CPU -----------------------------------------------------------------------------


def test_fewest_free_takes_the_tightest_node_with_room() -> None:
    assert cm.fewest_free({"gpu-1": 4, "gpu-2": 1, "gpu-3": 0, "gpu-0": 1}) == ("gpu-0", 1)
    with pytest.raises(ValueError, match="empty"):  # nothing free: the check never asks
        cm.fewest_free({"gpu-1": 0})


def test_cpu_hpa_targets_half_a_core_utilisation() -> None:
    hpa = cm.cpu_hpa("inference", "ns", 3)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "inference"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    assert hpa["spec"]["behavior"] == cm.fast_behavior()


@pytest.mark.parametrize(("load", "usage"), [(True, "190m"), (False, "1m")])
def test_burn_deployment_pins_accelerator_replicas(load: bool, usage: str) -> None:
    alloc = allocations.Allocation("device-plugin", get_profile("nvidia"),
                                   resource="nvidia.com/gpu")
    dep = cm.burn_deployment("inference", "ns", alloc, "gpu-1", load, "busybox:1.36.1")
    template = dep["spec"]["template"]
    assert template["metadata"] == {"labels": {"app": "inference"},
                                    "annotations": {"kwok.x-k8s.io/usage-cpu": usage}}
    assert template["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "gpu-1"}
    [ctr] = template["spec"]["containers"]
    assert ctr["command"] == ["sh", "-c", cm.BURN]
    assert ctr["resources"] == {"requests": {"cpu": "100m"},
                                "limits": {"cpu": "200m", "nvidia.com/gpu": "1"}}
    assert cm.idle_patch() == {"metadata": {"annotations": {"kwok.x-k8s.io/usage-cpu": "1m"}}}


def test_burn_stops_at_the_kill_switch(tmp_path: Path) -> None:
    """The load loop ends its busy wait once /tmp/stop exists (here a file under tmp_path)."""
    script = cm.BURN.replace("/tmp/stop", str(tmp_path / "stop")).replace(
        "while :; do sleep 1; done", "echo stopped")
    (tmp_path / "stop").touch()
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True,
                          timeout=10)
    assert done.stdout.strip() == "stopped"


def test_cpu_hpa_row() -> None:
    hpa = {"metadata": {"name": "inference"}, "spec": {"minReplicas": 1, "maxReplicas": 3},
           "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": [
               {"type": "Resource", "resource": {"name": "cpu", "current": {
                   "averageUtilization": 95, "averageValue": "190m"}}}]}}
    assert cm.cpu_hpa_row(hpa) == ["inference", "cpu: 95%/50%", 1, 3, 3, 3]
    fresh = {"metadata": {"name": "inference"}, "spec": {"minReplicas": 1, "maxReplicas": 3}}
    assert cm.cpu_hpa_row(fresh) == ["inference", "cpu: <unknown>%/50%", 1, 3, 0, 0]


REFUSAL = "Insufficient nvidia.com/gpu"


def replica(name: str, node: str = "", message: str = "", deleting: bool = False
            ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-05-04T10:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False",
                                       "reason": "Unschedulable", "message": message}]}
            if message else {"phase": "Running"}}


def test_capacity_enforced_needs_every_unit_bound_and_one_pending_for_it() -> None:
    pending = replica("c", message=f"0/3 nodes are available: 1 {REFUSAL}.")
    pods = {"a": replica("a", "gpu-1"), "b": replica("b", "gpu-1"), "c": pending}
    assert cm.capacity_enforced(pods, 2, REFUSAL)
    assert not cm.capacity_enforced(pods, 3, REFUSAL)
    # Pending for another reason, or a bound replica on its way out, is not capacity
    assert not cm.capacity_enforced({**pods, "c": replica("c", message="Insufficient cpu")},
                                    2, REFUSAL)
    assert not cm.capacity_enforced({**pods, "b": replica("b", "gpu-1", deleting=True)},
                                    2, REFUSAL)
    assert not cm.capacity_enforced({**pods, "d": replica("d", message=REFUSAL)}, 2, REFUSAL)


def test_back_to_one_replica() -> None:
    def hpa(current: int, desired: int) -> dict[str, Any]:
        return {"metadata": {"name": "inference"},
                "status": {"currentReplicas": current, "desiredReplicas": desired}}

    assert cm.back_to_one({"inference": hpa(1, 1)})
    assert not cm.back_to_one({"inference": hpa(2, 1)})
    assert not cm.back_to_one({"inference": hpa(1, 2)})
    assert not cm.back_to_one({})


# --- scaling on a custom metric: the replicas, the node, the waits --------------------------


def test_pod_ready_serves_the_metric() -> None:
    ready = {"metadata": {"name": "a"}, "status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert cm.pod_ready(ready)
    assert not cm.pod_ready({**ready, "metadata": {"name": "a", "deletionTimestamp": "x"}})
    assert not cm.pod_ready({"metadata": {"name": "a"}, "status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}})
    assert not cm.pod_ready({"metadata": {"name": "a"}, "status": {"phase": "Pending"}})


def test_container_node_prefers_real_nodes_then_the_most_free() -> None:
    free = {"kwok-1": 8, "gpu-1": 1, "gpu-2": 2, "gpu-3": 2}
    simulated = {"kwok-1": True, "gpu-1": False, "gpu-2": False, "gpu-3": False}
    assert cm.container_node(free, simulated) == ("gpu-2", 2)
    assert cm.container_node(free, {"kwok-1": True}) == ("kwok-1", 8)


def test_waits_read_the_hpa() -> None:
    assert cm.at_replicas(2)({"queue-scaler-keda": KEDA_HPA})
    assert not cm.at_replicas(2)({"queue-scaler": PODS_HPA})  # 1 current, 2 desired
    assert not cm.at_replicas(1)({"queue-scaler-keda": KEDA_HPA})
    assert cm.hpa_state({"a": KEDA_HPA, "b": PODS_HPA}) == (
        "queue-scaler-keda: s0-metric-api-value: 10/5, replicas 2, desired 2; "
        "queue-scaler: aic_inference_queue_depth: 20/5, replicas 1, desired 2")
    assert cm.hpa_state({}) == "no HPA"
    assert cm.external_metric(KEDA_HPA) == "s0-metric-api-value"
    assert cm.external_metric(PODS_HPA) == ""


def test_conditions_line_says_why_a_scaled_object_is_not_ready() -> None:
    scaled = {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed",
         "message": "error parsing metrics-api metadata"},
        {"type": "Active", "status": "False"}]}}
    assert cm.conditions_line({"queue-scaler": scaled}) == (
        "Ready=False ScaledObjectCheckFailed: error parsing metrics-api metadata; "
        "Active=False : ")
    assert cm.conditions_line({"queue-scaler": {}}) == "no status"


# --- how the two essential checks decide together -------------------------------------------


def _result(name: str, outcome: Outcome, reason: str = "") -> CheckResult:
    return CheckResult(nodeid=f"pytest_aiconformance/checks/test_pod_autoscaling.py::test_{name}",
                       requirement="pod_autoscaling", role=Role.ESSENTIAL, outcome=outcome,
                       reason=reason, junit_name=f"TestPodAutoscaling/{name}", title=name)


@pytest.mark.parametrize(("custom", "status"), [
    (Outcome.PASSED, Status.IMPLEMENTED),
    (Outcome.FAILED, Status.NOT_IMPLEMENTED),
    (Outcome.NOT_OBSERVABLE, Status.NOT_VERIFIED),
    (Outcome.NOT_APPLICABLE, Status.NA),
])
def test_cpu_not_applicable_leaves_the_custom_metrics_check_to_decide(custom: Outcome,
                                                                      status: Status) -> None:
    """No metrics.k8s.io: the CPU check is N/A, and the custom-metrics check decides alone
    (all N/A only when the HPA itself is not served)."""
    [req] = [r for r in load_catalog().requirements("1.35") if r.id == "pod_autoscaling"]
    [verdict] = aggregate([req], [
        _result("cpu", Outcome.NOT_APPLICABLE, "metrics.k8s.io/v1beta1 is not served"),
        _result("custom", custom, "" if custom is Outcome.PASSED else "why")])
    assert verdict.status is status
