"""dra_support: the DRA v1 API is served and the scheduler allocates claims through it.

Essential: the four resource.k8s.io/v1 kinds are served; a DeviceClass and ResourceSlices
exist; a pod that uses a ResourceClaimTemplate (no nodeName: the scheduler must place it)
gets a claim that is allocated from a published device and reserved for the pod (not
observable when other workloads hold every device of the class).
Supporting: the allocated device's metadata is visible inside the container.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    AcceleratorProfile,
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    Target,
    allocations,
    dra_support,
    get_table,
    name,
    not_observable,
    probes,
    simulation,
    table,
    unknown_hardware,
    watch_until,
    workloads,
)

DRA = "resource.k8s.io/v1"
META_HOLD_S = 5  # how long the metadata probe keeps its claim after reading what it sees


def _require_dra(kube: Kube) -> None:
    assert kube.serves(DRA), "the API server does not serve resource.k8s.io/v1"


def pick_device_class(kube: Kube, profile: AcceleratorProfile,
                      evidence: EvidenceRecorder) -> tuple[str, list[dict[str, Any]]]:
    """The DeviceClass to claim from: the profile's own, else one whose driver publishes."""
    classes = kube.items(DRA, "DeviceClass")
    slices = kube.items(DRA, "ResourceSlice")
    evidence.command("kubectl get deviceclasses", get_table(classes, [("NAME", name)]))
    evidence.command(
        "kubectl get resourceslices",
        get_table(slices, [("NAME", name), ("NODE", lambda o: o["spec"].get("nodeName", "")),
                           ("DRIVER", lambda o: o["spec"].get("driver", "")),
                           ("DEVICES", lambda o: len(o["spec"].get("devices", [])))]),
    )
    chosen = dra_support.choose_device_class(classes, slices, profile)
    if chosen is None:
        raise AssertionError(dra_support.no_device_class(classes, slices))
    device_class, note = chosen
    if note:
        evidence.note(note)
    return device_class, slices


@pytest.mark.requirement("dra_support", junit="APIKindsServed")
def test_dra_api_kinds_served(kube: Kube, evidence: EvidenceRecorder) -> None:
    """The DRA v1 kinds are served by the API server."""
    resources = kube.resources(DRA)
    evidence.command("kubectl api-resources --api-group=resource.k8s.io",
                     table(dra_support.kind_rows(resources, DRA), ["NAME", "APIVERSION", "KIND"]))
    missing = dra_support.missing_kinds(resources)
    assert not missing, f"resource.k8s.io/v1 does not serve {', '.join(missing)}"


def _require_free_device(kube: Kube, device_class: str, slices: list[dict[str, Any]]) -> None:
    """Not observable when other workloads hold every device of the class: a claim that
    stays unallocated then says nothing about the platform (a busy cluster is no failure)."""
    devices = allocations.class_devices(kube, device_class, dra_support.slice_drivers(slices))
    if not any(devices.values()):
        return  # none node-local (e.g. network-attached pools): let the scheduler decide
    in_use = dra_support.all_held(devices, allocations.allocated_devices(kube))
    if in_use:
        not_observable(f"every device of DeviceClass {device_class} is allocated ({in_use}), "
                       "so no claim can be allocated for a new pod")


@pytest.mark.requirement("dra_support", junit="DevicesPublished")
def test_dra_devices_published(kube: Kube, evidence: EvidenceRecorder,
                               aic_settings: Settings) -> None:
    """A DeviceClass exists and ResourceSlices publish devices for it."""
    _require_dra(kube)
    device_class, slices = pick_device_class(kube, aic_settings.profile, evidence)
    devices = dra_support.published_device_count(slices)
    assert devices > 0, "ResourceSlices exist but publish no devices"
    evidence.note(f"DeviceClass {device_class}; {len(slices)} ResourceSlices publish "
                  f"{devices} devices")


