"""Cluster access: one API client built from an explicit kubeconfig and context.

Objects are plain dicts (as `kubectl get -o json` shows them) so that any kind, CRDs
included, works the same and evidence shows what a user would see. Transient API errors
(429, 5xx, connection resets) are retried with tenacity; everything else becomes a
ClusterError whose message is one line a user can act on.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.stream import stream
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read
# Long waits and outages report on this logger; the plugin shows its records on the terminal.
PROGRESS_LOGGER = "pytest_aiconformance.progress"
_log = logging.getLogger(PROGRESS_LOGGER)


class ClusterError(Exception):
    """A problem reaching or using the cluster, worded as one line for the user."""


class ApiError(ClusterError):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, body: dict[str, Any] | None, what: str) -> None:
        self.status = status
        self.reason = reason
        self.body = body or {}
        self.message = str(self.body.get("message") or reason)
        # The server's own words first: they name the cause (a webhook that does not answer,
        # a quota, a missing permission); the request comes after, for the record.
        super().__init__(f"{self.message} ({what}: {status} {reason})")


class TransientError(ClusterError):
    """An error worth retrying (throttling, server hiccup, reset connection)."""


class Unreachable(ClusterError):
    """No answer from the API server at all (refused, timed out): an outage, not a verdict."""


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientError)


def default_kubeconfig() -> Path:
    """$KUBECONFIG's first entry, else ~/.kube/config (what kubectl uses)."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(os.path.expanduser(first or "~/.kube/config"))


