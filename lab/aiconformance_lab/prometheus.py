"""The Prometheus Operator and one Prometheus on the real node, set up like kube-prometheus-stack.

The operator (``github.com/prometheus-operator/prometheus-operator`` v0.85.0, Go module
``lab/go/promoperator``) runs as a host process of the lab with the admin credentials; the
Prometheus it manages (``github.com/prometheus/prometheus`` v0.316.0, i.e. Prometheus 3.16.0,
Go module ``lab/go/prometheus``) runs as a pod on the real node from locally built images
(``nodeimages``: ``prometheus`` and ``prometheus-config-reloader``, never pulled).

What a kube-prometheus-stack install shows the suite, and this lab shows the same way:

- a ``Prometheus`` object whose serviceMonitorSelector (and podMonitor, probe, rule and
  scrapeConfig selectors) is ``matchLabels: {release: <release>}`` with an empty (all
  namespaces) namespace selector, the chart's default (``...SelectorNilUsesHelmValues: true``);
- the operator's governing Service ``prometheus-operated`` (port ``web``, 9090) in the
  Prometheus's namespace, which is where the suite sends its queries through the API server's
  service proxy, plus the chart's own Service (port ``http-web``, 9090) and the chart's
  self-monitoring ServiceMonitor;
- a ServiceMonitor for the lab's DCGM-style exporter (``gpusim``), as the GPU Operator creates
  for dcgm-exporter when ``serviceMonitor.enabled``.

Scrapes and rule evaluation run every 5 s so checks wait little.  Every name is a parameter
(``Names``), so the same objects can be made under other names beside someone else's lab.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import bootstrap, objects
from .build import BuiltModule, Progress
from .errors import LabError
from .kapi import KubeAPI, Obj, condition_true
from .spec import ProcessSpec, SpecInputs

COMPONENT = "prometheus-operator"
# The component's ports (lab._choose_ports): health probe and metrics on one web server.
PORTS = (COMPONENT,)
# Go modules: Prometheus itself, and the operator with its config reloader.
MODULES = ("prometheus", "promoperator")
OPERATOR_BINARY = "operator"  # `go build tool` names it after cmd/operator
# nodeimages keys of the two images the Prometheus pod runs.
PROMETHEUS_IMAGE = "prometheus"
RELOADER_IMAGE = "prometheus-config-reloader"
IMAGE_KEYS = (PROMETHEUS_IMAGE, RELOADER_IMAGE)
# What the operator generates its configuration for (Prometheus v0.316.0 is 3.16.0).
PROMETHEUS_VERSION = "v3.16.0"
# Where a Prometheus without spec.image would look: a lab name, never a registry's.
DEFAULT_BASE_IMAGE = "aic-lab.local/prometheus"

MON = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "5s"
RELOADER_WATCH_INTERVAL = "5s"
TARGETS_POLL_S = 0.5  # Polling Prometheus' targets API while the lab comes up (no watch there).
WEB_PORT = 9090
MANAGED_BY = {"app.kubernetes.io/managed-by": "aic-lab"}
# The pod runs on the lab's real node, whose GPU taint every lab pod there tolerates.
TOLERATIONS = [{"operator": "Exists"}]
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Names:
    """Names of the lab's monitoring objects.  ``release`` plays the Helm release name of a
    kube-prometheus-stack install: ServiceMonitors and PodMonitors carrying
    ``release=<release>`` are scraped, from any namespace."""

    namespace: str = "aic-lab-monitoring"
    prometheus: str = "aic-lab-prometheus"  # the Prometheus object, its SA and cluster role
    release: str = "aic-lab"

    @property
    def selector(self) -> dict[str, str]:
        """The label every selected ServiceMonitor / PodMonitor / rule must carry."""
        return {"release": self.release}

    @property
    def app(self) -> str:
        """The chart's ``app`` label value of its Prometheus objects."""
        return "kube-prometheus-stack-prometheus"


NAMES = Names()


# --- the operator process --------------------------------------------------------------------


