"""workload_sandboxing: a sandbox RuntimeClass isolates pods from the host kernel (a 1.37 SHOULD).

Essential (needs running containers): the RuntimeClasses that claim a sandbox (gVisor or Kata
by their handler, or a known sandbox name) are found; on one node the chosen class admits, a
restricted control pod without it and a restricted pod with it both report `uname -r`,
/proc/version, the PIDs they see and their /dev entries. The sandboxed pod must run on another
kernel than the control pod and see no device node the control pod does not: a class named
like a sandbox whose handler is really runc shares the host's kernel and fails.
No sandbox RuntimeClass -> Not Implemented: the checklist asks every platform to provide a
sandbox mechanism and names no condition, so its absence is no reason for N/A (decided from
the API alone, also where nodes are simulated). A sandbox class whose only nodes are
simulated -> not observable.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.kit import (
    WaitTimeout,
    driver_runtime_management,
    events_table,
    not_observable,
    probes,
    simulation,
    table,
    workload_sandboxing,
    workloads,
)

REQ = "workload_sandboxing"
NODE_API = "node.k8s.io/v1"
HOSTNAME_LABEL = "kubernetes.io/hostname"


def _probe_pod(name: str, namespace: str, image: str, hostname: str | None,
               runtime_class: str | None = None) -> dict[str, Any]:
    ctr = workloads.container("probe", ["sh", "-c", workload_sandboxing.PROBE_SCRIPT], image=image)
    return workloads.pod(name, namespace, [ctr],
                         node_selector={HOSTNAME_LABEL: hostname} if hostname else None,
                         runtime_class=runtime_class)


def _runtime_class_excerpt(rc: dict[str, Any]) -> dict[str, Any]:
    out = {"apiVersion": NODE_API, "kind": "RuntimeClass",
           "metadata": {"name": rc["metadata"]["name"]}, "handler": rc.get("handler")}
    for key in ("overhead", "scheduling"):
        if rc.get(key):
            out[key] = rc[key]
    return out


def _run(kube, run_context, namespace, pod, evidence, timeout_s: float, what: str):
    """Run a probe pod; on a timeout record its events so the failure says why."""
    name = pod["metadata"]["name"]
    try:
        return probes.run_probe(kube, run_context, namespace, pod, timeout=timeout_s)["probe"]
    except WaitTimeout as exc:
        events = kube.items("v1", "Event", namespace, field_selector=f"involvedObject.name={name}")
        evidence.command(f"kubectl get events -n {namespace} --field-selector "
                         f"involvedObject.name={name}", events_table(events))
        raise AssertionError(f"{what} did not run to completion: {exc}") from None


@pytest.mark.requirement(REQ)
def test_sandbox_runs_own_kernel(kube, aic_settings, namespace, run_context, evidence, timeout):
    """A pod with a sandbox RuntimeClass sees another kernel than a pod without it, same node."""
    classes = kube.items(NODE_API, "RuntimeClass") if kube.serves(NODE_API, "RuntimeClass") \
        else []
    evidence.command("kubectl get runtimeclass",
                     table(driver_runtime_management.runtime_class_rows(classes),
                           ["NAME", "HANDLER", "NODESELECTOR"]) if classes else
                     "No resources found")
    candidates = workload_sandboxing.sandbox_classes(classes)
    by_name = {str(c["metadata"]["name"]): c for c in classes}
    if not candidates:
        raise AssertionError(
            "no RuntimeClass offers a sandbox: none has a gVisor (runsc) or Kata handler or a "
            f"known sandbox name (RuntimeClasses: {', '.join(sorted(by_name)) or 'none'})")

    image = aic_settings.image("probe")
    # The probe pods' tolerations (as built, and the run's for tainted accelerator pools)
    # decide, with the class's, which tainted nodes are usable.
    tolerations = [*_probe_pod("sandbox-control", namespace, image, None)["spec"]["tolerations"],
                   *run_context.tolerations]
    nodes = kube.items("v1", "Node")
    real = [n for n in nodes if not simulation.node_is_simulated(n)]
    chosen, node_name = None, ""
    for cand in candidates:
        usable = workload_sandboxing.usable_nodes(real, by_name[cand.name], tolerations)
        if usable:
            chosen, node_name = cand, usable[0]
            break
    if chosen is None:
        if any(workload_sandboxing.usable_nodes(nodes, by_name[c.name], tolerations) for c in candidates):
            not_observable("the only nodes that admit "
                           + ", ".join(c.name for c in candidates)
                           + " are simulated (kwok) and run no containers")
        raise AssertionError(
            "no Ready, schedulable node admits a sandbox RuntimeClass (its nodeSelector, "
            "taints and tolerations): " + "; ".join(c.describe() for c in candidates))
    rc = by_name[chosen.name]
    evidence.yaml(f"RuntimeClass {chosen.name}", _runtime_class_excerpt(rc),
                  f"kubectl get runtimeclass {chosen.name} -o yaml")
    others = [c.name for c in candidates if c.name != chosen.name]
    evidence.note(f"{chosen.describe()} on node {node_name}; both pods restricted, pinned to "
                  "that node" + (f"; other sandbox classes not tried: {', '.join(others)}"
                                 if others else ""))
    hostname = next(n for n in real if n["metadata"]["name"] == node_name)["metadata"].get(
        "labels", {}).get(HOSTNAME_LABEL, node_name)

    control = _run(kube, run_context, namespace,
                   _probe_pod("sandbox-control", namespace, image, hostname),
                   evidence, timeout(180), f"the control pod (no RuntimeClass) on {node_name}")
    evidence.log(f"control pod without a RuntimeClass on {node_name}",
                 kube.logs(namespace, "sandbox-control", "probe"),
                 f"kubectl logs sandbox-control -n {namespace}")
    boxed = _run(kube, run_context, namespace,
                 _probe_pod("sandbox-probe", namespace, image, hostname, chosen.name),
                 evidence, timeout(300), f"the pod with {chosen.describe()} on {node_name}")
    evidence.log(f"pod with runtimeClassName {chosen.name} on {node_name}",
                 kube.logs(namespace, "sandbox-probe", "probe"),
                 f"kubectl logs sandbox-probe -n {namespace}")

    placed = {p: kube.get("v1", "Pod", p, namespace)["spec"].get("nodeName")
              for p in ("sandbox-control", "sandbox-probe")}
    assert len(set(placed.values())) == 1, f"the two pods ran on different nodes: {placed}"
    decision = workload_sandboxing.judge(control, boxed, chosen.name)
    evidence.note(decision.reason)
    assert decision.isolated, decision.reason
