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
# Lab-owned pods that hold every GPU in a `busy` lab live here (never the suite's namespaces).
BUSY_NAMESPACE = "aic-lab-busy"
BUSY_LABELS = {"app.kubernetes.io/managed-by": "aic-lab", "aic.lab/role": "busy"}
# Stable namespace for the simulated devices' UUIDs: same node and index, same UUID.
_UUID_NAMESPACE = uuid.UUID("6f1d3c1e-51d5-4c1b-9a55-6c9f3b1a2e42")


def load_data(name: str) -> Any:
    """Parse one YAML document shipped in ``lab/aiconformance_lab/data``."""
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


def _node(templates: dict[str, Any], prof: dict[str, Any], name: str) -> Obj:
    node: Obj = copy.deepcopy(templates["base"])
    node["metadata"]["name"] = name
    node["metadata"]["labels"].update(prof.get("labels", {}))
    node["metadata"]["labels"]["kubernetes.io/hostname"] = name
    # kwok serves each node's kubelet resource metrics under this path (metrics-server
    # honours the annotation), computed from the Metric and ClusterResourceUsage in kwok.yaml.
    node["metadata"]["annotations"]["metrics.k8s.io/resource-metrics-path"] = (
        f"/metrics/nodes/{name}/metrics/resource"
    )
    return node


def _add_resources(node: Obj, resources_: dict[str, int]) -> None:
    for field in ("capacity", "allocatable"):
        extra = {k: str(v) for k, v in resources_.items()}
        node["status"][field] = {**node["status"][field], **extra}


def node_names(shape: LabShape) -> dict[str, list[str]]:
    """Node names by role: ``gpu``, ``gpu-time-sliced``, ``cpu``."""
    return {
        "gpu": [f"aic-gpu-{i}" for i in range(shape.gpu_nodes)],
        "gpu-time-sliced": [f"aic-gpu-ts-{i}" for i in range(shape.time_sliced_nodes)],
        "cpu": [f"aic-cpu-{i}" for i in range(shape.cpu_nodes)],
    }


def gpu_resources(shape: LabShape, time_sliced: bool = False) -> dict[str, int]:
    """The extended resources one GPU node of ``shape`` advertises (the device plugin's)."""
    if not shape.extended_resources:
        return {}
    templates = load_data("nodes.yaml")
    resource = str(_profile(templates["profiles"], _gpu_profile(shape))["resource"])
    gpus = shape.gpus_per_node
    if time_sliced:
        return {resource: gpus * shape.time_slice_replicas}
    if shape.mig:
        mig = templates["mig"]
        instances = gpus * int(mig["instancesPerGpu"])
        if shape.mig_strategy == "mixed":
            return {resource: 0, f"nvidia.com/mig-{mig['profile']}": instances}
        return {resource: instances}
    return {resource: gpus}


def _gpu_profile(shape: LabShape) -> str:
    return "gpu-amd" if shape.vendor == "amd" else "gpu"


def nodes(shape: LabShape) -> list[Obj]:
    """Every simulated Node of ``shape``, with status (capacity) filled in."""
    templates = load_data("nodes.yaml")
    profiles = templates["profiles"]
    names = node_names(shape)
    result: list[Obj] = []
    for role, profile in (("gpu", _gpu_profile(shape)), ("gpu-time-sliced", "gpu-time-sliced")):
        prof = _profile(profiles, profile)
        for name in names[role]:
            node = _node(templates, prof, name)
            labels = node["metadata"]["labels"]
            if prof.get("countLabel"):
                labels[prof["countLabel"]] = str(shape.gpus_per_node)  # physical GPUs
            if role == "gpu-time-sliced":
                labels["nvidia.com/gpu.replicas"] = str(shape.time_slice_replicas)
            elif shape.mig:
                labels.update(_mig_labels(templates["mig"], shape))
            if not shape.extended_resources and prof.get("devicePluginLabel"):
                labels[prof["devicePluginLabel"]] = "false"
            _add_resources(node, gpu_resources(shape, role == "gpu-time-sliced"))
            if shape.taint:
                node["spec"] = {"taints": [shape.taint]}
            result.append(node)
    for name in names["cpu"]:
        result.append(_node(templates, _profile(profiles, "cpu"), name))
    return result


def real_node_gpu_labels(gpus: int) -> dict[str, str]:
    """The NVIDIA labels of a GPU node (GPU Feature Discovery's), for the real node whose
    GPUs the lab simulates inside containers."""
    templates = load_data("nodes.yaml")
    prof = _profile(templates["profiles"], "gpu")
    labels = {k: str(v) for k, v in prof.get("labels", {}).items()}
    if prof.get("countLabel"):
        labels[prof["countLabel"]] = str(gpus)
    return labels


