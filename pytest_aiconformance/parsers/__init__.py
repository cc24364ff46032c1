"""Pure parsers for what the checks read back from clusters and containers.

Each takes text and returns frozen dataclasses, raising ParseError (a ValueError) with a line
number where one helps; none of them does I/O, so all are tested on recorded real outputs.
"""

from __future__ import annotations

from .errors import ParseError
from .http_response import Headers, HttpResponse, parse_http_response
from .nvidia_smi import (
    ListedGpu,
    ListedMig,
    MigDevice,
    NvidiaGpu,
    NvidiaSmiReport,
    listed_uuids,
    parse_nvidia_smi_list,
    parse_nvidia_smi_xml,
)
from .probe_output import ProbeOutput, parse_probe_output
from .prometheus_api import PrometheusAPIError, QueryResult, Series, parse_query_response
from .prometheus_text import Exposition, Sample, parse_exposition, parse_value

__all__ = [
    "Exposition",
    "Headers",
    "HttpResponse",
    "ListedGpu",
    "ListedMig",
    "MigDevice",
    "NvidiaGpu",
    "NvidiaSmiReport",
    "ParseError",
    "ProbeOutput",
    "PrometheusAPIError",
    "QueryResult",
    "Sample",
    "Series",
    "listed_uuids",
    "parse_exposition",
    "parse_http_response",
    "parse_nvidia_smi_list",
    "parse_nvidia_smi_xml",
    "parse_probe_output",
    "parse_query_response",
    "parse_value",
]