@pytest.mark.requirement("dra_support", junit="ClaimAllocatedAndReserved")
def test_dra_claim_allocated_and_reserved(kube: Kube, evidence: EvidenceRecorder, namespace: str,
                                          run_context: RunContext,
                                          timeout: Callable[[float], float],
                                          aic_settings: Settings) -> None:
    """A pod using a ResourceClaimTemplate is scheduled and its claim is allocated and reserved."""
    _require_dra(kube)
    device_class, slices = pick_device_class(kube, aic_settings.profile, evidence)
    _require_free_device(kube, device_class, slices)
    run_context.create(workloads.claim_template("one-device", namespace, device_class))
    pod = workloads.pod(
        "dra-pod", namespace,
        [workloads.container("ctr", ["sh", "-c", "env; sleep 3600"],
                             image=aic_settings.image("probe"), claims=["accel"])],
        claim_templates={"accel": "one-device"},
    )
    assert "nodeName" not in pod["spec"], "the scheduler must place the pod"
    evidence.yaml("pod and claim template (pod has no nodeName: the scheduler places it)", pod)
    run_context.create(pod)

    claims = watch_until(
        kube, Target(DRA, "ResourceClaim", namespace),
        lambda objs: any(dra_support.reserved_for(c, "dra-pod") for c in objs.values()),
        timeout=timeout(60), expected="a ResourceClaim allocated and reserved for pod dra-pod",
    )
    claim = next(c for c in claims.values() if dra_support.reserved_for(c, "dra-pod"))
    results = claim["status"]["allocation"]["devices"]["results"]
    evidence.command(
        f"kubectl get resourceclaims -n {namespace}",
        get_table([claim], [("NAME", name), ("STATE", lambda _: "allocated,reserved")]),
    )
    evidence.yaml("allocation", {"devices": results,
                                 "reservedFor": claim["status"]["reservedFor"]},
                  f"kubectl get resourceclaim {name(claim)} -n {namespace} -o yaml")
    placed = watch_until(
        kube, Target("v1", "Pod", namespace, name="dra-pod"),
        lambda objs: any(o.get("spec", {}).get("nodeName") for o in objs.values()),
        timeout=timeout(60), expected="pod dra-pod bound to a node by the scheduler",
    )
    node = next(iter(placed.values()))["spec"]["nodeName"]
    # The device must be one a driver published, on the node the pod landed on.
    published = dra_support.published_devices(slices)
    for result in results:
        device, problem = dra_support.allocated_device(result, published, node)
        assert device is not None, problem
        evidence.yaml(f"attributes of allocated device {result['device']} on {node}",
                      device.get("attributes", {}))
    # The scheduler records its Scheduled event asynchronously, after the binding.
    events = watch_until(
        kube, Target("v1", "Event", namespace),
        lambda objs: bool(dra_support.scheduled_events(objs.values(), "dra-pod")),
        timeout=timeout(30), expected="the scheduler's Scheduled event for pod dra-pod",
    )
    scheduled = dra_support.scheduled_events(events.values(), "dra-pod")
    evidence.command(f"kubectl get events -n {namespace} --field-selector "
                     "involvedObject.name=dra-pod,reason=Scheduled",
                     "\n".join(f"{e.get('reason')}: {e.get('message')} "
                               f"(from {dra_support.event_source(e)})" for e in scheduled))


@pytest.mark.gpu
@pytest.mark.requirement("dra_support", role="supporting", junit="DeviceMetadataInContainer")
def test_dra_device_metadata_in_container(kube: Kube, evidence: EvidenceRecorder,
                                          namespace: str, run_context: RunContext,
                                          timeout: Callable[[float], float],
                                          aic_settings: Settings) -> None:
    """The allocated device's identity reaches the container that holds the claim."""
    _require_dra(kube)
    device_class, slices = pick_device_class(kube, aic_settings.profile, evidence)
    drivers = {s["spec"]["driver"] for s in slices}
    profile = dra_support.profile_for_drivers(drivers)
    if profile is None:
        unknown_hardware(f"no accelerator profile knows DRA drivers {', '.join(sorted(drivers))}")
    nodes = sorted({s["spec"]["nodeName"] for s in slices if s["spec"].get("nodeName")})
    simulation.require_running_containers(kube, nodes)
    # Where some of the driver's nodes are simulated (kwok) the probe must land on one that
    # runs containers, or nothing would be seen; otherwise the scheduler picks freely.
    running = simulation.running_first(kube, nodes)
    pin = running[0] if len(running) < len(nodes) else None
    scripts = dra_support.identity_scripts(profile)
    if scripts is None:
        unknown_hardware(f"profile {profile.name} has no way to read device identity inside "
                         "a container")
    run_context.create(probes.probe_configmap(namespace))
    run_context.create(workloads.claim_template("one-device", namespace, device_class))
    alloc = allocations.Allocation("dra", profile, device_class=device_class)
    image = aic_settings.image(probes.probe_image_key(profile, scripts))
    # The probe holds its claim a little after reading: the claim made from the template is
    # deallocated and deleted once the pod has finished, so it is read while the pod runs.
    pod = probes.probe_pod("dra-meta", namespace, [probes.probe_container(
        "prober", scripts, profile, alloc=alloc, image=image, hold_s=META_HOLD_S)],
        alloc=alloc, claim_template="one-device", node_name=pin)
    if pin:
        evidence.note(f"pinned to {pin}: the driver's other nodes are simulated")
    run_context.create(pod)

    claims = watch_until(
        kube, Target(DRA, "ResourceClaim", namespace),
        lambda objs: any(dra_support.reserved_for(c, "dra-meta") for c in objs.values()),
        timeout=timeout(300), expected="the probe's ResourceClaim allocated and reserved for it")
    claim = next(c for c in claims.values() if dra_support.reserved_for(c, "dra-meta"))
    out = probes.wait_probes(kube, namespace, [pod], timeout=timeout(300))[0][0]["prober"]
    log = kube.logs(namespace, "dra-meta", "prober")
    evidence.log("what the container sees", log, f"kubectl logs dra-meta -n {namespace}")
    result = claim["status"]["allocation"]["devices"]["results"][0]
    device, problem = dra_support.allocated_device(result, dra_support.published_devices(slices))
    assert device is not None, problem
    if profile.injected_env_prefix:
        problem = dra_support.injected_identity_problem(out, log, profile.injected_env_prefix,
                                                        result["device"])
    else:
        problem = dra_support.uuid_identity_problem(device, profile.dra.uuid_attribute,
                                                    out.get("UUID", []))
    assert not problem, problem
