"""The lab's real node: containerd + runc, CNI bridge, kubelet and kube-proxy as host processes.

kwok nodes run nothing; this node runs pods for real, so checks that look inside containers,
send traffic or scrape metrics can be proven on the lab.  The kubelet and kube-proxy come from
the same ``k8s.io/kubernetes`` build as the control plane (the ``aiclab`` multi-call binary),
containerd from its Go module, runc and the CNI plugins from Debian.  Every file the node
writes lives under ``<state>/node``; the host changes it needs are made and undone by
``hostnet``.  Only one real node per machine: the kubelet's device-plugin socket is a fixed path.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

from . import hostnet
from .build import BuiltModule, Progress
from .errors import LabError
from .kapi import KubeAPI, Obj
from .shape import LabShape
from .spec import ProcessSpec, SpecInputs
from .statedir import StateDir
from .supervise import launch, wait_healthy

NODE_NAME = hostnet.REAL_NODE_NAME
# Components of a real node, in start order.
NAMES = ("containerd", "coredns", "kubelet", "kube-proxy", "gpu-plugin", "gpu-plugin-shared",
         "dra-plugin")
PORTS = ("containerd-metrics", "coredns-health", "kubelet", "kubelet-healthz",
         "kube-proxy-healthz", "kube-proxy-metrics", "gpu-plugin", "gpu-plugin-shared",
         "dra-plugin")
CLUSTER_DOMAIN = "cluster.local"
# Simulated GPUs of the real node (gpusim): two whole ones, so isolation between pods can be
# seen, and the shape's ``shared_gpus`` after them, time-sliced as SHARED_RESOURCE.
GPUS = 2
GPU_RESOURCE = "nvidia.com/gpu"
SHARED_RESOURCE = GPU_RESOURCE + ".shared"
# The kubelet registers the node with these; the GPU taint is the NVIDIA GPU Operator's usual
# one, so only pods asking for accelerators (which tolerate it) land on the real node.
NODE_LABELS = {"aic-lab.local/real-node": "true",
               # Reports of runs on it say the accelerators are simulated.
               "aic-lab.local/simulated-accelerators": "true"}
# Go modules a real node needs besides the control plane: the runtime and the programs its
# images are made of.
MODULES = ("containerd", "coredns", "nodeimages", "gpusim", "nvml", "nvidia")
# Waiting for the node: Ready after the kubelet's first status update (seconds).
READY_TIMEOUT_S = 120.0
IMAGES_FILE = "images.yaml"
# The NVIDIA Container Runtime's handler (containerd CRI runtime) and RuntimeClass name, as
# the GPU Operator names them.
NVIDIA_HANDLER = "nvidia"
RUNTIME_BINARY = "aic-nvidia-runtime"
RUNTIME_CONFIG_ENV = "AIC_NVIDIA_RUNTIME_CONFIG"


def images_file(state_root: Path) -> Path:
    """The image overrides (AIC_IMAGES format) naming the images built for the real node."""
    return state_root / "node" / IMAGES_FILE


def node_dir(inputs: SpecInputs) -> Path:
    return inputs.state.root / "node"


def images_json(inputs: SpecInputs) -> Path:
    """The images built for the node: key -> reference, archive, digest (nodeimages)."""
    return node_dir(inputs) / "images.json"


def runtime_config(state_root: Path) -> Path:
    """aic-nvidia-runtime's configuration (its toolkit-style switches), read on every call."""
    return state_root / "node" / "nvidia-runtime.json"


def runtime_log(state_root: Path) -> Path:
    """One line per container whose devices aic-nvidia-runtime injected (or refused)."""
    return state_root / "node" / "nvidia-runtime.log"


def cdi_dir(state_root: Path) -> Path:
    """CDI spec files of the DRA plugin's prepared claims (containerd's cdi_spec_dirs)."""
    return state_root / "node" / "cdi"


def dra_devices_file(state_root: Path) -> Path:
    """The devices the DRA plugin publishes in the real node's ResourceSlice."""
    return state_root / "node" / "dra-devices.json"


