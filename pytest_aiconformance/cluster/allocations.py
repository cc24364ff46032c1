"""Accelerator allocation: how a check asks for one accelerator (DRA claim or extended
resource, per --allocation-mode) and how many are free on each node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pytest_aiconformance.cluster import workloads
from pytest_aiconformance.cluster.client import Kube
from pytest_aiconformance.cluster.discovery import ClusterInfo
from pytest_aiconformance.cluster.profiles import AcceleratorProfile
from pytest_aiconformance.verdicts.outcomes import not_observable


@dataclass(frozen=True)
class Allocation:
    """How this run asks for one accelerator."""

    mode: str  # "dra" | "device-plugin"
    profile: AcceleratorProfile
    resource: str = ""  # extended resource name (device-plugin)
    device_class: str = ""  # DeviceClass (dra)
    # The vendor's RuntimeClass where the cluster has it: pods that get a device run under it,
    # as the vendor's device plugin or DRA driver expects (e.g. `nvidia` with the GPU Operator).
    runtime_class: str = ""

    def describe(self) -> str:
        if self.mode == "dra":
            return f"DRA claim from DeviceClass {self.device_class}"
        return f"extended resource {self.resource}"

    @property
    def unit(self) -> str:
        """What one accelerator is called in messages: the resource, or the class's device."""
        if self.mode == "dra":
            return f"device of DeviceClass {self.device_class}"
        return self.resource

    @property
    def refusal(self) -> str:
        """What the scheduler says (FailedScheduling, PodScheduled=False) when none is free.

        DRA: kube-scheduler 1.35 writes e.g. "0/2 nodes are available: 1 cannot allocate all
        claims, 1 node(s) didn't match Pod's node affinity/selector."
        """
        if self.mode == "dra":
            return "cannot allocate all claims"
        return f"Insufficient {self.resource}"


def choose_allocation(info: ClusterInfo, profile: AcceleratorProfile,
                      mode: str) -> Allocation:
    """Pick DRA or the device plugin as the option says."""
    runtime_class = profile.runtime_class or ""
    if runtime_class not in info.runtime_classes:
        runtime_class = ""
    dra_class = next((c for c in profile.dra.device_classes if c in info.device_classes), "")
    # A resource every node advertises as 0 (nvidia.com/gpu under MIG mixed) is not offered.
    advertised = {r for n in info.accelerator_nodes for r, v in n.resources.items()
                  if _units(v) > 0}
    resource = next((r for r in profile.extended_resources if r in advertised), "")
    if not resource:
        resource = next((r for r in sorted(advertised) if profile.matches_resource(r)), "")
    if mode == "dra" or (mode == "auto" and dra_class):
        if not dra_class:
            raise AssertionError(
                f"--allocation-mode=dra but no DeviceClass of profile {profile.name} exists "
                f"({', '.join(profile.dra.device_classes) or 'none known'})"
            )
        return Allocation("dra", profile, device_class=dra_class, runtime_class=runtime_class)
    if not resource:
        raise AssertionError(
            f"no node advertises an accelerator of profile {profile.name} "
            f"({', '.join(profile.extended_resources)}) and no DeviceClass of it exists"
        )
    return Allocation("device-plugin", profile, resource=resource, runtime_class=runtime_class)


