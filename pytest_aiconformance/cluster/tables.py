"""Render API objects the way `kubectl get` prints them, for evidence a user recognises."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

Obj = dict[str, Any]
Column = tuple[str, Callable[[Obj], Any]]


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Left-aligned columns separated by three spaces, like kubectl."""
    cells = [[str(h) for h in headers]] + [["<none>" if c in (None, "") else str(c) for c in r]
                                           for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    return "\n".join(lines)


def get_table(objs: Sequence[Obj], columns: Sequence[Column]) -> str:
    return table([[fn(o) for _, fn in columns] for o in objs], [h for h, _ in columns])


def name(o: Obj) -> str:
    return str(o.get("metadata", {}).get("name", ""))


def age(o: Obj) -> str:
    stamp = o.get("metadata", {}).get("creationTimestamp")
    if not stamp:
        return ""
    created = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    secs = int((dt.datetime.now(dt.UTC) - created).total_seconds())
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    return f"{secs // 3600}h"


def pod_ready_count(o: Obj) -> str:
    statuses = o.get("status", {}).get("containerStatuses", []) or []
    total = len(o.get("spec", {}).get("containers", []))
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{total}"


POD_WIDE: list[Column] = [
    ("NAME", name),
    ("READY", pod_ready_count),
    ("STATUS", lambda o: o.get("status", {}).get("phase", "")),
    ("NODE", lambda o: o.get("spec", {}).get("nodeName", "")),
    ("AGE", age),
]


def condition(o: Obj, cond_type: str) -> str:
    for c in o.get("status", {}).get("conditions", []) or []:
        if c.get("type") == cond_type:
            return str(c.get("status", ""))
    return "Unknown"


def events_table(events: Sequence[Obj]) -> str:
    rows = []
    for ev in sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime")
                                                 or "")):
        inv = ev.get("involvedObject", {})
        rows.append([ev.get("type", ""), ev.get("reason", ""),
                     f"{inv.get('kind', '').lower()}/{inv.get('name', '')}",
                     (ev.get("message") or "").strip().replace("\n", " ")])
    return table(rows, ["TYPE", "REASON", "OBJECT", "MESSAGE"])
