"""Simulated NVIDIA GPUs on the lab's real node (Go module ``lab/go/gpusim``).

The host side of the simulation is one directory, the *gpusim dir*, laid out by ``prepare``:

- ``devices.json``: the node's GPUs (index, minor, ``GPU-<uuid>``, product, memory, PCI bus id)
  plus driver and CUDA versions; UUIDs derive from node name and index, the same as the lab's
  simulated DRA drivers publish, so a device has one identity however it is allocated;
- ``dev/nvidia<N>`` (char 195:N) and ``dev/nvidiactl`` (195:255): real device nodes the device
  plugin hands to containers, so the runtime creates them inside and the device cgroup allows
  them, as with real GPUs;
- ``alloc/``: one inventory per allocated device set, written by the plugin and mounted in the
  container at ``/etc/aic-gpusim/devices.json`` for the simulated ``nvidia-smi``;
- ``util/``: ``<uuid>`` files holding a "busy until" unix time, written by ``gpu-load`` inside
  containers (mounted read-write at ``/run/aic-gpusim/util``) and read by the exporter.

``aic-gpu-plugin`` (a host process, ``plugin_argv``) registers ``nvidia.com/gpu`` with the
kubelet; ``gpu-exporter`` runs as a DaemonSet (``exporter_objects``) reading the same directory.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LabError
from .kapi import Obj
from .objects import _UUID_NAMESPACE
from .shape import LabShape

# The kubelet's device-plugin directory (fixed by the kubelet); tests point it elsewhere.
DEVICE_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
# The char major of NVIDIA's device nodes; nvidiactl is minor 255.
NVIDIA_MAJOR = 195
NVIDIACTL_MINOR = 255
MAX_GPUS = 64

MODES = ("isolated", "all-devices", "time-slicing")
# Where a driver installs its libraries (Debian/Ubuntu layout), under the driver root.
DRIVER_LIB_DIR = "usr/lib/x86_64-linux-gnu"
# The end of a libnvidia-ml.so that carries its node's hardware (lab/go/nvml, hardware.go).
NVML_TRAILER_MAGIC = b"AICNVML1"
# NVIDIA's device plugin serves each resource on this socket in the kubelet's directory.
NVIDIA_PLUGIN_SOCKET = "nvidia-{resource}.sock"
# The GPU Operator's name for renamed time-sliced replicas (renameByDefault: <resource>.shared).
SHARED_SUFFIX = ".shared"
DEVICE_LISTS = ("direct", "envvar", "volume-mounts")

NAMESPACE = "aic-lab-gpu"
# The suite finds the exporter by a Service whose name contains the profile's exporter name
# (accelerators.yaml: dcgm-exporter); the image and labels say what it really is.
EXPORTER_NAME = "aic-dcgm-exporter"
EXPORTER_LABELS = {"app.kubernetes.io/name": "aic-gpu-exporter",
                   "app.kubernetes.io/managed-by": "aic-lab"}
EXPORTER_PORT = 9400
# Where the exporter pod sees the gpusim dir, and the kubelet's pod-resources API.
EXPORTER_STATE_DIR = "/var/lib/aic-gpusim"
POD_RESOURCES_DIR = "/var/lib/kubelet/pod-resources"

_VERSION_RE = re.compile(r"^\d+(\.\d+)+$")
_NODE_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class GpuSimLayout:
    """A prepared gpusim dir and the devices it holds."""

    directory: Path
    node: str
    uuids: tuple[str, ...]  # "GPU-<uuid>" by index

    @property
    def devices_json(self) -> Path:
        return self.directory / "devices.json"

    @property
    def dev_dir(self) -> Path:
        return self.directory / "dev"

    @property
    def alloc_dir(self) -> Path:
        return self.directory / "alloc"

    @property
    def util_dir(self) -> Path:
        return self.directory / "util"

    @property
    def driver_root(self) -> Path:
        """The simulated driver installation: where NVIDIA's programs look for NVML."""
        return self.directory / "driver"

    @property
    def driver_lib_dir(self) -> Path:
        return self.driver_root / DRIVER_LIB_DIR

    @property
    def socket_path(self) -> Path:
        """Where the plugin puts its socket."""
        return DEVICE_PLUGIN_DIR / socket_name(self.directory)


def device_uuid(node: str, index: int) -> str:
    """The stable ``GPU-<uuid>`` of a node's GPU (the same the lab's DRA slices publish)."""
    return f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{node}/{index}')}"


