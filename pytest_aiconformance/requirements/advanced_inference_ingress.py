"""advanced_inference_ingress: an InferencePool is Accepted (its references resolved) by a
parent Gateway, its endpoint picker Service has ready endpoints, and requests sent through an
HTTPRoute to the pool are answered by model servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_aiconformance.cluster.traffic import Answer, status_summary


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


def first_accepted_pool(pools: Iterable[dict[str, Any]]) -> tuple[dict[str, Any] | None,
                                                                  list[str]]:
    """The pool to test (the first Accepted one by namespace and name, or None) and why each
    pool is or is not Accepted, in the order listed."""
    results = [(p, *pool_accepted(p)) for p in pools]
    accepted = [p for p, ok, _ in results if ok]
    chosen = min(accepted, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]),
                 default=None)
    return chosen, [why for _, _, why in results]


def pool_selector(pool: Mapping[str, Any]) -> str:
    """The pool's model-server selector as a label selector string (``k=v,...``)."""
    selector = pool["spec"].get("selector", {})
    labels = selector.get("matchLabels", selector)
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def routes_to_pool(route: Mapping[str, Any], pool_name: str) -> bool:
    """Some rule of the HTTPRoute has the InferencePool as a backend."""
    return any(b.get("kind") == "InferencePool" and b.get("name") == pool_name
               for rule in route["spec"].get("rules", []) or []
               for b in rule.get("backendRefs", []) or [])


def route_path_prefix(route: Mapping[str, Any]) -> str:
    """The path the route matches (its last path match), ``/`` when it names none."""
    prefix = "/"
    for rule in route["spec"].get("rules", []) or []:
        for match in rule.get("matches", []) or []:
            prefix = match.get("path", {}).get("value", prefix)
    return str(prefix)


def served_by_model_servers(answers: Sequence[Answer], sent: int,
                            pool_name: str) -> tuple[bool, str]:
    """Every one of the ``sent`` requests got a 200 with an OpenAI model list (``"data"``)."""
    ok = [a for a in answers if a.status == 200 and '"data"' in a.body_text()]
    if len(ok) == len(answers) == sent:
        return True, f"{sent} requests through InferencePool {pool_name} answered 200 with " \
                     "a model list"
    return False, (f"requests through InferencePool {pool_name}: {status_summary(answers)}; "
                   "expected 200 with an OpenAI model list from a model server")
