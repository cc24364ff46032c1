"""The real cluster_autoscaling check against the fake API server: which autoscalers it
recognises, and a GPU node group that scales from zero (no accelerator node before the run)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakeapi import FakeApiServer

from conftest import ROOT, base_args

CHECK = ROOT / "conformance_tests" / "test_cluster_autoscaling.py"


def crd(name: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}}


def run(aic: pytest.Pytester) -> tuple[dict[str, Any], str]:
    result = aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", "--aic-timeout-scale", "0.002",
                   "--aic-keep-namespaces", "always", str(CHECK)))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    verdict = next(r for r in data["requirements"] if r["id"] == "cluster_autoscaling")
    evidence = aic.path / "report" / verdict["checks"][0]["evidence_file"] \
        if verdict["checks"][0].get("evidence_file") else None
    text = evidence.read_text() if evidence and evidence.is_file() else ""
    return verdict, text + result.stdout.str()


def test_no_autoscaler_is_na(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    verdict, _ = run(aic)
    assert verdict["status"] == "N/A"
    assert "no Karpenter, no OpenShift ClusterAutoscaler" in verdict["reason"]


def test_karpenter_scaling_from_zero_is_checked(aic: pytest.Pytester,
                                                fake: FakeApiServer) -> None:
    """Karpenter is recognised, and with no GPU node at all the pod asks for the profile's
    resource; nothing scales up on the fake server, so the check fails within its deadline."""
    for name in ("nodepools.karpenter.sh", "nodeclaims.karpenter.sh"):
        fake.cluster.add("customresourcedefinitions", crd(name))
    verdict, text = run(aic)
    [check] = verdict["checks"]
    assert check["outcome"] == "failed", text
    assert "scale-up" in check["reason"]
    assert "autoscaler: Karpenter: " in text
    assert "NodePools: none" in text
    assert "scales from zero, so the pod asks for nvidia.com/gpu" in text
