"""Prometheus text exposition format (what /metrics endpoints serve), parsed strictly.

The metrics checks decide on exact counter values and on the presence of device labels, so a
line the parser does not understand is an error with its line number, never a skipped sample.

Each line is read by prometheus_client's parser (names, label sets, escapes, values); this
module adds what the checks need and that parser does not keep or check. It feeds the parser
one line at a time, so every sample and error has its line number, and every sample keeps
the name the exporter wrote: read as one page, counter families drop ``_total`` from their
name and rename samples that lack it to ``<name>_total``, and timestamps become float
seconds. On top of the library, a line is rejected for what Prometheus's own parser rejects
but the library lets through: text after the timestamp (the library reads the first and last
word), a timestamp that is not an int64 of milliseconds, a value not separated from the
labels, an escape other than ``\\\\``, ``\\"``, ``\\n`` in a label value, and HELP/TYPE
repeated, of an unknown type, or a TYPE after its metric's samples.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from .errors import ParseError

_SOURCE = "exposition"
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_SPECIAL = {"nan": math.nan, "inf": math.inf, "infinity": math.inf}
_INT = re.compile(r"[+-]?\d+", re.ASCII)
_ESCAPE = re.compile(r"\\(.?)")
_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Sample:
    """One sample line: metric name, labels, value (NaN/±Inf allowed) and optional timestamp."""

    name: str
    labels: Mapping[str, str]
    value: float
    timestamp_ms: int | None
    line: int

    def label(self, name: str) -> str | None:
        return self.labels.get(name)


@dataclass(frozen=True)
class Exposition:
    """A parsed /metrics page: samples in order, plus TYPE and HELP per metric family."""

    samples: tuple[Sample, ...]
    types: Mapping[str, str]
    helps: Mapping[str, str]

    def names(self) -> tuple[str, ...]:
        """Distinct sample names in order of first appearance."""
        return tuple(dict.fromkeys(s.name for s in self.samples))

    def find(self, name: str, labels: Mapping[str, str] | None = None) -> tuple[Sample, ...]:
        """Samples called ``name`` whose labels include every pair in ``labels``."""
        want = labels or {}
        return tuple(
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in want.items())
        )

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The value of exactly one matching sample; LookupError when none or several match."""
        found = self.find(name, labels)
        if len(found) != 1:
            raise LookupError(f"{len(found)} samples of {name} match {dict(labels or {})}")
        return found[0].value


def parse_value(text: str) -> float:
    """A sample value as Go's strconv.ParseFloat reads it (NaN, +Inf, -Inf included)."""
    if _FLOAT.fullmatch(text):
        return float(text)
    sign = -1.0 if text.startswith("-") else 1.0
    special = _SPECIAL.get(text.lstrip("+-").lower())
    if special is None:
        raise ValueError(f"not a float: {text!r}")
    return special if math.isnan(special) else sign * special


def _read_line(line: str, number: int) -> list[Metric]:
    """The families prometheus_client reads from one line; any failure is a ParseError."""
    try:
        return list(text_string_to_metric_families(line))
    except Exception as exc:  # the library raises bare ValueErrors, OverflowError and the like
        detail = f": {exc}" if str(exc) else ""
        shown = line if len(line) <= 120 else line[:117] + "..."
        raise ParseError(f"cannot parse {shown!r}{detail}", number, _SOURCE) from None


def _parse_sample(line: str, number: int) -> Sample:
    families = _read_line(line, number)
    if len(families) != 1 or len(families[0].samples) != 1:  # a lone sample line never is
        raise ParseError(f"not one sample: {line!r}", number, _SOURCE)
    read = families[0].samples[0]
    name = read.name
    bad = next((m.group(0) for m in _ESCAPE.finditer(line)
                if m.group(1) not in ("\\", '"', "n")), None)
    if bad is not None:
        raise ParseError(f"invalid escape sequence {bad!r} in {name}", number, _SOURCE)
    # What follows the label set (or the bare name): whitespace, value, optional timestamp.
    # The last '}' ends the label set: neither a value nor a timestamp contains one.
    end = line.rfind("}")
    tail = line[end + 1 :] if end >= 0 else line[len(name) :]
    words = tail.split()
    if tail[:1] not in (" ", "\t"):
        raise ParseError(f"expected whitespace after {name}", number, _SOURCE)
    if len(words) > 2:
        raise ParseError(f"unexpected text after the timestamp: {words[2:]!r}", number, _SOURCE)
    try:
        value = parse_value(words[0])
        same = value == float(read.value) or (math.isnan(value) and math.isnan(read.value))
    except (ValueError, OverflowError):
        raise ParseError(f"bad value {words[0]!r} for {name}", number, _SOURCE) from None
    if not same:  # the label set did not end at the last '}': text follows the value
        raise ParseError(f"unexpected text after the value of {name}", number, _SOURCE)
    timestamp: int | None = None
    if len(words) == 2:
        if not _INT.fullmatch(words[1]):
            raise ParseError(f"bad timestamp {words[1]!r} for {name}", number, _SOURCE)
        timestamp = int(words[1])
        if not _INT64_MIN <= timestamp <= _INT64_MAX:
            raise ParseError(f"timestamp {words[1]} is out of int64 range", number, _SOURCE)
    return Sample(name, MappingProxyType(dict(read.labels)), value, timestamp, number)


def parse_exposition(text: str) -> Exposition:
    """Parse text format 0.0.4. HELP and TYPE are recorded per family; a TYPE after that
    family's first sample, a second TYPE or HELP, an unknown type, a broken label set, value
    or timestamp raises ParseError with the 1-based line number. Other comments are ignored.
    OpenMetrics extras (exemplars, # EOF) are not accepted: exporters serve 0.0.4 by default.
    """
    samples: list[Sample] = []
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    seen_names: set[str] = set()
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            sample = _parse_sample(line, number)
            seen_names.add(sample.name)
            samples.append(sample)
            continue
        words = line.split()
        if len(words) < 2 or words[0] != "#" or words[1] not in ("HELP", "TYPE"):
            continue  # a plain comment, as for the library
        if words[1] == "TYPE":  # checked here: the library knows OpenMetrics types too
            if len(words) != 4:
                raise ParseError("TYPE needs exactly a metric name and a type", number, _SOURCE)
            if words[3] not in _TYPES:
                raise ParseError(f"unknown metric type {words[3]!r}", number, _SOURCE)
        families = _read_line(line, number)
        if len(families) != 1:
            raise ParseError(f"{words[1]} without a metric name", number, _SOURCE)
        family = families[0]
        name = family.name
        if words[1] == "HELP":
            if name in helps:
                raise ParseError(f"second HELP for {name}", number, _SOURCE)
            helps[name] = family.documentation
            continue
        if words[3] == "counter" and words[2].strip('"').endswith("_total"):
            name += "_total"  # the library drops the suffix from a counter family's name
        if name in types:
            raise ParseError(f"second TYPE for {name}", number, _SOURCE)
        if name in seen_names:
            raise ParseError(f"TYPE for {name} after its samples", number, _SOURCE)
        types[name] = words[3]  # as written: the library calls untyped "unknown"
    return Exposition(tuple(samples), MappingProxyType(types), MappingProxyType(helps))
