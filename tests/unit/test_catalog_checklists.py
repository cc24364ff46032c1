"""The catalog against the packaged official checklists: ids, levels, order and wording agree."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest
import yaml

from pytest_aiconformance.verdicts.catalog import (
    CHECKLIST_FILE,
    UnknownVersionError,
    load_catalog,
    official_checklist_text,
    official_descriptions,
    parse_catalog,
    template_descriptions,
)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / ".." / "shared" / "reference" / "conformance-versions"
VERSIONS = load_catalog().known_versions
PACKAGED = resources.files("pytest_aiconformance").joinpath("data", "checklists")


def official_items(version: str) -> list[tuple[str, str, str]]:
    spec = yaml.safe_load(official_checklist_text(version))["spec"]
    return [(category, item["id"], item["level"])
            for category, items in spec.items() for item in items]


def test_every_catalog_version_is_packaged_and_nothing_else():
    names = sorted(f.name for f in PACKAGED.iterdir() if f.name.endswith(".yaml"))
    assert names == sorted(CHECKLIST_FILE.format(version=v) for v in VERSIONS)


@pytest.mark.parametrize("version", VERSIONS)
def test_catalog_ids_levels_and_order_equal_the_official_checklist(version):
    ours = [(r.category, r.id, r.level) for r in load_catalog().requirements(version)]
    assert ours == official_items(version)


@pytest.mark.parametrize("version", VERSIONS)
def test_official_descriptions_cover_every_id(version):
    descriptions = official_descriptions(version)
    assert list(descriptions) == [r.id for r in load_catalog().requirements(version)]
    assert all(text and text == text.strip() for text in descriptions.values())


@pytest.mark.parametrize("version", VERSIONS)
def test_packaged_checklists_are_the_reference_verbatim(version):
    reference = REFERENCE / CHECKLIST_FILE.format(version=version)
    if not reference.is_file():
        pytest.skip(f"reference checklists not present: {REFERENCE}")
    assert official_checklist_text(version) == reference.read_text(encoding="utf-8")


def test_workload_sandboxing_is_a_137_security_should_only():
    catalog = load_catalog()
    for version in VERSIONS:
        req = catalog.get(version, "workload_sandboxing")
        assert (req is not None) == (version == "1.37"), version
    req = catalog.get("1.37", "workload_sandboxing")
    assert req is not None
    assert (req.category, req.level, req.conditional) == ("security", "SHOULD", False)
    assert catalog.junit_group("workload_sandboxing") == "TestWorkloadSandboxing"
    ids_137 = [r.id for r in catalog.requirements("1.37")]
    assert [i for i in ids_137 if i != "workload_sandboxing"] == [
        r.id for r in catalog.requirements("1.36")]
    assert ids_137.index("workload_sandboxing") == ids_137.index("secure_accelerator_access") + 1
    assert official_descriptions("1.37")["workload_sandboxing"].startswith(
        "Provide a mechanism to run workloads in a sandbox")


@pytest.mark.parametrize(("server", "expected"), [
    ((1, 36), "1.36"), ((1, 37), "1.37"), ((1, 40), "1.37"), ((2, 0), "1.37")])
def test_server_version_selects_checklist(server, expected):
    assert load_catalog().version_for_server(*server) == expected


def test_unknown_version_has_no_checklist():
    with pytest.raises(UnknownVersionError, match=r"'1\.2'; known: 1\.33, .*1\.37$"):
        official_descriptions("1.2")


def test_template_parser_rejects_a_file_without_spec():
    with pytest.raises(ValueError, match=r"^template x\.yaml has no 'spec' mapping"):
        template_descriptions({"metadata": {}}, "x.yaml")
    assert template_descriptions({"spec": {"security": [
        {"id": "a", "description": " Words. "}, {"id": "b"}, "junk"]}}, "t") == {"a": "Words."}


def test_checklists_are_package_data():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["pytest_aiconformance",
                                                        "pytest_aiconformance.*"]
    assert setuptools["package-data"]["pytest_aiconformance.data.checklists"] == ["*.yaml"]


def test_every_requirement_has_its_title_from_the_catalog():
    catalog = load_catalog()
    assert set(catalog.titles) == set(catalog.all_ids)
    assert catalog.title("ai_service_metrics") == "AI service metrics"
    assert catalog.title("high_performance_networking") == "High-performance networking"
    assert catalog.title("dra_support") == "DRA support"
    for version in VERSIONS:
        for req in catalog.requirements(version):
            assert req.title == catalog.title(req.id), req.id
            assert req.title == req.title.strip(), req.id
            assert req.title[0].isupper(), req.id


def test_an_id_the_catalog_does_not_know_gets_a_title_from_its_id():
    assert load_catalog().title("future_requirement_x") == "Future requirement x"


def test_a_requirement_without_a_title_is_refused():
    data = {"requirements": {"a_b": {"category": "security", "summary": "S."}},
            "versions": {"1.35": {"a_b": "MUST"}}}
    with pytest.raises(ValueError, match=r"^catalog: requirement a_b has no title$"):
        parse_catalog(data)
    data["requirements"]["a_b"]["title"] = "A and B"
    catalog = parse_catalog(data)
    assert catalog.title("a_b") == "A and B"
    assert catalog.requirements("1.35")[0].title == "A and B"

