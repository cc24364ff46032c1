"""Why a check did not run, in words the verdict logic can read back.

A skip is never a pass. A check that cannot decide says which kind of skip it is, and
the reason survives pytest-xdist because it travels inside the skip message itself.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

import pytest


class Outcome(StrEnum):
    """The outcome of one check, as the verdict logic sees it."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the check itself broke (setup error, bad fixture)
    NOT_APPLICABLE = "not applicable"  # e.g. no autoscaler for a conditional MUST
    NOT_OBSERVABLE = "not observable here"  # e.g. simulated nodes run no containers
    UNKNOWN_HARDWARE = "unknown hardware"  # accelerator the profiles do not know
    SKIPPED = "skipped"  # a skip without one of the categories above

    @property
    def is_skip(self) -> bool:
        return self not in (Outcome.PASSED, Outcome.FAILED, Outcome.ERROR)


_SKIP_KINDS = (Outcome.NOT_APPLICABLE, Outcome.NOT_OBSERVABLE, Outcome.UNKNOWN_HARDWARE)


def not_applicable(reason: str) -> NoReturn:
    """Skip: the requirement does not apply to this platform (N/A with this reason)."""
    pytest.skip(f"{Outcome.NOT_APPLICABLE.value}: {reason}")


def not_observable(reason: str) -> NoReturn:
    """Skip: the capability may exist but this cluster cannot show it (e.g. the lab)."""
    pytest.skip(f"{Outcome.NOT_OBSERVABLE.value}: {reason}")


def unknown_hardware(reason: str) -> NoReturn:
    """Skip: the accelerator is not one the profiles know how to probe."""
    pytest.skip(f"{Outcome.UNKNOWN_HARDWARE.value}: {reason}")


def classify_skip(message: str) -> tuple[Outcome, str]:
    """Split a skip message into its kind and its reason."""
    text = message.strip()
    if text.startswith("Skipped: "):
        text = text[len("Skipped: ") :]
    for kind in _SKIP_KINDS:
        prefix = f"{kind.value}: "
        if text.startswith(prefix):
            return kind, text[len(prefix) :]
    return Outcome.SKIPPED, text
