"""`aiconformance validate DIR`: the CNCF AI conformance submission rules, checked offline.

The program's validator (`scripts/validate.go` in cncf/k8s-ai-conformance, September 2026)
decides whether a submission PR is accepted. This module applies the same rules before
submitting, in our own words: metadata fields, every requirement of the checklist version
with a status its level allows, evidence that stays inside the product directory, and the
test artifacts it links (junit.xml, results.json, e2e.log) free of failures. What needs the
network (URLs answering, the vendor being a CNCF member) is reported as NOT CHECKED, never as
passed. The requirement ids and levels come from our catalog, not from the program's docs.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pytest_aiconformance.parsers.test_artifacts import (
    ARTIFACT_KINDS,
    ArtifactError,
    ArtifactOutcome,
    ArtifactResults,
    parse_artifact,
)
from pytest_aiconformance.verdicts.catalog import (
    Requirement,
    UnknownVersionError,
    load_catalog,
    version_key,
)

Level = Literal["error", "warning", "not-checked"]
ERROR: Level = "error"
WARNING: Level = "warning"
NOT_CHECKED: Level = "not-checked"
LABELS: dict[Level, str] = {ERROR: "ERROR", WARNING: "WARNING", NOT_CHECKED: "NOT CHECKED"}

PRODUCT_FILE = "PRODUCT.yaml"
STATUSES = ("Implemented", "Partially Implemented", "Not Implemented", "N/A")

# The metadata fields the program reads, in its order; only repoUrl may be left out.
METADATA_FIELDS: tuple[tuple[str, bool], ...] = (
    ("kubernetesVersion", True),
    ("platformName", True),
    ("platformVersion", True),
    ("vendorName", True),
    ("websiteUrl", True),
    ("repoUrl", False),
    ("documentationUrl", True),
    ("productLogoUrl", True),
    ("description", True),
    ("contactEmailAddress", True),
    ("k8sConformanceUrl", True),
)
K8S_CONFORMANCE_URL = re.compile(
    r"^https://github\.com/cncf/k8s-conformance/tree/(master|main)/v[0-9]+\.[0-9]+/[^/]+/?$")
LOGO_SUFFIXES = (".svg", ".eps", ".ai")
MEMBERS_PAGE = "https://landscape.cncf.io/members"

# Requirements the upstream Go suite tests, and the test that does (the program's map; our
# catalog uses the same names as these requirements' JUnit groups).
UPSTREAM_TESTS = {
    "secure_accelerator_access": "TestSecureAcceleratorAccess",
    "gang_scheduling": "TestGangScheduling",
    "cluster_autoscaling": "TestAcceleratorClusterAutoscaling",
}
# The only MUST the program lets a submission mark N/A (with a warning for the reviewer).
NA_ALLOWED_MUSTS = frozenset({"cluster_autoscaling"})
# From this checklist version on, an Implemented upstream-tested requirement should link
# the upstream suite's artifacts.
ARTIFACTS_RECOMMENDED_FROM = (1, 37)

VERSION_DIR = re.compile(r"^v([0-9]+)\.([0-9]+)$")
OTHER_PRODUCT_PREFIX = re.compile(r"^v[0-9]+\.[0-9]+/[^/]+/")


class SubmissionInputError(ValueError):
    """The command cannot validate at all: no directory, no PRODUCT.yaml, YAML that is not YAML."""


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one place: a requirement id, a metadata field or a section."""

    level: Level
    where: str
    message: str
    product: str = ""

    def line(self, with_product: bool = False) -> str:
        where = f"{self.product} {self.where}" if with_product and self.product else self.where
        return f"{LABELS[self.level]} {where}: {self.message}"


@dataclass
class ValidationReport:
    """What `validate_submission` found, per product; `ok` means nothing blocks acceptance."""

    products: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    @property
    def not_checked(self) -> list[Finding]:
        return [f for f in self.findings if f.level == NOT_CHECKED]

    def lines(self) -> list[str]:
        """One line per finding (product-prefixed when several were validated), then a summary."""
        several = len(self.products) > 1
        return [f.line(several) for f in self.findings] + [self.summary()]

    def summary(self) -> str:
        counts = (f"{_count(len(self.errors), 'error')}, {_count(len(self.warnings), 'warning')},"
                  f" {len(self.not_checked)} not checked")
        where = ", ".join(self.products)
        if self.ok:
            return (f"OK: {counts} ({where}): every rule that can be checked offline passes;"
                    " NOT CHECKED items need the network")
        return f"FAILED: {counts} ({where}): the CNCF validator would reject this submission"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# --- Finding the products -----------------------------------------------------


