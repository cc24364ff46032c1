"""In-cluster HTTP traffic: one client pod runs a bounded loop of curl requests.

The client script prints a marker line before each response so one log holds every answer,
and a curl failure (connection refused, timeout) is recorded as such, never as "no header".
An answer knows whether it carries the header only an http-echo backend sets
(``X-App-Name``); what that proves about routing is decided by the requirement that sent the
requests (requirements/ai_inference.py).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_aiconformance.cluster import workloads
from pytest_aiconformance.parsers import HttpResponse, ParseError, parse_http_response

MARKER = "@@AIC-REQUEST"
END = "@@AIC-END"
BACKEND_HEADER = "X-App-Name"
BACKEND_HEADER_VALUE = "http-echo"


@dataclass(frozen=True)
class Case:
    """One kind of request, sent ``count`` times: a label, a URL and extra curl arguments."""

    label: str
    url: str
    count: int = 1
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    body: str | None = None

    def curl_args(self, max_time: int) -> list[str]:
        args = ["curl", "-si", "--max-time", str(max_time), "-X", self.method]
        for name, value in self.headers:
            args += ["-H", f"{name}: {value}"]
        if self.body is not None:
            args += ["--data-raw", self.body]
        args.append(self.url)
        return args


def client_script(cases: Sequence[Case], max_time: int = 5) -> str:
    """POSIX sh that sends every case ``count`` times, printing a marker before each answer.

    Each request prints ``@@AIC-REQUEST <label> <i>``, curl's ``-si`` output, then
    ``@@AIC-END <label> <i> rc=<curl exit status>``. The loop is bounded: exactly the stated
    number of requests is sent, never more (the metrics check compares a counter with it).
    """
    lines = ["set -u"]
    for case in cases:
        if not case.label.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"case label must be letters, digits, - or _: {case.label!r}")
        if case.count < 1:
            raise ValueError(f"case {case.label} must send at least one request")
        cmd = " ".join(shlex.quote(a) for a in case.curl_args(max_time))
        lines.append(
            f"i=1; while [ $i -le {case.count} ]; do "
            f"echo '{MARKER} {case.label}' $i; {cmd}; rc=$?; echo; "
            f"echo '{END} {case.label}' $i rc=$rc; i=$((i+1)); done"
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Answer:
    """What one request got: a parsed response, or why there is none (curl error, bad text)."""

    label: str
    index: int
    response: HttpResponse | None
    error: str = ""
    raw: str = ""

    @property
    def status(self) -> int | None:
        return self.response.status if self.response else None

    @property
    def from_backend(self) -> bool:
        """The backend-only header is present (the request reached an http-echo backend)."""
        return self.response is not None and (
            (self.response.headers.get(BACKEND_HEADER) or "").lower() == BACKEND_HEADER_VALUE
        )

    def body_text(self) -> str:
        return self.response.body.strip() if self.response else ""


def parse_client_log(text: str) -> dict[str, list[Answer]]:
    """Split the client pod's log into answers per case label, in order."""
    out: dict[str, list[Answer]] = {}
    current: tuple[str, int] | None = None
    buf: list[str] = []
    for line in text.split("\n"):
        if line.startswith(MARKER + " "):
            parts = line.split()
            current = (parts[1], int(parts[2])) if len(parts) >= 3 else None
            buf = []
            continue
        if line.startswith(END + " ") and current is not None:
            parts = line.split()
            rc_text = parts[3][3:] if len(parts) >= 4 and parts[3].startswith("rc=") else "?"
            label, index = current
            raw = "\n".join(buf).strip("\n")
            out.setdefault(label, []).append(_answer(label, index, raw, rc_text))
            current = None
            continue
        if current is not None:
            buf.append(line)
    return out


def _answer(label: str, index: int, raw: str, rc_text: str) -> Answer:
    if rc_text != "0":
        return Answer(label, index, None, f"curl exited {rc_text}", raw)
    try:
        return Answer(label, index, parse_http_response(raw), "", raw)
    except ParseError as exc:
        return Answer(label, index, None, str(exc), raw)


def status_summary(answers: Sequence[Answer]) -> str:
    """``200 x 3, 404 x 1, curl exited 7 x 2`` for evidence notes."""
    counts: dict[str, int] = {}
    for a in answers:
        key = str(a.status) if a.response is not None else a.error
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} x {v}" for k, v in counts.items()) or "none"


def first_raw(answers: Sequence[Answer], limit: int = 12) -> str:
    """The first answer as curl printed it, cut to ``limit`` lines, for evidence."""
    if not answers:
        return ""
    lines = answers[0].raw.replace("\r", "").split("\n")
    return "\n".join(lines[:limit])


def warmup_script(url: str, expect_body: str, headers: Sequence[tuple[str, str]] = (),
                  seconds: float = 60.0) -> str:
    """sh that retries one request (1 s apart) until the expected backend answers or
    ``seconds`` have passed (pass the wait after --aic-timeout-scale), and prints
    ``WARMUP ok=<0|1> tries=<n> seconds=<limit> url=<url>``: routes reach proxies eventually,
    so the measured requests start only once the configuration has arrived. The limit is a
    deadline, not a count of tries: a try that hangs (curl --max-time 3) spends the same clock.
    At least one request is always sent."""
    limit = max(1, math.ceil(seconds))
    hdr = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers)
    return (f"end=$(( $(date +%s) + {limit} )); n=0; ok=0; while :; do n=$((n+1)); "
            f"if curl -s --max-time 3 {hdr} {shlex.quote(url)} | grep -qx "
            f"{shlex.quote(expect_body)}; then ok=1; break; fi; "
            f"[ $(date +%s) -lt $end ] || break; sleep 1; done; "
            f"echo WARMUP ok=$ok tries=$n seconds={limit} url={shlex.quote(url)}\n")


def client_pod(name: str, namespace: str, script: str, image: str) -> dict[str, Any]:
    """A restricted pod running the curl client script once (container ``client``), from an
    image with curl (images.yaml key ``curl``)."""
    ctr = workloads.container("client", ["sh", "-c", script + "exit 0\n"], image=image)
    return workloads.pod(name, namespace, [ctr], labels={"app": "aic-client"})


def warmups_ok(log: str) -> list[str]:
    """The WARMUP lines that did not succeed (empty when every route answered)."""
    return [line for line in log.splitlines()
            if line.startswith("WARMUP ") and "ok=1" not in line.split()]
