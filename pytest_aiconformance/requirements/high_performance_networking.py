"""high_performance_networking decisions: which extra network interfaces nodes offer.

Preferred: DRA devices published by a network DRA driver (e.g. DraNet ``dra.net``, SR-IOV
or RDMA DRA drivers), recognised by the driver name or by interface attributes. Also
recognised: device-plugin resources for RDMA / SR-IOV / EFA NICs. A pod that needs one must
land only on nodes that have one; ``capable_nodes`` says which.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NIC_DRIVER = re.compile(r"(^|\.)(dra\.net|net|network|rdma|sriov|nic|networking|efa)(\.|$)|"
                        r"sriovnetwork|dranet|rdma|roce|mellanox|infiniband", re.IGNORECASE)
NIC_ATTRIBUTES = ("ifName", "interfaceName", "rdma", "rdmaDevice", "macAddress", "mac",
                  "sriov", "linkSpeed", "numVFs", "pfName")
NIC_RESOURCE = re.compile(
    r"^(rdma/.+|nvidia\.com/(hostdev|rdma.*|.*nic.*)|mellanox\.com/.+|intel\.com/(sriov|.*nic|"
    r".*_vf|.*netdevice).*|openshift\.io/.+|vpc\.amazonaws\.com/efa|"
    r"networking\.gke\.io/.+|k8s\.ovn\.org/.+|.*/(sriov|rdma|roce|infiniband|ib)[a-z0-9_.-]*)$",
    re.IGNORECASE)


@dataclass(frozen=True)
class NicOffer:
    """Extra NICs one node offers through one mechanism."""

    node: str
    via: str  # "DRA" | "extended resource"
    name: str  # DRA driver or resource name
    count: int
    example: str = ""  # a device name / attributes excerpt for evidence

    def describe(self) -> str:
        extra = f" ({self.example})" if self.example else ""
        return f"{self.node}: {self.count} x {self.name} via {self.via}{extra}"


def _is_nic_device(driver: str, device: Mapping[str, Any]) -> bool:
    attrs = device.get("attributes", {}) or {}
    if NIC_DRIVER.search(driver):
        return True
    short = {str(k).rsplit("/", 1)[-1] for k in attrs}
    return sum(1 for a in NIC_ATTRIBUTES if a in short) >= 2


def classify_nics(nodes: Sequence[Mapping[str, Any]],
                  slices: Sequence[Mapping[str, Any]] = ()) -> list[NicOffer]:
    """NIC offers per node from ResourceSlices (DRA) and allocatable extended resources."""
    offers: list[NicOffer] = []
    per_node: dict[tuple[str, str], list[str]] = {}
    for sl in slices:
        spec = sl.get("spec", {}) or {}
        node = str(spec.get("nodeName") or "")
        driver = str(spec.get("driver", ""))
        for device in spec.get("devices", []) or []:
            if _is_nic_device(driver, device):
                per_node.setdefault((node, driver), []).append(str(device.get("name", "")))
    for (node, driver), devices in sorted(per_node.items()):
        offers.append(NicOffer(node or "<any node>", "DRA", driver, len(devices),
                               ", ".join(devices[:3])))
    for node_obj in nodes:
        name = str((node_obj.get("metadata", {}) or {}).get("name", ""))
        alloc = (node_obj.get("status", {}) or {}).get("allocatable", {}) or {}
        for res, value in sorted(alloc.items()):
            try:
                count = int(str(value))
            except ValueError:
                continue
            if count > 0 and NIC_RESOURCE.match(res):
                offers.append(NicOffer(name, "extended resource", res, count))
    return offers


def capable_nodes(offers: Sequence[NicOffer], via: str, name: str) -> set[str]:
    """The nodes offering at least one NIC of this mechanism and driver or resource."""
    return {o.node for o in offers if o.via == via and o.name == name and o.count > 0}


def placement_ok(bound_node: str | None, capable: set[str]) -> tuple[bool, str]:
    """A pod that needs a NIC is bound, and only to a node that has one."""
    if not bound_node:
        return False, "the pod needing a NIC was not bound to any node"
    if bound_node not in capable:
        return False, f"the pod needing a NIC landed on {bound_node}, which has none " \
                      f"(capable: {', '.join(sorted(capable))})"
    return True, f"the pod needing a NIC landed on {bound_node}, a capable node"


def offer_rows(offers: Sequence[NicOffer]) -> list[list[Any]]:
    """NODE / VIA / DRIVER-RESOURCE / COUNT / DEVICES rows for the evidence table."""
    return [[o.node, o.via, o.name, o.count, o.example] for o in offers]


def preferred_offer(offers: Sequence[NicOffer]) -> NicOffer:
    """The offer a pod will request: DRA devices first (the preferred mechanism), then by
    driver or resource name and node."""
    return sorted(offers, key=lambda o: (o.via != "DRA", o.name, o.node))[0]


def device_class_for(classes: Sequence[Mapping[str, Any]], driver: str) -> str | None:
    """The first DeviceClass whose selectors name the driver (CEL: device.driver == "x")."""
    for cls in classes:
        if driver in str(cls.get("spec", {}).get("selectors", "")):
            return str(cls["metadata"]["name"])
    return None


def driver_device_class(name: str, driver: str) -> dict[str, Any]:
    """A DeviceClass selecting every device of ``driver``, for a driver that ships none."""
    return {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
            "metadata": {"name": name},
            "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{driver}"'}}]}}


def nodes_without(nodes: Sequence[Mapping[str, Any]], capable: set[str]) -> list[str]:
    """Schedulable nodes that offer no NIC of the kind requested, by name: where a pod pinned
    there must stay unbound."""
    return sorted(str(n["metadata"]["name"]) for n in nodes
                  if n["metadata"]["name"] not in capable
                  and not n.get("spec", {}).get("unschedulable"))


def scheduling_message(pod: Mapping[str, Any]) -> str:
    """The PodScheduled condition's message (why the scheduler has not bound the pod)."""
    return next((str(c.get("message", "")) for c in
                 pod.get("status", {}).get("conditions", []) or []
                 if c.get("type") == "PodScheduled"), "")
