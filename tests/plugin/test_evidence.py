"""Evidence in JUnit <system-out> (passing tests too), properties, names, per-check files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from dummies import CHECKS

from conftest import base_args


def test_evidence_in_junit_and_files(aic: pytest.Pytester) -> None:
    aic.makepyfile(test_checks=CHECKS)
    result = aic.runpytest(*base_args(aic, "--aic-version", "1.34", "-k", "dra", "-W",
                                      "error::pytest.PytestWarning"))
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str() + result.stderr.str()
    assert "xunit2" not in out
    assert "PytestWarning" not in out
    report = aic.path / "report"
    root = ET.parse(report / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"TestDRASupport/APIKindsServed",
                          "TestDRASupport/DeviceMetadataInContainer"}
    case = cases["TestDRASupport/APIKindsServed"]
    assert case.find("failure") is None
    assert case.find("skipped") is None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["requirement"] == "dra_support"
    assert props["level"] == "MUST"
    assert props["checklist_version"] == "1.34"
    assert props["role"] == "essential"
    assert props["verdict"] == "passed"
    assert props["junit_name"] == "TestDRASupport/APIKindsServed"
    system_out = "".join(case.find("system-out").itertext())
    assert "$ kubectl api-resources --api-group=resource.k8s.io" in system_out
    assert "deviceclasses resource.k8s.io/v1   DeviceClass" in system_out
    assert "all four kinds are served" in system_out
    assert "Bearer <redacted>" in system_out
    assert "abcdefghijklmnopqrstuvwxyz0123" not in system_out
    assert "c2VjcmV0" not in system_out  # Secret data blanked

    sup = {p.get("name"): p.get("value") for p in
           cases["TestDRASupport/DeviceMetadataInContainer"].iter("property")}
    assert sup["role"] == "supporting"
    assert sup["verdict"] == "not observable here"
    assert sup["reason"] == "simulated nodes run no containers"

    evidence = json.loads((report / props["evidence_file"]).read_text())
    assert props["evidence_file"] == "checks/TestDRASupport_APIKindsServed.json"
    assert evidence["requirement"] == "dra_support"
    assert [s["kind"] for s in evidence["steps"]] == ["command", "note", "yaml", "command"]
    for path in report.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "SeCrEtTokenValue" not in text, path  # the kubeconfig token
            assert "abcdefghijklmnopqrstuvwxyz0123" not in text, path
    md = (report / "evidence.md").read_text()
    assert "kubectl api-resources --api-group=resource.k8s.io" in md
