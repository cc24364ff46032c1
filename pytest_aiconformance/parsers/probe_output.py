"""KEY=VALUE lines printed by fixtures/probes/*.sh, read back into typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ParseError

_SOURCE = "probe output"


@dataclass(frozen=True)
class ProbeOutput:
    """All values per key in order (a key such as DEVICE_FILE repeats)."""

    values: Mapping[str, tuple[str, ...]]

    def get(self, key: str) -> str | None:
        """The last value for ``key`` (scalars are printed once), or None."""
        found = self.values.get(key)
        return found[-1] if found else None

    def all(self, key: str) -> tuple[str, ...]:
        """Every value for ``key``, in printed order."""
        return self.values.get(key, ())

    def require(self, key: str) -> str:
        """The value for ``key``; ParseError when the probe did not print it."""
        value = self.get(key)
        if value is None:
            raise ParseError(f"missing key {key}", source=_SOURCE)
        return value

    def integer(self, key: str) -> int:
        """The value for ``key`` as an int (counts); ParseError when absent or not a number."""
        value = self.require(key)
        try:
            return int(value)
        except ValueError:
            raise ParseError(f"{key}={value!r} is not an integer", source=_SOURCE) from None

    def flag(self, key: str) -> bool:
        """True only for an explicit KEY=1."""
        return self.get(key) == "1"


def parse_probe_output(text: str) -> ProbeOutput:
    """Read probe output; a line without '=' is malformed (ParseError names the line)."""
    values: dict[str, list[str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key or not key.replace("_", "").isalnum():
            raise ParseError(f"not a KEY=VALUE line: {line!r}", number, _SOURCE)
        values.setdefault(key, []).append(value)
    return ProbeOutput({k: tuple(v) for k, v in values.items()})
