"""ai_inference: the decisions of its checks (checks/test_ai_inference.py), as pure functions.

The routing checks never trust a status code alone. A response reached a backend when it
carries the header only the backend sets (http-echo's ``X-App-Name``) and that backend's own
body; a rejection is proven to come from the data plane when that header is absent. The
answers come from the client pod of cluster/traffic.py; only this requirement judges them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_aiconformance.cluster.tables import name
from pytest_aiconformance.cluster.traffic import BACKEND_HEADER, BACKEND_HEADER_VALUE, Answer
from pytest_aiconformance.cluster.waits import condition_true


def first_accepted_class(classes: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The GatewayClass to use when none is named: the first Accepted one by name (the
    watch that found it guarantees there is one)."""
    return sorted((o for o in classes if condition_true(o, "Accepted")), key=name)[0]


def route_accepted(obj: Mapping[str, Any]) -> bool:
    """Some parent Gateway reports the HTTPRoute Accepted with its references resolved."""
    for parent in obj.get("status", {}).get("parents", []) or []:
        conds = {c.get("type"): c.get("status") for c in parent.get("conditions", []) or []}
        if conds.get("Accepted") == "True" and conds.get("ResolvedRefs") == "True":
            return True
    return False


def route_conditions(obj: Mapping[str, Any]) -> str:
    """The HTTPRoute's conditions per parent, for a wait's message and the evidence."""
    parts = []
    for parent in obj.get("status", {}).get("parents", []) or []:
        conds = ", ".join(f"{c.get('type')}={c.get('status')}"
                          for c in parent.get("conditions", []) or [])
        parts.append(f"{parent.get('parentRef', {}).get('name')}: {conds}")
    return "; ".join(parts) or "no parent status"


@dataclass(frozen=True)
class Verdict:
    """A decision with the reason a reviewer reads (ok or not)."""

    ok: bool
    reason: str
    details: Mapping[str, int] = field(default_factory=dict)


def routed_to(answers: Sequence[Answer], body: str) -> Verdict:
    """Every answer came from the backend whose body is ``body`` (status 200, backend header)."""
    if not answers:
        return Verdict(False, "no request of this case was answered")
    for a in answers:
        if a.response is None:
            return Verdict(False, f"request {a.index}: no response ({a.error})")
        if a.status != 200:
            return Verdict(False, f"request {a.index}: HTTP {a.status}, expected 200")
        if not a.from_backend:
            return Verdict(False, f"request {a.index}: no {BACKEND_HEADER}: "
                                  f"{BACKEND_HEADER_VALUE} header, so no backend answered")
        if a.body_text() != body:
            return Verdict(False, f"request {a.index}: answered by backend {a.body_text()!r}, "
                                  f"expected {body!r}")
    return Verdict(True, f"all {len(answers)} requests answered 200 by backend {body!r}")


def rejected_by_data_plane(answers: Sequence[Answer]) -> Verdict:
    """Every answer is a 4xx produced by the proxy itself: no backend-only header on it.

    A curl error (nothing answered) is not a rejection: it proves nothing about routing.
    """
    if not answers:
        return Verdict(False, "no request of this case was answered")
    for a in answers:
        if a.response is None:
            return Verdict(False, f"request {a.index}: no HTTP response ({a.error}); a "
                                  "rejection must be an answer from the data plane")
        if a.from_backend:
            return Verdict(False, f"request {a.index}: HTTP {a.status} carries "
                                  f"{BACKEND_HEADER}: {BACKEND_HEADER_VALUE}: a backend "
                                  "answered a request that no route matches")
        if a.status is None or not 400 <= a.status < 500:
            return Verdict(False, f"request {a.index}: HTTP {a.status}, expected a 4xx "
                                  "rejection")
    statuses = sorted({a.status for a in answers if a.status is not None})
    return Verdict(True, f"all {len(answers)} unmatched requests rejected with HTTP "
                         f"{', '.join(map(str, statuses))} and no {BACKEND_HEADER} header")


def count_backends(answers: Sequence[Answer], bodies: Sequence[str]) -> dict[str, int]:
    """Answers per backend body; anything else (errors, other bodies) under ``"other"``."""
    counts = {b: 0 for b in bodies}
    counts["other"] = 0
    for a in answers:
        body = a.body_text()
        if a.response is not None and a.status == 200 and a.from_backend and body in counts:
            counts[body] += 1
        else:
            counts["other"] += 1
    return counts


def split_within_tolerance(counts: Mapping[str, int], weights: Mapping[str, int], n: int,
                           tol: float) -> Verdict:
    """Each backend's share of ``n`` requests is within ``tol`` (absolute) of its weight share.

    Every one of the ``n`` requests must have reached one of the weighted backends, and each
    backend must have received at least one (a split that sends all to one is no split).
    """
    if n <= 0:
        return Verdict(False, "no request was sent")
    total_weight = sum(weights.values())
    if total_weight <= 0 or len(weights) < 2:
        return Verdict(False, "a split needs two backends with positive weights")
    landed = sum(counts.get(b, 0) for b in weights)
    other = counts.get("other", 0)
    if landed != n or other:
        return Verdict(False, f"{landed} of {n} requests reached a weighted backend "
                              f"({other} answered otherwise)", dict(counts))
    parts = []
    ok = True
    for backend, weight in weights.items():
        got = counts.get(backend, 0)
        share = got / n
        want = weight / total_weight
        parts.append(f"{backend}: {got}/{n} = {share:.2f} (weight share {want:.2f})")
        if got == 0 or abs(share - want) > tol:
            ok = False
    word = "within" if ok else "outside"
    return Verdict(ok, f"split {word} ±{tol:.2f}: " + "; ".join(parts), dict(counts))


def binomial_tolerance(n: int, weights: Mapping[str, int], sigmas: float = 4.0) -> float:
    """A tolerance of ``sigmas`` standard deviations of the largest-variance share, rounded up
    to whole percent: a correct random split fails it with negligible probability."""
    total = sum(weights.values())
    worst = max((w / total) * (1 - w / total) for w in weights.values())
    return math.ceil(100 * sigmas * math.sqrt(worst / n)) / 100
