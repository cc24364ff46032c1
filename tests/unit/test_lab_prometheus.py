"""The lab's Prometheus Operator and Prometheus: the operator's command line, the objects, and
that the suite's own discovery (cluster.monitoring) finds and selects them exactly as it would a
kube-prometheus-stack install (no Go build, no cluster needed)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiconformance_lab import build, nodeimages, procs, prometheus
from aiconformance_lab.errors import LabError
from aiconformance_lab.pki import PKIPaths
from aiconformance_lab.shape import LabShape
from aiconformance_lab.spec import SpecInputs
from aiconformance_lab.statedir import StateDir

from pytest_aiconformance.cluster import monitoring

IMAGE = "aic-lab.local/prometheus:0123456789ab"
RELOADER = "aic-lab.local/prometheus-config-reloader:ba9876543210"
SELECTOR = {"matchLabels": {"release": "aic-lab"}}


def inputs(tmp_path: Path) -> SpecInputs:
    state = StateDir(tmp_path)
    return SpecInputs(LabShape(), {"operator": Path("/b/operator")},
                      {"apiserver": 6443, "prometheus-operator": 31005}, state.pki, state)


def test_operator_argv(tmp_path: Path) -> None:
    pki = PKIPaths(tmp_path / "pki")
    argv = prometheus.operator_argv(
        "/b/operator", port=31005, apiserver="https://10.213.0.1:6443", ca_file=pki.ca_cert,
        cert_file=pki.file("admin.crt"), key_file=pki.file("admin.key"),
        reloader_image=RELOADER)
    assert argv == [
        "/b/operator",
        "--apiserver=https://10.213.0.1:6443",
        f"--ca-file={tmp_path}/pki/ca.crt",
        f"--cert-file={tmp_path}/pki/admin.crt",
        f"--key-file={tmp_path}/pki/admin.key",
        "--web.listen-address=127.0.0.1:31005",
        f"--prometheus-config-reloader={RELOADER}",
        "--prometheus-default-base-image=aic-lab.local/prometheus",
        "--log-format=logfmt",
        "--log-level=info",
    ]
    assert not any(a.startswith("--kubelet-service") for a in argv)  # nothing in kube-system


def test_spec(tmp_path: Path) -> None:
    spec = prometheus.spec(inputs(tmp_path), {"prometheus": IMAGE,
                                              "prometheus-config-reloader": RELOADER})
    assert spec.name == "prometheus-operator"
    assert spec.argv[0] == "/b/operator"
    assert "--apiserver=https://127.0.0.1:6443" in spec.argv  # no real node in this shape
    assert f"--cert-file={tmp_path}/pki/admin.crt" in spec.argv
    assert (spec.health_url, spec.health_tls, spec.port) == (
        "http://127.0.0.1:31005/healthz", "plain", 31005)
    # An inherited kubeconfig would win over the flags: the spec empties it.
    assert spec.env == {"KUBECONFIG": ""}
    # The command line names the state dir (procs.is_ours) and its binary is a lab binary.
    assert any(str(tmp_path) in a for a in spec.argv[1:])
    assert "operator" in procs.LAB_BINARIES
    assert prometheus.PORTS == ("prometheus-operator",)


def test_prometheus_selects_like_kube_prometheus_stack() -> None:
    obj = prometheus.prometheus(IMAGE, "aic-real-0")
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    assert obj["metadata"] == {
        "name": "aic-lab-prometheus", "namespace": "aic-lab-monitoring",
        "labels": {"app": "kube-prometheus-stack-prometheus", "release": "aic-lab",
                   "app.kubernetes.io/managed-by": "aic-lab"}}
    spec = obj["spec"]
    for kind in ("serviceMonitor", "podMonitor", "probe", "rule", "scrapeConfig"):
        assert spec[f"{kind}Selector"] == SELECTOR
        assert spec[f"{kind}NamespaceSelector"] == {}
    assert spec["replicas"] == 1
    assert spec["image"] == IMAGE
    assert spec["version"] == "v3.16.0"
    assert spec["imagePullPolicy"] == "IfNotPresent"
    assert spec["serviceAccountName"] == "aic-lab-prometheus"
    assert (spec["scrapeInterval"], spec["evaluationInterval"]) == ("5s", "5s")
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "aic-real-0"}
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["serviceDiscoveryRole"] == "EndpointSlice"
    assert "portName" not in spec  # the operator's default: "web", prometheus-operated:web
    # The operator v0.85.0's reloader arguments, plus a short watch interval; probes each
    # second (merged into the operator's, whose startup probe ticks every 15 s).
    assert spec["containers"] == [{"name": "config-reloader", "args": [
        "--listen-address=:8080",
        "--reload-url=http://localhost:9090/-/reload",
        "--config-file=/etc/prometheus/config/prometheus.yaml.gz",
        "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
        "--watched-dir=/etc/prometheus/rules/prometheus-aic-lab-prometheus-rulefiles-0",
        "--watch-interval=5s",
    ]}, {"name": "prometheus", "startupProbe": {"periodSeconds": 1, "failureThreshold": 900},
         "readinessProbe": {"periodSeconds": 1}}]


def test_the_suite_finds_and_selects_it() -> None:
    """cluster.monitoring, as ai_service_metrics uses it: the lab's Prometheus is the collector,
    queried at prometheus-operated:web, and the ServiceMonitor the check builds goes beside
    the workload with release=aic-lab, the label the Prometheus selects."""
    obj = prometheus.prometheus(IMAGE, "aic-real-0")
    found = monitoring.choose_monitoring([obj], [])
    assert found.kind == "Prometheus"
    assert found.endpoint is not None
    assert found.endpoint.api_path() == (
        "/api/v1/namespaces/aic-lab-monitoring/services/prometheus-operated:web/proxy"
        "/api/v1/query")
    plan = found.plan("aic-check-1")
    assert (plan.monitor_namespace, plan.monitor_labels, plan.namespace_labels) == (
        "aic-check-1", {"release": "aic-lab"}, {})
    sm = monitoring.service_monitor("aic-x", plan, "aic-check-1", {"app": "a"}, "web",
                                         ["aiconformance.io/run-id"])
    assert sm["metadata"]["labels"] == {"release": "aic-lab"}


def test_objects_and_their_order() -> None:
    objs = prometheus.cluster_objects(IMAGE, "aic-real-0")
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("Namespace", "aic-lab-monitoring"),
        ("ServiceAccount", "aic-lab-prometheus"),
        ("ClusterRole", "aic-lab-prometheus"),
        ("ClusterRoleBinding", "aic-lab-prometheus"),
        ("Prometheus", "aic-lab-prometheus"),
        ("Service", "aic-lab-prometheus"),
        ("ServiceMonitor", "aic-lab-prometheus"),
        ("ServiceMonitor", "aic-dcgm-exporter"),
    ]
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    binding = by[("ClusterRoleBinding", "aic-lab-prometheus")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "aic-lab-prometheus",
                                    "namespace": "aic-lab-monitoring"}]
    rules = by[("ClusterRole", "aic-lab-prometheus")]["rules"]
    assert {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"]} in rules
    svc = by[("Service", "aic-lab-prometheus")]
    assert svc["spec"]["ports"] == [{"name": "http-web", "port": 9090, "targetPort": 9090,
                                     "protocol": "TCP"}]
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "prometheus",
                                       "operator.prometheus.io/name": "aic-lab-prometheus"}
    self_sm = by[("ServiceMonitor", "aic-lab-prometheus")]
    assert self_sm["metadata"]["labels"]["release"] == "aic-lab"
    assert self_sm["spec"] == {
        "selector": {"matchLabels": {"app": "kube-prometheus-stack-prometheus",
                                     "release": "aic-lab", "self-monitor": "true"}},
        "namespaceSelector": {"matchNames": ["aic-lab-monitoring"]},
        "endpoints": [{"port": "http-web", "path": "/metrics", "interval": "5s"}]}
    exporter = by[("ServiceMonitor", "aic-dcgm-exporter")]
    assert exporter["metadata"]["namespace"] == "aic-lab-monitoring"
    assert exporter["metadata"]["labels"]["release"] == "aic-lab"
    assert exporter["spec"] == {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "aic-gpu-exporter",
                                     "app.kubernetes.io/managed-by": "aic-lab"}},
        "namespaceSelector": {"matchNames": ["aic-lab-gpu"]},
        "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "5s"}]}


def test_names_move_every_object() -> None:
    names = prometheus.Names("prom-dev-monitoring", "prom-dev-prometheus", "prom-dev")
    objs = prometheus.cluster_objects(IMAGE, "aic-real-0", names)
    for obj in objs:
        meta = obj["metadata"]
        assert meta.get("namespace", meta["name"]).startswith("prom-dev-") or \
            meta["namespace"] == "prom-dev-monitoring"
        if obj["kind"] in ("Prometheus", "ServiceMonitor"):
            assert meta["labels"]["release"] == "prom-dev"
    prom = next(o for o in objs if o["kind"] == "Prometheus")
    assert prom["spec"]["serviceMonitorSelector"] == {"matchLabels": {"release": "prom-dev"}}


def test_available_condition_counts_for_the_current_generation() -> None:
    def prom(status: str, observed: int) -> dict[str, Any]:
        return {"metadata": {"name": "p", "generation": 2},
                "status": {"conditions": [{"type": "Available", "status": status,
                                           "observedGeneration": observed}]}}

    assert prometheus.prometheus_available([prom("True", 2)], "p")
    assert not prometheus.prometheus_available([prom("True", 1)], "p")
    assert not prometheus.prometheus_available([prom("False", 2)], "p")
    assert not prometheus.prometheus_available([prom("True", 2)], "other")


def test_image_refs(tmp_path: Path) -> None:
    path = tmp_path / "images.json"
    path.write_text(json.dumps({
        "pause": {"ref": "aic-lab.local/pause:1"},
        "prometheus": {"ref": IMAGE},
        "prometheus-config-reloader": {"ref": RELOADER}}))
    assert prometheus.image_refs(path) == {"prometheus": IMAGE,
                                           "prometheus-config-reloader": RELOADER}
    path.write_text(json.dumps({"prometheus": {"ref": IMAGE}}))
    with pytest.raises(LabError, match=r"lacks the image\(s\) prometheus-config-reloader: the "
                                       r"lab's Prometheus needs the Go modules "
                                       r"prometheus, promoperator built$"):
        prometheus.image_refs(path)


def test_images_and_modules_are_registered() -> None:
    prom = nodeimages.spec_for("prometheus")
    assert prom.entrypoint == ("/bin/prometheus",)
    assert prom.modules == ("prometheus",)
    assert not prom.in_suite
    assert not prom.busybox
    reloader = nodeimages.spec_for("prometheus-config-reloader")
    # The operator starts the reloader by this path (pkg/operator/config_reloader.go).
    assert [b.path for b in reloader.binaries] == ["/bin/prometheus-config-reloader"]
    assert reloader.modules == ("promoperator",)
    modules = {m.name: m for m in build.MODULES}
    assert modules["prometheus"].binaries == ("prometheus",)
    assert modules["prometheus"].tags == ("remove_all_sd", "enable_kubernetes_sd")
    assert modules["promoperator"].binaries == ("operator", "prometheus-config-reloader")
    assert modules["promoperator"].manifests == (
        ("crds", "github.com/prometheus-operator/prometheus-operator",
         "jsonnet/prometheus-operator/*-crd.json"),)
    assert build.module_for(prometheus.OPERATOR_BINARY).name == "promoperator"
    assert set(prometheus.MODULES) == {"prometheus", "promoperator"}


def test_specs_follow_the_shape_switch(tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.mkdir()
    (node / "images.json").write_text(json.dumps({
        "prometheus": {"ref": IMAGE}, "prometheus-config-reloader": {"ref": RELOADER}}))
    assert prometheus.specs(inputs(tmp_path)) == []  # no `prometheus` switch on
    # A shape with the switch on (LabShape gets the field with the lab's wiring).
    shape = cast(LabShape, SimpleNamespace(prometheus=True, real_nodes=1))
    off = inputs(tmp_path)
    on = SpecInputs(shape, off.binaries, off.ports, off.pki, off.state)
    (spec,) = prometheus.specs(on)
    assert f"--prometheus-config-reloader={RELOADER}" in spec.argv
    assert "--apiserver=https://10.213.0.1:6443" in spec.argv  # the API server on the bridge


def test_scraped_jobs_are_those_with_a_healthy_target() -> None:
    from aiconformance_lab.prometheus import scraped_jobs

    targets = {"status": "success", "data": {"activeTargets": [
        {"labels": {"job": "aic-dcgm-exporter"}, "health": "unknown"},
        {"labels": {"job": "aic-dcgm-exporter"}, "health": "up"},
        {"labels": {"job": "aic-lab-prometheus"}, "health": "down"},
    ]}}
    assert scraped_jobs(targets) == {"aic-dcgm-exporter"}
    assert scraped_jobs({"data": {"activeTargets": []}}) == set()
    assert scraped_jobs({}) == set()
