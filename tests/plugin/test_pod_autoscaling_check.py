"""The real pod_autoscaling checks against the fake API server: scaling on custom metrics is
essential. An HPA with no custom/external metrics adapter fails the requirement; adapters
the check cannot drive here (KEDA on simulated nodes, a non-KEDA external adapter) leave it
Not verified; a custom metric that never appears fails within the check's deadline. Without
metrics.k8s.io the CPU check is N/A, never a failure."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fakeapi import FakeApiServer, FakeCluster
from test_profile_detection import gpu_node

from conftest import ROOT, base_args
from pytest_aiconformance.requirements import pod_autoscaling

CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_pod_autoscaling.py"
HPA = {"autoscaling/v2": {"horizontalpodautoscalers": ("HorizontalPodAutoscaler", True)}}
KEDA = {"keda.sh/v1alpha1": {"scaledobjects": ("ScaledObject", True)}}
EXTERNAL = {"external.metrics.k8s.io/v1beta1": {
    "externalmetrics": ("ExternalMetricValueList", True)}}
CUSTOM: dict[str, dict[str, tuple[str, bool]]] = {"custom.metrics.k8s.io/v1beta1": {}}
CPU_CASE = "TestPodAutoscaling/HPAScalesAcceleratorPods"
CUSTOM_CASE = "TestPodAutoscaling/HPAScalesOnCustomMetric"


def apiservice(group: str, namespace: str, service: str) -> dict[str, Any]:
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"v1beta1.{group}"},
            "spec": {"group": group, "version": "v1beta1",
                     "service": {"namespace": namespace, "name": service}},
            "status": {"conditions": [{"type": "Available", "status": "True",
                                       "reason": "Passed", "message": "all checks passed"}]}}


def cluster(fake: FakeApiServer, *groups: dict[str, dict[str, tuple[str, bool]]],
            simulated: bool = False) -> FakeCluster:
    """An HPA-serving cluster with one node of two nvidia.com/gpu, plus the given APIs."""
    for extra in (HPA, *groups):
        fake.cluster.extra_groups.update(extra)
    node = gpu_node("gpu-1", {"nvidia.com/gpu": "2"})
    if simulated:
        node["metadata"]["annotations"] = {"kwok.x-k8s.io/node": "fake"}
    fake.cluster.add("nodes", node)
    return fake.cluster


def run(aic: pytest.Pytester) -> tuple[dict[str, Any], dict[str, dict[str, Any]], str]:
    """Both checks of the file; the requirement's verdict and its checks by JUnit name."""
    result = aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", "--aic-timeout-scale", "0.002",
                   "--aic-keep-namespaces", "always", str(CHECK)))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    verdict = next(r for r in data["requirements"] if r["id"] == "pod_autoscaling")
    checks = {c["junit_name"]: c for c in verdict["checks"]}
    return verdict, checks, result.stdout.str()


def test_hpa_without_a_metrics_adapter_is_not_implemented(aic: pytest.Pytester,
                                                          fake: FakeApiServer) -> None:
    """The HPA is served but nothing serves custom or external metrics: the custom-metrics
    half fails (naming what is missing and what provides it), and the CPU check is N/A
    because metrics.k8s.io is not served either."""
    cluster(fake)
    verdict, checks, out = run(aic)
    assert verdict["status"] == "Not Implemented", out
    assert checks[CUSTOM_CASE]["outcome"] == "failed"
    reason = checks[CUSTOM_CASE]["reason"]
    assert "neither custom.metrics.k8s.io (v1beta2, v1beta1) nor " \
           "external.metrics.k8s.io/v1beta1 is served" in reason
    assert "prometheus-adapter" in reason
    assert "KEDA" in reason
    assert "neither custom.metrics.k8s.io" in verdict["reason"]
    assert checks[CPU_CASE]["outcome"] == "not applicable"
    assert "metrics.k8s.io/v1beta1) is not served" in checks[CPU_CASE]["reason"]


