"""dra_support: the DRA v1 API is served and the scheduler allocates claims through it.

Essential: the four resource.k8s.io/v1 kinds are served; a DeviceClass and ResourceSlices
exist; a pod that uses a ResourceClaimTemplate (no nodeName: the scheduler must place it)
gets a claim that is allocated from a published device and reserved for the pod (not
observable when other workloads hold every device of the class).
Supporting: the allocated device's metadata is visible inside the container.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.kit import (
    Target,
    allocations,
    get_table,
    name,
    not_observable,
    probes,
    profile_for_dra_driver,
    simulation,
    table,
    unknown_hardware,
    watch_until,
    workloads,
)

DRA = "resource.k8s.io/v1"
META_HOLD_S = 5  # how long the metadata probe keeps its claim after reading what it sees
KINDS = ("DeviceClass", "ResourceClaim", "ResourceClaimTemplate", "ResourceSlice")


def source(event: dict[str, Any]) -> str:
    return str(event.get("reportingComponent") or event.get("source", {}).get("component", ""))


def _require_dra(kube) -> None:
    assert kube.serves(DRA), "the API server does not serve resource.k8s.io/v1"


def pick_device_class(kube, profile, evidence) -> tuple[str, list[dict[str, Any]]]:
    """The DeviceClass to claim from: the profile's own, else one whose driver publishes."""
    classes = kube.items(DRA, "DeviceClass")
    slices = kube.items(DRA, "ResourceSlice")
    drivers = {s["spec"].get("driver") for s in slices if s["spec"].get("devices")}
    evidence.command("kubectl get deviceclasses", get_table(classes, [("NAME", name)]))
    evidence.command(
        "kubectl get resourceslices",
        get_table(slices, [("NAME", name), ("NODE", lambda o: o["spec"].get("nodeName", "")),
                           ("DRIVER", lambda o: o["spec"].get("driver", "")),
                           ("DEVICES", lambda o: len(o["spec"].get("devices", [])))]),
    )
    preferred = list(profile.dra.device_classes)
    names = [name(c) for c in classes]
    for wanted in preferred:
        if wanted in names:
            return wanted, slices
    for cls in classes:
        # A class usually selects its driver by CEL: device.driver == "x".
        text = str(cls.get("spec", {}).get("selectors", ""))
        if any(d and d in text for d in drivers):
            evidence.note(f"no DeviceClass of profile {profile.name!r} ({', '.join(preferred)}); "
                          f"using {name(cls)}, whose driver publishes ResourceSlices")
            return name(cls), slices
    raise AssertionError(
        f"no DeviceClass with published devices (DeviceClasses: {', '.join(names) or 'none'}; "
        "drivers publishing ResourceSlices: "
        f"{', '.join(sorted(d for d in drivers if d)) or 'none'})"
    )


@pytest.mark.requirement("dra_support", junit="APIKindsServed")
def test_dra_api_kinds_served(kube, evidence):
    """The DRA v1 kinds are served by the API server."""
    resources = kube.resources(DRA)
    served = {r["kind"]: r for r in resources if "/" not in r["name"]}
    rows = [[r["name"], DRA, r["kind"]] for r in sorted(served.values(), key=lambda r: r["name"])]
    evidence.command("kubectl api-resources --api-group=resource.k8s.io",
                     table(rows, ["NAME", "APIVERSION", "KIND"]))
    missing = [k for k in KINDS if k not in served]
    assert not missing, f"resource.k8s.io/v1 does not serve {', '.join(missing)}"


def _require_free_device(kube, device_class: str, slices: list[dict[str, Any]]) -> None:
    """Not observable when other workloads hold every device of the class: a claim that
    stays unallocated then says nothing about the platform (a busy cluster is no failure)."""
    drivers = tuple(sorted({str(s["spec"].get("driver")) for s in slices}))
    devices = allocations.class_devices(kube, device_class, drivers)
    if not any(devices.values()):
        return  # none node-local (e.g. network-attached pools): let the scheduler decide
    held = allocations.allocated_devices(kube)
    if any(devs - held for devs in devices.values()):
        return
    in_use = ", ".join(f"{n}: {len(d)} of {len(d)} in use" for n, d in sorted(devices.items()))
    not_observable(f"every device of DeviceClass {device_class} is allocated ({in_use}), so "
                   "no claim can be allocated for a new pod")


@pytest.mark.requirement("dra_support", junit="DevicesPublished")
def test_dra_devices_published(kube, evidence, aic_settings):
    """A DeviceClass exists and ResourceSlices publish devices for it."""
    _require_dra(kube)
    device_class, slices = pick_device_class(kube, aic_settings.profile, evidence)
    devices = sum(len(s["spec"].get("devices", [])) for s in slices)
    assert devices > 0, "ResourceSlices exist but publish no devices"
    evidence.note(f"DeviceClass {device_class}; {len(slices)} ResourceSlices publish "
                  f"{devices} devices")


