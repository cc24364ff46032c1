"""The platform's monitoring, as the metrics checks find and ask it: shared by several
requirements (ai_service_metrics, accelerator_metrics, pod_autoscaling).

- Which monitoring (`STACKS`, the one table of the stacks this suite knows): the Prometheus
  Operator's Prometheus (scrapes ServiceMonitors), the VictoriaMetrics operator's VMAgent
  (scrapes VMServiceScrapes), else a cloud's managed Prometheus whose in-cluster collectors
  read scrape objects from the Kubernetes API (Google Cloud Managed Service for Prometheus,
  PodMonitoring; Azure Monitor managed Prometheus, azmonitoring.coreos.com ServiceMonitor), and
  where to query it: `--aic-prometheus` (a URL, or namespace/service:port behind the API
  server's service proxy), else the Prometheus CR's `prometheus-operated` Service, else a
  VMSingle's Service. A managed service's query API is a cloud endpoint, not a Service:
  without the option it has none.
- Scrape-object discovery: labels that satisfy the collector's own selectors (the
  prometheus-operator rule: a null selector matches nothing, an empty one matches all; a null
  namespace selector means "the Prometheus object's own namespace only"; VMAgent: both null
  follows selectAllByDefault, a null object selector takes every object of the selected
  namespaces).

The I/O here is `find_monitoring` (listing the operators' objects), `instant_query` (one
query) and `poll` (asking again until an answer satisfies).
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_aiconformance.cluster.client import ApiError, Kube
from pytest_aiconformance.parsers import PrometheusAPIError, QueryResult, parse_query_response

T = TypeVar("T")

MON = "monitoring.coreos.com/v1"  # Prometheus Operator: Prometheus, ServiceMonitor
VM = "operator.victoriametrics.com/v1beta1"  # VictoriaMetrics operator: VMAgent, VMServiceScrape


@dataclass(frozen=True)
class MetricsStack:
    """One kind of platform monitoring, as far as the Kubernetes API shows it, and the scrape
    object this suite creates for it (`api_version`, `kind`; `shape`: MonitorPlan.shape).

    An operator's stack names its collector's kind (`collector_kind`: the object whose
    `selectors`, object and namespace, pick the scrape objects it reads). A cloud's managed
    Prometheus has none: its in-cluster collectors (`agents`, (kind, namespace, name), evidence
    only) read every object of its kind in every namespace, and its query API is a cloud
    endpoint the API server cannot proxy (`query_api`), so only --aic-prometheus can name it.
    """

    title: str
    api_version: str
    kind: str
    shape: str = "service"
    collector_kind: str = ""
    selectors: tuple[str, str] = ("", "")
    example: str = ""  # a common install, for the message that no stack is served
    agents: tuple[tuple[str, str, str], ...] = ()
    query_api: str = ""

    @property
    def managed(self) -> bool:
        """A cloud's managed Prometheus: no collector object to read selectors from."""
        return not self.collector_kind

    def apis(self) -> str:
        """The APIs that would show it, for the message that no stack is served."""
        kinds = f"{self.collector_kind}/{self.kind}" if self.collector_kind else self.kind
        example = f", {self.example}" if self.example else ""
        return f"{self.api_version} {kinds} ({self.title}{example})"


PROMETHEUS_OPERATOR = MetricsStack(
    "Prometheus Operator", MON, "ServiceMonitor", collector_kind="Prometheus",
    selectors=("serviceMonitorSelector", "serviceMonitorNamespaceSelector"),
    example="e.g. kube-prometheus-stack")
VICTORIAMETRICS = MetricsStack(
    "VictoriaMetrics operator", VM, "VMServiceScrape", collector_kind="VMAgent",
    selectors=("serviceScrapeSelector", "serviceScrapeNamespaceSelector"))
