"""advanced_inference_ingress: an InferencePool is Accepted (its references resolved) by a
parent Gateway, and its endpoint picker Service has ready endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


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