def socket_name(gpusim_dir: Path, *, shared: bool = False) -> str:
    """The plugin's socket name: ``aic-gpusim-`` + 12 hex digits of sha256(absolute dir), as
    ``aic-gpu-plugin`` computes it, so two labs' plugins never share a socket; the shared
    resource's socket (``--shared-resource``) ends ``-shared.sock``."""
    digest = hashlib.sha256(os.path.abspath(gpusim_dir).encode()).hexdigest()
    return f"aic-gpusim-{digest[:12]}{'-shared' if shared else ''}.sock"


def inventory(node: str, gpus: int, product: str, driver_version: str, cuda_version: str,
              memory_mib: int) -> dict[str, Any]:
    """The content of devices.json; bad values raise LabError."""
    if not _NODE_RE.match(node):
        raise LabError(f"gpusim: node name {node!r} is not a DNS subdomain")
    if not 1 <= gpus <= MAX_GPUS:
        raise LabError(f"gpusim: gpus must be 1-{MAX_GPUS}, got {gpus}")
    if not product.strip():
        raise LabError("gpusim: product name is empty")
    for what, version in (("driver", driver_version), ("CUDA", cuda_version)):
        if not _VERSION_RE.match(version):
            raise LabError(f"gpusim: {what} version {version!r} is not dotted numbers")
    if memory_mib <= 0:
        raise LabError(f"gpusim: memory must be positive, got {memory_mib} MiB")
    return {
        "node": node,
        "driverVersion": driver_version,
        "cudaVersion": cuda_version,
        "devices": [
            {"index": i, "minor": i, "uuid": device_uuid(node, i), "name": product,
             "memoryMiB": memory_mib, "pciBusId": f"00000000:{0x18 + i:02X}:00.0"}
            for i in range(gpus)
        ],
    }


def _char_device(path: Path, minor: int) -> None:
    """Make ``path`` a char device NVIDIA_MAJOR:minor, mode 0666 as the NVIDIA driver's."""
    want = os.makedev(NVIDIA_MAJOR, minor)
    try:
        st = path.lstat()
    except FileNotFoundError:
        st = None
    if st is not None and not (stat.S_ISCHR(st.st_mode) and st.st_rdev == want):
        path.unlink()
        st = None
    try:
        if st is None:
            os.mknod(path, stat.S_IFCHR | 0o666, want)
        os.chmod(path, 0o666)  # mknod's mode is filtered by the umask
    except PermissionError as err:
        raise LabError(f"gpusim: creating device node {path} needs root (CAP_MKNOD): "
                       f"{err.strerror}") from err
    except OSError as err:
        if err.errno == errno.EPERM:
            raise LabError(f"gpusim: creating device node {path} is not permitted here: "
                           f"{err.strerror}") from err
        raise LabError(f"gpusim: cannot create device node {path}: {err.strerror}") from err


def nvml_library(library: bytes, inv: Mapping[str, Any], dev_root: Path) -> bytes:
    """The lab's libnvidia-ml.so carrying ``inv`` (devices.json) and where the host keeps the
    device nodes: JSON, its length (8 bytes, little endian) and the magic after the library
    (the library reads its own file: the same bytes mounted anywhere describe the same GPUs)."""
    hw = json.dumps({**inv, "devRoot": str(dev_root)}, sort_keys=True).encode()
    return library + hw + len(hw).to_bytes(8, "little") + NVML_TRAILER_MAGIC


def _install_driver(layout: GpuSimLayout, inv: Mapping[str, Any], library: Path) -> None:
    """The driver root: libnvidia-ml.so.<version> with the node's hardware, and the .so.1
    link every NVML user opens."""
    lib_dir = layout.driver_lib_dir
    name = f"libnvidia-ml.so.{inv['driverVersion']}"
    link = lib_dir / "libnvidia-ml.so.1"
    try:
        lib_dir.mkdir(parents=True, exist_ok=True)
        tmp = lib_dir / f".{name}.tmp"
        tmp.write_bytes(nvml_library(library.read_bytes(), inv, layout.directory))
        tmp.chmod(0o755)
        tmp.replace(lib_dir / name)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(name)
        for stale in lib_dir.glob("libnvidia-ml.so.*"):
            if stale.name not in (name, link.name):
                stale.unlink()
    except OSError as err:
        raise LabError(f"gpusim: cannot install the driver root {layout.driver_root}: "
                       f"{err}") from err


