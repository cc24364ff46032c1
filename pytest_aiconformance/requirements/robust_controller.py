"""robust_controller's AI operators: their API facts, the objects the check makes, and the
readings of what the API server answers, as pure functions (the check in
checks/test_robust_controller.py drives them). `OPERATORS` is the one registry of the
alternatives; each names its detection and install entry in data/operators.yaml (`operator`).

Each operator is an alternative solution: any one that passes all its checks proves the
requirement. API facts, and where they were read:

- KubeRay (github.com/ray-project/kuberay/ray-operator v1.5): RayCluster `ray.io/v1`; its
  validating webhook (`vraycluster.kb.io`, pkg/webhooks/v1/raycluster_webhook.go) denies two
  worker groups of the same name, which the CRD schema accepts; its pods are labelled
  `ray.io/cluster` and `ray.io/node-type` (head, worker).
- Kubeflow Trainer (github.com/kubeflow/trainer/v2 v2.0.0): TrainJob, TrainingRuntime and
  ClusterTrainingRuntime `trainer.kubeflow.org/v1alpha1`. Its validating webhook
  `validator.trainjob.trainer.kubeflow.org` (pkg/webhooks/trainjob_webhook.go) denies a TrainJob
  whose name is not a DNS-1035 label, e.g. one that starts with a digit: the API server accepts
  such a name for a custom resource (a DNS-1123 subdomain) and a CRD schema cannot constrain
  names. The webhook also looks the referenced runtime up, so the runtime must exist first.
  The controller builds one JobSet (`jobset.x-k8s.io/v1alpha2`) per TrainJob, named like it and
  controlled by it (pkg/runtime/framework/plugins/jobset), and applies it again when it is gone;
  the trainer's Job is the runtime's replicatedJob labelled
  `trainer.kubeflow.org/trainjob-ancestor-step: trainer`, its container `node`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_aiconformance.cluster import workloads
from pytest_aiconformance.cluster.tables import get_table, name
from pytest_aiconformance.cluster.waits import condition_true

Obj = dict[str, Any]

RAY = "ray.io/v1"
TRAINER = "trainer.kubeflow.org/v1alpha1"
JOBSET = "jobset.x-k8s.io/v1alpha2"
TRAINER_ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
TRAINER_NODE = "node"  # the trainer's replicatedJob and container name
# What a TrainJob's trainer node runs; long enough that the TrainJob never finishes while the
# check runs (a finished TrainJob is no longer reconciled).
TRAINER_COMMAND = ["sh", "-c", "echo aic trainer node; sleep 3600"]
# Trainer's webhook denies a TrainJob whose runtime it has not seen yet with these words
# (pkg/runtime/core/trainingruntime.go ValidateObjects).
RUNTIME_NOT_SEEN = "must be created before the TrainJob is created"
NODE_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"},
                  "limits": {"cpu": "100m", "memory": "64Mi"}}

_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Operator:
    """One AI operator: the parameter id of its checks, its main kind and its webhook's rule."""

    name: str
    title: str
    operator: str  # its key in data/operators.yaml
    api: tuple[str, str]  # (apiVersion, kind) of the workload it reconciles
    resource: str  # that kind's resource, as a webhook rule names it

    @property
    def group(self) -> str:
        return self.api[0].split("/", 1)[0]

    def not_installed(self) -> str:
        api, kind = self.api
        return f"{self.title} is not installed ({api} {kind} is not served)"


OPERATORS = (
    Operator("kuberay", "KubeRay", "kuberay", (RAY, "RayCluster"), "rayclusters"),
    Operator("trainer", "Kubeflow Trainer", "kubeflow-trainer", (TRAINER, "TrainJob"),
             "trainjobs"),
)
BY_NAME = {o.name: o for o in OPERATORS}
# Installed with --aic-install when no AI operator is found at all.
DEFAULT = "kuberay"


def none_found() -> str:
    """The failure when no AI operator is installed."""
    return ("no AI operator is installed: "
            + "; ".join(o.not_installed() for o in OPERATORS)
            + "; install one or run with --aic-install")


