"""secure_accelerator_access: a container sees exactly the accelerators allocated to it.

Scheduler half (decided by the control plane, provable on the lab): N+1 one-accelerator pods
on a node with N free accelerators leave exactly one Pending, refused by the scheduler with
`Insufficient <resource>` (device plugin) or `cannot allocate all claims` (DRA); on a cluster
whose every accelerator is already allocated this half is not observable.
Probe half (needs running containers): a pod with one device counts exactly one numbered
device node; a pod without a request on the same node counts zero; a second container in a
pod holding a claim counts zero; two one-device pods see different device UUIDs; a pod with
the "all devices" variable but no request gets nothing, under the vendor RuntimeClass where
it exists and under the default runtime otherwise (the vendor hook may be the default). Probes
that run the vendor tool use the profile's tool image (accelerators.yaml `tool.image`): the
runtime injects a glibc nvidia-smi that cannot start in the musl busybox probe image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    ClusterInfo,
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    Target,
    allocations,
    condition_true,
    events_table,
    get_table,
    not_applicable,
    not_observable,
    probes,
    secure_accelerator_access,
    simulation,
    wait_for_event,
    watch_until,
    workloads,
)

REQ = "secure_accelerator_access"
HOLD_S = 10  # how long each UUID probe keeps its device, so the two are seen to overlap


@pytest.fixture
def probe_image(aic_settings: Settings) -> str:
    """The busybox probe image: what the capacity pods run."""
    return aic_settings.image("probe")


@pytest.fixture
def count_probe(aic_settings: Settings,
                allocation: allocations.Allocation) -> tuple[list[str], str]:
    """The counting probe's scripts and the image they run in: the vendor tool's image when
    they list UUIDs too (an injected glibc tool cannot start in the busybox probe image)."""
    scripts = probes.count_scripts(allocation.profile)
    return scripts, aic_settings.image(probes.probe_image_key(allocation.profile, scripts))


@pytest.fixture
def allocation(kube: Kube, cluster_info: ClusterInfo,
               aic_settings: Settings) -> allocations.Allocation:
    """How this run asks for one accelerator (device plugin or DRA)."""
    return allocations.choose_allocation(cluster_info, aic_settings.profile,
                                         aic_settings.allocation_mode)


@pytest.mark.requirement(REQ)
def test_capacity_enforced(kube: Kube, cluster_info: ClusterInfo,
                           allocation: allocations.Allocation, namespace: str,
                           run_context: RunContext, evidence: EvidenceRecorder,
                           timeout: Callable[[float], float], probe_image: str) -> None:
    """N+1 one-accelerator pods on N free accelerators leave exactly one Pending."""
    alloc = allocation
    per_node = allocations.allocatable_per_node(kube, cluster_info, alloc)
    free = allocations.free_accelerators(kube, cluster_info, alloc)
    allocations.require_free_accelerator(
        free, per_node, alloc, "no node has one free to fill and overfill")
    node, n_free = secure_accelerator_access.fill_node(free)
    if alloc.mode == "device-plugin":
        evidence.command(
            f"kubectl get node {node} -o jsonpath='{{.status.allocatable.{alloc.resource}}}'",
            str(per_node[node]),
        )
    source = "in its ResourceSlices" if alloc.mode == "dra" else "allocatable"
    evidence.note(f"{alloc.unit} on {node}: {per_node[node]} {source}, {n_free} free; "
                  f"creating {n_free + 1} pods that each request one ({alloc.describe()}), "
                  "pinned to that node")
    for obj in allocations.claim_objects(alloc, namespace):
        run_context.create(obj)
    for i in range(n_free + 1):
        run_context.create(allocations.accelerator_pod(
            f"gpu-{i}", namespace, alloc,
            workloads.container("ctr", ["sleep", "3600"], image=probe_image),
            node_selector={"kubernetes.io/hostname": node}, restart_policy="Always",
        ))

    def settled(objs: dict[str, dict[str, Any]]) -> bool:
        return secure_accelerator_access.capacity_settled(objs.values(), n_free, alloc.refusal)

    pods = watch_until(kube, Target("v1", "Pod", namespace), settled, timeout=timeout(90),
                       expected=f"{n_free} pods bound and 1 unschedulable for "
                                f"'{alloc.refusal}'")
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(sorted(pods.values(), key=lambda o: o["metadata"]["name"]),
                               POD_WIDE))
    pending = [o for o in pods.values() if not o["spec"].get("nodeName")]
    assert len(pending) == 1
    assert all(o["spec"]["nodeName"] == node for o in pods.values() if o["spec"].get("nodeName"))
    pending_name = pending[0]["metadata"]["name"]
    wait_for_event(kube, namespace, "FailedScheduling", involved=pending_name,
                   contains=alloc.refusal, timeout=timeout(30))
    events = kube.items("v1", "Event", namespace,
                        field_selector=f"involvedObject.name={pending_name}")
    evidence.command(f"kubectl get events -n {namespace} --field-selector "
                     f"involvedObject.name={pending_name}", events_table(events))
    assert not condition_true(pending[0], "PodScheduled")


def _probe_setup(kube: Kube, run_context: RunContext, namespace: str,
                 alloc: allocations.Allocation) -> None:
    """The probe scripts' ConfigMap and, for DRA, the one-device claim template."""
    run_context.create(probes.probe_configmap(namespace))
    if alloc.mode == "dra":
        run_context.create(workloads.claim_template("one-device", namespace, alloc.device_class))


