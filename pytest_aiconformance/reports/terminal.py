"""The verdict table that closes a pytest run: one line per requirement, then totals."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_aiconformance.verdicts.model import RequirementVerdict
from pytest_aiconformance.verdicts.rules import must_not_implemented, summarize


def _cut(text: str, room: int) -> str:
    if room <= 0:
        return ""
    if len(text) <= room:
        return text
    if room == 1:
        return text[:1]
    return text[: room - 1].rstrip() + "\u2026"


def totals_line(verdicts: Sequence[RequirementVerdict]) -> str:
    """'11 requirements: 7 Implemented, ...; MUST not Implemented: a, b' (zero counts left out)."""
    counts = summarize(verdicts)
    parts = [f"{n} {status}" for status, n in counts.items() if n]
    failing = must_not_implemented(verdicts)
    tail = ("MUST not Implemented: " + ", ".join(v.id for v in failing)) if failing \
        else "every MUST Implemented"
    total = len(verdicts)
    noun = "requirement" if total == 1 else "requirements"
    return f"{total} {noun}: {', '.join(parts) or 'none'}; {tail}"


def format_verdict_table(verdicts: Sequence[RequirementVerdict], width: int = 80) -> list[str]:
    """Rows `id  level  status  reason` with the reason cut to fit `width`, then a totals line.

    Column widths follow the longest id and status, so the table is the same for the same
    verdicts whatever order pytest-xdist finished them in.
    """
    if not verdicts:
        return ["no requirement verdicts"]
    id_w = max(len("requirement"), *(len(v.id) for v in verdicts))
    level_w = len("SHOULD")
    status_w = max(len("status"), *(len(v.status.value) for v in verdicts))
    head = f"{'requirement':<{id_w}}  {'level':<{level_w}}  {'status':<{status_w}}  reason"
    lines = [_cut(head, width)]
    fixed = id_w + level_w + status_w + 6
    for v in verdicts:
        level = v.level + ("*" if v.conditional else "")
        row = f"{v.id:<{id_w}}  {level:<{level_w}}  {v.status.value:<{status_w}}  "
        lines.append((row + _cut(v.reason, width - fixed)).rstrip())
    if any(v.conditional for v in verdicts):
        lines.append("* conditional MUST: N/A is allowed when its condition does not hold")
    lines.append(totals_line(verdicts))
    return lines

