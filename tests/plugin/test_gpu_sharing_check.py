"""The real gpu_sharing advertisement check against the fake API server: GKE's own sharing
labels and the GPU Operator's MIG single strategy are offers, and a sharing label with no
schedulable resource behind it is not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakeapi import FakeApiServer
from test_profile_detection import gpu_node

from conftest import ROOT, base_args

CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_gpu_sharing.py"


def advertised(aic: pytest.Pytester) -> tuple[dict[str, Any], str]:
    """The check's record in verdicts.json and its evidence page."""
    result = aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", f"{CHECK}::test_shared_units_advertised"))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    [check] = next(r for r in data["requirements"] if r["id"] == "gpu_sharing")["checks"]
    assert check["outcome"] in ("passed", "failed"), result.stdout.str()
    page = aic.path / "report" / check["evidence_file"] if check.get("evidence_file") else None
    return check, page.read_text() if page and page.is_file() else ""


def test_gke_time_sharing_labels_are_an_offer(aic: pytest.Pytester,
                                              fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("gke-l4", {"nvidia.com/gpu": "4"}, {
        "cloud.google.com/gke-accelerator": "nvidia-l4",
        "cloud.google.com/gke-accelerator-count": "1",
        "cloud.google.com/gke-gpu-sharing-strategy": "time-sharing",
        "cloud.google.com/gke-max-shared-clients-per-gpu": "4"}))
    check, page = advertised(aic)
    assert check["outcome"] == "passed", check
    assert ("gke-l4: GKE time-sharing: 4 x nvidia.com/gpu from 1 device(s) "
            "(cloud.google.com/gke-gpu-sharing-strategy=time-sharing, "
            "cloud.google.com/gke-max-shared-clients-per-gpu=4, "
            "cloud.google.com/gke-accelerator-count=1, nvidia.com/gpu=4)") in page


def test_mig_single_strategy_is_an_offer(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("a100", {"nvidia.com/gpu": "7"}, {
        "nvidia.com/gpu.count": "7", "nvidia.com/mig.strategy": "single",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"}))
    check, page = advertised(aic)
    assert check["outcome"] == "passed", check
    assert "a100: MIG single strategy: 7 x nvidia.com/gpu" in page


def test_label_without_resource_is_not_an_offer(aic: pytest.Pytester,
                                                fake: FakeApiServer) -> None:
    """GKE time-sharing labels on a node that advertises no nvidia.com/gpu, next to an
    unshared GPU node: the labels claim sharing, nothing schedulable backs them."""
    fake.cluster.add("nodes", gpu_node("labelled", {}, {
        "cloud.google.com/gke-accelerator-count": "1",
        "cloud.google.com/gke-gpu-sharing-strategy": "time-sharing",
        "cloud.google.com/gke-max-shared-clients-per-gpu": "4"}))
    fake.cluster.add("nodes", gpu_node("whole", {"nvidia.com/gpu": "2"},
                                       {"nvidia.com/gpu.count": "2"}))
    check, page = advertised(aic)
    assert check["outcome"] == "failed"
    assert check["reason"] == (
        "only node labels claim GPU sharing, no schedulable resource backs them: labelled: "
        "cloud.google.com/gke-gpu-sharing-strategy=time-sharing, "
        "cloud.google.com/gke-max-shared-clients-per-gpu=4 claims GKE time-sharing, but no "
        "nvidia.com/gpu is allocatable")
    assert "not an offer: labelled:" in page


def test_no_sharing_at_all_fails_saying_what_was_looked_for(aic: pytest.Pytester,
                                                            fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("whole", {"nvidia.com/gpu": "2"},
                                       {"nvidia.com/gpu.count": "2"}))
    check, _ = advertised(aic)
    assert check["outcome"] == "failed"
    assert check["reason"].startswith("no node advertises shared accelerator units")
