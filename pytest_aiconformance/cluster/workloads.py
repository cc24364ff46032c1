"""Builders for the workloads checks create: restricted pods that request accelerators.

Pods are plain dicts so that evidence can show them as YAML. Every pod tolerates the taints
accelerator nodes carry: the vendors' usual ones (the profiles' table), the ones the session
found on this cluster's accelerator nodes (discovery hands them over), and kwok's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_aiconformance.cluster.profiles import accelerator_tolerations

# Simulated (kwok) nodes carry this taint; vendors' accelerator taints come from the profiles.
SIMULATED_NODE_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists",
                             "effect": "NoSchedule"}
# Taints that report a node's condition or lifecycle, not a pool's policy: a pod must never
# tolerate them (it would land on a node that is not ready, cordoned or being removed).
_CONDITION_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/",
                             "ToBeDeletedByClusterAutoscaler",
                             "DeletionCandidateOfClusterAutoscaler", "karpenter.sh/disrupt")


def toleration_for(taint: Mapping[str, Any]) -> dict[str, str] | None:
    """The toleration of exactly this taint (key, value, effect); None for condition taints."""
    key = str(taint.get("key", ""))
    if not key or key.startswith(_CONDITION_TAINT_PREFIXES):
        return None
    tol = {"key": key, "operator": "Exists"}
    if taint.get("value"):
        tol = {"key": key, "operator": "Equal", "value": str(taint["value"])}
    if taint.get("effect"):
        tol["effect"] = str(taint["effect"])
    return tol


def tolerations_for(taints: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Tolerations of these taints (the accelerator nodes' ones, from discovery)."""
    return [t for t in (toleration_for(taint) for taint in taints) if t is not None]


def merge_tolerations(*groups: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """The tolerations of every group, each once, in order."""
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for tol in (t for group in groups for t in group):
        seen.setdefault(tuple(sorted(tol.items())), dict(tol))
    return list(seen.values())


def tolerations() -> list[dict[str, str]]:
    """What every pod tolerates as built: the profiles' taints and kwok's (the run context
    adds the taints found on the cluster's accelerator nodes when it creates the pod)."""
    return merge_tolerations(accelerator_tolerations(), [SIMULATED_NODE_TOLERATION])

RESTRICTED_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def container(name: str, command: list[str], *, image: str,
              resources_: dict[str, Any] | None = None,
              claims: list[str] | None = None, env: dict[str, str] | None = None,
              restricted: bool = True) -> dict[str, Any]:
    """A container of a pinned image (`aic_settings.image(key)`), restricted by default."""
    spec: dict[str, Any] = {"name": name, "image": image, "command": command}
    if restricted:
        spec["securityContext"] = copy.deepcopy(RESTRICTED_CONTAINER)
    if resources_:
        spec["resources"] = copy.deepcopy(resources_)
    if claims:
        spec.setdefault("resources", {})["claims"] = [{"name": c} for c in claims]
    if env:
        spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return spec


def pod(name: str, namespace: str, containers: list[dict[str, Any]], *,
        claim_templates: dict[str, str] | None = None, node_name: str | None = None,
        node_selector: dict[str, str] | None = None, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None, restart_policy: str = "Never",
        runtime_class: str | None = None, scheduler_name: str | None = None) -> dict[str, Any]:
    """A pod with restricted security settings and accelerator tolerations."""
    spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 0,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "tolerations": tolerations(),
        "containers": containers,
    }
    if claim_templates:
        spec["resourceClaims"] = [
            {"name": n, "resourceClaimTemplateName": t} for n, t in claim_templates.items()
        ]
    if node_name:
        spec["nodeName"] = node_name
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def deployment(pod_obj: dict[str, Any]) -> dict[str, Any]:
    """One replica of ``pod_obj`` as a Deployment of the same name, selecting its pods by
    ``app=<name>`` (the label the pod must carry): for checks whose workload must come back
    when a pod goes (scaling, serving) rather than run once."""
    meta = pod_obj["metadata"]
    name = meta["name"]
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if meta.get("annotations"):
        template_meta["annotations"] = meta["annotations"]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": template_meta, "spec": pod_obj["spec"]}}}


def claim_template(name: str, namespace: str, device_class: str,
                   count: int = 1) -> dict[str, Any]:
    """A resource.k8s.io/v1 ResourceClaimTemplate asking for `count` devices of a class."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"spec": {"devices": {"requests": [{
            "name": "accel",
            "exactly": {"deviceClassName": device_class, "allocationMode": "ExactCount",
                        "count": count},
        }]}}},
    }
