"""Which nodes run containers: kwok's simulated nodes run none, so in-container checks
say they are not observable there instead of failing.
"""

from __future__ import annotations

from typing import Any

from pytest_aiconformance.cluster.client import Kube
from pytest_aiconformance.verdicts.outcomes import not_observable

SIMULATED_ANNOTATION = "kwok.x-k8s.io/node"


def node_is_simulated(node: dict[str, Any]) -> bool:
    annotations = node.get("metadata", {}).get("annotations", {}) or {}
    return bool(annotations.get(SIMULATED_ANNOTATION) == "fake")


def require_running_containers(kube: Kube, node_names: list[str]) -> None:
    """Skip (not observable) when the accelerator nodes are simulated and run no containers."""
    simulated = []
    for name in node_names:
        node = kube.get_or_none("v1", "Node", name)
        if node is not None and node_is_simulated(node):
            simulated.append(name)
    if node_names and len(simulated) == len(node_names):
        not_observable(
            f"nodes {', '.join(simulated)} are simulated (kwok) and run no "
            "containers, so nothing can be observed inside a pod"
        )


def running_first(kube: Kube, node_names: list[str]) -> list[str]:
    """The nodes that run containers, in order; all of them when every one is simulated (the
    caller then reports not observable).  A probe pinned to a node must pick a real one."""
    simulated = set(simulated_nodes(kube))
    real = [n for n in node_names if n not in simulated]
    return real or list(node_names)


def simulated_nodes(kube: Kube) -> list[str]:
    """Names of the simulated (kwok) nodes, which run no containers."""
    return sorted(n["metadata"]["name"] for n in kube.items("v1", "Node") if node_is_simulated(n))


def require_real_cluster(kube: Kube) -> None:
    """Skip (not observable) when every node is simulated: no pod, log, proxy or traffic runs."""
    nodes = kube.items("v1", "Node")
    if nodes and all(node_is_simulated(n) for n in nodes):
        names = ", ".join(n["metadata"]["name"] for n in nodes)
        not_observable(f"every node ({names}) is simulated (kwok) and runs no containers, so "
                       "workloads, logs and traffic cannot be observed")
