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

from collections.abc import Callable
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
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


def _probe_pod(name: str, namespace: str, image: str, hostname: str | None,
               runtime_class: str | None = None) -> dict[str, Any]:
    """A restricted pod printing what it sees of its kernel, optionally pinned and sandboxed."""
    ctr = workloads.container("probe", ["sh", "-c", workload_sandboxing.PROBE_SCRIPT], image=image)
    return workloads.pod(name, namespace, [ctr],
                         node_selector={workload_sandboxing.HOSTNAME_LABEL: hostname}
                         if hostname else None,
                         runtime_class=runtime_class)


def _run(kube: Kube, run_context: RunContext, namespace: str, pod: dict[str, Any],
         evidence: EvidenceRecorder, timeout_s: float, what: str) -> dict[str, list[str]]:
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
def test_sandbox_runs_own_kernel(kube: Kube, aic_settings: Settings, namespace: str,
                                 run_context: RunContext, evidence: EvidenceRecorder,
                                 timeout: Callable[[float], float]) -> None:
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
        raise AssertionError(workload_sandboxing.no_sandbox_class(by_name))

    image = aic_settings.image("probe")
    # The probe pods' tolerations (as built, and the run's for tainted accelerator pools)
    # decide, with the class's, which tainted nodes are usable.
    tolerations = [*_probe_pod("sandbox-control", namespace, image, None)["spec"]["tolerations"],
                   *run_context.tolerations]
    nodes = kube.items("v1", "Node")
    real = [n for n in nodes if not simulation.node_is_simulated(n)]
    found = workload_sandboxing.first_usable(candidates, by_name, real, tolerations)
    if found is None:
        if workload_sandboxing.first_usable(candidates, by_name, nodes, tolerations):
            not_observable("the only nodes that admit "
                           + ", ".join(c.name for c in candidates)
                           + " are simulated (kwok) and run no containers")
        raise AssertionError(workload_sandboxing.no_usable_node(candidates))
    chosen, node_name = found
    rc = by_name[chosen.name]
    evidence.yaml(f"RuntimeClass {chosen.name}", workload_sandboxing.runtime_class_excerpt(rc),
                  f"kubectl get runtimeclass {chosen.name} -o yaml")
    others = [c.name for c in candidates if c.name != chosen.name]
    evidence.note(f"{chosen.describe()} on node {node_name}; both pods restricted, pinned to "
                  "that node" + (f"; other sandbox classes not tried: {', '.join(others)}"
                                 if others else ""))
    hostname = workload_sandboxing.hostname(real, node_name)

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
