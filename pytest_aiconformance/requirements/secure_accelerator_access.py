"""secure_accelerator_access: the decisions of its checks, as pure functions.

Which node to fill past capacity and when the scheduler has refused the extra pod; which
nodes can show two pods distinct devices (not those whose devices are shared); which
RuntimeClass a pod without a request runs under.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_aiconformance.cluster.discovery import AcceleratorNode
from pytest_aiconformance.cluster.profiles import AcceleratorProfile
from pytest_aiconformance.requirements import gpu_sharing


def shared_devices(node: AcceleratorNode, profile: AcceleratorProfile,
                   resource: str | None = None) -> str:
    """Why a node's accelerators (of ``resource``, where given) are shared between pods
    (time-slicing, MPS, GKE time-sharing), or "": two pods there may rightly see the same
    device, so such a node cannot show distinct devices."""
    return gpu_sharing.time_shared_reason(node.labels, node.resources, profile, resource)


def fill_node(free: Mapping[str, int]) -> tuple[str, int]:
    """The node to fill past capacity and its free accelerators: the one with the fewest free
    (but some), by name (fewest pods to create)."""
    candidates = {n: f for n, f in free.items() if f > 0}
    return min(candidates.items(), key=lambda kv: (kv[1], kv[0]))


def unschedulable_reason(pod: Mapping[str, Any]) -> str:
    """The scheduler's message when it has refused the pod (PodScheduled=False), else ""."""
    for cond in pod.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return str(cond.get("message", ""))
    return ""


def capacity_settled(pods: Iterable[Mapping[str, Any]], n_free: int, refusal: str) -> bool:
    """``n_free`` pods are bound and exactly one is refused for ``refusal`` (Insufficient
    <resource>, cannot allocate all claims)."""
    items = list(pods)
    bound = [o for o in items if o["spec"].get("nodeName")]
    refused = [o for o in items if refusal in unschedulable_reason(o)]
    return len(bound) == n_free and len(refused) == 1


def multi_device_nodes(nodes: Sequence[AcceleratorNode],
                       resource: str | None) -> list[AcceleratorNode]:
    """Nodes with at least two accelerators (of ``resource``, or as DRA devices): where two
    one-device pods can run side by side."""
    return [n for n in nodes
            if int(n.resources.get(resource or "", "0") or 0) >= 2 or n.dra_devices >= 2]


def shared_nodes(nodes: Sequence[AcceleratorNode], profile: AcceleratorProfile,
                 resource: str | None) -> dict[str, str]:
    """Per node whose devices are shared, why (those nodes cannot show distinct devices)."""
    return {n.name: why for n in nodes if (why := shared_devices(n, profile, resource))}


def vendor_runtime_class(profile: AcceleratorProfile, existing: Sequence[str]) -> str | None:
    """The profile's RuntimeClass where the cluster has it, else None (the default runtime)."""
    if profile.runtime_class and profile.runtime_class in existing:
        return profile.runtime_class
    return None
