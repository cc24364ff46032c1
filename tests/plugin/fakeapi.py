"""A tiny fake Kubernetes API server for plugin tests (threaded http.server on 127.0.0.1).

It answers what the plugin's session start (discover()) and namespace handling need:
/version, /api, /api/v1, /apis, group resource lists, lists of any served resource
(empty unless objects were added), watches (an empty stream that closes at once), and
POST/GET/DELETE of namespaces. It records every request, so tests can assert which
DELETE calls arrived. It can answer 401 to everything, or 403 to chosen paths with a
Kubernetes Status body like a real API server.

Tests can serve more API groups (`extra_groups`, e.g. a gang scheduler's CRDs) and more core
resources (`extra_core`, e.g. services), and act as controllers: each of `reactors` is called
with (cluster, store key, object) after a POST stored the object, and may add or change
objects (a fake scheduler binding pods); each of `delete_reactors` likewise after a DELETE
removed one (a controller repairing its child). Each of `admission` is called with (cluster,
store key, object) before a POST stores it and may deny it, like an admission webhook, by
returning (HTTP code, message). A POST with `dryRun=All` is admitted but neither stored nor
reacted to. Objects of an extra group are kept in `objects` under
`<resource>.<group>` (two groups' PodGroups never mix), all others under the resource's name.
Lists honour the namespace of the path and `field=value` field selectors (dotted paths, e.g.
spec.nodeName).

Run it standalone (for a subprocess test) with `python fakeapi.py STATEFILE [options]`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

CORE = {
    "namespaces": ("Namespace", False),
    "nodes": ("Node", False),
    "events": ("Event", True),
    "pods": ("Pod", True),
    "configmaps": ("ConfigMap", True),
}
GROUPS: dict[str, dict[str, tuple[str, bool]]] = {
    "apps/v1": {"deployments": ("Deployment", True)},
    "apiextensions.k8s.io/v1": {
        "customresourcedefinitions": ("CustomResourceDefinition", False),
    },
    "apiregistration.k8s.io/v1": {"apiservices": ("APIService", False)},
    "node.k8s.io/v1": {"runtimeclasses": ("RuntimeClass", False)},
    "rbac.authorization.k8s.io/v1": {
        "clusterroles": ("ClusterRole", False),
        "clusterrolebindings": ("ClusterRoleBinding", False),
    },
    "scheduling.k8s.io/v1": {"priorityclasses": ("PriorityClass", False)},
}
DRA = {
    "deviceclasses": ("DeviceClass", False),
    "resourceclaims": ("ResourceClaim", True),
    "resourceclaimtemplates": ("ResourceClaimTemplate", True),
    "resourceslices": ("ResourceSlice", False),
}


@dataclass
class FakeCluster:
    """What the fake server serves; tests change it between runs."""

    git_version: str = "v1.34.2"
    serve_dra: bool = True
    deny_all: int | None = None  # e.g. 401: every request is answered with it
    forbidden: dict[str, str] = field(default_factory=dict)  # path prefix -> "list nodes"
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # group/version -> {resource: (Kind, namespaced)}, served besides GROUPS
    extra_groups: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict)
    # core (v1) resources served besides CORE, e.g. {"services": ("Service", True)}
    extra_core: dict[str, tuple[str, bool]] = field(default_factory=dict)
    reactors: list[Callable[[FakeCluster, str, dict[str, Any]], None]] = field(
        default_factory=list)
    delete_reactors: list[Callable[[FakeCluster, str, dict[str, Any]], None]] = field(
        default_factory=list)
    admission: list[Callable[[FakeCluster, str, dict[str, Any]], tuple[int, str] | None]] = (
        field(default_factory=list))
    lock: threading.RLock = field(default_factory=threading.RLock)  # reactors vs. readers

    def groups(self) -> dict[str, dict[str, tuple[str, bool]]]:
        out = dict(GROUPS)
        if self.serve_dra:
            out["resource.k8s.io/v1"] = DRA
        out.update(self.extra_groups)
        return out

    def store_key(self, group_version: str, resource: str) -> str:
        """Where objects of a resource are kept in `objects`."""
        if group_version in self.extra_groups:
            return f"{resource}.{group_version.split('/')[0]}"
        return resource

    def add(self, resource: str, obj: dict[str, Any]) -> None:
        self.objects.setdefault(resource, {})[obj["metadata"]["name"]] = obj

    @property
    def deletes(self) -> list[str]:
        return [path for method, path in self.requests if method == "DELETE"]


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _field(obj: Any, path: str) -> str:
    for key in path.split("."):
        obj = obj.get(key) if isinstance(obj, dict) else None
    return "" if obj is None else str(obj)


def _fields_match(obj: dict[str, Any], selector: str) -> bool:
    """`a.b=v` / `a.b==v` / `a.b!=v` terms, comma-separated, like the API server's."""
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            path, _, value = term.partition("!=")
            if _field(obj, path) == value:
                return False
            continue
        path, _, value = term.partition("=")
        if _field(obj, path) != value.removeprefix("="):
            return False
    return True


def _in_namespace(obj: dict[str, Any], namespace: str | None) -> bool:
    """An object added without a namespace is seen from every namespace."""
    own = obj.get("metadata", {}).get("namespace")
    return namespace is None or own is None or own == namespace