def gpusim_dir(state_root: Path) -> Path:
    """The simulated GPUs' device nodes, inventory and load files."""
    return state_root / "node" / "gpusim"


def kubelet_root(state_root: Path) -> Path:
    return state_root / "node" / "kubelet" / "root"


def containerd_socket(state_root: Path) -> Path:
    """The CRI socket of the lab's containerd."""
    return state_root / "node" / "containerd" / "containerd.sock"


def specs(inputs: SpecInputs) -> list[ProcessSpec]:
    """The node's processes (none unless the shape asks for a real node)."""
    if not inputs.shape.real_nodes:
        return []
    d = node_dir(inputs)
    p = inputs.ports
    return [
        ProcessSpec(
            "containerd",
            [inputs.binary("containerd"), "--config", str(d / "containerd" / "config.toml")],
            f"http://127.0.0.1:{p['containerd-metrics']}/v1/metrics",
            "plain",
            p["containerd-metrics"],
            # The shims find runc and the CNI plugins on PATH; nothing else of ours leaks in
            # but, where the NVIDIA runtime runs, where its configuration is (the shims and
            # the runtime inherit containerd's environment).
            env={"PATH": _path_with(inputs.binaries["containerd"].parent),
                 **({RUNTIME_CONFIG_ENV: str(runtime_config(inputs.state.root))}
                    if inputs.shape.gpu_injection != "plugin" else {})},
        ),
        ProcessSpec(
            "coredns",
            [inputs.binary("coredns"), "-conf", str(d / "coredns" / "Corefile")],
            f"http://127.0.0.1:{p['coredns-health']}/health",
            "plain",
            p["coredns-health"],
        ),
        ProcessSpec(
            "kubelet",
            [
                inputs.binary("aiclab"),
                "kubelet",
                f"--config={d / 'kubelet' / 'config.yaml'}",
                f"--kubeconfig={inputs.state.etc / 'kubelet.kubeconfig'}",
                f"--root-dir={kubelet_root(inputs.state.root)}",
                f"--cert-dir={d / 'kubelet' / 'pki'}",  # Upstream's default ignores --root-dir.
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={hostnet.NODE_IP}",
                "--node-labels=" + ",".join(f"{k}={v}" for k, v in node_labels(inputs).items()),
                f"--register-with-taints={','.join(_taints(inputs))}",
            ],
            f"http://127.0.0.1:{p['kubelet-healthz']}/healthz",
            "plain",
            p["kubelet-healthz"],
        ),
        ProcessSpec(
            "kube-proxy",
            [inputs.binary("aiclab"), "kube-proxy",
             f"--config={d / 'kube-proxy' / 'config.yaml'}"],
            f"http://127.0.0.1:{p['kube-proxy-healthz']}/healthz",
            "plain",
            p["kube-proxy-healthz"],
        ),
        *_plugin_specs(inputs),
        *([ProcessSpec(
            "dra-plugin",
            _dra_plugin_argv(inputs),
            f"http://127.0.0.1:{p['dra-plugin']}/healthz",  # 200 once the kubelet took it
            "plain",
            p["dra-plugin"],
        )] if inputs.shape.real_node_dra else []),
    ]


# The environment variable prefix naming claimed devices, per DRA driver that sets one
# (kubernetes-sigs/dra-example-driver: GPU_DEVICE_<n>=<device>).
DRA_ENV_PREFIX = {"gpu.example.com": "GPU_DEVICE_"}


def _dra_plugin_argv(inputs: SpecInputs) -> list[str]:
    root = inputs.state.root
    driver = inputs.shape.dra_driver
    argv = [str(inputs.binaries["aic-gpu-plugin"].parent / "aic-dra-plugin"),
            f"--state-dir={gpusim_dir(root)}", f"--driver={driver}", f"--node={NODE_NAME}",
            f"--kubeconfig={inputs.state.etc / 'kubelet.kubeconfig'}",
            f"--devices={dra_devices_file(root)}", f"--kubelet-root={kubelet_root(root)}",
            f"--cdi-dir={cdi_dir(root)}",
            f"--health-addr=127.0.0.1:{inputs.ports['dra-plugin']}"]
    if driver in DRA_ENV_PREFIX:
        argv.append(f"--env-prefix={DRA_ENV_PREFIX[driver]}")
    return argv


