"""Pods of checks that look inside containers are kept off simulated nodes, one field
requirement per node (a metadata.name requirement takes exactly one value)."""

from __future__ import annotations

from typing import Any

from pytest_aiconformance.cluster.run_objects import RunContext


def _ctx(nodes: list[str]) -> RunContext:
    return RunContext(kube=None, run_id="r1", keep_off_nodes=nodes)  # type: ignore[arg-type]


def _pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


def test_every_simulated_node_is_one_requirement() -> None:
    out = _ctx(["kwok-b", "kwok-a"]).labelled(_pod())
    terms = out["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [
        {"key": "metadata.name", "operator": "NotIn", "values": ["kwok-a"]},
        {"key": "metadata.name", "operator": "NotIn", "values": ["kwok-b"]}]}]


def test_existing_terms_each_gain_the_requirements() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}
    out = _ctx(["kwok-a"]).labelled(_pod(affinity=affinity))
    terms = out["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert [t["matchFields"] for t in terms] == [
        [{"key": "metadata.name", "operator": "NotIn", "values": ["kwok-a"]}]] * 2
    assert [t["matchExpressions"][0]["values"] for t in terms] == [["a"], ["b"]]


def test_pinned_pods_and_no_simulated_nodes_are_left_alone() -> None:
    assert "affinity" not in _ctx(["kwok-a"]).labelled(_pod(nodeName="real-0"))["spec"]
    assert "affinity" not in _ctx([]).labelled(_pod())["spec"]
