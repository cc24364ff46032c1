"""Process specs of the simulated nodes' side: the kwok controller and metrics-server.

kwok plays the kubelets of the simulated nodes (status, leases, pod lifecycle) and serves their
resource metrics; metrics-server scrapes those and serves ``metrics.k8s.io`` to the aggregator.
"""

from __future__ import annotations

from pathlib import Path

from . import objects
from .spec import ProcessSpec, SpecInputs, insecure_healthz, kubeconfig_flags
from .statedir import StateDir


def config_path(state: StateDir) -> Path:
    """kwok's configuration file (stages and metrics of the simulated nodes)."""
    return state.etc / "kwok.yaml"


def write_config(state: StateDir) -> None:
    """Write kwok's configuration, shipped as it is in the package data."""
    config_path(state).write_text(objects.data_text("kwok.yaml"))


def kwok(inputs: SpecInputs) -> ProcessSpec:
    """The kwok controller, managing only the lab's annotated nodes."""
    f = inputs.pki.file
    port = inputs.ports["kwok"]
    argv = [
        inputs.binary("kwok"),
        f"--kubeconfig={inputs.admin_kubeconfig}",
        f"--config={config_path(inputs.state)}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--node-ip=127.0.0.1",
        f"--node-port={port}",
        f"--server-address=127.0.0.1:{port}",
        f"--tls-cert-file={f('kwok.crt')}",
        f"--tls-private-key-file={f('kwok.key')}",
        "--node-lease-duration-seconds=40",
    ]
    return ProcessSpec("kwok", argv, f"{inputs.url('kwok', 'http')}/healthz", "plain", port)


def metrics_server(inputs: SpecInputs) -> list[ProcessSpec]:
    """metrics-server scraping kwok's simulated kubelets, when the shape has it."""
    if not inputs.shape.metrics_server:
        return []
    f = inputs.pki.file
    argv = [
        inputs.binary("metrics-server"),
        "--bind-address=127.0.0.1",
        f"--secure-port={inputs.ports['metrics-server']}",
        *kubeconfig_flags(inputs.admin_kubeconfig),
        f"--tls-cert-file={f('metrics-server.crt')}",
        f"--tls-private-key-file={f('metrics-server.key')}",
        "--kubelet-use-node-status-port",
        "--kubelet-insecure-tls",
        "--kubelet-preferred-address-types=InternalIP",
        "--metric-resolution=10s",
        "--kubelet-request-timeout=5s",
    ]
    return [insecure_healthz("metrics-server", argv, inputs)]