def total_gpus(shape: LabShape) -> int:
    """The real node's simulated GPUs: the whole ones and the shape's shared ones."""
    return GPUS + shape.shared_gpus


def nvidia_plugin(shape: LabShape) -> bool:
    """Whether NVIDIA's device plugin serves the real node's GPUs: wherever a runtime injects
    them, but in the negative variant ``all-devices``, a fault NVIDIA's plugin cannot show
    (``aic-gpu-plugin`` keeps it, and the direct injection of ``gpu_injection: plugin``)."""
    return shape.gpu_injection != "plugin" and shape.gpu_plugin_mode != "all-devices"


def nvidia_plugin_config_file(state_root: Path, name: str = "gpu-plugin") -> Path:
    """An instance's configuration (sharing), as the GPU Operator's ConfigMap holds it."""
    return state_root / "node" / f"nvidia-device-plugin-{name}.yaml"


def nvidia_plugin_instances(shape: LabShape) -> dict[str, tuple[str, dict[str, object]]]:
    """NVIDIA's device plugin instances on the real node: name -> (gpusim view, config).

    One over all GPUs; with ``shared_gpus`` two, over two views of the node (the plugin
    time-slices every GPU it sees or none): the whole GPUs as ``nvidia.com/gpu``, the
    shared ones time-sliced and renamed ``nvidia.com/gpu.shared``."""
    from . import gpusim

    mode = shape.gpu_plugin_mode
    replicas = shape.time_slice_replicas if mode == "time-slicing" else None
    whole = gpusim.nvidia_plugin_config(mode, replicas, resource=GPU_RESOURCE)
    if not shape.shared_gpus:
        return {"gpu-plugin": ("", whole)}
    return {"gpu-plugin": ("whole", whole),
            "gpu-plugin-shared": ("shared", gpusim.nvidia_plugin_config(
                "time-slicing", shape.time_slice_replicas, rename=True,
                resource=GPU_RESOURCE))}


def _plugin_specs(inputs: SpecInputs) -> list[ProcessSpec]:
    from . import gpusim

    if not nvidia_plugin(inputs.shape):
        port = inputs.ports["gpu-plugin"]
        return [ProcessSpec("gpu-plugin", _plugin_argv(inputs),
                            f"http://127.0.0.1:{port}/healthz",  # 200 once the kubelet took it
                            "plain", port)]
    layout = gpusim.GpuSimLayout(gpusim_dir(inputs.state.root), NODE_NAME, ())
    out = []
    for name, (view, _config) in nvidia_plugin_instances(inputs.shape).items():
        part = gpusim.view(layout, view) if view else layout
        argv = gpusim.nvidia_plugin_argv(
            inputs.binaries["nvidia-device-plugin"], part,
            nvidia_plugin_config_file(inputs.state.root, name),
            device_list=DEVICE_LISTS[inputs.shape.gpu_injection])
        resource = SHARED_RESOURCE if name == "gpu-plugin-shared" else GPU_RESOURCE
        # NVML is opened by name (go-nvlib's check), as a driver's ldconfig entry finds it.
        out.append(ProcessSpec(name, argv, f"unix:{gpusim.nvidia_plugin_socket(resource)}",
                               "plain", inputs.ports[name],
                               env={"LD_LIBRARY_PATH": str(part.driver_lib_dir)}))
    return out


def _plugin_argv(inputs: SpecInputs) -> list[str]:
    from . import gpusim

    shape = inputs.shape
    layout = gpusim.GpuSimLayout(gpusim_dir(inputs.state.root), NODE_NAME, ())
    sliced = shape.gpu_plugin_mode == "time-slicing" or shape.shared_gpus > 0
    return gpusim.plugin_argv(inputs.binaries["aic-gpu-plugin"], layout, shape.gpu_plugin_mode,
                              health_port=inputs.ports["gpu-plugin"],
                              replicas=shape.time_slice_replicas if sliced else None,
                              resource=GPU_RESOURCE,
                              shared_devices=range(GPUS, total_gpus(shape)),
                              device_list=DEVICE_LISTS[shape.gpu_injection])


