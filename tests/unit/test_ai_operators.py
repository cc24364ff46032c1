"""robust_controller's operator logic: webhook selection, denial reading, Trainer's objects and
the controller reference of a child."""

from __future__ import annotations

import re

import pytest

from pytest_aiconformance.requirements import robust_controller as AO

# What the lab's API server answered to a dry run of a TrainJob named 0tj-webhook (Trainer
# v2.0.0's webhook behind it, Kubernetes v1.35.4).
TRAINER_DENIAL = (
    'admission webhook "validator.trainjob.trainer.kubeflow.org" denied the request: '
    'metadata.name: Invalid value: "0tj-webhook": a DNS-1035 label must consist of lower case '
    "alphanumeric characters or '-', start with an alphabetic character, and end with an "
    "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
    "'[a-z]([-a-z0-9]*[a-z0-9])?')")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def config(name: str, webhook: str, groups: list[str], resources: list[str]) -> dict:
    return {"metadata": {"name": name}, "webhooks": [{
        "name": webhook, "rules": [{"apiGroups": groups, "resources": resources}]}]}


def test_validating_webhooks_name_the_group_and_resource() -> None:
    configs = [
        config("validator.trainer.kubeflow.org", "validator.trainjob.trainer.kubeflow.org",
               ["trainer.kubeflow.org"], ["trainjobs"]),
        config("validator.trainer.kubeflow.org", "validator.trainingruntime.trainer.kubeflow.org",
               ["trainer.kubeflow.org"], ["trainingruntimes"]),
        config("kyverno", "validate.kyverno.svc", ["*"], ["*"]),  # a policy engine's
        {"metadata": {"name": "empty"}},
    ]
    assert AO.validating_webhooks(configs, "trainer.kubeflow.org", "trainjobs") == [
        ("validator.trainer.kubeflow.org", "validator.trainjob.trainer.kubeflow.org")]
    assert AO.validating_webhooks(configs, "ray.io", "rayclusters") == []


def test_denial_must_name_the_operators_webhook() -> None:
    webhooks = ["validator.trainjob.trainer.kubeflow.org"]
    assert AO.denied_by_webhook(TRAINER_DENIAL, webhooks)
    assert not AO.denied_by_webhook(TRAINER_DENIAL, ["vraycluster.kb.io"])
    # A schema rejection is no webhook's denial.
    assert not AO.denied_by_webhook(
        'TrainJob.trainer.kubeflow.org "x" is invalid: spec.runtimeRef: Required value',
        webhooks)


@pytest.mark.parametrize("name", ["tj-webhook", "a", "x" * 63])
def test_invalid_trainjob_name_passes_the_api_server_not_the_webhook(name: str) -> None:
    bad = AO.invalid_trainjob_name(name)
    assert DNS1123.match(bad)
    assert len(bad) <= 63
    assert not DNS1035.match(bad)


def test_trainjob_runs_the_checks_own_runtime() -> None:
    runtime = AO.training_runtime("aic-runtime", "ns", "busybox:1")
    job = AO.train_job("tj", "ns", "aic-runtime")
    assert job["spec"]["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org",
                                         "kind": "TrainingRuntime", "name": "aic-runtime"}
    [rjob] = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert rjob["name"] == "node"
    assert rjob["template"]["metadata"]["labels"] == {
        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}
    pod = rjob["template"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["node"]
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["restartPolicy"] == "Never"


def jobset(refs: list[dict]) -> dict:
    return {"kind": "JobSet", "metadata": {"name": "tj", "ownerReferences": refs}}


JOB = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
       "metadata": {"name": "tj", "uid": "u-1"}}
REF = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "name": "tj",
       "uid": "u-1", "controller": True, "blockOwnerDeletion": True}


def test_controller_reference() -> None:
    assert AO.controller_problem(jobset([REF]), JOB) == ""
    assert AO.controller_problem(jobset([{**REF, "controller": False}]), JOB) == (
        "JobSet tj names TrainJob tj as owner but not as its controller")
    # An earlier TrainJob of the same name (another uid) is not this one.
    assert AO.controller_problem(jobset([{**REF, "uid": "u-0"}]), JOB) == (
        "JobSet tj is not owned by TrainJob tj (uid u-1); its ownerReferences: "
        "TrainJob/tj uid u-0 controller")
    assert AO.controller_problem(jobset([]), JOB) == (
        "JobSet tj is not owned by TrainJob tj (uid u-1); its ownerReferences: none")


def test_none_found_names_every_operator() -> None:
    assert AO.none_found() == (
        "no AI operator is installed: KubeRay is not installed (ray.io/v1 RayCluster is not "
        "served); Kubeflow Trainer is not installed (trainer.kubeflow.org/v1alpha1 TrainJob is "
        "not served); install one or run with --aic-install")
