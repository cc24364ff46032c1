"""Essential checks whose "not applicable" could let a requirement pass on its other checks
alone (issue 13, rule 4): the real checks against the fake API server.

workload_sandboxing is a SHOULD with no condition: a platform without a sandbox RuntimeClass
does not implement it (never N/A). virtualized_accelerator: an offer published only as DRA
devices passes the offer check, but the pod half is then not observed, so the requirement
is Not verified rather than Implemented on the offer alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakeapi import FakeApiServer
from test_profile_detection import gpu_node

from conftest import ROOT, base_args


def verdict(aic: pytest.Pytester, check_file: str, version: str, req: str) -> dict[str, Any]:
    result = aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", version, "--aic-timeout-scale", "0.01",
                   "--aic-keep-namespaces", "always",
                   str(ROOT / "pytest_aiconformance" / "checks" / check_file)))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    found: dict[str, Any] = next(r for r in data["requirements"] if r["id"] == req)
    found["stdout"] = result.stdout.str()
    return found


def runtime_class(name: str, handler: str) -> dict[str, Any]:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": name}, "handler": handler}


@pytest.mark.parametrize("classes", [[], [("nvidia", "nvidia")]])
def test_no_sandbox_runtime_class_is_not_implemented(aic: pytest.Pytester, fake: FakeApiServer,
                                                     classes: list[tuple[str, str]]) -> None:
    for name, handler in classes:
        fake.cluster.add("runtimeclasses", runtime_class(name, handler))
    fake.cluster.add("nodes", gpu_node("n1"))
    v = verdict(aic, "test_workload_sandboxing.py", "1.37", "workload_sandboxing")
    assert v["status"] == "Not Implemented", v["stdout"][-3000:]
    names = ", ".join(n for n, _ in classes) or "none"
    [check] = v["checks"]
    assert check["outcome"] == "failed"
    assert check["reason"] == (
        "no RuntimeClass offers a sandbox: none has a gVisor (runsc) or Kata handler or a "
        f"known sandbox name (RuntimeClasses: {names})")


def test_virtual_functions_only_through_dra_are_not_verified(aic: pytest.Pytester,
                                                             fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", gpu_node("v1"))
    fake.cluster.add("resourceslices", {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
        "metadata": {"name": "v1-gpu.intel.com"},
        "spec": {"driver": "gpu.intel.com", "nodeName": "v1",
                 "pool": {"name": "v1", "generation": 1, "resourceSliceCount": 1},
                 "devices": [{"name": "vf-0", "attributes": {"sriov": {"bool": True}}}]}})
    v = verdict(aic, "test_virtualized_accelerator.py", "1.35", "virtualized_accelerator")
    outcomes = {c["junit_name"]: c["outcome"] for c in v["checks"]}
    assert outcomes == {
        "TestVirtualizedAccelerator/VirtualizedDevicesOffered": "passed",
        "TestVirtualizedAccelerator/PodRunsOnVirtualizedDevice": "not observable here",
    }, v["stdout"][-3000:]
    assert v["status"] == "Not verified"
    pod_check = next(c for c in v["checks"]
                     if c["junit_name"].endswith("PodRunsOnVirtualizedDevice"))
    assert pod_check["reason"] == (
        "virtualized devices are offered only as DRA devices (1 offer(s) of sriov-vf); this "
        "check requests extended resources, so a pod running on one was not observed")


def test_all_devices_variable_is_tried_under_the_default_runtime(aic: pytest.Pytester,
                                                                 fake: FakeApiServer) -> None:
    """No `nvidia` RuntimeClass: the vendor hook may be containerd's default runtime, so the
    all-devices attack runs without a class instead of ending not applicable (the fake server
    runs no pod, so the probe times out: a failure, never N/A)."""
    fake.cluster.add("nodes", gpu_node("g1", {"nvidia.com/gpu": "1"}))
    result = aic.runpytest_subprocess(
        *base_args(aic, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
                   "--aic-version", "1.35", "--aic-timeout-scale", "0.01",
                   "--aic-keep-namespaces", "always", "-k", "runtime_class_without_request",
                   str(ROOT / "pytest_aiconformance" / "checks"
                       / "test_secure_accelerator_access.py")))
    data = json.loads((aic.path / "report" / "verdicts.json").read_text())
    req = next(r for r in data["requirements"] if r["id"] == "secure_accelerator_access")
    [check] = [c for c in req["checks"] if c["junit_name"].endswith("RuntimeClassWithoutRequest")]
    assert check["outcome"] == "failed", result.stdout.str()[-3000:]
    evidence = (aic.path / "report" / check["evidence_file"]).read_text()
    assert "RuntimeClass nvidia does not exist: the pod runs under the default runtime" in evidence
    assert "unprivileged pod with the default runtime and no request" in evidence
    assert "runtimeClassName" not in evidence
    assert "NVIDIA_VISIBLE_DEVICES" in evidence
