"""The lab's simulated GPUs, host side: the gpusim dir's layout (device nodes need root), stable
UUIDs, the device plugin's command line and the exporter's manifests (no Go build needed)."""

from __future__ import annotations

import errno
import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from aiconformance_lab import build, gpusim, objects, procs
from aiconformance_lab.errors import LabError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    d = tmp_path / "device-plugins"
    d.mkdir()
    monkeypatch.setattr(gpusim, "DEVICE_PLUGIN_DIR", d)
    return d


def test_uuids_are_stable_and_per_node():
    inv = gpusim.inventory("aic-real-0", 2, "NVIDIA H100 80GB HBM3", "550.54.15", "12.4", 81559)
    again = gpusim.inventory("aic-real-0", 2, "NVIDIA H100 80GB HBM3", "550.54.15", "12.4", 81559)
    other = gpusim.inventory("aic-real-1", 2, "NVIDIA H100 80GB HBM3", "550.54.15", "12.4", 81559)
    uuids = [d["uuid"] for d in inv["devices"]]
    assert uuids == [d["uuid"] for d in again["devices"]]
    assert not set(uuids) & {d["uuid"] for d in other["devices"]}
    assert len(set(uuids)) == 2
    for u in uuids:
        assert u.startswith("GPU-")
        assert str(uuid.UUID(u[4:])) == u[4:]  # lowercase canonical form, as nvidia-smi prints
    # The same identity as the lab's simulated gpu.nvidia.com ResourceSlices.
    assert uuids[1] == f"GPU-{uuid.uuid5(objects._UUID_NAMESPACE, 'aic-real-0/1')}"
    assert [(d["index"], d["minor"]) for d in inv["devices"]] == [(0, 0), (1, 1)]
    assert inv["driverVersion"] == "550.54.15"
    assert inv["cudaVersion"] == "12.4"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"gpus": 0}, "gpus must be"),
    ({"gpus": 65}, "gpus must be"),
    ({"driver_version": "r550"}, "driver version"),
    ({"cuda_version": ""}, "CUDA version"),
    ({"node": "Bad_Node"}, "node name"),
    ({"product": " "}, "product"),
    ({"memory_mib": 0}, "memory"),
])
def test_bad_inventory(kwargs, match):
    args = {"node": "n", "gpus": 1, "product": "P", "driver_version": "1.2",
            "cuda_version": "12.4", "memory_mib": 1, **kwargs}
    with pytest.raises(LabError, match=match) as err:
        gpusim.inventory(**args)
    assert "\n" not in str(err.value)


@needs_root
def test_prepare_lays_out_device_nodes(tmp_path):
    layout = gpusim.prepare(tmp_path / "gpusim", node="aic-real-0", gpus=2)
    assert layout.directory == tmp_path / "gpusim"
    inv = json.loads(layout.devices_json.read_text())
    assert [d["uuid"] for d in inv["devices"]] == list(layout.uuids)
    assert inv["devices"][0]["name"] == "NVIDIA H100 80GB HBM3"
    for name, minor in (("nvidia0", 0), ("nvidia1", 1), ("nvidiactl", 255)):
        st = (layout.dev_dir / name).lstat()
        assert stat.S_ISCHR(st.st_mode), name
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (195, minor)
        assert stat.S_IMODE(st.st_mode) == 0o666
    assert stat.S_IMODE(layout.util_dir.stat().st_mode) == 0o777
    assert layout.alloc_dir.is_dir()
    assert stat.S_IMODE(layout.devices_json.stat().st_mode) == 0o644

    # Idempotent, and a smaller layout leaves no extra device behind.
    (layout.dev_dir / "nvidia0").unlink()
    (layout.dev_dir / "nvidia0").write_text("not a device")
    again = gpusim.prepare(tmp_path / "gpusim", node="aic-real-0", gpus=1)
    assert again.uuids == layout.uuids[:1]
    assert sorted(p.name for p in layout.dev_dir.iterdir()) == ["nvidia0", "nvidiactl"]
    assert stat.S_ISCHR((layout.dev_dir / "nvidia0").lstat().st_mode)


