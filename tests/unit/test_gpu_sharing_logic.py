"""gpu_sharing's detection over Node objects shaped like real GPU Operator and GKE nodes.

Each mechanism is recognised only with a schedulable resource behind its labels: the cases
that must not pass (a label without the resource, a single-strategy label on a whole GPU,
time-slicing labels with no more units than devices) are here next to the ones that must.
Label sets follow the GPU Operator's GPU Feature Discovery (mig-node-labels, time-slicing
verification output) and GKE's time-sharing, MPS and multi-instance GPU pages.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiconformance_lab import LabShape, objects

from pytest_aiconformance.cluster import probes
from pytest_aiconformance.cluster.discovery import AcceleratorNode
from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.requirements import gpu_sharing, secure_accelerator_access
from pytest_aiconformance.requirements.gpu_sharing import (
    PARTITION,
    TIME_SHARED,
    SharingClaim,
    SharingOffer,
)

NVIDIA = get_profile("nvidia")


def node(name: str, allocatable: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    allocatable = {"cpu": "16", "memory": "64Gi", **allocatable}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
            "status": {"capacity": dict(allocatable), "allocatable": allocatable}}


def survey(*nodes: dict[str, Any]) -> gpu_sharing.SharingSurvey:
    return gpu_sharing.survey(nodes, NVIDIA)


# GPU Feature Discovery on an H100 80GB with the all-1g.10gb MIG config.
MIG_MIXED = node("h100-mixed", {"nvidia.com/gpu": "0", "nvidia.com/mig-1g.10gb": "7"}, {
    "nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "1",
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/mig.capable": "true",
    "nvidia.com/mig.config": "all-1g.10gb", "nvidia.com/mig.config.state": "success",
    "nvidia.com/mig.strategy": "mixed", "nvidia.com/mig-1g.10gb.count": "7",
    "nvidia.com/mig-1g.10gb.product": "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"})
# An A100 40GB with the all-1g.5gb config and the single strategy: gpu.count counts MIG devices.
MIG_SINGLE = node("a100-single", {"nvidia.com/gpu": "7"}, {
    "nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "7",
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "nvidia.com/gpu.memory": "4864",
    "nvidia.com/mig.capable": "true", "nvidia.com/mig.strategy": "single",
    "nvidia.com/gpu.sharing-strategy": "none", "nvidia.com/gpu.replicas": "1"})
# One T4 time-sliced into 4 by the device plugin's sharing config.
TIME_SLICED = node("t4-ts", {"nvidia.com/gpu": "4"}, {
    "nvidia.com/gpu.count": "1", "nvidia.com/gpu.product": "Tesla-T4-SHARED",
    "nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.sharing-strategy": "time-slicing",
    "nvidia.com/mig.capable": "false"})
# Two L4s shared by MPS, 2 clients each.
MPS = node("l4-mps", {"nvidia.com/gpu": "4"}, {
    "nvidia.com/gpu.count": "2", "nvidia.com/gpu.product": "NVIDIA-L4-SHARED",
    "nvidia.com/gpu.replicas": "2", "nvidia.com/gpu.sharing-strategy": "mps"})
# GKE's own device plugin: one L4 time-shared by 4 clients.
GKE_TIME_SHARING = node("gke-l4-ts", {"nvidia.com/gpu": "4"}, {
    "cloud.google.com/gke-accelerator": "nvidia-l4",
    "cloud.google.com/gke-accelerator-count": "1",
    "cloud.google.com/gke-gpu-sharing-strategy": "time-sharing",
    "cloud.google.com/gke-max-shared-clients-per-gpu": "4"})
GKE_MPS = node("gke-t4-mps", {"nvidia.com/gpu": "6"}, {
    "cloud.google.com/gke-accelerator": "nvidia-tesla-t4",
    "cloud.google.com/gke-accelerator-count": "2",
    "cloud.google.com/gke-gpu-sharing-strategy": "mps",
    "cloud.google.com/gke-max-shared-clients-per-gpu": "3"})
# GKE multi-instance GPU: an A100 40GB in 1g.5gb partitions, advertised as nvidia.com/gpu.
GKE_MIG = node("gke-a100-mig", {"nvidia.com/gpu": "7"}, {
    "cloud.google.com/gke-accelerator": "nvidia-tesla-a100",
    "cloud.google.com/gke-accelerator-count": "1",
    "cloud.google.com/gke-gpu-partition-size": "1g.5gb"})
# Two L4s (no MIG) in a cluster whose device plugin runs the single MIG strategy everywhere.
UNSHARED = node("plain", {"nvidia.com/gpu": "2"}, {
    "nvidia.com/gpu.count": "2", "nvidia.com/gpu.product": "NVIDIA-L4",
    "nvidia.com/gpu.sharing-strategy": "none", "nvidia.com/gpu.replicas": "1",
    "nvidia.com/mig.capable": "false", "nvidia.com/mig.strategy": "single"})


def test_mig_mixed_offers_each_profile_resource_as_partitions() -> None:
    found = survey(MIG_MIXED)
    assert found.offers == (SharingOffer(
        "h100-mixed", "MIG mixed strategy", PARTITION, "nvidia.com/mig-1g.10gb", 7, 1, 0,
        ("nvidia.com/mig.strategy=mixed", "nvidia.com/mig-1g.10gb=7")),)
    assert found.claims == ()
    assert found.offers[0].describe() == (
        "h100-mixed: MIG mixed strategy: 7 x nvidia.com/mig-1g.10gb from 1 device(s) "
        "(nvidia.com/mig.strategy=mixed, nvidia.com/mig-1g.10gb=7)")


def test_mig_single_offers_the_plain_resource_as_partitions() -> None:
    found = survey(MIG_SINGLE)
    # gpu.count counts MIG devices under the single strategy, so no physical count is taken.
    assert found.offers == (SharingOffer(
        "a100-single", "MIG single strategy", PARTITION, "nvidia.com/gpu", 7, 0, 0,
        ("nvidia.com/mig.strategy=single",
         "nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "nvidia.com/gpu=7")),)
    assert found.claims == ()
    assert "from a number of devices no label states" in found.offers[0].describe()


def test_time_slicing_offers_units_beyond_the_physical_count() -> None:
    found = survey(TIME_SLICED)
    assert found.offers == (SharingOffer(
        "t4-ts", "time-slicing", TIME_SHARED, "nvidia.com/gpu", 4, 1, 4,
        ("nvidia.com/gpu.sharing-strategy=time-slicing", "nvidia.com/gpu.replicas=4",
         "nvidia.com/gpu.count=1", "nvidia.com/gpu=4")),)
    assert found.claims == ()
    assert found.offers[0].consistent


def test_mps_is_named_by_its_strategy_label() -> None:
    [offer] = survey(MPS).offers
    assert (offer.mechanism, offer.kind, offer.units, offer.physical, offer.per_device) == (
        "mps", TIME_SHARED, 4, 2, 2)


def test_renamed_shared_resource_is_the_offer() -> None:
    renamed = node("t4-renamed", {"nvidia.com/gpu.shared": "8"}, {
        "nvidia.com/gpu.count": "2", "nvidia.com/gpu.replicas": "4",
        "nvidia.com/gpu.sharing-strategy": "time-slicing"})
    [offer] = survey(renamed).offers
    assert (offer.resource, offer.units, offer.physical) == ("nvidia.com/gpu.shared", 8, 2)


def test_gke_time_sharing_and_mps_labels_are_recognised() -> None:
    found = survey(GKE_TIME_SHARING, GKE_MPS)
    assert found.offers == (
        SharingOffer("gke-l4-ts", "GKE time-sharing", TIME_SHARED, "nvidia.com/gpu", 4, 1, 4,
                     ("cloud.google.com/gke-gpu-sharing-strategy=time-sharing",
                      "cloud.google.com/gke-max-shared-clients-per-gpu=4",
                      "cloud.google.com/gke-accelerator-count=1", "nvidia.com/gpu=4")),
        SharingOffer("gke-t4-mps", "GKE mps", TIME_SHARED, "nvidia.com/gpu", 6, 2, 3,
                     ("cloud.google.com/gke-gpu-sharing-strategy=mps",
                      "cloud.google.com/gke-max-shared-clients-per-gpu=3",
                      "cloud.google.com/gke-accelerator-count=2", "nvidia.com/gpu=6")),
    )
    assert found.claims == ()


def test_gke_partition_size_is_a_mig_offer() -> None:
    found = survey(GKE_MIG)
    assert found.offers == (SharingOffer(
        "gke-a100-mig", "GKE MIG 1g.5gb", PARTITION, "nvidia.com/gpu", 7, 1, 0,
        ("cloud.google.com/gke-gpu-partition-size=1g.5gb",
         "cloud.google.com/gke-accelerator-count=1", "nvidia.com/gpu=7")),)


def test_gke_time_sharing_without_a_count_label_needs_a_whole_multiple() -> None:
    labels = {"cloud.google.com/gke-gpu-sharing-strategy": "time-sharing",
              "cloud.google.com/gke-max-shared-clients-per-gpu": "4"}
    [offer] = survey(node("whole", {"nvidia.com/gpu": "8"}, labels)).offers
    assert (offer.units, offer.physical, offer.per_device) == (8, 2, 4)
    assert "2 device(s) = units / 4" in offer.signals
    odd = survey(node("odd", {"nvidia.com/gpu": "6"}, labels))
    assert odd.offers == ()
    [claim] = odd.claims
    assert claim.why.startswith("no cloud.google.com/gke-accelerator-count label states the "
                                "physical devices and nvidia.com/gpu=6 is no whole multiple")


@pytest.mark.parametrize(("labels", "allocatable", "mechanism", "why"), [
    # GKE's time-sharing labels on a node whose device plugin advertises nothing.
    ({"cloud.google.com/gke-gpu-sharing-strategy": "time-sharing",
      "cloud.google.com/gke-max-shared-clients-per-gpu": "4",
      "cloud.google.com/gke-accelerator-count": "1"}, {},
     "GKE time-sharing", "no nvidia.com/gpu is allocatable"),
    # GKE MIG partition size with nvidia.com/gpu at 0 (partitions not created).
    ({"cloud.google.com/gke-gpu-partition-size": "1g.5gb"}, {"nvidia.com/gpu": "0"},
     "GKE MIG 1g.5gb", "no nvidia.com/gpu is allocatable"),
    # The mixed strategy labelled, but no nvidia.com/mig-* resource.
    ({"nvidia.com/mig.strategy": "mixed", "nvidia.com/gpu.count": "1"},
     {"nvidia.com/gpu": "1"}, "MIG mixed strategy",
     "no nvidia.com/mig-* resource is allocatable"),
    # The single strategy on a GPU with MIG disabled: the units are whole GPUs.
    ({"nvidia.com/mig.strategy": "single", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
     {"nvidia.com/gpu": "8"}, "MIG single strategy",
     "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3 names no MIG profile (-MIG-<profile>): "
     "the units are whole devices"),
    # The single strategy with a MIG product but no units.
    ({"nvidia.com/mig.strategy": "single",
      "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"},
     {"nvidia.com/gpu": "0"}, "MIG single strategy", "no nvidia.com/gpu is allocatable"),
    # Time-slicing labelled, but no resource at all.
    ({"nvidia.com/gpu.sharing-strategy": "mps", "nvidia.com/gpu.replicas": "2",
      "nvidia.com/gpu.count": "1"}, {"nvidia.com/gpu": "0"}, "mps",
     "no nvidia.com/gpu or nvidia.com/gpu.shared is allocatable"),
    # Time-slicing configured but the device plugin still advertises the physical GPU only.
    ({"nvidia.com/gpu.sharing-strategy": "time-slicing", "nvidia.com/gpu.replicas": "4",
      "nvidia.com/gpu.count": "1"}, {"nvidia.com/gpu": "1"}, "time-slicing",
     "nvidia.com/gpu=1 is not more than the 1 physical device(s)"),
])
def test_a_label_alone_is_not_an_offer(labels: dict[str, str], allocatable: dict[str, str],
                                       mechanism: str, why: str) -> None:
    found = survey(node("n1", allocatable, labels))
    assert found.offers == ()
    [claim] = found.claims
    assert (claim.node, claim.mechanism, claim.why) == ("n1", mechanism, why)
    assert found.summary() == claim.describe()
    assert claim.describe() == f"n1: {', '.join(claim.signals)} claims {mechanism}, but {why}"


def test_unshared_nodes_offer_nothing_and_claim_nothing() -> None:
    assert survey(UNSHARED) == gpu_sharing.SharingSurvey((), ())
    assert survey().summary() == "no sharing label or shared resource found"


def test_profiles_without_sharing_knowledge_find_nothing() -> None:
    assert get_profile("amd").sharing is None
    assert gpu_sharing.survey([TIME_SLICED], get_profile("amd")).offers == ()


def test_time_slicing_of_mig_devices_is_time_sharing_over_the_partitions() -> None:
    """Time-sliced MIG devices (single strategy, replicas 4): pods may see one partition, so
    the identity check must expect shared UUIDs over 7 partitions, not 28 distinct ones."""
    shared_mig = node("a100-ts-mig", {"nvidia.com/gpu": "28"}, {
        **MIG_SINGLE["metadata"]["labels"], "nvidia.com/gpu.replicas": "4",
        "nvidia.com/gpu.sharing-strategy": "time-slicing"})
    [offer] = survey(shared_mig).offers
    assert (offer.mechanism, offer.kind, offer.units, offer.physical, offer.per_device) == (
        "time-slicing of MIG single strategy partitions", TIME_SHARED, 28, 7, 4)
    gke = node("gke-ts-mig", {"nvidia.com/gpu": "14"}, {
        **GKE_MIG["metadata"]["labels"],
        "cloud.google.com/gke-gpu-sharing-strategy": "time-sharing",
        "cloud.google.com/gke-max-shared-clients-per-gpu": "2"})
    [offer] = survey(gke).offers
    assert (offer.mechanism, offer.kind, offer.physical) == (
        "GKE time-sharing of GKE MIG 1g.5gb partitions", TIME_SHARED, 7)


def test_inconsistent_units_are_described() -> None:
    odd = node("odd", {"nvidia.com/gpu": "6"}, {
        "nvidia.com/gpu.count": "2", "nvidia.com/gpu.replicas": "4",
        "nvidia.com/gpu.sharing-strategy": "time-slicing"})
    [offer] = survey(odd).offers
    assert not offer.consistent
    assert offer.describe().endswith("; expected 2 x 4 = 8 units")


def test_offers_and_claims_keep_node_order() -> None:
    no_units = node("gke-empty", {}, {"cloud.google.com/gke-gpu-partition-size": "1g.5gb"})
    found = survey(TIME_SLICED, no_units, MIG_MIXED)
    assert [o.node for o in found.offers] == ["t4-ts", "h100-mixed"]
    assert found.claims == (SharingClaim("gke-empty", "GKE MIG 1g.5gb",
                                         ("cloud.google.com/gke-gpu-partition-size=1g.5gb",),
                                         "no nvidia.com/gpu is allocatable"),)


# --- the lab's shapes -------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "expected"), [
    (LabShape(gpu_nodes=1, cpu_nodes=1, mig=True, mig_strategy="mixed"),
     [("aic-gpu-0", "MIG mixed strategy", PARTITION, "nvidia.com/mig-1g.10gb", 7, 1)]),
    (LabShape(gpu_nodes=1, cpu_nodes=1, mig=True, mig_strategy="single"),
     [("aic-gpu-0", "MIG single strategy", PARTITION, "nvidia.com/gpu", 7, 0)]),
    (LabShape(gpu_nodes=1, time_sliced_nodes=1, gpus_per_node=2),
     [("aic-gpu-ts-0", "time-slicing", TIME_SHARED, "nvidia.com/gpu", 8, 2)]),
    (LabShape(gpu_nodes=2), []),
])
def test_lab_shapes_are_surveyed(shape: LabShape, expected: list[tuple[Any, ...]]) -> None:
    found = gpu_sharing.survey(objects.nodes(shape), NVIDIA)
    assert [(o.node, o.mechanism, o.kind, o.resource, o.units, o.physical)
            for o in found.offers] == expected
    assert found.claims == ()


# --- nodes whose pods may share a device (secure_accelerator_access leaves them out) --------


def test_gke_time_sharing_nodes_cannot_show_distinct_devices() -> None:
    gke = AcceleratorNode("g", {"nvidia.com/gpu": "4"}, {
        "cloud.google.com/gke-gpu-sharing-strategy": "time-sharing",
        "cloud.google.com/gke-max-shared-clients-per-gpu": "4"})
    assert secure_accelerator_access.shared_devices(gke, NVIDIA) == (
        "cloud.google.com/gke-gpu-sharing-strategy=time-sharing")
    clients = AcceleratorNode("c", {"nvidia.com/gpu": "4"}, {
        "cloud.google.com/gke-max-shared-clients-per-gpu": "2"})
    assert secure_accelerator_access.shared_devices(clients, NVIDIA) == (
        "cloud.google.com/gke-max-shared-clients-per-gpu=2")
    # MIG partitions are distinct devices: two pods there must see different UUIDs.
    mig = AcceleratorNode("m", {"nvidia.com/gpu": "7"}, {
        "cloud.google.com/gke-gpu-partition-size": "1g.5gb"})
    assert secure_accelerator_access.shared_devices(mig, NVIDIA) == ""


# --- identity probes must overlap in time ---------------------------------------------------


def _ran(started: str, finished: str) -> dict[str, Any]:
    return {"status": {"containerStatuses": [{"state": {"terminated": {
        "startedAt": started, "finishedAt": finished, "exitCode": 0}}}]}}


def test_identity_probes_that_only_overlap_in_pairs_did_not_run_together() -> None:
    """A overlaps B and B overlaps C, but A finished before C started: no moment had all
    three on the device, so the three UUIDs prove nothing about sharing."""
    chain = [_ran("2026-11-30T07:00:01Z", "2026-11-30T07:00:10Z"),
             _ran("2026-11-30T07:00:05Z", "2026-11-30T07:00:15Z"),
             _ran("2026-11-30T07:00:12Z", "2026-11-30T07:00:20Z")]
    assert probes.ran_together(chain) is False
    assert probes.ran_together(chain[:2]) is True
    # One starting the second the other finished never held the device alongside it.
    touching = [_ran("2026-11-30T07:00:01Z", "2026-11-30T07:00:05Z"),
                _ran("2026-11-30T07:00:05Z", "2026-11-30T07:00:09Z")]
    assert probes.ran_together(touching) is False
    # A pod still running (no terminated state) has no end to compare: no proof.
    running = {"status": {"containerStatuses": [{"state": {"running": {
        "startedAt": "2026-11-30T07:00:02Z"}}}]}}
    assert probes.ran_together([chain[0], running]) is False
