"""virtualized_accelerator decisions: which nodes offer virtualized accelerators, and how.

Three kinds are recognised from what nodes and DRA drivers publish:
- vgpu: a mediated / vGPU device (resource names with GRID or vGPU profile names, the GPU
  Feature Discovery label ``nvidia.com/vgpu.present=true`` in a vGPU guest, or the GPU
  Operator's ``nvidia.com/gpu.workload.config=vm-vgpu``);
- vfio: whole devices handed to VMs through VFIO (``nvidia.com/gpu.workload.config=
  vm-passthrough``, KubeVirt's passthrough resources, ``devices.kubevirt.io/vfio``);
- sriov-vf: SR-IOV virtual functions of an accelerator (DRA devices whose attributes mark a
  virtual function, e.g. Intel's ``sriov``/``virtualFunction``, or VF resource names).
No match is an honest "none found", never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_aiconformance.cluster.profiles import (
    AcceleratorProfile,
    profile_for_resource,
    vendor_domains,
)
from pytest_aiconformance.requirements.high_performance_networking import NIC_DRIVER, NIC_RESOURCE

WORKLOAD_CONFIG_LABEL = "nvidia.com/gpu.workload.config"
VGPU_PRESENT_LABEL = "nvidia.com/vgpu.present"

_VGPU_RESOURCE = re.compile(r"^nvidia\.com/(GRID_.+|.*vgpu.*|NVIDIA_[A-Z0-9]+-\d+[ABCQ])$",
                            re.IGNORECASE)
_VFIO_RESOURCE = re.compile(r"^(devices\.kubevirt\.io/vfio.*|nvidia\.com/[A-Z0-9]+_[A-Z0-9_]+)$")
_VF_RESOURCE = re.compile(r"(^|[/_.-])(vf|sriov)([/_.-]|$)", re.IGNORECASE)
_VF_ATTRIBUTES = ("sriov", "virtualFunction", "isVirtualFunction", "vf")


@dataclass(frozen=True)
class VirtualizedResource:
    """One way a node offers a virtualized accelerator."""

    node: str
    kind: str  # "vgpu" | "vfio" | "sriov-vf"
    via: str  # "extended resource" | "node label" | "DRA device"
    name: str  # resource name, label, or driver/device
    count: int  # schedulable units (0 when only a label says so)

    def describe(self) -> str:
        units = f" x{self.count}" if self.count else ""
        return f"{self.node}: {self.kind} via {self.via} {self.name}{units}"

    @property
    def schedulable_resource(self) -> str | None:
        return self.name if self.via == "extended resource" and self.count > 0 else None


def _count(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _truthy(attr: Any) -> bool:
    if isinstance(attr, Mapping):
        return attr.get("bool") is True or str(attr.get("string", "")).lower() in ("true", "vf")
    return False


def classify_virtualization(nodes: Sequence[Mapping[str, Any]],
                            slices: Sequence[Mapping[str, Any]] = ()) -> list[VirtualizedResource]:
    """Every virtualized accelerator offer found on these Node objects and ResourceSlices."""
    found: list[VirtualizedResource] = []
    domains = vendor_domains()
    for node in nodes:
        meta = node.get("metadata", {}) or {}
        name = str(meta.get("name", ""))
        labels = meta.get("labels", {}) or {}
        alloc = (node.get("status", {}) or {}).get("allocatable", {}) or {}
        for res, value in sorted(alloc.items()):
            if profile_for_resource(res) is not None or NIC_RESOURCE.match(res):
                # A plain device (or a share or partition of one) of a known vendor; or a
                # network card's virtual function, which is no accelerator.
                continue
            count = _count(value)
            if count <= 0:
                continue
            if _VGPU_RESOURCE.match(res):
                found.append(VirtualizedResource(name, "vgpu", "extended resource", res, count))
            elif _VFIO_RESOURCE.match(res):
                found.append(VirtualizedResource(name, "vfio", "extended resource", res, count))
            elif res.split("/", 1)[0] in domains and _VF_RESOURCE.search(res.split("/", 1)[1]):
                found.append(VirtualizedResource(name, "sriov-vf", "extended resource", res,
                                                 count))
        config = labels.get(WORKLOAD_CONFIG_LABEL)
        if config == "vm-vgpu":
            found.append(VirtualizedResource(name, "vgpu", "node label",
                                             f"{WORKLOAD_CONFIG_LABEL}={config}", 0))
        elif config == "vm-passthrough":
            found.append(VirtualizedResource(name, "vfio", "node label",
                                             f"{WORKLOAD_CONFIG_LABEL}={config}", 0))
        if str(labels.get(VGPU_PRESENT_LABEL, "")).lower() == "true":
            gpus = _count(alloc.get("nvidia.com/gpu", 0))
            res_name = "nvidia.com/gpu" if gpus else f"{VGPU_PRESENT_LABEL}=true"
            found.append(VirtualizedResource(name, "vgpu", "node label" if not gpus
                                             else "extended resource", res_name, gpus))
    for sl in slices:
        spec = sl.get("spec", {}) or {}
        slice_node = str(spec.get("nodeName", "") or "")
        driver = str(spec.get("driver", ""))
        if NIC_DRIVER.search(driver):
            continue  # SR-IOV network cards published through DRA are no accelerators
        for device in spec.get("devices", []) or []:
            attrs = device.get("attributes", {}) or {}
            if any(_truthy(attrs.get(a)) for a in _VF_ATTRIBUTES):
                found.append(VirtualizedResource(slice_node, "sriov-vf", "DRA device",
                                                 f"{driver}/{device.get('name')}", 1))
    return found


def summarize(found: Sequence[VirtualizedResource]) -> str:
    """How many offers of which kinds, for messages ("none" when nothing was found)."""
    if not found:
        return "none"
    kinds = sorted({f.kind for f in found})
    return f"{len(found)} offer(s) of {', '.join(kinds)}"


# What a kind's device nodes look like inside a container, where not the vendor's own files:
# (glob of the device nodes, space-separated control nodes never counted).
DEVICE_GLOBS = {"vfio": ("/dev/vfio/[0-9]*", "/dev/vfio/vfio")}


def node_rows(nodes: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """NAME / WORKLOAD-CONFIG / VGPU-PRESENT / EXTENDED-RESOURCES rows for the evidence."""
    return [[str(n["metadata"]["name"]),
             n["metadata"].get("labels", {}).get(WORKLOAD_CONFIG_LABEL, ""),
             n["metadata"].get("labels", {}).get(VGPU_PRESENT_LABEL, ""),
             ",".join(sorted(k for k in n.get("status", {}).get("allocatable", {}) if "/" in k))]
            for n in nodes]


def device_offers(found: Sequence[VirtualizedResource]) -> list[VirtualizedResource]:
    """The offers of a device a pod can get: a label only says what a node is configured for."""
    return [f for f in found if f.via != "node label"]


def pod_target(found: Sequence[VirtualizedResource]) -> VirtualizedResource | None:
    """The schedulable offer a probe pod requests (first by node and resource), or None."""
    schedulable = [f for f in found if f.schedulable_resource]
    return min(schedulable, key=lambda f: (f.node, f.name), default=None)


def device_globs(kind: str, profile: AcceleratorProfile) -> tuple[str, str]:
    """(device glob, control nodes) to count what a pod holding one device of ``kind`` sees:
    the kind's own device nodes (VFIO), else the vendor's; an empty glob when none is known."""
    return DEVICE_GLOBS.get(kind, (profile.device_files.glob or "",
                                   " ".join(profile.device_files.control)))
