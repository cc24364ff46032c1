"""dra_support: the decisions of its checks (checks/test_dra_support.py), as pure functions.

Which DRA kinds are served, which DeviceClass to claim from (the profile's own, else one whose
driver publishes devices), whether every device of it is already held, whether a claim is
allocated and reserved for the pod from a device published for the pod's node, and whether
the container sees the device the claim allocated (injected variables or the device UUID).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_aiconformance.cluster.allocations import DeviceId
from pytest_aiconformance.cluster.profiles import AcceleratorProfile, profile_for_dra_driver

KINDS = ("DeviceClass", "ResourceClaim", "ResourceClaimTemplate", "ResourceSlice")

# A device as a driver published it: (its ResourceSlice, its entry in spec.devices).
Published = dict[DeviceId, tuple[Mapping[str, Any], Mapping[str, Any]]]


def _served(resources: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Kind -> API resource, subresources (``resourceclaims/status``) left out."""
    return {str(r["kind"]): r for r in resources if "/" not in r["name"]}


def kind_rows(resources: Iterable[Mapping[str, Any]], api_version: str) -> list[list[str]]:
    """NAME / APIVERSION / KIND rows, like kubectl api-resources."""
    served = _served(resources)
    return [[str(r["name"]), api_version, str(r["kind"])]
            for r in sorted(served.values(), key=lambda r: str(r["name"]))]


def missing_kinds(resources: Iterable[Mapping[str, Any]]) -> list[str]:
    """The DRA kinds the API group does not serve."""
    served = _served(resources)
    return [k for k in KINDS if k not in served]


def publishing_drivers(slices: Iterable[Mapping[str, Any]]) -> set[str]:
    """The drivers whose ResourceSlices publish at least one device."""
    return {str(d) for s in slices if s["spec"].get("devices") and (d := s["spec"].get("driver"))}


def choose_device_class(classes: Sequence[Mapping[str, Any]],
                        slices: Sequence[Mapping[str, Any]],
                        profile: AcceleratorProfile) -> tuple[str, str] | None:
    """The DeviceClass to claim from and a note for the evidence ("" when it is the profile's
    own): the profile's first existing class, else the first whose selectors name a driver
    that publishes devices; None when there is neither."""
    preferred = list(profile.dra.device_classes)
    names = [str(c["metadata"]["name"]) for c in classes]
    for wanted in preferred:
        if wanted in names:
            return wanted, ""
    drivers = publishing_drivers(slices)
    for cls in classes:
        # A class usually selects its driver by CEL: device.driver == "x".
        text = str(cls.get("spec", {}).get("selectors", ""))
        if any(d in text for d in drivers):
            name = str(cls["metadata"]["name"])
            return name, (f"no DeviceClass of profile {profile.name!r} ({', '.join(preferred)}); "
                          f"using {name}, whose driver publishes ResourceSlices")
    return None


def no_device_class(classes: Sequence[Mapping[str, Any]],
                    slices: Sequence[Mapping[str, Any]]) -> str:
    """Why no DeviceClass can be claimed from: the classes and the publishing drivers."""
    names = [str(c["metadata"]["name"]) for c in classes]
    return (f"no DeviceClass with published devices (DeviceClasses: {', '.join(names) or 'none'}; "
            "drivers publishing ResourceSlices: "
            f"{', '.join(sorted(publishing_drivers(slices))) or 'none'})")


def published_device_count(slices: Iterable[Mapping[str, Any]]) -> int:
    """Devices across the ResourceSlices."""
    return sum(len(s["spec"].get("devices", [])) for s in slices)