def find_products(path: Path) -> list[Path]:
    """The PRODUCT.yaml files under `path`: its own, or those of `vX.Y/<product>/` below it."""
    if not path.exists():
        raise SubmissionInputError(f"{path}: no such directory")
    if path.is_file():
        if path.name != PRODUCT_FILE:
            raise SubmissionInputError(f"{path}: give a directory holding {PRODUCT_FILE}")
        return [path]
    if (path / PRODUCT_FILE).is_file():
        return [path / PRODUCT_FILE]
    if VERSION_DIR.match(path.name):
        found = sorted(path.glob(f"*/{PRODUCT_FILE}"))
    else:
        found = sorted(p for p in path.glob(f"v*/*/{PRODUCT_FILE}")
                       if VERSION_DIR.match(p.parent.parent.name))
    found = [p for p in found if p.is_file()]
    if not found:
        raise SubmissionInputError(
            f"{path}: no {PRODUCT_FILE} in it, nor in vX.Y/<product>/ below it")
    return found


def product_label(product_dir: Path) -> str:
    """`vX.Y/<product>` when the directory sits in a version directory, else its name."""
    if VERSION_DIR.match(product_dir.parent.name):
        return f"{product_dir.parent.name}/{product_dir.name}"
    return product_dir.name


def validate_submission(path: Path) -> ValidationReport:
    """Validate every product found at `path` (see `find_products`)."""
    report = ValidationReport()
    for product_yaml in find_products(Path(path)):
        product_dir = Path(os.path.abspath(product_yaml.parent))
        label = product_label(product_dir)
        document = load_product_yaml(product_yaml)
        report.products.append(label)
        report.findings += [
            Finding(f.level, f.where, f.message, label)
            for f in ProductValidator(product_dir, label, document).run()
        ]
    return report


# --- YAML as the program's Go decoder reads it --------------------------------


class _GoYamlLoader(yaml.SafeLoader):
    """Reads scalars as Go's yaml.v3 does into untyped values: yes/no/on/off and dates stay text."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_GoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_GoYamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_product_yaml(product_yaml: Path) -> Any:
    """The parsed file; unreadable or unparsable input is a usage error, not a finding."""
    try:
        text = product_yaml.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubmissionInputError(f"{product_yaml}: cannot read it ({exc})") from None
    try:
        return yaml.load(text, Loader=_GoYamlLoader)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SubmissionInputError(
            f"{product_yaml}: not valid YAML{where}: {problem}") from None


class ShapeError(ValueError):
    """The document has the wrong structure: the program's decoder rejects the whole file."""


def _text(value: Any, what: str) -> str:
    """A scalar read into a Go string field: null is empty, other scalars are their text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ShapeError(f"{what} must be a single value, not {_yaml_kind(value)}")


def _yaml_kind(value: Any) -> str:
    """What YAML made of a value, for messages: 'a mapping', 'a list', 'text', ..."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Entry:
    """One requirement as the submission states it."""

    id: str
    status: str
    evidence: tuple[str, ...]
    notes: str


