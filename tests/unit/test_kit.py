"""The checks' toolkit: checks import it and nothing else of ours; its surface is documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pytest_aiconformance import kit
from pytest_aiconformance.run.check_records import junit_name

ROOT = Path(__file__).resolve().parents[2]
CHECKS = sorted((ROOT / "pytest_aiconformance" / "checks").glob("*.py"))


def _our_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and (
                node.module == "pytest_aiconformance"
                or node.module.startswith("pytest_aiconformance.")):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("pytest_aiconformance")]
    return found


@pytest.mark.parametrize("path", CHECKS, ids=lambda p: p.name)
def test_checks_import_only_the_kit(path: Path) -> None:
    bad = [m for m in _our_imports(path) if m != "pytest_aiconformance.kit"]
    assert not bad, f"{path.name} imports {bad}; use pytest_aiconformance.kit"


def test_the_rule_sees_a_forbidden_import(tmp_path: Path) -> None:
    check = tmp_path / "test_x.py"
    check.write_text("from pytest_aiconformance.cluster.run_objects import RUN_LABEL\n"
                     "import pytest_aiconformance.cluster.client\n"
                     "from pytest_aiconformance.kit import Target\n")
    assert _our_imports(check) == ["pytest_aiconformance.cluster.run_objects",
                                   "pytest_aiconformance.cluster.client",
                                   "pytest_aiconformance.kit"]


def test_kit_exports_exist_and_are_documented() -> None:
    assert len(kit.__all__) == len(set(kit.__all__))
    for name in kit.__all__:
        assert hasattr(kit, name), name
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Adding a requirement"):]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else None]
    listed = set(re.findall(r"`([A-Za-z_]+)`", section))
    assert set(kit.__all__) <= listed, sorted(set(kit.__all__) - listed)


@pytest.mark.parametrize(("args", "expected"), [
    (("dra_support", "test_dra_api_kinds_served"), "TestDRASupport/DraApiKindsServed"),
    (("dra_support", "test_x", "APIKindsServed"), "TestDRASupport/APIKindsServed"),
    (("gang_scheduling", "test_gang[kueue]", None, "kueue"), "TestGangScheduling/Gang/kueue"),
    (("gang_scheduling", "test_a[x]", "TestGiven/Case", "x y"), "TestGiven/Case/x_y"),
    (("secure_accelerator_access", "test_positive_access", "PositiveAccessTest"),
     "TestSecureAcceleratorAccess/PositiveAccessTest"),
])
def test_junit_name(args: tuple[str, ...], expected: str) -> None:
    assert junit_name(*args) == expected
