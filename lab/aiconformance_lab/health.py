"""Probing a component: its health endpoint and, for operators, its webhook server."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from .kapi import client_tls_context
from .pki import PKIPaths
from .spec import ProcessSpec


def probe(spec: ProcessSpec, paths: PKIPaths) -> tuple[bool, str]:
    """Whether the component answers healthy, and a one-line detail for ``status``."""
    if spec.health_url.startswith("unix:"):
        return _probe_socket(Path(spec.health_url.removeprefix("unix:")))
    ctx: ssl.SSLContext | None = None
    if spec.health_tls == "admin":
        ctx = client_tls_context(paths.ca_cert, *paths.client("admin"))
    elif spec.health_tls == "insecure":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(spec.health_url, context=ctx, timeout=2) as resp:
            body = resp.read(200).decode(errors="replace").strip()
            detail = f"{spec.health_url} {resp.status} {body[:40]}"
            if resp.status != 200:
                return False, detail
    except urllib.error.HTTPError as err:
        return False, f"{spec.health_url} HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return False, f"{spec.health_url} {reason}"
    if spec.webhook_port:
        ok, webhook = _probe_webhook(spec.webhook_port, paths.file(spec.webhook_ca))
        return ok, f"{detail}; {webhook}"
    return True, detail


def _probe_webhook(port: int, ca_file: Path) -> tuple[bool, str]:
    """TLS handshake with a webhook server, verifying its certificate like the API server."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
            ctx.wrap_socket(sock, server_hostname="localhost"),
        ):
            return True, f"webhook https://localhost:{port} serving"
    except (OSError, ssl.SSLError) as err:
        return False, f"webhook https://localhost:{port} {err}"


def _probe_socket(path: Path) -> tuple[bool, str]:
    """A component without a health endpoint (NVIDIA's device plugin) is serving once its
    unix socket accepts a connection."""
    refused = socket_refusal(path)
    if refused is not None:
        return False, f"unix:{path} {refused}"
    return True, f"unix:{path} accepting"


def socket_refusal(path: Path) -> str | None:
    """Why a unix socket does not accept a connection, or None when something listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(path))
        except OSError as err:
            return str(err.strerror or err)
    return None