def _entries(category: str, items: Any) -> dict[str, Entry]:
    """A category's requirements by id (a repeated id: the last one counts, as upstream)."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ShapeError(f"spec.{category} must be a list of requirements,"
                         f" not {_yaml_kind(items)}")
    out: dict[str, Entry] = {}
    for index, item in enumerate(items):
        where = f"spec.{category}[{index}]"
        if item is None:
            item = {}
        if not isinstance(item, dict):
            raise ShapeError(f"{where} must be a mapping, not {_yaml_kind(item)}")
        evidence = item.get("evidence")
        if evidence is None:
            evidence = []
        if not isinstance(evidence, list):
            raise ShapeError(f"{where}.evidence must be a list, not {_yaml_kind(evidence)}")
        entry = Entry(
            id=_text(item.get("id"), f"{where}.id"),
            status=_text(item.get("status"), f"{where}.status"),
            evidence=tuple(_text(e, f"{where}.evidence") for e in evidence),
            notes=_text(item.get("notes"), f"{where}.notes"),
        )
        out[entry.id] = entry
    return out


# --- Evidence paths -----------------------------------------------------------


@dataclass(frozen=True)
class LocalEvidence:
    """A local evidence link resolved inside the product directory."""

    path: Path
    relative: str
    fragment: str


def resolve_evidence(product_dir: Path, link: str, own_prefix: str = "") -> LocalEvidence:
    """Resolve a bare relative path or `file://` link (with an optional `#TestName`).

    Paths are relative to the product directory; a leading `vX.Y/<this product>/` (links
    written from the repository root; `own_prefix`, by default the directory's last two
    names) is dropped. Another product's directory, or a path that leaves this one, is
    refused (ValueError with the reason).
    """
    raw = link.strip().removeprefix("file://")
    raw, _, fragment = raw.partition("#")
    raw = raw.strip().removeprefix("/")
    if not raw:
        raise ValueError("the file path is empty")
    own_prefix = own_prefix or f"{product_dir.parent.name}/{product_dir.name}/"
    if raw.startswith(own_prefix):
        raw = raw[len(own_prefix):]
    elif OTHER_PRODUCT_PREFIX.match(raw):
        raise ValueError(f"it points into another product's directory; evidence files must"
                         f" be inside {product_label(product_dir)}/")
    base = os.path.normpath(str(product_dir))
    full = os.path.normpath(base + "/" + raw)
    relative = os.path.relpath(full, base)
    if relative in (".", "..") or relative.startswith(".." + os.sep):
        raise ValueError(f"it leads outside the product directory {product_label(product_dir)}/")
    return LocalEvidence(Path(full), Path(relative).as_posix(), fragment)


# --- One product --------------------------------------------------------------


def _snake(name: str) -> str:
    """camelCase -> snake_case as the program spells the alternative keys (k8s_conformance_url)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _is_placeholder(value: str) -> bool:
    return value.startswith("[") and value.endswith("]")


