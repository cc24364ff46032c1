"""The records that flow from checks to verdicts to reports.

Checks produce CheckResult rows (carried on pytest reports as user_properties so they
survive pytest-xdist); verdicts turn them into one RequirementVerdict per requirement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pytest_aiconformance.verdicts.outcomes import Outcome


class Status(StrEnum):
    """Requirement statuses; the first four are the ones PRODUCT.yaml allows."""

    IMPLEMENTED = "Implemented"
    PARTIALLY = "Partially Implemented"
    NOT_IMPLEMENTED = "Not Implemented"
    NA = "N/A"
    NOT_VERIFIED = "Not verified"  # PRODUCT.yaml leaves the status for the user

    @property
    def product_status(self) -> str:
        """The value PRODUCT.yaml gets ('' where the run could not decide)."""
        return "" if self is Status.NOT_VERIFIED else self.value


class Role(StrEnum):
    ESSENTIAL = "essential"  # decides the verdict
    SUPPORTING = "supporting"  # adds evidence; unobservable ones are listed in notes


# Keys of the user_properties each check report carries.
PROP_REQUIREMENT = "requirement"
PROP_LEVEL = "level"
PROP_VERSION = "checklist_version"
PROP_ROLE = "role"
PROP_OUTCOME = "verdict"
PROP_REASON = "reason"
PROP_JUNIT_NAME = "junit_name"
PROP_EVIDENCE = "evidence_file"
PROP_TITLE = "title"
PROP_OUTAGE = "api_outage"  # the phase in which the API server could not be reached
PROP_SETUP_ASSERT = "setup_assertion"  # a fixture asserted something about the platform
PROP_SOLUTION = "solution"  # the alternative solution a parametrized check exercises


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome, as carried from a (possibly remote) test report."""

    nodeid: str
    requirement: str
    role: Role
    outcome: Outcome
    reason: str = ""
    junit_name: str = ""
    title: str = ""
    evidence_file: str = ""  # relative to the report dir
    duration: float = 0.0
    # The alternative solution this check exercises (e.g. one gang scheduler), "" if none:
    # a requirement is proven by any one solution whose essential checks all passed.
    solution: str = ""


@dataclass
class RequirementVerdict:
    """The verdict for one requirement of the selected checklist version."""

    id: str
    category: str
    level: str
    status: Status
    reason: str
    conditional: bool = False
    checks: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # essential checks this run did not run
