"""pytest-xdist: -n 2 gives the same verdicts and PRODUCT.yaml as a sequential run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from dummies import CHECKS

from conftest import base_args


def verdicts(report: Path) -> list[dict[str, Any]]:
    data = json.loads((report / "verdicts.json").read_text())
    out = []
    for req in data["requirements"]:
        checks = [{k: v for k, v in c.items() if k != "duration"} for c in req["checks"]]
        out.append({**req, "checks": checks})
    return out


def product(report: Path) -> str:
    return re.sub(r"from run \w+", "from run RUN", (report / "PRODUCT.yaml").read_text())


@pytest.mark.parametrize("version_args", [["--aic-version", "1.35"], []])
def test_xdist_reports_identical(aic: pytest.Pytester, version_args: list[str]) -> None:
    aic.makepyfile(test_checks=CHECKS)
    seq = aic.runpytest_subprocess(*base_args(aic, *version_args))
    assert seq.ret == 1
    (aic.path / "report").rename(aic.path / "report-seq")
    par = aic.runpytest_subprocess(*base_args(aic, "-n", "2", *version_args))
    assert par.ret == 1, par.stdout.str() + par.stderr.str()
    assert verdicts(aic.path / "report") == verdicts(aic.path / "report-seq")
    assert product(aic.path / "report") == product(aic.path / "report-seq")
    par.stdout.fnmatch_lines(["*gpu_sharing*SHOULD*Not verified*"] if version_args else
                             ["*dra_support*MUST*Implemented*"])