# The one table of the stacks this suite finds, in the order they are chosen: an operator's
# collector is the platform's own and answers through the API server, so it comes first.
STACKS: tuple[MetricsStack, ...] = (
    PROMETHEUS_OPERATOR,
    VICTORIAMETRICS,
    MetricsStack(
        "Google Cloud Managed Service for Prometheus", "monitoring.googleapis.com/v1",
        "PodMonitoring", "gmp-pod", agents=(("DaemonSet", "gmp-system", "collector"),),
        query_api="the Cloud Monitoring Prometheus API (https://monitoring.googleapis.com/v1/"
        "projects/PROJECT/location/global/prometheus), or a GMP frontend Service that adds "
        "credentials (NAMESPACE/frontend:9090)"),
    MetricsStack(
        "Azure Monitor managed service for Prometheus", "azmonitoring.coreos.com/v1",
        "ServiceMonitor", "service",
        agents=(("Deployment", "kube-system", "ama-metrics"),
                ("DaemonSet", "kube-system", "ama-metrics-node")),
        query_api="the Azure Monitor workspace's query endpoint (https://WORKSPACE.REGION."
        "prometheus.monitor.azure.com), or an authenticating proxy Service in front of it"),
)
OPERATOR_STACKS = tuple(s for s in STACKS if not s.managed)
MANAGED_COLLECTORS = tuple(s for s in STACKS if s.managed)


class UnsatisfiableSelector(ValueError):
    """No label set can satisfy the selector (e.g. In with no values)."""