def _units(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def capacity(info: ClusterInfo, resource: str) -> dict[str, int]:
    """Allocatable units of an extended resource per node (read from the cluster)."""
    out = {}
    for node in info.accelerator_nodes:
        value = node.resources.get(resource)
        if value:
            out[node.name] = int(value)
    return out


def accelerator_request(alloc: Allocation, claim: str = "accel") -> dict[str, Any]:
    """Container fields that ask for one accelerator the chosen way."""
    if alloc.mode == "dra":
        return {"claims": [claim]}
    return {"resources_": {"limits": {alloc.resource: "1"}}}


def used_units(kube: Kube, node: str, resource: str) -> int:
    """Units of an extended resource that non-terminated pods on the node already hold."""
    used = 0
    for pod in kube.items("v1", "Pod", field_selector=f"spec.nodeName={node}"):
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for c in pod["spec"].get("containers", []):
            used += int(((c.get("resources") or {}).get("limits") or {}).get(resource, 0))
    return used


def free_per_node(kube: Kube, info: ClusterInfo, resource: str) -> dict[str, int]:
    """Free units of an extended resource per node: allocatable minus what pods hold."""
    return {node: total - used_units(kube, node, resource)
            for node, total in capacity(info, resource).items()}


def accelerator_pod(name: str, namespace: str, alloc: Allocation, ctr: dict[str, Any], *,
                    claim_template: str = "one-device", **kwargs: Any) -> dict[str, Any]:
    """A pod whose container `ctr` asks for one accelerator the chosen way.

    DRA: the pod's claim comes from `claim_template` (see `claim_objects`); device plugin:
    one unit of the resource is added to the container's limits (its other limits kept).
    """
    ctr = dict(ctr)
    res = {k: dict(v) if isinstance(v, dict) else v for k, v in (ctr.get("resources") or
                                                                  {}).items()}
    templates = None
    if alloc.mode == "dra":
        res["claims"] = [*res.get("claims", []), {"name": "accel"}]
        templates = {"accel": claim_template}
    else:
        res["limits"] = {**res.get("limits", {}), alloc.resource: "1"}
    ctr["resources"] = res
    if alloc.runtime_class:
        kwargs.setdefault("runtime_class", alloc.runtime_class)
    return workloads.pod(name, namespace, [ctr], claim_templates=templates, **kwargs)


def claim_objects(alloc: Allocation, namespace: str,
                  name: str = "one-device") -> list[dict[str, Any]]:
    """What `accelerator_pod` needs created first: the ResourceClaimTemplate (DRA only)."""
    if alloc.mode != "dra":
        return []
    return [workloads.claim_template(name, namespace, alloc.device_class)]


DeviceId = tuple[str, str, str]  # (driver, pool, device), as allocation results name devices


_DRIVER_CLAUSE = re.compile(r"""^device\.driver\s*==\s*['"]([^'"]+)['"]$""")


_ATTRIBUTE_CLAUSE = re.compile(
    r"""^device\.attributes\[\s*['"]([^'"]+)['"]\s*\]\.(\w+)\s*==\s*(.+)$""")


@dataclass(frozen=True)
class DeviceSelector:
    """The part of a DeviceClass's CEL selectors that is read here.

    The forms vendors' classes use: `device.driver == 'X'` and
    `device.attributes['domain'].name == <literal>`, joined with `&&`; these are what tells
    the vendors' classes apart (gpu.nvidia.com from mig.nvidia.com). Other clauses are not
    evaluated; a class that names no driver this way counts its profile's drivers' devices.
    """

    drivers: frozenset[str]
    attributes: tuple[tuple[str, str, str], ...]  # (domain, name, literal as written)

    def matches(self, driver: str, device: dict[str, Any]) -> bool:
        if self.drivers and driver not in self.drivers:
            return False
        attrs = device.get("attributes") or {}
        for domain, attr, literal in self.attributes:
            value = attrs.get(f"{domain}/{attr}", attrs.get(attr) if domain == driver else None)
            if value is None or _literal(value) != literal:
                return False
        return True


def _literal(value: dict[str, Any]) -> str:
    """A device attribute value as CEL would write it (string quoted, bool lower case)."""
    for kind, item in value.items():
        if kind == "bool":
            return "true" if item else "false"
        if kind == "int":
            return str(item)
        return repr(str(item))
    return ""


def parse_device_class(device_class: dict[str, Any]) -> DeviceSelector:
    """The drivers and attribute values a DeviceClass's CEL selectors require."""
    drivers: set[str] = set()
    attributes: list[tuple[str, str, str]] = []
    for selector in device_class.get("spec", {}).get("selectors") or []:
        expression = str((selector.get("cel") or {}).get("expression", ""))
        if "||" in expression:
            continue
        for clause in (c.strip().strip("()").strip() for c in expression.split("&&")):
            if match := _DRIVER_CLAUSE.match(clause):
                drivers.add(match.group(1))
            elif match := _ATTRIBUTE_CLAUSE.match(clause):
                literal = match.group(3).strip()
                if literal.startswith('"') and literal.endswith('"'):
                    literal = repr(literal[1:-1])
                attributes.append((match.group(1), match.group(2), literal))
    return DeviceSelector(frozenset(drivers), tuple(attributes))


def class_devices(kube: Kube, device_class: str,
                  drivers: tuple[str, ...] = ()) -> dict[str, set[DeviceId]]:
    """Per node, the devices of a DeviceClass that node-local ResourceSlices publish.

    `drivers`: whose devices count when the class's selectors name no driver. Only each
    pool's newest generation counts (older slices are being replaced).
    """
    obj = kube.get_or_none("resource.k8s.io/v1", "DeviceClass", device_class)
    selector = parse_device_class(obj or {})
    if not selector.drivers:
        selector = DeviceSelector(frozenset(drivers), selector.attributes)
    slices = kube.items("resource.k8s.io/v1", "ResourceSlice")
    newest: dict[tuple[str, str], int] = {}
    for sl in slices:
        spec = sl.get("spec", {})
        pool = spec.get("pool", {})
        key = (str(spec.get("driver", "")), str(pool.get("name", "")))
        newest[key] = max(newest.get(key, 0), int(pool.get("generation", 0)))
    out: dict[str, set[DeviceId]] = {}
    for sl in slices:
        spec = sl.get("spec", {})
        driver, pool = str(spec.get("driver", "")), spec.get("pool", {})
        pool_name = str(pool.get("name", ""))
        node = spec.get("nodeName")
        if not node or int(pool.get("generation", 0)) != newest[(driver, pool_name)]:
            continue
        for device in spec.get("devices") or []:
            if selector.matches(driver, device):
                out.setdefault(str(node), set()).add((driver, pool_name, str(device["name"])))
    return out


def allocated_devices(kube: Kube) -> set[DeviceId]:
    """Devices some ResourceClaim holds (status.allocation), admin access aside."""
    held: set[DeviceId] = set()
    for claim in kube.items("resource.k8s.io/v1", "ResourceClaim"):
        results = ((claim.get("status") or {}).get("allocation") or {}).get("devices", {})
        for result in results.get("results") or []:
            if not result.get("adminAccess"):
                held.add((str(result.get("driver")), str(result.get("pool")),
                          str(result.get("device"))))
    return held


def allocatable_per_node(kube: Kube, info: ClusterInfo, alloc: Allocation) -> dict[str, int]:
    """Accelerators per node the chosen way: allocatable units, or the class's devices."""
    if alloc.mode == "dra":
        devices = class_devices(kube, alloc.device_class, alloc.profile.dra.drivers)
        return {node: len(devs) for node, devs in devices.items()}
    return capacity(info, alloc.resource)


def free_accelerators(kube: Kube, info: ClusterInfo, alloc: Allocation) -> dict[str, int]:
    """Free accelerators per node: allocatable units minus what pods hold, or the class's
    devices minus those allocated to ResourceClaims."""
    if alloc.mode == "dra":
        held = allocated_devices(kube)
        devices = class_devices(kube, alloc.device_class, alloc.profile.dra.drivers)
        return {node: len(devs - held) for node, devs in devices.items()}
    return free_per_node(kube, info, alloc.resource)


def require_free_accelerator(free: dict[str, int], total: dict[str, int],
                             alloc: Allocation, purpose: str) -> None:
    """Not observable when every accelerator is already allocated: nothing to test with.

    No accelerator at all is the platform's failure, not a busy cluster.
    """
    if not any(total.values()):
        raise AssertionError(f"no node offers a {alloc.unit}")
    if any(f > 0 for f in free.values()):
        return
    in_use = ", ".join(f"{n}: {t} of {t} in use" for n, t in sorted(total.items()) if t)
    not_observable(f"every {alloc.unit} is allocated ({in_use}), so {purpose}")