def _matches(obj: dict[str, Any], selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster  # set on the subclass per server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs cost 40 ms per request

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any, reason: str = "") -> None:
        data = json.dumps(body).encode()
        self.send_response(code, reason or None)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _resource(self, parts: list[str]) -> tuple[str, str | None, str | None] | None:
        """(group_version, resource, name) of an object path; None if not a resource path."""
        if parts[:2] == ["api", "v1"]:
            gv, rest = "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return None
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) >= 3:
            rest = rest[2:]  # namespaced path: drop namespaces/<ns>
        if not rest:
            return gv, None, None
        return gv, rest[0], rest[1] if len(rest) > 1 else None

    def _handle(self, method: str) -> None:
        cluster = self.cluster
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        cluster.requests.append((method, url.path))
        body = self._read_body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
        if cluster.deny_all == 401:
            self._send(401, status_body(401, "Unauthorized", "Unauthorized"), "Unauthorized")
            return
        for prefix, verb in cluster.forbidden.items():
            if url.path.startswith(prefix):
                what, _, resource = verb.partition(" ")
                self._send(403, status_body(
                    403, "Forbidden",
                    f'{resource} is forbidden: User "system:anonymous" cannot {what} resource '
                    f'"{resource}" in API group "" at the cluster scope'), "Forbidden")
                return
        path = url.path.rstrip("/")
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            major, minor = cluster.git_version.lstrip("v").split(".")[:2]
            self._send(200, {"major": major, "minor": minor, "gitVersion": cluster.git_version})
            return
        if path == "/api":
            self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
            return
        if path == "/apis":
            groups = []
            for gv in cluster.groups():
                group, version = gv.split("/")
                entry = {"groupVersion": gv, "version": version}
                groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
            self._send(200, {"kind": "APIGroupList", "groups": groups})
            return
        found = self._resource(parts)
        served = {"v1": {**CORE, **cluster.extra_core}, **cluster.groups()}
        if found is None or found[0] not in served:
            self._send(404, status_body(404, "NotFound", "the server could not find the "
                                                          "requested resource"), "Not Found")
            return
        gv, resource, name = found
        namespace = parts[parts.index("namespaces") + 1] if (
            "namespaces" in parts[:-1] and resource != "namespaces") else None
        with cluster.lock:
            self._serve(method, query, body, gv, served[gv], resource, name, namespace)

    def _serve(self, method: str, query: dict[str, str], body: Any, gv: str,
               kinds: dict[str, tuple[str, bool]], resource: str | None, name: str | None,
               namespace: str | None) -> None:
        cluster = self.cluster
        if resource is None:
            self._send(200, {"kind": "APIResourceList", "groupVersion": gv, "resources": [
                {"name": r, "kind": k, "namespaced": ns,
                 "verbs": ["create", "delete", "get", "list", "watch"]}
                for r, (k, ns) in kinds.items()
            ]})
            return
        if resource not in kinds:
            self._send(404, status_body(404, "NotFound", "not found"), "Not Found")
            return
        key = cluster.store_key(gv, resource)
        store = cluster.objects.setdefault(key, {})
        kind = kinds[resource][0]
        if method == "GET" and name is None:
            if query.get("watch") == "true":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            selector = query.get("labelSelector", "")
            field_sel = query.get("fieldSelector", "")
            items = [o for o in store.values() if _matches(o, selector)
                     and _in_namespace(o, namespace) and _fields_match(o, field_sel)]
            self._send(200, {"kind": f"{kind}List", "apiVersion": gv,
                             "metadata": {"resourceVersion": "1"}, "items": items})
            return
        if method == "GET":
            if name in store and _in_namespace(store[name], namespace):
                self._send(200, store[name])
            else:
                self._send(404, status_body(404, "NotFound",
                                            f'{resource} "{name}" not found'), "Not Found")
            return
        if method == "POST" and name is None:
            obj = dict(body or {})
            meta = obj.setdefault("metadata", {})
            if namespace and resource != "namespaces":
                meta.setdefault("namespace", namespace)
            for admit in list(cluster.admission):
                denied = admit(cluster, key, obj)
                if denied is not None:
                    code, message = denied
                    self._send(code, status_body(code, "Forbidden" if code == 403 else "Invalid",
                                                 message), "Denied")
                    return
            if query.get("dryRun") == "All":
                self._send(201, obj)
                return
            meta.setdefault("resourceVersion", "1")
            store[meta["name"]] = obj
            for react in list(cluster.reactors):
                react(cluster, key, obj)
            self._send(201, obj)
            return
        if method == "DELETE" and name is not None:
            obj = store.pop(name, None)
            if obj is None:
                self._send(404, status_body(404, "NotFound", f'{resource} "{name}" not found'),
                           "Not Found")
            else:
                for react in list(cluster.delete_reactors):
                    react(cluster, key, obj)
                self._send(200, obj)
            return
        self._send(405, status_body(405, "MethodNotAllowed", "not supported by the fake"),
                   "Method Not Allowed")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


class FakeApiServer:
    """Serves a FakeCluster on 127.0.0.1:<ephemeral port> in a daemon thread."""

    def __init__(self, cluster: FakeCluster | None = None, port: int = 0) -> None:
        self.cluster = cluster or FakeCluster()
        handler = type("BoundHandler", (Handler,), {"cluster": self.cluster})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def kubeconfig_text(server: str, context: str = "fake", token: str = "fake-token") -> str:
    """A kubeconfig with one context pointing at `server` (plain http)."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {server}
contexts:
- name: {context}
  context:
    cluster: fake
    user: fake
current-context: {context}
users:
- name: fake
  user:
    token: {token}
"""


def write_kubeconfig(path: Path, server: str, **kwargs: str) -> Path:
    path.write_text(kubeconfig_text(server, **kwargs))
    return path
