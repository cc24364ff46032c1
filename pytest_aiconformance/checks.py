"""How a test item declares its requirement, and how its JUnit name is derived."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from pytest_aiconformance.model import Role

MARKER = "requirement"


@dataclass(frozen=True)
class CheckSpec:
    """What the requirement marker of one check says."""

    requirement: str
    role: Role
    junit_name: str
    title: str


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-\s]+", text) if part)


def default_junit_name(requirement: str, function: str) -> str:
    """TestGangScheduling/PositiveGang style, like the upstream Go suite names tests."""
    name = function.split("[", 1)[0]
    name = name[5:] if name.startswith("test_") else name
    params = function[len(function.split("[", 1)[0]):]
    return f"Test{_camel(requirement)}/{_camel(name)}{params}"


def check_spec(item: pytest.Item) -> CheckSpec | None:
    """The CheckSpec of an item that carries a requirement marker, else None."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    if not marker.args or not isinstance(marker.args[0], str):
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.requirement needs the requirement id as first argument"
        )
    requirement = marker.args[0]
    role_text = marker.kwargs.get("role", "essential")
    try:
        role = Role(role_text)
    except ValueError:
        raise pytest.UsageError(
            f"{item.nodeid}: role must be 'essential' or 'supporting', not {role_text!r}"
        ) from None
    junit = marker.kwargs.get("junit") or default_junit_name(requirement, item.name)
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    title = marker.kwargs.get("title") or (doc.strip().splitlines()[0] if doc.strip() else
                                           item.name)
    return CheckSpec(requirement, role, junit, title)
