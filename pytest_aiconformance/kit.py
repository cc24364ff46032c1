"""The public toolkit of requirement checks: everything a file in conformance_tests/ may use.

Checks import from here only (a test enforces it), so the modules behind it can change
shape without touching a check. Fixtures come from the plugin by name: `kube` (Kube),
`cluster_info` (ClusterInfo), `aic_settings` (Settings: profile, allocation_mode, image(),
timeout()), `run_context` (RunContext: labelled creates, torn down), `namespace` (a fresh
labelled namespace), `evidence` (EvidenceRecorder), `timeout` (scaled seconds), `operators`
(OperatorManager) and `checklist_version`. Markers: `requirement(id, role=, junit=, title=,
solution=)` (`solution` names the parameter whose value is the alternative solution a check
exercises, e.g. one gang scheduler: any one solution passing all its checks decides),
`needs_containers`, `pod_security(level)`, `gpu`.
"""

from __future__ import annotations

from pytest_aiconformance import (
    ai_operators,
    custom_metrics,
    driver_versions,
    gang_scheduling,
    gpu_sharing,
    inference_serving,
    metrics_queries,
    nic_discovery,
    probing,
    sandboxing,
    traffic,
    virtualization,
    workloads,
)
from pytest_aiconformance.accelerators import AcceleratorProfile, profile_for_dra_driver
from pytest_aiconformance.check_records import make_supporting
from pytest_aiconformance.cluster import ApiError, ClusterError, Kube
from pytest_aiconformance.discovery import ClusterInfo
from pytest_aiconformance.evidence import EvidenceRecorder
from pytest_aiconformance.fixtures import collect_diagnostics
from pytest_aiconformance.isolation import RUN_LABEL, RunContext
from pytest_aiconformance.outcomes import not_applicable, not_observable, unknown_hardware
from pytest_aiconformance.parsers import (
    ParseError,
    PrometheusAPIError,
    parse_exposition,
    parse_query_response,
)
from pytest_aiconformance.settings import Settings
from pytest_aiconformance.tables import POD_WIDE, condition, events_table, get_table, name, table
from pytest_aiconformance.waiting import (
    Target,
    WaitTimeout,
    condition_true,
    wait_for_event,
    watch_until,
)

__all__ = [
    # evidence and tables
    "POD_WIDE",
    # the cluster client and what the session found
    "RUN_LABEL",
    # accelerator profiles
    "AcceleratorProfile",
    "ApiError",
    "ClusterError",
    "ClusterInfo",
    "EvidenceRecorder",
    "Kube",
    # parsers
    "ParseError",
    "PrometheusAPIError",
    "RunContext",
    "Settings",
    # waits
    "Target",
    "WaitTimeout",
    "ai_operators",
    "collect_diagnostics",
    "condition",
    "condition_true",
    # builders, probes and check logic (modules)
    "custom_metrics",
    "driver_versions",
    "events_table",
    "gang_scheduling",
    "get_table",
    "gpu_sharing",
    "inference_serving",
    # outcomes other than pass and fail
    "make_supporting",
    "metrics_queries",
    "name",
    "nic_discovery",
    "not_applicable",
    "not_observable",
    "parse_exposition",
    "parse_query_response",
    "probing",
    "profile_for_dra_driver",
    "sandboxing",
    "table",
    "traffic",
    "unknown_hardware",
    "virtualization",
    "wait_for_event",
    "watch_until",
    "workloads",
]
