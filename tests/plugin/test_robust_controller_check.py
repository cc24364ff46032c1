"""The real robust_controller checks against the fake API server.

Presence: the operator behind ray.io is found through the webhook that names the group (any
release name or namespace, or a URL for a process outside the cluster), and CRDs alone do not
pass. Operation, with Kubeflow Trainer simulated (an admission hook for its webhook, reactors
for its controller): Trainer alone proves the requirement with KubeRay not applicable, and each
of its essential checks fails where the simulated operator misbehaves."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from fakeapi import FakeApiServer

from conftest import ROOT, base_args

CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_robust_controller.py"
RAY_CRDS = ("rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io")
ADMISSION = "admissionregistration.k8s.io/v1"


def serve_operator_apis(fake: FakeApiServer, group: str, crds: tuple[str, ...]) -> None:
    """The admission API and Services served, and the operator's CRDs of `group` Established
    (its own group versions are the caller's)."""
    fake.cluster.extra_groups[ADMISSION] = {
        "validatingwebhookconfigurations": ("ValidatingWebhookConfiguration", False),
        "mutatingwebhookconfigurations": ("MutatingWebhookConfiguration", False)}
    fake.cluster.extra_core["services"] = ("Service", True)
    for crd in crds:
        fake.cluster.add("customresourcedefinitions", {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": crd}, "spec": {"group": group},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}})


def serve_kuberay_apis(fake: FakeApiServer) -> None:
    """ray.io and the admission API served, the three Ray CRDs Established, Services served."""
    fake.cluster.extra_groups["ray.io/v1"] = {
        "rayclusters": ("RayCluster", True), "rayjobs": ("RayJob", True),
        "rayservices": ("RayService", True)}
    serve_operator_apis(fake, "ray.io", RAY_CRDS)


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
                   "--aic-version", "1.35", f"{CHECK}::test_operator_installed[kuberay]"))
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


# --- Kubeflow Trainer, simulated ---------------------------------------------------------------

TRAINER = "trainer.kubeflow.org/v1alpha1"
JOBSET = "jobset.x-k8s.io/v1alpha2"
TRAINER_CRDS = ("trainjobs.trainer.kubeflow.org", "trainingruntimes.trainer.kubeflow.org",
                "clustertrainingruntimes.trainer.kubeflow.org")
TRAINJOBS = "trainjobs.trainer.kubeflow.org"
JOBSETS = "jobsets.jobset.x-k8s.io"
TRAINJOB_WEBHOOK = "validator.trainjob.trainer.kubeflow.org"
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class SimTrainer:
    """Kubeflow Trainer as the API server sees it: its webhook denies TrainJob names that are
    not DNS-1035 labels; its controller makes a JobSet per TrainJob, controlled by it, and
    (when it repairs) makes it again when it is deleted."""

    def __init__(self, *, denies: bool = True, controller: bool = True,
                 repairs: bool = True) -> None:
        self.denies, self.controller, self.repairs = denies, controller, repairs

    def install(self, fake: FakeApiServer) -> None:
        fake.cluster.extra_groups[TRAINER] = {
            "trainjobs": ("TrainJob", True), "trainingruntimes": ("TrainingRuntime", True),
            "clustertrainingruntimes": ("ClusterTrainingRuntime", False)}
        fake.cluster.extra_groups[JOBSET] = {"jobsets": ("JobSet", True)}
        serve_operator_apis(fake, "trainer.kubeflow.org", TRAINER_CRDS)
        config = webhook_config("validator.trainer.kubeflow.org", TRAINJOB_WEBHOOK,
                                {"url": "https://localhost:40123/validate-trainer-kubeflow-org-"
                                        "v1alpha1-trainjob"})
        config["webhooks"][0]["rules"][0].update(apiGroups=["trainer.kubeflow.org"],
                                                 apiVersions=["v1alpha1"], resources=["trainjobs"])
        add_webhook(fake, config)
        fake.cluster.admission.append(self.admit)
        fake.cluster.reactors.append(self.react)
        fake.cluster.delete_reactors.append(self.deleted)

    def admit(self, _cluster: Any, key: str, obj: dict[str, Any]) -> tuple[int, str] | None:
        name = obj["metadata"]["name"]
        if key != TRAINJOBS or not self.denies or DNS1035.match(name):
            return None
        return 403, (f'admission webhook "{TRAINJOB_WEBHOOK}" denied the request: '
                     f'metadata.name: Invalid value: "{name}": a DNS-1035 label must consist of '
                     "lower case alphanumeric characters or '-', start with an alphabetic "
                     "character, and end with an alphanumeric character")

    def jobset(self, cluster: Any, job: dict[str, Any]) -> None:
        meta = job["metadata"]
        ref = {"apiVersion": TRAINER, "kind": "TrainJob", "name": meta["name"],
               "uid": meta["uid"], "blockOwnerDeletion": True}
        if self.controller:
            ref["controller"] = True
        cluster.add(JOBSETS, {
            "apiVersion": JOBSET, "kind": "JobSet",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "uid": str(uuid.uuid4()), "ownerReferences": [ref]},
            "spec": {"replicatedJobs": [{"name": "node"}]}})

    def react(self, cluster: Any, key: str, obj: dict[str, Any]) -> None:
        if key == TRAINJOBS:
            obj["metadata"]["uid"] = str(uuid.uuid4())
            self.jobset(cluster, obj)

    def deleted(self, cluster: Any, key: str, obj: dict[str, Any]) -> None:
        job = cluster.objects.get(TRAINJOBS, {}).get(obj["metadata"]["name"])
        if key == JOBSETS and self.repairs and job is not None:
            self.jobset(cluster, job)


