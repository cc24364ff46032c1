"""robust_controller's operator logic (pytest_aiconformance.requirements.robust_controller): the
operators' registry against data/operators.yaml, webhook selection, denial reading, KubeRay's
and Trainer's objects, the readings of what KubeRay made, and the controller reference of a
child."""

from __future__ import annotations

import re

import pytest

from pytest_aiconformance.cluster.operators import load_operator_specs
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


# --- the registry ----------------------------------------------------------------------------


def test_every_operator_names_its_operators_yaml_entry_and_api_group() -> None:
    """The registry's facts and operators.yaml's (detection, install) agree: the entry exists
    and the operator behind the workload's API group is found by that group."""
    specs = load_operator_specs()
    assert [o.name for o in AO.OPERATORS] == ["kuberay", "trainer"]
    for op in AO.OPERATORS:
        assert op.group in specs[op.operator].api_groups, op.name
        assert f"{op.resource}.{op.group}" in specs[op.operator].crds, op.name
    assert AO.BY_NAME[AO.DEFAULT] is AO.OPERATORS[0]


# --- KubeRay ---------------------------------------------------------------------------------


def test_ray_cluster_and_its_invalid_twin() -> None:
    valid = AO.ray_cluster("rc-webhook", "ns", ["workers-a", "workers-b"], "rayproject/ray:2.9")
    assert (valid["apiVersion"], valid["kind"], valid["metadata"]) == (
        "ray.io/v1", "RayCluster", {"name": "rc-webhook", "namespace": "ns"})
    groups = valid["spec"]["workerGroupSpecs"]
    assert [(g["groupName"], g["replicas"], g["minReplicas"], g["maxReplicas"])
            for g in groups] == [("workers-a", 1, 1, 1), ("workers-b", 1, 1, 1)]
    head = valid["spec"]["headGroupSpec"]["template"]["spec"]
    [ctr] = head["containers"]
    # KubeRay writes the ray start command and its own security settings
    assert (ctr["name"], ctr["image"]) == ("ray-head", "rayproject/ray:2.9")
    assert "command" not in ctr
    assert "securityContext" not in ctr
    assert "securityContext" not in head
    assert "restartPolicy" not in head
    invalid = AO.duplicate_worker_groups(valid)
    assert [g["groupName"] for g in invalid["spec"]["workerGroupSpecs"]] == [
        "workers-a", "workers-a"]
    assert [g["groupName"] for g in groups] == ["workers-a", "workers-b"]  # a copy


def ray_pod(name: str, node_type: str, ready: bool = True) -> dict:
    return {"metadata": {"name": name, "labels": {"ray.io/cluster": "rc",
                                                  "ray.io/node-type": node_type}},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_ray_pods_problem() -> None:
    head, worker = ray_pod("rc-head-x", "head"), ray_pod("rc-workers-y", "worker")
    assert AO.ray_pods_problem([head, worker]) == ""
    assert AO.ray_pods_problem([worker]) == "0 head pods, expected 1"
    assert AO.ray_pods_problem([ray_pod("rc-head-x", "head", False), worker]) == (
        "the head pod is not Ready")
    assert AO.ray_pods_problem([head, worker, ray_pod("rc-workers-z", "worker")]) == (
        "2 worker pods, expected 1")
    assert AO.ray_pods_problem([head, ray_pod("rc-workers-y", "worker", False)]) == (
        "the worker pod is not Ready")


def test_head_service_by_label_or_name() -> None:
    def svc(name: str, labels: dict) -> dict:
        return {"metadata": {"name": name, "labels": labels}}

    assert AO.has_head_service([svc("rc-head-svc", {"ray.io/cluster": "rc"})])
    assert AO.has_head_service([svc("custom", {"ray.io/node-type": "head"})])
    assert not AO.has_head_service([svc("rc-serve-svc", {"ray.io/node-type": "worker"})])
    assert not AO.has_head_service([])


# --- Trainer's JobSet ------------------------------------------------------------------------


def test_renamed_is_a_copy() -> None:
    job = AO.train_job("tj-webhook", "ns", "rt")
    bad = AO.renamed(job, "0tj-webhook")
    assert bad["metadata"] == {"name": "0tj-webhook", "namespace": "ns"}
    assert job["metadata"]["name"] == "tj-webhook"
    assert bad["spec"] == job["spec"]


def test_controlled_jobset_and_its_state() -> None:
    mine = {"kind": "JobSet", "metadata": {"name": "tj", "uid": "s-1", "ownerReferences": [REF]}}
    stray = {"kind": "JobSet", "metadata": {"name": "tj", "uid": "s-2", "ownerReferences": []}}
    assert AO.controlled_jobset(JOB)({"tj": mine})
    assert not AO.controlled_jobset(JOB)({"tj": stray})
    assert not AO.controlled_jobset(JOB)({})
    # after the deletion, the old JobSet (its uid) does not count
    assert not AO.controlled_jobset(JOB, "s-1")({"tj": mine})
    assert AO.jobset_states({"tj": mine}, JOB) == "controlled"
    assert AO.jobset_states({"tj": mine}, JOB, "s-1") == "the deleted one (uid unchanged)"
    assert AO.jobset_states({"tj": stray}, JOB, "s-1") == (
        "JobSet tj is not owned by TrainJob tj (uid u-1); its ownerReferences: none")
    assert AO.jobset_states({}, JOB) == "no JobSet tj"


def test_jobset_table() -> None:
    jobset = {"metadata": {"name": "tj", "uid": "s-2", "creationTimestamp": "2026-05-04T10:00:00Z",
                           "ownerReferences": [REF]}}
    assert AO.jobset_table([jobset]).splitlines() == [
        "NAME   UID   CREATED                OWNER REFERENCES",
        "tj     s-2   2026-05-04T10:00:00Z   TrainJob/tj uid u-1 controller"]
    orphan = {"metadata": {"name": "tj", "uid": "s-3"}}
    assert AO.jobset_table([orphan]).splitlines()[1] == "tj     s-3   <none>    <none>"

