"""KEY=VALUE lines the probe scripts (pytest_aiconformance/data/probes) print to the pod log.

A probe container's log can also hold lines that are not the probe's (a shell's own error
message, say), so only lines of the shape ``KEY=VALUE`` are read, where KEY is letters,
digits and ``_``; every other line is skipped. A key printed more than once (DEVICE_FILE,
UUID) keeps all its values in printed order; a value may itself contain ``=``.
"""

from __future__ import annotations


def parse_key_values(text: str) -> dict[str, list[str]]:
    """Every value per key, in the order printed; lines that are not KEY=VALUE are skipped."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and key.replace("_", "").isalnum():
            values.setdefault(key, []).append(value)
    return values
