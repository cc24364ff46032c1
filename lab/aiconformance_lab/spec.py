"""How to run and probe one lab component, and what its command line is built from.

A ``ProcessSpec`` is plain data: it is stored in ``state.json`` at start so that any later
process can start a stopped component again with exactly the same command line.  The modules
``controlplane``, ``kwok_metrics`` and ``operators`` each build the specs of their components
from a ``SpecInputs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .hostnet import NODE_IP
from .pki import PKIPaths
from .shape import LabShape
from .statedir import StateDir

# Every component a lab can run.
COMPONENTS = (
    "etcd",
    "apiserver",
    "controller-manager",
    "scheduler",
    "kwok",
    "metrics-server",
    "kuberay",
    "kueue",
    "karpenter",
    "trainer",
    "containerd",
    "coredns",
    "kubelet",
    "kube-proxy",
    "gpu-plugin",
    "gpu-plugin-shared",
    "dra-plugin",
    "prometheus-operator",
    "gateway",
    "keda-operator",
    "keda-adapter",
    "scheduler-plugins-scheduler",
    "scheduler-plugins-controller",
)


@dataclass(frozen=True)
class ProcessSpec:
    """How to run and probe one component."""

    name: str
    argv: list[str]
    # http(s)://... answering 200, or unix:<path> accepting connections.
    health_url: str
    # "plain": no TLS; "admin": verify the lab CA and present the admin cert;
    # "insecure": TLS without verification (self-signed serving certs of KCM/scheduler).
    health_tls: str
    port: int
    # Added to the component's environment.
    env: dict[str, str] = field(default_factory=dict)
    # An admission webhook server the component must also serve (TLS, verified with the PKI
    # file ``webhook_ca`` for the name "localhost") before it counts as healthy; 0: none.
    webhook_port: int = 0
    webhook_ca: str = "ca.crt"


@dataclass(frozen=True)
class SpecInputs:
    """What the components' command lines are made of: shape, binaries, ports and files."""

    shape: LabShape
    binaries: dict[str, Path]
    ports: dict[str, int]
    pki: PKIPaths
    state: StateDir

    def binary(self, name: str) -> str:
        """Path of a built binary, as a command-line word."""
        return str(self.binaries[name])

    def url(self, component: str, scheme: str = "https") -> str:
        """``<scheme>://127.0.0.1:<port of component>``; the API server of a lab with a real
        node listens on the node's bridge instead, where pods reach it too."""
        return f"{scheme}://{self.host(component)}:{self.ports[component]}"

    def host(self, component: str) -> str:
        """The address a component listens on."""
        if component == "apiserver" and self.shape.real_nodes:
            return NODE_IP
        return "127.0.0.1"

    @property
    def admin_kubeconfig(self) -> str:
        """The admin kubeconfig with file references, for host processes."""
        return str(self.state.etc / "admin.kubeconfig")


def kubeconfig_flags(kubeconfig: str) -> list[str]:
    """One kubeconfig for the API, authentication and authorization delegation."""
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
    ]


def insecure_healthz(name: str, argv: list[str], inputs: SpecInputs) -> ProcessSpec:
    """A component probed at ``/healthz`` on its self-signed serving certificate."""
    return ProcessSpec(name, argv, f"{inputs.url(name)}/healthz", "insecure", inputs.ports[name])