def prepare(gpusim_dir: Path, *, node: str, gpus: int, product: str = "NVIDIA H100 80GB HBM3",
            driver_version: str = "550.54.15", cuda_version: str = "12.4",
            memory_mib: int = 81559, nvml: Path | None = None,
            views: Mapping[str, Sequence[int]] | None = None) -> GpuSimLayout:
    """Lay out the gpusim dir for ``gpus`` GPUs of ``node`` (idempotent; needs root for mknod);
    with ``nvml`` (the built libnvidia-ml.so) also the driver root NVIDIA's programs read.

    ``views`` (name: GPU indices) are partial views of the node, each a directory
    ``views/<name>`` with its own device nodes and driver root: NVML opened from it sees only
    those GPUs, as a program in a container that was given only them (two device plugin
    instances then split the node's GPUs between two resources).

    Defaults match the kwok GPU nodes' labels (data/nodes.yaml): H100 80GB, driver 550.54.15.
    """
    inv = inventory(node, gpus, product, driver_version, cuda_version, memory_mib)
    directory = Path(os.path.abspath(gpusim_dir))
    try:
        for sub in ("dev", "alloc", "util"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        # Pods of any uid write their load files into util/ (simulation: no isolation needed).
        (directory / "util").chmod(0o777)
        directory.chmod(0o755)
        # Devices of an earlier, larger layout must not stay around to be allocated.
        wanted = {f"nvidia{d['minor']}" for d in inv["devices"]} | {"nvidiactl"}
        for entry in (directory / "dev").iterdir():
            if entry.name not in wanted:
                entry.unlink()
        tmp = directory / ".devices.json.tmp"
        tmp.write_text(json.dumps(inv, indent=2) + "\n")
        tmp.chmod(0o644)
        tmp.replace(directory / "devices.json")
    except OSError as err:
        raise LabError(f"gpusim: cannot lay out {directory}: {err}") from err
    for device in inv["devices"]:
        _char_device(directory / "dev" / f"nvidia{device['minor']}", device["minor"])
    _char_device(directory / "dev" / "nvidiactl", NVIDIACTL_MINOR)
    layout = GpuSimLayout(directory, node, tuple(d["uuid"] for d in inv["devices"]))
    if nvml is not None:
        _install_driver(layout, inv, nvml)
    _prepare_views(layout, inv, views or {}, nvml)
    return layout


def view(layout: GpuSimLayout, name: str) -> GpuSimLayout:
    """The layout of one of ``prepare``'s views (its device nodes and driver root)."""
    return GpuSimLayout(layout.directory / "views" / name, layout.node, ())


def _prepare_views(layout: GpuSimLayout, inv: Mapping[str, Any],
                   views: Mapping[str, Sequence[int]], nvml: Path | None) -> None:
    root = layout.directory / "views"
    if root.is_dir():
        shutil.rmtree(root)  # views of an earlier shape must not stay visible
    devices = inv["devices"]
    for name, indices in views.items():
        if nvml is None:
            raise LabError("gpusim: views need the NVML library")
        if not indices or any(not 0 <= i < len(devices) for i in indices):
            raise LabError(f"gpusim: view {name!r} names GPUs {list(indices)} of "
                           f"{len(devices)}")
        part = view(layout, name)
        part.dev_dir.mkdir(parents=True)
        for i in indices:
            minor = devices[i]["minor"]
            _char_device(part.dev_dir / f"nvidia{minor}", minor)
        _char_device(part.dev_dir / "nvidiactl", NVIDIACTL_MINOR)
        _install_driver(part, inv, nvml)


def nvidia_plugin_config(mode: str, replicas: int | None = None, *, rename: bool = False,
                         resource: str = "nvidia.com/gpu") -> dict[str, Any]:
    """NVIDIA's device plugin configuration (its config file, as the GPU Operator's
    ConfigMap holds it): whole GPUs, or every GPU it sees time-sliced into ``replicas``,
    keeping the resource's name or renamed to ``<resource>.shared`` (renameByDefault).

    Every GPU it sees: v0.17.4 ignores a ``devices`` subset and ``rename`` in its sharing
    config (api/config/v1 DisableResourceNamingInConfig), so a node whose GPUs are partly
    whole and partly shared runs two instances over two views (``prepare``)."""
    if mode not in ("isolated", "time-slicing"):
        raise LabError(f"gpusim: NVIDIA's device plugin has no mode {mode!r}")
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": "none"}}
    if mode == "time-slicing":
        if replicas is None or replicas < 2:
            raise LabError("gpusim: time-slicing needs at least 2 replicas")
        config["sharing"] = {"timeSlicing": {
            "renameByDefault": rename,
            "resources": [{"name": resource, "replicas": replicas}]}}
    elif rename:
        raise LabError("gpusim: only time-sliced replicas are renamed")
    return config


def nvidia_plugin_argv(binary: Path, layout: GpuSimLayout, config_file: Path, *,
                       device_list: str) -> list[str]:
    """NVIDIA's device plugin as a host process over the simulated driver root: devices listed
    for the runtime (``envvar`` or ``volume-mounts``), no device specs (the runtime injects
    them, as with the GPU Operator's toolkit), UUIDs as device ids."""
    if device_list not in ("envvar", "volume-mounts"):
        raise LabError(f"gpusim: NVIDIA's device plugin runs here with a runtime; device list "
                       f"{device_list!r} is not envvar or volume-mounts")
    root = str(layout.driver_root)
    return [str(binary), f"--driver-root={root}", f"--driver-root-ctr-path={root}",
            f"--dev-root={layout.directory}", f"--device-list-strategy={device_list}",
            "--device-id-strategy=uuid", "--pass-device-specs=false",
            "--fail-on-init-error=true", f"--config-file={config_file}"]


def nvidia_plugin_socket(resource: str = "nvidia.com/gpu") -> Path:
    """Where NVIDIA's plugin serves ``resource`` (the kubelet's fixed directory)."""
    return DEVICE_PLUGIN_DIR / NVIDIA_PLUGIN_SOCKET.format(resource=resource.split("/")[-1])


def plugin_argv(binary: Path, layout: GpuSimLayout, mode: str = "isolated", *,
                health_port: int, replicas: int | None = None,
                resource: str = "nvidia.com/gpu",
                shared_devices: Sequence[int] = (), device_list: str = "direct") -> list[str]:
    """The device plugin's command line; its health URL is http://127.0.0.1:PORT/healthz.

    ``shared_devices`` (indices) are time-sliced into ``replicas`` each and advertised as
    ``<resource>.shared`` on a second socket, the other devices whole as ``resource``: the
    GPU Operator's time-slicing of a device subset with ``renameByDefault``.

    ``device_list``: ``direct`` (the plugin injects the devices itself), or the NVIDIA device
    plugin's ``envvar`` / ``volume-mounts`` strategies, which leave injection to the runtime
    (``aic-nvidia-runtime``)."""
    if device_list not in DEVICE_LISTS:
        raise LabError(f"gpusim: device list {device_list!r} is not one of "
                       f"{', '.join(DEVICE_LISTS)}")
    if mode not in MODES:
        raise LabError(f"gpusim: mode {mode!r} is not one of {', '.join(MODES)}")
    sliced = mode == "time-slicing" or bool(shared_devices)
    if sliced != (replicas is not None):
        raise LabError("gpusim: replicas go with mode time-slicing or shared devices, and "
                       "only with them")
    if shared_devices and mode == "time-slicing":
        raise LabError("gpusim: shared devices leave the other GPUs whole: not with mode "
                       "time-slicing")
    if replicas is not None and replicas < 2:
        raise LabError(f"gpusim: time-slicing needs at least 2 replicas, got {replicas}")
    argv = [str(binary), f"--state-dir={layout.directory}", f"--resource={resource}",
            f"--mode={mode}", f"--health-addr=127.0.0.1:{health_port}"]
    if replicas is not None:
        argv.append(f"--replicas={replicas}")
    if device_list != "direct":
        argv.append(f"--device-list-strategy={device_list}")
    if shared_devices:
        argv += [f"--shared-resource={resource}{SHARED_SUFFIX}",
                 "--shared-devices=" + ",".join(str(i) for i in shared_devices)]
    return argv


def dra_devices(shape: LabShape, node: str, gpus: int) -> list[dict[str, Any]]:
    """The devices of the real node's ResourceSlice for the shape's DRA driver, shaped like
    the slices the lab publishes for its kwok nodes (data/dra.yaml): ``gpu-<i>`` with the
    driver's attributes, ``index`` and, where the driver has one, a uuid (for ``i`` below
    ``gpus`` GPU ``i``'s own, ``device_uuid``); the plugin maps device ``i`` to GPU ``i`` mod
    ``gpus`` (dra-example-driver publishes 8 devices however many GPUs there are)."""
    from .objects import _driver, slice_devices

    spec = _driver(shape)
    per_node = spec.get("devicesPerNode")
    return slice_devices(spec, node, gpus if per_node is None else int(per_node))


def namespace() -> Obj:
    """The lab's namespace for GPU components (never one of the suite's)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "aic-lab"}}}


def exporter_daemonset(image: str, node_selector: Mapping[str, str], gpusim_dir: Path, *,
                       command: Sequence[str] = ("/gpu-exporter",),
                       no_device_labels: bool = False, frozen_util: bool = False,
                       pod_attribution: bool = True,
                       pod_resources_dir: str = POD_RESOURCES_DIR,
                       resources: Sequence[str] = ("nvidia.com/gpu",)) -> Obj:
    """The DCGM-style exporter on the real node(s): reads the gpusim dir (read-only) and, like
    dcgm-exporter, the kubelet's pod-resources API for pod labels (of pods holding any of
    ``resources``). The two negative variants are its flags."""
    args = [f"--listen=:{EXPORTER_PORT}", f"--state-dir={EXPORTER_STATE_DIR}",
            "--resource=" + ",".join(resources)]
    if no_device_labels:
        args.append("--no-device-labels")
    if frozen_util:
        args.append("--frozen-util")
    mounts: list[dict[str, Any]] = [
        {"name": "gpusim", "mountPath": EXPORTER_STATE_DIR, "readOnly": True}]
    volumes: list[dict[str, Any]] = [
        {"name": "gpusim",
         "hostPath": {"path": os.path.abspath(gpusim_dir), "type": "Directory"}}]
    if pod_attribution:
        args.append(f"--pod-resources-socket={POD_RESOURCES_DIR}/kubelet.sock")
        mounts.append({"name": "pod-resources", "mountPath": POD_RESOURCES_DIR,
                       "readOnly": True})
        volumes.append({"name": "pod-resources",
                        "hostPath": {"path": pod_resources_dir, "type": "Directory"}})
    container = {
        "name": "exporter",
        "image": image,
        "imagePullPolicy": "IfNotPresent",  # built locally, never pulled
        "command": list(command),
        "args": args,
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "ports": [{"name": "metrics", "containerPort": EXPORTER_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": EXPORTER_PORT},
                           "periodSeconds": 2},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": EXPORTER_NAME, "namespace": NAMESPACE,
                     "labels": dict(EXPORTER_LABELS)},
        "spec": {
            "selector": {"matchLabels": dict(EXPORTER_LABELS)},
            "template": {
                "metadata": {"labels": dict(EXPORTER_LABELS)},
                "spec": {
                    "nodeSelector": dict(node_selector),
                    # Like the GPU Operator's, it runs on tainted GPU nodes too.
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def exporter_service() -> Obj:
    """The exporter's Service; targetPort is a number because the suite scrapes through the
    API server's pod proxy, which takes a port number."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": EXPORTER_NAME, "namespace": NAMESPACE,
                     "labels": dict(EXPORTER_LABELS)},
        "spec": {
            "selector": dict(EXPORTER_LABELS),
            "ports": [{"name": "metrics", "port": EXPORTER_PORT, "targetPort": EXPORTER_PORT,
                       "protocol": "TCP"}],
        },
    }


