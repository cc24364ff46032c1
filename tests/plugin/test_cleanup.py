"""--aic-cleanup deletes only objects carrying our managed-by label, then exits."""

from __future__ import annotations

import pytest
from fakeapi import FakeApiServer

from conftest import base_args

OURS = {"app.kubernetes.io/managed-by": "pytest-aiconformance", "aiconformance.io/run-id": "abc123"}


def ns(name: str, labels: dict[str, str]) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def test_cleanup_deletes_only_labelled(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    cluster = fake.cluster
    cluster.add("namespaces", ns("aic-gang-abc123-1", OURS))
    cluster.add("namespaces", ns("aic-dra-abc123-2", OURS))
    cluster.add("namespaces", ns("kube-system", {}))
    cluster.add("namespaces", ns("team-a", {"app.kubernetes.io/managed-by": "helm"}))
    cluster.add("namespaces", ns("aic-lookalike", {"aiconformance.io/run-id": "abc123"}))
    cluster.add("clusterroles", {"metadata": {"name": "aic-reader", "labels": OURS}})
    cluster.add("clusterroles", {"metadata": {"name": "admin", "labels": {}}})
    # A cluster-scoped kind no check creates today: the sweep finds it through discovery.
    cluster.add("runtimeclasses", {"metadata": {"name": "aic-sandbox", "labels": OURS}})
    cluster.add("runtimeclasses", {"metadata": {"name": "nvidia", "labels": {}}})
    aic.makepyfile("def test_never_runs():\n    raise AssertionError\n")
    result = aic.runpytest(*base_args(aic, "--aic-cleanup"))
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert sorted(cluster.deletes) == [
        "/api/v1/namespaces/aic-dra-abc123-2",
        "/api/v1/namespaces/aic-gang-abc123-1",
        "/apis/node.k8s.io/v1/runtimeclasses/aic-sandbox",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/aic-reader",
    ]
    result.stdout.fnmatch_lines([
        "[[]aic] deleting namespace aic-gang-abc123-1 (run abc123)",
        "[[]aic] cleanup done: 4 object(s) deleted",
    ])
    assert set(cluster.objects["namespaces"]) == {"kube-system", "team-a", "aic-lookalike"}
    assert "test_never_runs" not in result.stdout.str()
    assert not (aic.path / "report").exists()


def test_cleanup_nothing_left(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    fake.cluster.add("namespaces", ns("default", {}))
    result = aic.runpytest(*base_args(aic, "--aic-cleanup"))
    assert result.ret == 0
    assert fake.cluster.deletes == []
    result.stdout.fnmatch_lines(["[[]aic] cleanup done: 0 object(s) deleted"])


def test_cleanup_unreachable_is_one_line(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    fake.cluster.deny_all = 401
    result = aic.runpytest(*base_args(aic, "--aic-cleanup"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stdout.lines + result.stderr.lines
              if line.startswith("ERROR")]
    assert len(errors) == 1, errors
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
