"""ai_service_metrics: the platform's monitoring discovers and collects workload metrics (a MUST).

A workload (prometheus-example-app) exposes http_requests_total on /metrics. A ServiceMonitor
is built from the platform Prometheus's own serviceMonitorSelector and
serviceMonitorNamespaceSelector, and copies the Service's run-id label onto every series
(targetLabels), so the series are this run's and nobody else's. A client pod sends exactly N
requests; the counter the platform's Prometheus collected must then equal N, no more, no
less. Prometheus is queried through the API server's service proxy (no port-forward).
No Prometheus Operator stack is a failure (a MUST); simulated nodes cannot run the workload or
Prometheus, so there the collection is not observable.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.kit import (
    RUN_LABEL,
    ApiError,
    PrometheusAPIError,
    Target,
    get_table,
    metrics_queries,
    name,
    not_observable,
    parse_query_response,
    probing,
    table,
    traffic,
    watch_until,
    workloads,
)

pytestmark = pytest.mark.needs_containers



REQ = "ai_service_metrics"
MON = "monitoring.coreos.com/v1"
N_REQUESTS = 37
PORT = 8080


def find_prometheus(kube) -> dict[str, Any]:
    if not kube.serves(MON, "Prometheus") or not kube.serves(MON, "ServiceMonitor"):
        raise AssertionError(
            f"no platform monitoring found: {MON} Prometheus/ServiceMonitor are not served "
            "(no Prometheus Operator, e.g. kube-prometheus-stack)")
    proms = kube.items(MON, "Prometheus")
    if not proms:
        raise AssertionError("the Prometheus Operator CRDs exist but no Prometheus object does")
    return sorted(proms, key=lambda p: (p["metadata"]["namespace"], name(p)))[0]


def query(kube, prom: dict[str, Any], promql: str):
    """An instant query through the API server's service proxy to prometheus-operated."""
    ns = prom["metadata"]["namespace"]
    path = f"/api/v1/namespaces/{ns}/services/prometheus-operated:web/proxy/api/v1/query"
    try:
        body = kube.request("GET", path, query={"query": promql})
    except ApiError as exc:
        raise PrometheusAPIError("http", exc.message, exc.status) from None
    return parse_query_response(body)


def require_data_plane(kube, what: str) -> None:
    """Skip (not observable) when every node is simulated: no pod, proxy or traffic runs."""
    nodes = kube.items("v1", "Node")
    if nodes and all(probing.node_is_simulated(n) for n in nodes):
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
    """The platform's Prometheus discovers a workload and collects exactly the N requests sent."""
    prom = find_prometheus(kube)
    pid = f"{prom['metadata']['namespace']}/{name(prom)}"
    evidence.command("kubectl get prometheus -A", get_table([prom], [
        ("NAMESPACE", lambda o: o["metadata"]["namespace"]), ("NAME", name),
        ("SERVICEMONITORSELECTOR", lambda o: o["spec"].get("serviceMonitorSelector")),
        ("NAMESPACESELECTOR", lambda o: o["spec"].get("serviceMonitorNamespaceSelector"))]))
    try:
        plan = metrics_queries.plan_service_monitor(prom, namespace)
    except metrics_queries.UnsatisfiableSelector as exc:
        raise AssertionError(f"Prometheus {pid} cannot discover workload ServiceMonitors: "
                             f"{exc}") from None
    evidence.note(plan.explanation)
    require_data_plane(kube, "a workload's metrics being scraped and collected")
    if plan.namespace_labels:
        kube.patch("v1", "Namespace", namespace,
                   {"metadata": {"labels": plan.namespace_labels}})
    for obj in workload(namespace, aic_settings.image("metrics-demo")):
        run_context.create(obj)
    sm = metrics_queries.service_monitor(
        f"aic-{namespace}"[:63], plan, namespace, {"app": "inference-app"}, "web", [RUN_LABEL])
    run_context.create(sm)
    evidence.yaml("ServiceMonitor built from the Prometheus selectors", sm,
                  f"kubectl get servicemonitor -n {plan.monitor_namespace} {name(sm)} -o yaml")
    watch_until(kube, Target("apps/v1", "Deployment", namespace, name="inference-app"),
                lambda objs: any(o.get("status", {}).get("readyReplicas", 0) >= 1
                                 for o in objs.values()),
                timeout=timeout(180), expected="the metrics workload Ready")

    run_label = metrics_queries.prometheus_label_name(RUN_LABEL)
    up_query = f'up{{namespace="{namespace}",{run_label}="{run_context.run_id}"}}'
    up, discovered = metrics_queries.poll(
        lambda: query(kube, prom, up_query),
        lambda r: any(s.value == 1 for s in r.series),
        timeout=timeout(180), interval=5)
    evidence.command(f"curl -s '<prometheus>/api/v1/query' --data-urlencode 'query={up_query}'",
                     "\n".join(f"{dict(s.metric)} {s.value:g}" for s in up.series) or "(empty)",
                     "through the API server service proxy")
    assert discovered, f"Prometheus {pid} did not discover the workload (up == 1) within the wait"

    url = f"http://inference-app.{namespace}.svc:{PORT}/"
    script = traffic.client_script([traffic.Case("req", url, N_REQUESTS)])
    probing.run_probe(kube, run_context, namespace,
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
    result, _ = metrics_queries.poll(
        lambda: query(kube, prom, counter_query),
        lambda r: metrics_queries.counter_matches(r, run_label, run_context.run_id,
                                                  N_REQUESTS).final,
        timeout=timeout(180), interval=5)
    evidence.command(
        f"curl -s '<prometheus>/api/v1/query' --data-urlencode 'query={counter_query}'",
        table([[dict(s.metric).get("__name__"), dict(s.metric).get("pod"),
                dict(s.metric).get(run_label), f"{s.value:g}"] for s in result.series],
              ["NAME", "POD", run_label, "VALUE"]) or "(empty)",
        "through the API server service proxy")
    check = metrics_queries.counter_matches(result, run_label, run_context.run_id, N_REQUESTS)
    evidence.note(check.reason)
    assert check.ok, check.reason
