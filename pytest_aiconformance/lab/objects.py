"""The API objects that make the lab look like a GPU cluster, built from the YAML in ``data/``.

Templates live in YAML so that what a simulated node looks like (labels, capacity) can be read
and changed without reading Python; this module only combines them with the lab shape.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import LabError
from .kapi import Obj
from .shape import LabShape

GPU_RESOURCE = "nvidia.com/gpu"
# Stable namespace for the simulated devices' UUIDs: same node and index, same UUID.
_UUID_NAMESPACE = uuid.UUID("6f1d3c1e-51d5-4c1b-9a55-6c9f3b1a2e42")


def load_data(name: str) -> Any:
    """Parse one YAML document shipped in ``pytest_aiconformance/lab/data``."""
    try:
        text = data_text(name)
    except OSError as err:
        raise LabError(f"lab data file {name} missing from the package: {err}") from err
    return yaml.safe_load(text)


def data_text(name: str) -> str:
    """Raw text of a data file (the kwok configuration is passed to kwok as it is)."""
    return resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")


def _profile(profiles: dict[str, Any], name: str) -> dict[str, Any]:
    profile = dict(profiles[name])
    parent = profile.pop("inherit", None)
    if parent is None:
        return profile
    merged = _profile(profiles, parent)
    merged_labels = {**merged.get("labels", {}), **profile.get("labels", {})}
    return {**merged, **profile, "labels": merged_labels}


def _node(templates: dict[str, Any], profile: str, name: str, gpus: int) -> Obj:
    node: Obj = copy.deepcopy(templates["base"])
    prof = _profile(templates["profiles"], profile)
    node["metadata"]["name"] = name
    node["metadata"]["labels"].update(prof.get("labels", {}))
    node["metadata"]["labels"]["kubernetes.io/hostname"] = name
    # kwok serves each node's kubelet resource metrics under this path (metrics-server
    # honours the annotation), computed from the Metric and ClusterResourceUsage in kwok.yaml.
    node["metadata"]["annotations"]["metrics.k8s.io/resource-metrics-path"] = (
        f"/metrics/nodes/{name}/metrics/resource"
    )
    if gpus:
        for field in ("capacity", "allocatable"):
            node["status"][field] = {**node["status"][field], GPU_RESOURCE: str(gpus)}
    return node


def node_names(shape: LabShape) -> dict[str, list[str]]:
    """Node names by role: ``gpu``, ``gpu-time-sliced``, ``cpu``."""
    return {
        "gpu": [f"aic-gpu-{i}" for i in range(shape.gpu_nodes)],
        "gpu-time-sliced": [f"aic-gpu-ts-{i}" for i in range(shape.time_sliced_nodes)],
        "cpu": [f"aic-cpu-{i}" for i in range(shape.cpu_nodes)],
    }


def nodes(shape: LabShape) -> list[Obj]:
    """Every simulated Node of ``shape``, with status (capacity) filled in."""
    templates = load_data("nodes.yaml")
    names = node_names(shape)
    result: list[Obj] = []
    for name in names["gpu"]:
        node = _node(templates, "gpu", name, shape.gpus_per_node)
        node["metadata"]["labels"]["nvidia.com/gpu.count"] = str(shape.gpus_per_node)
        result.append(node)
    for name in names["gpu-time-sliced"]:
        advertised = shape.gpus_per_node * shape.time_slice_replicas
        node = _node(templates, "gpu-time-sliced", name, advertised)
        labels = node["metadata"]["labels"]
        labels["nvidia.com/gpu.count"] = str(shape.gpus_per_node)  # physical GPUs
        labels["nvidia.com/gpu.replicas"] = str(shape.time_slice_replicas)
        result.append(node)
    for name in names["cpu"]:
        result.append(_node(templates, "cpu", name, 0))
    return result


def dra_objects(shape: LabShape) -> list[Obj]:
    """DeviceClass and one ResourceSlice per GPU node (none when DRA is off)."""
    if not shape.dra:
        return []
    spec = load_data("dra.yaml")
    driver = str(spec["driver"])
    objs: list[Obj] = [copy.deepcopy(spec["deviceClass"])]
    names = node_names(shape)
    for node in names["gpu"] + names["gpu-time-sliced"]:
        devices = []
        for index in range(int(spec["devicesPerNode"])):
            device = copy.deepcopy(spec["device"])
            device["name"] = f"gpu-{index}"
            device_uuid = uuid.uuid5(_UUID_NAMESPACE, f"{node}/{index}")
            device["attributes"] = {
                "index": {"int": index},
                "uuid": {"string": f"gpu-{device_uuid}"},
                **device["attributes"],
            }
            devices.append(device)
        objs.append(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceSlice",
                "metadata": {"name": f"{node}-{driver}"},
                "spec": {
                    "driver": driver,
                    "nodeName": node,
                    "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                    "devices": devices,
                },
            }
        )
    return objs


def metrics_server_objects(port: int, ca_pem: bytes) -> list[Obj]:
    """ExternalName Service and APIService routing metrics.k8s.io to the host process."""
    spec = load_data("metrics-server.yaml")
    service: Obj = spec["service"]
    api_service: Obj = spec["apiService"]
    api_service["spec"]["service"]["port"] = port
    api_service["spec"]["caBundle"] = base64.b64encode(ca_pem).decode()
    return [service, api_service]


def crds(directory: Path) -> list[Obj]:
    """The CRDs an operator module's build stored (JSON, one object per file)."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise LabError(f"no CRD manifests in {directory}; rebuild the lab binaries")
    result: list[Obj] = []
    for path in files:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise LabError(f"cannot read CRD manifest {path}: {err}") from err
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            raise LabError(f"{path} is not a CustomResourceDefinition")
        result.append(doc)
    return result