def operator_argv(binary: str, *, port: int, apiserver: str, ca_file: Path, cert_file: Path,
                  key_file: Path, reloader_image: str) -> list[str]:
    """The operator's command line.

    It has no ``--kubeconfig`` flag: it is given the API server and the admin client
    certificate (files of the lab's state dir, so the command line names the lab).  No
    ``--kubelet-service``: the operator would otherwise write kubelet Endpoints into
    kube-system.  Its web server (``/healthz``, ``/metrics``) listens on loopback only.
    """
    return [
        binary,
        f"--apiserver={apiserver}",
        f"--ca-file={ca_file}",
        f"--cert-file={cert_file}",
        f"--key-file={key_file}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--prometheus-config-reloader={reloader_image}",
        f"--prometheus-default-base-image={DEFAULT_BASE_IMAGE}",
        "--log-format=logfmt",
        "--log-level=info",
    ]


def spec(inputs: SpecInputs, images: Mapping[str, str]) -> ProcessSpec:
    """The operator as a lab component.  ``KUBECONFIG`` is emptied: the operator prefers a
    kubeconfig from the environment to its flags, and an inherited one names another cluster."""
    port = inputs.ports[COMPONENT]
    cert, key = inputs.pki.client("admin")
    argv = operator_argv(inputs.binary(OPERATOR_BINARY), port=port,
                         apiserver=inputs.url("apiserver"), ca_file=inputs.pki.ca_cert,
                         cert_file=cert, key_file=key, reloader_image=images[RELOADER_IMAGE])
    return ProcessSpec(COMPONENT, argv, f"{inputs.url(COMPONENT, 'http')}/healthz", "plain",
                       port, env={"KUBECONFIG": ""})


def specs(inputs: SpecInputs) -> list[ProcessSpec]:
    """The operator's process when the shape asks for it (``prometheus``), else none.  The
    reloader's reference comes from the real node's images.json (``realnode.prepare``)."""
    if not inputs.shape.prometheus:
        return []
    from . import realnode

    return [spec(inputs, image_refs(realnode.images_json(inputs)))]


def image_refs(images_json: Path) -> dict[str, str]:
    """The references of the Prometheus pod's images (nodeimages keys ``prometheus`` and
    ``prometheus-config-reloader``) from the real node's ``images.json``."""
    from . import realnode

    return realnode.image_refs(images_json, IMAGE_KEYS, "the lab's Prometheus needs the Go "
                               f"modules {', '.join(MODULES)} built")


# --- the objects -----------------------------------------------------------------------------


def crds(built: BuiltModule) -> list[Obj]:
    """The operator's CRDs (monitoring.coreos.com), from the module source it was built from."""
    return objects.crds(built.manifest_dir("crds"))


def namespace(names: Names = NAMES) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": names.namespace, "labels": dict(MANAGED_BY)}}


def _labels(names: Names, **extra: str) -> dict[str, str]:
    return {"app": names.app, **names.selector, **MANAGED_BY, **extra}


def rbac(names: Names = NAMES) -> list[Obj]:
    """The Prometheus pod's ServiceAccount and what kube-prometheus-stack grants it: read
    access to the objects service discovery lists, and the kubelet's metrics paths."""
    meta = {"name": names.prometheus, "labels": _labels(names)}
    read = ["get", "list", "watch"]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": dict(meta),
        "rules": [
            {"apiGroups": [""], "resources": ["nodes", "nodes/metrics", "services",
                                              "endpoints", "pods"], "verbs": read},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
             "verbs": read},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": read},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
            {"nonResourceURLs": ["/metrics", "/metrics/cadvisor"], "verbs": ["get"]},
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": dict(meta),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": names.prometheus},
        "subjects": [{"kind": "ServiceAccount", "name": names.prometheus,
                      "namespace": names.namespace}],
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {**meta, "namespace": names.namespace}}
    return [account, role, binding]


