"""Accelerator allocation and in-container probes, shared by the isolation-style checks.

Allocation follows --allocation-mode: a DRA claim from the profile's DeviceClass, or the
device plugin's extended resource; `auto` prefers DRA when the class exists. Capacity is
counted the same two ways: allocatable extended resources minus what pods hold, or the
DeviceClass's devices in ResourceSlices minus those ResourceClaims have been allocated.
Probes are vendor-neutral shell scripts from the package's data/probes run in a vanilla
image (the profile's tool image where they run the vendor tool); their KEY=VALUE output is
read back from the pod log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pytest_aiconformance import gpu_sharing, workloads
from pytest_aiconformance.accelerators import AcceleratorProfile
from pytest_aiconformance.cluster import Kube
from pytest_aiconformance.discovery import AcceleratorNode, ClusterInfo
from pytest_aiconformance.isolation import RunContext
from pytest_aiconformance.outcomes import not_observable, unknown_hardware
from pytest_aiconformance.parsers import parse_key_values
from pytest_aiconformance.waiting import Obj, Target, watch_until

SIMULATED_ANNOTATION = "kwok.x-k8s.io/node"


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
    return run_probes(kube, ctx, namespace, [pod], timeout=timeout)[0][0]


def run_probes(kube: Kube, ctx: RunContext, namespace: str, pods: list[dict[str, Any]],
               *, timeout: float) -> list[tuple[dict[str, dict[str, list[str]]], Obj]]:
    """Run probe pods side by side to completion; per pod its KEY=VALUE output per container
    and its final Pod object (whose container states say when each ran)."""
    for pod in pods:
        ctx.create(pod)
    return wait_probes(kube, namespace, pods, timeout=timeout)


def wait_probes(kube: Kube, namespace: str, pods: list[dict[str, Any]],
                *, timeout: float) -> list[tuple[dict[str, dict[str, list[str]]], Obj]]:
    """Wait for probe pods already created (run_probes without the creation): for a check
    that must read something while they run."""
    names = {pod["metadata"]["name"] for pod in pods}

    def finished(objs: dict[str, Obj]) -> bool:
        done = {o["metadata"]["name"] for o in objs.values()
                if o.get("status", {}).get("phase") in ("Succeeded", "Failed")}
        return names <= done

    done = watch_until(kube, Target("v1", "Pod", namespace), finished, timeout=timeout,
                       expected=f"probe pod(s) {', '.join(sorted(names))} to finish")
    by_name = {o["metadata"]["name"]: o for o in done.values()}
    results = []
    for pod in pods:
        name = pod["metadata"]["name"]
        out = {c["name"]: parse_key_values(kube.logs(namespace, name, c["name"]))
               for c in pod["spec"]["containers"]}
        phase = by_name[name]["status"]["phase"]
        if phase != "Succeeded":
            raise AssertionError(f"probe pod {name} ended {phase}; output: {out}")
        results.append((out, by_name[name]))
    return results


def ran_together(pods: list[Obj]) -> bool:
    """Whether every pod's first container was running while all the others were: the last
    one started before the first one finished."""
    spans = []
    for pod in pods:
        states = pod.get("status", {}).get("containerStatuses") or [{}]
        ended = states[0].get("state", {}).get("terminated") or {}
        spans.append((str(ended.get("startedAt", "")), str(ended.get("finishedAt", ""))))
    return all(s and f for s, f in spans) and max(s for s, _ in spans) < min(
        f for _, f in spans)


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
                    restricted: bool = True, hold_s: int = 0) -> dict[str, Any]:
    """A container that runs the given probe scripts and exits (after `hold_s` seconds, so
    that probes started together can be shown to have run at the same time)."""
    command = "; ".join(f"sh /probes/{s}" for s in scripts) + (
        f"; sleep {hold_s}; true" if hold_s else "; true")
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
    if alloc is not None and alloc.runtime_class:
        kwargs.setdefault("runtime_class", alloc.runtime_class)
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


# --- DRA capacity ---------------------------------------------------------------------------

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


def shared_devices(node: AcceleratorNode, profile: AcceleratorProfile,
                   resource: str | None = None) -> str:
    """Why a node's accelerators (of ``resource``, where given) are shared between pods
    (time-slicing, MPS, GKE time-sharing), or "": two pods there may rightly see the same
    device, so such a node cannot show distinct devices."""
    return gpu_sharing.time_shared_reason(node.labels, node.resources, profile, resource)


# Probe scripts that run the vendor's tool, which needs the profile's tool image.
TOOL_SCRIPTS = frozenset({"device_uuids.sh", "driver_version.sh"})


def probe_image_key(profile: AcceleratorProfile, scripts: list[str]) -> str:
    """The images.yaml key for a probe running `scripts`: the profile's tool image when one
    of them runs the vendor tool (an injected glibc nvidia-smi cannot start in the musl
    busybox `probe` image), else the vanilla `probe` image."""
    if profile.tool is not None and TOOL_SCRIPTS & set(scripts):
        return profile.tool.image
    return "probe"


def probed_uuids(values: dict[str, list[str]], profile: AcceleratorProfile,
                 where: str) -> list[str]:
    """The device UUIDs device_uuids.sh printed; not observable when the tool was missing or
    could not start in the container (no proof either way, never a platform failure)."""
    tool = profile.tool.command if profile.tool else "the vendor tool"
    if values.get("TOOL_MISSING", ["1"])[-1] != "0":
        not_observable(f"{tool} is not in {where}, so its device UUIDs cannot be read")
    if values.get("TOOL_UNRUNNABLE", ["0"])[-1] == "1":
        not_observable(f"{tool} is in {where} but could not start (exit status "
                       f"{values.get('TOOL_RC', ['?'])[-1]}: "
                       f"{' '.join(values.get('TOOL_LINE', []))[:200]}), so its device "
                       "UUIDs cannot be read")
    return list(values.get("UUID", []))
