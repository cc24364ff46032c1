"""The lab's kubeconfigs: a self-contained admin one for users, file-based ones for components."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from . import pki
from .statedir import StateDir

CONTEXT = "aic-lab"


def write_kubeconfigs(state: StateDir, server: str, paths: pki.PKIPaths) -> None:
    """The admin kubeconfig (data embedded, mode 0600) and one per client identity in ``etc``."""
    state.kubeconfig.write_text(yaml.safe_dump(_config(server, paths, "admin", embed=True)))
    state.kubeconfig.chmod(0o600)
    for who in pki.CLIENTS:
        target = state.etc / f"{who}.kubeconfig"
        target.write_text(yaml.safe_dump(_config(server, paths, who, embed=False)))


def _config(server: str, paths: pki.PKIPaths, who: str, embed: bool) -> dict[str, Any]:
    cert, key = paths.client(who)
    if embed:
        cluster = {"server": server, "certificate-authority-data": _b64(paths.ca_cert)}
        user = {
            "client-certificate-data": _b64(cert),
            "client-key-data": _b64(key),
        }
    else:
        cluster = {"server": server, "certificate-authority": str(paths.ca_cert)}
        user = {"client-certificate": str(cert), "client-key": str(key)}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": f"{CONTEXT}-{who}", "user": user}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": f"{CONTEXT}-{who}"},
            }
        ],
        "current-context": CONTEXT,
    }


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