def validating_webhooks(configs: Iterable[Mapping[str, Any]], group: str,
                        resource: str) -> list[tuple[str, str]]:
    """(configuration, webhook) of every validating webhook with a rule naming the group and
    the resource explicitly (a '*' rule is a policy engine's, not the operator's)."""
    return [
        (str(cfg["metadata"]["name"]), str(wh.get("name", "")))
        for cfg in configs
        for wh in cfg.get("webhooks") or []
        if any(group in (r.get("apiGroups") or []) and resource in (r.get("resources") or [])
               for r in wh.get("rules") or [])
    ]


def denied_by_webhook(message: str, webhooks: Iterable[str]) -> bool:
    """Whether an API server error names one of these admission webhooks as the denier."""
    return "admission webhook" in message and any(f'"{w}"' in message for w in webhooks)


def invalid_trainjob_name(valid: str) -> str:
    """A name the API server accepts for a TrainJob (DNS-1123 subdomain) but Trainer's webhook
    denies (not a DNS-1035 label: it starts with a digit)."""
    bad = f"0{valid}"[:63].rstrip("-")
    if not _DNS1123_SUBDOMAIN.match(bad) or _DNS1035_LABEL.match(bad):
        raise ValueError(f"cannot derive a name Trainer's webhook denies from {valid!r}")
    return bad


def renamed(obj: Obj, new_name: str) -> Obj:
    """A deep copy of the object under another name."""
    out = copy.deepcopy(obj)
    out["metadata"]["name"] = new_name
    return out


# --- KubeRay ---------------------------------------------------------------------------------


def ray_cluster(cluster: str, namespace: str, groups: list[str], image: str) -> Obj:
    """A small RayCluster: one head, one worker per named group."""
    def pod_spec(role: str) -> Obj:
        ctr = workloads.container(f"ray-{role}", ["sleep", "infinity"], image=image,
                                  resources_={"requests": {"cpu": "100m", "memory": "256Mi"},
                                              "limits": {"cpu": "1", "memory": "1Gi"}})
        ctr.pop("command")  # KubeRay generates the ray start command
        spec = workloads.pod("x", namespace, [ctr])["spec"]
        spec.pop("restartPolicy")
        spec.pop("securityContext")
        ctr.pop("securityContext")
        return {"spec": spec}

    return {
        "apiVersion": RAY, "kind": "RayCluster",
        "metadata": {"name": cluster, "namespace": namespace},
        "spec": {
            "headGroupSpec": {"rayStartParams": {}, "template": pod_spec("head")},
            "workerGroupSpecs": [{"groupName": g, "replicas": 1, "minReplicas": 1,
                                  "maxReplicas": 1, "rayStartParams": {},
                                  "template": pod_spec("worker")} for g in groups],
        },
    }


def duplicate_worker_groups(cluster: Obj) -> Obj:
    """The RayCluster with its second worker group named like the first: the CRD schema
    accepts it, KubeRay's webhook denies it."""
    out = copy.deepcopy(cluster)
    groups = out["spec"]["workerGroupSpecs"]
    groups[1]["groupName"] = groups[0]["groupName"]
    return out


def ray_pods_problem(pods: Iterable[Obj]) -> str:
    """Why a ready RayCluster's pods are not one Ready head and one Ready worker ("" when they
    are)."""
    listed = list(pods)
    heads = [p for p in listed if p["metadata"]["labels"].get("ray.io/node-type") == "head"]
    workers = [p for p in listed if p["metadata"]["labels"].get("ray.io/node-type") == "worker"]
    if len(heads) != 1:
        return f"{len(heads)} head pods, expected 1"
    if not all(condition_true(p, "Ready") for p in heads):
        return "the head pod is not Ready"
    if len(workers) != 1:
        return f"{len(workers)} worker pods, expected 1"
    if not all(condition_true(p, "Ready") for p in workers):
        return "the worker pod is not Ready"
    return ""