def load_configuration(kubeconfig: Path | None, context: str | None) -> k8s_client.Configuration:
    """Build a client Configuration from an explicit file; never the library's global default."""
    path = kubeconfig or default_kubeconfig()
    if not path.is_file():
        raise ClusterError(f"kubeconfig not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ClusterError(f"kubeconfig {path} is not valid YAML: {_first_line(exc)}") from None
    if not isinstance(data, dict) or not data.get("contexts"):
        raise ClusterError(f"kubeconfig {path} has no contexts")
    names = [c.get("name") for c in data.get("contexts") or [] if isinstance(c, dict)]
    if context and context not in names:
        raise ClusterError(
            f"context {context!r} not found in {path}; available: {', '.join(map(str, names))}"
        )
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, ValueError, KeyError, TypeError, OSError) as exc:
        raise ClusterError(f"kubeconfig {path} cannot be used: {_first_line(exc)}") from None
    configuration.retries = 0  # retries are ours (tenacity), with explicit deadlines
    return configuration


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@dataclass
class Kube:
    """A small typed REST layer over the client's transport; objects are dicts."""

    configuration: k8s_client.Configuration
    context: str = ""
    _api: k8s_client.ApiClient | None = None
    _resources: dict[str, builtins.list[dict[str, Any]]] = field(default_factory=dict)
    # How long a call waits out an unreachable API server. 0 while the session starts, so a
    # wrong address is one clear line at once; the run then rides out a restart or outage.
    outage_budget_s: float = 0.0
    # Outages this client rode out, as (first failure, first answer) on the monotonic clock:
    # the cluster's controllers resume later than the API server does, and waits allow for it.
    outages: builtins.list[tuple[float, float]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Kube({self.server})"

    @property
    def api(self) -> k8s_client.ApiClient:
        if self._api is None:
            self._api = k8s_client.ApiClient(self.configuration)
        return self._api

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    def close(self) -> None:
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]
            self._api = None

    # --- transport -----------------------------------------------------------------

    def _raw(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
        stream: bool = False,
    ) -> Any:
        if query:
            path = f"{path}?{urlencode({k: v for k, v in query.items() if v is not None})}"
        headers = {"Accept": "application/json", "Content-Type": content_type}
        _method, url, headers, body_out, _post = self.api.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(
                method, url, header_params=headers, body=body_out,
                _request_timeout=timeout or DEFAULT_TIMEOUT,
            )
        except k8s_client.ApiException as exc:
            raise ClusterError(f"{method} {path}: {_first_line(exc)}") from None
        except urllib3.exceptions.HTTPError as exc:
            reason = _connection_reason(exc)
            if isinstance(exc, urllib3.exceptions.ProtocolError):
                raise TransientError(f"{method} {path}: {reason}") from None
            raise Unreachable(f"cannot reach API server {self.server}: {reason}") from None
        if stream and 200 <= response.status < 300:
            return response.response
        data = response.read()  # type: ignore[no-untyped-call]
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        if 200 <= response.status < 300:
            if not text:
                return {}
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return text
        try:
            parsed = json.loads(text)
            err_body: dict[str, Any] | None = parsed if isinstance(parsed, dict) else None
        except json.JSONDecodeError:
            err_body = {"message": text.strip()[:300]}
        what = f"{method} {path}"
        if response.status == 429 or response.status >= 500:
            said = str((err_body or {}).get("message") or "").strip()
            where = f"{what}: {response.status} {response.reason}"
            raise TransientError(f"{said} ({where})" if said else where)
        raise ApiError(response.status, str(response.reason), err_body, what)

    @retry(
        retry=retry_if_exception(_is_transient),
        stop=stop_after_attempt(5),
        wait=wait_exponential(multiplier=0.2, max=3),
        reraise=True,
    )
    def _answered(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call, retrying transient failures a few times."""
        return self._raw(method, path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; an unreachable server is waited for within the outage budget."""
        deadline = time.monotonic() + self.outage_budget_s
        wait = 0.5
        next_say = 0.0
        down_since: float | None = None
        while True:
            try:
                answer = self._answered(method, path, **kwargs)
            except Unreachable as exc:
                now = time.monotonic()
                down_since = now if down_since is None else down_since
                if now >= deadline:
                    raise
                if now >= next_say:  # say it once, then every 10 s
                    _log.info("%s; retrying for up to %.0fs more", exc, deadline - now)
                    next_say = now + 10.0
                time.sleep(min(wait, deadline - now))
                wait = min(wait * 2, 5.0)
                continue
            if down_since is not None:
                self.outages.append((down_since, time.monotonic()))
            return answer

    def outage_allowance(self, since: float, recovery_s: float) -> float:
        """Extra time a wait begun at `since` grants for outages that touch it.

        After the API server returns, controllers' informers relist with client-go's backoff
        (up to ~30 s, jittered up to twice that), then retry their work items with their own
        backoff: an outage's effects outlast it. Each outage that ended after `since - recovery_s`
        adds its length, and the first such adds `recovery_s`.
        """
        touching = [end - start for start, end in self.outages if end >= since - recovery_s]
        return sum(touching) + recovery_s if touching else 0.0

    # --- discovery --------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/version")
        return result

    def group_versions(self) -> builtins.list[str]:
        """Every served group/version, core 'v1' included."""
        out = ["v1"]
        apis = self.request("GET", "/apis")
        for group in apis.get("groups", []):
            out.extend(v["groupVersion"] for v in group.get("versions", []))
        return out

    def resources(self, api_version: str) -> builtins.list[dict[str, Any]]:
        if api_version not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                found = self.request("GET", base).get("resources", [])
            except ApiError as exc:
                if exc.status == 404:
                    found = []
                else:
                    raise
            self._resources[api_version] = found
        return self._resources[api_version]

    def forget_discovery(self) -> None:
        """Drop cached discovery: APIs were added (an operator installed mid-run)."""
        self._resources.clear()

    def serves(self, api_version: str, kind: str | None = None) -> bool:
        res = self.resources(api_version)
        if kind is None:
            return bool(res)
        return any(r.get("kind") == kind and "/" not in r["name"] for r in res)

    def _resource(self, api_version: str, kind: str) -> dict[str, Any]:
        for res in self.resources(api_version):
            if res.get("kind") == kind and "/" not in res["name"]:
                return res
        # Discovery is cached; a CRD installed mid-run needs a refresh.
        self._resources.pop(api_version, None)
        for res in self.resources(api_version):
            if res.get("kind") == kind and "/" not in res["name"]:
                return res
        raise ClusterError(f"the API server does not serve {kind} in {api_version}")

    def path(self, api_version: str, kind: str, namespace: str | None = None,
             name: str | None = None, subresource: str | None = None) -> str:
        res = self._resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        parts = [base]
        if res.get("namespaced") and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(res["name"])
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    # --- object verbs -------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        return self.request("GET", self.path(api_version, kind, namespace, name))

    def get_or_none(self, api_version: str, kind: str, name: str,
                    namespace: str | None = None) -> Any:
        try:
            return self.get(api_version, kind, name, namespace)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> Any:
        return self.request(
            "GET",
            self.path(api_version, kind, namespace),
            query={"labelSelector": label_selector, "fieldSelector": field_selector},
        )

    def items(self, api_version: str, kind: str, namespace: str | None = None,
              label_selector: str | None = None,
              field_selector: str | None = None) -> builtins.list[dict[str, Any]]:
        result: builtins.list[dict[str, Any]] = self.list(
            api_version, kind, namespace, label_selector, field_selector
        ).get("items", [])
        return result

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> Any:
        meta = obj.get("metadata", {})
        return self.request(
            "POST",
            self.path(obj["apiVersion"], obj["kind"], meta.get("namespace")),
            body=obj,
            query={"dryRun": "All"} if dry_run else None,
        )

    def apply(self, obj: dict[str, Any], manager: str = "pytest-aiconformance") -> Any:
        """Server-side apply: idempotent create-or-update."""
        meta = obj["metadata"]
        return self.request(
            "PATCH",
            self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]),
            body=json.dumps(obj),
            content_type="application/apply-patch+yaml",
            query={"fieldManager": manager, "force": "true"},
        )

    def patch(self, api_version: str, kind: str, name: str, patch: dict[str, Any],
              namespace: str | None = None, subresource: str | None = None) -> Any:
        return self.request(
            "PATCH",
            self.path(api_version, kind, namespace, name, subresource),
            body=patch,
            content_type="application/merge-patch+json",
        )

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               *, propagation: str = "Background", grace: int | None = None) -> bool:
        """Delete; returns False if it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": propagation}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        try:
            self.request("DELETE", self.path(api_version, kind, namespace, name), body=body)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def logs(self, namespace: str, pod: str, container: str | None = None,
             previous: bool = False, tail: int | None = None) -> str:
        result = self.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
            query={"container": container, "previous": "true" if previous else None,
                   "tailLines": tail},
        )
        return result if isinstance(result, str) else json.dumps(result)

    def exec(self, namespace: str, pod: str, command: builtins.list[str],
             container: str | None = None, timeout: float = 60.0) -> str:
        """stdout+stderr of a command in a container (kubectl exec); ClusterError if refused."""
        core = k8s_client.CoreV1Api(self.api)
        try:
            output = stream(
                core.connect_get_namespaced_pod_exec, pod, namespace, command=command,
                container=container, stderr=True, stdin=False, stdout=True, tty=False,
                _request_timeout=timeout,
            )
        except Exception as exc:  # the stream layer raises several unrelated types
            raise ClusterError(
                f"exec in {namespace}/{pod}: {str(exc).splitlines()[0]}") from None
        return str(output)

    def watch(self, api_version: str, kind: str, namespace: str | None = None, *,
              label_selector: str | None = None, field_selector: str | None = None,
              resource_version: str | None = None,
              timeout_seconds: int = 60) -> Iterator[dict[str, Any]]:
        """Yield watch events ({type, object}) until the server closes the stream."""
        response = self._raw(
            "GET",
            self.path(api_version, kind, namespace),
            query={
                "watch": "true",
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": max(1, int(timeout_seconds)),
            },
            timeout=(5.0, float(timeout_seconds) + 10.0),
            stream=True,
        )
        buffer = b""
        try:
            for chunk in response.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"watch {kind}: {_connection_reason(exc)}") from None
        finally:
            response.release_conn()


def _connection_reason(exc: BaseException) -> str:
    """The innermost useful reason of a connection failure."""
    seen: BaseException | None = exc
    reason = str(exc)
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.timeout | TimeoutError):
            return "timed out"
        if isinstance(seen, socket.gaierror):
            return f"name resolution failed ({seen})"
        inner = getattr(seen, "reason", None)
        if isinstance(inner, BaseException) and inner is not seen:
            reason = str(inner)
            seen = inner
            continue
        seen = seen.__cause__ or seen.__context__
    text = reason.split(": ", 1)[-1] if "Connection refused" not in reason else "connection refused"
    return text.splitlines()[0] if text else "connection failed"


def connect(kubeconfig: Path | None, context: str | None) -> Kube:
    """A Kube for the given kubeconfig and context (no I/O until first use)."""
    configuration = load_configuration(kubeconfig, context)
    return Kube(configuration=configuration, context=context or "")

