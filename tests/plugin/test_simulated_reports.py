"""Reports of a run on simulated nodes or accelerators say so; a real platform's do not.

Against the fake API server: a kwok-simulated node (kwok's annotation), a real node labelled
as having simulated accelerators (discovery.SIMULATED_ACCELERATORS_LABEL), and only real
nodes. Every report, the submission and the terminal summary are checked for the marking.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakeapi import FakeApiServer

from conftest import base_args
from pytest_aiconformance.cluster.discovery import SIMULATED_ACCELERATORS_LABEL

CHECK = """
import pytest

@pytest.mark.requirement("dra_support")
def test_kinds():
    pass
"""
HEADER = "# NOT A SUBMISSION FOR A REAL PLATFORM: this run's nodes or accelerators are simulated."


def node(name: str, annotations: dict[str, str] | None = None,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    allocatable = {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": annotations or {},
                         "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "status": {"capacity": allocatable, "allocatable": allocatable}}


def run(aic: pytest.Pytester) -> pytest.RunResult:
    aic.makepyfile(test_simulated=CHECK)
    result = aic.runpytest(*base_args(aic, "--aic-submission", str(aic.path / "submission")))
    result.assert_outcomes(passed=1)
    return result


def notes(product_yaml: Path) -> list[str]:
    doc = yaml.safe_load(product_yaml.read_text())
    return [item["notes"] for items in doc["spec"].values() for item in items]


@pytest.mark.parametrize(
    ("nodes", "simulated"),
    [
        ([node("kwok-0", annotations={"kwok.x-k8s.io/node": "fake"}), node("real-0")],
         "kwok-simulated nodes kwok-0"),
        ([node("real-0", labels={SIMULATED_ACCELERATORS_LABEL: "true"}), node("real-1")],
         "simulated accelerators on real-0"),
    ],
    ids=["kwok-node", "labelled-node"],
)
def test_simulated_cluster_marks_every_report(aic: pytest.Pytester, fake: FakeApiServer,
                                              nodes: list[dict[str, Any]],
                                              simulated: str) -> None:
    for obj in nodes:
        fake.cluster.add("nodes", obj)
    result = run(aic)
    result.stdout.fnmatch_lines([f"SIMULATED, not a real platform: {simulated} "
                                 "(every report says so)"])
    report = aic.path / "report"
    assert json.loads((report / "verdicts.json").read_text())["run"]["simulated"] == simulated
    page = (report / "evidence.md").read_text().splitlines()
    assert page[2] == (f"> **Simulated run: not a real platform.** This run's nodes or "
                       f"accelerators are simulated ({simulated}); its verdicts are not "
                       "evidence for any real platform.")
    assert f"- **Simulated, not a real platform**: {simulated}" in page
    sentence = f"Decided on a simulated cluster, not a real platform: {simulated}."
    products = [report / "PRODUCT.yaml",
                *(aic.path / "submission").glob("v*/*/PRODUCT.yaml")]
    assert len(products) == 2
    for product in products:
        text = product.read_text()
        assert f"{HEADER}\n# Simulated: {simulated}\n" in text
        assert all(note.endswith(" " + sentence) for note in notes(product))
    pages = list((aic.path / "submission").glob("v*/*/*/evidence.md"))
    assert pages
    assert all(p.read_text().splitlines()[2] == page[2] for p in pages)


def test_real_cluster_reports_say_nothing_of_simulation(aic: pytest.Pytester,
                                                        fake: FakeApiServer) -> None:
    fake.cluster.add("nodes", node("real-0", labels={SIMULATED_ACCELERATORS_LABEL: "false"}))
    fake.cluster.add("nodes", node("real-1", annotations={"kwok.x-k8s.io/node": "other"}))
    result = run(aic)
    assert "SIMULATED" not in result.stdout.str()
    report = aic.path / "report"
    assert "simulated" not in json.loads((report / "verdicts.json").read_text())["run"]
    files = [report / "evidence.md", report / "PRODUCT.yaml",
             *(aic.path / "submission").rglob("PRODUCT.yaml"),
             *(aic.path / "submission").rglob("evidence.md")]
    for path in files:
        text = path.read_text().lower()
        assert "simulated" not in text, path
        assert "not a real platform" not in text, path
