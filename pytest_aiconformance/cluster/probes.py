"""In-container probes: the vendor-neutral scripts of data/probes run in pods, their
KEY=VALUE output read back from the pod log.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from pytest_aiconformance.cluster import workloads
from pytest_aiconformance.cluster.allocations import Allocation, accelerator_request
from pytest_aiconformance.cluster.client import Kube
from pytest_aiconformance.cluster.profiles import AcceleratorProfile
from pytest_aiconformance.cluster.run_objects import RunContext
from pytest_aiconformance.cluster.waits import Obj, Target, watch_until
from pytest_aiconformance.parsers import parse_key_values
from pytest_aiconformance.verdicts.outcomes import not_observable, unknown_hardware


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
    """The devices device_uuids.sh's listing shows the container holding (held_devices); not
    observable when the tool was missing or could not start in the container (no proof
    either way, never a platform failure)."""
    tool = profile.tool.command if profile.tool else "the vendor tool"
    if values.get("TOOL_MISSING", ["1"])[-1] != "0":
        not_observable(f"{tool} is not in {where}, so its device UUIDs cannot be read")
    if values.get("TOOL_UNRUNNABLE", ["0"])[-1] == "1":
        not_observable(f"{tool} is in {where} but could not start (exit status "
                       f"{values.get('TOOL_RC', ['?'])[-1]}: "
                       f"{' '.join(values.get('TOOL_LINE', []))[:200]}), so its device "
                       "UUIDs cannot be read")
    if profile.tool is None:
        return list(values.get("UUID", []))
    prefix = profile.sharing.partition_uuid_prefix if profile.sharing else None
    return held_devices(values.get("TOOL_LINE", []), profile.tool.uuid_regex, prefix)


def held_devices(lines: Sequence[str], uuid_regex: str,
                 partition_prefix: str | None) -> list[str]:
    """The device UUIDs a listing shows, a partition's parent left out.

    nvidia-smi -L prints a MIG device under its parent GPU's line, also inside a container that
    holds only the MIG device (recorded: tests/unit/data/recorded/nvidia-smi/
    h100-one-mig-in-pod-L.txt): that GPU line names where the partition lives, not a second
    device. So a whole-device UUID followed by partition UUIDs is their parent and is dropped;
    one followed by none is a device of its own. Distinct, in order of appearance.
    """
    pattern = re.compile(uuid_regex)
    found: list[str] = []
    parents: set[str] = set()
    last_whole: str | None = None
    for line in lines:
        for uuid in (m.group(0) for m in pattern.finditer(line)):
            if partition_prefix and uuid.startswith(partition_prefix):
                if last_whole is not None:
                    parents.add(last_whole)
            else:
                last_whole = uuid
            if uuid not in found:
                found.append(uuid)
    return [u for u in found if u not in parents]