def has_head_service(services: Iterable[Obj]) -> bool:
    """KubeRay made the head's Service (labelled as the head's, or named <cluster>-head-svc)."""
    return any(s["metadata"]["labels"].get("ray.io/node-type") == "head" or
               s["metadata"]["name"].endswith("head-svc") for s in services)


def training_runtime(name: str, namespace: str, image: str) -> Obj:
    """A namespaced TrainingRuntime: one trainer node (plain ML policy) running `image`."""
    node = workloads.container(TRAINER_NODE, TRAINER_COMMAND, image=image,
                               resources_=NODE_RESOURCES)
    pod_spec = workloads.pod("x", namespace, [node])["spec"]
    return {
        "apiVersion": TRAINER, "kind": "TrainingRuntime",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "mlPolicy": {"numNodes": 1},
            "template": {"spec": {"replicatedJobs": [{
                "name": TRAINER_NODE,
                "template": {
                    "metadata": {"labels": {TRAINER_ANCESTOR_LABEL: "trainer"}},
                    "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}},
                },
            }]}},
        },
    }


def train_job(name: str, namespace: str, runtime: str) -> Obj:
    """A TrainJob that runs the namespaced TrainingRuntime `runtime` as it is."""
    return {
        "apiVersion": TRAINER, "kind": "TrainJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"runtimeRef": {"apiGroup": TRAINER.split("/", 1)[0],
                                "kind": "TrainingRuntime", "name": runtime}},
    }


def controller_problem(child: Mapping[str, Any], owner: Mapping[str, Any]) -> str:
    """Why `child` is not controlled by `owner` (an ownerReference with the owner's
    apiVersion, kind, name and uid and controller: true), or "" when it is."""
    meta = owner["metadata"]
    want = (owner["apiVersion"], owner["kind"], meta["name"], meta.get("uid"))
    refs = child.get("metadata", {}).get("ownerReferences") or []
    for ref in refs:
        if (ref.get("apiVersion"), ref.get("kind"), ref.get("name"), ref.get("uid")) == want:
            if ref.get("controller") is True:
                return ""
            return (f"{child['kind']} {child['metadata']['name']} names {owner['kind']} "
                    f"{meta['name']} as owner but not as its controller")
    found = ", ".join(owner_refs(child)) or "none"
    return (f"{child['kind']} {child['metadata']['name']} is not owned by {owner['kind']} "
            f"{meta['name']} (uid {meta.get('uid')}); its ownerReferences: {found}")


def owner_refs(obj: Mapping[str, Any]) -> list[str]:
    """An object's ownerReferences, one line each."""
    return [f"{r.get('kind')}/{r.get('name')} uid {r.get('uid')}"
            f"{' controller' if r.get('controller') else ''}"
            for r in obj.get("metadata", {}).get("ownerReferences") or []]


def controlled_jobset(job: Obj, old_uid: str = "") -> Callable[[Mapping[str, Obj]], bool]:
    """A watch condition: a JobSet named like the TrainJob, controlled by it (and, after a
    deletion, not the old one)."""
    def ok(jobsets: Mapping[str, Obj]) -> bool:
        return any(o["metadata"].get("uid") != old_uid and not controller_problem(o, job)
                   for o in jobsets.values())
    return ok


def jobset_states(jobsets: Mapping[str, Obj], job: Obj, old_uid: str = "") -> str:
    """Each JobSet's state for a wait that runs out: the deleted one (its uid unchanged),
    not controlled by the TrainJob (why), or controlled."""
    return "; ".join(
        ("the deleted one (uid unchanged)" if old_uid and o["metadata"].get("uid") == old_uid
         else controller_problem(o, job) or "controlled") for o in jobsets.values()) \
        or f"no JobSet {job['metadata']['name']}"


def jobset_table(jobsets: list[Obj]) -> str:
    """JobSets with their uid, creation time and owner references."""
    return get_table(jobsets, [
        ("NAME", name), ("UID", lambda o: o["metadata"].get("uid", "")),
        ("CREATED", lambda o: o["metadata"].get("creationTimestamp", "")),
        ("OWNER REFERENCES", lambda o: "; ".join(owner_refs(o)) or "<none>")])
