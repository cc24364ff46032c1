"""Fixtures for the lab tests: real labs (control plane + kwok nodes), started once per session.

``AIC_LAB_STATE_DIR`` points the main lab at an existing state directory: a running lab of the
default shape there is reused and left running; otherwise the lab is started in a temporary
directory and stopped at the end.  Negative labs (a capability removed) always get their own
temporary state directory and ports, so they can run next to the main one.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiconformance_lab import Lab, LabInfo, LabShape
from kubernetes import client, config

# The order the lab test files run in: kwok-only labs first, then the operators, the real
# node, Coscheduling, and the check that every module is a cache hit last.  It follows the
# order ``scripts/dev.sh test`` builds the lab's modules in the background (build.MODULES),
# so on a cold cache the first tests run while later modules still compile.  Files not
# listed run before the last one.
RUN_ORDER = (
    "test_lifecycle.py", "test_capabilities.py", "test_operators.py",
    "test_robust_controller_on_lab.py", "test_shapes.py", "test_suite_on_lab.py",
    "test_autoscaling.py", "test_helm_install.py", "test_real_node.py", "test_coscheduling.py",
    "test_shape_and_build.py",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs a running lab (Go toolchain; builds it)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the lab files in RUN_ORDER (a stable sort: the tests of a file keep their order;
    items from outside tests/lab stay where they were)."""
    here = Path(__file__).parent
    last = len(RUN_ORDER) - 1

    def rank(item: pytest.Item) -> int:
        path = Path(item.path)
        if path.parent != here:
            return -1
        return RUN_ORDER.index(path.name) if path.name in RUN_ORDER else last - 1

    items.sort(key=rank)


def _progress(message: str) -> None:
    sys.stderr.write(f"[lab] {message}\n")


def start_lab(state_dir: Path, shape: LabShape) -> tuple[Lab, LabInfo]:
    lab = Lab(state_dir)
    # owner_pid: if this session is killed, the next up treats the lab as leftovers.
    return lab, lab.up(shape, _progress, owner_pid=os.getpid())


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    """The main lab, default shape: 2 GPU nodes x 1 GPU, 1 CPU node, DRA, metrics-server."""
    shared = os.environ.get("AIC_LAB_STATE_DIR")
    if shared:
        lab_obj = Lab(Path(shared))
        was_running = lab_obj.status().healthy
        info = lab_obj.up(LabShape(), _progress)
        yield info
        if not was_running:
            lab_obj.down(_progress)
        return
    lab_obj, info = start_lab(tmp_path_factory.mktemp("lab-main"), LabShape())
    yield info
    lab_obj.down(_progress)


def api_client(info: LabInfo) -> client.ApiClient:
    """A client for exactly this lab (never the global default kubeconfig)."""
    return config.new_client_from_config(config_file=str(info.kubeconfig), context=info.context)


@pytest.fixture(scope="session")
def api(lab: LabInfo) -> Iterator[client.ApiClient]:
    with api_client(lab) as c:
        yield c


def make_namespace(api: client.ApiClient) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


def drop_namespace(api: client.ApiClient, name: str) -> None:
    """Delete the namespace's workloads and wait until their pods are gone (GPUs freed)."""
    from labchecks import wait_for

    core = client.CoreV1Api(api)
    client.AppsV1Api(api).delete_collection_namespaced_deployment(name)
    client.AutoscalingV2Api(api).delete_collection_namespaced_horizontal_pod_autoscaler(name)
    core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
    gone = wait_for(core.list_namespaced_pod, lambda pods: not pods, timeout=30, namespace=name)
    if not gone:
        raise AssertionError(f"pods of namespace {name} not deleted within 30 s")
    core.delete_namespace(name)


@pytest.fixture
def ns(api: client.ApiClient) -> Iterator[str]:
    name = make_namespace(api)
    yield name
    drop_namespace(api, name)
