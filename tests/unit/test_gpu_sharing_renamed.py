"""Time-slicing of a device subset with renamed replicas (the NVIDIA device plugin's sharing
config ``resources: [{name: nvidia.com/gpu, rename: nvidia.com/gpu.shared, devices: [...],
replicas: N}]``, or ``renameByDefault``): the replicated devices are advertised as
``nvidia.com/gpu.shared``, the others stay whole as ``nvidia.com/gpu``, and GPU Feature
Discovery counts every GPU and labels the replicas, without ``-SHARED`` on the product."""

from __future__ import annotations

from pytest_aiconformance.cluster.discovery import AcceleratorNode
from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.requirements import gpu_sharing, secure_accelerator_access

NVIDIA = get_profile("nvidia")
LABELS = {"nvidia.com/gpu.count": "3", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
          "nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.sharing-strategy": "time-slicing"}


def node(allocatable: dict[str, str]) -> dict[str, object]:
    return {"metadata": {"name": "mixed", "labels": dict(LABELS)},
            "status": {"allocatable": {"cpu": "8", **allocatable}}}


def test_renamed_replicas_of_one_device_beside_whole_gpus() -> None:
    found = gpu_sharing.survey([node({"nvidia.com/gpu": "2", "nvidia.com/gpu.shared": "4"})],
                               NVIDIA)
    assert found.claims == ()
    (offer,) = found.offers
    assert (offer.resource, offer.kind, offer.units, offer.physical, offer.per_device) == (
        "nvidia.com/gpu.shared", gpu_sharing.TIME_SHARED, 4, 1, 4)
    assert offer.consistent
    assert "1 of nvidia.com/gpu.count=3 = units / 4" in offer.describe()



def test_fewer_replicas_than_gpus_still_exceed_their_device() -> None:
    # 2 units on a 3-GPU node: still more than the one device behind them.
    two = node({"nvidia.com/gpu": "2", "nvidia.com/gpu.shared": "2"})
    two["metadata"]["labels"]["nvidia.com/gpu.replicas"] = "2"  # type: ignore[index]
    (offer,) = gpu_sharing.survey([two], NVIDIA).offers
    assert (offer.resource, offer.units, offer.physical) == ("nvidia.com/gpu.shared", 2, 1)


def test_every_device_renamed() -> None:
    # renameByDefault over all GPUs: no whole nvidia.com/gpu left; all 3 devices behind.
    found = gpu_sharing.survey([node({"nvidia.com/gpu.shared": "12"})], NVIDIA)
    (offer,) = found.offers
    assert (offer.units, offer.physical) == (12, 3)


def test_whole_gpus_beside_renamed_replicas_are_not_shared() -> None:
    resources = {"nvidia.com/gpu": "2", "nvidia.com/gpu.shared": "4"}
    mixed = AcceleratorNode("mixed", resources, dict(LABELS))
    assert secure_accelerator_access.shared_devices(mixed, NVIDIA, "nvidia.com/gpu") == ""
    assert secure_accelerator_access.shared_devices(mixed, NVIDIA, "nvidia.com/gpu.shared") == (
        "nvidia.com/gpu.sharing-strategy=time-slicing")
    assert secure_accelerator_access.shared_devices(mixed, NVIDIA) == "nvidia.com/gpu.sharing-strategy=time-slicing"
    # Replicas kept under the plain name: those GPUs are shared.
    plain = AcceleratorNode("plain", {"nvidia.com/gpu": "8"}, dict(LABELS))
    assert secure_accelerator_access.shared_devices(plain, NVIDIA, "nvidia.com/gpu") == (
        "nvidia.com/gpu.sharing-strategy=time-slicing")
