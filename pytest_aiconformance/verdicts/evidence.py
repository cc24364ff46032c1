"""Evidence: what a check did and what the cluster answered, as a reviewer would read it.

Each step is a kubectl-equivalent command with the output a user would see, or a note.
Steps are redacted (bearer tokens, secret data), rendered as text for JUnit <system-out>
and stored as JSON per check under the report dir, from which evidence.md is built.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

_REDACTIONS = (
    (re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"), r"\1<redacted>"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-_.=]{16,}"), r"\1<redacted>"),
    (re.compile(r"(?i)((?:token|password|client-key-data|client-certificate-data)\s*[:=]\s*)\S+"),
     r"\1<redacted>"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), "<redacted-jwt>"),
)


def redact(text: str) -> str:
    """Remove credentials from text that will be published as evidence."""
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


def redact_object(obj: Any) -> Any:
    """Blank the data of Secrets and redact strings anywhere in an object dump."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        is_secret = obj.get("kind") == "Secret"
        for key, value in obj.items():
            if is_secret and key in ("data", "stringData") and isinstance(value, dict):
                out[key] = {k: "<redacted>" for k in value}
            elif key == "managedFields":
                continue
            else:
                out[key] = redact_object(value)
        return out
    if isinstance(obj, list):
        return [redact_object(v) for v in obj]
    if isinstance(obj, str):
        return redact(obj)
    return obj


@dataclass
class Step:
    """One evidence step: a command and its output, or a plain note."""

    kind: str  # "command" | "note" | "yaml" | "log" | "http"
    title: str = ""
    command: str = ""
    output: str = ""

    def render(self) -> str:
        lines: list[str] = []
        if self.title:
            lines.append(f"# {self.title}")
        if self.command:
            lines.append(f"$ {self.command}")
        if self.output:
            lines.append(self.output.rstrip("\n"))
        return "\n".join(lines)


@dataclass
class CheckEvidence:
    """All evidence of one check, in the order it was captured."""

    nodeid: str
    requirement: str
    junit_name: str
    title: str = ""
    steps: list[Step] = field(default_factory=list)
    diagnostics: list[Step] = field(default_factory=list)  # captured on failure

    def render(self) -> str:
        parts = [s.render() for s in self.steps]
        if self.diagnostics:
            parts.append("# --- diagnostics captured on failure ---")
            parts.extend(s.render() for s in self.diagnostics)
        return "\n\n".join(p for p in parts if p) + "\n"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckEvidence:
        return cls(
            nodeid=data["nodeid"],
            requirement=data["requirement"],
            junit_name=data["junit_name"],
            title=data.get("title", ""),
            steps=[Step(**s) for s in data.get("steps", [])],
            diagnostics=[Step(**s) for s in data.get("diagnostics", [])],
        )


def evidence_filename(junit_name: str) -> str:
    """A file name for a check's evidence that is stable across runs."""
    return "checks/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", junit_name).strip("_") + ".json"


class EvidenceRecorder:
    """Collects the steps of one check; the `evidence` fixture hands one to each check."""

    def __init__(self, nodeid: str, requirement: str, junit_name: str, title: str = "") -> None:
        self.data = CheckEvidence(nodeid, requirement, junit_name, title)

    def command(self, command: str, output: str, title: str = "") -> None:
        """Record a kubectl-equivalent command and the output a user would see."""
        self.data.steps.append(Step("command", title, redact(command), redact(output)))

    def note(self, text: str) -> None:
        """Record a sentence of what was done or concluded."""
        self.data.steps.append(Step("note", "", "", redact(text)))

    def yaml(self, title: str, obj: Any, command: str = "") -> None:
        """Record an object (or an excerpt of it) as YAML."""
        text = yaml.safe_dump(redact_object(obj), sort_keys=False, default_flow_style=False)
        self.data.steps.append(Step("yaml", title, redact(command), text))

    def log(self, title: str, text: str, command: str = "") -> None:
        self.data.steps.append(Step("log", title, redact(command), redact(text)))

    def http(self, command: str, response: str, title: str = "") -> None:
        self.data.steps.append(Step("http", title, redact(command), redact(response)))

    def diagnostic(self, title: str, text: str, command: str = "") -> None:
        """Record failure diagnostics (events, object YAML, logs) taken before teardown."""
        self.data.diagnostics.append(Step("log", title, redact(command), redact(text)))

    @property
    def empty(self) -> bool:
        return not self.data.steps and not self.data.diagnostics

    def write(self, report_dir: Path) -> str:
        """Store the evidence as JSON; returns its path relative to the report dir."""
        rel = evidence_filename(self.data.junit_name)
        path = report_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.data.to_json(), indent=2) + "\n")
        return rel


def load_evidence(report_dir: Path, rel: str) -> CheckEvidence | None:
    path = report_dir / rel
    if not rel or not path.is_file():
        return None
    return CheckEvidence.from_json(json.loads(path.read_text()))