def reloader_args(names: Names = NAMES) -> list[str]:
    """The config reloader's arguments as the operator v0.85.0 sets them for this Prometheus,
    plus ``--watch-interval``.

    The reloader watches the config file through the Secret volume's symlink: inotify follows
    it to the first file, which the kubelet deletes at the first update, so later changes are
    only read at the watch interval (3 min by default; measured: a new ServiceMonitor's job in
    the config after 136 s, the kubelet having updated the volume after 4 s).  The operator
    offers no setting for it; ``spec.containers`` patches the container by name, and a list
    (``args``) is replaced whole, hence every argument here."""
    return [
        "--listen-address=:8080",
        f"--reload-url=http://localhost:{WEB_PORT}/-/reload",
        "--config-file=/etc/prometheus/config/prometheus.yaml.gz",
        "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
        f"--watched-dir=/etc/prometheus/rules/prometheus-{names.prometheus}-rulefiles-0",
        f"--watch-interval={RELOADER_WATCH_INTERVAL}",
    ]


def prometheus(image: str, node: str, names: Names = NAMES) -> Obj:
    """The Prometheus object: one replica pinned to ``node``, selecting like the chart."""
    selector = {"matchLabels": dict(names.selector)}
    spec_: dict[str, Any] = {
        "replicas": 1,
        "image": image,
        "version": PROMETHEUS_VERSION,
        "imagePullPolicy": "IfNotPresent",  # built locally, never pulled
        "serviceAccountName": names.prometheus,
        "scrapeInterval": SCRAPE_INTERVAL,
        "evaluationInterval": SCRAPE_INTERVAL,
        "retention": "1d",
        "serviceDiscoveryRole": "EndpointSlice",
        "nodeSelector": {"kubernetes.io/hostname": node},
        "tolerations": [dict(t) for t in TOLERATIONS],
        # The chart's pod security context.
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 2000,
                            "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
        # New ServiceMonitors within seconds, not at the reloader's 3-minute tick.
        "containers": [
            {"name": "config-reloader", "args": reloader_args(names)},
            # The operator's startup probe ticks every 15 s, and a kubelet that started less
            # than a period ago first waits a random part of it: Ready up to 15 s late on a
            # fresh node.  Probed every second instead (merged into the generated probes).
            {"name": "prometheus", "startupProbe": {"periodSeconds": 1, "failureThreshold": 900},
             "readinessProbe": {"periodSeconds": 1}},
        ],
    }
    for kind in ("serviceMonitor", "podMonitor", "probe", "rule", "scrapeConfig"):
        spec_[f"{kind}Selector"] = json.loads(json.dumps(selector))
        spec_[f"{kind}NamespaceSelector"] = {}
    return {"apiVersion": MON, "kind": "Prometheus",
            "metadata": {"name": names.prometheus, "namespace": names.namespace,
                         "labels": _labels(names)},
            "spec": spec_}


def service(names: Names = NAMES) -> Obj:
    """The chart's Service in front of the Prometheus pods (``self-monitor`` selects it for
    the self-scrape).  The suite itself queries the operator's ``prometheus-operated``."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": names.prometheus, "namespace": names.namespace,
                         "labels": _labels(names, **{"self-monitor": "true"})},
            "spec": {"selector": {"app.kubernetes.io/name": "prometheus",
                                  "operator.prometheus.io/name": names.prometheus},
                     "ports": [{"name": "http-web", "port": WEB_PORT, "targetPort": WEB_PORT,
                                "protocol": "TCP"}]}}


def service_monitor(name: str, namespace: str, selector: Mapping[str, str],
                    target_namespace: str, port: str, names: Names = NAMES) -> Obj:
    """A ServiceMonitor the lab's Prometheus selects (``release`` label), 5 s interval."""
    return {"apiVersion": MON, "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": namespace, "labels": _labels(names)},
            "spec": {"selector": {"matchLabels": dict(selector)},
                     "namespaceSelector": {"matchNames": [target_namespace]},
                     "endpoints": [{"port": port, "path": "/metrics",
                                    "interval": SCRAPE_INTERVAL}]}}


def self_monitor(names: Names = NAMES) -> Obj:
    """Prometheus scraping itself through the chart's Service, as the chart does."""
    return service_monitor(names.prometheus, names.namespace,
                           {"app": names.app, **names.selector, "self-monitor": "true"},
                           names.namespace, "http-web", names)