def slice_drivers(slices: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Every driver that has a ResourceSlice, sorted (whose devices a class without a driver
    selector may hold)."""
    return tuple(sorted({str(s["spec"].get("driver")) for s in slices}))


def all_held(devices: Mapping[str, set[DeviceId]], held: set[DeviceId]) -> str:
    """Per node "n: k of k in use" when other workloads hold every node-local device of the
    class (a new claim then stays unallocated and says nothing about the platform); "" when
    some device is free or none is node-local (the scheduler decides)."""
    if not any(devices.values()) or any(devs - held for devs in devices.values()):
        return ""
    return ", ".join(f"{n}: {len(d)} of {len(d)} in use" for n, d in sorted(devices.items()))


def reserved_for(claim: Mapping[str, Any], pod: str) -> bool:
    """The ResourceClaim is allocated and reserved for the pod."""
    status = claim.get("status", {})
    return bool(status.get("allocation")) and any(
        r.get("name") == pod for r in status.get("reservedFor", []) or [])


def published_devices(slices: Iterable[Mapping[str, Any]]) -> Published:
    """Every published device by (driver, pool, device), as allocation results name them."""
    return {(s["spec"]["driver"], s["spec"]["pool"]["name"], d["name"]): (s, d)
            for s in slices for d in s["spec"].get("devices", [])}


def allocated_device(result: Mapping[str, Any], published: Published,
                     node: str | None = None) -> tuple[Mapping[str, Any] | None, str]:
    """The published device an allocation result names, or None and why not: it is in no
    ResourceSlice, or (given the pod's ``node``) it is published for another node."""
    key = (result["driver"], result["pool"], result["device"])
    if key not in published:
        return None, f"allocated device {key} is not in any ResourceSlice"
    slice_, device = published[key]
    slice_node = slice_["spec"].get("nodeName")
    if node is not None and slice_node not in (None, node):
        return None, (f"device {result['device']} is published for node {slice_node}, "
                      f"but the pod runs on {node}")
    return device, ""


def event_source(event: Mapping[str, Any]) -> str:
    """The component that reported an event (events.k8s.io field, else the core one)."""
    return str(event.get("reportingComponent") or event.get("source", {}).get("component", ""))


def scheduled_events(events: Iterable[Mapping[str, Any]], pod: str) -> list[Mapping[str, Any]]:
    """The Scheduled events of the pod: the scheduler, not a nodeName, placed it."""
    return [e for e in events if e.get("reason") == "Scheduled"
            and e.get("involvedObject", {}).get("name") == pod]


def profile_for_drivers(drivers: Iterable[str]) -> AcceleratorProfile | None:
    """The profile of the first driver (by name) that a profile knows, or None."""
    return next((p for d in sorted(drivers) if (p := profile_for_dra_driver(d))), None)


def identity_scripts(profile: AcceleratorProfile) -> list[str] | None:
    """The probe script that reads the device identity inside a container: the injected
    variables where the driver injects them, else the tool's UUIDs where the driver publishes
    a UUID attribute; None when the profile has no way."""
    if profile.injected_env_prefix:
        return ["env_prefix.sh"]
    if profile.tool and profile.dra.uuid_attribute:
        return ["device_uuids.sh"]
    return None


def injected_device_names(log: str, prefix: str) -> list[str]:
    """The values of ``<prefix><n>=...`` lines in a container's environment dump."""
    return [v for k, v in ([*line.split("=", 1), ""][:2] for line in log.splitlines())
            if k.startswith(prefix) and k[len(prefix):].isdigit()]


def injected_identity_problem(values: Mapping[str, list[str]], log: str, prefix: str,
                              device: str) -> str:
    """What is wrong with the injected devices ("" when nothing): exactly one, and it is the
    allocated device."""
    count = int(values.get("ENV_DEVICE_COUNT", ["0"])[-1])
    if count != 1:
        return f"the container sees {count} injected devices, expected 1"
    names = injected_device_names(log, prefix)
    if device not in [n.strip('"') for n in names]:
        return f"allocated device {device} is not the one the container sees ({names})"
    return ""


def uuid_identity_problem(device: Mapping[str, Any], uuid_attribute: str | None,
                          seen: list[str]) -> str:
    """What is wrong with the UUIDs the container saw ("" when nothing): exactly the one the
    allocated device's UUID attribute states."""
    attr = device.get("attributes", {}).get(uuid_attribute or "", {}) or {}
    want = attr.get("string") or attr.get("version")
    if seen != [want]:
        return f"container sees UUIDs {seen}; the claim allocated {want}"
    return ""
