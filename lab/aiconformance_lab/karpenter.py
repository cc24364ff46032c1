"""Karpenter with its kwok cloud provider: a real node autoscaler for the lab's GPU pool.

Karpenter (sigs.k8s.io/karpenter, built from its Go module like the operators) runs as a host
process.  Its kwok provider "launches" a NodeClaim by creating a Node annotated
``kwok.x-k8s.io/node=fake``, which the lab's kwok then runs like any simulated node; consolidation
deletes it again.  The lab owns one KWOKNodeClass and one NodePool (``data/karpenter.yaml``)
whose nodes carry the labels, taint and resources of the shape's GPU nodes, so the suite's
accelerator discovery sees a node Karpenter made exactly as it sees the lab's own.
"""

from __future__ import annotations

import json
from typing import Any

from . import objects
from .build import BuiltModule
from .kapi import Obj
from .shape import LabShape
from .spec import ProcessSpec, SpecInputs

# The kwok provider's only knob for instance types: a JSON file it reads at start.
INSTANCE_TYPES_FILE = "karpenter-instance-types.json"


def _spec() -> dict[str, Any]:
    data: dict[str, Any] = objects.load_data("karpenter.yaml")
    return data


def _gpu_node(shape: LabShape) -> Obj:
    """One GPU node of ``shape`` as the lab makes it (labels, taint, resources)."""
    one = shape.replace(gpu_nodes=1, time_sliced_nodes=0, cpu_nodes=0, busy=False)
    return objects.nodes(one)[0]


def instance_type_name(shape: LabShape) -> str:
    """The instance type Karpenter may launch: named after the GPUs it carries."""
    gpus = "-".join(f"{v}{k.split('/')[-1]}" for k, v in
                    sorted(objects.gpu_resources(shape).items()) if int(v))
    return f"{_spec()['instanceType']['namePrefix']}-{gpus}"  # e.g. aic-gpu-1gpu


def instance_types(shape: LabShape) -> list[Obj]:
    """The kwok provider's instance-type file: one type with the lab GPU node's resources."""
    spec = _spec()["instanceType"]
    node = _gpu_node(shape)
    return [{
        "name": instance_type_name(shape),
        "architecture": node["status"]["nodeInfo"]["architecture"],
        "operatingSystems": [node["status"]["nodeInfo"]["operatingSystem"]],
        "resources": dict(node["status"]["capacity"]),
        "offerings": [{
            "Price": spec["price"],
            "Available": True,
            "Requirements": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                {"key": "topology.kubernetes.io/zone", "operator": "In",
                 "values": [spec["zone"]]},
            ],
        }],
    }]


def _template_labels(node: Obj) -> dict[str, str]:
    """The GPU node's labels a NodePool may set: Karpenter sets kubernetes.io ones itself."""
    labels: dict[str, str] = node["metadata"]["labels"]
    return {k: v for k, v in labels.items()
            if "/" not in k or not k.split("/")[0].endswith("kubernetes.io")}


def cluster_objects(shape: LabShape) -> list[Obj]:
    """The KWOKNodeClass and the GPU NodePool (applied once Karpenter's CRDs are Established)."""
    data = _spec()
    node = _gpu_node(shape)
    pool: Obj = data["nodePool"]
    template = pool["spec"]["template"]
    template["metadata"]["labels"] = _template_labels(node)
    for req in template["spec"]["requirements"]:
        if req["key"] == "node.kubernetes.io/instance-type":
            req["values"] = [instance_type_name(shape)]
    if shape.taint:
        template["spec"]["taints"] = [shape.taint]
    gpus = objects.gpu_resources(shape)
    pool["spec"]["limits"] = {k: str(int(v) * int(data["maxNodes"])) for k, v in gpus.items()
                              if int(v)}
    return [data["nodeClass"], pool]


def prepare(inputs: SpecInputs) -> None:
    """Write the instance-type file the kwok provider reads at start."""
    path = inputs.state.etc / INSTANCE_TYPES_FILE
    path.write_text(json.dumps(instance_types(inputs.shape), indent=1))


def spec(inputs: SpecInputs) -> ProcessSpec:
    """Karpenter's controller: no leader election, probes and metrics on the lab's ports.

    Its flags are its own flag set, without ``--kubeconfig``: the kubeconfig comes from the
    environment.  The command line names the state directory (the instance-type file), which
    is how the lab tells its processes from others'.  Both ports are bound on all interfaces
    (``:port``: Karpenter has no flag for a host).
    """
    port = inputs.ports["karpenter"]
    argv = [
        inputs.binary("karpenter"),
        f"--instance-types-file-path={inputs.state.etc / INSTANCE_TYPES_FILE}",
        "--disable-leader-election=true",
        f"--health-probe-port={port}",
        f"--metrics-port={inputs.ports['karpenter-metrics']}",
        "--log-level=info",
    ]
    return ProcessSpec("karpenter", argv, f"{inputs.url('karpenter', 'http')}/readyz", "plain",
                       port, env={"KUBECONFIG": inputs.admin_kubeconfig})


def crds(built: BuiltModule) -> list[Obj]:
    """NodePool, NodeClaim, NodeOverlay, CapacityBuffer and KWOKNodeClass, from the module."""
    return objects.crds(built.manifest_dir("crds"))