def exporter_monitor(names: Names = NAMES) -> Obj:
    """The lab's DCGM-style exporter (``gpusim``) scraped like the GPU Operator's
    dcgm-exporter ServiceMonitor: its Service's labels, port ``metrics``."""
    from . import gpusim  # The exporter's names; gpusim needs nothing at import time.

    return service_monitor(gpusim.EXPORTER_NAME, names.namespace, gpusim.EXPORTER_LABELS,
                           gpusim.NAMESPACE, "metrics", names)


def cluster_objects(image: str, node: str, names: Names = NAMES) -> list[Obj]:
    """Everything but the CRDs, in creation order (a namespace before its contents)."""
    return [namespace(names), *rbac(names), prometheus(image, node, names), service(names),
            self_monitor(names), exporter_monitor(names)]


# --- installing and waiting ------------------------------------------------------------------


def install(api: KubeAPI, inputs: SpecInputs, built: Mapping[str, BuiltModule],
            images: Mapping[str, str], progress: Progress, *, names: Names = NAMES,
            crds_established: Callable[[], None] | None = None) -> None:
    """Apply the CRDs (Established before the operator starts: it skips the controllers of
    CRDs it does not find), then the Prometheus and its objects, pinned to the real node.
    ``crds_established`` is called as soon as the CRDs are (``up`` holds other CRDs back
    until then: the operator, its pod and a first scrape are the longest chain of a start).
    """
    from . import realnode

    docs = crds(built["promoperator"])
    bootstrap.apply_crds_and_objects(api, docs, [])
    bootstrap.wait_established(api, {c["metadata"]["name"] for c in docs})
    if crds_established is not None:
        crds_established()
    for obj in cluster_objects(images[PROMETHEUS_IMAGE], realnode.NODE_NAME, names):
        api.apply(obj)
    progress(f"Prometheus {names.namespace}/{names.prometheus} and {len(docs)} "
             "monitoring.coreos.com CRDs applied")


def prometheus_available(items: list[Obj], name: str) -> bool:
    """Whether the Prometheus object ``name`` reports Available=True for its generation."""
    for item in items:
        if item["metadata"]["name"] != name:
            continue
        generation = item["metadata"].get("generation")
        return condition_true(item, "Available") and any(
            c.get("type") == "Available" and c.get("observedGeneration") == generation
            for c in (item.get("status") or {}).get("conditions") or [])
    return False


def wait_ready(api: KubeAPI, progress: Progress, *, names: Names = NAMES,
               timeout: float = READY_TIMEOUT_S, scraped: tuple[str, ...] = ()) -> None:
    """Wait until the operator reports the Prometheus Available (its pod Ready), then until
    each job of ``scraped`` has a target Prometheus has scraped successfully: a lab is up
    when its exporter's series can be queried, as on a platform in service."""
    t0 = time.monotonic()
    api.wait_list(f"/apis/{MON}/namespaces/{names.namespace}/prometheuses",
                  lambda items: prometheus_available(items, names.prometheus),
                  timeout=timeout, what=f"Prometheus {names.namespace}/{names.prometheus} "
                                        "Available")
    progress(f"Prometheus {names.namespace}/{names.prometheus} Available in "
             f"{time.monotonic() - t0:.1f} s")
    if not scraped:
        return
    path = (f"/api/v1/namespaces/{names.namespace}/services/prometheus-operated:web/proxy"
            "/api/v1/targets?state=active")
    deadline = time.monotonic() + timeout
    missing = set(scraped)
    while missing:
        status, body = api.request("GET", path)
        if status == 200:
            missing -= scraped_jobs(body)
        if not missing:
            break
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for Prometheus to scrape "
                           f"{', '.join(sorted(missing))}")
        # Prometheus' API has no watch: ask again soon (a scrape interval is 5 s).
        time.sleep(TARGETS_POLL_S)
    progress(f"Prometheus scraped {', '.join(scraped)} {time.monotonic() - t0:.1f} s after "
             "its start")


def scraped_jobs(targets: Obj) -> set[str]:
    """Jobs with a target whose last scrape succeeded (Prometheus' /api/v1/targets)."""
    return {str(t.get("labels", {}).get("job")) for t in
            (targets.get("data") or {}).get("activeTargets") or []
            if t.get("health") == "up"}
