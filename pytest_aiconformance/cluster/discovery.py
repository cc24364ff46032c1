"""What the cluster offers, found once per session and shown in the report header."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pytest_aiconformance.cluster.client import ApiError, ClusterError, Kube
from pytest_aiconformance.cluster.operators import Detection, detect_all
from pytest_aiconformance.cluster.profiles import is_accelerator_resource
from pytest_aiconformance.cluster.simulation import node_is_simulated

# Data convention: a node whose accelerators are simulated while the node itself is real (the
# lab's real node runs containers, but its GPUs come from a simulated device plugin) carries
# this label with the value "true". kwok-simulated nodes need no label: their annotation says
# so (simulation.node_is_simulated). Either makes every report of the run say it is simulated.
SIMULATED_ACCELERATORS_LABEL = "aic-lab.local/simulated-accelerators"
LAB_DESCRIPTION = "aic-lab (pytest-aiconformance's local lab)"
_MAX_NAMED_NODES = 6  # a description names this many nodes of a kind, then counts the rest


@dataclass
class AcceleratorNode:
    name: str
    resources: dict[str, str]  # extended resource -> allocatable
    labels: dict[str, str]
    dra_devices: int = 0
    # spec.taints as read: GPU pools are often tainted (AKS sku=gpu, GKE nvidia.com/gpu=present)
    taints: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ClusterInfo:
    """The session's view of the cluster, discovered once."""

    server: str
    git_version: str
    major: int
    minor: int
    group_versions: list[str]
    nodes: int
    accelerator_nodes: list[AcceleratorNode] = field(default_factory=list)
    device_classes: list[str] = field(default_factory=list)
    resource_slices: int = 0
    dra_drivers: list[str] = field(default_factory=list)
    # For choosing the accelerator profile: DRA devices per driver (all slices, and per node
    # named by a slice), and every node's labels (vendor labels where no device is published).
    dra_driver_devices: dict[str, int] = field(default_factory=dict)
    dra_node_devices: dict[str, dict[str, int]] = field(default_factory=dict)
    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    runtime_classes: list[str] = field(default_factory=list)
    operators: dict[str, Detection] = field(default_factory=dict)
    simulated_nodes: list[str] = field(default_factory=list)  # kwok-simulated, sorted

    @property
    def serves_dra(self) -> bool:
        return "resource.k8s.io/v1" in self.group_versions

    def accelerator_taints(self) -> list[dict[str, str]]:
        """Every distinct taint on an accelerator node, in node order."""
        seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for node in self.accelerator_nodes:
            for taint in node.taints:
                seen.setdefault(tuple(sorted(taint.items())), taint)
        return list(seen.values())

    def simulated_accelerator_nodes(self) -> list[str]:
        """Nodes labelled as having simulated accelerators (SIMULATED_ACCELERATORS_LABEL)."""
        return sorted(name for name, labels in self.node_labels.items()
                      if labels.get(SIMULATED_ACCELERATORS_LABEL) == "true")

    def header_lines(self) -> list[str]:
        lines = [f"cluster: {self.server} Kubernetes {self.git_version}, {self.nodes} nodes"]
        if self.accelerator_nodes:
            parts = []
            for node in self.accelerator_nodes:
                res = ", ".join(f"{k}={v}" for k, v in sorted(node.resources.items()))
                dra = f", {node.dra_devices} DRA devices" if node.dra_devices else ""
                taints = "".join(f", taint {_taint_text(t)}" for t in node.taints)
                parts.append(f"{node.name} ({res}{dra}{taints})")
            lines.append("accelerator nodes: " + "; ".join(parts))
        else:
            lines.append("accelerator nodes: none found")
        dra = "served" if self.serves_dra else "not served"
        lines.append(
            f"DRA resource.k8s.io/v1: {dra}; DeviceClasses: {', '.join(self.device_classes) or '-'}"
            f"; ResourceSlices: {self.resource_slices}"
            + (f" from {', '.join(self.dra_drivers)}" if self.dra_drivers else "")
        )
        lines.append(f"RuntimeClasses: {', '.join(self.runtime_classes) or '-'}")
        found = [d.summary() for d in self.operators.values() if d.present]
        lines.append("operators: " + ("; ".join(found) if found else "none detected"))
        return lines


