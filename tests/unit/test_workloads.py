"""cluster.workloads builders: exact objects, since checks create them as they are."""

from __future__ import annotations

from pytest_aiconformance.cluster import workloads


def test_deployment_wraps_one_replica_of_the_pod_selected_by_app() -> None:
    ctr = workloads.container("c", ["true"], image="busybox")
    pod = workloads.pod("web", "ns", [ctr], restart_policy="Always", labels={"app": "web"},
                        annotations={"a": "1"})
    assert workloads.deployment(pod) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"}},
                              "spec": pod["spec"]}}}


def test_deployment_of_a_pod_without_annotations_has_none() -> None:
    pod = workloads.pod("web", "ns", [], labels={"app": "web"})
    assert workloads.deployment(pod)["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}
