"""Prometheus HTTP API query responses (/api/v1/query and /api/v1/query_range).

A query error must surface as an exception carrying the server's own error text, so a broken
query can never read as "no data" or as a zero that a check then compares against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import ParseError
from .prometheus_text import parse_value

_SOURCE = "prometheus API response"
_RESULT_TYPES = frozenset({"vector", "matrix", "scalar", "string"})


class PrometheusAPIError(Exception):
    """The server answered with an error; the message is its errorType and error text."""

    def __init__(self, error_type: str, error: str, http_status: int | None = None) -> None:
        status = f" (HTTP {http_status})" if http_status is not None else ""
        super().__init__(f"Prometheus query failed{status}: {error_type}: {error}")
        self.error_type = error_type
        self.error = error
        self.http_status = http_status


@dataclass(frozen=True)
class Series:
    """One series: its labels and (unix time, value) samples (one for a vector)."""

    metric: Mapping[str, str]
    samples: tuple[tuple[float, float], ...]

    @property
    def name(self) -> str | None:
        return self.metric.get("__name__")

    @property
    def value(self) -> float:
        """The latest sample value."""
        return self.samples[-1][1]


@dataclass(frozen=True)
class QueryResult:
    """A successful query: vector / matrix series, or a scalar / string, plus warnings."""

    result_type: str
    series: tuple[Series, ...]
    scalar: tuple[float, float] | None
    string: tuple[float, str] | None
    warnings: tuple[str, ...]

    def find(self, labels: Mapping[str, str]) -> tuple[Series, ...]:
        """Series whose labels include every pair in ``labels``."""
        return tuple(s for s in self.series if all(s.metric.get(k) == v for k, v in labels.items()))


def _sample(raw: Any, where: str) -> tuple[float, float]:
    if not isinstance(raw, list) or len(raw) != 2 or not isinstance(raw[1], str):
        raise ParseError(f'{where}: expected [<time>, "<value>"]', source=_SOURCE)
    if isinstance(raw[0], bool) or not isinstance(raw[0], int | float):
        raise ParseError(f"{where}: timestamp is not a number", source=_SOURCE)
    try:
        return float(raw[0]), parse_value(raw[1])
    except ValueError:
        raise ParseError(f"{where}: bad sample value {raw[1]!r}", source=_SOURCE) from None


def _metric(raw: Any, where: str) -> Mapping[str, str]:
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ParseError(f"{where}: metric is not a string map", source=_SOURCE)
    return MappingProxyType(dict(raw))


def _series(result_type: str, raw: Any) -> tuple[Series, ...]:
    if not isinstance(raw, list):
        raise ParseError(f"{result_type} result is not a list", source=_SOURCE)
    out: list[Series] = []
    for i, item in enumerate(raw):
        where = f"result[{i}]"
        if not isinstance(item, dict):
            raise ParseError(f"{where}: not an object", source=_SOURCE)
        metric = _metric(item.get("metric"), where)
        if result_type == "vector":
            if "value" not in item:
                raise ParseError(
                    f"{where}: no 'value' (native histograms are not supported)", source=_SOURCE
                )
            samples: tuple[tuple[float, float], ...] = (_sample(item["value"], where),)
        else:
            values = item.get("values")
            if not isinstance(values, list):
                raise ParseError(f"{where}: no 'values' list", source=_SOURCE)
            samples = tuple(_sample(v, f"{where}.values[{j}]") for j, v in enumerate(values))
        out.append(Series(metric, samples))
    return tuple(out)


def parse_query_response(
    body: str | bytes | Mapping[str, Any], http_status: int | None = None
) -> QueryResult:
    """Parse a query response body. ``status: error`` raises PrometheusAPIError with the
    server's text; a non-JSON body raises PrometheusAPIError when ``http_status`` says the
    request failed (a proxy's error page) and ParseError otherwise.
    """
    if isinstance(body, Mapping):
        doc: Any = body
    else:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            if http_status is not None and http_status >= 400:
                raise PrometheusAPIError("http", text.strip()[:500], http_status) from None
            raise ParseError(f"not JSON: {exc}", exc.lineno, _SOURCE) from None
    if not isinstance(doc, Mapping):
        raise ParseError("top level is not an object", source=_SOURCE)
    status = doc.get("status")
    if status == "error":
        raise PrometheusAPIError(
            str(doc.get("errorType", "unknown")), str(doc.get("error", "")), http_status
        )
    if status != "success":
        raise ParseError(f"status is {status!r}, not 'success' or 'error'", source=_SOURCE)
    data = doc.get("data")
    if not isinstance(data, Mapping):
        raise ParseError("no 'data' object", source=_SOURCE)
    result_type = data.get("resultType")
    if result_type not in _RESULT_TYPES:
        raise ParseError(f"unknown resultType {result_type!r}", source=_SOURCE)
    warnings_raw = doc.get("warnings", [])
    if not isinstance(warnings_raw, list):
        raise ParseError("'warnings' is not a list", source=_SOURCE)
    warnings = tuple(str(w) for w in warnings_raw)
    result = data.get("result")
    if result_type in ("vector", "matrix"):
        kind = str(result_type)
        return QueryResult(kind, _series(kind, result), None, None, warnings)
    if result_type == "scalar":
        return QueryResult("scalar", (), _sample(result, "scalar"), None, warnings)
    if not isinstance(result, list) or len(result) != 2 or not isinstance(result[1], str):
        raise ParseError('string result is not [<time>, "<string>"]', source=_SOURCE)
    if isinstance(result[0], bool) or not isinstance(result[0], int | float):
        raise ParseError("string result timestamp is not a number", source=_SOURCE)
    return QueryResult("string", (), None, (float(result[0]), result[1]), warnings)
