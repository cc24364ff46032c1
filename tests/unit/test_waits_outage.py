"""A wait touched by an API server outage grants the cluster time to catch up, and says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_aiconformance.cluster.client import Kube
from pytest_aiconformance.cluster.waits import Target, WaitTimeout, failed_pod, watch_until


def test_allowance_counts_outages_that_touch_the_wait() -> None:
    kube = Kube(configuration=None)  # type: ignore[arg-type]
    assert kube.outage_allowance(100.0, 60.0) == 0.0
    kube.outages.append((10.0, 20.0))  # ended 80 s before the wait began: the cluster caught up
    assert kube.outage_allowance(100.0, 60.0) == 0.0
    kube.outages.append((50.0, 62.0))  # ended 38 s before: informers may still be relisting
    assert kube.outage_allowance(100.0, 60.0) == 72.0
    kube.outages.append((110.0, 115.0))  # during the wait
    assert kube.outage_allowance(100.0, 60.0) == 77.0


class _Cluster:
    """Enough of Kube for watch_until: a pod that turns Ready at a set time."""

    def __init__(self, ready_at: float, allowance: float) -> None:
        self.ready_at = ready_at
        self.allowance = allowance

    def list(self, *_: Any) -> dict[str, Any]:
        phase = "Running" if time.monotonic() >= self.ready_at else "Pending"
        return {"items": [{"metadata": {"name": "p", "namespace": "ns"},
                           "status": {"phase": phase}}], "metadata": {"resourceVersion": "1"}}

    def watch(self, *_: Any, **__: Any) -> Iterator[dict[str, Any]]:
        time.sleep(0.1)  # the server closes a quiet watch; the wait relists
        return iter(())

    def items(self, *_: Any) -> list[dict[str, Any]]:
        return []

    def outage_allowance(self, since: float, recovery_s: float) -> float:
        return self.allowance


def _running(objs: dict[str, Any]) -> bool:
    return objs["ns/p"]["status"]["phase"] == "Running"


def test_late_after_an_outage_is_not_a_timeout() -> None:
    cluster = _Cluster(ready_at=time.monotonic() + 1.5, allowance=2.0)
    got = watch_until(cluster, Target("v1", "Pod", "ns"), _running,  # type: ignore[arg-type]
                      timeout=1, expected="the pod to run")
    assert _running(got)


def test_the_timeout_names_the_time_granted() -> None:
    cluster = _Cluster(ready_at=time.monotonic() + 60, allowance=1.0)
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"^timed out after 1s \(\+1s granted for an API "
                                          r"server outage\) waiting for the pod to run"):
        watch_until(cluster, Target("v1", "Pod", "ns"), _running,  # type: ignore[arg-type]
                    timeout=1, expected="the pod to run")
    assert 2.0 <= time.monotonic() - started < 3.0


def test_without_an_outage_the_deadline_holds() -> None:
    cluster = _Cluster(ready_at=time.monotonic() + 1.5, allowance=0.0)
    with pytest.raises(WaitTimeout, match=r"^timed out after 1s waiting for the pod to run"):
        watch_until(cluster, Target("v1", "Pod", "ns"), _running,  # type: ignore[arg-type]
                    timeout=1, expected="the pod to run")


def test_a_failed_pod_ends_the_wait_with_its_reason() -> None:
    class Rejected(_Cluster):
        def list(self, *_: Any) -> dict[str, Any]:
            return {"items": [{"metadata": {"name": "p", "namespace": "ns"},
                               "status": {"phase": "Failed", "reason": "UnexpectedAdmissionError",
                                          "message": "Allocate failed"}}],
                    "metadata": {"resourceVersion": "1"}}

    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"^gave up waiting for the pod to run \(Pods in ns\): "
                                          r"pod ns/p Failed: UnexpectedAdmissionError "
                                          r"Allocate failed$"):
        watch_until(Rejected(ready_at=0, allowance=0), Target("v1", "Pod", "ns"), _running,
                    timeout=60, expected="the pod to run", give_up=failed_pod)
    assert time.monotonic() - started < 1
    assert failed_pod({"ns/q": {"status": {"phase": "Running"}}}) is None
