"""A minimal Kubernetes REST client for the lab's own bootstrap.

The lab creates a handful of objects (nodes, DRA objects, the metrics APIService) and waits for
a few conditions while it starts.  A small client over ``urllib`` with the admin certificate does
that without depending on which API groups the installed ``kubernetes`` package knows (its
generated models lag behind ``resource.k8s.io/v1``), and uses server-side apply so that applying
the same objects twice is harmless.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LabError

Obj = dict[str, Any]

# kind -> (plural, namespaced) for the kinds the lab applies.
_RESOURCES: Mapping[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False),
    "Node": ("nodes", False),
    "Service": ("services", True),
    "Secret": ("secrets", True),
    "Pod": ("pods", True),
    "ResourceClaim": ("resourceclaims", True),
    "APIService": ("apiservices", False),
    "DeviceClass": ("deviceclasses", False),
    "ResourceSlice": ("resourceslices", False),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "ValidatingWebhookConfiguration": ("validatingwebhookconfigurations", False),
    "MutatingWebhookConfiguration": ("mutatingwebhookconfigurations", False),
    "KWOKNodeClass": ("kwoknodeclasses", False),
    "NodePool": ("nodepools", False),
    "ServiceAccount": ("serviceaccounts", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "GatewayClass": ("gatewayclasses", False),
    "DaemonSet": ("daemonsets", True),
    "Deployment": ("deployments", True),
    "ConfigMap": ("configmaps", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "Prometheus": ("prometheuses", True),
    "ServiceMonitor": ("servicemonitors", True),
    "RuntimeClass": ("runtimeclasses", False),
    "EnvoyProxy": ("envoyproxies", True),
}


def object_path(obj: Mapping[str, Any]) -> str:
    """REST path of a named object (``/api/v1/...`` or ``/apis/<group>/<version>/...``)."""
    api_version = str(obj["apiVersion"])
    kind = str(obj["kind"])
    if kind not in _RESOURCES:
        raise LabError(f"lab bootstrap does not know how to apply kind {kind}")
    plural, namespaced = _RESOURCES[kind]
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    meta = obj["metadata"]
    if namespaced:
        prefix += f"/namespaces/{meta.get('namespace', 'default')}"
    return f"{prefix}/{plural}/{meta['name']}"


def condition_true(obj: Mapping[str, Any], cond_type: str) -> bool:
    """Whether ``obj``'s ``status.conditions`` has a ``cond_type`` condition with status True."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == cond_type and c.get("status") == "True" for c in conditions)


def client_tls_context(ca_file: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS context that verifies the server with ``ca_file`` and presents a client cert."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


@dataclass(frozen=True)
class KubeAPI:
    """Admin access to the lab API server over TLS with the lab's client certificate."""

    server: str
    ca_file: Path
    cert_file: Path
    key_file: Path

    def _context(self) -> ssl.SSLContext:
        return client_tls_context(self.ca_file, self.cert_file, self.key_file)

    def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> tuple[int, Obj]:
        """One HTTP request; returns (status, decoded JSON body or {})."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        req.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._context(), timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else {})
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = {"message": raw.decode(errors="replace")}
            return err.code, payload
        except (urllib.error.URLError, OSError) as err:
            raise LabError(f"lab API server {self.server} unreachable: {err}") from err

    def get(self, path: str) -> Obj | None:
        """GET an object; None when it does not exist."""
        status, body = self.request("GET", path)
        if status == 404:
            return None
        if status >= 300:
            raise LabError(f"GET {path}: HTTP {status}: {body.get('message', '')}")
        return body

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply ``obj`` (create or update), owned by the lab's field manager."""
        path = object_path(obj) + "?fieldManager=aic-lab&force=true"
        status, body = self.request("PATCH", path, obj, content_type="application/apply-patch+yaml")
        if status >= 300:
            name = obj["metadata"]["name"]
            raise LabError(f"applying {obj['kind']} {name}: HTTP {status}: {body.get('message')}")
        return body

    def wait_list(
        self,
        list_path: str,
        predicate: Callable[[list[Obj]], bool],
        *,
        timeout: float,
        what: str,
    ) -> list[Obj]:
        """Wait until ``predicate(items)`` holds for the collection at ``list_path``.

        Lists once, then follows a watch from that resourceVersion, so the wait returns as soon
        as the condition holds and sends no request while nothing changes.
        """
        deadline = time.monotonic() + timeout
        items: dict[str, Obj] = {}
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
            listing = self.get(list_path)
            if listing is None:
                raise LabError(f"{list_path} is not served while waiting for {what}")
            items = {_key(o): o for o in listing.get("items", [])}
            if predicate(list(items.values())):
                return list(items.values())
            rv = listing["metadata"]["resourceVersion"]
            sep = "&" if "?" in list_path else "?"
            watch_s = max(1, int(remaining))
            path = f"{list_path}{sep}watch=1&resourceVersion={rv}&timeoutSeconds={watch_s}"
            req = urllib.request.Request(self.server + path)
            try:
                with urllib.request.urlopen(
                    req, context=self._context(), timeout=remaining + 5
                ) as resp:
                    for line in resp:
                        event = json.loads(line)
                        obj = event.get("object", {})
                        if event.get("type") == "ERROR":
                            break  # e.g. resourceVersion too old: list again.
                        if event.get("type") == "DELETED":
                            items.pop(_key(obj), None)
                        else:
                            items[_key(obj)] = obj
                        if predicate(list(items.values())):
                            return list(items.values())
                        if time.monotonic() > deadline:
                            break
            except (TimeoutError, urllib.error.URLError, OSError, ValueError):
                # Watch dropped: back off briefly, then list again (until the deadline).
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _key(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
