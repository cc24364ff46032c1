"""Session start and cleanup: the lab (if asked), connection, discovery, the accelerator
profile (detected from the cluster unless one was given) and checklist version at the start;
at the end, removing what the run created; and the `--aic-cleanup` command.

Every failure at the start is a usage problem for the user, raised as pytest.UsageError with
one line, so pytest exits non-zero without a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance.cluster.client import ClusterError, connect
from pytest_aiconformance.cluster.discovery import ClusterInfo, discover
from pytest_aiconformance.cluster.helm import (
    HelmError,
    HelmTool,
    find_helm,
    labelled_releases,
    uninstall_release,
)
from pytest_aiconformance.cluster.profiles import NodeEvidence, ProfileDetection, detect_profile
from pytest_aiconformance.cluster.run_objects import RunContext, sweep
from pytest_aiconformance.cluster.workloads import tolerations_for
from pytest_aiconformance.run.settings import LAB_CONTEXT, ClusterTarget, Settings, images_with_lab
from pytest_aiconformance.run.state import RunState
from pytest_aiconformance.verdicts.catalog import UnknownVersionError, load_catalog

Say = Callable[[str], None]
LAB_KEEP_ENV = "AIC_LAB_KEEP"
# Once connected, how long any API call waits out an unreachable server (an apiserver
# restart, an etcd leader change), before the check errors; scaled by --aic-timeout-scale.
OUTAGE_BUDGET_S = 90.0  # leave a lab this session started running at the end


def start(state: RunState, say: Say) -> None:
    """Lab (if asked), connection, discovery and version; once per process."""
    if state.kube is not None:
        return
    check_report_dir(state.settings.report_dir)
    if state.settings.lab and not state.is_worker:
        target = start_lab(state, say)
        state.settings = dataclasses.replace(state.settings, target=target)
    connect_and_discover(state)


def import_lab() -> Any:
    """The lab package, imported only with --aic-lab: it is heavy and a distribution of its
    own (``pytest-aiconformance[lab]``), so a plain install has none."""
    try:
        import aiconformance_lab
    except ImportError as exc:
        raise pytest.UsageError(
            f"--aic-lab needs the lab package ({exc.name} is not installed): "
            "pip install 'pytest-aiconformance[lab]', or ./lab from a checkout") from None
    return aiconformance_lab


def lab_shape_file(raw: str | None) -> Path | None:
    """--aic-lab-shape NAME|FILE as the YAML file to load: a named shape is the lab's file."""
    if not raw:
        return None
    lab_pkg = import_lab()
    try:
        return Path(lab_pkg.shape_file(raw))
    except lab_pkg.LabError as exc:
        raise pytest.UsageError(f"--aic-lab-shape: {exc}") from None


def start_lab(state: RunState, say: Say) -> ClusterTarget:
    """Start the local lab for this session (or reuse a running one); return its target."""
    lab_pkg = import_lab()
    Lab, LabError, LabShape = lab_pkg.Lab, lab_pkg.LabError, lab_pkg.LabShape
    settings = state.settings
    shape_path = lab_shape_file(settings.lab_shape)
    try:
        shape = LabShape.from_yaml(shape_path) if shape_path is not None \
            else conformance_shape(LabShape)
        lab = Lab()
        was_up = lab.status().healthy
        # A lab this session starts dies with it; a SIGKILLed session's lab is replaced.
        info = lab.up(shape, progress=say, owner_pid=None if was_up else os.getpid())
    except LabError as exc:
        raise pytest.UsageError(f"lab: {exc}") from None
    state.lab = lab
    state.lab_started_here = not was_up
    if info.images_file is not None:
        # The real node pulls nothing: its pods run the images the lab built and imported.
        state.settings = dataclasses.replace(settings, images=images_with_lab(info.images_file))
    if info.helm is not None:
        # --aic-install on the lab: its helm, and the charts shipped in the operators' modules
        # (the way an air-gapped site installs), unless the user named others.
        state.settings = dataclasses.replace(
            state.settings, helm=state.settings.helm or info.helm,
            charts=state.settings.charts or (str(info.charts_dir) if info.charts_dir else None))
    return ClusterTarget(Path(info.kubeconfig), LAB_CONTEXT)


def conformance_shape(shape_type: Any) -> Any:
    """The lab the suite runs on by default: what a conformant platform would offer.

    Two GPU nodes, one time-sliced GPU node (for gpu_sharing), one CPU node, the simulated
    DRA driver, metrics-server, the operators the lab can run, KEDA (external metrics) and
    Karpenter (GPU node pool);
    a real node (pods run, simulated GPUs inside them) with Envoy Gateway (the seed's Gateway
    API implementation: controller and Envoy proxies as pods there) and Prometheus, where
    the host allows one (root, overlayfs, runc...; otherwise the lab says why and runs
    without it); besides its two whole GPUs it time-slices a third into replicas advertised
    as nvidia.com/gpu.shared (``shared_gpus``), so gpu_sharing is seen inside its pods; its
    containers get their GPUs from the NVIDIA Container Runtime (handler and RuntimeClass
    nvidia, ``gpu_injection: runtime``), as the GPU Operator sets containerd up, and a DRA
    kubelet plugin prepares its GPUs for ResourceClaims with CDI (``real_node_dra``).
    """
    wanted = {"gpu_nodes": 2, "time_sliced_nodes": 1, "cpu_nodes": 1, "kuberay": True,
              "kueue": True, "trainer": True, "karpenter": True, "real_nodes": 1, "gateway": True,
              "gateway_impl": "envoy-gateway",
              "prometheus": True, "keda": True, "shared_gpus": 1,
              "gpu_injection": "runtime", "real_node_dra": True}
    known = set(getattr(shape_type, "__dataclass_fields__", {}))
    return shape_type(**{k: v for k, v in wanted.items() if k in known})


