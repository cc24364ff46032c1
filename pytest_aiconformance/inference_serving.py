"""Decisions of the 1.36 inference SHOULDs: InferencePool readiness and prefill/decode roles.

- advanced_inference_ingress: an InferencePool is Accepted (and its references resolved) by
  a parent Gateway, and its endpoint picker Service has ready endpoints.
- disaggregated_inference: prefill and decode run in separate pods (recognised by the role
  labels of llm-d and similar stacks), and one request id appears in the logs of both.
"""

from __future__ import annotations

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


def _conditions(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(status.get("conditions", []) or [])


def pool_parent_conditions(pool: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Per parent (Gateway) name: condition type -> status, from status.parents (v1) or
    status.parent (v1alpha2)."""
    status = pool.get("status", {}) or {}
    parents = status.get("parents") or status.get("parent") or []
    out: dict[str, dict[str, str]] = {}
    for parent in parents:
        ref = parent.get("parentRef", {}) or {}
        key = f"{ref.get('kind', 'Gateway')}/{ref.get('name', '?')}"
        out[key] = {str(c.get("type")): str(c.get("status")) for c in _conditions(parent)}
    return out


def pool_accepted(pool: Mapping[str, Any]) -> tuple[bool, str]:
    """Some parent has Accepted=True and no parent reports ResolvedRefs=False."""
    parents = pool_parent_conditions(pool)
    name = pool.get("metadata", {}).get("name", "?")
    if not parents:
        return False, f"InferencePool {name} has no parent status (no Gateway accepted it)"
    accepted = [p for p, c in parents.items() if c.get("Accepted") == "True"]
    if not accepted:
        return False, f"InferencePool {name}: no parent reports Accepted=True ({parents})"
    unresolved = [p for p in accepted if parents[p].get("ResolvedRefs") == "False"]
    if unresolved:
        return False, f"InferencePool {name}: ResolvedRefs=False on {', '.join(unresolved)}"
    return True, f"InferencePool {name} Accepted by {', '.join(accepted)}"


def endpoint_picker(pool: Mapping[str, Any]) -> tuple[str, int | None] | None:
    """(Service name, port) of the pool's endpoint picker (v1 endpointPickerRef, v1alpha2
    extensionRef)."""
    spec = pool.get("spec", {}) or {}
    ref = spec.get("endpointPickerRef") or spec.get("extensionRef")
    if not ref or not ref.get("name"):
        return None
    port = ref.get("port")
    number = port.get("number") if isinstance(port, Mapping) else ref.get("portNumber")
    return str(ref["name"]), int(number) if number else None


def ready_endpoints(slices: Sequence[Mapping[str, Any]]) -> int:
    """Ready endpoints across EndpointSlices."""
    return sum(1 for s in slices for e in s.get("endpoints", []) or []
               if (e.get("conditions") or {}).get("ready") is True)


@dataclass(frozen=True)
class Roles:
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
    return "\n".join([line for line in text.splitlines() if needle in line][:limit])
