"""NVIDIA's device plugin in the lab, host side: the driver root with the simulated NVML, the
plugin's configuration and command line, its modules in the build registry (no Go build)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from aiconformance_lab import build, gpusim, health, procs, realnode
from aiconformance_lab.errors import LabError
from aiconformance_lab.shape import LabShape
from aiconformance_lab.spec import ProcessSpec

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    d = tmp_path / "device-plugins"
    d.mkdir()
    monkeypatch.setattr(gpusim, "DEVICE_PLUGIN_DIR", d)
    return d


def _trailer(data: bytes) -> dict:
    assert data[-8:] == b"AICNVML1"
    size = int.from_bytes(data[-16:-8], "little")
    return json.loads(data[-16 - size:-16])


def test_the_library_carries_the_hardware_after_its_bytes(tmp_path):
    inv = {"driverVersion": "550.54.15", "devices": [{"index": 0}]}
    out = gpusim.nvml_library(b"\x7fELF...", inv, tmp_path)
    assert out.startswith(b"\x7fELF...")
    assert _trailer(out) == {**inv, "devRoot": str(tmp_path)}


@needs_root
def test_prepare_installs_the_driver_root(tmp_path):
    lib = tmp_path / "libnvidia-ml.so"
    lib.write_bytes(b"\x7fELF library")
    layout = gpusim.prepare(tmp_path / "gpusim", node="aic-real-0", gpus=2, nvml=lib)
    lib_dir = tmp_path / "gpusim" / "driver" / "usr" / "lib" / "x86_64-linux-gnu"
    assert layout.driver_lib_dir == lib_dir
    assert sorted(p.name for p in lib_dir.iterdir()) == ["libnvidia-ml.so.1",
                                                         "libnvidia-ml.so.550.54.15"]
    assert os.readlink(lib_dir / "libnvidia-ml.so.1") == "libnvidia-ml.so.550.54.15"
    data = (lib_dir / "libnvidia-ml.so.1").read_bytes()
    assert data.startswith(b"\x7fELF library")
    hw = _trailer(data)
    assert hw["devRoot"] == str(tmp_path / "gpusim")
    assert [d["uuid"] for d in hw["devices"]] == list(layout.uuids)
    assert hw["devices"][1]["minor"] == 1
    # Idempotent; cleanup takes the driver root with the rest.
    gpusim.prepare(tmp_path / "gpusim", node="aic-real-0", gpus=1, nvml=lib)
    assert len(_trailer((lib_dir / "libnvidia-ml.so.1").read_bytes())["devices"]) == 1
    gpusim.cleanup(tmp_path / "gpusim")
    assert not (tmp_path / "gpusim").exists()


def test_plugin_config_slices_every_gpu_it_sees_or_none():
    assert gpusim.nvidia_plugin_config("isolated") == {
        "version": "v1", "flags": {"migStrategy": "none"}}
    assert gpusim.nvidia_plugin_config("time-slicing", 4)["sharing"] == {
        "timeSlicing": {"renameByDefault": False,
                        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}
    assert gpusim.nvidia_plugin_config("time-slicing", 2, rename=True)["sharing"] == {
        "timeSlicing": {"renameByDefault": True,
                        "resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}}
    for mode, replicas, rename in (("all-devices", None, False), ("time-slicing", None, False),
                                   ("time-slicing", 1, False), ("isolated", None, True)):
        with pytest.raises(LabError):
            gpusim.nvidia_plugin_config(mode, replicas, rename=rename)


def test_whole_and_shared_gpus_are_two_instances_over_two_views():
    shape = LabShape(real_nodes=1, gpu_injection="runtime", shared_gpus=1,
                     time_slice_replicas=4)
    instances = realnode.nvidia_plugin_instances(shape)
    assert instances == {
        "gpu-plugin": ("whole", gpusim.nvidia_plugin_config("isolated")),
        "gpu-plugin-shared": ("shared", gpusim.nvidia_plugin_config("time-slicing", 4,
                                                                   rename=True))}
    alone = realnode.nvidia_plugin_instances(LabShape(real_nodes=1, gpu_injection="runtime",
                                                      gpu_plugin_mode="time-slicing"))
    assert alone == {"gpu-plugin": ("", gpusim.nvidia_plugin_config(
        "time-slicing", LabShape().time_slice_replicas))}


@needs_root
def test_views_see_only_their_gpus(tmp_path):
    lib = tmp_path / "libnvidia-ml.so"
    lib.write_bytes(b"\x7fELF")
    layout = gpusim.prepare(tmp_path / "g", node="aic-real-0", gpus=3, nvml=lib,
                            views={"whole": range(2), "shared": [2]})
    shared = gpusim.view(layout, "shared")
    assert sorted(p.name for p in shared.dev_dir.iterdir()) == ["nvidia2", "nvidiactl"]
    hw = _trailer((shared.driver_lib_dir / "libnvidia-ml.so.1").read_bytes())
    assert hw["devRoot"] == str(shared.directory)
    assert len(hw["devices"]) == 3  # the node's GPUs; the view's device nodes pick them
    assert sorted(p.name for p in gpusim.view(layout, "whole").dev_dir.iterdir()) == [
        "nvidia0", "nvidia1", "nvidiactl"]
    gpusim.prepare(tmp_path / "g", node="aic-real-0", gpus=3, nvml=lib)
    assert not (tmp_path / "g" / "views").exists()  # an earlier shape's views go
    with pytest.raises(LabError, match="names GPUs"):
        gpusim.prepare(tmp_path / "g", node="aic-real-0", gpus=1, nvml=lib, views={"x": [1]})


def test_plugin_argv(tmp_path):
    layout = gpusim.GpuSimLayout(tmp_path / "g", "aic-real-0", ())
    argv = gpusim.nvidia_plugin_argv(Path("/b/nvidia-device-plugin"), layout,
                                     tmp_path / "c.yaml", device_list="volume-mounts")
    root = tmp_path / "g" / "driver"
    assert argv == ["/b/nvidia-device-plugin", f"--driver-root={root}",
                    f"--driver-root-ctr-path={root}", f"--dev-root={tmp_path / 'g'}",
                    "--device-list-strategy=volume-mounts", "--device-id-strategy=uuid",
                    "--pass-device-specs=false", "--fail-on-init-error=true",
                    f"--config-file={tmp_path / 'c.yaml'}"]
    with pytest.raises(LabError, match="envvar or volume-mounts"):
        gpusim.nvidia_plugin_argv(Path("p"), layout, tmp_path / "c", device_list="direct")
    # The lab finds the process again (and stops it after a killed session) by its name.
    assert "nvidia-device-plugin" in procs.LAB_BINARIES


def test_which_shapes_run_nvidias_plugin():
    assert realnode.nvidia_plugin(LabShape(real_nodes=1, gpu_injection="runtime"))
    assert realnode.nvidia_plugin(LabShape(real_nodes=1, gpu_injection="runtime-envvar"))
    assert realnode.nvidia_plugin(LabShape(real_nodes=1, gpu_injection="runtime", shared_gpus=1,
                                           time_slice_replicas=2))
    assert not realnode.nvidia_plugin(LabShape(real_nodes=1))  # direct injection: ours
    assert not realnode.nvidia_plugin(LabShape(real_nodes=1, gpu_injection="runtime",
                                               gpu_plugin_mode="all-devices"))


def test_sockets_are_named_after_the_resource(plugin_dir):
    assert gpusim.nvidia_plugin_socket() == plugin_dir / "nvidia-gpu.sock"
    assert gpusim.nvidia_plugin_socket("nvidia.com/gpu.shared") == (
        plugin_dir / "nvidia-gpu.shared.sock")


def test_a_stale_socket_goes_a_live_one_stays(tmp_path, monkeypatch):
    # A short directory: pytest's (xdist's) tmp paths outgrow a unix socket's 108 bytes.
    plugin_dir = Path(tempfile.mkdtemp(prefix="aic-dp-", dir="/tmp"))
    monkeypatch.setattr(gpusim, "DEVICE_PLUGIN_DIR", plugin_dir)
    gpu_dir = tmp_path / "gpusim"
    (gpu_dir / "driver").mkdir(parents=True)
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(plugin_dir / "nvidia-gpu.sock"))
    live.listen(1)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(plugin_dir / "nvidia-gpu.shared.sock"))
    stale.close()  # bound, never listening: what a killed plugin leaves
    try:
        gpusim.cleanup(gpu_dir)
        assert (plugin_dir / "nvidia-gpu.sock").is_socket()
        assert not (plugin_dir / "nvidia-gpu.shared.sock").exists()
    finally:
        live.close()
        shutil.rmtree(plugin_dir)


def test_health_of_a_unix_socket():
    path = Path(tempfile.mkdtemp(prefix="aic-h-", dir="/tmp")) / "s.sock"
    spec = ProcessSpec("gpu-plugin", ["x"], f"unix:{path}", "plain", 1)
    ok, detail = health.probe(spec, None)  # type: ignore[arg-type]
    assert not ok
    assert detail.startswith(f"unix:{path} ")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        assert health.probe(spec, None) == (True, f"unix:{path} accepting")  # type: ignore
    shutil.rmtree(path.parent)


def test_build_registry_has_the_modules():
    nvml = build.module_for("libnvidia-ml.so")
    assert (nvml.name, nvml.cgo, nvml.buildmode) == ("nvml", True, "c-shared")
    args = nvml.go_build_args(Path("/o"))
    assert args[:4] == ["go", "build", "-trimpath", "-buildmode=c-shared"]
    assert args[-3:] == ["-o", "/o/libnvidia-ml.so", "."]
    assert nvml.go_env()["CGO_ENABLED"] == "1"
    plugin = build.module_for("nvidia-device-plugin")
    assert (plugin.name, plugin.targets, plugin.cgo) == ("nvidia", ("tool",), True)
    assert any("internal/info.version=v0.17.4" in flag for flag in plugin.ldflags)
    go_mod = (Path(build.source_root()) / "nvidia" / "go.mod").read_text()
    assert f"github.com/NVIDIA/k8s-device-plugin {build.NVIDIA_DEVICE_PLUGIN_VERSION}" in go_mod
    assert {"nvml", "nvidia"} <= set(realnode.MODULES)