def _mig_labels(mig: dict[str, Any], shape: LabShape) -> dict[str, str]:
    count = str(shape.gpus_per_node * int(mig["instancesPerGpu"]))
    labels = {**mig["labels"], **mig[shape.mig_strategy]["labels"]}
    return {k: count if v == "<count>" else str(v) for k, v in labels.items()}


def _driver(shape: LabShape) -> dict[str, Any]:
    drivers: dict[str, Any] = load_data("dra.yaml")["drivers"]
    return dict(drivers[shape.dra_driver])


def dra_devices_per_node(shape: LabShape) -> int:
    """Devices the simulated DRA driver publishes per GPU node (0 without DRA)."""
    if not shape.dra:
        return 0
    per_node = _driver(shape)["devicesPerNode"]
    return shape.gpus_per_node if per_node is None else int(per_node)


def slice_devices(spec: Obj, node: str, count: int) -> list[Obj]:
    """A ResourceSlice's devices ``gpu-<i>`` of the driver ``spec`` (data/dra.yaml) on
    ``node``: its attributes, the index and, where it has one, the stable uuid of GPU ``i``."""
    devices = []
    for index in range(count):
        device = copy.deepcopy(spec["device"])
        device["name"] = f"gpu-{index}"
        attributes: dict[str, Any] = {spec["indexAttribute"]: {"int": index}}
        if spec["uuidPrefix"] is not None:
            device_uuid = uuid.uuid5(_UUID_NAMESPACE, f"{node}/{index}")
            attributes["uuid"] = {"string": f"{spec['uuidPrefix']}{device_uuid}"}
        device["attributes"] = {**attributes, **device["attributes"]}
        devices.append(device)
    return devices


def dra_objects(shape: LabShape) -> list[Obj]:
    """DeviceClass and one ResourceSlice per GPU node (none when DRA is off)."""
    if not shape.dra:
        return []
    spec = _driver(shape)
    driver = shape.dra_driver
    device_class: Obj = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": driver},
        "spec": {"selectors": [{"cel": {"expression": spec["selector"]}}]},
    }
    objs: list[Obj] = [device_class]
    names = node_names(shape)
    for node in names["gpu"] + names["gpu-time-sliced"]:
        devices = slice_devices(spec, node, dra_devices_per_node(shape))
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


def busy_namespace() -> Obj:
    """The namespace of the pods that hold every GPU of a ``busy`` lab."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": BUSY_NAMESPACE, "labels": dict(BUSY_LABELS)}}


def busy_objects(shape: LabShape) -> list[Obj]:
    """Per GPU node a pod pinned there holding all its GPUs and DRA devices (``busy`` only).

    The scheduler places them and allocates their claims, as it would a tenant's workload,
    so a check sees them exactly like the workloads of a full production cluster.
    """
    if not shape.busy:
        return []
    names = node_names(shape)
    devices = dra_devices_per_node(shape)
    objs: list[Obj] = []
    for role in ("gpu", "gpu-time-sliced"):
        limits = {k: str(v) for k, v in gpu_resources(shape, role == "gpu-time-sliced").items()
                  if v}
        for node in names[role]:
            name = f"busy-{node}"
            meta = {"name": name, "namespace": BUSY_NAMESPACE, "labels": dict(BUSY_LABELS)}
            container: Obj = {"name": "hold", "image": "registry.k8s.io/pause:3.10",
                              "resources": {"limits": limits}}
            pod_spec: Obj = {
                "nodeSelector": {"kubernetes.io/hostname": node},
                "tolerations": [{"operator": "Exists"}],
                "terminationGracePeriodSeconds": 0,
                "containers": [container],
            }
            if devices:
                objs.append(_busy_claim(meta, shape.dra_driver, devices))
                container["resources"]["claims"] = [{"name": "gpus"}]
                pod_spec["resourceClaims"] = [{"name": "gpus", "resourceClaimName": name}]
            objs.append({"apiVersion": "v1", "kind": "Pod", "metadata": dict(meta),
                         "spec": pod_spec})
    return objs


def _busy_claim(meta: Obj, device_class: str, count: int) -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": dict(meta),
        "spec": {"devices": {"requests": [{
            "name": "gpus",
            "exactly": {"deviceClassName": device_class, "allocationMode": "ExactCount",
                        "count": count},
        }]}},
    }


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
