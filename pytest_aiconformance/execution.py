"""Run a command in a container (kubectl exec) through the session's explicit client."""

from __future__ import annotations

from kubernetes import client as k8s_client
from kubernetes.stream import stream

from pytest_aiconformance.cluster import ClusterError, Kube


def pod_exec(kube: Kube, namespace: str, pod: str, command: list[str],
             container: str | None = None, timeout: float = 60.0) -> str:
    """stdout+stderr of the command; raises ClusterError when exec is refused."""
    core = k8s_client.CoreV1Api(kube.api)
    try:
        output = stream(
            core.connect_get_namespaced_pod_exec, pod, namespace, command=command,
            container=container, stderr=True, stdin=False, stdout=True, tty=False,
            _request_timeout=timeout,
        )
    except Exception as exc:  # the stream layer raises several unrelated types
        raise ClusterError(f"exec in {namespace}/{pod}: {str(exc).splitlines()[0]}") from None
    return str(output)