def _accelerator_node_names(kube: Kube, cluster_info: ClusterInfo) -> list[str]:
    """Accelerator nodes, those that run containers first (a probe is pinned to the first)."""
    return simulation.running_first(kube, [n.name for n in cluster_info.accelerator_nodes])


@pytest.mark.needs_containers
@pytest.mark.gpu
@pytest.mark.requirement(REQ, junit="PositiveAccessTest")
def test_positive_access(kube: Kube, cluster_info: ClusterInfo,
                         allocation: allocations.Allocation, namespace: str,
                         run_context: RunContext, evidence: EvidenceRecorder,
                         timeout: Callable[[float], float],
                         count_probe: tuple[list[str], str]) -> None:
    """A pod that requests one accelerator sees exactly one device."""
    simulation.require_running_containers(kube, _accelerator_node_names(kube, cluster_info))
    _probe_setup(kube, run_context, namespace, allocation)
    profile = allocation.profile
    scripts, image = count_probe
    pod = probes.probe_pod("pos-pod", namespace, [probes.probe_container(
        "prober", scripts, profile, alloc=allocation, image=image)],
        alloc=allocation, claim_template="one-device")
    out = probes.run_probe(kube, run_context, namespace, pod, timeout=timeout(300))
    evidence.log("probe output (one device requested: " + allocation.describe() + ")",
                 kube.logs(namespace, "pos-pod", "prober"), f"kubectl logs pos-pod -n {namespace}")
    count = probes.device_count(out["prober"], profile)
    assert count == 1, f"a pod with one {allocation.describe()} sees {count} devices, not 1"


@pytest.mark.needs_containers
@pytest.mark.gpu
@pytest.mark.requirement(REQ, junit="NegativeIsolationTest")
def test_negative_isolation(kube: Kube, cluster_info: ClusterInfo,
                            allocation: allocations.Allocation, namespace: str,
                            run_context: RunContext, evidence: EvidenceRecorder,
                            timeout: Callable[[float], float],
                            count_probe: tuple[list[str], str]) -> None:
    """A pod without a request, pinned to an accelerator node, sees no device."""
    nodes = _accelerator_node_names(kube, cluster_info)
    simulation.require_running_containers(kube, nodes)
    _probe_setup(kube, run_context, namespace, allocation)
    profile = allocation.profile
    scripts, image = count_probe
    pod = probes.probe_pod("neg-pod", namespace, [probes.probe_container(
        "prober", scripts, profile, image=image)], node_name=nodes[0])
    out = probes.run_probe(kube, run_context, namespace, pod, timeout=timeout(300))
    evidence.log(f"probe output (no request, pinned to accelerator node {nodes[0]})",
                 kube.logs(namespace, "neg-pod", "prober"), f"kubectl logs neg-pod -n {namespace}")
    count = probes.device_count(out["prober"], profile)
    assert count == 0, f"a pod without any request sees {count} accelerator devices"


@pytest.mark.needs_containers
@pytest.mark.gpu
@pytest.mark.requirement(REQ, junit="MultiContainerIsolationTest")
def test_multi_container_isolation(kube: Kube, cluster_info: ClusterInfo,
                                   allocation: allocations.Allocation, namespace: str,
                                   run_context: RunContext, evidence: EvidenceRecorder,
                                   timeout: Callable[[float], float],
                                   count_probe: tuple[list[str], str]) -> None:
    """In a pod holding one device, a second container without it sees none."""
    simulation.require_running_containers(kube, _accelerator_node_names(kube, cluster_info))
    _probe_setup(kube, run_context, namespace, allocation)
    profile = allocation.profile
    scripts, image = count_probe
    pod = probes.probe_pod("multi-pod", namespace, [
        probes.probe_container("holder", scripts, profile, alloc=allocation, image=image),
        probes.probe_container("other", scripts, profile, image=image),
    ], alloc=allocation, claim_template="one-device")
    out = probes.run_probe(kube, run_context, namespace, pod, timeout=timeout(300))
    for ctr in ("holder", "other"):
        evidence.log(f"probe output of container {ctr}", kube.logs(namespace, "multi-pod", ctr),
                     f"kubectl logs multi-pod -c {ctr} -n {namespace}")
    holder = probes.device_count(out["holder"], profile)
    other = probes.device_count(out["other"], profile)
    assert holder == 1, f"the container holding the device sees {holder} devices, not 1"
    assert other == 0, f"the container without the device sees {other} devices"