# The device plugin's device-list strategy per injection mode: the NVIDIA device plugin's
# volume-mounts (a list a pod cannot forge) or envvar, or the lab's direct injection.
DEVICE_LISTS = {"plugin": "direct", "runtime": "volume-mounts", "runtime-envvar": "envvar"}


def node_labels(inputs: SpecInputs) -> dict[str, str]:
    """What GPU Feature Discovery would put on an NVIDIA node with these GPUs, and the lab's.

    Time-slicing sets the replicas and sharing-strategy labels; GFD appends ``-SHARED`` to
    the product only when the replicas keep the resource's name (not when renamed to
    ``nvidia.com/gpu.shared``), and the count label counts every GPU of the node."""
    from . import objects

    shape = inputs.shape
    labels = objects.real_node_gpu_labels(total_gpus(shape))
    if shape.gpu_plugin_mode == "time-slicing" or shape.shared_gpus:
        labels["nvidia.com/gpu.replicas"] = str(shape.time_slice_replicas)
        labels["nvidia.com/gpu.sharing-strategy"] = "time-slicing"
    if shape.gpu_plugin_mode == "time-slicing":
        labels["nvidia.com/gpu.product"] += "-SHARED"  # as GPU Feature Discovery renames it
    return {**labels, **NODE_LABELS}


def _taints(inputs: SpecInputs) -> list[str]:
    taint = inputs.shape.taint
    if taint:  # The shape's GPU-pool taint, like its kwok GPU nodes.
        value = f"={taint['value']}" if taint.get("value") else ""
        return [f"{taint['key']}{value}:{taint['effect']}"]
    return ["nvidia.com/gpu=present:NoSchedule"]


def _path_with(directory: Path) -> str:
    return f"{directory}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def components(shape: LabShape) -> frozenset[str]:
    """The lab components of ``shape`` that have images of their own (``ImageSpec.component``)."""
    return frozenset({shape.gateway_impl} if shape.gateway else set())


def prepare(inputs: SpecInputs, built: dict[str, BuiltModule], progress: Progress) -> None:
    """Build the node's images (cached by content) and write every configuration file."""
    from . import gpusim, nodeimages  # Image building only where a real node runs.

    shape = inputs.shape
    instances = nvidia_plugin_instances(shape) if nvidia_plugin(shape) else {}
    views = {"whole": range(GPUS), "shared": range(GPUS, total_gpus(shape))} \
        if len(instances) > 1 else {}
    gpusim.prepare(gpusim_dir(inputs.state.root), node=NODE_NAME, gpus=total_gpus(shape),
                   nvml=inputs.binaries["libnvidia-ml.so"], views=views)
    for name, (_view, config) in instances.items():
        nvidia_plugin_config_file(inputs.state.root, name).write_text(yaml.safe_dump(config))
    if inputs.shape.real_node_dra:
        dra_devices_file(inputs.state.root).write_text(json.dumps(
            gpusim.dra_devices(inputs.shape, NODE_NAME, total_gpus(inputs.shape)), indent=2))
    images = nodeimages.build_images(built, progress, components=components(inputs.shape))
    write_configs(inputs, images["pause"].ref)
    nodeimages.write_override(images, images_file(inputs.state.root))
    images_json(inputs).write_text(json.dumps(
        {key: {**dataclasses.asdict(img), "archive": str(img.archive)}
         for key, img in images.items()}))


