"""secure_accelerator_access: decisions about device isolation between pods.
"""

from __future__ import annotations

from pytest_aiconformance.cluster.discovery import AcceleratorNode
from pytest_aiconformance.cluster.profiles import AcceleratorProfile
from pytest_aiconformance.requirements import gpu_sharing


def shared_devices(node: AcceleratorNode, profile: AcceleratorProfile,
                   resource: str | None = None) -> str:
    """Why a node's accelerators (of ``resource``, where given) are shared between pods
    (time-slicing, MPS, GKE time-sharing), or "": two pods there may rightly see the same
    device, so such a node cannot show distinct devices."""
    return gpu_sharing.time_shared_reason(node.labels, node.resources, profile, resource)
