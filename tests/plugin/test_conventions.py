"""Conventions the plugin applies for every check: names, parameters, evidence files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from dummies import KUBE_CHECK

from conftest import base_args

PARAMETRIZED = """
import pytest

@pytest.mark.parametrize("scheduler", ["volcano", "kueue"])
@pytest.mark.requirement("gang_scheduling", junit="TestGangScheduling/GangBoundTogether")
def test_gang_bound_together(scheduler, evidence):
    '''An N-member gang is bound together.'''
    evidence.note(f"gang run by {scheduler}")

@pytest.mark.parametrize("mode", ["dra", "device plugin"])
@pytest.mark.requirement("secure_accelerator_access")
def test_capacity_enforced(mode, evidence):
    '''Capacity is enforced.'''
    evidence.note(f"mode {mode}")
"""


def test_parametrized_checks_get_distinct_names_and_evidence(aic: pytest.Pytester) -> None:
    """Two parameters of one check never share a JUnit name or an evidence file."""
    aic.makepyfile(test_checks=PARAMETRIZED)
    result = aic.runpytest(*base_args(aic, "--aic-version", "1.35"))
    report = aic.path / "report"
    root = ET.parse(report / "junit.xml").getroot()
    cases = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}
             for c in root.iter("testcase")}
    assert sorted(cases) == [
        "TestGangScheduling/GangBoundTogether/kueue",
        "TestGangScheduling/GangBoundTogether/volcano",
        "TestSecureAcceleratorAccess/CapacityEnforced/device_plugin",
        "TestSecureAcceleratorAccess/CapacityEnforced/dra",
    ], result.stdout.str()
    files = sorted(props["evidence_file"] for props in cases.values())
    assert files == [
        "checks/TestGangScheduling_GangBoundTogether_kueue.json",
        "checks/TestGangScheduling_GangBoundTogether_volcano.json",
        "checks/TestSecureAcceleratorAccess_CapacityEnforced_device_plugin.json",
        "checks/TestSecureAcceleratorAccess_CapacityEnforced_dra.json",
    ]
    notes = {json.loads((report / f).read_text())["steps"][0]["output"] for f in files}
    assert notes == {"gang run by volcano", "gang run by kueue", "mode dra",
                     "mode device plugin"}




@pytest.mark.parametrize(("flag", "content", "expected"), [
    ("--aic-platform", "metadata: [not, a, mapping\n",
     "ERROR: --aic-platform: platform metadata file */platform.yaml is not valid YAML*"),
    ("--aic-platform", "platformName: X\nnotAKey: 1\n",
     "ERROR: --aic-platform: platform metadata file */platform.yaml: unknown key(s) notAKey*"),
    ("--aic-template", "spec: 3\n",
     "ERROR: --aic-template: template */platform.yaml has no 'spec' mapping of categories"),
])
def test_malformed_files_fail_before_any_cluster_io(aic: pytest.Pytester, flag: str,
                                                   content: str, expected: str) -> None:
    """Options' files are read at start: the run stops there, the cluster is never asked."""
    from fnmatch import fnmatch

    from fakeapi import write_kubeconfig
    from test_bad_input import closed_port

    write_kubeconfig(aic.path / "kubeconfig", f"http://127.0.0.1:{closed_port()}")
    (aic.path / "platform.yaml").write_text(content)
    aic.makepyfile(test_check=KUBE_CHECK)
    result = aic.runpytest(*base_args(aic, f"{flag}={aic.path / 'platform.yaml'}"))
    lines = result.stdout.lines + result.stderr.lines
    errors = [line for line in lines if line.startswith("ERROR")]
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert len(errors) == 1, errors
    assert fnmatch(errors[0], expected), errors
    assert "cannot reach API server" not in "\n".join(lines)