def test_keda_on_a_simulated_node_is_not_verified(aic: pytest.Pytester,
                                                  fake: FakeApiServer) -> None:
    """KEDA serves external metrics, but the only accelerator node is simulated: the adapter
    is judged present, and scaling on the pods' own metric is not observable."""
    fc = cluster(fake, KEDA, EXTERNAL, simulated=True)
    fc.add("apiservices", apiservice("external.metrics.k8s.io", "keda",
                                     "keda-operator-metrics-apiserver"))
    verdict, checks, out = run(aic)
    assert verdict["status"] == "Not verified", out
    check = checks[CUSTOM_CASE]
    assert check["outcome"] == "not observable here"
    assert check["reason"].startswith("accelerator node(s) with a free nvidia.com/gpu (gpu-1) "
                                      "are simulated (kwok) and run no containers")
    assert "KEDA: keda.sh/v1alpha1 ScaledObject is served" in check["reason"]
    assert "keda/keda-operator-metrics-apiserver" in check["reason"]
    assert checks[CPU_CASE]["outcome"] == "not applicable"


def test_external_metrics_without_keda_are_not_verified(aic: pytest.Pytester,
                                                        fake: FakeApiServer) -> None:
    """A cloud adapter serves external.metrics.k8s.io: the check cannot feed it a metric of
    its pods, so the requirement is Not verified, never passed."""
    fc = cluster(fake, EXTERNAL)
    fc.add("apiservices", apiservice("external.metrics.k8s.io", "kube-system",
                                     "cloud-metrics-adapter"))
    verdict, checks, out = run(aic)
    assert verdict["status"] == "Not verified", out
    check = checks[CUSTOM_CASE]
    assert check["outcome"] == "not observable here"
    assert check["reason"].startswith("only external metrics are served "
                                      "(external.metrics.k8s.io/v1beta1 (APIService "
                                      "v1beta1.external.metrics.k8s.io -> Service "
                                      "kube-system/cloud-metrics-adapter); no KEDA")
    assert "cannot feed a metric of its own pods" in check["reason"]


def run_deployments(fc: FakeCluster, key: str, obj: dict[str, Any]) -> None:
    """A stand-in Deployment controller and kubelet: one Running, Ready pod per Deployment."""
    if key != "deployments":
        return
    meta = obj["metadata"]
    template = obj["spec"]["template"]
    fc.add("pods", {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"{meta['name']}-7d4b9-x2k8q",
                                 "namespace": meta["namespace"],
                                 "labels": dict(template["metadata"]["labels"])},
                    "spec": {**template["spec"], "nodeName": "gpu-1"},
                    "status": {"phase": "Running",
                               "conditions": [{"type": "Ready", "status": "True"}]}})


def test_custom_metric_that_never_appears_fails_in_time(aic: pytest.Pytester,
                                                        fake: FakeApiServer) -> None:
    """prometheus-adapter serves custom.metrics.k8s.io, the pod serving the gauge runs, but
    the adapter never lists the metric for it: the check fails within its scaled deadline,
    naming the adapter and the metric."""
    fc = cluster(fake, CUSTOM)
    fc.extra_core["services"] = ("Service", True)
    fc.add("apiservices", apiservice("custom.metrics.k8s.io", "monitoring",
                                     "prometheus-adapter"))
    fc.reactors.append(run_deployments)
    started = time.monotonic()
    verdict, checks, out = run(aic)
    assert time.monotonic() - started < 60
    assert verdict["status"] == "Not Implemented", out
    check = checks[CUSTOM_CASE]
    assert check["outcome"] == "failed"
    reason = check["reason"]
    assert reason.startswith(
        "the custom metrics adapter (custom.metrics.k8s.io/v1beta1 (APIService "
        "v1beta1.custom.metrics.k8s.io -> Service monitoring/prometheus-adapter)) did not "
        f"serve {pod_autoscaling.METRIC} for the check's pod queue-scaler-7d4b9-x2k8q within")
    assert f"pods/*/{pod_autoscaling.METRIC} last answered: 404" in reason
    # the pods were annotated for scraping, as no Prometheus Operator or VMAgent was found
    deployment = fc.objects["deployments"]["queue-scaler"]
    assert deployment["spec"]["template"]["metadata"]["annotations"] == \
        pod_autoscaling.scrape_annotations()
    assert checks[CPU_CASE]["outcome"] == "not applicable"
