"""Pure parsers for what the checks read back from clusters and containers.

Each takes text and returns frozen dataclasses, raising ParseError (a ValueError) with a line
number where one helps; parse_key_values, for probe logs, returns lists per key and skips the
lines that are not KEY=VALUE instead. None of them does I/O, so all are tested on recorded
outputs.
"""

from __future__ import annotations

from .errors import ParseError
from .http_response import Headers, HttpResponse, parse_http_response
from .key_values import parse_key_values
from .prometheus_api import PrometheusAPIError, QueryResult, Series, parse_query_response
from .prometheus_text import Exposition, Sample, parse_exposition, parse_value

__all__ = [
    "Exposition",
    "Headers",
    "HttpResponse",
    "ParseError",
    "PrometheusAPIError",
    "QueryResult",
    "Sample",
    "Series",
    "parse_exposition",
    "parse_http_response",
    "parse_key_values",
    "parse_query_response",
    "parse_value",
]
