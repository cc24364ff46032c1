"""disaggregated_inference: prefill and decode run in separate pods (recognised by the
role labels of llm-d and similar stacks), and one request id appears in the logs of both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# (label key, prefill value, decode value) as set by known disaggregated-serving stacks.
ROLE_LABELS: tuple[tuple[str, str, str], ...] = (
    ("llm-d.ai/role", "prefill", "decode"),
    ("app.kubernetes.io/component", "prefill", "decode"),
    ("inference.networking.k8s.io/role", "prefill", "decode"),
    ("role", "prefill", "decode"),
)


@dataclass(frozen=True)
class Roles:
    """The prefill and decode pods found, and the role label that told them apart."""

    label: str
    prefill: tuple[str, ...]
    decode: tuple[str, ...]


def classify_roles(pods: Sequence[Mapping[str, Any]]) -> Roles | None:
    """Prefill and decode pods by the first role label convention that finds both."""
    for key, pre, dec in ROLE_LABELS:
        prefill = sorted(str(p["metadata"]["name"]) for p in pods
                         if (p["metadata"].get("labels") or {}).get(key) == pre)
        decode = sorted(str(p["metadata"]["name"]) for p in pods
                        if (p["metadata"].get("labels") or {}).get(key) == dec)
        if prefill and decode:
            return Roles(key, tuple(prefill), tuple(decode))
    return None


def separate_pods(roles: Roles) -> tuple[bool, str]:
    """No pod is both prefill and decode."""
    overlap = set(roles.prefill) & set(roles.decode)
    if overlap:
        return False, f"pods {sorted(overlap)} are both prefill and decode"
    return True, (f"prefill pods {', '.join(roles.prefill)}; decode pods "
                  f"{', '.join(roles.decode)} (label {roles.label})")


def request_id_in_both(prefill_logs: Mapping[str, str], decode_logs: Mapping[str, str],
                       request_id: str) -> tuple[bool, str]:
    """The request id appears in some prefill pod's log and in some decode pod's log."""
    if len(request_id) < 8:
        return False, f"request id {request_id!r} is too short to be unique"
    pre = sorted(p for p, text in prefill_logs.items() if request_id in text)
    dec = sorted(p for p, text in decode_logs.items() if request_id in text)
    if pre and dec:
        return True, f"request id {request_id} logged by prefill {', '.join(pre)} and " \
                     f"decode {', '.join(dec)}"
    missing = [r for r, hits in (("prefill", pre), ("decode", dec)) if not hits]
    return False, f"request id {request_id} not found in any {' or '.join(missing)} pod log"


def log_lines_with(text: str, needle: str, limit: int = 3) -> str:
    """The first ``limit`` log lines that mention ``needle``, for evidence."""
    return "\n".join([line for line in text.splitlines() if needle in line][:limit])


def service_for(services: Sequence[dict[str, Any]],
                pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first Service whose (non-empty) selector matches the pod's labels: where a request
    to the decode pods can be sent."""
    labels = pod["metadata"].get("labels", {})
    for svc in services:
        sel = svc["spec"].get("selector") or {}
        if sel and all(labels.get(k) == v for k, v in sel.items()):
            return svc
    return None


def first_model(models_body: str) -> str:
    """The first model id of an OpenAI-compatible ``/v1/models`` answer."""
    return str(json.loads(models_body)["data"][0]["id"])


def completion_body(model: str) -> str:
    """A short completion request for ``model`` (few tokens: only its request id matters)."""
    return json.dumps({"model": model, "prompt": "Say hello.", "max_tokens": 8})
