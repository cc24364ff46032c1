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

from typing import Any

import pytest

from pytest_aiconformance.kit import (
    RUN_LABEL,
    Target,
    get_table,
    monitoring,
    name,
    not_observable,
    probes,
    simulation,
    table,
    traffic,
    watch_until,
    workloads,
)

pytestmark = pytest.mark.needs_containers



REQ = "ai_service_metrics"
N_REQUESTS = 37
PORT = 8080


def find_monitoring(kube, aic_settings):
    """The collector that discovers our scrape object (none: a failure, this is a MUST)."""
    stack = monitoring.find_monitoring(kube, aic_settings.prometheus)
    if not stack.found:
        raise AssertionError(stack.reason)
    return stack


def require_query_api(monitoring) -> None:
    """A managed service's query API is a cloud endpoint only --aic-prometheus can name: without
    it the collected counter cannot be read (not observable, never a pass). An operator's
    collector with no query API to ask is a failure."""
    if monitoring.endpoint is not None:
        return
    if monitoring.managed is not None:
        not_observable(monitoring.reason)
    raise AssertionError(f"no query API for the platform's monitoring: {monitoring.reason}")


def record_collector(monitoring, evidence) -> None:
    """The collector as kubectl shows it: the operator's CR with its selectors, or the managed
    service's scrape-object API and its in-cluster collectors."""
    managed = monitoring.managed
    if managed is None:
        evidence.command(f"kubectl get {monitoring.kind.lower()} -A", selectors_table(monitoring))
        return
    group = managed.api_version.split("/")[0]
    evidence.command(
        f"kubectl api-resources --api-group={group}; "
        + "; ".join(f"kubectl get {kind.lower()} -n {ns} {obj}" for kind, ns, obj in
                    managed.agents),
        "\n".join([f"{managed.kind} ({managed.api_version}) served", *monitoring.agents]))


def selectors_table(monitoring) -> str:
    obj = monitoring.collector
    spec = obj.get("spec") or {}
    keys = (("serviceMonitorSelector", "serviceMonitorNamespaceSelector")
            if monitoring.kind == "Prometheus" else
            ("serviceScrapeSelector", "serviceScrapeNamespaceSelector"))
    columns = [("NAMESPACE", lambda o: o["metadata"]["namespace"]), ("NAME", name),
               (keys[0].upper(), lambda o: spec.get(keys[0])),
               (keys[1].upper(), lambda o: spec.get(keys[1]))]
    if monitoring.kind == "VMAgent":
        columns.append(("SELECTALLBYDEFAULT", lambda o: spec.get("selectAllByDefault", False)))
    return get_table([obj], columns)


def require_data_plane(kube, what: str) -> None:
    """Skip (not observable) when every node is simulated: no pod, proxy or traffic runs."""
    nodes = kube.items("v1", "Node")
    if nodes and all(simulation.node_is_simulated(n) for n in nodes):
        not_observable(f"every node ({', '.join(name(n) for n in nodes)}) is simulated (kwok) "
                       f"and runs no containers, so {what} cannot be observed")


def workload(namespace: str, image: str) -> list[dict[str, Any]]:
    ctr = workloads.container("app", ["/bin/prometheus-example-app", f"--bind=:{PORT}"],
                              image=image)
    ctr["ports"] = [{"containerPort": PORT, "name": "web"}]
    # Probes hit /metrics: requests to / are what the counter counts.
    ctr["readinessProbe"] = {"httpGet": {"path": "/metrics", "port": PORT}, "periodSeconds": 2}
    pod = workloads.pod("inference-app", namespace, [ctr], restart_policy="Always",
                        labels={"app": "inference-app"})
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "inference-app", "namespace": namespace},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "inference-app"}},
                       "template": {"metadata": {"labels": {"app": "inference-app"}},
                                    "spec": pod["spec"]}}}
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "inference-app", "namespace": namespace,
                        "labels": {"app": "inference-app"}},
           "spec": {"selector": {"app": "inference-app"},
                    "ports": [{"name": "web", "port": PORT, "targetPort": PORT}]}}
    return [deploy, svc]


