"""The layer contracts of the package, read from the source (every import, lazy ones too).

The README's layout section and each layer package's docstring say what a layer may import;
this test is what keeps that true. It runs in CI's unit stage.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE = "pytest_aiconformance"
LAB = "aiconformance_lab"


@dataclass(frozen=True)
class Rule:
    """Modules under ``source`` must not import anything under one of ``forbidden``."""

    source: str
    forbidden: tuple[str, ...]
    why: str


RULES = (
    Rule(f"{SUITE}.requirements", (f"{SUITE}.run", f"{SUITE}.reports", LAB),
         "requirements decide from what the cluster answered; the run calls them, not back"),
    Rule(f"{SUITE}.cluster", (f"{SUITE}.run", f"{SUITE}.requirements", f"{SUITE}.reports", LAB),
         "cluster access knows no requirement and no run"),
    Rule(f"{SUITE}.verdicts", (f"{SUITE}.run", f"{SUITE}.cluster", f"{SUITE}.requirements",
                               f"{SUITE}.reports", f"{SUITE}.validator", LAB),
         "the verdict model is the bottom layer"),
    Rule(f"{SUITE}.parsers", (f"{SUITE}.run", f"{SUITE}.cluster", f"{SUITE}.requirements",
                              f"{SUITE}.reports", f"{SUITE}.verdicts", f"{SUITE}.validator", LAB),
         "parsers are pure functions over text"),
    Rule(f"{SUITE}.reports", (f"{SUITE}.run", f"{SUITE}.cluster", f"{SUITE}.requirements", LAB),
         "reports render verdicts, they do not reach the cluster"),
    Rule(f"{SUITE}.validator", (f"{SUITE}.run", f"{SUITE}.cluster", f"{SUITE}.requirements",
                                f"{SUITE}.reports", LAB),
         "the validator reads a submission directory offline"),
    Rule(LAB, (SUITE,), "the lab is its own distribution and never imports the suite"),
)
# The one module of the suite that may import the lab (lazily, with --aic-lab).
LAB_IMPORTERS = frozenset({f"{SUITE}.run.lifecycle"})


def module_name(path: Path, top: Path) -> str:
    """Dotted name of ``path`` inside the package whose directory is ``top``."""
    parts = [top.name, *path.relative_to(top).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, name: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement, relative ones resolved."""
    found: list[tuple[int, str]] = []
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from pkg import mod" imports pkg.mod when mod is a module: count both.
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(tops: list[Path]) -> list[str]:
    """Every import that breaks a rule, as ``module:line imports X (why)``."""
    problems: list[str] = []
    for top in tops:
        for path in sorted(top.rglob("*.py")):
            name = module_name(path, top)
            for line, imported in imports_of(path.read_text(), name, path.name == "__init__.py"):
                for rule in RULES:
                    if not _under(name, rule.source):
                        continue
                    for bad in rule.forbidden:
                        if _under(imported, bad):
                            problems.append(f"{name}:{line} imports {imported} ({rule.why})")
                if (_under(imported, LAB) and _under(name, SUITE)
                        and name not in LAB_IMPORTERS):
                    problems.append(f"{name}:{line} imports {imported} (only "
                                    f"{', '.join(sorted(LAB_IMPORTERS))} may import the lab)")
    return sorted(set(problems))


def test_the_tree_keeps_its_layer_contracts() -> None:
    assert violations([ROOT / SUITE, ROOT / "lab" / LAB]) == []


def test_every_layer_of_the_rules_exists() -> None:
    for rule in RULES:
        parts = rule.source.split(".")
        base = ROOT / "lab" if parts[0] == LAB else ROOT
        assert (base.joinpath(*parts) / "__init__.py").is_file(), rule.source


def _tree(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return [tmp_path / SUITE, tmp_path / LAB]


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    tops = _tree(tmp_path, {
        f"{SUITE}/__init__.py": "",
        f"{SUITE}/run/__init__.py": "",
        f"{SUITE}/run/state.py": "X = 1\n",
        f"{SUITE}/cluster/__init__.py": "",
        f"{SUITE}/cluster/client.py": "from ..run import state\n",
        f"{SUITE}/requirements/__init__.py": "",
        f"{SUITE}/requirements/dra_support.py": (
            "def f() -> None:\n    from pytest_aiconformance.run.state import X\n"),
        f"{SUITE}/run/settings.py": "import aiconformance_lab.shape\n",
        f"{SUITE}/run/lifecycle.py": "import aiconformance_lab\n",
        f"{LAB}/__init__.py": "",
        f"{LAB}/nodeimages.py": "from pytest_aiconformance.cluster import images\n",
    })
    assert violations(tops) == [
        "aiconformance_lab.nodeimages:1 imports pytest_aiconformance.cluster (the lab is its own "
        "distribution and never imports the suite)",
        "aiconformance_lab.nodeimages:1 imports pytest_aiconformance.cluster.images (the lab is "
        "its own distribution and never imports the suite)",
        "pytest_aiconformance.cluster.client:1 imports pytest_aiconformance.run (cluster access "
        "knows no requirement and no run)",
        "pytest_aiconformance.cluster.client:1 imports pytest_aiconformance.run.state (cluster "
        "access knows no requirement and no run)",
        "pytest_aiconformance.requirements.dra_support:2 imports pytest_aiconformance.run.state "
        "(requirements decide from what the cluster answered; the run calls them, not back)",
        "pytest_aiconformance.requirements.dra_support:2 imports pytest_aiconformance.run.state.X "
        "(requirements decide from what the cluster answered; the run calls them, not back)",
        "pytest_aiconformance.run.settings:1 imports aiconformance_lab.shape (only "
        "pytest_aiconformance.run.lifecycle may import the lab)",
    ]


def test_allowed_imports_pass(tmp_path: Path) -> None:
    tops = _tree(tmp_path, {
        f"{SUITE}/__init__.py": "",
        f"{SUITE}/verdicts/__init__.py": "",
        f"{SUITE}/verdicts/model.py": "from . import outcomes\n",
        f"{SUITE}/requirements/__init__.py": "",
        f"{SUITE}/requirements/gpu_sharing.py": (
            "from pytest_aiconformance.cluster.profiles import AcceleratorProfile\n"
            "from ..verdicts import model\n"),
        f"{LAB}/__init__.py": "from .build import MODULES\n",
    })
    assert violations(tops) == []


def test_one_name_per_requirement() -> None:
    """Catalog id = check file = requirement module = unit-test file, for every id."""
    from pytest_aiconformance.verdicts.catalog import load_catalog

    ids = sorted(load_catalog().all_ids)
    pkg = ROOT / SUITE
    missing = [str(path.relative_to(ROOT)) for rid in ids for path in (
        pkg / "checks" / f"test_{rid}.py",
        pkg / "requirements" / f"{rid}.py",
        ROOT / "tests" / "unit" / "requirements" / f"test_{rid}.py",
    ) if not path.is_file()]
    assert missing == []
    # Nothing else lives there: a file under another name would be a second name.
    assert sorted(p.stem.removeprefix("test_") for p in (pkg / "checks").glob("test_*.py")) == ids
    assert sorted(p.stem for p in (pkg / "requirements").glob("*.py")
                  if p.stem != "__init__") == ids
    assert sorted(p.stem.removeprefix("test_")
                  for p in (ROOT / "tests" / "unit" / "requirements").glob("test_*.py")) == ids