class ProductValidator:
    """The rules for one product directory; `run()` yields its findings in file order."""

    def __init__(self, product_dir: Path, label: str, document: Any) -> None:
        self.product_dir = product_dir
        self.label = label
        self.document = {} if document is None else document
        self.artifacts: dict[Path, ArtifactResults | None] = {}
        self.own_prefix = ""  # set with the version where the directory is not vX.Y/<product>

    def run(self) -> list[Finding]:
        if not isinstance(self.document, dict):
            return [Finding(ERROR, PRODUCT_FILE, "must be a mapping with 'metadata' and 'spec'"
                            f" sections, not {_yaml_kind(self.document)}")]
        try:
            return list(self._all())
        except ShapeError as exc:
            return [Finding(ERROR, PRODUCT_FILE, f"cannot be read as a submission: {exc}")]

    def _all(self) -> Iterator[Finding]:
        metadata = self.document.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise ShapeError(f"metadata must be a mapping, not {_yaml_kind(metadata)}")
        spec = self.document.get("spec")
        if spec is not None and not isinstance(spec, dict):
            raise ShapeError(f"spec must be a mapping of categories, not {_yaml_kind(spec)}")
        categories = {str(k): _entries(str(k), v) for k, v in (spec or {}).items()}
        yield from self._metadata(metadata)
        version, version_findings = self._version(metadata or {})
        yield from version_findings
        if spec is None:
            yield Finding(ERROR, "spec", "the 'spec' section is missing")
        elif version is not None:
            yield from self._spec(version, categories)

    # metadata

    def _metadata(self, metadata: dict[str, Any] | None) -> Iterator[Finding]:
        if metadata is None:
            yield Finding(ERROR, "metadata", "the 'metadata' section is missing")
            return
        for name, required in METADATA_FIELDS:
            snake = _snake(name)
            key = name if name in metadata else snake
            value = metadata.get(key)
            if value is None:
                if required:
                    also = f" (or {snake})" if snake != name else ""
                    yield Finding(ERROR, name, f"required field is missing{also}")
                continue
            if not isinstance(value, str):
                yield Finding(ERROR, name, f"must be text, but YAML reads {value!r} as"
                                           f" {_yaml_kind(value)}: put it in quotes")
                continue
            if not value:
                if required:
                    yield Finding(ERROR, name, "required field is empty")
            elif _is_placeholder(value):
                yield Finding(ERROR, name, f"still holds the template placeholder {value}")
            elif name == "k8sConformanceUrl":
                if not K8S_CONFORMANCE_URL.match(value):
                    yield Finding(ERROR, name, f"{value} is not a Kubernetes conformance"
                                  " submission link; expected https://github.com/cncf/"
                                  "k8s-conformance/tree/main/vX.Y/<product> (or tree/master)")
                else:
                    yield self._url_not_checked(name, value)
            elif value.startswith("http"):
                if name == "productLogoUrl" and not value.lower().endswith(LOGO_SUFFIXES):
                    yield Finding(WARNING, name, f"{value} is not an .svg, .eps or .ai file;"
                                  " the program asks for the logo in one of those formats")
                yield self._url_not_checked(name, value)
        vendor = metadata.get("vendorName", metadata.get("vendor_name"))
        if isinstance(vendor, str) and vendor.strip() and not _is_placeholder(vendor):
            yield Finding(NOT_CHECKED, "vendorName", f"'{vendor.strip()}' must match a CNCF"
                          f" member's name in the landscape exactly ({MEMBERS_PAGE});"
                          " not looked up offline")

    @staticmethod
    def _url_not_checked(where: str, url: str) -> Finding:
        return Finding(NOT_CHECKED, where,
                       f"{url} must answer with an HTTP status below 400; not fetched offline")

    # version

    def _version(self, metadata: dict[str, Any]) -> tuple[str | None, list[Finding]]:
        """The checklist version: the program takes it from the `vX.Y/` directory."""
        declared_raw = metadata.get("kubernetesVersion", metadata.get("kubernetes_version"))
        declared = _version_of(declared_raw) if isinstance(declared_raw, str) else None
        match = VERSION_DIR.match(self.product_dir.parent.name)
        findings: list[Finding] = []
        if match:
            version = f"{int(match.group(1))}.{int(match.group(2))}"
            if declared and declared != version:
                findings.append(Finding(WARNING, "kubernetesVersion", f"says {declared_raw},"
                                        f" but the directory is v{version}; the checklist of"
                                        " the directory is the one applied"))
        elif declared:
            version = declared
            self.own_prefix = f"v{version}/{self.product_dir.name}/"
            findings.append(Finding(WARNING, "directory", "the program reads the version from"
                                    f" the path vX.Y/<product>/, and {self.product_dir.name}/"
                                    f" is not in a vX.Y directory; submit it as"
                                    f" v{version}/{self.product_dir.name}/ (checked here as"
                                    f" {version}, from kubernetesVersion)"))
        else:
            findings.append(Finding(ERROR, "kubernetesVersion", "cannot tell the checklist"
                                    f" version: {self.product_dir.name}/ is not in a vX.Y"
                                    " directory and kubernetesVersion is not vX.Y"))
            return None, findings
        try:
            load_catalog().requirements(version)
        except UnknownVersionError:
            known = ", ".join(load_catalog().known_versions)
            findings.append(Finding(ERROR, "kubernetesVersion", f"no AI conformance checklist"
                                    f" for version {version} (known: {known})"))
            return None, findings
        return version, findings

    # spec

    def _spec(self, version: str, categories: dict[str, dict[str, Entry]]) -> Iterator[Finding]:
        reported_categories: set[str] = set()
        for req in load_catalog().requirements(version):
            entries = categories.get(req.category)
            if entries is None:
                if req.category not in reported_categories:
                    reported_categories.add(req.category)
                    ids = [r.id for r in load_catalog().requirements(version)
                           if r.category == req.category]
                    yield Finding(ERROR, req.category, f"category is missing from spec"
                                  f" (it holds {', '.join(ids)})")
                continue
            entry = entries.get(req.id)
            if entry is None:
                yield Finding(ERROR, req.id, f"requirement is missing from spec.{req.category}")
                continue
            yield from self._requirement(version, req, entry)

    def _requirement(self, version: str, req: Requirement, entry: Entry) -> Iterator[Finding]:
        if req.level == "SHOULD" and entry.status == "" and not entry.evidence:
            return  # an unanswered SHOULD is accepted as it is
        yield from _status_findings(req, entry)
        has_artifact = False
        for link in entry.evidence:
            if not link:
                continue
            if link.startswith(("http://", "https://")):
                yield Finding(NOT_CHECKED, req.id, f"evidence {link} must answer with an"
                                                   " HTTP status below 400; not fetched offline")
                continue
            try:
                local = resolve_evidence(self.product_dir, link, self.own_prefix)
            except ValueError as exc:
                yield Finding(ERROR, req.id, f"evidence {link} is refused: {exc}")
                continue
            try:
                local.path.stat()
            except (FileNotFoundError, NotADirectoryError):
                yield Finding(ERROR, req.id, f"evidence file {link} does not exist"
                                             f" (no {self.label}/{local.relative})")
                continue
            except OSError:
                pass  # exists but unreadable: the artifact check below says so if it matters
            if local.path.name.lower() in ARTIFACT_KINDS:
                has_artifact = True
                yield from self._artifact(req.id, entry.status, link, local)
        test = UPSTREAM_TESTS.get(req.id)
        if (test and entry.status == "Implemented" and not has_artifact
                and version_key(version) >= ARTIFACTS_RECOMMENDED_FROM):
            yield Finding(WARNING, req.id, f"Implemented and covered by the upstream test {test},"
                          f" but no test artifact is linked; for 1.37 and later, linking the"
                          " suite's e2e.log, junit.xml or results.json is recommended")

    def _artifact(self, req_id: str, status: str, link: str,
                  local: LocalEvidence) -> Iterator[Finding]:
        """A linked test artifact: failure-free (reported once), and its test as the status says."""
        name = link.partition("#")[0]
        if local.path not in self.artifacts:
            try:
                parsed = parse_artifact(local.path)
            except ArtifactError as exc:
                kind = ARTIFACT_KINDS[local.path.name.lower()]
                self.artifacts[local.path] = None
                yield Finding(ERROR, req_id, f"test artifact {name} cannot be read as"
                                             f" {kind}: {exc}")
                return
            self.artifacts[local.path] = parsed
            if parsed.failures:
                yield Finding(ERROR, req_id, f"test artifact {name} records failing tests:"
                                             f" {', '.join(sorted(parsed.failures))}")
        results = self.artifacts[local.path]
        test = local.fragment or UPSTREAM_TESTS.get(req_id, "")
        if results is None or not test:
            return
        outcome = results.outcome(test)
        if outcome is ArtifactOutcome.MISSING:
            yield Finding(ERROR, req_id, f"test {test} is not in {name}")
        elif outcome is ArtifactOutcome.FAIL:
            yield Finding(ERROR, req_id, f"test {test} failed in {name}")
        elif outcome is ArtifactOutcome.SKIP and status == "Implemented":
            yield Finding(ERROR, req_id, f"status is Implemented, but test {test} was skipped"
                                         f" in {name}")


