"""The lab's scheduler-plugins Coscheduling: its configuration and command lines, its wiring
(shape, CLI, module, ports, process names), and how the gang check reads a second scheduler's
leader-election Lease (no Go build, no cluster)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import yaml
from aiconformance_lab import build, coscheduling, lab, pki, procs
from aiconformance_lab.__main__ import _parser, _shape
from aiconformance_lab.build import BuiltModule
from aiconformance_lab.errors import LabError
from aiconformance_lab.shape import LabShape
from aiconformance_lab.spec import COMPONENTS, SpecInputs
from aiconformance_lab.statedir import StateDir

from pytest_aiconformance.requirements import gang_scheduling as G

PORTS = {"scheduler-plugins-scheduler": 21101, "scheduler-plugins-controller": 21102}
SCHEDULER, CONTROLLER = "scheduler-plugins-scheduler", "scheduler-plugins-controller"


def inputs(tmp_path: Path, shape: LabShape | None = None) -> SpecInputs:
    state = StateDir(tmp_path / "state")
    binaries = {SCHEDULER: Path(f"/b/{SCHEDULER}"), CONTROLLER: Path(f"/b/{CONTROLLER}")}
    return SpecInputs(shape or LabShape(coscheduling=True), binaries, PORTS,
                      pki.PKIPaths(tmp_path / "pki"), state)


def test_module_registered_with_its_crds() -> None:
    module = build.module_for(CONTROLLER)
    assert build.module_for(SCHEDULER) is module
    assert (module.name, module.directory) == ("schedplugins", "schedplugins")
    assert module.binaries == (SCHEDULER, CONTROLLER)
    assert module.host_processes == (SCHEDULER, CONTROLLER)
    assert module.renames == (
        ("./cmd/scheduler-plugins-scheduler", SCHEDULER),
        ("sigs.k8s.io/scheduler-plugins/cmd/controller", CONTROLLER))
    assert module.manifests == (("crds", "sigs.k8s.io/scheduler-plugins",
                                 "config/crd/bases/scheduling.x-k8s.io_*.yaml"),)
    # Stamped with the Kubernetes release it is built against (its own pins, not the lab's).
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.1" in module.ldflags
    commands = module.go_build_commands(Path("/out"))
    assert [c[-3:] for c in commands] == [
        ["-o", f"/out/{SCHEDULER}", "./cmd/scheduler-plugins-scheduler"],
        ["-o", f"/out/{CONTROLLER}", "sigs.k8s.io/scheduler-plugins/cmd/controller"]]
    assert {SCHEDULER, CONTROLLER} <= procs.LAB_BINARIES
    assert {SCHEDULER, CONTROLLER} <= set(COMPONENTS)


def test_go_module_pins_what_the_registry_says() -> None:
    gomod = (build.source_root() / "schedplugins" / "go.mod").read_text()
    assert "tool sigs.k8s.io/scheduler-plugins/cmd/controller" in gomod
    assert "\tsigs.k8s.io/scheduler-plugins v0.34.1-devel\n" in gomod
    assert f"\tk8s.io/kubernetes {build.SCHEDPLUGINS_K8S_VERSION}\n" in gomod
    assert "k8s.io/kube-scheduler => k8s.io/kube-scheduler v0.34.1" in gomod


def test_configuration_is_the_charts_with_coscheduling_alone() -> None:
    config = coscheduling.scheduler_configuration("/s/etc/admin.kubeconfig")
    assert config["clientConnection"] == {"kubeconfig": "/s/etc/admin.kubeconfig"}
    assert config["leaderElection"] == {
        "leaderElect": True, "resourceNamespace": "scheduler-plugins",
        "resourceName": SCHEDULER, "resourceLock": "leases"}
    [profile] = config["profiles"]
    assert profile == {
        "schedulerName": SCHEDULER,
        "plugins": {"multiPoint": {"enabled": [{"name": "Coscheduling"}],
                                   "disabled": [{"name": "PrioritySort"}]}},
        "pluginConfig": [{"name": "Coscheduling", "args": {"permitWaitingTimeSeconds": 10}}]}


def test_configuration_without_the_plugin_keeps_name_and_lease() -> None:
    config = coscheduling.scheduler_configuration("/k", plugin=False)
    assert config["profiles"] == [{"schedulerName": SCHEDULER}]
    assert config["leaderElection"]["resourceName"] == SCHEDULER


def test_prepare_writes_the_configuration_the_shape_asks_for(tmp_path: Path) -> None:
    for plugin in (True, False):
        ins = inputs(tmp_path, LabShape(coscheduling=True, coscheduling_plugin=plugin))
        ins.state.etc.mkdir(parents=True, exist_ok=True)
        coscheduling.prepare(ins)
        written = yaml.safe_load(coscheduling.config_path(ins).read_text())
        assert written == coscheduling.scheduler_configuration(ins.admin_kubeconfig,
                                                               plugin=plugin)


def test_specs_argv_ports_and_health(tmp_path: Path) -> None:
    ins = inputs(tmp_path)
    scheduler, controller = coscheduling.specs(ins)
    kubeconfig = f"{tmp_path / 'state' / 'etc' / 'admin.kubeconfig'}"
    assert scheduler.name == SCHEDULER
    assert scheduler.argv == [
        f"/b/{SCHEDULER}",
        f"--config={tmp_path / 'state' / 'etc' / 'scheduler-plugins.yaml'}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--secure-port=21101",
        "--profiling=false",
    ]
    assert (scheduler.health_url, scheduler.health_tls, scheduler.port) == (
        "https://127.0.0.1:21101/healthz", "insecure", 21101)
    assert controller.name == CONTROLLER
    assert controller.argv == [f"/b/{CONTROLLER}", f"--kubeconfig={kubeconfig}",
                               "--probeAddr=127.0.0.1:21102", "--metricsAddr=0"]
    assert (controller.health_url, controller.health_tls, controller.port) == (
        "http://127.0.0.1:21102/readyz", "plain", 21102)
    # Both name the state dir on their command line: `down` finds them after a killed session.
    assert all(str(tmp_path / "state") in " ".join(s.argv[1:]) for s in (scheduler, controller))
    assert coscheduling.specs(inputs(tmp_path, LabShape())) == []


def test_crds_and_namespace(tmp_path: Path) -> None:
    out = tmp_path / "bin"
    (out / "crds").mkdir(parents=True)
    for plural in ("podgroups", "elasticquotas"):
        (out / "crds" / f"scheduling.x-k8s.io_{plural}.json").write_text(json.dumps({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.scheduling.x-k8s.io"}}))
    built = BuiltModule(build.module_for(SCHEDULER), out, True, 0.0)
    assert sorted(c["metadata"]["name"] for c in coscheduling.crds(built)) == [
        "elasticquotas.scheduling.x-k8s.io", "podgroups.scheduling.x-k8s.io"]
    [namespace] = coscheduling.cluster_objects()
    assert (namespace["kind"], namespace["metadata"]["name"]) == ("Namespace",
                                                                  "scheduler-plugins")


def test_shape_cli_ports_and_modules() -> None:
    shape = LabShape(coscheduling=True)
    assert shape.describe().endswith("coscheduling=on")
    assert LabShape(coscheduling=True, coscheduling_plugin=False).describe().endswith(
        "coscheduling=no-plugin")
    # A state file from before these fields describes a lab without Coscheduling.
    old = {k: v for k, v in shape.to_dict().items()
           if k not in ("coscheduling", "coscheduling_plugin")}
    assert LabShape.from_dict(old) == LabShape()
    with pytest.raises(LabError, match="coscheduling must be true or false"):
        LabShape(coscheduling="yes")  # type: ignore[arg-type]
    with pytest.raises(LabError, match="coscheduling_plugin=false is a variant of coscheduling"):
        LabShape(coscheduling_plugin=False)
    assert _shape(_parser().parse_args(["up", "--coscheduling"])) == shape
    assert _shape(_parser().parse_args(
        ["up", "--coscheduling", "--no-coscheduling-plugin"])).coscheduling_plugin is False
    assert not LabShape().coscheduling  # off by default
    ports = lab._choose_ports(shape)
    assert {SCHEDULER, CONTROLLER} <= set(ports)
    assert SCHEDULER not in lab._choose_ports(LabShape())
    assert "schedplugins" in lab._modules_for(shape)
    assert "schedplugins" not in lab._modules_for(LabShape())


# --- the gang check's reading of a second scheduler's Lease ------------------------------------

NOW = datetime.datetime(2026, 11, 30, 15, 0, 0, tzinfo=datetime.UTC)


def lease(name: str = SCHEDULER, namespace: str = "scheduler-plugins", holder: str = "vm_1",
          renewed: str = "2026-11-30T14:59:55.123456Z", duration: int = 15) -> dict:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"holderIdentity": holder, "renewTime": renewed,
                     "leaseDurationSeconds": duration}}


def test_scheduler_found_by_its_lease_where_no_chart_deployment_is() -> None:
    leases = [lease("kube-scheduler", "kube-system"), lease("aic-gpu-0", "kube-node-lease"),
              lease()]
    assert G.coscheduling_lease(leases) == lease()
    assert G.coscheduling_scheduler([], leases) == (
        SCHEDULER, "scheduler-plugins runs as a second scheduler: its leader-election Lease "
        "scheduler-plugins/scheduler-plugins-scheduler (named after its profile, as the chart "
        "names it)")
    # The chart's Deployment wins; no lease of that kind: the default scheduler.
    deployment = {"metadata": {"name": "sp-sched", "namespace": "x"}, "spec": {"template": {
        "spec": {"containers": [{"image": "registry.k8s.io/scheduler-plugins/kube-scheduler"}]}}}}
    assert G.coscheduling_scheduler([deployment], leases)[0] == "sp-sched"
    assert G.coscheduling_scheduler([], leases[:2])[0] == "default-scheduler"
    # The controller's lease (sched-plugins-controllers) names no scheduler.
    assert G.coscheduling_lease([lease("scheduler-plugins-controller")]) is None


def test_lease_gone_released_stale_or_held() -> None:
    assert G.lease_gone(lease(), NOW) == ""
    assert G.lease_gone(lease(holder=""), NOW) == (
        "nobody holds its leader-election Lease scheduler-plugins/scheduler-plugins-scheduler "
        "(released: the scheduler stopped)")
    assert G.lease_gone(lease(renewed="2026-11-30T14:59:00Z"), NOW) == (
        "its leader-election Lease scheduler-plugins/scheduler-plugins-scheduler was last "
        "renewed 60 s ago by vm_1 (lease duration 15 s): the scheduler is gone")
    assert G.lease_gone(lease(renewed="2026-11-30T14:59:31Z"), NOW) == ""  # within 2x15 s
    assert "has no renewTime" in G.lease_gone(lease(renewed=""), NOW)
