"""ai_service_metrics: the decisions of its checks (checks/test_ai_service_metrics.py), as
pure functions over what the platform's monitoring and the client pod answered.

- The workload: prometheus-example-app behind a Service; its http_requests_total counts the
  requests to `/` (the readiness probe reads /metrics, which it does not count).
- The collector, as evidence: the operator's collector object with its selectors, or the
  managed service's scrape-object API and its in-cluster collectors (cluster.monitoring finds
  them and plans the scrape object).
- Exactly N: the client got N answers, all 200, and the collected counter of this run's
  series equals N, no more, no less.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_aiconformance.cluster import monitoring, traffic, workloads
from pytest_aiconformance.cluster.tables import get_table, name, table
from pytest_aiconformance.parsers import QueryResult

Obj = dict[str, Any]

APP = "inference-app"
PORT = 8080


def workload(namespace: str, image: str) -> list[Obj]:
    """The metrics workload: a Deployment of prometheus-example-app and its Service."""
    ctr = workloads.container("app", ["/bin/prometheus-example-app", f"--bind=:{PORT}"],
                              image=image)
    ctr["ports"] = [{"containerPort": PORT, "name": "web"}]
    # Probes hit /metrics: requests to / are what the counter counts.
    ctr["readinessProbe"] = {"httpGet": {"path": "/metrics", "port": PORT}, "periodSeconds": 2}
    deploy = workloads.deployment(
        workloads.pod(APP, namespace, [ctr], restart_policy="Always", labels={"app": APP}))
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": APP, "namespace": namespace, "labels": {"app": APP}},
           "spec": {"selector": {"app": APP},
                    "ports": [{"name": "web", "port": PORT, "targetPort": PORT}]}}
    return [deploy, svc]


# --- the collector, as evidence -------------------------------------------------------------


def selectors_table(found: monitoring.Monitoring) -> str:
    """The operator's collector object as `kubectl get` shows it, with the selectors that
    decide which scrape objects it reads (and VMAgent's selectAllByDefault)."""
    obj = found.collector or {}
    spec = obj.get("spec") or {}
    stack = found.stack or monitoring.PROMETHEUS_OPERATOR
    keys = stack.selectors
    columns = [("NAMESPACE", lambda o: o["metadata"]["namespace"]), ("NAME", name),
               (keys[0].upper(), lambda o: spec.get(keys[0])),
               (keys[1].upper(), lambda o: spec.get(keys[1]))]
    if stack is monitoring.VICTORIAMETRICS:
        columns.append(("SELECTALLBYDEFAULT", lambda o: spec.get("selectAllByDefault", False)))
    return get_table([dict(obj)], columns)


def collector_evidence(found: monitoring.Monitoring) -> tuple[str, str]:
    """(command, output) that show the collector: the operator's object with its selectors,
    or the managed service's scrape-object API and which of its collectors were seen."""
    managed = found.managed
    if managed is None:
        return f"kubectl get {found.kind.lower()} -A", selectors_table(found)
    group = managed.api_version.split("/")[0]
    return (f"kubectl api-resources --api-group={group}; "
            + "; ".join(f"kubectl get {kind.lower()} -n {ns} {obj}"
                        for kind, ns, obj in managed.agents),
            "\n".join([f"{managed.kind} ({managed.api_version}) served", *found.agents]))


def undiscoverable(found: monitoring.Monitoring, why: Exception) -> str:
    """The failure when the collector's selectors can select no scrape object of ours."""
    kinds = f"{found.stack.kind}s" if found.stack is not None else "scrape objects"
    return f"{found.ident} cannot discover workload {kinds}: {why}"


# --- exactly N ------------------------------------------------------------------------------


def up_query(namespace: str, run_label: str, run_id: str) -> str:
    """PromQL for the scrape target of this run's workload (up == 1 once discovered)."""
    return f'up{{namespace="{namespace}",{run_label}="{run_id}"}}'


def counter_query(namespace: str, run_label: str, run_id: str) -> str:
    """PromQL for the counter of this run's answered requests (code 200)."""
    return (f'http_requests_total{{namespace="{namespace}",code="200",'
            f'{run_label}="{run_id}"}}')


def requests_problem(answers: Sequence[traffic.Answer], n: int) -> str:
    """Why the client's requests cannot be the N counted ("" when all N answered 200)."""
    if len(answers) != n:
        return f"{len(answers)} answers logged for {n} requests"
    ok = sum(1 for a in answers if a.status == 200)
    if ok != n:
        return (f"the workload answered {ok} of {n} requests with 200 "
                f"({traffic.status_summary(answers)})")
    return ""


def counter_table(result: QueryResult, run_label: str) -> str:
    """The counter series as the query answered them (name, pod, run label, value)."""
    return table([[s.metric.get("__name__"), s.metric.get("pod"), s.metric.get(run_label),
                   f"{s.value:g}"] for s in result.series],
                 ["NAME", "POD", run_label, "VALUE"])


@dataclass(frozen=True)
class CounterCheck:
    """The collected counter against the requests sent, and whether waiting can change it."""

    ok: bool
    value: float | None
    reason: str
    final: bool  # True when waiting longer cannot change the verdict (value above N)


def counter_matches(result: QueryResult, run_label: str, run_id: str, n: int) -> CounterCheck:
    """The run's counter series, summed, equals exactly ``n``.

    Only series carrying ``run_label=run_id`` count. No series yet: not ok (keep waiting).
    A value above ``n`` is final: something counted requests this run never sent.
    """
    mine = [s for s in result.series if s.metric.get(run_label) == run_id]
    if not mine:
        others = len(result.series)
        return CounterCheck(False, None, f"no series with {run_label}={run_id!r} "
                                         f"({others} other series)", False)
    value = sum(s.value for s in mine)
    if value == n:
        return CounterCheck(True, value, f"collected counter = {value:g} = {n} requests sent",
                            True)
    if value > n:
        return CounterCheck(False, value, f"collected counter = {value:g}, more than the "
                                          f"{n} requests sent", True)
    return CounterCheck(False, value, f"collected counter = {value:g}, fewer than the {n} "
                                      "requests sent (not yet scraped?)", False)