def kuberay_webhook_port() -> int:
    """The port of KubeRay's webhook server (controller-runtime's fixed default)."""
    return int(load_data("kuberay.yaml")["webhookPort"])


def kuberay_objects(ca_pem: bytes) -> list[Obj]:
    """The ValidatingWebhookConfiguration routing RayCluster admission to the host process."""
    config: Obj = load_data("kuberay.yaml")["validatingWebhookConfiguration"]
    for webhook in config["webhooks"]:
        webhook["clientConfig"]["caBundle"] = base64.b64encode(ca_pem).decode()
    return [config]


def kueue_configuration(health_port: int, webhook_port: int, cert_dir: Path) -> Obj:
    """Kueue's Configuration file: probes on 127.0.0.1, webhook server on the lab's port."""
    config: Obj = load_data("kueue.yaml")["configuration"]
    config["health"] = {"healthProbeBindAddress": f"127.0.0.1:{health_port}"}
    config["webhook"] = {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)}
    return config


def kueue_objects(
    webhook_dir: Path, webhook_port: int, ca_pem: bytes, ca_key: bytes, cert: bytes, key: bytes
) -> list[Obj]:
    """Namespace, ExternalName Service, pre-filled cert Secret and webhook configurations."""
    spec = load_data("kueue.yaml")
    namespace, service, groups = spec["namespace"], spec["service"], set(spec["webhookGroups"])
    docs: list[Obj] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": namespace},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": spec["secret"], "namespace": namespace},
            "type": "Opaque",
            "data": {
                name: base64.b64encode(value).decode()
                for name, value in (
                    ("ca.crt", ca_pem),
                    ("ca.key", ca_key),
                    ("tls.crt", cert),
                    ("tls.key", key),
                )
            },
        },
    ]
    for path in sorted(webhook_dir.glob("*.json")):
        config: Obj = json.loads(path.read_text())
        if config.get("kind") not in (
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ):
            continue
        # kustomize's namePrefix in Kueue's release manifests; the cert rotator looks for these.
        config["metadata"] = {"name": f"kueue-{config['metadata']['name']}"}
        kept = []
        for webhook in config["webhooks"]:
            if not all(g in groups for r in webhook["rules"] for g in r["apiGroups"]):
                continue
            path_ = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = _kueue_client_config(spec, webhook_port, path_, ca_pem)
            kept.append(webhook)
        config["webhooks"] = kept
        docs.append(config)
    if len(docs) != 5:
        raise LabError(f"Kueue webhook configurations missing in {webhook_dir}")
    return docs


def kueue_crds(crd_dir: Path, webhook_port: int, ca_pem: bytes) -> list[Obj]:
    """Kueue's CRDs, the multi-version ones converted by Kueue's webhook."""
    spec = load_data("kueue.yaml")
    result = crds(crd_dir)
    for crd in result:
        if crd["metadata"]["name"] in spec["conversion"]:
            crd["spec"]["conversion"] = {
                "strategy": "Webhook",
                "webhook": {
                    "conversionReviewVersions": ["v1"],
                    "clientConfig": _kueue_client_config(spec, webhook_port, "/convert", ca_pem),
                },
            }
    return result


def _kueue_client_config(spec: Obj, webhook_port: int, path: str, ca_pem: bytes) -> Obj:
    """How the API server calls Kueue's webhook server: through its Service, verified."""
    return {
        "service": {
            "name": spec["service"],
            "namespace": spec["namespace"],
            "port": webhook_port,
            "path": path,
        },
        "caBundle": base64.b64encode(ca_pem).decode(),
    }
