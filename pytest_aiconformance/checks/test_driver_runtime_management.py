"""driver_runtime_management: drivers and the runtime hook are installed and managed (a SHOULD).

Essential (real accelerators): a vanilla image with no vendor userland (ubuntu) that requests
one accelerator gets the vendor's driver tool injected by the container runtime, and the
driver version it reports equals what the platform advertises for that device: the DRA
device attribute of the allocated device and/or the node label. The same image without a
request has no tool, so the tool came from the runtime, not from the image.
Supporting: the RuntimeClasses are inventoried, and the profile's RuntimeClass, when it
exists, admits the accelerator nodes.
Unknown vendor -> unknown hardware (never a failure). Simulated nodes -> not observable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    AcceleratorProfile,
    ClusterInfo,
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    allocations,
    driver_runtime_management,
    not_applicable,
    probes,
    simulation,
    table,
    unknown_hardware,
    workloads,
)

pytestmark = pytest.mark.needs_containers


REQ = "driver_runtime_management"
DRA = "resource.k8s.io/v1"


def known_profile(profile: AcceleratorProfile) -> AcceleratorProfile:
    """The profile, when a container can read its driver version; else unknown hardware."""
    if not driver_runtime_management.version_readable(profile):
        unknown_hardware(f"profile {profile.name} names no driver tool or version file to "
                         "read inside a container")
    return profile


@pytest.mark.requirement(REQ, role="supporting")
def test_runtime_classes_inventoried(kube: Kube, cluster_info: ClusterInfo,
                                    aic_settings: Settings, evidence: EvidenceRecorder) -> None:
    """RuntimeClasses are listed; the vendor's RuntimeClass admits the accelerator nodes."""
    profile = known_profile(aic_settings.profile)
    if not kube.serves("node.k8s.io/v1", "RuntimeClass"):
        raise AssertionError("node.k8s.io/v1 RuntimeClass is not served")
    classes = kube.items("node.k8s.io/v1", "RuntimeClass")
    evidence.command("kubectl get runtimeclass",
                     table(driver_runtime_management.runtime_class_rows(classes),
                           ["NAME", "HANDLER", "NODESELECTOR"]) if classes else
                     "No resources found")
    wanted = profile.runtime_class
    if not wanted:
        not_applicable(f"profile {profile.name} uses no RuntimeClass (its runtime hook is "
                       "the default handler or CDI)")
    rc = next((c for c in classes if c["metadata"]["name"] == wanted), None)
    if rc is None:
        not_applicable(f"no RuntimeClass {wanted}: the vendor runtime, if any, is the default "
                       "handler (DriverInjectedVersionMatches shows whether injection works)")
    nodes = cluster_info.accelerator_nodes
    refused = driver_runtime_management.refused_nodes(rc, nodes)
    evidence.note(f"RuntimeClass {wanted} (handler {rc.get('handler')}) admits "
                  f"{len(nodes) - len(refused)} of {len(nodes)} accelerator nodes")
    assert not refused, (f"RuntimeClass {wanted} does not admit accelerator nodes "
                         f"{', '.join(refused)}: its pods could not run there")


def _probe(name: str, namespace: str, profile: AcceleratorProfile,
           alloc: allocations.Allocation | None, rtc: str | None, image: str,
           node: str | None = None) -> dict[str, Any]:
    """A pod running driver_version.sh, holding one accelerator when ``alloc`` is given."""
    ctr = probes.probe_container("prober", ["driver_version.sh"], profile, alloc=alloc,
                                  image=image)
    return probes.probe_pod(name, namespace, [ctr], alloc=alloc,
                             claim_template="one-device" if alloc else None,
                             node_name=node, runtime_class=rtc)


def allocated_devices(kube: Kube, namespace: str, pod: str) -> list[Mapping[str, Any]]:
    """The ResourceSlice device entries allocated to a pod's claims (DRA mode)."""
    slices = kube.items(DRA, "ResourceSlice")
    return driver_runtime_management.claimed_devices(
        kube.items(DRA, "ResourceClaim", namespace), slices, pod)


@pytest.mark.gpu
@pytest.mark.requirement(REQ)
def test_driver_injected_version_matches(kube: Kube, cluster_info: ClusterInfo,
                                         aic_settings: Settings, namespace: str,
                                         run_context: RunContext, evidence: EvidenceRecorder,
                                         timeout: Callable[[float], float]) -> None:
    """A vanilla image gets the driver tool from the runtime; its version equals the advertised."""
    profile = known_profile(aic_settings.profile)
    alloc = allocations.choose_allocation(cluster_info, aic_settings.profile,
                                          aic_settings.allocation_mode)
    nodes = [n.name for n in cluster_info.accelerator_nodes]
    simulation.require_running_containers(kube, nodes)
    run_context.create(probes.probe_configmap(namespace))
    if alloc.mode == "dra":
        run_context.create(workloads.claim_template("one-device", namespace, alloc.device_class))
    rtc = profile.runtime_class if profile.runtime_class in cluster_info.runtime_classes else None
    image = aic_settings.image("driver-injection")
    pod = _probe("driver-probe", namespace, profile, alloc, rtc, image)
    evidence.note(f"vanilla image {image} (no vendor userland), "
                  f"one accelerator by {alloc.describe()}"
                  + (f", runtimeClassName {rtc}" if rtc else ""))
    out = probes.run_probe(kube, run_context, namespace, pod, timeout=timeout(300))["prober"]
    placed = kube.get("v1", "Pod", "driver-probe", namespace)
    node_name = placed["spec"]["nodeName"]
    evidence.log(f"driver as seen inside the container on {node_name}",
                 kube.logs(namespace, "driver-probe", "prober"),
                 f"kubectl logs driver-probe -n {namespace}")
    if profile.tool is not None:
        assert out.get("TOOL_MISSING", ["1"])[-1] == "0", (
            f"{profile.tool.command} was not injected into a vanilla container holding "
            f"{alloc.describe()}")
    seen = out.get("DRIVER_VERSION", [None])[-1]
    assert int(out.get("DRIVER_VERSION_DISTINCT", ["1"])[-1] or 1) <= 1, \
        "the devices in one container report different driver versions"

    node = kube.get("v1", "Node", node_name)
    devices = allocated_devices(kube, namespace, "driver-probe") if alloc.mode == "dra" else []
    advertised = driver_runtime_management.advertised_versions(profile, node, devices)
    evidence.command(
        f"kubectl get node {node_name} -o jsonpath='{{.metadata.labels}}'; "
        "kubectl get resourceslices (allocated device attributes)",
        "\n".join(f"{a.source}: {a.value}" for a in advertised) or "(nothing advertised)")
    ok, reason = driver_runtime_management.versions_match(seen, advertised)
    evidence.note(reason)
    assert ok, reason

    # Control: the same image without any request has no driver tool of its own.
    if profile.tool is not None:
        control = _probe("control-probe", namespace, profile, None, None, image, node=node_name)
        cout = probes.run_probe(kube, run_context, namespace, control,
                                 timeout=timeout(300))["prober"]
        evidence.log("same image, no request, same node",
                     kube.logs(namespace, "control-probe", "prober"),
                     f"kubectl logs control-probe -n {namespace}")
        assert cout.get("TOOL_MISSING", ["0"])[-1] == "1", (
            f"{profile.tool.command} exists in {image} without any "
            "accelerator request: the image is not vanilla, so injection is not shown")