@pytest.mark.requirement("dra_support", junit="ClaimAllocatedAndReserved")
def test_dra_claim_allocated_and_reserved(kube, evidence, namespace, run_context, timeout,
                                          aic_settings):
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

    def reserved(objs: dict[str, dict[str, Any]]) -> bool:
        for claim in objs.values():
            status = claim.get("status", {})
            if status.get("allocation") and any(
                r.get("name") == "dra-pod" for r in status.get("reservedFor", []) or []
            ):
                return True
        return False

    claims = watch_until(
        kube, Target(DRA, "ResourceClaim", namespace), reserved, timeout=timeout(60),
        expected="a ResourceClaim allocated and reserved for pod dra-pod",
    )
    claim = next(c for c in claims.values() if reserved({"c": c}))
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
    published = {
        (s["spec"]["driver"], s["spec"]["pool"]["name"], d["name"]): (s, d)
        for s in slices for d in s["spec"].get("devices", [])
    }
    for result in results:
        key = (result["driver"], result["pool"], result["device"])
        assert key in published, f"allocated device {key} is not in any ResourceSlice"
        slice_, device = published[key]
        slice_node = slice_["spec"].get("nodeName")
        assert slice_node in (None, node), (
            f"device {result['device']} is published for node {slice_node}, "
            f"but the pod runs on {node}"
        )
        evidence.yaml(f"attributes of allocated device {result['device']} on {node}",
                      device.get("attributes", {}))
    # The scheduler records its Scheduled event asynchronously, after the binding.
    events = watch_until(
        kube, Target("v1", "Event", namespace),
        lambda objs: any(e.get("reason") == "Scheduled"
                         and e.get("involvedObject", {}).get("name") == "dra-pod"
                         for e in objs.values()),
        timeout=timeout(30), expected="the scheduler's Scheduled event for pod dra-pod",
    )
    scheduled = [e for e in events.values() if e.get("reason") == "Scheduled"
                 and e.get("involvedObject", {}).get("name") == "dra-pod"]
    evidence.command(f"kubectl get events -n {namespace} --field-selector "
                     "involvedObject.name=dra-pod,reason=Scheduled",
                     "\n".join(f"{e.get('reason')}: {e.get('message')} (from {source(e)})"
                               for e in scheduled))


@pytest.mark.gpu
@pytest.mark.requirement("dra_support", role="supporting", junit="DeviceMetadataInContainer")
def test_dra_device_metadata_in_container(kube, evidence, namespace, run_context, timeout,
                                          aic_settings):
    """The allocated device's identity reaches the container that holds the claim."""
    _require_dra(kube)
    device_class, slices = pick_device_class(kube, aic_settings.profile, evidence)
    drivers = {s["spec"]["driver"] for s in slices}
    profile = next((p for d in sorted(drivers) if (p := profile_for_dra_driver(d))), None)
    if profile is None:
        unknown_hardware(f"no accelerator profile knows DRA drivers {', '.join(sorted(drivers))}")
    nodes = sorted({s["spec"]["nodeName"] for s in slices if s["spec"].get("nodeName")})
    simulation.require_running_containers(kube, nodes)
    # Where some of the driver's nodes are simulated (kwok) the probe must land on one that
    # runs containers, or nothing would be seen; otherwise the scheduler picks freely.
    running = simulation.running_first(kube, nodes)
    pin = running[0] if len(running) < len(nodes) else None
    if profile.injected_env_prefix:
        scripts = ["env_prefix.sh"]
    elif profile.tool and profile.dra.uuid_attribute:
        scripts = ["device_uuids.sh"]
    else:
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

    def held(objs: dict[str, dict[str, Any]]) -> bool:
        return any(c.get("status", {}).get("allocation") and any(
            r.get("name") == "dra-meta" for r in c["status"].get("reservedFor") or [])
            for c in objs.values())

    claims = watch_until(kube, Target(DRA, "ResourceClaim", namespace), held,
                         timeout=timeout(300),
                         expected="the probe's ResourceClaim allocated and reserved for it")
    claim = next(c for c in claims.values() if held({"c": c}))
    out = probes.wait_probes(kube, namespace, [pod], timeout=timeout(300))[0][0]["prober"]
    evidence.log("what the container sees", kube.logs(namespace, "dra-meta", "prober"),
                 f"kubectl logs dra-meta -n {namespace}")
    result = claim["status"]["allocation"]["devices"]["results"][0]
    device = next(d for s in slices for d in s["spec"].get("devices", [])
                  if s["spec"]["driver"] == result["driver"]
                  and s["spec"]["pool"]["name"] == result["pool"] and d["name"] == result["device"])
    if profile.injected_env_prefix:
        count = int(out.get("ENV_DEVICE_COUNT", ["0"])[-1])
        assert count == 1, f"the container sees {count} injected devices, expected 1"
        names = [v for k, v in ([*line.split("=", 1), ""][:2] for line in
                                kube.logs(namespace, "dra-meta", "prober").splitlines())
                 if k.startswith(profile.injected_env_prefix) and k[len(
                     profile.injected_env_prefix):].isdigit()]
        assert result["device"] in [n.strip('"') for n in names], (
            f"allocated device {result['device']} is not the one the container sees ({names})"
        )
    else:
        attr = (device.get("attributes", {}).get(profile.dra.uuid_attribute or "", {}) or {})
        want = attr.get("string") or attr.get("version")
        seen = out.get("UUID", [])
        assert seen == [want], f"container sees UUIDs {seen}; the claim allocated {want}"
