"""Operators the checks rely on: detect an existing installation, or install with helm.

A detected installation is used untouched. With --aic-install a missing operator is
installed with the `helm` CLI, labelled as ours, and uninstalled at session end: only
what this run installed is ever removed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from pytest_aiconformance.cluster import ApiError, ClusterError, Kube
from pytest_aiconformance.waiting import condition_true


@dataclass(frozen=True)
class OperatorSpec:
    """How to recognise and install one operator."""

    name: str
    title: str
    crds: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()  # label selectors, any namespace
    deviceclasses: tuple[str, ...] = ()
    apiservices: tuple[str, ...] = ()
    configmaps: tuple[str, ...] = ()  # namespace/name
    chart: dict[str, str] = field(default_factory=dict)
    namespace: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Detection:
    """What detection found for one operator."""

    spec: OperatorSpec
    present: bool
    ready: bool
    details: list[str] = field(default_factory=list)
    installed_by_us: bool = False

    def summary(self) -> str:
        state = "ready" if self.ready else ("present, not ready" if self.present else "absent")
        notes = [*self.details, *(["installed by this run"] if self.installed_by_us else [])]
        extra = f" ({'; '.join(notes)})" if notes else ""
        return f"{self.spec.title}: {state}{extra}"


@cache
def load_operator_specs() -> dict[str, OperatorSpec]:
    text = resources.files("pytest_aiconformance").joinpath("data/operators.yaml").read_text()
    data = yaml.safe_load(text)["operators"]
    specs = {}
    for name, item in data.items():
        specs[name] = OperatorSpec(
            name=name,
            title=item["title"],
            crds=tuple(item.get("crds", ())),
            deployments=tuple(item.get("deployments", ())),
            deviceclasses=tuple(item.get("deviceclasses", ())),
            apiservices=tuple(item.get("apiservices", ())),
            configmaps=tuple(item.get("configmaps", ())),
            chart=dict(item.get("chart", {})),
            namespace=item.get("namespace", ""),
            values=dict(item.get("values", {})),
        )
    return specs


def _deployment_ready(dep: dict[str, Any]) -> bool:
    want = dep.get("spec", {}).get("replicas", 1)
    status = dep.get("status", {})
    return bool(want) and status.get("readyReplicas", 0) >= want


def detect(kube: Kube, spec: OperatorSpec) -> Detection:
    """Look for the operator's CRDs, DeviceClasses, APIServices and Deployments."""
    details: list[str] = []
    signals: list[bool] = []
    ready_signals: list[bool] = []
    def conditioned(api_version: str, kind: str, label: str, names: tuple[str, ...],
                    condition: str) -> None:
        """Objects that exist (present) and report a condition True (ready)."""
        for name in names:
            obj = kube.get_or_none(api_version, kind, name)
            ok = obj is not None and condition_true(obj, condition)
            signals.append(obj is not None)
            ready_signals.append(ok)
            if obj is not None:
                details.append(f"{label} {name} {condition if ok else 'not ' + condition}")

    conditioned("apiextensions.k8s.io/v1", "CustomResourceDefinition", "CRD", spec.crds,
                "Established")
    if spec.deviceclasses and kube.serves("resource.k8s.io/v1", "DeviceClass"):
        for name in spec.deviceclasses:
            found = kube.get_or_none("resource.k8s.io/v1", "DeviceClass", name) is not None
            signals.append(found)
            ready_signals.append(found)
            if found:
                details.append(f"DeviceClass {name}")
    conditioned("apiregistration.k8s.io/v1", "APIService", "APIService", spec.apiservices,
                "Available")
    for ref in spec.configmaps:
        ns, _, name = ref.partition("/")
        found = kube.get_or_none("v1", "ConfigMap", name, ns) is not None
        signals.append(found)
        if found:
            details.append(f"ConfigMap {ref}")
    if spec.deployments:
        deps: list[dict[str, Any]] = []
        for selector in spec.deployments:
            try:
                deps.extend(kube.items("apps/v1", "Deployment", label_selector=selector))
            except ApiError as exc:
                if exc.status != 403:
                    raise
        if deps:
            ready = all(_deployment_ready(d) for d in deps)
            names = sorted(f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in deps)
            details.append(f"Deployment {', '.join(names)} {'ready' if ready else 'not ready'}")
            signals.append(True)
            ready_signals.append(ready)
        else:
            signals.append(False)
    present = any(signals)
    ready = present and all(ready_signals) if ready_signals else present
    return Detection(spec=spec, present=present, ready=ready, details=details)


