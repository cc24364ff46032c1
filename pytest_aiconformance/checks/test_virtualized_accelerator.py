"""virtualized_accelerator: virtualized accelerators are exposed where available (a SHOULD).

Essential: some node offers a virtualized accelerator: a vGPU (mediated device resources,
the vGPU-guest label, the GPU Operator's vm-vgpu workload config), a VFIO passthrough device
(vm-passthrough, KubeVirt VFIO resources) or an SR-IOV virtual function (DRA devices marked
as VFs, VF resources). Essential (real accelerators): a pod requesting one schedulable
virtualized device runs on it and sees exactly one device node; where the devices are
offered only through DRA (which this check does not claim) or the profile names no device
files, that half is not observed (Not verified), so the offer alone never makes a pass.

Decision: with no virtualization present the platform does not offer it, so the verdict is
Not Implemented (the check fails with what was looked for); it is never a pass, and not N/A,
because the checklist lists it as a SHOULD with no condition of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_aiconformance.kit import (
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    not_applicable,
    not_observable,
    probes,
    simulation,
    table,
    unknown_hardware,
    virtualized_accelerator,
)

pytestmark = pytest.mark.needs_containers


REQ = "virtualized_accelerator"
DRA = "resource.k8s.io/v1"


def survey(kube: Kube,
           evidence: EvidenceRecorder) -> list[virtualized_accelerator.VirtualizedResource]:
    """Every virtualized accelerator offer, with the nodes' labels and resources as evidence."""
    nodes = kube.items("v1", "Node")
    slices = kube.items(DRA, "ResourceSlice") if kube.serves(DRA, "ResourceSlice") else []
    found = virtualized_accelerator.classify_virtualization(nodes, slices)
    evidence.command(
        "kubectl get nodes -o custom-columns=NAME,WORKLOAD-CONFIG,VGPU-PRESENT,RESOURCES",
        table(virtualized_accelerator.node_rows(nodes),
              ["NAME", "WORKLOAD-CONFIG", "VGPU-PRESENT", "EXTENDED-RESOURCES"]))
    return found


@pytest.mark.requirement(REQ)
def test_virtualized_devices_offered(kube: Kube, evidence: EvidenceRecorder) -> None:
    """Some node offers vGPU, VFIO or SR-IOV virtual-function accelerators as devices."""
    found = survey(kube, evidence)
    for item in found:
        evidence.note(item.describe())
    assert found, (
        "Not Implemented: no node offers a virtualized accelerator (looked for vGPU resources "
        f"and the {virtualized_accelerator.VGPU_PRESENT_LABEL} label, "
        f"{virtualized_accelerator.WORKLOAD_CONFIG_LABEL}=vm-vgpu|vm-passthrough, KubeVirt VFIO "
        "resources, SR-IOV virtual functions as extended resources or DRA devices)")
    # A label says what a node is configured for; only a device a pod can get is an offer.
    devices = virtualized_accelerator.device_offers(found)
    assert devices, ("only node labels claim virtualization "
                     f"({virtualized_accelerator.summarize(found)}); no node offers a virtualized "
                     "device as an extended resource or DRA device")


@pytest.mark.gpu
@pytest.mark.requirement(REQ)
def test_pod_runs_on_virtualized_device(kube: Kube, aic_settings: Settings, namespace: str,
                                        run_context: RunContext, evidence: EvidenceRecorder,
                                        timeout: Callable[[float], float]) -> None:
    """A pod requesting one virtualized device runs on it and sees exactly one device node."""
    found = survey(kube, evidence)
    target = virtualized_accelerator.pod_target(found)
    devices = virtualized_accelerator.device_offers(found)
    if devices and target is None:
        # Offered, but only as DRA devices this check cannot claim generically: the offer
        # alone must not make the requirement pass, so the pod half stays undecided.
        not_observable("virtualized devices are offered only as DRA devices "
                       f"({virtualized_accelerator.summarize(devices)}); this check requests "
                       "extended resources, so a pod running on one was not observed")
    if target is None:
        not_applicable("no virtualized accelerator is offered as a schedulable resource "
                       f"(found: {virtualized_accelerator.summarize(found)}); the offer "
                       "check decides: TestVirtualizedAccelerator/VirtualizedDevicesOffered")
    simulation.require_running_containers(kube, [target.node])
    profile = aic_settings.profile
    glob, control = virtualized_accelerator.device_globs(target.kind, profile)
    if not glob:
        # Without the vendor's device-file pattern the pod's view cannot be counted.
        unknown_hardware(f"profile {profile.name} names no device files to count, so what a "
                         f"pod holding one {target.name} sees cannot be checked")
    run_context.create(probes.probe_configmap(namespace))
    ctr = probes.probe_container(
        "prober", ["list_devices.sh"], profile,
        extra_env={"DEVICE_GLOB": glob, "IGNORE_GLOB": control}, image=aic_settings.image("probe"))
    ctr["resources"] = {"limits": {target.name: "1"}}
    pod = probes.probe_pod("virt-probe", namespace, [ctr], node_name=target.node)
    evidence.yaml(f"pod requesting one {target.name} ({target.kind}) on {target.node}",
                  pod["spec"]["containers"][0]["resources"])
    out = probes.run_probe(kube, run_context, namespace, pod, timeout=timeout(300))["prober"]
    evidence.log("device nodes inside the container", kube.logs(namespace, "virt-probe",
                                                                "prober"),
                 f"kubectl logs virt-probe -n {namespace}")
    count = int(out.get("DEVICE_COUNT", ["-1"])[-1])
    assert count == 1, (f"a pod holding one {target.name} sees {count} device nodes matching "
                        f"{glob}, expected 1")