def test_prepare_without_root_is_one_line(tmp_path, monkeypatch):
    def refuse(*_args):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "mknod", refuse)
    with pytest.raises(LabError, match=r"needs root") as err:
        gpusim.prepare(tmp_path / "gpusim", node="aic-real-0", gpus=1)
    assert "\n" not in str(err.value)


@needs_root
def test_cleanup_removes_only_its_own(tmp_path, plugin_dir):
    layout = gpusim.prepare(tmp_path / "gpusim", node="aic-real-0", gpus=2)
    (layout.alloc_dir / "0123.json").write_text("{}")
    (layout.util_dir / layout.uuids[0]).write_text("0\n")
    layout.socket_path.write_text("")  # a socket the plugin left behind
    other = plugin_dir / "kubelet.sock"
    other.write_text("")
    neighbour = tmp_path / "keep.txt"
    neighbour.write_text("x")
    gpusim.cleanup(tmp_path / "gpusim")
    assert not (tmp_path / "gpusim").exists()
    assert not layout.socket_path.exists()
    assert other.exists()
    assert neighbour.exists()
    gpusim.cleanup(tmp_path / "gpusim")  # nothing left: no error


def test_socket_name_matches_the_plugin(tmp_path, plugin_dir):
    # lab/go/gpusim/cmd/aic-gpu-plugin/plugin_test.go pins the same name for the same dir.
    assert gpusim.socket_name(Path("/a/gpusim")) == "aic-gpusim-81b30614f2da.sock"
    layout = gpusim.GpuSimLayout(tmp_path / "g", "n", ())
    assert layout.socket_path.parent == plugin_dir
    assert layout.socket_path.name == gpusim.socket_name(tmp_path / "g")


def test_plugin_argv(tmp_path):
    layout = gpusim.GpuSimLayout(tmp_path / "gpusim", "aic-real-0", ("GPU-x",))
    argv = gpusim.plugin_argv(Path("/bin/aic-gpu-plugin"), layout, health_port=4242)
    assert argv == ["/bin/aic-gpu-plugin", f"--state-dir={tmp_path / 'gpusim'}",
                    "--resource=nvidia.com/gpu", "--mode=isolated",
                    "--health-addr=127.0.0.1:4242"]
    sliced = gpusim.plugin_argv(Path("p"), layout, "time-slicing", health_port=1, replicas=4)
    assert sliced[-2:] == ["--health-addr=127.0.0.1:1", "--replicas=4"]
    assert "--mode=all-devices" in gpusim.plugin_argv(Path("p"), layout, "all-devices",
                                                      health_port=1)
    for mode, replicas in (("shared", None), ("time-slicing", None), ("isolated", 4),
                           ("time-slicing", 1)):
        with pytest.raises(LabError):
            gpusim.plugin_argv(Path("p"), layout, mode, health_port=1, replicas=replicas)
    # The lab finds its plugin process again by binary name and state dir.
    assert "aic-gpu-plugin" in procs.LAB_BINARIES


