"""The public toolkit of requirement checks: everything a file in checks/ may use.

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

from pytest_aiconformance.cluster import (
    allocations,
    monitoring,
    probes,
    simulation,
    traffic,
    workloads,
)
from pytest_aiconformance.cluster.client import ApiError, ClusterError, Kube
from pytest_aiconformance.cluster.discovery import ClusterInfo
from pytest_aiconformance.cluster.operators import OperatorManager
from pytest_aiconformance.cluster.profiles import (
    AcceleratorProfile,
    MetricNames,
    profile_for_dra_driver,
)
from pytest_aiconformance.cluster.run_objects import RUN_LABEL, RunContext
from pytest_aiconformance.cluster.tables import (
    POD_WIDE,
    condition,
    events_table,
    get_table,
    name,
    table,
)
from pytest_aiconformance.cluster.waits import (
    Target,
    WaitTimeout,
    condition_true,
    failed_pod,
    wait_for_event,
    watch_until,
)
from pytest_aiconformance.parsers import (
    ParseError,
    PrometheusAPIError,
    parse_exposition,
    parse_query_response,
)
from pytest_aiconformance.requirements import (
    accelerator_metrics,
    advanced_inference_ingress,
    ai_inference,
    ai_service_metrics,
    cluster_autoscaling,
    disaggregated_inference,
    dra_support,
    driver_runtime_management,
    gang_scheduling,
    gpu_sharing,
    high_performance_networking,
    pod_autoscaling,
    robust_controller,
    secure_accelerator_access,
    virtualized_accelerator,
    workload_sandboxing,
)
from pytest_aiconformance.run.check_records import make_supporting
from pytest_aiconformance.run.fixtures import collect_diagnostics
from pytest_aiconformance.run.settings import Settings
from pytest_aiconformance.verdicts.evidence import EvidenceRecorder
from pytest_aiconformance.verdicts.outcomes import not_applicable, not_observable, unknown_hardware

__all__ = [
    "POD_WIDE",
    "RUN_LABEL",
    "AcceleratorProfile",
    "ApiError",
    "ClusterError",
    "ClusterInfo",
    "EvidenceRecorder",
    "Kube",
    "MetricNames",
    "OperatorManager",
    "ParseError",
    "PrometheusAPIError",
    "RunContext",
    "Settings",
    "Target",
    "WaitTimeout",
    "accelerator_metrics",
    "advanced_inference_ingress",
    "ai_inference",
    "ai_service_metrics",
    "allocations",
    "cluster_autoscaling",
    "collect_diagnostics",
    "condition",
    "condition_true",
    "disaggregated_inference",
    "dra_support",
    "driver_runtime_management",
    "events_table",
    "failed_pod",
    "gang_scheduling",
    "get_table",
    "gpu_sharing",
    "high_performance_networking",
    "make_supporting",
    "monitoring",
    "name",
    "not_applicable",
    "not_observable",
    "parse_exposition",
    "parse_query_response",
    "pod_autoscaling",
    "probes",
    "profile_for_dra_driver",
    "robust_controller",
    "secure_accelerator_access",
    "simulation",
    "table",
    "traffic",
    "unknown_hardware",
    "virtualized_accelerator",
    "wait_for_event",
    "watch_until",
    "workload_sandboxing",
    "workloads",
]