def labels_satisfying(selector: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Labels that make an object match a LabelSelector; None when the selector is null.

    matchLabels are copied; ``In`` takes its first value; ``Exists`` gets the value
    ``aiconformance``; ``NotIn`` / ``DoesNotExist`` add nothing (our objects carry no such
    label unless an earlier rule set it, which is then an unsatisfiable selector).
    """
    if selector is None:
        return None
    labels = {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}
    forbidden: dict[str, set[str] | None] = {}
    for expr in selector.get("matchExpressions") or []:
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        if op == "In":
            if not values:
                raise UnsatisfiableSelector(f"{key} In () matches nothing")
            if key in labels and labels[key] not in values:
                raise UnsatisfiableSelector(f"{key}={labels[key]} contradicts {key} In {values}")
            labels.setdefault(key, values[0])
        elif op == "Exists":
            labels.setdefault(key, "aiconformance")
        elif op == "NotIn":
            forbidden[key] = set(values)
        elif op == "DoesNotExist":
            forbidden[key] = None
        else:
            raise UnsatisfiableSelector(f"unknown selector operator {op!r}")
    for key, bad in forbidden.items():
        if key in labels and (bad is None or labels[key] in bad):
            raise UnsatisfiableSelector(f"label {key}={labels[key]} is excluded by the selector")
    return labels


@dataclass(frozen=True)
class MonitorPlan:
    """Where and how to create a scrape object (a ServiceMonitor, or a VMServiceScrape for a
    VMAgent) so that a given collector picks it up."""

    prometheus: str  # namespace/name of the collector (Prometheus or VMAgent)
    monitor_namespace: str
    monitor_labels: dict[str, str]
    namespace_labels: dict[str, str]  # labels our workload namespace must carry
    explanation: str
    kind: str = "ServiceMonitor"
    api_version: str = MON
    shape: str = "service"  # "service" (ServiceMonitor fields) or "gmp-pod" (PodMonitoring)


def plan_service_monitor(prometheus: Mapping[str, Any], workload_namespace: str) -> MonitorPlan:
    """Read a Prometheus CR's serviceMonitorSelector / serviceMonitorNamespaceSelector.

    Raises UnsatisfiableSelector when this Prometheus selects no ServiceMonitor at all.
    """
    meta = prometheus.get("metadata", {})
    spec = prometheus.get("spec", {}) or {}
    prom_ns = str(meta.get("namespace", ""))
    ident = f"{prom_ns}/{meta.get('name', '')}"
    if "serviceMonitorSelector" not in spec or spec.get("serviceMonitorSelector") is None:
        raise UnsatisfiableSelector(
            f"Prometheus {ident} has no serviceMonitorSelector: it selects no ServiceMonitor")
    labels = labels_satisfying(spec["serviceMonitorSelector"]) or {}
    ns_selector = spec.get("serviceMonitorNamespaceSelector")
    if ns_selector is None:
        return MonitorPlan(ident, prom_ns, labels, {},
                           f"serviceMonitorNamespaceSelector is null (own namespace only): the "
                           f"ServiceMonitor goes into {prom_ns} and selects namespace "
                           f"{workload_namespace}; labels {labels or '{}'} from "
                           "serviceMonitorSelector")
    ns_labels = labels_satisfying(ns_selector) or {}
    return MonitorPlan(ident, workload_namespace, labels, ns_labels,
                       f"ServiceMonitor labels {labels or '{}'} from serviceMonitorSelector; "
                       f"namespace labels {ns_labels or '{}'} from "
                       "serviceMonitorNamespaceSelector")


def plan_vm_service_scrape(vmagent: Mapping[str, Any], workload_namespace: str) -> MonitorPlan:
    """Read a VMAgent's serviceScrapeSelector / serviceScrapeNamespaceSelector.

    VictoriaMetrics operator rules (api/operator/v1beta1 CommonScrapeParams): both null ->
    selectAllByDefault decides (true: every VMServiceScrape, false: none); a null namespace
    selector -> the VMAgent's own namespace only; a null object selector -> every object of
    the selected namespaces. Raises UnsatisfiableSelector when the VMAgent selects none.
    """
    meta = vmagent.get("metadata", {})
    spec = vmagent.get("spec", {}) or {}
    agent_ns = str(meta.get("namespace", ""))
    ident = f"{agent_ns}/{meta.get('name', '')}"
    selector = spec.get("serviceScrapeSelector")
    ns_selector = spec.get("serviceScrapeNamespaceSelector")

    def plan(namespace: str, labels: dict[str, str], ns_labels: dict[str, str],
             why: str) -> MonitorPlan:
        return MonitorPlan(ident, namespace, labels, ns_labels, why, VICTORIAMETRICS.kind,
                           VICTORIAMETRICS.api_version)

    if selector is None and ns_selector is None:
        if not spec.get("selectAllByDefault"):
            raise UnsatisfiableSelector(
                f"VMAgent {ident} has neither serviceScrapeSelector nor "
                "serviceScrapeNamespaceSelector and selectAllByDefault is false: it selects no "
                "VMServiceScrape")
        return plan(workload_namespace, {}, {},
                    "selectAllByDefault: true and no scrape selectors: every VMServiceScrape "
                    f"is selected; it goes into {workload_namespace}")
    labels = labels_satisfying(selector) or {}
    if ns_selector is None:
        return plan(agent_ns, labels, {},
                    f"serviceScrapeNamespaceSelector is null (own namespace only): the "
                    f"VMServiceScrape goes into {agent_ns} and selects namespace "
                    f"{workload_namespace}; labels {labels or '{}'} from serviceScrapeSelector")
    ns_labels = labels_satisfying(ns_selector) or {}
    return plan(workload_namespace, labels, ns_labels,
                f"VMServiceScrape labels {labels or '{}'} from serviceScrapeSelector; namespace "
                f"labels {ns_labels or '{}'} from serviceScrapeNamespaceSelector")


def service_monitor(name: str, plan: MonitorPlan, workload_namespace: str,
                    selector: Mapping[str, str], port: str, target_labels: Sequence[str],
                    interval: str = "5s", path: str = "/metrics") -> dict[str, Any]:
    """The plan's scrape object: a ServiceMonitor or a VMServiceScrape (same spec fields; the
    selector and targetLabels are the Service's), or a GMP PodMonitoring (the selector and
    targetLabels are the pods': the workload's pods carry the Service's selector labels and,
    from the run context, the same run labels)."""
    if plan.shape == "gmp-pod":
        return gmp_pod_monitoring(name, plan, selector, port, target_labels, interval, path)
    return {
        "apiVersion": plan.api_version,
        "kind": plan.kind,
        "metadata": {"name": name, "namespace": plan.monitor_namespace,
                     "labels": dict(plan.monitor_labels)},
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "namespaceSelector": {"matchNames": [workload_namespace]},
            "targetLabels": list(target_labels),
            "endpoints": [{"port": port, "path": path, "interval": interval}],
        },
    }


def gmp_pod_monitoring(name: str, plan: MonitorPlan, selector: Mapping[str, str], port: str,
                       target_labels: Sequence[str], interval: str = "5s",
                       path: str = "/metrics") -> dict[str, Any]:
    """A monitoring.googleapis.com/v1 PodMonitoring: it selects pods of its own namespace and
    copies pod labels onto the series with targetLabels.fromPod (renamed to valid Prometheus
    label names, as the check queries them)."""
    return {
        "apiVersion": plan.api_version,
        "kind": plan.kind,
        "metadata": {"name": name, "namespace": plan.monitor_namespace,
                     "labels": dict(plan.monitor_labels)},
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "endpoints": [{"port": port, "path": path, "interval": interval}],
            "targetLabels": {"fromPod": [{"from": label, "to": prometheus_label_name(label)}
                                         for label in target_labels]},
        },
    }


# --- which monitoring, and where to query it ------------------------------------------------


def plan_managed(managed: MetricsStack, workload_namespace: str) -> MonitorPlan:
    """The managed collectors read every scrape object of their kind in every namespace: ours
    goes beside the workload, with no labels to add."""
    return MonitorPlan(managed.title, workload_namespace, {}, {},
                       f"{managed.title} reads every {managed.kind} ({managed.api_version}) "
                       f"in every namespace: the {managed.kind} goes into {workload_namespace}",
                       managed.kind, managed.api_version, managed.shape)



@dataclass(frozen=True)
class QueryEndpoint:
    """A Prometheus-compatible query API: a Service behind the API server's service proxy, or
    a URL the test runner reaches itself; ``prefix`` comes before ``/api/v1/query``."""

    source: str  # how it was chosen, for evidence
    namespace: str = ""
    service: str = ""
    port: str = ""
    prefix: str = ""
    url: str = ""  # scheme://host[:port][/prefix] when reached directly

    def api_path(self, api: str = "/api/v1/query") -> str:
        """The URL (direct) or API server path (service proxy) of one query API call."""
        if self.url:
            return self.url.rstrip("/") + api
        return (f"/api/v1/namespaces/{self.namespace}/services/{self.service}:{self.port}"
                f"/proxy{self.prefix}{api}")

    def describe(self) -> str:
        where = self.url or f"service {self.namespace}/{self.service}:{self.port}{self.prefix}"
        return f"{where} ({self.source})"


_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_SERVICE_REF = re.compile(rf"^({_DNS_LABEL})/({_DNS_LABEL}):([0-9]{{1,5}}|[a-z0-9-]{{1,15}})"
                          r"(/[^\s?#]*)?$")
PROMETHEUS_FORMS = "http(s)://HOST[:PORT][/PATH] or NAMESPACE/SERVICE:PORT[/PATH]"


def parse_prometheus_option(text: str, source: str = "--aic-prometheus") -> QueryEndpoint:
    """``--aic-prometheus``: a URL, or ``namespace/service:port`` (a port name or number) with an
    optional path prefix (e.g. vmselect's ``/select/0/prometheus``). ValueError, one line."""
    value = text.strip()
    if value.startswith(("http://", "https://")):
        parts = urllib.parse.urlsplit(value)
        if not parts.hostname or parts.query or parts.fragment or any(
                c.isspace() for c in value):
            raise ValueError(f"expected {PROMETHEUS_FORMS}, got {text!r}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"bad port in {text!r}") from None
        return QueryEndpoint(source, url=value.rstrip("/"))
    match = _SERVICE_REF.match(value)
    if match is None:
        raise ValueError(f"expected {PROMETHEUS_FORMS}, got {text!r}")
    namespace, service, port, prefix = match.groups()
    if port.isdigit() and not 0 < int(port) < 65536:
        raise ValueError(f"port {port} out of range in {text!r}")
    if not port.isdigit() and (not re.search("[a-z]", port) or port.startswith("-")
                               or port.endswith("-")):
        raise ValueError(f"{port!r} is neither a port number nor a port name in {text!r}")
    return QueryEndpoint(source, namespace, service, port, (prefix or "").rstrip("/"))


def _ident(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


@dataclass(frozen=True)
class Monitoring:
    """The platform's monitoring as this run uses it: the stack found (None: none), the
    collector object that discovers scrape objects (a Prometheus or a VMAgent; None for a
    managed service), the query endpoint, and why (or why not)."""

    stack: MetricsStack | None
    collector: Mapping[str, Any] | None
    endpoint: QueryEndpoint | None
    reason: str
    agents: tuple[str, ...] = ()  # which of a managed service's collectors were seen

    @property
    def kind(self) -> str:
        """The collector's kind (Prometheus, VMAgent), a managed service's scrape-object kind,
        or "" when none was found."""
        if self.stack is None:
            return ""
        return self.stack.collector_kind or self.stack.kind

    @property
    def managed(self) -> MetricsStack | None:
        """The cloud's managed Prometheus found, if that is what collects here."""
        return self.stack if self.stack is not None and self.stack.managed else None

    @property
    def found(self) -> bool:
        return self.collector is not None or self.managed is not None

    @property
    def ident(self) -> str:
        if self.managed is not None:
            return self.managed.title
        if self.collector is None:
            return ""
        namespace, name = _ident(self.collector)
        return f"{self.kind} {namespace}/{name}"

    def plan(self, workload_namespace: str) -> MonitorPlan:
        """Where our scrape object goes (UnsatisfiableSelector when none can be selected)."""
        if self.managed is not None:
            return plan_managed(self.managed, workload_namespace)
        if self.collector is None:
            raise UnsatisfiableSelector(self.reason)
        if self.stack is VICTORIAMETRICS:
            return plan_vm_service_scrape(self.collector, workload_namespace)
        return plan_service_monitor(self.collector, workload_namespace)


def _vmsingle_for(vmagent: Mapping[str, Any] | None,
                  vmsingles: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The VMSingle the VMAgent remote-writes to (its Service in a remoteWrite URL), else the
    first one."""
    ordered = sorted(vmsingles, key=_ident)
    urls = [str(rw.get("url", "")) for rw in ((vmagent or {}).get("spec", {}) or {}).get(
        "remoteWrite") or []]
    for single in ordered:
        namespace, name = _ident(single)
        if any(re.search(rf"//vmsingle-{re.escape(name)}(\.{re.escape(namespace)})?[.:/]", u)
               for u in urls):
            return single
    return ordered[0] if ordered else None


def choose_managed(managed: MetricsStack, agents: Sequence[str],
                   option: QueryEndpoint | None) -> Monitoring:
    """A managed collector: queried only where --aic-prometheus names its query API (its own
    is a cloud endpoint); ``agents`` says which of its in-cluster collectors were seen."""
    seen = "; ".join(agents) or "none of its collectors seen"
    what = (f"{managed.title} collects here ({seen}): its collectors read {managed.kind} "
            f"objects ({managed.api_version}) from every namespace")
    if option is not None:
        return Monitoring(managed, None, option,
                          f"{what}; queried at {option.describe()}", tuple(agents))
    return Monitoring(managed, None, None,
                      f"{what}; its query API is {managed.query_api}, which the API server "
                      "cannot proxy, so nothing it collected can be read: pass that query API "
                      f"with --aic-prometheus ({PROMETHEUS_FORMS})", tuple(agents))


def _collector(stack: MetricsStack, obj: Mapping[str, Any], endpoint: QueryEndpoint | None,
               where: str) -> Monitoring:
    """An operator's collector object, and where it is queried (``where`` says so)."""
    namespace, name = _ident(obj)
    return Monitoring(stack, obj, endpoint,
                      f"{stack.collector_kind} {namespace}/{name} ({stack.title}) discovers "
                      f"{stack.kind}s; {where}")


def choose_monitoring(prometheuses: Sequence[Mapping[str, Any]],
                      vmagents: Sequence[Mapping[str, Any]],
                      vmsingles: Sequence[Mapping[str, Any]] = (),
                      option: QueryEndpoint | None = None,
                      managed: Sequence[tuple[MetricsStack, Sequence[str]]] = ()
                      ) -> Monitoring:
    """The collector (first Prometheus, else first VMAgent, by namespace/name, else the first
    managed collector served, with the collectors seen of it) and where to query:
    ``option`` (--aic-prometheus) wins; a Prometheus is queried at its
    ``prometheus-operated:web`` Service; a VMAgent at the VMSingle it writes to (a cluster
    VMCluster's vmselect has to be named with --aic-prometheus); a managed collector only at
    ``option``. A Prometheus or VMAgent comes first: it is the platform's own and answers
    through the API server."""
    if prometheuses:
        prom = sorted(prometheuses, key=_ident)[0]
        namespace, name = _ident(prom)
        endpoint = option or QueryEndpoint(f"Prometheus {namespace}/{name}", namespace,
                                           "prometheus-operated", "web")
        return _collector(PROMETHEUS_OPERATOR, prom, endpoint,
                          f"queried at {endpoint.describe()}")
    if vmagents:
        agent = sorted(vmagents, key=_ident)[0]
        single = _vmsingle_for(agent, vmsingles)
        found: QueryEndpoint | None = option
        if found is None and single is not None:
            s_ns, s_name = _ident(single)
            found = QueryEndpoint(f"VMSingle {s_ns}/{s_name}", s_ns, f"vmsingle-{s_name}",
                                  "http")
        where = (f"queried at {found.describe()}" if found else
                 "no VMSingle to query: name the query API (e.g. a VMCluster's vmselect) with "
                 "--aic-prometheus")
        return _collector(VICTORIAMETRICS, agent, found, where)
    if managed:
        return choose_managed(managed[0][0], managed[0][1], option)
    return Monitoring(None, None, option,
                      " and ".join(f"no {s.collector_kind} ({s.title}, {s.api_version})"
                                   for s in OPERATOR_STACKS)
                      + " object exists to discover the workload")


def managed_agents(kube: Kube, managed: MetricsStack) -> list[str]:
    """Which of a managed service's in-cluster collectors exist (evidence, not a verdict: a
    missing one shows as collected series missing later)."""
    seen = []
    for kind, namespace, name in managed.agents:
        obj = None
        if kube.serves("apps/v1", kind):
            try:
                obj = kube.get_or_none("apps/v1", kind, name, namespace)
            except ApiError as exc:
                if exc.status != 403:
                    raise
                seen.append(f"{kind} {namespace}/{name} not readable: {exc.message}")
                continue
        seen.append(f"{kind} {namespace}/{name} {'found' if obj else 'not found'}")
    return seen


def find_monitoring(kube: Kube, option: QueryEndpoint | None = None) -> Monitoring:
    """List the operators' collectors the cluster serves, and the managed collectors whose
    scrape-object kind it serves, and choose (`choose_monitoring`); when none exists the
    reason says which CRDs are served."""
    served = {s: kube.serves(s.api_version, s.collector_kind)
              and kube.serves(s.api_version, s.kind) for s in OPERATOR_STACKS}
    prometheuses, vmagents = ([kube.items(s.api_version, s.collector_kind) if served[s] else []
                               for s in (PROMETHEUS_OPERATOR, VICTORIAMETRICS)])
    managed = [] if prometheuses or vmagents else [
        (m, managed_agents(kube, m)) for m in MANAGED_COLLECTORS
        if kube.serves(m.api_version, m.kind)]
    found = choose_monitoring(
        prometheuses, vmagents,
        kube.items(VM, "VMSingle") if served[VICTORIAMETRICS] and kube.serves(VM, "VMSingle")
        else [],
        option, managed)
    if found.found:
        return found
    crds = [f"the {s.title}'s CRDs" for s in OPERATOR_STACKS if served[s]]
    detail = (f"{' and '.join(crds)} exist but no "
              f"{' or '.join(s.collector_kind for s in OPERATOR_STACKS)} object does" if crds
              else "none of " + ", ".join(s.apis() for s in STACKS) + " is served")
    return Monitoring(None, None, option, f"no platform monitoring found: {detail}")


def instant_query(kube: Kube, endpoint: QueryEndpoint, promql: str,
                  timeout: float = 10.0) -> QueryResult:
    """One instant query: through the API server's service proxy, or straight to a URL."""
    if not endpoint.url:
        try:
            body = kube.request("GET", endpoint.api_path(), query={"query": promql})
        except ApiError as exc:
            raise PrometheusAPIError("http", exc.message, exc.status) from None
        return parse_query_response(body)
    url = endpoint.api_path() + "?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return parse_query_response(response.read(), response.status)
    except urllib.error.HTTPError as exc:
        return parse_query_response(exc.read(), exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PrometheusAPIError("http", f"cannot reach {endpoint.url}: {reason}") from None


def prometheus_label_name(label: str) -> str:
    """How a Kubernetes label name appears as a Prometheus label (targetLabels sanitising)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in label)


def poll(fetch: Callable[[], T], done: Callable[[T], bool], *, timeout: float,
         interval: float, clock: Callable[[], float] = time.monotonic,
         pause: Callable[[float], None] = time.sleep) -> tuple[T, bool]:
    """Call ``fetch`` until ``done`` holds or the deadline passes; (last value, satisfied).

    For HTTP APIs that offer no watch (Prometheus, exporters); Kubernetes objects are waited
    on with watches instead (waits.watch_until).
    """
    deadline = clock() + timeout
    while True:
        value = fetch()
        if done(value):
            return value, True
        left = deadline - clock()
        if left <= 0:
            return value, False
        pause(min(interval, left))
