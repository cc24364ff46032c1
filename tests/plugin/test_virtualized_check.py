"""The real virtualized_accelerator offer check against the fake API server: a label that
claims virtualization is not an offer, and a network card's virtual functions are no
accelerator."""

from __future__ import annotations

import json

import pytest
from fakeapi import FakeApiServer
from test_profile_detection import gpu_node

from conftest import ROOT, base_args

CHECK = ROOT / "pytest_aiconformance" / "checks" / "test_virtualized_accelerator.py"


def offered(aic: pytest.Pytester) -> dict[str, str]:
    result = aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", f"{CHECK}::test_virtualized_devices_offered"))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    [check] = next(r for r in data["requirements"]
                   if r["id"] == "virtualized_accelerator")["checks"]
    assert check["outcome"] in ("passed", "failed"), result.stdout.str()
    return check


def test_label_alone_is_not_an_offer(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("g1", {}, {"nvidia.com/vgpu.present": "true"}))
    check = offered(aic)
    assert check["outcome"] == "failed"
    assert check["reason"].startswith("only node labels claim virtualization")


def test_nic_virtual_functions_are_not_an_offer(aic: pytest.Pytester,
                                                fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("n1", {"intel.com/sriov_netdevice": "8"}))
    check = offered(aic)
    assert check["outcome"] == "failed"
    assert check["reason"].startswith("Not Implemented: no node offers a virtualized")


def test_vgpu_resource_is_an_offer(aic: pytest.Pytester, fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("v1", {"nvidia.com/GRID_A10-4Q": "6"},
                                       {"nvidia.com/gpu.workload.config": "vm-vgpu"}))
    assert offered(aic)["outcome"] == "passed"
