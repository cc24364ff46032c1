"""gpu_sharing's decisions over Node objects shaped like real GPU Operator and GKE nodes.

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
from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.requirements import gpu_sharing
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


# --- renamed replicas of a device subset -------------------------------------------------------
# The NVIDIA device plugin's sharing config ``resources: [{name: nvidia.com/gpu, rename:
# nvidia.com/gpu.shared, devices: [...], replicas: N}]`` (or ``renameByDefault``): the
# replicated devices are advertised as ``nvidia.com/gpu.shared``, the others stay whole as
# ``nvidia.com/gpu``, and GPU Feature Discovery counts every GPU and labels the replicas,
# without ``-SHARED`` on the product.


RENAMED_LABELS = {"nvidia.com/gpu.count": "3", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
          "nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.sharing-strategy": "time-slicing"}


def renamed_node(allocatable: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "mixed", "labels": dict(RENAMED_LABELS)},
            "status": {"allocatable": {"cpu": "8", **allocatable}}}


def test_renamed_replicas_of_one_device_beside_whole_gpus() -> None:
    found = gpu_sharing.survey(
        [renamed_node({"nvidia.com/gpu": "2", "nvidia.com/gpu.shared": "4"})], NVIDIA)
    assert found.claims == ()
    (offer,) = found.offers
    assert (offer.resource, offer.kind, offer.units, offer.physical, offer.per_device) == (
        "nvidia.com/gpu.shared", gpu_sharing.TIME_SHARED, 4, 1, 4)
    assert offer.consistent
    assert "1 of nvidia.com/gpu.count=3 = units / 4" in offer.describe()


def test_fewer_replicas_than_gpus_still_exceed_their_device() -> None:
    # 2 units on a 3-GPU node: still more than the one device behind them.
    two = renamed_node({"nvidia.com/gpu": "2", "nvidia.com/gpu.shared": "2"})
    two["metadata"]["labels"]["nvidia.com/gpu.replicas"] = "2"
    (offer,) = gpu_sharing.survey([two], NVIDIA).offers
    assert (offer.resource, offer.units, offer.physical) == ("nvidia.com/gpu.shared", 2, 1)


def test_every_device_renamed() -> None:
    # renameByDefault over all GPUs: no whole nvidia.com/gpu left; all 3 devices behind.
    found = gpu_sharing.survey([renamed_node({"nvidia.com/gpu.shared": "12"})], NVIDIA)
    (offer,) = found.offers
    assert (offer.units, offer.physical) == (12, 3)


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


# --- what the checks decide from a survey ----------------------------------------------------


def test_label_keys_name_every_sharing_label_once() -> None:
    keys = gpu_sharing.label_keys(NVIDIA)
    assert keys[:5] == ["nvidia.com/gpu.count", "nvidia.com/gpu.product",
                        "nvidia.com/gpu.sharing-strategy", "nvidia.com/gpu.replicas",
                        "nvidia.com/mig.strategy"]
    assert {"cloud.google.com/gke-gpu-sharing-strategy",
            "cloud.google.com/gke-max-shared-clients-per-gpu",
            "cloud.google.com/gke-gpu-partition-size"} <= set(keys)
    assert len(keys) == len(set(keys))


def test_node_rows_show_accelerator_nodes_only() -> None:
    keys = ["nvidia.com/gpu.count", "nvidia.com/gpu.replicas"]
    cpu = node("cpu-0", {}, {})
    rows = gpu_sharing.node_rows([TIME_SLICED, cpu, MIG_MIXED], NVIDIA, keys)
    assert rows == [["t4-ts", "nvidia.com/gpu=4", "1", "4"],
                    ["h100-mixed", "nvidia.com/gpu=0,nvidia.com/mig-1g.10gb=7", "1", ""]]
    # A sharing label without any accelerator resource is still shown.
    labelled = node("labelled", {}, {"nvidia.com/gpu.replicas": "4"})
    assert gpu_sharing.node_rows([labelled], NVIDIA, keys) == [["labelled", "-", "", "4"]]


def test_oversubscription_takes_the_fewest_devices() -> None:
    plan = gpu_sharing.oversubscription(survey(MPS, TIME_SLICED, MIG_SINGLE).offers)
    assert (plan.offer.node, plan.pods, plan.why) == ("t4-ts", 2, "which has 1 device(s)")
    assert plan.shortfall() == ""


def test_oversubscription_without_a_device_count_runs_two_pods() -> None:
    plan = gpu_sharing.oversubscription(survey(MIG_SINGLE).offers)
    assert (plan.offer.node, plan.pods) == ("a100-single", 2)
    assert plan.why == "whose physical devices no label states (each unit is a partition)"


def test_oversubscription_shortfall() -> None:
    offer = SharingOffer("n", "time-slicing", TIME_SHARED, "nvidia.com/gpu", 2, 2, 1)
    plan = gpu_sharing.oversubscription([offer])
    assert plan.pods == 3
    assert plan.shortfall() == "n advertises only 2 nvidia.com/gpu (time-slicing)"


def _phase(*phases: str) -> dict[str, dict[str, Any]]:
    return {f"shared-{i}": {"status": {"phase": p}} for i, p in enumerate(phases)}


def test_all_running() -> None:
    assert gpu_sharing.all_running(_phase("Running", "Running"), 2)
    assert not gpu_sharing.all_running(_phase("Running", "Pending"), 2)
    assert not gpu_sharing.all_running(_phase("Running"), 2)
    assert not gpu_sharing.all_running(_phase("Running", "Running", "Running"), 2)


def test_identity_target_prefers_nodes_that_run_containers() -> None:
    offers = survey(MIG_MIXED, TIME_SLICED).offers
    assert gpu_sharing.identity_target(offers, []).node == "h100-mixed"
    assert gpu_sharing.identity_target(offers, ["h100-mixed"]).node == "t4-ts"
    assert gpu_sharing.identity_target(offers, ["h100-mixed", "t4-ts"]).node == "h100-mixed"


def test_identity_pods() -> None:
    [mixed] = survey(MIG_MIXED).offers
    [single] = survey(MIG_SINGLE).offers
    [mps] = survey(MPS).offers
    assert gpu_sharing.identity_pods(mixed) == 2  # 7 partitions of 1 GPU: 2 pods
    assert gpu_sharing.identity_pods(single) == 2  # devices unknown: 2 pods
    assert gpu_sharing.identity_pods(mps) == 3  # 4 units on 2 GPUs: 3 pods
    tight = SharingOffer("n", "time-slicing", TIME_SHARED, "nvidia.com/gpu", 2, 2, 1)
    assert gpu_sharing.identity_pods(tight) == 2  # no more pods than units


def test_identity_on_partitions_needs_distinct_partition_uuids() -> None:
    [mig] = survey(MIG_MIXED).offers
    ok = {"share-0": ["MIG-aaaa"], "share-1": ["MIG-bbbb"]}
    assert gpu_sharing.identity_problem(mig, ok, NVIDIA) == ""
    same = {"share-0": ["MIG-aaaa"], "share-1": ["MIG-aaaa"]}
    assert gpu_sharing.identity_problem(mig, same, NVIDIA) == (
        f"pods on MIG mixed strategy share UUIDs: {same}")
    whole = {"share-0": ["GPU-aaaa"], "share-1": ["GPU-bbbb"]}
    assert gpu_sharing.identity_problem(mig, whole, NVIDIA) == (
        "not partition UUIDs (MIG-...): ['GPU-aaaa', 'GPU-bbbb']")


def test_identity_on_real_mig_listings_in_pods() -> None:
    """Real nvidia-smi -L in a pod on one MIG device also prints the parent GPU's line
    (recorded: tests/unit/data/recorded/nvidia-smi/h100-one-mig-in-pod-L.txt): the UUIDs
    compared are the MIG devices the pods hold, so distinct partitions pass."""
    [mig] = survey(MIG_MIXED).offers
    regex, parent = NVIDIA.tool.uuid_regex, "GPU 0: NVIDIA H100 PCIe (UUID: GPU-717ef73c)"
    listings = {"share-0": [parent, "MIG 1g.10gb     Device  0: (UUID: MIG-2d636152)"],
                "share-1": [parent, "MIG 1g.10gb     Device  0: (UUID: MIG-db99bb81)"]}
    seen = {pod: probes.held_devices(lines, regex, "MIG-") for pod, lines in listings.items()}
    assert seen == {"share-0": ["MIG-2d636152"], "share-1": ["MIG-db99bb81"]}
    assert gpu_sharing.identity_problem(mig, seen, NVIDIA) == ""
    # Every UUID listed, as the checks read it before: each pod seemed to hold two devices.
    raw = {"share-0": ["GPU-717ef73c", "MIG-2d636152"], "share-1": ["GPU-717ef73c", "MIG-db99bb81"]}
    assert gpu_sharing.identity_problem(mig, raw, NVIDIA) == (
        "share-0 sees UUIDs ['GPU-717ef73c', 'MIG-2d636152'], expected exactly one")


def test_identity_time_shared_no_more_uuids_than_devices() -> None:
    [ts] = survey(TIME_SLICED).offers
    shared = {"share-0": ["GPU-aaaa"], "share-1": ["GPU-aaaa"]}
    assert gpu_sharing.identity_problem(ts, shared, NVIDIA) == ""
    split = {"share-0": ["GPU-aaaa"], "share-1": ["GPU-bbbb"]}
    assert gpu_sharing.identity_problem(ts, split, NVIDIA) == (
        "2 time-shared pods on 1 device(s) report 2 different UUIDs: ['GPU-aaaa', 'GPU-bbbb']")


def test_identity_each_pod_sees_exactly_one_uuid() -> None:
    [ts] = survey(TIME_SLICED).offers
    two = {"share-0": ["GPU-aaaa", "GPU-bbbb"], "share-1": ["GPU-aaaa"]}
    assert gpu_sharing.identity_problem(ts, two, NVIDIA) == (
        "share-0 sees UUIDs ['GPU-aaaa', 'GPU-bbbb'], expected exactly one")
    assert gpu_sharing.identity_problem(ts, {"share-0": []}, NVIDIA) == (
        "share-0 sees UUIDs [], expected exactly one")


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
