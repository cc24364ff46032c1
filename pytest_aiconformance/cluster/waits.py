"""Watch-driven waits with explicit deadlines.

Every wait names what it expects. On timeout it says what it last saw and the recent
events of the objects involved, so a failure explains itself without a rerun. There are
no fixed sleeps: state changes arrive through watches, and a watch that ends early
(server timeout, 410 Gone, reset connection) is resumed from a fresh list.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_aiconformance.cluster.client import (
    PROGRESS_LOGGER,
    ApiError,
    Kube,
    TransientError,
    Unreachable,
)

Obj = dict[str, Any]


PROGRESS_EVERY_S = 30.0  # how often a long wait says what it is waiting for
# How long the cluster's controllers may lag an API server outage: client-go's reflectors relist
# with a backoff of up to 30 s jittered up to 2x, then requeued work items wait their own backoff.
OUTAGE_RECOVERY_S = 60.0
_progress = logging.getLogger(PROGRESS_LOGGER)


class WaitTimeout(AssertionError):
    """A condition did not hold within its deadline (the check fails with this message)."""


@dataclass(frozen=True)
class Target:
    """A set of objects to watch: one kind, optionally one namespace, name or selector."""

    api_version: str
    kind: str
    namespace: str | None = None
    name: str | None = None
    label_selector: str | None = None

    def describe(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        if self.name:
            return f"{self.kind} {self.name}{where}"
        sel = f" ({self.label_selector})" if self.label_selector else ""
        return f"{self.kind}s{sel}{where}"

    @property
    def field_selector(self) -> str | None:
        return f"metadata.name={self.name}" if self.name else None


def obj_key(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _list(kube: Kube, target: Target) -> tuple[dict[str, Obj], str]:
    result = kube.list(target.api_version, target.kind, target.namespace,
                       target.label_selector, target.field_selector)
    items = {obj_key(o): o for o in result.get("items", [])}
    return items, str(result.get("metadata", {}).get("resourceVersion", ""))


def watch_until(
    kube: Kube,
    target: Target,
    condition: Callable[[dict[str, Obj]], bool],
    *,
    timeout: float,
    expected: str,
    describe: Callable[[dict[str, Obj]], str] | None = None,
    invert: bool = False,
    give_up: Callable[[dict[str, Obj]], str | None] | None = None,
) -> dict[str, Obj]:
    """Watch the target set until condition(objects) is true; return the objects.

    With invert=True it is an observation window: the condition must stay false for the
    whole timeout; the objects are returned at the end, and WaitTimeout is raised the
    moment the condition becomes true (e.g. "a gang member got bound").

    An API server outage that touches the wait extends its deadline (Kube.outage_allowance):
    what the cluster does after an outage is late, not wrong, and the message says so.

    ``give_up(objects)`` names a state the condition can no longer follow (a pod that
    Failed): the wait ends at once with that reason instead of running out its deadline.
    """
    started = time.monotonic()
    deadline = started + timeout
    items, version = _list(kube, target)
    last_desc = describe or _default_describe
    next_report = started + PROGRESS_EVERY_S

    def satisfied() -> bool:
        return bool(condition(items))

    while True:
        hopeless = give_up(items) if give_up is not None and not invert else None
        if hopeless:
            raise WaitTimeout(
                f"gave up waiting for {expected} ({target.describe()}): {hopeless}"
                f"{recent_events_suffix(kube, target, items)}")
        if satisfied():
            if invert:
                raise WaitTimeout(
                    f"{expected}: violated while observing {target.describe()}; "
                    f"saw: {last_desc(items)}{recent_events_suffix(kube, target, items)}"
                )
            return items
        now = time.monotonic()
        allowance = 0.0 if invert else kube.outage_allowance(started, OUTAGE_RECOVERY_S)
        deadline = started + timeout + allowance
        remaining = deadline - now
        if now >= next_report and remaining > 0:
            _progress.info("waiting %.0fs/%.0fs for %s; now: %s", now - started,
                           timeout + allowance, expected, last_desc(items)[:160])
            next_report = now + PROGRESS_EVERY_S
        if remaining <= 0:
            if invert:
                return items
            granted = (f" (+{allowance:.0f}s granted for an API server outage)"
                       if allowance else "")
            raise WaitTimeout(
                f"timed out after {timeout:.0f}s{granted} waiting for {expected} "
                f"({target.describe()}); last seen: {last_desc(items)}"
                f"{recent_events_suffix(kube, target, items)}"
            )
        # The watch ends at the next report so that quiet waits still speak.
        window = min(remaining, next_report - now)
        try:
            for event in kube.watch(
                target.api_version, target.kind, target.namespace,
                label_selector=target.label_selector, field_selector=target.field_selector,
                resource_version=version, timeout_seconds=max(1, int(window + 0.999)),
            ):
                kind = event.get("type")
                obj = event.get("object", {})
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        items, version = _list(kube, target)
                    break
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    items.pop(obj_key(obj), None)
                else:
                    items[obj_key(obj)] = obj
                if satisfied() or time.monotonic() >= min(deadline, next_report):
                    break
            else:
                # The server closed the watch; relist to resume from a consistent state.
                items, version = _list(kube, target)
        except (TransientError, Unreachable):
            # The relist rides out an outage within the client's budget (Kube.request).
            items, version = _list(kube, target)
        except ApiError as exc:
            if exc.status != 410:
                raise
            items, version = _list(kube, target)


def failed_pod(objects: dict[str, Obj]) -> str | None:
    """A ``give_up`` for pod waits: the first pod in phase Failed, with the kubelet's reason
    (a pod the kubelet rejected at admission never runs)."""
    for key, pod in sorted(objects.items()):
        status = pod.get("status") or {}
        if status.get("phase") == "Failed":
            why = " ".join(str(status.get(k)) for k in ("reason", "message") if status.get(k))
            return f"pod {key.lstrip('/')} Failed" + (f": {why}" if why else "")
    return None


def wait_deleted(kube: Kube, target: Target, *, timeout: float) -> None:
    """Wait until no object of the target set remains."""
    watch_until(kube, target, lambda objs: not objs, timeout=timeout,
                expected=f"{target.describe()} to be deleted")


def condition_true(obj: Obj, cond_type: str) -> bool:
    return any(
        c.get("type") == cond_type and c.get("status") == "True"
        for c in obj.get("status", {}).get("conditions", []) or []
    )


def _default_describe(items: dict[str, Obj]) -> str:
    if not items:
        return "no object"
    parts = []
    for key, obj in sorted(items.items())[:10]:
        status = obj.get("status", {}) or {}
        state = status.get("phase") or ",".join(
            f"{c.get('type')}={c.get('status')}" for c in status.get("conditions", []) or []
        ) or "-"
        # A pod's node says where it was bound: the evidence of a gang that was split, even
        # before the scheduler's "Scheduled" event is recorded.
        node = (obj.get("spec") or {}).get("nodeName") if obj.get("kind", "Pod") == "Pod" \
            and "containers" in (obj.get("spec") or {}) else None
        parts.append(f"{key.lstrip('/')}: {state}" + (f" on {node}" if node else ""))
    more = f" (+{len(items) - 10} more)" if len(items) > 10 else ""
    return "; ".join(parts) + more


def recent_events(kube: Kube, namespace: str | None, names: set[str] | None = None,
                  limit: int = 8) -> list[str]:
    """Recent events, newest last, optionally only those about the named objects."""
    try:
        events = kube.items("v1", "Event", namespace)
    except (ApiError, TransientError):
        return []
    rows = []
    for ev in events:
        involved = ev.get("involvedObject", {})
        if names and involved.get("name") not in names:
            continue
        stamp = ev.get("lastTimestamp") or ev.get("eventTime") or ""
        rows.append((stamp, f"{ev.get('type', '')} {ev.get('reason', '')} "
                            f"{involved.get('kind', '')}/{involved.get('name', '')}: "
                            f"{(ev.get('message') or '').strip()}"))
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows[-limit:]]


def recent_events_suffix(kube: Kube, target: Target, items: dict[str, Obj]) -> str:
    names = {o.get("metadata", {}).get("name", "") for o in items.values()}
    if target.name:
        names.add(target.name)
    lines = recent_events(kube, target.namespace, names or None)
    return ("; recent events: " + " | ".join(lines)) if lines else ""


def wait_for_event(kube: Kube, namespace: str, reason: str, *, involved: str | None = None,
                   contains: str = "", timeout: float) -> list[Obj]:
    """Wait for an event (recorded asynchronously by controllers); return the matching ones."""

    def matching(objs: dict[str, Obj]) -> list[Obj]:
        return [e for e in objs.values() if e.get("reason") == reason
                and (involved is None or e.get("involvedObject", {}).get("name") == involved)
                and contains in (e.get("message") or "")]

    about = f" about {involved}" if involved else ""
    found = watch_until(kube, Target("v1", "Event", namespace),
                        lambda objs: bool(matching(objs)), timeout=timeout,
                        expected=f"a {reason} event{about}"
                                 + (f" saying {contains!r}" if contains else ""))
    return matching(found)
