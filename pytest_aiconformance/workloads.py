"""Builders for the workloads checks create: restricted pods that request accelerators.

Pods are plain dicts so that evidence can show them as YAML.
"""

from __future__ import annotations

import copy
from typing import Any

from pytest_aiconformance.accelerators import accelerator_tolerations

# Simulated (kwok) nodes carry this taint; vendors' accelerator taints come from the profiles.
SIMULATED_NODE_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists",
                             "effect": "NoSchedule"}

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
        "tolerations": [*accelerator_tolerations(), dict(SIMULATED_NODE_TOLERATION)],
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