def check_report_dir(path: Path) -> None:
    """The report dir must be writable before any cluster time is spent."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".aic-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise pytest.UsageError(
            f"--aic-report-dir: cannot write to {path}: {exc.strerror or exc}"
        ) from None


def connect_and_discover(state: RunState) -> None:
    """Connect, discover and resolve the checklist version; UsageError on any problem."""
    target = state.settings.target
    try:
        kube = connect(target.kubeconfig, target.context)
        info = discover(kube)
    except ClusterError as exc:
        raise pytest.UsageError(str(exc)) from None
    kube.outage_budget_s = state.settings.timeout(OUTAGE_BUDGET_S)
    if not state.settings.profile_source:
        # Settings were resolved before connecting: the profile comes from what was found.
        detection = profile_detection(info)
        state.settings = dataclasses.replace(
            state.settings, profile=detection.chosen or state.settings.profile,
            profile_source=detection.source())
    state.kube = kube
    state.info = info
    state.context = RunContext(kube, state.run_id, state.settings.timeout_scale,
                               tolerations=tolerations_for(info.accelerator_taints()))
    if state.version is None:
        try:
            state.version = load_catalog().version_for_server(info.major, info.minor)
        except UnknownVersionError as exc:
            raise pytest.UsageError(f"{exc}; choose one with --aic-version") from None
        state.version_source = f"from server {info.git_version}"


def profile_detection(info: ClusterInfo) -> ProfileDetection:
    """The accelerator profiles the discovered nodes call for (most devices first)."""
    resources = {node.name: node.resources for node in info.accelerator_nodes}
    names = sorted(set(info.node_labels) | set(resources) | set(info.dra_node_devices))
    placed: dict[str, int] = {}
    for per_driver in info.dra_node_devices.values():
        for driver, count in per_driver.items():
            placed[driver] = placed.get(driver, 0) + count
    unplaced = {driver: total - placed.get(driver, 0)
                for driver, total in info.dra_driver_devices.items()}
    return detect_profile(
        (NodeEvidence(name, resources.get(name, {}), info.dra_node_devices.get(name, {}),
                      info.node_labels.get(name, {})) for name in names), unplaced)


def _say_stderr(line: str) -> None:
    sys.stderr.write(f"[aic] {line}\n")


def remove_created(state: RunState, interrupted: bool) -> None:
    """Every process tears down what it created (xdist workers included)."""
    if state.context is None:
        return
    problems = state.context.teardown()
    if interrupted and not state.is_worker:
        # A create interrupted after the server stored the object is not tracked;
        # the run-id label still finds it.
        try:
            sweep(state.context.kube, _say_stderr, run_id=state.run_id)
        except ClusterError as exc:
            problems.append(f"sweep of run {state.run_id}: {exc}")
    for problem in problems:
        sys.stderr.write(f"[aic] teardown: {problem}\n")


def close(state: RunState) -> None:
    """Close the client; stop the lab if this session started it."""
    if state.kube is not None:
        state.kube.close()
    keep_lab = os.environ.get(LAB_KEEP_ENV, "") in ("1", "true", "yes")
    if state.lab is not None and state.lab_started_here and not state.is_worker and not keep_lab:
        state.lab.down()


def run_cleanup(settings: Settings) -> int:
    """--aic-cleanup: sweep every labelled leftover of earlier runs; prints what it deletes."""
    def say(line: str) -> None:
        sys.stdout.write(f"[aic] {line}\n")
        sys.stdout.flush()

    target, helm_cli = settings.target, settings.helm
    if settings.lab:
        lab = import_lab().Lab()
        if not lab.status().healthy:
            say("the lab is not running; nothing to clean")
            return 0
        target = ClusterTarget(lab.kubeconfig, LAB_CONTEXT)
        helm_cli = helm_cli or lab.info().helm
    try:
        count = _uninstall_releases(helm_cli, target, say)
        count += sweep(connect(target.kubeconfig, target.context), say)
    except ClusterError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(pytest.ExitCode.USAGE_ERROR)
    say(f"cleanup done: {count} object(s) deleted")
    return 0


def _uninstall_releases(helm_cli: Path | None, target: ClusterTarget, say: Say) -> int:
    """Uninstall the Helm releases --aic-install made in runs that could not (killed)."""
    try:
        tool = HelmTool(find_helm(helm_cli), None, str(target.kubeconfig or ""), target.context)
    except HelmError:
        say("no helm CLI (PATH or --aic-helm): Helm releases of earlier runs are not looked for")
        return 0
    releases = labelled_releases(tool)
    for name, namespace in releases:
        say(f"uninstalling Helm release {name} in {namespace}")
        uninstall_release(tool, name, namespace, 300)
    return len(releases)