def image_refs(path: Path, keys: Iterable[str], what: str) -> dict[str, str]:
    """References of the images ``keys`` from the node's ``images.json`` (``prepare`` writes
    it for every image whose Go module was built); a LabError saying what ``what`` needs
    when one is missing."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise LabError(f"cannot read the real node's image list {path}: {err}") from err
    missing = [k for k in keys if k not in data]
    if missing:
        raise LabError(f"{path} lacks the image(s) {', '.join(missing)}: {what}")
    return {k: str(data[k]["ref"]) for k in keys}


def start(specs_: list[ProcessSpec], inputs: SpecInputs, state: StateDir,
          progress: Progress, *,
          launcher: Callable[[ProcessSpec, StateDir], int] = launch) -> None:
    """containerd, the images imported into it, then the kubelet and kube-proxy.

    ``launcher`` starts each process (``up`` passes one that refuses once the start is
    cancelled)."""
    from . import nodeimages

    t0 = time.monotonic()
    by_name = {s.name: s for s in specs_}
    launcher(by_name["containerd"], state)
    wait_healthy(by_name["containerd"], state)
    data = json.loads(images_json(inputs).read_text())
    images = {k: nodeimages.LabImage(**{**v, "archive": Path(v["archive"])})
              for k, v in data.items()}
    nodeimages.import_images(inputs.binaries["ctr"], containerd_socket(inputs.state.root),
                             images)
    for name in ("coredns", "kubelet", "kube-proxy", "gpu-plugin", "gpu-plugin-shared",
                 "dra-plugin"):
        if name in by_name:
            launcher(by_name[name], state)
    progress(f"containerd up and {len(images)} images imported in {time.monotonic() - t0:.1f} s")


def runtime_class() -> Obj:
    """RuntimeClass ``nvidia`` (handler ``nvidia``), as the GPU Operator creates it: no
    scheduling constraints, so it admits every node."""
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": NVIDIA_HANDLER,
                         "labels": {"app.kubernetes.io/managed-by": "aic-lab"}},
            "handler": NVIDIA_HANDLER}


def install(api: KubeAPI, inputs: SpecInputs) -> None:
    """The objects of the real node's GPU stack: RuntimeClass nvidia where its handler runs,
    and the DCGM-style exporter (DaemonSet)."""
    from . import gpusim

    if inputs.shape.gpu_injection != "plugin":
        api.apply(runtime_class())
    if inputs.shape.gpu_exporter == "off":
        return
    data = json.loads(images_json(inputs).read_text())
    variant = {"no_device_labels": inputs.shape.gpu_exporter == "no-device-labels",
               "frozen_util": inputs.shape.gpu_exporter == "frozen-util"}
    for obj in gpusim.exporter_objects(
            data["gpu-exporter"]["ref"], {"kubernetes.io/hostname": NODE_NAME},
            gpusim_dir(inputs.state.root),
            pod_resources_dir=str(kubelet_root(inputs.state.root) / "pod-resources"),
            command=("/bin/gpu-exporter",),
            resources=(GPU_RESOURCE, SHARED_RESOURCE) if inputs.shape.shared_gpus
            else (GPU_RESOURCE,), **variant):
        api.apply(obj)


def wait_ready(api: KubeAPI, progress: Progress, shape: LabShape | None = None) -> None:
    """The real node Ready (its first status update), schedulable, with its GPUs (and its
    shared replicas where the shape has them)."""
    t0 = time.monotonic()
    resources = [GPU_RESOURCE, *([SHARED_RESOURCE] if shape and shape.shared_gpus else [])]

    def ready(items: list[Obj]) -> bool:
        for node in items:
            conditions = (node.get("status") or {}).get("conditions") or []
            if node["metadata"]["name"] == NODE_NAME and any(
                    c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                allocatable = (node.get("status") or {}).get("allocatable") or {}
                return all(allocatable.get(r) not in (None, "0") for r in resources) and not any(
                    t.get("key") == "node.kubernetes.io/not-ready"
                    for t in (node.get("spec") or {}).get("taints") or [])
        return False

    api.wait_list("/api/v1/nodes", ready, timeout=READY_TIMEOUT_S,
                  what=f"real node {NODE_NAME} Ready with {' and '.join(resources)}")
    if shape is not None and shape.real_node_dra:
        driver = shape.dra_driver
        api.wait_list("/apis/resource.k8s.io/v1/resourceslices",
                      lambda items: any(s["spec"].get("nodeName") == NODE_NAME
                                        and s["spec"].get("driver") == driver for s in items),
                      timeout=READY_TIMEOUT_S,
                      what=f"the DRA plugin's ResourceSlice for {NODE_NAME} ({driver})")
    progress(f"real node {NODE_NAME} Ready with simulated GPUs in {time.monotonic() - t0:.1f} s")


def write_configs(inputs: SpecInputs, sandbox_image: str) -> None:
    """containerd, CNI, kubelet and kube-proxy configuration under ``<state>/node``."""
    d = node_dir(inputs)
    cni_bin = hostnet.cni_bin_dir()
    if cni_bin is None:
        raise LabError("the CNI plugins bridge, host-local and loopback are not installed")
    ctd = d / "containerd"
    for sub in (ctd, d / "cni" / "net.d", d / "kubelet" / "root", d / "kube-proxy",
                d / "pod-logs"):
        sub.mkdir(parents=True, exist_ok=True)
    runc = subprocess.run(["sh", "-c", "command -v runc"], capture_output=True, text=True,
                          check=False).stdout.strip() or "runc"
    (ctd / "config.toml").write_text(_containerd_toml(inputs, ctd, cni_bin, sandbox_image, runc))
    if inputs.shape.gpu_injection != "plugin":
        runtime_config(inputs.state.root).write_text(json.dumps(
            _runtime_settings(inputs, runc), indent=2) + "\n")
    (d / "cni" / "net.d" / "10-aiclab.conflist").write_text(json.dumps(_cni(d), indent=2))
    (d / "resolv.conf").write_text("# aic-lab pods resolve no names outside the cluster\n")
    (d / "coredns").mkdir(parents=True, exist_ok=True)
    (d / "coredns" / "Corefile").write_text(_corefile(inputs))
    (d / "kubelet" / "config.yaml").write_text(yaml.safe_dump(_kubelet_config(inputs)))
    (d / "kube-proxy" / "config.yaml").write_text(yaml.safe_dump(_kube_proxy_config(inputs)))


def _runtime_settings(inputs: SpecInputs, runc: str) -> dict[str, object]:
    """aic-nvidia-runtime's configuration: the NVIDIA Container Toolkit's switches
    accept-nvidia-visible-devices-as-volume-mounts and
    accept-nvidia-visible-devices-envvar-when-unprivileged (on only in the negative variant)."""
    root = inputs.state.root
    return {
        "runc": runc,
        "stateDir": str(gpusim_dir(root)),
        "nvidiaSmi": str(inputs.binaries["aic-gpu-plugin"].parent / "nvidia-smi"),
        "acceptVolumeMounts": True,
        "acceptEnvvarUnprivileged": inputs.shape.gpu_injection == "runtime-envvar",
        "log": str(runtime_log(root)),
    }


def _containerd_toml(inputs: SpecInputs, ctd: Path, cni_bin: Path, sandbox_image: str,
                     runc: str) -> str:
    q = json.dumps  # TOML basic strings accept JSON string escapes.
    nvidia = inputs.shape.gpu_injection != "plugin"
    # The GPU Operator's toolkit makes "nvidia" containerd's default runtime too: pods that
    # name no RuntimeClass get their devices the same way.
    handler = f"""    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.{NVIDIA_HANDLER}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.{NVIDIA_HANDLER}.options]
        BinaryName = {q(str(inputs.binaries["aic-gpu-plugin"].parent / RUNTIME_BINARY))}
        Root = {q(str(ctd / "runc"))}
        SystemdCgroup = false