def test_exporter_manifests(tmp_path):
    ds, svc = (gpusim.exporter_daemonset("aic-lab/gpu-exporter:abc", {"aic.lab/real": "true"},
                                         tmp_path / "gpusim"), gpusim.exporter_service())
    labels = {"app.kubernetes.io/name": "aic-gpu-exporter",
              "app.kubernetes.io/managed-by": "aic-lab"}
    for obj in (ds, svc):
        assert obj["metadata"]["namespace"] == "aic-lab-gpu"
        assert obj["metadata"]["labels"] == labels
    # accelerator_metrics finds the exporter by a Service whose name contains dcgm-exporter,
    # then its pods by the Service's selector.
    assert "dcgm-exporter" in svc["metadata"]["name"]
    pod = ds["spec"]["template"]
    assert svc["spec"]["selector"] == pod["metadata"]["labels"] == labels
    assert ds["spec"]["selector"]["matchLabels"] == labels
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 9400, "targetPort": 9400,
                                     "protocol": "TCP"}]
    assert pod["spec"]["nodeSelector"] == {"aic.lab/real": "true"}
    ctr = pod["spec"]["containers"][0]
    assert ctr["image"] == "aic-lab/gpu-exporter:abc"
    assert ctr["imagePullPolicy"] == "IfNotPresent"
    assert ctr["ports"] == [{"name": "metrics", "containerPort": 9400, "protocol": "TCP"}]
    assert "--state-dir=/var/lib/aic-gpusim" in ctr["args"]
    assert not {"--no-device-labels", "--frozen-util"} & set(ctr["args"])
    mounts = {m["name"]: m for m in ctr["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert mounts["gpusim"]["readOnly"] is True
    assert volumes["gpusim"]["hostPath"] == {"path": str(tmp_path / "gpusim"),
                                             "type": "Directory"}
    assert volumes["pod-resources"]["hostPath"]["path"] == "/var/lib/kubelet/pod-resources"

    negative = gpusim.exporter_daemonset("img", {}, tmp_path, no_device_labels=True,
                                         frozen_util=True, pod_attribution=False)
    args = negative["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--no-device-labels", "--frozen-util"} <= set(args)
    assert not any(a.startswith("--pod-resources-socket") for a in args)
    assert [v["name"] for v in negative["spec"]["template"]["spec"]["volumes"]] == ["gpusim"]

    kinds = [o["kind"] for o in gpusim.exporter_objects("img", {}, tmp_path)]
    assert kinds == ["Namespace", "DaemonSet", "Service"]


def test_build_registry_has_the_module():
    module = build.module_for("nvidia-smi")
    assert module.name == "gpusim"
    assert module.directory == "gpusim"
    assert set(module.binaries) == {"aic-gpu-plugin", "nvidia-smi", "gpu-load", "gpu-exporter",
                                    "aic-nvidia-runtime", "aic-dra-plugin"}


def test_plugin_argv_with_shared_devices(tmp_path, plugin_dir):
    """A device subset time-sliced as nvidia.com/gpu.shared beside whole GPUs (the GPU
    Operator's renameByDefault): one process, two sockets, both cleaned up."""
    layout = gpusim.GpuSimLayout(tmp_path / "gpusim", "aic-real-0", ())
    argv = gpusim.plugin_argv(Path("p"), layout, health_port=1, replicas=4,
                              shared_devices=range(2, 3))
    assert argv[-3:] == ["--replicas=4", "--shared-resource=nvidia.com/gpu.shared",
                         "--shared-devices=2"]
    for mode, replicas in (("isolated", None), ("time-slicing", 4)):
        with pytest.raises(LabError):
            gpusim.plugin_argv(Path("p"), layout, mode, health_port=1, replicas=replicas,
                               shared_devices=[2])
    assert gpusim.socket_name(Path("/a/gpusim"), shared=True) == \
        "aic-gpusim-81b30614f2da-shared.sock"
    (tmp_path / "gpusim").mkdir()
    sockets = [plugin_dir / gpusim.socket_name(tmp_path / "gpusim", shared=s)
               for s in (False, True)]
    for sock in sockets:
        sock.write_text("")
    gpusim.cleanup(tmp_path / "gpusim")
    assert not any(s.exists() for s in sockets)


def test_exporter_attributes_the_shared_resource_too(tmp_path):
    ds = gpusim.exporter_daemonset("img", {}, tmp_path, resources=("nvidia.com/gpu",
                                                                   "nvidia.com/gpu.shared"))
    args = ds["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--resource=nvidia.com/gpu,nvidia.com/gpu.shared" in args


def test_dra_devices_of_the_real_node():
    """The real node's ResourceSlice devices: the driver's shape, GPU i's uuid for device i."""
    from aiconformance_lab import LabShape

    nvidia = gpusim.dra_devices(LabShape(real_nodes=1, dra_driver="gpu.nvidia.com"),
                                "aic-real-0", 3)
    assert [d["name"] for d in nvidia] == ["gpu-0", "gpu-1", "gpu-2"]
    assert nvidia[1]["attributes"]["uuid"] == {"string": gpusim.device_uuid("aic-real-0", 1)}
    assert nvidia[1]["attributes"]["index"] == {"int": 1}
    assert nvidia[1]["attributes"]["driverVersion"] == {"version": "550.54.15"}
    example = gpusim.dra_devices(LabShape(real_nodes=1), "aic-real-0", 3)
    assert len(example) == 8  # dra-example-driver's 8 per node, on 3 simulated GPUs