def run_all(aic: pytest.Pytester) -> dict[str, Any]:
    """Run every robust_controller check (short waits; namespaces kept: the fake deletes no
    pod collections); the requirement's verdict."""
    aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", "--aic-timeout-scale", "0.03",
                   "--aic-keep-namespaces", "always", str(CHECK)))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    return next(r for r in data["requirements"] if r["id"] == "robust_controller")


def outcomes(verdict: dict[str, Any]) -> dict[str, str]:
    return {c["junit_name"].removeprefix("TestRobustController/"): c["outcome"]
            for c in verdict["checks"]}


def reason(verdict: dict[str, Any], case: str) -> str:
    """The full reason of one check (the verdict's own reason is shortened)."""
    return next(c["reason"] for c in verdict["checks"]
                if c["junit_name"] == f"TestRobustController/{case}")


def test_trainer_alone_proves_the_requirement(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    SimTrainer().install(fake)
    verdict = run_all(aic)
    assert verdict["status"] == "Implemented", verdict
    assert "with solution trainer" in verdict["reason"], verdict["reason"]
    got = outcomes(verdict)
    assert {k: v for k, v in got.items() if k.endswith("/trainer")} == {
        "OperatorInstalled/trainer": "passed", "WebhookDeniesInvalid/trainer": "passed",
        "WorkloadReconciled/trainer": "passed", "ChildRepaired/trainer": "passed"}
    assert {v for k, v in got.items() if not k.endswith("/trainer")} == {"not applicable"}
    assert ("Solution kuberay is not applicable: KubeRay is not installed (ray.io/v1 RayCluster "
            "is not served); Kubeflow Trainer is.") in verdict["notes"]
    page = (aic.path / "report" / next(
        c["evidence_file"] for c in verdict["checks"]
        if c["junit_name"].endswith("ChildRepaired/trainer"))).read_text()
    assert "not judged here" in page  # the JobSet controller's part is said to be out of scope
    assert "TrainJob/tj uid" in page


def test_trainer_that_does_not_repair_fails_the_repair(aic: pytest.Pytester,
                                                       fake: FakeApiServer) -> None:
    SimTrainer(repairs=False).install(fake)
    verdict = run_all(aic)
    assert verdict["status"] == "Partially Implemented", verdict
    assert outcomes(verdict)["ChildRepaired/trainer"] == "failed"
    why = reason(verdict, "ChildRepaired/trainer")
    assert why.startswith("timed out after 4s waiting for Trainer to recreate JobSet tj (a new "
                          "uid) controlled by TrainJob tj"), why
    assert "last seen: no JobSet tj" in why, why


def test_jobset_not_controlled_by_the_trainjob_fails(aic: pytest.Pytester,
                                                     fake: FakeApiServer) -> None:
    SimTrainer(controller=False).install(fake)
    verdict = run_all(aic)
    got = outcomes(verdict)
    assert got["WorkloadReconciled/trainer"] == "failed"
    assert got["WebhookDeniesInvalid/trainer"] == "passed"
    assert "last seen: JobSet tj names TrainJob tj as owner but not as its controller" in \
        reason(verdict, "WorkloadReconciled/trainer")


def test_trainjob_webhook_that_admits_a_bad_name_fails(aic: pytest.Pytester,
                                                       fake: FakeApiServer) -> None:
    SimTrainer(denies=False).install(fake)
    verdict = run_all(aic)
    assert outcomes(verdict)["WebhookDeniesInvalid/trainer"] == "failed"
    assert verdict["status"] == "Partially Implemented"
    assert reason(verdict, "WebhookDeniesInvalid/trainer") == (
        "a TrainJob named 0tj-webhook (not a DNS-1035 label; the API server accepts it for "
        "custom resources) was accepted: the operator's webhook did not deny it")


def test_no_ai_operator_fails_naming_both(aic: pytest.Pytester) -> None:
    verdict = run_all(aic)
    assert verdict["status"] == "Not Implemented"
    assert set(outcomes(verdict).values()) == {"failed"}
    assert reason(verdict, "WebhookDeniesInvalid/trainer") == (
        "no AI operator is installed: KubeRay is not installed (ray.io/v1 RayCluster is not "
        "served); Kubeflow Trainer is not installed (trainer.kubeflow.org/v1alpha1 TrainJob is "
        "not served); install one or run with --aic-install")
