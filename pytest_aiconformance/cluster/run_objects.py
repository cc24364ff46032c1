"""Isolation and cleanup: a run id, labels on everything created, orderly teardown.

Every object the suite creates carries the managed-by and run-id labels, cluster-scoped
ones too, so that teardown (and --aic-cleanup after a SIGKILL) can find exactly what we
made and nothing else. Nothing without our labels is ever modified or deleted.
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_aiconformance.cluster.client import ApiError, ClusterError, Kube, TransientError
from pytest_aiconformance.cluster.waits import Target, WaitTimeout, wait_deleted
from pytest_aiconformance.cluster.workloads import merge_tolerations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "pytest-aiconformance"
RUN_LABEL = "aiconformance.io/run-id"
CHECK_LABEL = "aiconformance.io/check"

def new_run_id() -> str:
    """Short, DNS-safe, unique enough to tell concurrent runs apart."""
    return secrets.token_hex(3)


def selector_all_runs() -> str:
    return f"{MANAGED_BY}={MANAGER}"


@dataclass(frozen=True)
class Created:
    api_version: str
    kind: str
    name: str
    namespace: str | None = None


@dataclass
class RunContext:
    """The objects one run has created, and how to label and remove them."""

    kube: Kube
    run_id: str
    timeout_scale: float = 1.0
    # Tolerations of the taints found on the cluster's accelerator nodes (a tainted GPU pool):
    # every pod the run creates carries them, as it carries the run's labels.
    tolerations: list[dict[str, str]] = field(default_factory=list)
    created: list[Created] = field(default_factory=list)
    terminating: list[Created] = field(default_factory=list)  # namespaces still going
    # Nodes the pods of the running check must not land on: simulated (kwok) nodes, while a
    # check that looks inside containers runs on a cluster that also has real nodes.
    keep_off_nodes: list[str] = field(default_factory=list)
    _counter: int = 0

    def labels(self, check: str | None = None) -> dict[str, str]:
        out = {MANAGED_BY: MANAGER, RUN_LABEL: self.run_id}
        if check:
            out[CHECK_LABEL] = check[:63].strip("-_.")
        return out

    @property
    def selector(self) -> str:
        return f"{MANAGED_BY}={MANAGER},{RUN_LABEL}={self.run_id}"

    def labelled(self, obj: dict[str, Any], check: str | None = None) -> dict[str, Any]:
        """A copy of obj with our labels on it and on any pod template inside it."""
        out = copy.deepcopy(obj)
        labels = self.labels(check)
        out.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        template = out.get("spec", {}).get("template")
        if isinstance(template, dict):
            template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        if self.tolerations:
            for spec in _pod_specs(out):
                spec["tolerations"] = merge_tolerations(spec.get("tolerations") or [],
                                                        self.tolerations)
        if self.keep_off_nodes:
            for spec in _pod_specs(out):
                _keep_off(spec, self.keep_off_nodes)
        return out

    def create(self, obj: dict[str, Any], check: str | None = None) -> dict[str, Any]:
        """Create a labelled object and remember it for teardown."""
        body = self.labelled(obj, check)
        result: dict[str, Any] = self.kube.create(body)
        meta = result.get("metadata", {})
        self.created.append(
            Created(body["apiVersion"], body["kind"], meta["name"], meta.get("namespace"))
        )
        return result

    def namespace(self, prefix: str, pod_security: str = "restricted",
                  check: str | None = None) -> str:
        """Create a fresh namespace with Pod Security labels; returns its name."""
        self._counter += 1
        base = prefix.lower().replace("_", "-")[:40].strip("-")
        name = f"aic-{base}-{self.run_id}-{self._counter}"
        labels = self.labels(check)
        labels.update({
            "pod-security.kubernetes.io/enforce": pod_security,
            "pod-security.kubernetes.io/warn": pod_security,
        })
        self.create({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": name, "labels": labels}})
        return name

    def forget(self, namespace: str) -> None:
        """Keep a namespace (--aic-keep-namespaces): drop it and its objects from teardown."""
        self.created = [
            c for c in self.created
            if c.namespace != namespace and not (c.kind == "Namespace" and c.name == namespace)
        ]

    def teardown(self, only_namespace: str | None = None, timeout: float = 120.0) -> list[str]:
        """Delete what we created (newest first) and wait until it is gone; returns problems.

        For one check's namespace (only_namespace) the pods are deleted at once and waited
        for, so the accelerators they held are free for the next check, while the namespace
        itself finishes in the background (the namespace controller waits 5 s before it
        starts); the session's final teardown waits for every namespace.
        """
        problems: list[str] = []
        todo = [c for c in reversed(self.created)
                if only_namespace is None or c.namespace == only_namespace
                or (c.kind == "Namespace" and c.name == only_namespace)]
        namespaces = {c.name for c in todo if c.kind == "Namespace"}
        for item in todo:
            if item.namespace in namespaces:
                continue  # goes with its namespace
            try:
                self.kube.delete(item.api_version, item.kind, item.name, item.namespace,
                                 propagation="Foreground" if item.kind != "Namespace"
                                 else "Background")
            except (ApiError, TransientError, ClusterError) as exc:
                problems.append(f"delete {item.kind} {item.name}: {exc}")
        deadline = time.monotonic() + timeout * self.timeout_scale
        for ns in sorted(namespaces):
            # Pods go now (a terminating namespace admits no replacements).
            try:
                self.kube.request("DELETE", f"/api/v1/namespaces/{ns}/pods",
                                  body={"gracePeriodSeconds": 0})
                wait_deleted(self.kube, Target("v1", "Pod", ns),
                             timeout=max(1.0, deadline - time.monotonic()))
            except (WaitTimeout, ClusterError) as exc:
                problems.append(str(exc).splitlines()[0])
        for item in todo:
            if item.namespace in namespaces:
                continue
            if only_namespace is not None and item.kind == "Namespace":
                self.terminating.append(item)
                continue
            left = max(1.0, deadline - time.monotonic())
            try:
                wait_deleted(self.kube, Target(item.api_version, item.kind, item.namespace,
                                               name=item.name), timeout=left)
            except (WaitTimeout, ClusterError) as exc:
                problems.append(str(exc).splitlines()[0])
        if only_namespace is None:
            for item in self.terminating:
                left = max(1.0, deadline - time.monotonic())
                try:
                    wait_deleted(self.kube, Target("v1", "Namespace", name=item.name),
                                 timeout=left)
                except (WaitTimeout, ClusterError) as exc:
                    problems.append(str(exc).splitlines()[0])
            self.terminating.clear()
        self.created = [c for c in self.created if c not in todo]
        return problems


def cluster_scoped_kinds(kube: Kube) -> list[tuple[str, str]]:
    """Every cluster-scoped kind the server serves and lets us list and delete, Namespaces aside.

    The sweep asks the server instead of keeping a list of the kinds checks create, so a
    check that creates a new cluster-scoped kind cannot leave it behind unnoticed. One
    version per group (the preferred one) finds objects created through any version.
    """
    groups = kube.request("GET", "/apis").get("groups", [])
    versions = ["v1"] + [g["preferredVersion"]["groupVersion"] for g in groups
                         if g.get("preferredVersion")]
    found = []
    for api_version in versions:
        for res in kube.resources(api_version):
            verbs = set(res.get("verbs", []))
            if ("/" not in res["name"] and not res.get("namespaced")
                    and res.get("kind") != "Namespace" and {"list", "delete"} <= verbs):
                found.append((api_version, str(res["kind"])))
    return found


def _keep_off(spec: dict[str, Any], nodes: list[str]) -> None:
    """Add "not on these nodes" to every required node-affinity term of a pod spec."""
    if spec.get("nodeName"):
        return
    # One requirement per node: a metadata.name field requirement takes exactly one value.
    matches = [{"key": "metadata.name", "operator": "NotIn", "values": [n]}
               for n in sorted(nodes)]
    required = (spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
                .setdefault("requiredDuringSchedulingIgnoredDuringExecution", {}))
    terms = required.setdefault("nodeSelectorTerms", [])
    if not terms:
        terms.append({})
    for term in terms:
        term.setdefault("matchFields", []).extend(dict(m) for m in matches)


def _pod_specs(obj: Any) -> list[dict[str, Any]]:
    """Every pod spec inside an object (a Pod's, a Job's or a RayCluster's templates...)."""
    found: list[dict[str, Any]] = []
    if isinstance(obj, dict):
        if isinstance(obj.get("containers"), list):
            found.append(obj)
        for value in obj.values():
            found.extend(_pod_specs(value))
    elif isinstance(obj, list):
        for value in obj:
            found.extend(_pod_specs(value))
    return found


def sweep(kube: Kube, say: Callable[[str], None], timeout: float = 180.0,
          run_id: str | None = None) -> int:
    """Delete every object any run of this suite left behind (by label only).

    With run_id, only that run's objects: the end of a session uses it to catch an object
    whose create call was interrupted (Ctrl-C) after the server had stored it.
    """
    selector = selector_all_runs() + (f",{RUN_LABEL}={run_id}" if run_id else "")
    count = 0
    namespaces = kube.items("v1", "Namespace", label_selector=selector)
    for ns in namespaces:
        name = ns["metadata"]["name"]
        run = ns["metadata"].get("labels", {}).get(RUN_LABEL, "?")
        say(f"deleting namespace {name} (run {run})")
        kube.delete("v1", "Namespace", name)
        count += 1
    for api_version, kind in cluster_scoped_kinds(kube):
        try:
            objs = kube.items(api_version, kind, label_selector=selector)
        except ApiError as exc:
            if exc.status in (403, 404, 405):
                continue  # not ours to list (RBAC), or gone since discovery
            raise
        for obj in objs:
            name = obj["metadata"]["name"]
            say(f"deleting {kind} {name}")
            kube.delete(api_version, kind, name)
            count += 1
    if namespaces:
        wait_deleted(kube, Target("v1", "Namespace", label_selector=selector), timeout=timeout)
    return count
