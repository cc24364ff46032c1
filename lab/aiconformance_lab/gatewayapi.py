"""The Gateway API itself, shared by the lab's two implementations (Envoy Gateway, Traefik):
its standard-channel CRDs from the ``gatewayapi`` module's build, a controller's token and
kubeconfig, and the wait for a GatewayClass to be Accepted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import objects
from .build import BuiltModule, Progress
from .errors import LabError
from .kapi import KubeAPI, Obj, condition_true

MODULE = "gatewayapi"
# Must match lab/go/gatewayapi/go.mod (the CRDs' bundle-version annotation is checked).
GATEWAY_API_VERSION = "v1.6.3"
ACCEPT_TIMEOUT_S = 60.0
GW_GROUP = "gateway.networking.k8s.io"


def crds(built: BuiltModule) -> list[Obj]:
    """The Gateway API standard-channel CRDs stored by the ``gatewayapi`` module's build."""
    result = objects.crds(built.manifest_dir("crds"))
    stale = sorted(c["metadata"]["name"] for c in result
                   if c["metadata"].get("annotations", {}).get(f"{GW_GROUP}/bundle-version")
                   != GATEWAY_API_VERSION)
    if stale:
        raise LabError(f"Gateway API CRDs {', '.join(stale)} are not {GATEWAY_API_VERSION}; "
                       "rebuild the lab binaries")
    return result


def kubeconfig(server: str, ca_file: Path, token: str) -> dict[str, Any]:
    """A kubeconfig for a lab controller's ServiceAccount token (CA by file reference)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aic-lab", "cluster": {"server": server,
                                                     "certificate-authority": str(ca_file)}}],
        "users": [{"name": "aic-lab-gateway", "user": {"token": token}}],
        "contexts": [{"name": "aic-lab",
                      "context": {"cluster": "aic-lab", "user": "aic-lab-gateway"}}],
        "current-context": "aic-lab",
    }


def request_token(api: KubeAPI, namespace: str, *, account: str, seconds: int) -> str:
    """A token of a lab controller's ServiceAccount (TokenRequest), ``seconds`` long."""
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds}}
    status, answer = api.request("POST", path, body)
    token = (answer.get("status") or {}).get("token") if status < 300 else None
    if not token:
        raise LabError(f"cannot get a token for {namespace}/{account}: HTTP {status}: "
                       f"{answer.get('message', 'no token in the answer')}")
    return str(token)


def wait_accepted(api: KubeAPI, progress: Progress, timeout: float = ACCEPT_TIMEOUT_S, *,
                  class_name: str, controller: str) -> None:
    """Wait until the GatewayClass ``class_name`` is Accepted by its controller."""
    t0 = time.monotonic()
    api.wait_list(
        f"/apis/{GW_GROUP}/v1/gatewayclasses?fieldSelector=metadata.name%3D{class_name}",
        lambda items: any(condition_true(i, "Accepted") for i in items),
        timeout=timeout,
        what=f"GatewayClass {class_name} Accepted by {controller}",
    )
    progress(f"GatewayClass {class_name} Accepted in {time.monotonic() - t0:.1f} s")
