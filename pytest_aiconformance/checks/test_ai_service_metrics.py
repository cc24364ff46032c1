"""ai_service_metrics: the platform's monitoring discovers and collects workload metrics (a MUST).

A workload (prometheus-example-app) exposes http_requests_total on /metrics. A scrape object
is built from the platform collector's own selectors: a ServiceMonitor from a Prometheus's
serviceMonitorSelector / serviceMonitorNamespaceSelector (Prometheus Operator), or a
VMServiceScrape from a VMAgent's serviceScrapeSelector / serviceScrapeNamespaceSelector
(VictoriaMetrics operator), or the scrape object a cloud's managed Prometheus reads from every
namespace (a PodMonitoring for Google Cloud Managed Service for Prometheus, an
azmonitoring.coreos.com ServiceMonitor for Azure Monitor); it copies the run-id label onto
every series (targetLabels), so the series are this run's and nobody else's. A client pod
sends exactly N requests; the counter the platform collected must then equal N, no more, no
less. The query API is the one --aic-prometheus names, else the Prometheus's
`prometheus-operated` Service or the VMSingle the VMAgent writes to, reached through the API
server's service proxy (no port-forward). A managed service is queried only where
--aic-prometheus names its query API (a cloud endpoint the API server cannot proxy); without
it the check is not observable, naming the service found and the option. No monitoring at all
is a failure (a MUST); simulated nodes cannot run the workload or the collector, so there the
collection is not observable.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_aiconformance.kit import (
    RUN_LABEL,
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    Target,
    ai_service_metrics,
    monitoring,
    name,
    not_observable,
    probes,
    simulation,
    traffic,
    watch_until,
)

pytestmark = pytest.mark.needs_containers


REQ = "ai_service_metrics"
AS = ai_service_metrics
N_REQUESTS = 37


def find_monitoring(kube: Kube, aic_settings: Settings) -> monitoring.Monitoring:
    """The collector that discovers our scrape object (none: a failure, this is a MUST)."""
    found = monitoring.find_monitoring(kube, aic_settings.prometheus)
    if not found.found:
        raise AssertionError(found.reason)
    return found


def require_query_api(found: monitoring.Monitoring) -> monitoring.QueryEndpoint:
    """A managed service's query API is a cloud endpoint only --aic-prometheus can name: without
    it the collected counter cannot be read (not observable, never a pass). An operator's
    collector with no query API to ask is a failure."""
    if found.endpoint is not None:
        return found.endpoint
    if found.managed is not None:
        not_observable(found.reason)
    raise AssertionError(f"no query API for the platform's monitoring: {found.reason}")


def require_data_plane(kube: Kube, what: str) -> None:
    """Skip (not observable) when every node is simulated: no pod, proxy or traffic runs."""
    nodes = kube.items("v1", "Node")
    if nodes and all(simulation.node_is_simulated(n) for n in nodes):
        not_observable(f"every node ({', '.join(name(n) for n in nodes)}) is simulated (kwok) "
                       f"and runs no containers, so {what} cannot be observed")


@pytest.mark.requirement(REQ)
def test_collected_counter_equals_requests(kube: Kube, namespace: str, run_context: RunContext,
                                          evidence: EvidenceRecorder,
                                          timeout: Callable[[float], float],
                                          aic_settings: Settings) -> None:
    """The platform's monitoring discovers a workload and collects exactly the N requests sent."""
    found = find_monitoring(kube, aic_settings)
    pid = found.ident
    evidence.command(*AS.collector_evidence(found))
    evidence.note(found.reason)
    try:
        plan = found.plan(namespace)
    except monitoring.UnsatisfiableSelector as exc:
        raise AssertionError(AS.undiscoverable(found, exc)) from None
    evidence.note(plan.explanation)
    endpoint = require_query_api(found)
    require_data_plane(kube, "a workload's metrics being scraped and collected")
    if plan.namespace_labels:
        kube.patch("v1", "Namespace", namespace,
                   {"metadata": {"labels": plan.namespace_labels}})
    for obj in AS.workload(namespace, aic_settings.image("metrics-demo")):
        run_context.create(obj)
    sm = monitoring.service_monitor(
        f"aic-{namespace}"[:63], plan, namespace, {"app": AS.APP}, "web", [RUN_LABEL])
    run_context.create(sm)
    evidence.yaml(f"{plan.kind} built from the {found.kind} selectors", sm,
                  f"kubectl get {plan.kind.lower()} -n {plan.monitor_namespace} {name(sm)} "
                  "-o yaml")
    watch_until(kube, Target("apps/v1", "Deployment", namespace, name=AS.APP),
                lambda objs: any(o.get("status", {}).get("readyReplicas", 0) >= 1
                                 for o in objs.values()),
                timeout=timeout(180), expected="the metrics workload Ready")

    run_label = monitoring.prometheus_label_name(RUN_LABEL)
    up_query = AS.up_query(namespace, run_label, run_context.run_id)
    up, discovered = monitoring.poll(
        lambda: monitoring.instant_query(kube, endpoint, up_query),
        lambda r: any(s.value == 1 for s in r.series),
        timeout=timeout(180), interval=5)
    evidence.command(f"curl -s '{endpoint.api_path()}' --data-urlencode 'query={up_query}'",
                     "\n".join(f"{dict(s.metric)} {s.value:g}" for s in up.series) or "(empty)",
                     f"query API: {endpoint.describe()}")
    assert discovered, f"{pid} did not discover the workload (up == 1) within the wait"

    url = f"http://{AS.APP}.{namespace}.svc:{AS.PORT}/"
    script = traffic.client_script([traffic.Case("req", url, N_REQUESTS)])
    probes.run_probe(kube, run_context, namespace,
                     traffic.client_pod("client", namespace, script, aic_settings.image("curl")),
                     timeout=timeout(180))
    answers = traffic.parse_client_log(kube.logs(namespace, "client", "client")).get("req", [])
    evidence.log(f"client pod sent exactly {N_REQUESTS} requests",
                 traffic.status_summary(answers), f"kubectl logs client -n {namespace}")
    problem = AS.requests_problem(answers, N_REQUESTS)
    assert not problem, problem

    counter_query = AS.counter_query(namespace, run_label, run_context.run_id)
    result, _ = monitoring.poll(
        lambda: monitoring.instant_query(kube, endpoint, counter_query),
        lambda r: AS.counter_matches(r, run_label, run_context.run_id, N_REQUESTS).final,
        timeout=timeout(180), interval=5)
    evidence.command(
        f"curl -s '{endpoint.api_path()}' --data-urlencode 'query={counter_query}'",
        AS.counter_table(result, run_label) or "(empty)",
        f"query API: {endpoint.describe()}")
    check = AS.counter_matches(result, run_label, run_context.run_id, N_REQUESTS)
    evidence.note(check.reason)
    assert check.ok, check.reason
