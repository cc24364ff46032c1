"""Parsers on recorded real outputs (see data/recorded/README.md), plus inputs that must fail.

Inline strings marked "synthetic" are constructed on purpose to break one rule each.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.parsers import (
    ParseError,
    PrometheusAPIError,
    parse_exposition,
    parse_http_response,
    parse_key_values,
    parse_query_response,
    parse_value,
)

REC = Path(__file__).resolve().parent / "data" / "recorded"


def rec(path: str) -> str:
    return (REC / path).read_text()


# --- Prometheus exposition -----------------------------------------------------------------


def test_exposition_reference_example():
    expo = parse_exposition(rec("prometheus/exposition-formats-example.txt"))
    assert expo.types["http_requests_total"] == "counter"
    assert expo.types["http_request_duration_seconds"] == "histogram"
    assert expo.helps["http_requests_total"] == "The total number of HTTP requests."
    post_400 = expo.find("http_requests_total", {"code": "400"})
    assert [(s.value, s.timestamp_ms, s.line) for s in post_400] == [(3.0, 1395066363000, 4)]
    assert expo.value("http_requests_total", {"method": "post", "code": "200"}) == 1027
    [msdos] = expo.find("msdos_file_access_time_seconds")
    assert msdos.labels == {"path": "C:\\DIR\\FILE.TXT", "error": 'Cannot find file:\n"FILE.TXT"'}
    assert msdos.value == 1.458255915e9
    [weird] = expo.find("something_weird")
    assert weird.value == math.inf
    assert weird.timestamp_ms == -3982045
    assert expo.value("metric_without_timestamp_and_labels") == 12.47
    assert expo.value("http_request_duration_seconds_bucket", {"le": "+Inf"}) == 144320
    assert expo.value("telemetry_requests_metrics_latency_microseconds_sum") == 1.7560473e7
    assert len(expo.samples) == 20  # 2 + 1 + 1 + 1 + histogram 8 + summary 7
    assert expo.names()[0] == "http_requests_total"


def test_exposition_dcgm_l40s_device_labels_and_names():
    expo = parse_exposition(rec("dcgm/l40s-dcgm-exporter-metrics.txt"))
    metrics = get_profile("nvidia").metrics
    assert metrics is not None
    [util] = expo.find(metrics.utilization[0])
    assert util.value == 0.0
    assert util.labels["UUID"] == "GPU-5b4e07f6-3a86-4340-039d-25f2a83cdc43"
    assert util.labels["gpu"] == "0"
    assert util.labels[metrics.host_label or ""] == "gpu1-wl8sg"
    assert util.labels[metrics.driver_version_label or ""] == "595.58.03"
    assert util.labels[metrics.model_label or ""] == "NVIDIA L40S"
    assert all(label in util.labels for label in metrics.device_labels)
    assert expo.value(metrics.memory_free[0]) == 45459
    assert expo.value(metrics.memory_used[0]) == 0
    assert expo.value(metrics.temperature[0]) == 32
    assert expo.value(metrics.power[0]) == 35.686
    assert expo.value("DCGM_FI_PROF_DRAM_ACTIVE") == 0.000131
    assert expo.types["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] == "counter"
    # Counter samples keep the exporter's name (prometheus_client, reading a whole page,
    # renames them to ..._total).
    assert expo.value("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION") == 5551899580
    assert len(expo.samples) == 23
    # The L40S has no NVLink: interconnect metrics are absent, which the check reports as SHOULD.
    assert not any(expo.find(name) for name in metrics.interconnect)


def test_exposition_dcgm_readme_space_after_comma():
    expo = parse_exposition(rec("dcgm/dcgm-exporter-readme-excerpt.txt"))
    [sm] = expo.find("DCGM_FI_DEV_SM_CLOCK", {"UUID": "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"})
    assert sm.value == 139
    assert sm.labels == {
        "gpu": "0",
        "UUID": "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52",
        "container": "",
        "namespace": "",
        "pod": "",
    }
    # DCGM's int64 "blank" sentinel (no reading), exact only as a float
    assert expo.value("DCGM_FI_DEV_MEMORY_TEMP") == float(9223372036854775794)


def test_exposition_nan_and_trailing_comma():
    # synthetic: NaN value, trailing comma in the label set, CRLF line ending
    expo = parse_exposition('x{a="1",} NaN\r\ny -Inf 5\n')
    assert math.isnan(expo.value("x"))
    assert expo.find("x")[0].labels == {"a": "1"}
    assert expo.value("y") == -math.inf


def test_exposition_names_and_types_as_written():
    # synthetic: counters with and without _total, untyped, and a quoted (UTF-8) name, which
    # prometheus_client reads and the hand-written parser before it rejected
    expo = parse_exposition(
        "# TYPE a_total counter\n# TYPE b counter\n# TYPE u untyped\n"
        'a_total 1\nb 2\nu 3\n{"c.d", e="f"} 4 7\n'
    )
    assert dict(expo.types) == {"a_total": "counter", "b": "counter", "u": "untyped"}
    assert [(s.name, dict(s.labels), s.value, s.timestamp_ms, s.line) for s in expo.samples] == [
        ("a_total", {}, 1, None, 4),
        ("b", {}, 2, None, 5),
        ("u", {}, 3, None, 6),
        ("c.d", {"e": "f"}, 4, 7, 7),
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [  # all synthetic, each breaking one rule on a known line
        # Sample lines prometheus_client itself rejects: our message names the line, the
        # library's reason follows (its wording is not ours to pin).
        ("ok 1\nbroken_line_without_value\n", 2, "cannot parse 'broken_line_without_value'"),
        ('ok 1\nm{a="1" 2\n', 2, r"cannot parse 'm\{a=\"1\" 2'"),
        ('m{a="unterminated} 1\n', 1, r"cannot parse 'm\{a=\"unterminated\} 1'"),
        ('m{a="1",a="2"} 1\n', 1, r"cannot parse 'm\{a=\"1\",a=\"2\"\} 1'"),  # duplicate label
        ("m one\n", 1, "cannot parse 'm one'"),
        ("m 1_000\n", 1, "cannot parse 'm 1_000'"),
        ("9m 1\n", 1, "cannot parse '9m 1'"),
        ('m{9a="1"} 1\n', 1, r"cannot parse 'm\{9a=\"1\"\} 1'"),  # bad label name
        ("# HELP 9m x\n", 1, "cannot parse '# HELP 9m x'"),
        # What the library lets through and Prometheus's own parser rejects
        ('m{a="\\t"} 1\n', 1, "invalid escape sequence"),
        ("m 1 12.5\n", 1, "bad timestamp '12.5'"),
        ("m 1 2 3\n", 1, "unexpected text after the timestamp"),  # library: value 1, time 3
        ('m{a="1"} 1 # {x="y"} 2\n', 1, "unexpected text after the value"),  # an exemplar
        ('m{a="1"}1\n', 1, "expected whitespace after m"),
        ("m \u0661\n", 1, "bad value"),  # ARABIC-INDIC DIGIT ONE: Python's float reads it
        ("# TYPE m countr\nm 1\n", 1, "unknown metric type 'countr'"),
        ("# TYPE m unknown\n", 1, "unknown metric type 'unknown'"),  # OpenMetrics only
        ("# TYPE m\n", 1, "TYPE needs exactly a metric name and a type"),
        ("# HELP\n", 1, "HELP without a metric name"),
        ("m 1\n# TYPE m gauge\n", 2, "TYPE for m after its samples"),
        ("# TYPE m gauge\n# TYPE m gauge\n", 2, "second TYPE for m"),
        ("# HELP m a\n# HELP m b\n", 2, "second HELP for m"),
    ],
)
def test_exposition_negative(text, line, message):
    with pytest.raises(ParseError, match=message) as err:
        parse_exposition(text)
    assert err.value.line == line
    assert f"exposition line {line}:" in str(err.value)


def test_exposition_value_lookup_errors():
    expo = parse_exposition(rec("prometheus/exposition-formats-example.txt"))
    with pytest.raises(LookupError, match="2 samples of http_requests_total"):
        expo.value("http_requests_total")
    with pytest.raises(LookupError, match="0 samples"):
        expo.value("absent_metric")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1.0),
        ("-2.5e3", -2500.0),
        ("+Inf", math.inf),
        ("-Inf", -math.inf),
        ("Inf", math.inf),
        (".5", 0.5),
    ],
)
def test_parse_value(text, expected):
    assert parse_value(text) == expected


# --- Prometheus HTTP API -------------------------------------------------------------------


def test_api_instant_vector():
    result = parse_query_response(rec("prometheus/api-query-instant-vector.json"))
    assert result.result_type == "vector"
    assert [(s.metric["job"], s.samples) for s in result.series] == [
        ("prometheus", ((1435781451.781, 1.0),)),
        ("node", ((1435781451.781, 0.0),)),
    ]
    [node] = result.find({"instance": "localhost:9100"})
    assert node.name == "up"
    assert node.value == 0.0
    assert result.warnings == ()


def test_api_range_matrix():
    result = parse_query_response(rec("prometheus/api-query-range-matrix.json").encode())
    assert result.result_type == "matrix"
    [node] = result.find({"job": "node"})
    assert [v for _, v in node.samples] == [0.0, 0.0, 1.0]
    assert node.samples[0][0] == 1435781430.781
    assert node.value == 1.0


def test_api_error_carries_the_server_text():
    body = rec("prometheus/api-error-empty-query.json")
    with pytest.raises(PrometheusAPIError) as err:
        parse_query_response(body, http_status=400)
    assert err.value.error_type == "bad_data"
    assert err.value.error == (
        'invalid parameter "query": 1:1: parse error: no expression found in input'
    )
    assert str(err.value) == (
        'Prometheus query failed (HTTP 400): bad_data: invalid parameter "query": 1:1: '
        "parse error: no expression found in input"
    )


def test_api_scalar_string_and_warnings():
    # synthetic, in the documented shapes
    scalar = parse_query_response(
        {
            "status": "success",
            "data": {"resultType": "scalar", "result": [1, "NaN"]},
            "warnings": ["partial"],
        }
    )
    assert scalar.scalar is not None
    assert math.isnan(scalar.scalar[1])
    assert scalar.warnings == ("partial",)
    string = parse_query_response(
        json.dumps({"status": "success", "data": {"resultType": "string", "result": [2, "x"]}})
    )
    assert string.string == (2.0, "x")


@pytest.mark.parametrize(
    ("body", "status", "error", "message"),
    [  # synthetic
        ("<html>502 Bad Gateway</html>", 502, PrometheusAPIError, "HTTP 502.*502 Bad Gateway"),
        ("not json", None, ParseError, "not JSON"),
        ('{"status":"weird"}', None, ParseError, "status is 'weird'"),
        ('{"status":"success"}', None, ParseError, "no 'data' object"),
        (
            '{"status":"success","data":{"resultType":"table","result":[]}}',
            None,
            ParseError,
            "unknown resultType 'table'",
        ),
        (
            '{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}',
            None,
            ParseError,
            "no 'value'",
        ),
        (
            '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},'
            '"value":[1,2]}]}}',
            None,
            ParseError,
            "expected",
        ),
        (
            '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},'
            '"value":[1,"two"]}]}}',
            None,
            ParseError,
            "bad sample value 'two'",
        ),
        (
            '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":1},'
            '"values":[]}]}}',
            None,
            ParseError,
            "metric is not a string map",
        ),
    ],
)
def test_api_negative(body, status, error, message):
    with pytest.raises(error, match=message):
        parse_query_response(body, http_status=status)


# --- HTTP responses (curl -si) -------------------------------------------------------------


def test_http_backend_response_has_the_backend_header():
    resp = parse_http_response(rec("http/http-echo-alb-200.txt"))
    assert (resp.http_version, resp.status, resp.reason) == ("1.1", 200, "OK")
    assert resp.headers.get("x-app-name") == "http-echo"
    assert resp.headers.get("X-APP-VERSION") == "0.2.3"
    assert "X-App-Name" in resp.headers
    assert resp.body == "apple\n"
    assert len(resp.headers) == 6


def test_http_data_plane_rejection_lacks_the_backend_header():
    resp = parse_http_response(rec("http/kong-404-no-route.txt"))
    assert (resp.status, resp.reason) == (404, "Not Found")
    assert "x-app-name" not in resp.headers
    assert resp.headers.get("server") == "kong/1.1.2"
    assert json.loads(resp.body) == {"message": "no Route matched with those values"}


def test_http_routed_echoserver_response():
    resp = parse_http_response(rec("http/kong-200-echoserver.txt"))
    assert resp.status == 200
    assert resp.headers.get("via") == "kong/1.1.2"
    assert resp.headers.get_all("x-kong-proxy-latency") == ("1",)
    assert resp.body.startswith("\n\nHostname: echo-758859bbfb-txt52\n")


def test_http_crlf_http2_and_interim_100():
    # synthetic: curl -si over HTTP/2 (no reason phrase, lower-case names) after 100 Continue
    text = (
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/2 200 \r\nx-app-name: http-echo\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\r\nhi"
    )
    resp = parse_http_response(text)
    assert (resp.http_version, resp.status, resp.reason) == ("2", 200, "")
    assert resp.headers.get("X-App-Name") == "http-echo"
    assert resp.headers.get_all("Set-Cookie") == ("a=1", "b=2")
    assert resp.body == "hi"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [  # synthetic
        ('{"prediction":0.87}\n', 1, "no HTTP status line"),  # curl -s without -i
        ("\nHTTP/1.1 OK\n\n", 2, "bad status line"),
        ("HTTP/1.1 200 OK\nx-app-name http-echo\n\nbody", 2, "bad header line"),
    ],
)
def test_http_negative(text, line, message):
    with pytest.raises(ParseError, match=message) as err:
        parse_http_response(text)
    assert err.value.line == line


# --- probe KEY=VALUE output ----------------------------------------------------------------

# Realistic: the log of one prober container that ran `sh /probes/count_devices.sh;
# sh /probes/list_devices.sh; sh /probes/device_uuids.sh; true` under busybox sh 1.35 with the
# nvidia profile's environment, two device nodes and nvidia-smi printing the recorded
# nvidia-smi/t4-envall-before-L.txt (the NVIDIA_VISIBLE_DEVICES=all leak). list_devices.sh was
# missing from /probes, so the shell's own error message sits in the log between the probes.
PROBE_LOG = """\
DEVICE_GLOB=/dev/nvidia[0-9]*
DEVICE_COUNT=2
DEVICE_CHAR_COUNT=2
IGNORED_COUNT=0
sh: can't open '/probes/list_devices.sh': No such file or directory
TOOL=nvidia-smi
TOOL_MISSING=0
TOOL_RC=0
TOOL_LINE=GPU 0: Tesla T4 (UUID: GPU-6cfb8bf0-b556-d216-90a4-0827b23b1348)
TOOL_LINE=GPU 1: Tesla T4 (UUID: GPU-90ac9649-3c3b-4d9f-e3ab-95c8043e7d48)
UUID=GPU-6cfb8bf0-b556-d216-90a4-0827b23b1348
UUID=GPU-90ac9649-3c3b-4d9f-e3ab-95c8043e7d48
UUID_COUNT=2
"""


def test_key_values_of_a_probe_log():
    assert parse_key_values(PROBE_LOG) == {
        "DEVICE_GLOB": ["/dev/nvidia[0-9]*"],
        "DEVICE_COUNT": ["2"],
        "DEVICE_CHAR_COUNT": ["2"],
        "IGNORED_COUNT": ["0"],
        "TOOL": ["nvidia-smi"],
        "TOOL_MISSING": ["0"],
        "TOOL_RC": ["0"],
        "TOOL_LINE": [
            "GPU 0: Tesla T4 (UUID: GPU-6cfb8bf0-b556-d216-90a4-0827b23b1348)",
            "GPU 1: Tesla T4 (UUID: GPU-90ac9649-3c3b-4d9f-e3ab-95c8043e7d48)",
        ],
        "UUID": [
            "GPU-6cfb8bf0-b556-d216-90a4-0827b23b1348",
            "GPU-90ac9649-3c3b-4d9f-e3ab-95c8043e7d48",
        ],
        "UUID_COUNT": ["2"],
    }
    # The TOOL_LINE values are the recorded tool output, line for line.
    assert parse_key_values(PROBE_LOG)["TOOL_LINE"] == rec(
        "nvidia-smi/t4-envall-before-L.txt"
    ).splitlines()


def test_key_values_keep_values_whole_and_skip_other_lines():  # synthetic
    text = (
        "GPU_DEVICE_5_RESOURCE_CLAIM=a=b\nEMPTY=\n\n=no-key\nNOT A KEY=x\nKEY-DASH=x\n"
        "no separator\nsh: 1: nvidia-smi: not found\nDEVICE_COUNT=1\nDEVICE_COUNT=0\n"
    )
    assert parse_key_values(text) == {
        "GPU_DEVICE_5_RESOURCE_CLAIM": ["a=b"],
        "EMPTY": [""],
        "DEVICE_COUNT": ["1", "0"],
    }
    assert parse_key_values("") == {}
