"""The fixtures checks use: cluster access, run context, namespaces, evidence, timeouts."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import pytest
import yaml

from pytest_aiconformance.cluster.client import ApiError, ClusterError, Kube, TransientError
from pytest_aiconformance.cluster.discovery import ClusterInfo
from pytest_aiconformance.cluster.helm import HelmError, HelmTool, find_helm
from pytest_aiconformance.cluster.operators import OperatorManager
from pytest_aiconformance.cluster.run_objects import RunContext
from pytest_aiconformance.cluster.simulation import (
    node_is_simulated,
    require_real_cluster,
    simulated_nodes,
)
from pytest_aiconformance.cluster.tables import POD_WIDE, events_table, get_table
from pytest_aiconformance.run import check_records
from pytest_aiconformance.run.conformance_run import STASH_KEY
from pytest_aiconformance.run.settings import Settings
from pytest_aiconformance.run.state import RunState
from pytest_aiconformance.verdicts.evidence import EvidenceRecorder

T = TypeVar("T")


@pytest.fixture(scope="session")
def aic_state(request: pytest.FixtureRequest) -> RunState:
    """The run's state (settings, discovery, version, run id)."""
    run = request.config.stash.get(STASH_KEY, None)
    if run is None or run.state.kube is None:
        raise pytest.UsageError("aiconformance: no cluster connection for this session")
    return run.state


def _connected(value: T | None) -> T:
    """A value the session sets when it connects (fixtures run only after that)."""
    assert value is not None, "the session is not connected to a cluster"
    return value


@pytest.fixture(scope="session")
def aic_settings(aic_state: RunState) -> Settings:
    return aic_state.settings


@pytest.fixture(scope="session")
def kube(aic_state: RunState) -> Kube:
    """The API client for the cluster under test (explicit kubeconfig and context)."""
    return _connected(aic_state.kube)


@pytest.fixture(scope="session")
def cluster_info(aic_state: RunState) -> ClusterInfo:
    return _connected(aic_state.info)


@pytest.fixture(scope="session")
def checklist_version(aic_state: RunState) -> str:
    return _connected(aic_state.version)


@pytest.fixture(scope="session")
def run_context(aic_state: RunState) -> RunContext:
    """Creates labelled objects and removes them at the end of the session."""
    return _connected(aic_state.context)


@pytest.fixture(scope="session")
def timeout(aic_settings: Settings) -> Callable[[float], float]:
    """Scale a nominal wait by --aic-timeout-scale."""
    return aic_settings.timeout


def _end_run(message: str) -> NoReturn:
    """An install the user asked for cannot happen: end the run (teardown still runs)."""
    pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def operators(aic_state: RunState, kube: Kube) -> Iterator[OperatorManager]:
    """Detect operators (or install missing ones with --aic-install); uninstall only ours."""
    settings = aic_state.settings
    tool = None
    if settings.install:
        try:
            if settings.lab and settings.helm is None:
                raise HelmError("--aic-install on the lab needs its real node (the operators' "
                                "pods run there), and this lab has none")
            target = settings.target
            tool = HelmTool(find_helm(settings.helm), settings.charts,
                            str(target.kubeconfig or ""), target.context)
        except HelmError as exc:
            raise pytest.UsageError(str(exc)) from None
    manager = OperatorManager(kube, aic_state.run_id, helm=tool, images=settings.images,
                              is_simulated=node_is_simulated, fatal=_end_run,
                              timeout_s=settings.timeout(600))
    yield manager
    def say(line: str) -> None:
        sys.stderr.write(f"[aic] {line}\n")

    for problem in manager.uninstall(say):
        sys.stderr.write(f"[aic] operator uninstall: {problem}\n")


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> EvidenceRecorder:
    """The current check's evidence recorder."""
    return check_records.evidence_for(request.node)


def collect_diagnostics(kube: Kube, namespace: str, recorder: EvidenceRecorder) -> None:
    """Events, object YAML and pod logs (previous containers too), taken before teardown."""
    try:
        events = kube.items("v1", "Event", namespace)
        recorder.diagnostic("events", events_table(events),
                            f"kubectl get events -n {namespace}")
        pods = kube.items("v1", "Pod", namespace)
        recorder.diagnostic("pods", get_table(pods, POD_WIDE),
                            f"kubectl get pods -n {namespace} -o wide")
        for pod in pods[:10]:
            name = pod["metadata"]["name"]
            status = {k: v for k, v in pod.get("status", {}).items()
                      if k in ("phase", "conditions", "containerStatuses", "reason", "message")}
            recorder.diagnostic(f"pod {name} status", yaml.safe_dump(status, sort_keys=False),
                                f"kubectl get pod {name} -n {namespace} -o yaml")
            for container in pod.get("spec", {}).get("containers", []):
                cname = container["name"]
                for previous in (False, True):
                    try:
                        text = kube.logs(namespace, name, cname, previous=previous, tail=100)
                    except (ApiError, ClusterError):
                        continue
                    flag = " --previous" if previous else ""
                    recorder.diagnostic(f"logs {name}/{cname}{flag}", text,
                                        f"kubectl logs {name} -c {cname} -n {namespace}{flag}")
    except (ApiError, TransientError, ClusterError) as exc:
        recorder.diagnostic("diagnostics incomplete", str(exc))


@pytest.fixture
def namespace(request: pytest.FixtureRequest, run_context: RunContext, aic_settings: Settings,
              evidence: EvidenceRecorder) -> Iterator[str]:
    """A fresh labelled namespace for one check, deleted (and waited for) afterwards."""
    marker = request.node.get_closest_marker("pod_security")
    level = marker.args[0] if marker else "restricted"
    check = request.node.name.split("[", 1)[0].removeprefix("test_")
    name = run_context.namespace(check, pod_security=level, check=check)
    yield name
    failed = check_records.failed_so_far(request.node)
    if failed:
        collect_diagnostics(run_context.kube, name, evidence)
    keep = aic_settings.keep_namespaces
    if keep == "always" or (keep == "on-failure" and failed):
        evidence.note(f"namespace {name} kept for inspection (--aic-keep-namespaces={keep})")
        run_context.forget(name)
        return
    problems = run_context.teardown(only_namespace=name)
    if problems:
        raise AssertionError("teardown: " + "; ".join(problems))


@pytest.fixture(autouse=True)
def _needs_containers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Checks marked needs_containers are not observable where every node is simulated; where
    only some nodes are, their pods are kept off the simulated ones (which run nothing)."""
    if request.node.get_closest_marker(check_records.NEEDS_CONTAINERS) is None:
        yield
        return
    kube = request.getfixturevalue("kube")
    require_real_cluster(kube)
    context: RunContext = request.getfixturevalue("run_context")
    context.keep_off_nodes = simulated_nodes(kube)
    try:
        yield
    finally:
        context.keep_off_nodes = []


