"""Bad input: one clear `ERROR: ...` line, non-zero exit, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from dummies import KUBE_CHECK
from fakeapi import FakeApiServer, write_kubeconfig

from conftest import base_args
from pytest_aiconformance.verdicts.catalog import load_catalog


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unreachable(p: pytest.Pytester, fake: FakeApiServer) -> list[str]:
    write_kubeconfig(p.path / "kubeconfig", f"http://127.0.0.1:{closed_port()}")
    return base_args(p)


def _missing(p: pytest.Pytester, fake: FakeApiServer) -> list[str]:
    return base_args(p, "--kubeconfig", str(p.path / "nope.yaml"))


def _malformed(p: pytest.Pytester, fake: FakeApiServer) -> list[str]:
    (p.path / "bad.yaml").write_text("apiVersion: v1\nclusters: [\n  - {name: x\n")
    return base_args(p, "--kubeconfig", str(p.path / "bad.yaml"))


def _context(p: pytest.Pytester, fake: FakeApiServer) -> list[str]:
    return base_args(p, "--context", "missing-ctx")


def _unauthorized(p: pytest.Pytester, fake: FakeApiServer) -> list[str]:
    fake.cluster.deny_all = 401
    return base_args(p)


def _forbidden(p: pytest.Pytester, fake: FakeApiServer) -> list[str]:
    fake.cluster.forbidden = {"/api/v1/nodes": "list nodes"}
    return base_args(p)


def _version(p: pytest.Pytester, fake: FakeApiServer) -> list[str]:
    return base_args(p, "--aic-version", "1.2")


def _accelerator(p: pytest.Pytester, fake: FakeApiServer) -> list[str]:
    return base_args(p, "--accelerator", "foo")


def _report_dir(p: pytest.Pytester, fake: FakeApiServer) -> list[str]:
    (p.path / "somefile").write_text("a regular file, so nothing can be created under it")
    return base_args(p, "--aic-report-dir", str(p.path / "somefile" / "sub"))


CASES: dict[str, tuple[Callable[[pytest.Pytester, FakeApiServer], list[str]], str]] = {
    "unreachable": (_unreachable, "ERROR: cannot reach API server http://127.0.0.1:*: "
                                  "connection refused"),
    "kubeconfig-missing": (_missing, "ERROR: kubeconfig not found: */nope.yaml"),
    "kubeconfig-malformed": (_malformed, "ERROR: kubeconfig */bad.yaml is not valid YAML: *"),
    "unknown-context": (_context, "ERROR: context 'missing-ctx' not found in *kubeconfig; "
                                  "available: fake"),
    "401": (_unauthorized, "ERROR: credentials rejected by http://127.0.0.1:* "
                           "(401 Unauthorized) while reading the server version"),
    "403": (_forbidden, 'ERROR: forbidden while listing nodes (needs: list nodes): '
                        'nodes is forbidden: User "system:anonymous" cannot list resource '
                        '"nodes" in API group "" at the cluster scope'),
    "version": (_version, "ERROR: --aic-version: unknown checklist version '1.2'; "
                          f"known: {', '.join(load_catalog().known_versions)}"),
    "accelerator": (_accelerator, "ERROR: --accelerator: unknown accelerator profile 'foo'; "
                                  "known: *nvidia*"),
    "report-dir": (_report_dir, "ERROR: --aic-report-dir: cannot write to */somefile/sub: *"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line(aic: pytest.Pytester, fake: FakeApiServer, case: str) -> None:
    make_args, expected = CASES[case]
    aic.makepyfile(test_check=KUBE_CHECK)
    result = aic.runpytest(*make_args(aic, fake))
    lines = result.stdout.lines + result.stderr.lines
    text = "\n".join(lines)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    errors = [line for line in lines if line.startswith("ERROR")]
    assert len(errors) == 1, text
    from fnmatch import fnmatch

    assert fnmatch(errors[0], expected), errors[0]
    assert "Traceback" not in text
    assert "INTERNALERROR" not in text
    assert "test_check" not in result.stdout.str().replace("test_check.py", "")
    assert not (aic.path / "report" / "verdicts.json").exists()
