"""scheduler-plugins Coscheduling as lab host processes: a second scheduler and its controller.

A third gang scheduling solution beside Kueue and the Workload API (``coscheduling`` in the
shape).  Both binaries come from sigs.k8s.io/scheduler-plugins (``lab/go/schedplugins``, built
against the lab's own k8s.io/kubernetes):

- the scheduler (``scheduler-plugins-scheduler``): kube-scheduler with the Coscheduling plugin,
  our own main that registers only that plugin (upstream's cmd/scheduler links them all).  It
  runs as a second scheduler, configured as upstream's chart
  (manifests/install/charts/as-a-second-scheduler) configures it: one profile named
  ``scheduler-plugins-scheduler`` with Coscheduling enabled at every extension point and
  PrioritySort disabled (Coscheduling sorts the queue), ``permitWaitingTimeSeconds: 10``, and
  leader election with the lease named after the profile in the namespace
  ``scheduler-plugins`` (the chart's resourceName and release namespace).  The lease is how a
  cluster shows that this scheduler runs: the gang_scheduling check finds the profile by it
  where no chart Deployment exists, and a lease nobody holds says the scheduler is gone.
- the controller (``scheduler-plugins-controller``): upstream's cmd/controller, which keeps
  PodGroup status (phase, scheduled/running/succeeded counts) and ElasticQuota status.

Both run with the admin kubeconfig, as the lab's other operators do, bound to 127.0.0.1; the
CRDs (PodGroup and ElasticQuota, ``scheduling.x-k8s.io``) come from the same module source
(config/crd/bases) and are Established before either starts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from . import bootstrap, objects
from .build import BuiltModule, Progress
from .kapi import KubeAPI, Obj
from .spec import ProcessSpec, SpecInputs, insecure_healthz

MODULE = "schedplugins"  # lab/go/schedplugins, build.MODULES
SCHEDULER = "scheduler-plugins-scheduler"  # component, binary, profile and lease name
CONTROLLER = "scheduler-plugins-controller"  # component and binary
NAMES = (SCHEDULER, CONTROLLER)  # the components, in start order
PORTS = NAMES  # each serves its health endpoint on a port the lab chooses
NAMESPACE = "scheduler-plugins"  # the chart's release namespace: the lease lives there
PLUGIN = "Coscheduling"
PERMIT_WAITING_S = 10  # the chart's value (upstream's default is 60)
CONFIG_FILE = "scheduler-plugins.yaml"  # in the state dir's etc/
MANAGED_BY = {"app.kubernetes.io/managed-by": "aic-lab"}


def scheduler_configuration(kubeconfig: str, *, plugin: bool = True) -> dict[str, Any]:
    """The second scheduler's KubeSchedulerConfiguration, as the chart renders it for
    Coscheduling alone; ``plugin=False``: the same profile without Coscheduling (kube-scheduler's
    default plugins under the same name and lease), the lab's negative variant."""
    profile: dict[str, Any] = {"schedulerName": SCHEDULER}
    if plugin:
        profile["plugins"] = {"multiPoint": {"enabled": [{"name": PLUGIN}],
                                             "disabled": [{"name": "PrioritySort"}]}}
        profile["pluginConfig"] = [{"name": PLUGIN,
                                    "args": {"permitWaitingTimeSeconds": PERMIT_WAITING_S}}]
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": kubeconfig},
        "leaderElection": {"leaderElect": True, "resourceNamespace": NAMESPACE,
                           "resourceName": SCHEDULER, "resourceLock": "leases"},
        "profiles": [profile],
    }


def config_path(inputs: SpecInputs) -> Path:
    return inputs.state.etc / CONFIG_FILE


def prepare(inputs: SpecInputs) -> None:
    """Write the scheduler's configuration (read at start): with the Coscheduling plugin, or
    without it where the shape says ``coscheduling_plugin: false``."""
    config = scheduler_configuration(inputs.admin_kubeconfig,
                                     plugin=inputs.shape.coscheduling_plugin)
    config_path(inputs).write_text(yaml.safe_dump(config, sort_keys=False))


def scheduler_argv(binary: str, *, config: Path, kubeconfig: str, port: int) -> list[str]:
    """The scheduler's command line: its configuration file, the secure port (health) on
    127.0.0.1, delegated authentication and authorization through the admin kubeconfig."""
    return [
        binary,
        f"--config={config}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--profiling=false",
    ]


def controller_argv(binary: str, *, kubeconfig: str, probe_port: int) -> list[str]:
    """The controller's command line (upstream's flags): probes on 127.0.0.1, no metrics
    endpoint ("0"), no leader election (its default)."""
    return [
        binary,
        f"--kubeconfig={kubeconfig}",
        f"--probeAddr=127.0.0.1:{probe_port}",
        "--metricsAddr=0",
    ]


def specs(inputs: SpecInputs) -> list[ProcessSpec]:
    """The scheduler and the controller when the shape asks for Coscheduling; else none."""
    if not inputs.shape.coscheduling:
        return []
    kubeconfig = inputs.admin_kubeconfig
    scheduler = insecure_healthz(
        SCHEDULER,
        scheduler_argv(inputs.binary(SCHEDULER), config=config_path(inputs),
                       kubeconfig=kubeconfig, port=inputs.ports[SCHEDULER]),
        inputs)
    port = inputs.ports[CONTROLLER]
    controller = ProcessSpec(
        CONTROLLER,
        controller_argv(inputs.binary(CONTROLLER), kubeconfig=kubeconfig, probe_port=port),
        f"http://127.0.0.1:{port}/readyz",
        "plain",
        port,
    )
    return [scheduler, controller]


def crds(built: BuiltModule) -> list[Obj]:
    """PodGroup and ElasticQuota (the controller watches both)."""
    return objects.crds(built.manifest_dir("crds"))


def cluster_objects() -> list[Obj]:
    """The namespace of the scheduler's leader-election lease."""
    return [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": NAMESPACE, "labels": dict(MANAGED_BY)}}]


def install(api: KubeAPI, built: Mapping[str, BuiltModule], progress: Progress) -> None:
    """Apply the CRDs (Established before the processes start: the plugin's informer and
    controller-runtime need the kinds served) and the lease's namespace."""
    t0 = time.monotonic()
    crd_list = crds(built[MODULE])
    bootstrap.apply_crds_and_objects(api, crd_list, cluster_objects())
    bootstrap.wait_established(api, {c["metadata"]["name"] for c in crd_list})
    progress(f"{len(crd_list)} scheduler-plugins CRDs Established in "
             f"{time.monotonic() - t0:.1f} s")
