"""Filling a fresh lab with its objects and waiting until it is usable.

The simulated nodes, the DRA driver's objects and the metrics APIService are applied once the
API server serves; operators' CRDs must be Established before the operators start; ``up``
returns only once the nodes are Ready, the default ServiceAccount exists and the metrics API is
Available, and, in a ``busy`` lab, once the pods holding every GPU are Running.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import objects, pki
from .build import Progress
from .kapi import KubeAPI, Obj, condition_true
from .shape import LabShape

READY_TIMEOUT_S = 60.0
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
# The annotation of the nodes kwok manages (the lab's and those Karpenter's kwok provider makes).
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


def apply_cluster_objects(
    api: KubeAPI, shape: LabShape, ports: dict[str, int], paths: pki.PKIPaths
) -> None:
    """Create the simulated nodes, the DRA driver's objects and the metrics APIService."""
    docs: list[Obj] = [*objects.nodes(shape), *objects.dra_objects(shape)]
    if shape.metrics_server:
        docs += objects.metrics_server_objects(ports["metrics-server"], paths.ca_cert.read_bytes())
    for doc in docs:
        api.apply(doc)


def without_descriptions(schema: Any) -> Any:
    """``schema`` without its ``description`` texts (a property *named* description, whose
    value is a schema, stays).

    The lab installs its operators' CRDs this way, as the Prometheus Operator's
    stripped-down CRDs and ``controller-gen crd:maxDescLen=0`` do: validation, defaults and
    printer columns are unchanged, only ``kubectl explain`` loses its prose.  The texts are
    60 % of the 6.4 MB of CRDs a conformant lab creates, and the API server's CRD pipeline
    (validated, converted and encoded on every status change, one CRD at a time) is the
    longest part of a start.
    """
    if isinstance(schema, dict):
        return {k: without_descriptions(v) for k, v in schema.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(schema, list):
        return [without_descriptions(v) for v in schema]
    return schema


def apply_crds_and_objects(api: KubeAPI, crds: list[Obj], docs: list[Obj]) -> None:
    """Apply ``crds`` (without descriptions) in parallel, then ``docs`` in order (a
    namespace before its contents)."""
    with ThreadPoolExecutor(min(8, len(crds))) as pool:
        list(pool.map(api.apply, [without_descriptions(c) for c in crds]))
    for doc in docs:
        api.apply(doc)


def wait_established(api: KubeAPI, names: set[str]) -> None:
    """Wait until every CRD named is Established (controller-runtime exits otherwise)."""

    def established(items: list[Obj]) -> bool:
        done = {i["metadata"]["name"] for i in items if condition_true(i, "Established")}
        return names <= done

    api.wait_list(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        established,
        timeout=READY_TIMEOUT_S,
        what=f"CRDs {', '.join(sorted(names))} Established",
    )


def wait_ready(api: KubeAPI, shape: LabShape, progress: Progress) -> None:
    """Wait until the lab is usable: nodes Ready, default ServiceAccount, metrics API."""
    t0 = time.monotonic()
    expected = {n for group in objects.node_names(shape).values() for n in group}

    def nodes_ready(items: list[Obj]) -> bool:
        # Ready, and the node lifecycle controller has lifted its not-ready taint: until then
        # the scheduler refuses every pod that does not tolerate it.
        ready = {i["metadata"]["name"] for i in items if condition_true(i, "Ready")
                 and not any(t.get("key") == NOT_READY_TAINT
                             for t in (i.get("spec") or {}).get("taints") or [])}
        return expected <= ready

    api.wait_list("/api/v1/nodes", nodes_ready, timeout=READY_TIMEOUT_S,
                  what="nodes Ready and schedulable")
    # Pods are rejected until the ServiceAccount controller made the default account.
    api.wait_list(
        "/api/v1/namespaces/default/serviceaccounts",
        lambda items: any(i["metadata"]["name"] == "default" for i in items),
        timeout=READY_TIMEOUT_S,
        what="the default ServiceAccount",
    )
    if shape.metrics_server:
        api.wait_list(
            "/apis/apiregistration.k8s.io/v1/apiservices?fieldSelector="
            "metadata.name%3Dv1beta1.metrics.k8s.io",
            lambda items: any(condition_true(i, "Available") for i in items),
            timeout=READY_TIMEOUT_S,
            what="APIService v1beta1.metrics.k8s.io Available",
        )
    progress(f"nodes, service accounts and APIs ready in {time.monotonic() - t0:.1f} s")


def occupy_gpus(api: KubeAPI, shape: LabShape, progress: Progress) -> None:
    """Busy lab: pods pinned to each GPU node take all its GPUs and DRA devices.

    They go through the scheduler (it allocates their claims), so the cluster ends up exactly
    like one whose tenants hold every accelerator.
    """
    docs = objects.busy_objects(shape)
    if not docs:
        return
    t0 = time.monotonic()
    namespace = objects.BUSY_NAMESPACE
    api.apply(objects.busy_namespace())
    # Pods are rejected until the ServiceAccount controller made the namespace's account.
    api.wait_list(
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        lambda items: any(i["metadata"]["name"] == "default" for i in items),
        timeout=READY_TIMEOUT_S,
        what=f"the default ServiceAccount of {namespace}",
    )
    for doc in docs:
        api.apply(doc)
    pods = {d["metadata"]["name"] for d in docs if d["kind"] == "Pod"}

    def running(items: list[Obj]) -> bool:
        up = {i["metadata"]["name"] for i in items
              if (i.get("status") or {}).get("phase") == "Running"}
        return pods <= up

    api.wait_list(f"/api/v1/namespaces/{namespace}/pods", running, timeout=READY_TIMEOUT_S,
                  what=f"pods holding every GPU Running in {namespace}")
    progress(f"{len(pods)} pods hold every GPU ({namespace}) after {time.monotonic() - t0:.1f} s")


def release_node_leases(api: KubeAPI, shape: LabShape) -> None:
    """Delete the simulated nodes' leases so a restarted kwok takes its nodes at once.

    kwok only manages a node while it holds the node's lease; the stopped instance's
    leases would otherwise block the new one until they expire.  Besides the shape's nodes,
    every node annotated for kwok (those Karpenter launched) is released.
    """
    names = {node for group in objects.node_names(shape).values() for node in group}
    listing = api.get("/api/v1/nodes") or {}
    names |= {item["metadata"]["name"] for item in listing.get("items", [])
              if (item["metadata"].get("annotations") or {}).get(KWOK_ANNOTATION) == "fake"}
    for node in sorted(names):
        api.request(
            "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}"
        )
