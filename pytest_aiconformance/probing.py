"""Accelerator allocation and in-container probes, shared by the isolation-style checks.

Allocation follows --allocation-mode: a DRA claim from the profile's DeviceClass, or the
device plugin's extended resource; `auto` prefers DRA when the class exists. Probes are
vendor-neutral shell scripts from the package's data/probes run in a vanilla image; their
KEY=VALUE output is read back from the pod log.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from pytest_aiconformance import workloads
from pytest_aiconformance.accelerators import AcceleratorProfile
from pytest_aiconformance.cluster import Kube
from pytest_aiconformance.discovery import ClusterInfo
from pytest_aiconformance.isolation import RunContext
from pytest_aiconformance.outcomes import not_observable, unknown_hardware
from pytest_aiconformance.parsers import parse_key_values
from pytest_aiconformance.waiting import Target, watch_until

SIMULATED_ANNOTATION = "kwok.x-k8s.io/node"


@dataclass(frozen=True)
class Allocation:
    """How this run asks for one accelerator."""

    mode: str  # "dra" | "device-plugin"
    profile: AcceleratorProfile
    resource: str = ""  # extended resource name (device-plugin)
    device_class: str = ""  # DeviceClass (dra)

    def describe(self) -> str:
        if self.mode == "dra":
            return f"DRA claim from DeviceClass {self.device_class}"
        return f"extended resource {self.resource}"


def choose_allocation(info: ClusterInfo, profile: AcceleratorProfile,
                      mode: str) -> Allocation:
    """Pick DRA or the device plugin as the option says."""
    dra_class = next((c for c in profile.dra.device_classes if c in info.device_classes), "")
    advertised = {r for n in info.accelerator_nodes for r in n.resources}
    resource = next((r for r in profile.extended_resources if r in advertised), "")
    if not resource:
        resource = next((r for r in sorted(advertised) if profile.matches_resource(r)), "")
    if mode == "dra" or (mode == "auto" and dra_class):
        if not dra_class:
            raise AssertionError(
                f"--allocation-mode=dra but no DeviceClass of profile {profile.name} exists "
                f"({', '.join(profile.dra.device_classes) or 'none known'})"
            )
        return Allocation("dra", profile, device_class=dra_class)
    if not resource:
        raise AssertionError(
            f"no node advertises an accelerator of profile {profile.name} "
            f"({', '.join(profile.extended_resources)}) and no DeviceClass of it exists"
        )
    return Allocation("device-plugin", profile, resource=resource)


def capacity(info: ClusterInfo, resource: str) -> dict[str, int]:
    """Allocatable units of an extended resource per node (read from the cluster)."""
    out = {}
    for node in info.accelerator_nodes:
        value = node.resources.get(resource)
        if value:
            out[node.name] = int(value)
    return out


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


def accelerator_request(alloc: Allocation, claim: str = "accel") -> dict[str, Any]:
    """Container fields that ask for one accelerator the chosen way."""
    if alloc.mode == "dra":
        return {"claims": [claim]}
    return {"resources_": {"limits": {alloc.resource: "1"}}}


def run_probe(kube: Kube, ctx: RunContext, namespace: str, pod: dict[str, Any],
              *, timeout: float) -> dict[str, dict[str, list[str]]]:
    """Run a probe pod to completion; KEY=VALUE output per container (values listed)."""
    ctx.create(pod)
    name = pod["metadata"]["name"]
    done = watch_until(
        kube, Target("v1", "Pod", namespace, name=name),
        lambda objs: any(o.get("status", {}).get("phase") in ("Succeeded", "Failed")
                         for o in objs.values()),
        timeout=timeout, expected=f"probe pod {name} to finish",
    )
    phase = next(iter(done.values()))["status"]["phase"]
    out: dict[str, dict[str, list[str]]] = {}
    for container in pod["spec"]["containers"]:
        text = kube.logs(namespace, name, container["name"])
        out[container["name"]] = parse_key_values(text)
    if phase != "Succeeded":
        raise AssertionError(f"probe pod {name} ended {phase}; output: {out}")
    return out


PROBE_CONFIGMAP = "aic-probes"


def probe_files() -> dict[str, str]:
    """Every *.sh in the package's data/probes by name: the probes and the lib.sh they load."""
    folder = resources.files("pytest_aiconformance").joinpath("data", "probes")
    return {f.name: f.read_text(encoding="utf-8")
            for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".sh")}


def probe_configmap(namespace: str) -> dict[str, Any]:
    """The probe scripts as a ConfigMap, mounted read-only at /probes in probe pods."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": PROBE_CONFIGMAP, "namespace": namespace},
        "data": probe_files(),
    }


def probe_container(name: str, scripts: list[str], profile: AcceleratorProfile,
                    *, image: str, alloc: Allocation | None = None,
                    extra_env: dict[str, str] | None = None,
                    restricted: bool = True) -> dict[str, Any]:
    """A container that runs the given probe scripts and exits."""
    command = "; ".join(f"sh /probes/{s}" for s in scripts) + "; true"
    env = profile.probe_env()
    env.update(extra_env or {})
    fields = accelerator_request(alloc) if alloc else {}
    spec = workloads.container(name, ["sh", "-c", command], image=image, env=env,
                               restricted=restricted, **fields)
    spec["volumeMounts"] = [{"name": "probes", "mountPath": "/probes", "readOnly": True}]
    return spec


def probe_pod(name: str, namespace: str, containers: list[dict[str, Any]], *,
              alloc: Allocation | None = None, claim_template: str | None = None,
              node_name: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """A probe pod; pinned nodes use a nodeSelector so the scheduler still decides."""
    templates = {"accel": claim_template} if alloc and alloc.mode == "dra" and claim_template \
        else None
    selector = {"kubernetes.io/hostname": node_name} if node_name else None
    pod = workloads.pod(name, namespace, containers, claim_templates=templates,
                        node_selector=selector, **kwargs)
    pod["spec"]["volumes"] = [{"name": "probes", "configMap": {"name": PROBE_CONFIGMAP}}]
    return pod


def device_count(values: dict[str, list[str]], profile: AcceleratorProfile) -> int:
    """Devices a probe container saw: numbered device files, or injected DRA env devices."""
    if profile.device_files.glob is not None:
        return int(values.get("DEVICE_COUNT", ["-1"])[-1])
    if profile.injected_env_prefix is not None:
        return int(values.get("ENV_DEVICE_COUNT", ["-1"])[-1])
    unknown_hardware(f"profile {profile.name} names neither device files nor injected env vars")


def count_scripts(profile: AcceleratorProfile) -> list[str]:
    if profile.device_files.glob is not None:
        return ["count_devices.sh", "device_uuids.sh"] if profile.tool else ["count_devices.sh"]
    return ["env_prefix.sh"]


def require_real_cluster(kube: Kube) -> None:
    """Skip (not observable) when every node is simulated: no pod, log, proxy or traffic runs."""
    nodes = kube.items("v1", "Node")
    if nodes and all(node_is_simulated(n) for n in nodes):
        names = ", ".join(n["metadata"]["name"] for n in nodes)
        not_observable(f"every node ({names}) is simulated (kwok) and runs no containers, so "
                       "workloads, logs and traffic cannot be observed")


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