""" if nvidia else ""
    return f"""version = 3
root = {q(str(ctd / "root"))}
state = {q(str(ctd / "state"))}
# NRI would open a socket under /var/run; the lab needs none of it.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = {q(str(ctd / "containerd.sock"))}

[ttrpc]
  address = {q(str(ctd / "containerd.sock.ttrpc"))}

[debug]
  address = {q(str(ctd / "debug.sock"))}

[metrics]
  address = "127.0.0.1:{inputs.ports['containerd-metrics']}"

[plugins."io.containerd.internal.v1.opt"]
  path = {q(str(ctd / "opt"))}

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = {q(sandbox_image)}

[plugins."io.containerd.cri.v1.runtime"]
  # This VM lacks CAP_SYS_RESOURCE: without it every sandbox fails ("can't get final
  # child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = {"true" if inputs.shape.real_node_dra else "false"}
  cdi_spec_dirs = [{q(str(cdi_dir(inputs.state.root)))}]
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = {q(NVIDIA_HANDLER if nvidia else "runc")}
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = {q(runc)}
        Root = {q(str(ctd / "runc"))}
        SystemdCgroup = false
{handler}  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [{q(str(cni_bin))}]
    conf_dir = {q(str(ctd.parent / "cni" / "net.d"))}
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def _cni(d: Path) -> dict[str, object]:
    """Bridge network on the lab's subnet; routes only to the pod subnet (implicit) and the
    Service range, never a default route: pods cannot reach beyond this machine."""
    return {
        "cniVersion": "1.0.0",
        "name": "aiclab",
        "plugins": [
            {
                "type": "bridge",
                "bridge": hostnet.BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": hostnet.POD_SUBNET, "gateway": hostnet.NODE_IP,
                                 }]],
                    "routes": [{"dst": hostnet.SERVICE_CIDR, "gw": hostnet.NODE_IP}],
                    "dataDir": str(d / "cni" / "ipam"),
                },
            },
            {"type": "loopback"},
        ],
    }