@pytest.mark.needs_containers
@pytest.mark.gpu
@pytest.mark.requirement(REQ)
def test_distinct_devices(kube: Kube, cluster_info: ClusterInfo,
                          allocation: allocations.Allocation, namespace: str,
                          run_context: RunContext, evidence: EvidenceRecorder,
                          timeout: Callable[[float], float], aic_settings: Settings) -> None:
    """Two one-device pods on one node see different device UUIDs."""
    profile = allocation.profile
    if profile.tool is None:
        pytest.skip(f"unknown hardware: profile {profile.name} has no tool that lists UUIDs")
    candidates = secure_accelerator_access.multi_device_nodes(cluster_info.accelerator_nodes,
                                                              allocation.resource)
    shared = secure_accelerator_access.shared_nodes(candidates, profile, allocation.resource)
    for node_name, why in sorted(shared.items()):
        evidence.note(f"{node_name} left out: its devices are shared ({why})")
    nodes = simulation.running_first(kube, [n.name for n in candidates if n.name not in shared])
    if not nodes:
        not_applicable("no node has two unshared accelerators to compare"
                       + (f" (shared: {', '.join(sorted(shared))})" if shared else ""))
    simulation.require_running_containers(kube, nodes)
    _probe_setup(kube, run_context, namespace, allocation)
    scripts = ["device_uuids.sh"]
    image = aic_settings.image(probes.probe_image_key(profile, scripts))
    # Both pods hold their device at the same time: one after the other, the second may
    # rightly be given the device the first has released.
    pods = [probes.probe_pod(name, namespace, [probes.probe_container(
        "prober", scripts, profile, alloc=allocation, image=image, hold_s=HOLD_S)],
        alloc=allocation, claim_template="one-device", node_name=nodes[0])
        for name in ("uuid-a", "uuid-b")]
    results = probes.run_probes(kube, run_context, namespace, pods, timeout=timeout(300))
    uuids: dict[str, set[str]] = {}
    for pod, (out, _) in zip(pods, results, strict=True):
        name = pod["metadata"]["name"]
        evidence.log(f"{name}: device UUIDs ({image})", kube.logs(namespace, name, "prober"),
                     f"kubectl logs {name} -n {namespace}")
        uuids[name] = set(probes.probed_uuids(out["prober"], profile, f"pod {name}"))
        assert len(uuids[name]) == 1, f"{name} sees UUIDs {sorted(uuids[name])}, expected one"
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table([p for _, p in results], POD_WIDE))
    if not probes.ran_together([p for _, p in results]):
        not_observable(f"the two pods did not hold their devices at the same time on "
                       f"{nodes[0]}, so equal UUIDs would prove nothing")
    assert uuids["uuid-a"] != uuids["uuid-b"], (
        f"two pods that each hold one device see the same UUID {sorted(uuids['uuid-a'])}"
    )


@pytest.mark.needs_containers
@pytest.mark.gpu
@pytest.mark.requirement(REQ)
def test_runtime_class_without_request(kube: Kube, cluster_info: ClusterInfo,
                                       allocation: allocations.Allocation, namespace: str,
                                       run_context: RunContext, evidence: EvidenceRecorder,
                                       timeout: Callable[[float], float],
                                       count_probe: tuple[list[str], str]) -> None:
    """The all-devices variable without a request gets nothing: under the vendor RuntimeClass
    where the cluster has one, else under the default runtime (which may itself be the vendor's
    hook, as the GPU Operator often configures containerd)."""
    profile = allocation.profile
    if profile.all_devices_env is None:
        pytest.skip(f"not applicable: profile {profile.name} has no all-devices variable")
    runtime_class = secure_accelerator_access.vendor_runtime_class(
        profile, cluster_info.runtime_classes)
    runtime = f"RuntimeClass {runtime_class}" if runtime_class else "the default runtime"
    nodes = _accelerator_node_names(kube, cluster_info)
    simulation.require_running_containers(kube, nodes)
    _probe_setup(kube, run_context, namespace, allocation)
    env = {profile.all_devices_env.name: profile.all_devices_env.value}
    scripts, image = count_probe
    pod = probes.probe_pod("rtc-pod", namespace, [probes.probe_container(
        "prober", scripts, profile, extra_env=env, image=image)],
        node_name=nodes[0], runtime_class=runtime_class)
    if profile.runtime_class and not runtime_class:
        evidence.note(f"RuntimeClass {profile.runtime_class} does not exist: the pod runs "
                      "under the default runtime")
    evidence.yaml(f"unprivileged pod with {runtime} and no request", pod)
    out = probes.run_probe(kube, run_context, namespace, pod, timeout=timeout(300))
    evidence.log("probe output", kube.logs(namespace, "rtc-pod", "prober"),
                 f"kubectl logs rtc-pod -n {namespace}")
    count = probes.device_count(out["prober"], profile)
    assert count == 0, (
        f"{profile.all_devices_env.name}={profile.all_devices_env.value} with {runtime} and no "
        f"request exposes {count} devices"
    )
