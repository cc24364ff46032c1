"""The lab's libnvidia-ml.so, called through NVML's C API (ctypes) as NVIDIA's programs call it:
the node's GPUs from the hardware the file carries, a view's subset, NVML's error codes."""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiconformance_lab import build, gpusim

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="device nodes need root")

SUCCESS, NOT_SUPPORTED, NOT_FOUND, INSUFFICIENT_SIZE, DRIVER_NOT_LOADED = 0, 3, 6, 7, 9


class PciInfo(ctypes.Structure):
    _fields_ = [("busIdLegacy", ctypes.c_char * 16), ("domain", ctypes.c_uint),
                ("bus", ctypes.c_uint), ("device", ctypes.c_uint),
                ("pciDeviceId", ctypes.c_uint), ("pciSubSystemId", ctypes.c_uint),
                ("busId", ctypes.c_char * 32)]


class Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                ("used", ctypes.c_ulonglong)]


@pytest.fixture(scope="module")
def library() -> Path:
    return build.build_module(build.module_for("libnvidia-ml.so")).binary("libnvidia-ml.so")


@pytest.fixture
def node(tmp_path: Path, library: Path) -> Iterator[gpusim.GpuSimLayout]:
    layout = gpusim.prepare(tmp_path / "gpusim", node="aic-real-0", gpus=3, nvml=library,
                            views={"shared": [2]})
    yield layout
    gpusim.cleanup(layout.directory)


def _open(lib_dir: Path) -> ctypes.CDLL:
    # RTLD_LOCAL and a distinct path per test: each load is its own NVML instance.
    nvml = ctypes.CDLL(str(lib_dir / "libnvidia-ml.so.1"))
    nvml.nvmlErrorString.restype = ctypes.c_char_p
    return nvml


def _uuid(nvml: ctypes.CDLL, handle: ctypes.c_void_p) -> str:
    buf = ctypes.create_string_buffer(96)
    assert nvml.nvmlDeviceGetUUID(handle, buf, 96) == SUCCESS
    return buf.value.decode()


def test_the_host_sees_every_gpu_of_the_node(node: gpusim.GpuSimLayout) -> None:
    nvml = _open(node.driver_lib_dir)
    assert nvml.nvmlInit_v2() == SUCCESS
    count = ctypes.c_uint()
    assert nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) == SUCCESS
    assert count.value == 3
    inv = json.loads(node.devices_json.read_text())
    for i, want in enumerate(inv["devices"]):
        handle = ctypes.c_void_p()
        assert nvml.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(handle)) == SUCCESS
        assert _uuid(nvml, handle) == want["uuid"]
        name = ctypes.create_string_buffer(96)
        assert nvml.nvmlDeviceGetName(handle, name, 96) == SUCCESS
        assert name.value.decode() == "NVIDIA H100 80GB HBM3"
        minor = ctypes.c_uint()
        assert nvml.nvmlDeviceGetMinorNumber(handle, ctypes.byref(minor)) == SUCCESS
        assert minor.value == want["minor"]
        pci = PciInfo()
        assert nvml.nvmlDeviceGetPciInfo_v3(handle, ctypes.byref(pci)) == SUCCESS
        assert pci.busId.decode() == want["pciBusId"]
        assert pci.pciDeviceId == 0x233010DE  # the mock's H100 SXM5
        memory = Memory()
        assert nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory)) == SUCCESS
        assert memory.total == 81559 << 20
        major, minor_cc = ctypes.c_int(), ctypes.c_int()
        assert nvml.nvmlDeviceGetCudaComputeCapability(
            handle, ctypes.byref(major), ctypes.byref(minor_cc)) == SUCCESS
        assert (major.value, minor_cc.value) == (9, 0)
        again = ctypes.c_void_p()
        assert nvml.nvmlDeviceGetHandleByUUID(want["uuid"].encode(),
                                              ctypes.byref(again)) == SUCCESS
        assert again.value == handle.value
    version = ctypes.create_string_buffer(80)
    assert nvml.nvmlSystemGetDriverVersion(version, 80) == SUCCESS
    assert version.value == b"550.54.15"
    assert nvml.nvmlSystemGetDriverVersion(version, 5) == INSUFFICIENT_SIZE
    cuda = ctypes.c_int()
    assert nvml.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(cuda)) == SUCCESS
    assert cuda.value == 12040
    missing = ctypes.c_void_p()
    assert nvml.nvmlDeviceGetHandleByUUID(b"GPU-00000000-0000-0000-0000-000000000000",
                                          ctypes.byref(missing)) == NOT_FOUND
    assert nvml.nvmlShutdown() == SUCCESS


def test_what_the_simulation_does_not_serve_is_not_supported(node: gpusim.GpuSimLayout) -> None:
    nvml = _open(node.driver_lib_dir)
    assert nvml.nvmlInit_v2() == SUCCESS
    handle = ctypes.c_void_p()
    assert nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) == SUCCESS
    speed = ctypes.c_uint()
    assert nvml.nvmlDeviceGetFanSpeed(handle, ctypes.byref(speed)) == NOT_SUPPORTED
    assert nvml.nvmlErrorString(NOT_SUPPORTED) == b"Not Supported"
    # What go-gpuallocator asks before an allocation: GPUs on one CPU's PCIe, no NVLink.
    other, level = ctypes.c_void_p(), ctypes.c_int()
    assert nvml.nvmlDeviceGetHandleByIndex_v2(1, ctypes.byref(other)) == SUCCESS
    assert nvml.nvmlDeviceGetTopologyCommonAncestor(handle, other, ctypes.byref(level)) == 0
    assert level.value == 40  # NVML_TOPOLOGY_NODE
    assert nvml.nvmlDeviceGetNvLinkState(handle, 0, ctypes.byref(speed)) == NOT_SUPPORTED
    nvml.nvmlShutdown()


def test_a_view_sees_only_its_gpus(node: gpusim.GpuSimLayout) -> None:
    shared = gpusim.view(node, "shared")
    nvml = _open(shared.driver_lib_dir)
    assert nvml.nvmlInit_v2() == SUCCESS
    count = ctypes.c_uint()
    assert nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) == SUCCESS
    assert count.value == 1
    handle, index = ctypes.c_void_p(), ctypes.c_uint()
    assert nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) == SUCCESS
    assert _uuid(nvml, handle) == node.uuids[2]
    assert nvml.nvmlDeviceGetIndex(handle, ctypes.byref(index)) == SUCCESS
    assert index.value == 0  # NVML numbers what a process sees from 0
    nvml.nvmlShutdown()


def test_a_library_without_hardware_is_a_driver_not_loaded(tmp_path: Path,
                                                           library: Path) -> None:
    plain = tmp_path / "lib"
    plain.mkdir()
    (plain / "libnvidia-ml.so.1").write_bytes(library.read_bytes())
    nvml = _open(plain)
    assert nvml.nvmlInit_v2() == DRIVER_NOT_LOADED
