"""The shape of a lab: how many simulated nodes of each kind and which capabilities are on.

A shape is a value: two labs are interchangeable exactly when their shapes are equal, which is
how ``Lab.up`` decides between reusing a running lab and refusing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import LabError


@dataclass(frozen=True)
class LabShape:
    """Simulated cluster shape; the defaults are the lab of the project's own tests.

    ``time_sliced_nodes`` are GPU nodes configured like the NVIDIA GPU Operator's time-slicing:
    they advertise ``gpus_per_node * time_slice_replicas`` ``nvidia.com/gpu`` and carry the
    sharing-strategy and replicas labels.

    ``dra`` publishes a simulated DRA driver (DeviceClass ``gpu.example.com`` and one
    ResourceSlice per GPU node); without it the cluster has DRA but no driver, like a 1.35
    cluster where no vendor driver is installed.  ``dra_api=False`` additionally switches the
    ``resource.k8s.io/v1`` API group off.  Kubernetes 1.35 locks DRA on, and its scheduler
    waits for the DRA informers before scheduling anything, so such a lab schedules no pods:
    use it only for checks that look at the served APIs.

    ``kuberay`` runs the KubeRay operator (v1.5.0) as a host process with its CRDs and its
    validating webhook for RayClusters (served on port 9443 of every interface: controller-runtime
    offers no flag to move it, so one lab with KubeRay runs per host at a time).  ``kueue``
    runs Kueue (v0.17.0) with its CRDs and webhooks, managing batch/v1 Jobs.
    """

    gpu_nodes: int = 2
    gpus_per_node: int = 1
    time_sliced_nodes: int = 0
    time_slice_replicas: int = 4
    cpu_nodes: int = 1
    dra: bool = True
    metrics_server: bool = True
    dra_api: bool = True
    kuberay: bool = False
    kueue: bool = False

    def __post_init__(self) -> None:
        for field in ("gpu_nodes", "gpus_per_node", "time_sliced_nodes", "cpu_nodes"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LabError(f"lab shape: {field} must be an integer >= 0, got {value!r}")
        replicas = self.time_slice_replicas
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise LabError(
                f"lab shape: time_slice_replicas must be an integer >= 1, got {replicas!r}"
            )
        for field in ("dra", "metrics_server", "dra_api", "kuberay", "kueue"):
            if not isinstance(getattr(self, field), bool):
                raise LabError(f"lab shape: {field} must be true or false")
        if self.dra and not self.dra_api:
            raise LabError(
                "lab shape: dra (the simulated driver) needs dra_api (resource.k8s.io/v1)"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for the state file and YAML."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabShape:
        """Build from a mapping; unknown keys are an error (a typo must not pass silently)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LabError(
                f"lab shape: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)

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
        # Accept both snake_case and dashed keys, as the CLI options are dashed.
        return cls.from_dict({str(k).replace("-", "_"): v for k, v in data.items()})

    def replace(self, **changes: Any) -> LabShape:
        """A copy with some fields changed (shape options on top of a YAML file)."""
        return dataclasses.replace(self, **changes)

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
            f"metrics_server={'on' if self.metrics_server else 'off'}",
            *(["kuberay=on"] if self.kuberay else []),
            *(["kueue=on"] if self.kueue else []),
        ]
        return " ".join(parts)