def _corefile(inputs: SpecInputs) -> str:
    """Cluster DNS on the node's bridge address: cluster.local names from the API, every other
    name refused (no forward plugin: no query leaves the machine)."""
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 {{
    bind {hostnet.NODE_IP}
    errors
    health 127.0.0.1:{inputs.ports['coredns-health']}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa {{
        kubeconfig {inputs.admin_kubeconfig}
        pods insecure
    }}
    cache 5
    loadbalance
}}
"""


def _kubelet_config(inputs: SpecInputs) -> dict[str, object]:
    d = node_dir(inputs)
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": hostnet.NODE_IP,  # The bridge only: never 0.0.0.0.
        "port": inputs.ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": inputs.ports["kubelet-healthz"],
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(inputs.pki.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{containerd_socket(inputs.state.root)}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{hostnet.CGROUP_NAME}",
        "failCgroupV1": False,
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,
        "protectKernelDefaults": False,
        "staticPodPath": "",
        "podLogsDir": str(d / "pod-logs"),
        "resolvConf": str(d / "resolv.conf"),
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [hostnet.NODE_IP],
        "serializeImagePulls": False,
        "nodeStatusUpdateFrequency": "2s",
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "imageMinimumGCAge": "876000h",  # Locally built images cannot be pulled again.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "maxPods": 50,
        "logging": {"format": "text"},
    }


def _kube_proxy_config(inputs: SpecInputs) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(inputs.state.etc / "kube-proxy.kubeconfig")},
        "hostnameOverride": NODE_NAME,
        "bindAddress": hostnet.NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{inputs.ports['kube-proxy-healthz']}",
        "metricsBindAddress": f"127.0.0.1:{inputs.ports['kube-proxy-metrics']}",
        "clusterCIDR": hostnet.POD_SUBNET,
        "nodePortAddresses": [f"{hostnet.NODE_IP}/32"],
        # Zero: leave the host's conntrack tunables alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
        # Service traffic between pods on the one bridge returns through the host.
        "nftables": {"masqueradeAll": True, "syncPeriod": "30s", "minSyncPeriod": "0s"},
    }


def forget_plugin(state_root: Path) -> None:
    """The device plugin's socket in the kubelet's fixed directory, and the simulated devices."""
    from . import gpusim

    if gpusim_dir(state_root).is_dir():
        gpusim.cleanup(gpusim_dir(state_root))


def stop_shims(state_root: Path) -> list[int]:
    """SIGKILL containerd shims of this lab left running (they outlive containerd by design)."""
    from . import procs

    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = procs.cmdline(int(entry.name))
            if argv and Path(argv[0]).name == "containerd-shim-runc-v2" and any(
                    f"{state_root}/" in a for a in argv[1:]):
                pids.append(int(entry.name))
    if pids:
        procs.stop(pids, str(state_root), timeout=2.0)
    return pids