def detect_all(kube: Kube) -> dict[str, Detection]:
    out = {}
    for name, spec in load_operator_specs().items():
        try:
            out[name] = detect(kube, spec)
        except ClusterError as exc:
            out[name] = Detection(spec, present=False, ready=False,
                                  details=[f"probe failed: {exc}"])
    return out


class HelmError(ClusterError):
    """helm is missing or an install failed."""


def require_helm() -> str:
    path = shutil.which("helm")
    if not path:
        raise HelmError(
            "--aic-install needs the helm CLI on PATH; install helm or drop --aic-install"
        )
    return path


def helm_install(spec: OperatorSpec, kubeconfig: str, context: str | None, run_id: str,
                 timeout_s: float) -> None:
    """Install the chart into its namespace, labelled with this run (uninstalled at end)."""
    helm = require_helm()
    chart = spec.chart
    release = f"aic-{spec.name}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values:
        json.dump(spec.values, values)
        values.flush()
        args = [helm, "upgrade", "--install", release, chart["name"], "--version", chart["version"],
                "--namespace", spec.namespace, "--create-namespace", "--values", values.name,
                "--labels", f"aiconformance.io/run-id={run_id}", "--wait",
                "--timeout", f"{int(timeout_s)}s", "--kubeconfig", kubeconfig]
        if chart["repo"].startswith("oci://"):
            args[4] = f"{chart['repo']}/{chart['name']}"
        else:
            args += ["--repo", chart["repo"]]
        if context:
            args += ["--kube-context", context]
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise HelmError(f"helm install of {spec.title} failed: {last[0]}")


def helm_uninstall(spec: OperatorSpec, kubeconfig: str, context: str | None) -> None:
    helm = require_helm()
    args = [helm, "uninstall", f"aic-{spec.name}", "--namespace", spec.namespace, "--wait",
            "--kubeconfig", kubeconfig]
    if context:
        args += ["--kube-context", context]
    subprocess.run(args, capture_output=True, text=True, check=False)


@dataclass
class OperatorManager:
    """Per-session operator access: detect once, install with helm only when asked.

    Detection results are cached for the session. With install=True a missing operator is
    installed (labelled with the run id) and uninstall() removes exactly those, nothing else.
    """

    kube: Kube
    kubeconfig: str
    context: str | None
    run_id: str
    install: bool = False
    timeout_s: float = 600.0
    detected: dict[str, Detection] = field(default_factory=dict)
    installed: list[str] = field(default_factory=list)

    def ensure(self, name: str) -> Detection:
        """The operator's detection; installs it first if missing and --aic-install is set."""
        specs = load_operator_specs()
        if name not in specs:
            raise KeyError(f"unknown operator {name!r}; known: {', '.join(sorted(specs))}")
        if name not in self.detected:
            found = detect(self.kube, specs[name])
            if not found.present and self.install:
                helm_install(specs[name], self.kubeconfig, self.context, self.run_id,
                             self.timeout_s)
                self.installed.append(name)
                found = detect(self.kube, specs[name])
                found.installed_by_us = True
            self.detected[name] = found
        return self.detected[name]

    def uninstall(self) -> list[str]:
        """Remove what this run installed (newest first); returns problems."""
        problems = []
        specs = load_operator_specs()
        for name in reversed(self.installed):
            try:
                helm_uninstall(specs[name], self.kubeconfig, self.context)
            except HelmError as exc:
                problems.append(str(exc))
        self.installed.clear()
        return problems