def describe_simulation(lab: bool, info: ClusterInfo | None) -> str:
    """One line saying what of this run is simulated; '' for a real platform.

    Simulated: the run was started with --aic-lab (`lab`), a node is kwok-simulated, or a node
    carries SIMULATED_ACCELERATORS_LABEL. Reads only what discovery found.
    """
    parts = []
    if info is not None:
        if info.simulated_nodes:
            parts.append("kwok-simulated nodes " + _names(info.simulated_nodes))
        accelerators = [n for n in info.simulated_accelerator_nodes()
                        if n not in info.simulated_nodes]
        if accelerators:
            parts.append("simulated accelerators on " + _names(accelerators))
    if lab:
        return f"{LAB_DESCRIPTION}: " + ("; ".join(parts) or "simulated nodes and accelerators")
    return "; ".join(parts)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMED_NODES])
    rest = len(names) - _MAX_NAMED_NODES
    return f"{shown} and {rest} more" if rest > 0 else shown


def _taint_text(taint: dict[str, str]) -> str:
    """kubectl's form: key[=value]:Effect."""
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key', '')}{value}:{taint.get('effect', '')}"


_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def parse_server_version(info: dict[str, Any]) -> tuple[int, int]:
    match = _VERSION.match(str(info.get("gitVersion", "")))
    if match:
        return int(match.group(1)), int(match.group(2))
    try:
        return int(str(info["major"]).rstrip("+")), int(str(info["minor"]).rstrip("+"))
    except (KeyError, ValueError):
        raise ClusterError(f"cannot read the server version from {info}") from None


def explain_api_error(kube: Kube, exc: ApiError, doing: str) -> str:
    """One line for 401/403 that says what to fix."""
    if exc.status == 401:
        return f"credentials rejected by {kube.server} (401 Unauthorized) while {doing}"
    if exc.status == 403:
        return f"forbidden while {doing}: {exc.message}"
    return f"{doing}: {exc}"


def _count_dra_devices(info: ClusterInfo, spec: dict[str, Any]) -> None:
    """Add one ResourceSlice's devices to its driver's counts (cluster-wide and per node)."""
    driver = str(spec.get("driver") or "")
    if not driver:
        return
    devices = len(spec.get("devices") or [])
    info.dra_driver_devices[driver] = info.dra_driver_devices.get(driver, 0) + devices
    node = spec.get("nodeName")
    if node:
        per_driver = info.dra_node_devices.setdefault(str(node), {})
        per_driver[driver] = per_driver.get(driver, 0) + devices


def discover(kube: Kube) -> ClusterInfo:
    """Read version, API groups, accelerator nodes, DRA objects, RuntimeClasses, operators."""
    doing = "reading the server version"
    try:
        version = kube.version()
        major, minor = parse_server_version(version)
        doing = "listing API groups"
        groups = kube.group_versions()
        doing = "listing nodes (needs: list nodes)"
        nodes = kube.items("v1", "Node")
        info = ClusterInfo(
            server=kube.server,
            git_version=str(version.get("gitVersion", f"v{major}.{minor}")),
            major=major,
            minor=minor,
            group_versions=groups,
            nodes=len(nodes),
        )
        per_node: dict[str, int] = {}
        if info.serves_dra:
            doing = "listing DRA DeviceClasses and ResourceSlices"
            info.device_classes = sorted(
                d["metadata"]["name"] for d in kube.items("resource.k8s.io/v1", "DeviceClass")
            )
            slices = kube.items("resource.k8s.io/v1", "ResourceSlice")
            info.resource_slices = len(slices)
            drivers = set()
            for sl in slices:
                spec = sl.get("spec", {})
                drivers.add(spec.get("driver", ""))
                node = spec.get("nodeName")
                if node:
                    per_node[node] = per_node.get(node, 0) + len(spec.get("devices", []))
                _count_dra_devices(info, spec)
            info.dra_drivers = sorted(d for d in drivers if d)
        info.simulated_nodes = sorted(n["metadata"]["name"] for n in nodes
                                      if node_is_simulated(n))
        for node in nodes:
            info.node_labels[node["metadata"]["name"]] = dict(
                node["metadata"].get("labels") or {})
            alloc = node.get("status", {}).get("allocatable", {})
            res = {k: str(v) for k, v in alloc.items() if is_accelerator_resource(k)}
            name = node["metadata"]["name"]
            if res or per_node.get(name):
                taints = [{k: str(v) for k, v in t.items() if k in ("key", "value", "effect")}
                          for t in node.get("spec", {}).get("taints") or []]
                info.accelerator_nodes.append(
                    AcceleratorNode(name, res, node["metadata"].get("labels", {}),
                                    per_node.get(name, 0), taints)
                )
        if "node.k8s.io/v1" in groups:
            doing = "listing RuntimeClasses"
            info.runtime_classes = sorted(
                f"{r['metadata']['name']}" for r in kube.items("node.k8s.io/v1", "RuntimeClass")
            )
        doing = "detecting operators"
        info.operators = detect_all(kube)
        return info
    except ApiError as exc:
        raise ClusterError(explain_api_error(kube, exc, doing)) from None
