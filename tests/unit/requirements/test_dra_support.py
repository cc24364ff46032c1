"""dra_support decisions on synthetic DRA objects, with cases that must fail.

DeviceClasses, ResourceSlices, ResourceClaims and events are written inline in the shapes the
API server returns for resource.k8s.io/v1 (the NVIDIA DRA driver and the dra-example-driver,
whose containers get GPU_DEVICE_<n> variables).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.requirements import dra_support

NVIDIA = get_profile("nvidia")
EXAMPLE = get_profile("dra-example")
DRA = "resource.k8s.io/v1"


def api_resource(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "kind": kind, "namespaced": True}


RESOURCES = [api_resource("deviceclasses", "DeviceClass"),
             api_resource("resourceclaims", "ResourceClaim"),
             api_resource("resourceclaims/status", "ResourceClaim"),
             api_resource("resourceclaimtemplates", "ResourceClaimTemplate"),
             api_resource("resourceslices", "ResourceSlice")]


def test_every_kind_served() -> None:
    assert dra_support.missing_kinds(RESOURCES) == []
    assert dra_support.kind_rows(RESOURCES, DRA) == [
        ["deviceclasses", DRA, "DeviceClass"], ["resourceclaims", DRA, "ResourceClaim"],
        ["resourceclaimtemplates", DRA, "ResourceClaimTemplate"],
        ["resourceslices", DRA, "ResourceSlice"]]


def test_missing_kinds_are_named() -> None:
    # Only a subresource serves ResourceClaim: the kind itself is not served.
    partial = [RESOURCES[0], RESOURCES[2], RESOURCES[4]]
    assert dra_support.missing_kinds(partial) == ["ResourceClaim", "ResourceClaimTemplate"]
    assert dra_support.missing_kinds([]) == list(dra_support.KINDS)


def device_class(name: str, driver: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{driver}"'}}]}}


def device(name: str, **attributes: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "attributes": attributes}


def resource_slice(node: str | None, driver: str, *devices: dict[str, Any],
                   pool: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"driver": driver, "pool": {"name": pool or node or "shared",
                                                       "generation": 1},
                            "devices": list(devices)}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": f"{node}-{driver}"}, "spec": spec}


GPU_SLICE = resource_slice("gpu-0", "gpu.nvidia.com",
                           device("gpu-0", uuid={"string": "GPU-aaaa"}),
                           device("gpu-1", uuid={"string": "GPU-bbbb"}))
EXAMPLE_SLICE = resource_slice("node-a", "gpu.example.com", device("gpu-3"))
EMPTY_SLICE = resource_slice("cpu-0", "net.example.com")


def test_the_profiles_device_class_first() -> None:
    classes = [device_class("example", "gpu.example.com"),
               device_class("mig.nvidia.com", "gpu.nvidia.com"),
               device_class("gpu.nvidia.com", "gpu.nvidia.com")]
    assert dra_support.choose_device_class(classes, [GPU_SLICE], NVIDIA) == ("gpu.nvidia.com", "")


def test_a_class_of_a_publishing_driver_is_the_fallback() -> None:
    classes = [device_class("net", "net.example.com"), device_class("example", "gpu.example.com")]
    chosen = dra_support.choose_device_class(classes, [EMPTY_SLICE, EXAMPLE_SLICE], NVIDIA)
    assert chosen == ("example", "no DeviceClass of profile 'nvidia' (gpu.nvidia.com, "
                                 "mig.nvidia.com); using example, whose driver publishes "
                                 "ResourceSlices")


def test_no_class_with_published_devices() -> None:
    classes = [device_class("net", "net.example.com")]
    assert dra_support.choose_device_class(classes, [EMPTY_SLICE], NVIDIA) is None
    assert dra_support.no_device_class(classes, [EMPTY_SLICE, EXAMPLE_SLICE]) == (
        "no DeviceClass with published devices (DeviceClasses: net; drivers publishing "
        "ResourceSlices: gpu.example.com)")
    assert dra_support.no_device_class([], []) == (
        "no DeviceClass with published devices (DeviceClasses: none; drivers publishing "
        "ResourceSlices: none)")


def test_published_devices_and_drivers() -> None:
    slices = [GPU_SLICE, EXAMPLE_SLICE, EMPTY_SLICE]
    assert dra_support.published_device_count(slices) == 3
    assert dra_support.published_device_count([EMPTY_SLICE]) == 0
    assert dra_support.publishing_drivers(slices) == {"gpu.nvidia.com", "gpu.example.com"}
    assert dra_support.slice_drivers(slices) == ("gpu.example.com", "gpu.nvidia.com",
                                                 "net.example.com")


def test_all_held_only_when_no_node_local_device_is_free() -> None:
    devices = {"gpu-0": {("gpu.nvidia.com", "gpu-0", "gpu-0"),
                         ("gpu.nvidia.com", "gpu-0", "gpu-1")},
               "gpu-1": {("gpu.nvidia.com", "gpu-1", "gpu-0")}}
    every = devices["gpu-0"] | devices["gpu-1"]
    assert dra_support.all_held(devices, every) == "gpu-0: 2 of 2 in use, gpu-1: 1 of 1 in use"
    assert dra_support.all_held(devices, every - {("gpu.nvidia.com", "gpu-1", "gpu-0")}) == ""
    # No node-local device (network-attached pools): the scheduler decides, nothing to say.
    assert dra_support.all_held({}, set()) == ""
    assert dra_support.all_held({"gpu-0": set()}, set()) == ""


def claim(pod: str | None, *results: tuple[str, str, str]) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if results:
        status["allocation"] = {"devices": {"results": [
            {"request": "accel", "driver": d, "pool": p, "device": n} for d, p, n in results]}}
    if pod:
        status["reservedFor"] = [{"resource": "pods", "name": pod, "uid": "u"}]
    return {"metadata": {"name": "dra-pod-accel-x"}, "status": status}


def test_reserved_for_needs_allocation_and_the_pod() -> None:
    allocated = ("gpu.nvidia.com", "gpu-0", "gpu-0")
    assert dra_support.reserved_for(claim("dra-pod", allocated), "dra-pod")
    assert not dra_support.reserved_for(claim("other", allocated), "dra-pod")
    assert not dra_support.reserved_for(claim(None, allocated), "dra-pod")
    assert not dra_support.reserved_for(claim("dra-pod"), "dra-pod")  # reserved, not allocated
    assert not dra_support.reserved_for({}, "dra-pod")


def result(driver: str, pool: str, name: str) -> dict[str, str]:
    return {"request": "accel", "driver": driver, "pool": pool, "device": name}


def test_allocated_device_published_for_the_pods_node() -> None:
    published = dra_support.published_devices([GPU_SLICE, EXAMPLE_SLICE])
    found, problem = dra_support.allocated_device(result("gpu.nvidia.com", "gpu-0", "gpu-1"),
                                                  published, "gpu-0")
    assert (found, problem) == (device("gpu-1", uuid={"string": "GPU-bbbb"}), "")


def test_allocated_device_on_another_node_fails() -> None:
    published = dra_support.published_devices([GPU_SLICE])
    found, problem = dra_support.allocated_device(result("gpu.nvidia.com", "gpu-0", "gpu-0"),
                                                  published, "gpu-7")
    assert found is None
    assert problem == "device gpu-0 is published for node gpu-0, but the pod runs on gpu-7"
    # Without a node (the metadata check) only publication matters.
    found, _ = dra_support.allocated_device(result("gpu.nvidia.com", "gpu-0", "gpu-0"),
                                            published)
    assert found is not None


def test_unpublished_device_fails_and_pool_devices_fit_any_node() -> None:
    published = dra_support.published_devices(
        [resource_slice(None, "gpu.example.com", device("shared-0"), pool="fabric")])
    found, problem = dra_support.allocated_device(result("gpu.example.com", "fabric", "gone"),
                                                  published, "node-a")
    assert found is None
    assert problem == ("allocated device ('gpu.example.com', 'fabric', 'gone') is not in any "
                       "ResourceSlice")
    found, problem = dra_support.allocated_device(
        result("gpu.example.com", "fabric", "shared-0"), published, "node-a")
    assert (found, problem) == (device("shared-0"), "")


def test_scheduled_events_of_the_pod() -> None:
    events = [{"reason": "Scheduled", "involvedObject": {"name": "dra-pod"},
               "message": "Successfully assigned ns/dra-pod to gpu-0",
               "reportingComponent": "default-scheduler"},
              {"reason": "Pulled", "involvedObject": {"name": "dra-pod"}},
              {"reason": "Scheduled", "involvedObject": {"name": "other"},
               "source": {"component": "default-scheduler"}}]
    assert dra_support.scheduled_events(events, "dra-pod") == [events[0]]
    assert dra_support.scheduled_events(events[1:2], "dra-pod") == []
    assert dra_support.event_source(events[0]) == "default-scheduler"
    assert dra_support.event_source(events[2]) == "default-scheduler"
    assert dra_support.event_source({}) == ""


def test_profile_and_scripts_for_the_drivers() -> None:
    assert dra_support.profile_for_drivers(["unknown.example.org", "gpu.nvidia.com"]) == NVIDIA
    assert dra_support.profile_for_drivers(["unknown.example.org"]) is None
    assert dra_support.identity_scripts(EXAMPLE) == ["env_prefix.sh"]
    assert dra_support.identity_scripts(NVIDIA) == ["device_uuids.sh"]
    # AMD's driver publishes no UUID attribute: identity cannot be compared.
    assert dra_support.identity_scripts(get_profile("amd")) is None


ENV_LOG = ("HOSTNAME=dra-meta\nGPU_DEVICE_0=\"gpu-3\"\nGPU_DEVICE_0_RESOURCE_CLAIM=x\n"
           "GPU_DEVICE_COUNT_X=1\nENV_DEVICE_COUNT=1\n")


def test_injected_device_names() -> None:
    assert dra_support.injected_device_names(ENV_LOG, "GPU_DEVICE_") == ['"gpu-3"']
    assert dra_support.injected_device_names("PATH=/bin\n", "GPU_DEVICE_") == []


@pytest.mark.parametrize(("count", "log", "problem"), [
    ("1", ENV_LOG, ""),
    ("2", ENV_LOG + "GPU_DEVICE_1=gpu-4\n", "the container sees 2 injected devices, expected 1"),
    ("0", "", "the container sees 0 injected devices, expected 1"),
    ("1", ENV_LOG.replace("gpu-3", "gpu-5"),
     "allocated device gpu-3 is not the one the container sees (['\"gpu-5\"'])"),
])
def test_injected_identity(count: str, log: str, problem: str) -> None:
    values = {"ENV_DEVICE_COUNT": [count]}
    assert dra_support.injected_identity_problem(values, log, "GPU_DEVICE_", "gpu-3") == problem


def test_uuid_identity() -> None:
    gpu = device("gpu-0", uuid={"string": "GPU-aaaa"})
    assert dra_support.uuid_identity_problem(gpu, "uuid", ["GPU-aaaa"]) == ""
    assert dra_support.uuid_identity_problem(gpu, "uuid", ["GPU-bbbb"]) == (
        "container sees UUIDs ['GPU-bbbb']; the claim allocated GPU-aaaa")
    assert dra_support.uuid_identity_problem(gpu, "uuid", ["GPU-aaaa", "GPU-bbbb"]) != ""
    assert dra_support.uuid_identity_problem(gpu, "uuid", []) != ""
    # No UUID attribute on the device: nothing the container sees can match.
    assert dra_support.uuid_identity_problem(device("gpu-0"), "uuid", ["GPU-aaaa"]) == (
        "container sees UUIDs ['GPU-aaaa']; the claim allocated None")
