"""The requirement catalog: ids, titles, categories, levels and versions, loaded from one data
file.

Keeping it as data means a new checklist version is a YAML edit, not a code change. The
official checklists ship beside it (data/checklists/) for their wording; a unit test keeps
their ids and levels equal to the catalog's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

LEVELS = ("MUST", "SHOULD")


@dataclass(frozen=True)
class Requirement:
    """One requirement as it stands in one checklist version."""

    id: str
    category: str
    level: str
    summary: str
    conditional: bool = False
    condition: str = ""
    title: str = ""  # the heading reports give it

    @property
    def marker_level(self) -> str:
        return self.level.lower()


@dataclass(frozen=True)
class Catalog:
    """All known checklist versions and the requirements of each."""

    versions: dict[str, tuple[Requirement, ...]]
    categories: dict[str, str]
    junit_groups: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)

    def title(self, req_id: str) -> str:
        """A requirement's heading in reports (the checklist's own naming); an id the catalog
        does not know (a newer template's) gets one made from the id."""
        return self.titles.get(req_id) or req_id.replace("_", " ").capitalize()

    def junit_group(self, req_id: str) -> str:
        """The top-level JUnit test name of a requirement's checks (upstream's where it has one)."""
        return self.junit_groups.get(req_id) or "Test" + "".join(
            part.capitalize() for part in req_id.split("_"))

    @property
    def known_versions(self) -> list[str]:
        return sorted(self.versions, key=version_key)

    @property
    def all_ids(self) -> list[str]:
        return list(self.categories)

    def requirements(self, version: str) -> tuple[Requirement, ...]:
        if version not in self.versions:
            raise UnknownVersionError(version, self.known_versions)
        return self.versions[version]

    def get(self, version: str, req_id: str) -> Requirement | None:
        for req in self.requirements(version):
            if req.id == req_id:
                return req
        return None

    def newest_containing(self, req_id: str) -> Requirement | None:
        """The requirement as the newest version that has it defines it (for markers)."""
        for version in reversed(self.known_versions):
            found = self.get(version, req_id)
            if found:
                return found
        return None

    def version_for_server(self, major: int, minor: int) -> str:
        """Checklist version for a server version: the same minor, or the newest known if newer."""
        wanted = f"{major}.{minor}"
        if wanted in self.versions:
            return wanted
        known = self.known_versions
        if version_key(wanted) > version_key(known[-1]):
            return known[-1]
        raise UnknownVersionError(wanted, known, server=True)


class UnknownVersionError(ValueError):
    """A checklist version that the catalog does not know."""

    def __init__(self, version: str, known: list[str], server: bool = False) -> None:
        what = "server version" if server else "checklist version"
        super().__init__(
            f"no AI conformance checklist for {what} {version!r}; known: {', '.join(known)}"
        )


_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def version_key(version: str) -> tuple[int, int]:
    match = _VERSION_RE.match(version)
    if not match:
        raise ValueError(f"not a MAJOR.MINOR version: {version!r}")
    return int(match.group(1)), int(match.group(2))


def normalize_version(value: str) -> str:
    """Accept '1.35', 'v1.35' and '1.35.4'; return '1.35'."""
    text = value.strip().lstrip("vV")
    parts = text.split(".")
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return f"{int(parts[0])}.{int(parts[1])}"
    raise ValueError(f"not a Kubernetes version: {value!r}")


def parse_catalog(data: dict[str, Any]) -> Catalog:
    reqs: dict[str, dict[str, Any]] = data["requirements"]
    for req_id, info in reqs.items():
        if not str(info.get("title") or "").strip():
            raise ValueError(f"catalog: requirement {req_id} has no title")
    versions: dict[str, tuple[Requirement, ...]] = {}
    for version, levels in data["versions"].items():
        items = []
        for req_id, level in levels.items():
            if req_id not in reqs:
                raise ValueError(f"catalog version {version} names unknown requirement {req_id}")
            if level not in LEVELS:
                raise ValueError(f"catalog: bad level {level!r} for {req_id} in {version}")
            info = reqs[req_id]
            items.append(
                Requirement(
                    id=req_id,
                    category=info["category"],
                    level=level,
                    summary=info["summary"],
                    conditional=bool(info.get("conditional", False)),
                    condition=str(info.get("condition", "")),
                    title=str(info["title"]),
                )
            )
        versions[str(version)] = tuple(items)
    return Catalog(versions=versions, categories={k: v["category"] for k, v in reqs.items()},
                   junit_groups={k: str(v["junit"]) for k, v in reqs.items() if v.get("junit")},
                   titles={k: str(v["title"]) for k, v in reqs.items()})


@cache
def load_catalog() -> Catalog:
    """The packaged catalog (read once per process; it is immutable data)."""
    text = resources.files("pytest_aiconformance").joinpath("data/catalog.yaml").read_text()
    return parse_catalog(yaml.safe_load(text))


# ---------------------------------------------------------------- official checklist texts

CHECKLIST_FILE = "KubernetesAIConformance-{version}.yaml"


def template_descriptions(data: Any, source: str) -> dict[str, str]:
    """Requirement descriptions by id from a parsed official checklist or submission template.

    The one parser of the official files: --aic-template and the packaged checklists both
    go through it, so both read the same shape the same way.
    """
    spec = data.get("spec") if isinstance(data, dict) else None
    if not isinstance(spec, dict):
        raise ValueError(f"template {source} has no 'spec' mapping of categories")
    out: dict[str, str] = {}
    for items in spec.values():
        for item in items or []:
            if isinstance(item, dict) and item.get("id") and item.get("description"):
                out[str(item["id"])] = str(item["description"]).strip()
    return out


def load_template_descriptions(template: Path) -> dict[str, str]:
    """Requirement descriptions by id from an official checklist or submission template file."""
    try:
        data = yaml.safe_load(Path(template).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"template file not found: {template}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read template {template}: {type(exc).__name__}") from None
    return template_descriptions(data, str(template))


def official_checklist_text(version: str) -> str:
    """The packaged official checklist of a version, verbatim (copied from the CNCF files)."""
    name = CHECKLIST_FILE.format(version=version)
    path = resources.files("pytest_aiconformance").joinpath("data", "checklists", name)
    if not path.is_file():
        raise UnknownVersionError(version, load_catalog().known_versions)
    return path.read_text(encoding="utf-8")


def official_descriptions(version: str) -> dict[str, str]:
    """Official requirement descriptions by id for a checklist version, from the packaged file.

    Lets reports quote the official wording without the user passing --aic-template.
    """
    return template_descriptions(yaml.safe_load(official_checklist_text(version)),
                                 f"packaged checklist {version}")
