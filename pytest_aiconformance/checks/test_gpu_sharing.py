"""gpu_sharing: one physical accelerator is shared by several pods.

Advertisement half (control plane, provable on the lab): some node offers shared units as a
schedulable resource: hardware partitions (MIG: the GPU Operator's mixed strategy with one
resource per MIG profile, its single strategy with MIG devices as the plain resource and a
-MIG-<profile> product label, GKE's partition-size label) or time-shared units beyond the
physical devices (time-slicing or MPS by the device plugin's labels, GKE time-sharing or
MPS). A label without a schedulable resource behind it is not an offer. Then more one-unit
pods than physical devices run at once on such a node (two pods on MIG partitions where no
label states the physical devices).
In-container half (needs running containers): time-shared pods holding one unit at the same
time (their run times must overlap, or nothing is shown) report no more distinct UUIDs than
devices; pods on partitions report distinct partition UUIDs.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    AcceleratorProfile,
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    Target,
    allocations,
    get_table,
    gpu_sharing,
    probes,
    simulation,
    table,
    unknown_hardware,
    watch_until,
    workloads,
)

REQ = "gpu_sharing"
HOLD_S = 20  # how long each identity probe keeps its device after reading its UUID


def survey(kube: Kube, profile: AcceleratorProfile,
           evidence: EvidenceRecorder) -> gpu_sharing.SharingSurvey:
    """Every node's sharing offers and unbacked claims, with the nodes' labels as evidence."""
    if profile.sharing is None:
        unknown_hardware(f"profile {profile.name} names no sharing labels or resources")
    nodes = kube.items("v1", "Node")
    keys = gpu_sharing.label_keys(profile)
    evidence.command(f"kubectl get nodes -L {','.join(keys)} (accelerator resources "
                     "from .status.allocatable)",
                     table(gpu_sharing.node_rows(nodes, profile, keys),
                           ["NAME", "ALLOCATABLE", *keys]))
    return gpu_sharing.survey(nodes, profile)


def _offers(kube: Kube, profile: AcceleratorProfile,
            evidence: EvidenceRecorder) -> list[gpu_sharing.SharingOffer]:
    """The sharing offers; a failure when there is none (the advertisement check says why)."""
    offers = list(survey(kube, profile, evidence).offers)
    assert offers, "no node shares accelerators (see TestGPUSharing/SharedUnitsAdvertised)"
    return offers


@pytest.mark.requirement(REQ)
def test_shared_units_advertised(kube: Kube, aic_settings: Settings,
                                 evidence: EvidenceRecorder) -> None:
    """A node offers shared accelerator units (partitions, or units beyond its devices) as a
    schedulable resource; a label alone is not an offer."""
    profile = aic_settings.profile
    found = survey(kube, profile, evidence)
    platforms = ", ".join(p.name for p in profile.sharing.platforms) if profile.sharing else ""
    for offer in found.offers:
        evidence.note(offer.describe())
    for claim in found.claims:
        evidence.note(f"not an offer: {claim.describe()}")
    assert found.offers or not found.claims, (
        f"only node labels claim GPU sharing, no schedulable resource backs them: "
        f"{found.summary()}")
    assert found.offers, (
        "no node advertises shared accelerator units (looked for MIG partition resources, "
        "MIG single-strategy products, time-slicing or MPS units beyond the physical "
        f"devices, and {platforms or 'platform'} sharing labels)")


@pytest.mark.requirement(REQ, junit="OversubscribedPodsRun")
def test_more_pods_than_devices_run(kube: Kube, aic_settings: Settings, namespace: str,
                                    run_context: RunContext, evidence: EvidenceRecorder,
                                    timeout: Callable[[float], float]) -> None:
    """More one-unit pods than physical devices run at once on a sharing node."""
    offers = _offers(kube, aic_settings.profile, evidence)
    plan = gpu_sharing.oversubscription(offers)
    target, want, why = plan.offer, plan.pods, plan.why
    assert not plan.shortfall(), plan.shortfall()
    evidence.note(f"{want} pods, each requesting one {target.resource} ({target.mechanism}), "
                  f"pinned to {target.node} {why}")
    for i in range(want):
        run_context.create(workloads.pod(
            f"shared-{i}", namespace,
            [workloads.container("ctr", ["sleep", "3600"], image=aic_settings.image("probe"),
                                 resources_={"limits": {target.resource: "1"}})],
            node_selector={"kubernetes.io/hostname": target.node}, restart_policy="Always",
        ))
    pods = watch_until(kube, Target("v1", "Pod", namespace),
                       lambda objs: gpu_sharing.all_running(objs, want), timeout=timeout(120),
                       expected=f"{want} pods Running at once on {target.node}")
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(sorted(pods.values(), key=lambda o: o["metadata"]["name"]),
                               POD_WIDE))


@pytest.mark.gpu
@pytest.mark.requirement(REQ)
def test_shared_device_identity(kube: Kube, aic_settings: Settings, namespace: str,
                                run_context: RunContext, evidence: EvidenceRecorder,
                                timeout: Callable[[float], float]) -> None:
    """Time-shared pods report no more distinct UUIDs than devices; pods on partitions
    report distinct partition UUIDs."""
    profile = aic_settings.profile
    offers = _offers(kube, profile, evidence)
    # A node that runs containers first: the identity is read inside the pods.
    target = gpu_sharing.identity_target(offers, simulation.simulated_nodes(kube))
    simulation.require_running_containers(kube, [target.node])
    if profile.tool is None:
        unknown_hardware(f"profile {profile.name} has no tool that lists UUIDs")
    run_context.create(probes.probe_configmap(namespace))
    alloc = allocations.Allocation("device-plugin", profile, resource=target.resource)
    count = gpu_sharing.identity_pods(target)
    scripts = ["device_uuids.sh"]
    image = aic_settings.image(probes.probe_image_key(profile, scripts))
    evidence.note(f"{count} pods, each holding one {target.resource} on {target.node} "
                  f"({target.mechanism}), list device UUIDs with {profile.tool.command} in "
                  f"{image}")
    # The pods hold their device side by side (each stays HOLD_S after probing): one physical
    # device seen by pods that ran one after another would prove no sharing.
    pods = [probes.probe_pod(f"share-{i}", namespace, [probes.probe_container(
        "prober", scripts, profile, alloc=alloc, image=image, hold_s=HOLD_S)],
        alloc=alloc, node_name=target.node) for i in range(count)]
    results = probes.run_probes(kube, run_context, namespace, pods, timeout=timeout(300))
    seen: dict[str, list[str]] = {}
    for (out, pod) in results:
        name = pod["metadata"]["name"]
        evidence.log(f"{name}", kube.logs(namespace, name, "prober"),
                     f"kubectl logs {name} -n {namespace}")
        seen[name] = probes.probed_uuids(out["prober"], profile, f"pod {name}")
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table([p for _, p in results], POD_WIDE))
    assert probes.ran_together([p for _, p in results]), (
        f"the {count} pods did not hold the shared device at the same time: each ran after "
        "another had finished, so their UUIDs prove nothing about sharing")
    problem = gpu_sharing.identity_problem(target, seen, profile)
    assert not problem, problem