def exporter_objects(image: str, node_selector: Mapping[str, str], gpusim_dir: Path,
                     **variant: Any) -> list[Obj]:
    """Namespace, DaemonSet and Service, in creation order."""
    return [namespace(), exporter_daemonset(image, node_selector, gpusim_dir, **variant),
            exporter_service()]


def cleanup(gpusim_dir: Path) -> None:
    """Remove what ``prepare`` and the plugin left: the device nodes, inventories and load
    files under ``gpusim_dir`` (nothing outside it), and the plugin's socket if still there."""
    directory = Path(os.path.abspath(gpusim_dir))
    try:
        (DEVICE_PLUGIN_DIR / socket_name(directory)).unlink(missing_ok=True)
        (DEVICE_PLUGIN_DIR / socket_name(directory, shared=True)).unlink(missing_ok=True)
        if (directory / "driver").is_dir():
            # NVIDIA's plugin ran over this dir: its sockets, where no process serves them.
            for resource in ("nvidia.com/gpu", "nvidia.com/gpu.shared"):
                _unlink_stale_socket(nvidia_plugin_socket(resource))
        for sub in ("dev", "alloc", "util", "driver", "views"):
            if (directory / sub).is_dir():
                shutil.rmtree(directory / sub)
        for name in ("devices.json", ".devices.json.tmp"):
            (directory / name).unlink(missing_ok=True)
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    except OSError as err:
        raise LabError(f"gpusim: cannot clean up {directory}: {err}") from err


def _unlink_stale_socket(path: Path) -> None:
    """Remove a unix socket nobody listens on (a plugin killed before it removed it); a live
    one belongs to a running plugin and stays."""
    from .health import socket_refusal

    if path.is_socket() and socket_refusal(path) is not None:
        path.unlink(missing_ok=True)
