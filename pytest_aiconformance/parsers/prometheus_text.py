"""Prometheus text exposition format (what /metrics endpoints serve), parsed strictly.

The metrics checks decide on exact counter values and on the presence of device labels, so a
line the parser does not understand is an error with its line number, never a skipped sample.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import ParseError

_SOURCE = "exposition"
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_SPECIAL = {"nan": math.nan, "inf": math.inf, "infinity": math.inf}
_INT = re.compile(r"[+-]?\d+")
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


def _unescape(text: str, allowed: str, number: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(text) or text[i + 1] not in allowed:
            seq = text[i : i + 2]
            raise ParseError(f"invalid escape sequence {seq!r}", number, _SOURCE)
        out.append("\n" if text[i + 1] == "n" else text[i + 1])
        i += 2
    return "".join(out)


def _parse_labels(line: str, pos: int, number: int) -> tuple[dict[str, str], int]:
    """Parse from just after '{'; return labels and the index just after '}'."""
    labels: dict[str, str] = {}
    while True:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos >= len(line):
            raise ParseError("unterminated label set", number, _SOURCE)
        if line[pos] == "}":
            return labels, pos + 1
        match = _LABEL_NAME.match(line, pos)
        if not match:
            raise ParseError(f"bad label name at column {pos + 1}", number, _SOURCE)
        name = match.group(0)
        pos = match.end()
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos >= len(line) or line[pos] != "=":
            raise ParseError(f"expected '=' after label {name}", number, _SOURCE)
        pos += 1
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos >= len(line) or line[pos] != '"':
            raise ParseError(f"expected '\"' to open the value of label {name}", number, _SOURCE)
        pos += 1
        start = pos
        while pos < len(line) and line[pos] != '"':
            pos += 2 if line[pos] == "\\" else 1
        if pos >= len(line):
            raise ParseError(f"unterminated value of label {name}", number, _SOURCE)
        if name in labels:
            raise ParseError(f"duplicate label {name}", number, _SOURCE)
        labels[name] = _unescape(line[start:pos], '\\"n', number)
        pos += 1
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos < len(line) and line[pos] == ",":
            pos += 1
        elif pos < len(line) and line[pos] != "}":
            raise ParseError(f"expected ',' or '}}' after label {name}", number, _SOURCE)


def _parse_sample(line: str, number: int) -> Sample:
    match = _METRIC_NAME.match(line)
    if not match:
        raise ParseError(f"bad metric name in {line!r}", number, _SOURCE)
    name = match.group(0)
    pos = match.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        labels, pos = _parse_labels(line, pos + 1, number)
    rest = line[pos:]
    if rest and rest[0] not in " \t":
        raise ParseError(f"expected whitespace after {name}", number, _SOURCE)
    tokens = rest.split()
    if not tokens:
        raise ParseError(f"sample {name} has no value", number, _SOURCE)
    if len(tokens) > 2:
        raise ParseError(f"unexpected text after the timestamp: {tokens[2:]!r}", number, _SOURCE)
    try:
        value = parse_value(tokens[0])
    except ValueError:
        raise ParseError(f"bad value {tokens[0]!r} for {name}", number, _SOURCE) from None
    timestamp: int | None = None
    if len(tokens) == 2:
        if not _INT.fullmatch(tokens[1]):
            raise ParseError(f"bad timestamp {tokens[1]!r} for {name}", number, _SOURCE)
        timestamp = int(tokens[1])
        if not _INT64_MIN <= timestamp <= _INT64_MAX:
            raise ParseError(f"timestamp {tokens[1]} is out of int64 range", number, _SOURCE)
    return Sample(name, MappingProxyType(labels), value, timestamp, number)


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
        line = raw.strip(" \t\r")
        if not line:
            continue
        if line.startswith("#"):
            parts = line[1:].strip(" \t").split(None, 1)
            if not parts or parts[0] not in ("HELP", "TYPE"):
                continue
            args = parts[1] if len(parts) > 1 else ""
            if parts[0] == "HELP":
                name_doc = args.split(None, 1)
                if not name_doc or not _METRIC_NAME.fullmatch(name_doc[0]):
                    raise ParseError("HELP without a valid metric name", number, _SOURCE)
                if name_doc[0] in helps:
                    raise ParseError(f"second HELP for {name_doc[0]}", number, _SOURCE)
                doc = name_doc[1] if len(name_doc) > 1 else ""
                helps[name_doc[0]] = _unescape(doc, "\\n", number)
            else:
                name_type = args.split()
                if len(name_type) != 2 or not _METRIC_NAME.fullmatch(name_type[0]):
                    raise ParseError("TYPE needs exactly a metric name and a type", number, _SOURCE)
                name, kind = name_type
                if kind not in _TYPES:
                    raise ParseError(f"unknown metric type {kind!r}", number, _SOURCE)
                if name in types:
                    raise ParseError(f"second TYPE for {name}", number, _SOURCE)
                if name in seen_names:
                    raise ParseError(f"TYPE for {name} after its samples", number, _SOURCE)
                types[name] = kind
            continue
        sample = _parse_sample(line, number)
        seen_names.add(sample.name)
        samples.append(sample)
    return Exposition(tuple(samples), MappingProxyType(types), MappingProxyType(helps))
