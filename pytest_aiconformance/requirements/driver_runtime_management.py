"""driver_runtime_management decisions: what version the platform advertises, and whether the
version seen inside a container equals it.

Advertised versions come from the DRA device attribute of the profile (e.g. the NVIDIA DRA
driver's ``driverVersion``) or from the node label (e.g. GPU Feature Discovery's
``nvidia.com/cuda.driver-version.full``). Versions are compared numerically per component,
so ``535.104.05`` (nvidia-smi) equals ``535.104.5`` (a semver attribute), and a missing
trailing component counts as zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_aiconformance.cluster.discovery import AcceleratorNode
from pytest_aiconformance.cluster.profiles import AcceleratorProfile

_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)(?:[-+].*)?$")


def version_key(text: str) -> tuple[int, ...] | None:
    """Numeric components of a dotted version; None when it is not one."""
    match = _VERSION.match(text.strip())
    if not match:
        return None
    parts = [int(p) for p in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@dataclass(frozen=True)
class Advertised:
    """One place the platform states the driver version."""

    source: str  # e.g. "node label nvidia.com/cuda.driver-version.full" or "DRA attribute ..."
    value: str


def advertised_versions(profile: AcceleratorProfile, node: Mapping[str, Any],
                        devices: Sequence[Mapping[str, Any]] = ()) -> list[Advertised]:
    """Versions stated by the node's label and by the DRA attributes of the given devices."""
    out: list[Advertised] = []
    label = profile.node_labels.driver_version
    labels = node.get("metadata", {}).get("labels", {}) or {}
    if label and labels.get(label):
        out.append(Advertised(f"node label {label}", str(labels[label])))
    attr = profile.dra.driver_version_attribute
    if attr:
        for device in devices:
            value = (device.get("attributes", {}) or {}).get(attr) or {}
            text = value.get("version") or value.get("string") if isinstance(value, dict) else None
            if text:
                out.append(Advertised(f"DRA attribute {attr} of device {device.get('name')}",
                                      str(text)))
    return out


def versions_match(seen: str | None, advertised: Sequence[Advertised]) -> tuple[bool, str]:
    """The in-container version equals every advertised one (numerically, per component)."""
    if not seen:
        return False, "no driver version was seen inside the container"
    if not advertised:
        return False, "the platform advertises no driver version (no node label, no DRA " \
                      "attribute) to compare with"
    key = version_key(seen)
    if key is None:
        return False, f"{seen!r} seen inside the container is not a version"
    bad = [a for a in advertised if version_key(a.value) != key]
    if bad:
        return False, "; ".join(f"container sees {seen}, {a.source} says {a.value}" for a in bad)
    return True, "container sees " + seen + ", equal to " + \
        ", ".join(f"{a.source} ({a.value})" for a in advertised)


def runtime_class_rows(runtime_classes: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """NAME / HANDLER / NODE SELECTOR rows, like kubectl get runtimeclass."""
    rows = []
    for rc in sorted(runtime_classes, key=lambda r: str(r.get("metadata", {}).get("name"))):
        sel = ((rc.get("scheduling") or {}).get("nodeSelector") or {})
        rows.append([str(rc.get("metadata", {}).get("name", "")), str(rc.get("handler", "")),
                     ",".join(f"{k}={v}" for k, v in sorted(sel.items()))])
    return rows


def selects_node(runtime_class: Mapping[str, Any], node_labels: Mapping[str, str]) -> bool:
    """Whether a RuntimeClass's scheduling.nodeSelector admits a node with these labels."""
    sel = ((runtime_class.get("scheduling") or {}).get("nodeSelector") or {})
    return all(node_labels.get(k) == v for k, v in sel.items())


def version_readable(profile: AcceleratorProfile) -> bool:
    """Whether a container can read the driver version: the profile names the vendor's tool
    or a version file (else the hardware is unknown to this check, never a failure)."""
    return profile.tool is not None or profile.driver_version_file is not None


def refused_nodes(runtime_class: Mapping[str, Any], nodes: Sequence[AcceleratorNode]) -> list[str]:
    """The accelerator nodes the RuntimeClass's nodeSelector does not admit, in order."""
    return [n.name for n in nodes if not selects_node(runtime_class, n.labels)]


def claimed_devices(claims: Sequence[Mapping[str, Any]], slices: Sequence[Mapping[str, Any]],
                    pod: str) -> list[Mapping[str, Any]]:
    """The ResourceSlice device entries allocated to the claims reserved for ``pod``: their
    attributes state the driver version the platform advertises for that device."""
    out: list[Mapping[str, Any]] = []
    for claim in claims:
        if not any(r.get("name") == pod for r in claim.get("status", {}).get("reservedFor",
                                                                               []) or []):
            continue
        for res in claim["status"]["allocation"]["devices"]["results"]:
            out += [d for s in slices for d in s["spec"].get("devices", [])
                    if s["spec"]["driver"] == res["driver"]
                    and s["spec"]["pool"]["name"] == res["pool"] and d["name"] == res["device"]]
    return out
