"""The real robust_controller presence check against the fake API server: the operator behind
ray.io is found through the webhook that names the group (any release name or namespace, or a
URL for a process outside the cluster), and CRDs alone do not pass."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakeapi import FakeApiServer

from conftest import ROOT, base_args

CHECK = ROOT / "conformance_tests" / "test_robust_controller.py"
RAY_CRDS = ("rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io")
ADMISSION = "admissionregistration.k8s.io/v1"


def serve_kuberay_apis(fake: FakeApiServer) -> None:
    """ray.io and the admission API served, the three Ray CRDs Established, Services served."""
    fake.cluster.extra_groups["ray.io/v1"] = {
        "rayclusters": ("RayCluster", True), "rayjobs": ("RayJob", True),
        "rayservices": ("RayService", True)}
    fake.cluster.extra_groups[ADMISSION] = {
        "validatingwebhookconfigurations": ("ValidatingWebhookConfiguration", False),
        "mutatingwebhookconfigurations": ("MutatingWebhookConfiguration", False)}
    fake.cluster.extra_core["services"] = ("Service", True)
    for crd in RAY_CRDS:
        fake.cluster.add("customresourcedefinitions", {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": crd}, "spec": {"group": "ray.io"},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}})


def webhook_config(name: str, webhook: str, client: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": ADMISSION, "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": webhook, "clientConfig": client,
                          "rules": [{"apiGroups": ["ray.io"], "apiVersions": ["v1"],
                                     "operations": ["CREATE", "UPDATE"],
                                     "resources": ["rayclusters"]}]}]}


def add_webhook(fake: FakeApiServer, config: dict[str, Any]) -> None:
    fake.cluster.add(f"validatingwebhookconfigurations.{ADMISSION.split('/')[0]}", config)


def vendor_operator(fake: FakeApiServer, *, ready: bool) -> None:
    """KubeRay as a vendor chart installs it: another release name, namespace and labels."""
    labels = {"app": "vendor-ray-ctl"}
    fake.cluster.add("deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ray-controller", "namespace": "vendor-ai", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}}},
        "status": {"readyReplicas": 1 if ready else 0}})
    fake.cluster.add("pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ray-controller-7d9f-x2k4p", "namespace": "vendor-ai",
                     "labels": labels},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})
    fake.cluster.add("services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "ray-webhook", "namespace": "vendor-ai"},
        "spec": {"selector": labels, "ports": [{"port": 443, "targetPort": 9443}]}})
    add_webhook(fake, webhook_config(
        "vendor-ray-validation", "vraycluster.vendor.example",
        {"service": {"namespace": "vendor-ai", "name": "ray-webhook", "port": 443}}))


def run(aic: pytest.Pytester) -> tuple[dict[str, Any], str]:
    """Run only the presence check; its record and its evidence page."""
    aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", f"{CHECK}::test_operator_installed"))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    verdict = next(r for r in data["requirements"] if r["id"] == "robust_controller")
    [check] = verdict["checks"]
    page = aic.path / "report" / check["evidence_file"]
    return check, page.read_text()


def test_crds_alone_do_not_pass(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    serve_kuberay_apis(fake)
    check, _ = run(aic)
    assert check["outcome"] == "failed"
    assert check["reason"] == (
        "CRDs rayclusters.ray.io, rayjobs.ray.io, rayservices.ray.io are Established but no "
        "operator was found behind them: no ValidatingWebhookConfiguration or "
        "MutatingWebhookConfiguration has a rule for API group ray.io; no Deployment labelled "
        "app.kubernetes.io/name=kuberay-operator")


def test_operator_under_another_name_and_namespace(aic: pytest.Pytester,
                                                    fake: FakeApiServer) -> None:
    serve_kuberay_apis(fake)
    vendor_operator(fake, ready=True)
    check, page = run(aic)
    assert check["outcome"] == "passed", page
    assert ("operator in the cluster: ValidatingWebhookConfiguration vendor-ray-validation "
            "webhook vraycluster.vendor.example calls service vendor-ai/ray-webhook (selector "
            "app=vendor-ray-ctl) -> Deployment vendor-ai/ray-controller 1/1 Ready; 1 of 1 pods "
            "Ready") in page
    assert "vendor-ai/ray-controller-7d9f-x2k4p   True" in page


def test_webhook_service_without_ready_pod_fails(aic: pytest.Pytester,
                                                 fake: FakeApiServer) -> None:
    serve_kuberay_apis(fake)
    vendor_operator(fake, ready=False)
    check, _ = run(aic)
    assert check["outcome"] == "failed"
    assert check["reason"] == (
        "CRDs rayclusters.ray.io, rayjobs.ray.io, rayservices.ray.io are Established but no "
        "operator was found behind them: ValidatingWebhookConfiguration vendor-ray-validation "
        "webhook vraycluster.vendor.example calls service vendor-ai/ray-webhook (selector "
        "app=vendor-ray-ctl) -> Deployment vendor-ai/ray-controller 0/1 Ready; 0 of 1 pods "
        "Ready; no Deployment labelled app.kubernetes.io/name=kuberay-operator")


def test_webhook_to_a_missing_service_quotes_the_api_server(aic: pytest.Pytester,
                                                            fake: FakeApiServer) -> None:
    serve_kuberay_apis(fake)
    add_webhook(fake, webhook_config(
        "ray-validation", "vraycluster.kb.io",
        {"service": {"namespace": "ray", "name": "gone-webhook", "port": 443}}))
    check, _ = run(aic)
    assert check["outcome"] == "failed"
    assert ("ValidatingWebhookConfiguration ray-validation webhook vraycluster.kb.io calls "
            'service ray/gone-webhook: services "gone-webhook" not found') in check["reason"]


def test_url_webhook_is_an_operator_outside_the_cluster(aic: pytest.Pytester,
                                                        fake: FakeApiServer) -> None:
    serve_kuberay_apis(fake)
    url = "https://localhost:9443/validate-ray-io-v1-raycluster"
    add_webhook(fake, webhook_config("aic-lab-kuberay", "vraycluster.kb.io", {"url": url}))
    check, page = run(aic)
    assert check["outcome"] == "passed", page
    assert ("operator outside the cluster: ValidatingWebhookConfiguration aic-lab-kuberay "
            f"webhook vraycluster.kb.io calls {url}") in page


def test_wildcard_policy_webhook_is_not_the_operator(aic: pytest.Pytester,
                                                     fake: FakeApiServer) -> None:
    """A policy engine's webhook on every group ('*') does not stand for the Ray operator."""
    serve_kuberay_apis(fake)
    policy = webhook_config("kyverno-resource-validating-webhook-cfg", "validate.kyverno.svc",
                            {"url": "https://kyverno.example/validate"})
    policy["webhooks"][0]["rules"][0]["apiGroups"] = ["*"]
    add_webhook(fake, policy)
    check, _ = run(aic)
    assert check["outcome"] == "failed"
    assert "no ValidatingWebhookConfiguration or MutatingWebhookConfiguration has a rule " \
           "for API group ray.io" in check["reason"]
