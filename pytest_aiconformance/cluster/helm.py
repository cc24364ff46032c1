"""Installing an operator's chart with the helm CLI, for --aic-install.

Where the chart comes from (``ChartSource``): the operator's upstream repository pinned in
operators.yaml, one repository URL for every chart (a mirror), or a local directory (an
air-gapped site, or the lab's charts that ship inside the operators' Go modules). A chart
found locally must carry the pinned version: evidence names the version that was installed.

The values the suite owns are the operator's ``values`` plus the images of its ``images``
map, taken from the run's image table (images.yaml after AIC_IMAGES), so a mirror is what
the cluster pulls, and, on a cluster whose simulated nodes run no containers, a node
selector that puts the operator's pods on a node that runs them.

Every release is named ``aic-<operator>`` and labelled with the run id (Helm release labels,
``--labels``): ``--aic-cleanup`` finds and uninstalls the releases of a killed run, and a
release someone else made is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_aiconformance.cluster.client import ClusterError
from pytest_aiconformance.cluster.images import Image
from pytest_aiconformance.cluster.run_objects import RUN_LABEL

RELEASE_PREFIX = "aic-"
_URL_SCHEMES = ("oci://", "https://", "http://")


class HelmError(ClusterError):
    """helm is missing, a chart cannot be found, or an install failed."""


@dataclass(frozen=True)
class HelmTool:
    """The helm CLI a run uses, and where it takes charts from (None: upstream repos)."""

    path: str
    charts: str | None = None
    kubeconfig: str = ""
    context: str | None = None

    def base_args(self) -> list[str]:
        args = [self.path]
        if self.kubeconfig:
            args += ["--kubeconfig", self.kubeconfig]
        if self.context:
            args += ["--kube-context", self.context]
        return args


def find_helm(explicit: Path | None) -> str:
    """The helm CLI: the one named (--aic-helm, the lab's own), else helm on PATH."""
    if explicit is not None:
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            raise HelmError(f"--aic-helm: not an executable file: {explicit}")
        return str(explicit)
    path = shutil.which("helm")
    if not path:
        raise HelmError("--aic-install needs the helm CLI: put helm on PATH or name one with "
                        "--aic-helm (python -m aiconformance_lab build helm builds one)")
    return path


def check_charts_option(raw: str) -> str:
    """--aic-charts: a Helm repository URL or an existing directory; one line if neither."""
    if raw.startswith(_URL_SCHEMES):
        return raw.rstrip("/")
    path = Path(os.path.expanduser(raw))
    if not path.is_dir():
        raise HelmError(f"--aic-charts: not a directory or a repository URL "
                        f"(oci://, https://): {raw}")
    return str(path.resolve())


def _plain(version: str) -> str:
    return version.removeprefix("v")


def chart_args(chart: Mapping[str, str], source: str | None) -> tuple[list[str], str]:
    """The chart arguments of ``helm upgrade --install`` and a description of the source.

    ``chart``: operators.yaml's ``{repo, name, version}``; ``source``: --aic-charts.
    """
    name, version = chart["name"], chart["version"]
    repo = source if source is not None and source.startswith(_URL_SCHEMES) else None
    if source is None or repo is not None:
        repo = repo or chart["repo"]
        if repo.startswith("oci://"):
            return [f"{repo}/{name}", "--version", version], f"{repo}/{name} {version}"
        return [name, "--repo", repo, "--version", version], f"{name} {version} from {repo}"
    directory = Path(source)
    unpacked = directory / name / "Chart.yaml"
    if unpacked.is_file():
        try:
            found = str((yaml.safe_load(unpacked.read_text()) or {}).get("version", ""))
        except (OSError, yaml.YAMLError) as exc:
            raise HelmError(f"chart {name}: cannot read {unpacked}: {exc}") from None
        if _plain(found) != _plain(version):
            raise HelmError(f"chart {name} in {unpacked.parent} is version {found or '?'}; "
                            f"the suite pins {version} (operators.yaml)")
        return [str(unpacked.parent)], f"{name} {found} from {unpacked.parent}"
    for candidate in (f"{name}-{version}.tgz", f"{name}-{_plain(version)}.tgz"):
        packed = directory / candidate
        if packed.is_file():
            return [str(packed)], f"{name} {version} from {packed}"
    raise HelmError(f"chart {name} {version} not found in {directory} (looked for "
                    f"{name}/Chart.yaml and {name}-{_plain(version)}.tgz)")


def _set_path(values: dict[str, Any], dotted: str, value: Any) -> None:
    node = values
    *parents, last = dotted.split(".")
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        node[last] = {**node[last], **value}
    elif isinstance(value, list) and isinstance(node.get(last), list):
        node[last] = [*node[last], *value]
    else:
        node[last] = value


def install_values(base: Mapping[str, Any], image_paths: Mapping[str, str],
                   images: Mapping[str, Image], placement: Mapping[str, str],
                   node: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values of one install: the operator's own, its images from the run's table, and,
    where pods must avoid simulated nodes, a node selector naming ``node`` and tolerations of
    its scheduling taints (a GPU node that is the only one running containers is tainted)."""
    values: dict[str, Any] = json.loads(json.dumps(dict(base)))
    for path, key in image_paths.items():
        if key not in images:
            raise HelmError(f"image {key!r} (operators.yaml) is not in the image table")
        image = images[key]
        # A digest goes after the tag: charts template "<repository>:<tag>".
        tag = f"{image.tag}@{image.digest}" if image.digest else image.tag
        _set_path(values, path, {"repository": image.repository, "tag": tag,
                                 "pullPolicy": "IfNotPresent"})
    if node is None:
        return values
    if placement.get("nodeSelector"):
        _set_path(values, placement["nodeSelector"],
                  {"kubernetes.io/hostname": node["metadata"]["name"]})
    taints = [t for t in node.get("spec", {}).get("taints") or []
              if t.get("effect") in ("NoSchedule", "NoExecute")]
    if taints and placement.get("tolerations"):
        _set_path(values, placement["tolerations"], [
            {"key": t["key"], "operator": "Equal", "value": t.get("value", ""),
             "effect": t["effect"]} if t.get("value") else
            {"key": t["key"], "operator": "Exists", "effect": t["effect"]} for t in taints])
    return values


def release_name(operator: str) -> str:
    return f"{RELEASE_PREFIX}{operator}"


def install(tool: HelmTool, operator: str, chart: Mapping[str, str], namespace: str,
            values: Mapping[str, Any], run_id: str, timeout_s: float) -> str:
    """``helm upgrade --install`` and wait; returns the chart's description for evidence."""
    args, described = chart_args(chart, tool.charts)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        json.dump(values, file)
        file.flush()
        cmd = [*tool.base_args(), "upgrade", "--install", release_name(operator), *args,
               "--namespace", namespace, "--values", file.name,
               "--labels", f"{RUN_LABEL}={run_id}", "--wait", "--timeout", f"{int(timeout_s)}s"]
        proc = _run(cmd, timeout_s + 60)
    if proc.returncode != 0:
        raise HelmError(f"helm install of {described} failed: {_last_line(proc)}")
    return described


def uninstall(tool: HelmTool, operator: str, namespace: str, timeout_s: float) -> None:
    """``helm uninstall`` of this suite's release of ``operator`` (absent: nothing to do)."""
    cmd = [*tool.base_args(), "uninstall", release_name(operator), "--namespace", namespace,
           "--ignore-not-found", "--wait", "--timeout", f"{int(timeout_s)}s"]
    proc = _run(cmd, timeout_s + 60)
    if proc.returncode != 0:
        raise HelmError(f"helm uninstall of {release_name(operator)} in {namespace} failed: "
                        f"{_last_line(proc)}")


def labelled_releases(tool: HelmTool, run_id: str | None = None) -> list[tuple[str, str]]:
    """(name, namespace) of every release this suite labelled (of one run, when given)."""
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    cmd = [*tool.base_args(), "list", "--all-namespaces", "--all", "--selector", selector,
           "--output", "json"]
    proc = _run(cmd, 120)
    if proc.returncode != 0:
        raise HelmError(f"helm list failed: {_last_line(proc)}")
    try:
        rows = json.loads(proc.stdout or "[]")
    except ValueError:
        raise HelmError(f"helm list printed no JSON: {proc.stdout[:200]!r}") from None
    return sorted((r["name"], r["namespace"]) for r in rows
                  if str(r.get("name", "")).startswith(RELEASE_PREFIX))


def uninstall_release(tool: HelmTool, name: str, namespace: str, timeout_s: float) -> None:
    """Uninstall one release found by ``labelled_releases`` (a killed run's)."""
    uninstall(tool, name.removeprefix(RELEASE_PREFIX), namespace, timeout_s)


def _run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise HelmError(f"helm did not finish in {timeout_s:.0f} s: {' '.join(cmd[1:4])}") \
            from None
    except OSError as exc:
        raise HelmError(f"cannot run helm ({cmd[0]}): {exc}") from None


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {proc.returncode}"
