"""Fixtures for the plugin's acceptance tests: a fake API server, kubeconfigs, dummy checks."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakeapi import FakeApiServer, FakeCluster, write_kubeconfig

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def project_ini() -> str:
    """The project's [tool.pytest.ini_options] (the shipped junit settings), minus testpaths."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = ["[tool.pytest.ini_options]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in data.items() if k != "testpaths"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer(FakeCluster()) as server:
        yield server


@pytest.fixture
def aic(pytester: pytest.Pytester, fake: FakeApiServer) -> pytest.Pytester:
    """A pytester dir with the project's ini settings and a kubeconfig for the fake server."""
    pytester.makefile(".toml", pyproject=project_ini())
    write_kubeconfig(pytester.path / "kubeconfig", fake.url,
                     token="sha256~SeCrEtTokenValue0123456789abcdef")
    return pytester


def base_args(pytester: pytest.Pytester, *extra: str) -> list[str]:
    return ["-p", "no:cacheprovider", "--kubeconfig", str(pytester.path / "kubeconfig"),
            "--aic-report-dir", str(pytester.path / "report"), *extra]
