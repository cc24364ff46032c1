"""gpu_sharing: one physical accelerator is shared by several pods.

Advertisement half (control plane, provable on the lab): a node advertises more schedulable
units than it has physical devices (time-slicing replicas or MIG partitions), and more
one-unit pods than physical devices run on it at once.
In-container half (needs running containers): time-sliced pods holding one device at the same
time (their run times must overlap, or nothing is shown) all report the same physical UUID;
MIG pods report distinct MIG UUIDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    Target,
    get_table,
    probing,
    table,
    watch_until,
    workloads,
)

REQ = "gpu_sharing"
HOLD_S = 20  # how long each identity probe keeps its device after reading its UUID


@dataclass(frozen=True)
class SharedNode:
    name: str
    resource: str
    units: int  # schedulable units of the resource
    physical: int  # physical devices behind them
    strategy: str  # "time-slicing" | "mig" | label value


def find_shared_nodes(kube, cluster_info, profile) -> list[SharedNode]:
    """Nodes whose advertised units exceed their physical devices, with the reason why."""
    labels = profile.node_labels
    found = []
    for node in cluster_info.accelerator_nodes:
        physical = int(node.labels.get(labels.count or "", "0") or 0)
        strategy = node.labels.get(labels.sharing_strategy or "", "")
        for resource, value in sorted(node.resources.items()):
            if not profile.matches_resource(resource):
                continue
            units = int(value)
            if resource.startswith("nvidia.com/mig-") or "mig" in resource:
                found.append(SharedNode(node.name, resource, units, physical, "mig"))
            elif strategy and strategy != "none" and physical and units > physical:
                found.append(SharedNode(node.name, resource, units, physical, strategy))
    return found


@pytest.mark.requirement(REQ)
def test_shared_units_advertised(kube, cluster_info, aic_settings, evidence):
    """A node advertises more schedulable accelerator units than physical devices."""
    profile = aic_settings.profile
    labels = profile.node_labels
    rows = []
    for node in cluster_info.accelerator_nodes:
        for resource, value in sorted(node.resources.items()):
            rows.append([node.name, resource, value,
                         node.labels.get(labels.count or "", ""),
                         node.labels.get(labels.sharing_strategy or "", ""),
                         node.labels.get(labels.replicas or "", ""),
                         node.labels.get(labels.product or "", "")])
    evidence.command(
        "kubectl get nodes -o custom-columns=NAME,RESOURCE,ALLOCATABLE,"
        f"{labels.count},{labels.sharing_strategy},{labels.replicas},{labels.product}",
        table(rows, ["NAME", "RESOURCE", "ALLOCATABLE", "GPU.COUNT", "SHARING-STRATEGY",
                     "REPLICAS", "PRODUCT"]),
    )
    shared = find_shared_nodes(kube, cluster_info, aic_settings.profile)
    assert shared, ("no node advertises shared accelerator units (no time-slicing replicas "
                    "beyond the physical count, no MIG resources)")
    for s in shared:
        evidence.note(f"{s.name}: {s.units} x {s.resource} from {s.physical or '?'} physical "
                      f"device(s), strategy {s.strategy}")
        if s.strategy not in ("mig",):
            replicas = next((n.labels.get(labels.replicas or "") for n in
                             cluster_info.accelerator_nodes if n.name == s.name), None)
            if replicas and replicas.isdigit():
                assert s.units == s.physical * int(replicas), (
                    f"{s.name} advertises {s.units} {s.resource}, but {s.physical} devices x "
                    f"{replicas} replicas = {s.physical * int(replicas)}"
                )


@pytest.mark.requirement(REQ, junit="OversubscribedPodsRun")
def test_more_pods_than_devices_run(kube, cluster_info, aic_settings, namespace, run_context,
                                    evidence, timeout):
    """More one-unit pods than physical devices run at once on a sharing node."""
    shared = [s for s in find_shared_nodes(kube, cluster_info, aic_settings.profile)
              if s.physical]
    assert shared, "no node shares accelerators (see TestGPUSharing/SharedUnitsAdvertised)"
    target = min(shared, key=lambda s: (s.physical, s.name))
    want = target.physical + 1
    assert target.units >= want, (
        f"{target.name} advertises only {target.units} {target.resource} for "
        f"{target.physical} devices"
    )
    evidence.note(f"{want} pods, each requesting one {target.resource}, pinned to "
                  f"{target.name} which has {target.physical} physical device(s)")
    for i in range(want):
        run_context.create(workloads.pod(
            f"shared-{i}", namespace,
            [workloads.container("ctr", ["sleep", "3600"], image=aic_settings.image("probe"),
                                 resources_={"limits": {target.resource: "1"}})],
            node_selector={"kubernetes.io/hostname": target.name}, restart_policy="Always",
        ))

    def all_running(objs: dict[str, dict[str, Any]]) -> bool:
        return len(objs) == want and all(o.get("status", {}).get("phase") == "Running"
                                         for o in objs.values())

    pods = watch_until(kube, Target("v1", "Pod", namespace), all_running, timeout=timeout(120),
                       expected=f"{want} pods Running at once on {target.name}")
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table(sorted(pods.values(), key=lambda o: o["metadata"]["name"]),
                               POD_WIDE))


@pytest.mark.gpu
@pytest.mark.requirement(REQ)
def test_shared_device_identity(kube, cluster_info, aic_settings, namespace, run_context,
                                evidence, timeout):
    """Time-sliced pods report one physical UUID; MIG pods report distinct MIG UUIDs."""
    shared = find_shared_nodes(kube, cluster_info, aic_settings.profile)
    assert shared, "no node shares accelerators"
    target = shared[0]
    probing.require_running_containers(kube, [target.name])
    profile = aic_settings.profile
    if profile.tool is None:
        pytest.skip(f"unknown hardware: profile {profile.name} has no tool that lists UUIDs")
    run_context.create(probing.probe_configmap(namespace))
    alloc = probing.Allocation("device-plugin", profile, resource=target.resource)
    count = min(target.units, max(2, target.physical + 1))
    # The pods hold their device side by side (each stays HOLD_S after probing): one physical
    # device seen by pods that ran one after another would prove no sharing.
    pods = [probing.probe_pod(f"share-{i}", namespace, [probing.probe_container(
        "prober", ["device_uuids.sh"], profile, alloc=alloc, image=aic_settings.image("probe"),
        hold_s=HOLD_S)], alloc=alloc, node_name=target.name) for i in range(count)]
    results = probing.run_probes(kube, run_context, namespace, pods, timeout=timeout(300))
    seen: dict[str, list[str]] = {}
    for (out, pod) in results:
        name = pod["metadata"]["name"]
        seen[name] = out["prober"].get("UUID", [])
        evidence.log(f"{name}", kube.logs(namespace, name, "prober"),
                     f"kubectl logs {name} -n {namespace}")
    evidence.command(f"kubectl get pods -n {namespace} -o wide",
                     get_table([p for _, p in results], POD_WIDE))
    assert probing.ran_together([p for _, p in results]), (
        f"the {count} pods did not hold the shared device at the same time: each ran after "
        "another had finished, so their UUIDs prove nothing about sharing")
    for name, uuids in seen.items():
        assert len(uuids) == 1, f"{name} sees UUIDs {uuids}, expected exactly one"
    distinct = {u[0] for u in seen.values()}
    if target.strategy == "mig":
        assert len(distinct) == count, f"MIG pods share UUIDs: {seen}"
        assert all(u.startswith("MIG-") for u in distinct), f"not MIG UUIDs: {sorted(distinct)}"
    else:
        assert len(distinct) <= target.physical, (
            f"{count} time-sliced pods on {target.physical} device(s) report "
            f"{len(distinct)} different UUIDs: {sorted(distinct)}"
        )
