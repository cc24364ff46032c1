"""HTTP responses as ``curl -si`` prints them: status line, headers, body.

The inference-routing check proves a rejection happened in the data plane by the absence of a
header only the backend sets, so header lookup is case-insensitive (HTTP/2 proxies lower-case
names) and a response whose header block cannot be read is an error, not "header absent".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import ParseError

_SOURCE = "HTTP response"
_STATUS = re.compile(r"^HTTP/(\d(?:\.\d)?) (\d{3})(?: (.*))?$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Headers:
    """Response headers in received order, looked up case-insensitively."""

    items: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """The first value of ``name``, or None."""
        for key, value in self.items:
            if key.lower() == name.lower():
                return value
        return None

    def get_all(self, name: str) -> tuple[str, ...]:
        return tuple(v for k, v in self.items if k.lower() == name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class HttpResponse:
    """The final response (interim 1xx and proxy CONNECT blocks are skipped)."""

    http_version: str
    status: int
    reason: str
    headers: Headers
    body: str


def _blocks(text: str) -> list[tuple[int, list[str], str]]:
    """Split into (first line number, header lines, rest of text after the blank line)."""
    lines = text.split("\n")
    blocks: list[tuple[int, list[str], str]] = []
    start = 0
    while start < len(lines):
        header: list[str] = []
        i = start
        while i < len(lines) and lines[i].rstrip("\r") != "":
            header.append(lines[i].rstrip("\r"))
            i += 1
        rest = "\n".join(lines[i + 1 :]) if i < len(lines) else ""
        blocks.append((start + 1, header, rest))
        status = _STATUS.match(header[0]) if header else None
        interim = status is not None and (
            status.group(2).startswith("1")
            or (status.group(3) or "").lower() == "connection established"
        )
        if interim and i + 1 < len(lines) and lines[i + 1].startswith("HTTP/"):
            start = i + 1
            continue
        break
    return blocks


def parse_http_response(text: str) -> HttpResponse:
    """Parse ``curl -si`` output (CRLF or LF). ParseError names the offending line when the
    status line is missing or a header line has no colon."""
    stripped = text.lstrip("\r\n")
    offset = text[: len(text) - len(stripped)].count("\n")
    if not stripped.startswith("HTTP/"):
        first = stripped.split("\n", 1)[0].rstrip("\r")
        raise ParseError(f"no HTTP status line (got {first[:80]!r})", offset + 1, _SOURCE)
    first_line, header, rest = _blocks(stripped)[-1]
    first_line += offset
    match = _STATUS.match(header[0])
    if not match:
        raise ParseError(f"bad status line {header[0]!r}", first_line, _SOURCE)
    items: list[tuple[str, str]] = []
    for n, line in enumerate(header[1:], start=first_line + 1):
        if line[:1] in (" ", "\t") and items:
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise ParseError(f"bad header line {line!r}", n, _SOURCE)
        items.append((name, value.strip()))
    return HttpResponse(
        http_version=match.group(1),
        status=int(match.group(2)),
        reason=(match.group(3) or "").strip(),
        headers=Headers(tuple(items)),
        body=rest,
    )