@pytest.mark.requirement(REQ)
def test_collected_counter_equals_requests(kube, namespace, run_context, evidence, timeout,
                                          aic_settings):
    """The platform's monitoring discovers a workload and collects exactly the N requests sent."""
    stack = find_monitoring(kube, aic_settings)
    pid = stack.ident
    endpoint = stack.endpoint
    record_collector(stack, evidence)
    evidence.note(stack.reason)
    try:
        plan = stack.plan(namespace)
    except monitoring.UnsatisfiableSelector as exc:
        kinds = "ServiceMonitors" if stack.kind == "Prometheus" else "VMServiceScrapes"
        raise AssertionError(f"{pid} cannot discover workload {kinds}: {exc}") from None
    evidence.note(plan.explanation)
    require_query_api(stack)
    require_data_plane(kube, "a workload's metrics being scraped and collected")
    if plan.namespace_labels:
        kube.patch("v1", "Namespace", namespace,
                   {"metadata": {"labels": plan.namespace_labels}})
    for obj in workload(namespace, aic_settings.image("metrics-demo")):
        run_context.create(obj)
    sm = monitoring.service_monitor(
        f"aic-{namespace}"[:63], plan, namespace, {"app": "inference-app"}, "web", [RUN_LABEL])
    run_context.create(sm)
    evidence.yaml(f"{plan.kind} built from the {stack.kind} selectors", sm,
                  f"kubectl get {plan.kind.lower()} -n {plan.monitor_namespace} {name(sm)} "
                  "-o yaml")
    watch_until(kube, Target("apps/v1", "Deployment", namespace, name="inference-app"),
                lambda objs: any(o.get("status", {}).get("readyReplicas", 0) >= 1
                                 for o in objs.values()),
                timeout=timeout(180), expected="the metrics workload Ready")

    run_label = monitoring.prometheus_label_name(RUN_LABEL)
    up_query = f'up{{namespace="{namespace}",{run_label}="{run_context.run_id}"}}'
    up, discovered = monitoring.poll(
        lambda: monitoring.instant_query(kube, endpoint, up_query),
        lambda r: any(s.value == 1 for s in r.series),
        timeout=timeout(180), interval=5)
    evidence.command(f"curl -s '{endpoint.api_path()}' --data-urlencode 'query={up_query}'",
                     "\n".join(f"{dict(s.metric)} {s.value:g}" for s in up.series) or "(empty)",
                     f"query API: {endpoint.describe()}")
    assert discovered, f"{pid} did not discover the workload (up == 1) within the wait"

    url = f"http://inference-app.{namespace}.svc:{PORT}/"
    script = traffic.client_script([traffic.Case("req", url, N_REQUESTS)])
    probes.run_probe(kube, run_context, namespace,
                      traffic.client_pod("client", namespace, script, aic_settings.image("curl")),
                      timeout=timeout(180))
    answers = traffic.parse_client_log(kube.logs(namespace, "client", "client")).get("req", [])
    evidence.log(f"client pod sent exactly {N_REQUESTS} requests",
                 traffic.status_summary(answers), f"kubectl logs client -n {namespace}")
    ok = sum(1 for a in answers if a.status == 200)
    assert len(answers) == N_REQUESTS, f"{len(answers)} answers logged for {N_REQUESTS} requests"
    assert ok == N_REQUESTS, (f"the workload answered {ok} of {N_REQUESTS} requests with 200 "
                              f"({traffic.status_summary(answers)})")

    counter_query = (f'http_requests_total{{namespace="{namespace}",code="200",'
                     f'{run_label}="{run_context.run_id}"}}')
    result, _ = monitoring.poll(
        lambda: monitoring.instant_query(kube, endpoint, counter_query),
        lambda r: monitoring.counter_matches(r, run_label, run_context.run_id,
                                                  N_REQUESTS).final,
        timeout=timeout(180), interval=5)
    evidence.command(
        f"curl -s '{endpoint.api_path()}' --data-urlencode 'query={counter_query}'",
        table([[dict(s.metric).get("__name__"), dict(s.metric).get("pod"),
                dict(s.metric).get(run_label), f"{s.value:g}"] for s in result.series],
              ["NAME", "POD", run_label, "VALUE"]) or "(empty)",
        f"query API: {endpoint.describe()}")
    check = monitoring.counter_matches(result, run_label, run_context.run_id, N_REQUESTS)
    evidence.note(check.reason)
    assert check.ok, check.reason