def _version_of(value: str) -> str | None:
    match = re.match(r"^[vV]?([0-9]+)\.([0-9]+)(?:\.[0-9]+)?$", value.strip())
    return f"{int(match.group(1))}.{int(match.group(2))}" if match else None


def _status_findings(req: Requirement, entry: Entry) -> Iterator[Finding]:
    """A MUST is Implemented (only cluster_autoscaling may be N/A); N/A always has notes."""
    status = entry.status
    if status not in STATUSES:
        yield Finding(ERROR, req.id, f"status '{status}' is not one of {', '.join(STATUSES)}")
    if req.level == "MUST" and status != "Implemented":
        if req.id in NA_ALLOWED_MUSTS and status == "N/A":
            yield Finding(WARNING, req.id, "a MUST marked N/A: the reviewer checks the reason"
                                           " given in notes")
        elif req.id in NA_ALLOWED_MUSTS:
            yield Finding(ERROR, req.id, f"a MUST must be Implemented, or N/A with the reason in"
                                         f" notes; status is '{status}'")
        else:
            yield Finding(ERROR, req.id, f"a MUST must be Implemented; status is '{status}'")
    if status == "N/A" and not entry.notes.strip():
        yield Finding(ERROR, req.id, "status N/A needs notes saying why")


# --- Command line -------------------------------------------------------------

USAGE = ("usage: aiconformance validate DIR  (DIR: a product directory holding PRODUCT.yaml,"
         " or a directory with vX.Y/<product>/PRODUCT.yaml below it)")


def main(argv: Sequence[str]) -> int:
    """Exit 0 without errors, 1 with errors, 2 when it cannot validate (one ERROR: line)."""
    args = list(argv)
    if args in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if len(args) != 1 or args[0].startswith("-"):
        print(f"ERROR: {USAGE}", file=sys.stderr)
        return 2
    try:
        report = validate_submission(Path(args[0]))
    except SubmissionInputError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    _print_lines(report.lines())
    return 0 if report.ok else 1


def _print_lines(lines: Iterable[str]) -> None:
    for line in lines:
        print(line)
