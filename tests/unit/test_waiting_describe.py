"""What a wait reports about the objects it watched: a pod's phase and, once bound, its node."""

from __future__ import annotations

from pytest_aiconformance.cluster.waits import _default_describe


def test_a_bound_pod_names_its_node_and_others_their_phase() -> None:
    items = {
        "ns/gang-big-a": {"metadata": {"name": "gang-big-a"}, "status": {"phase": "Pending"},
                          "spec": {"containers": [{"name": "c"}]}},
        "ns/gang-big-b": {"metadata": {"name": "gang-big-b"}, "status": {"phase": "Pending"},
                          "spec": {"containers": [{"name": "c"}], "nodeName": "aic-gpu-0"}},
        "ns/job": {"kind": "Job", "metadata": {"name": "job"},
                   "status": {"conditions": [{"type": "Complete", "status": "True"}]},
                   "spec": {"template": {"spec": {"nodeName": "x"}}}},
    }
    assert _default_describe(items) == (
        "ns/gang-big-a: Pending; ns/gang-big-b: Pending on aic-gpu-0; ns/job: Complete=True")


def test_nothing_seen() -> None:
    assert _default_describe({}) == "no object"
