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

from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
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


def _label_keys(profile) -> list[str]:
    """The node labels that name a sharing mechanism or the devices behind it."""
    names = profile.node_labels
    keys = [names.count, names.product, names.sharing_strategy, names.replicas,
            names.mig_strategy]
    for plat in profile.sharing.platforms if profile.sharing else ():
        keys += [plat.count, plat.strategy, plat.clients, plat.partition_size]
    return list(dict.fromkeys(k for k in keys if k))


def survey(kube, profile, evidence) -> gpu_sharing.SharingSurvey:
    """Every node's sharing offers and unbacked claims, with the nodes' labels as evidence."""
    if profile.sharing is None:
        unknown_hardware(f"profile {profile.name} names no sharing labels or resources")
    nodes = kube.items("v1", "Node")
    keys = _label_keys(profile)
    rows = []
    for node in nodes:
        labels = node["metadata"].get("labels") or {}
        allocatable = node.get("status", {}).get("allocatable") or {}
        resources = ",".join(f"{r}={v}" for r, v in sorted(allocatable.items())
                             if profile.matches_resource(r)
                             or any(r == p.resource for p in (profile.sharing.platforms
                                                              if profile.sharing else ())))
        shown = [k for k in keys if k in labels]
        if resources or shown:
            rows.append([node["metadata"]["name"], resources or "-",
                         *(labels.get(k, "") for k in keys)])
    evidence.command(f"kubectl get nodes -L {','.join(keys)} (accelerator resources "
                     "from .status.allocatable)",
                     table(rows, ["NAME", "ALLOCATABLE", *keys]))
    return gpu_sharing.survey(nodes, profile)


def _offers(kube, profile, evidence) -> list[gpu_sharing.SharingOffer]:
    offers = list(survey(kube, profile, evidence).offers)
    assert offers, "no node shares accelerators (see TestGPUSharing/SharedUnitsAdvertised)"
    return offers


@pytest.mark.requirement(REQ)
def test_shared_units_advertised(kube, aic_settings, evidence):
    """A node offers shared accelerator units (partitions, or units beyond its devices) as a
    schedulable resource; a label alone is not an offer."""
    profile = aic_settings.profile
    found = survey(kube, profile, evidence)
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
        f"devices, and {', '.join(p.name for p in profile.sharing.platforms) or 'platform'} "
        "sharing labels)")


@pytest.mark.requirement(REQ, junit="OversubscribedPodsRun")
def test_more_pods_than_devices_run(kube, aic_settings, namespace, run_context,
                                    evidence, timeout):
    """More one-unit pods than physical devices run at once on a sharing node."""
    offers = _offers(kube, aic_settings.profile, evidence)
    counted = [o for o in offers if o.physical]
    if counted:
        target = min(counted, key=lambda o: (o.physical, o.node, o.resource))
        want = target.physical + 1
        why = f"which has {target.physical} device(s)"
    else:
        # MIG single strategy: the count label counts MIG devices, no label the GPUs; pods
        # running on two partitions show the fractional units are schedulable.
        target = min(offers, key=lambda o: (o.node, o.resource))
        want = 2
        why = "whose physical devices no label states (each unit is a partition)"
    assert target.units >= want, (
        f"{target.node} advertises only {target.units} {target.resource} ({target.mechanism})"
    )
    evidence.note(f"{want} pods, each requesting one {target.resource} ({target.mechanism}), "
                  f"pinned to {target.node} {why}")
    for i in range(want):
        run_context.create(workloads.pod(
            f"shared-{i}", namespace,
            [workloads.container("ctr", ["sleep", "3600"], image=aic_settings.image("probe"),
                                 resources_={"limits": {target.resource: "1"}})],
            node_selector={"kubernetes.io/hostname": target.node}, restart_policy="Always",
        ))

    def all_running(objs: dict[str, dict[str, Any]]) -> bool:
        return len(objs) == want and all(o.get("status", {}).get("phase") == "Running"
                                         for o in objs.values())

    pods = watch_until(kube, Target("v1", "Pod", namespace), all_running, timeout=timeout(120),
                       expected=f"{want} pods Running at once on {target.node}")
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(sorted(pods.values(), key=lambda o: o["metadata"]["name"]),
                               POD_WIDE))


@pytest.mark.gpu
@pytest.mark.requirement(REQ)
def test_shared_device_identity(kube, aic_settings, namespace, run_context, evidence, timeout):
    """Time-shared pods report no more distinct UUIDs than devices; pods on partitions
    report distinct partition UUIDs."""
    profile = aic_settings.profile
    offers = _offers(kube, profile, evidence)
    # A node that runs containers first: the identity is read inside the pods.
    simulated = set(simulation.simulated_nodes(kube))
    target = min(offers, key=lambda o: (o.node in simulated, o.node, o.resource))
    simulation.require_running_containers(kube, [target.node])
    if profile.tool is None:
        unknown_hardware(f"profile {profile.name} has no tool that lists UUIDs")
    run_context.create(probes.probe_configmap(namespace))
    alloc = allocations.Allocation("device-plugin", profile, resource=target.resource)
    count = min(target.units, max(2, target.physical + 1))
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
    for name, uuids in seen.items():
        assert len(uuids) == 1, f"{name} sees UUIDs {uuids}, expected exactly one"
    distinct = {u[0] for u in seen.values()}
    if target.kind == gpu_sharing.PARTITION:
        assert len(distinct) == count, f"pods on {target.mechanism} share UUIDs: {seen}"
        prefix = profile.sharing.partition_uuid_prefix if profile.sharing else None
        if prefix:
            assert all(u.startswith(prefix) for u in distinct), (
                f"not partition UUIDs ({prefix}...): {sorted(distinct)}")
    else:
        assert len(distinct) <= target.physical, (
            f"{count} time-shared pods on {target.physical} device(s) report "
            f"{len(distinct)} different UUIDs: {sorted(distinct)}"
        )
