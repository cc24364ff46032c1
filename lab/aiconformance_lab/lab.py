"""Start, inspect and stop a lab: a real Kubernetes control plane with simulated GPU nodes.

Each component (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the kwok
controller, metrics-server and, when the shape asks for them, operators such as KubeRay) runs as
its own host process bound to 127.0.0.1 on ports chosen at start.  Everything a lab owns lives
in its state directory (``statedir``).  ``Lab`` orchestrates; the components' command lines come
from ``controlplane``, ``kwok_metrics`` and ``operators``, process start and health checks from
``supervise``, and the cluster objects and readiness waits from ``bootstrap``.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from . import (
    bootstrap,
    controlplane,
    coscheduling,
    envoygateway,
    gatewayapi,
    gpusim,
    health,
    host_operators,
    hostnet,
    installkit,
    keda,
    kwok_metrics,
    objects,
    pki,
    procs,
    prometheus,
    realnode,
    traefik,
)
from .build import BuiltModule, Progress, build_all, build_modules
from .errors import LabError
from .info import ComponentStatus, LabInfo, LabStatus
from .kapi import KubeAPI
from .kubeconfig import write_kubeconfigs
from .shape import LabShape
from .spec import COMPONENTS, ProcessSpec, SpecInputs
from .statedir import StateDir, default_state_dir
from .supervise import launch, wait_healthy, webhook_port_busy

# Components started once the API server serves, all at the same time.
_AFTER_APISERVER = ("controller-manager", "scheduler", "kwok", "metrics-server")
# How long ``down`` lets the API server shut down gracefully before SIGKILL.
_APISERVER_STOP_S = 2.0


def _quiet(_: str) -> None:
    """Progress sink that drops messages."""


class Lab:
    """A lab in one state directory.  Cheap to construct; holds no processes itself."""

    def __init__(self, state_dir: Path | str | None = None) -> None:
        self.state_dir = Path(state_dir or default_state_dir()).expanduser().absolute()

    # ---- paths -----------------------------------------------------------------------------
    @property
    def _dir(self) -> StateDir:
        return StateDir(self.state_dir)

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig of the lab (self-contained; context ``aic-lab``)."""
        return self._dir.kubeconfig

    def log_file(self, name: str) -> Path:
        """Log of a component (kept after ``down`` for diagnosis)."""
        return self._dir.log_file(name)

    def _api(self) -> KubeAPI:
        state = self._dir.load_state()
        if state is None:
            raise LabError(f"no lab state in {self.state_dir}")
        paths = self._dir.pki
        cert, key = paths.client("admin")
        return KubeAPI(state["server"], paths.ca_cert, cert, key)

    # ---- public API ------------------------------------------------------------------------
    def build(self, progress: Progress = print,
              modules: tuple[str, ...] | None = None) -> dict[str, Path]:
        """Build (or find cached) the lab binaries: every module's, or those of ``modules``."""
        if modules is None:
            return build_all(progress)
        return {name: result.binary(name) for result in build_modules(modules, progress).values()
                for name in result.module.binaries}

    def up(
        self,
        shape: LabShape | None = None,
        progress: Progress = print,
        *,
        owner_pid: int | None = None,
        port_wait_s: float = 0.0,
    ) -> LabInfo:
        """Start the lab, or reuse the running one if it has the same shape.

        ``owner_pid`` ties the lab to a process (a test session): when that process is gone,
        the next ``up`` treats the lab as leftovers and replaces it instead of reusing it.
        ``port_wait_s``: how long to wait for a fixed port another lab holds (KubeRay's 9443)
        before failing, so that parallel test sessions take turns instead of failing.
        """
        shape = shape or LabShape()
        if shape.real_nodes:
            missing = hostnet.missing_prerequisite(self.state_dir)
            if missing:
                progress(f"{missing}: starting the kwok-only lab (checks that need containers "
                         "stay Not verified)")
                shape = shape.without_real_nodes()
        with self._dir.locked():
            reused = self._reuse_or_clean(shape, progress)
            if reused is not None:
                return reused
            started = time.monotonic()
            if shape.kuberay:
                _wait_port_free(objects.kuberay_webhook_port(), port_wait_s, progress)
            built = build_modules(_modules_for(shape), progress)
            info = self._start(shape, built, progress, owner_pid)
            progress(f"lab up in {time.monotonic() - started:.1f} s ({shape.describe()})")
            return info

    def down(self, progress: Progress = print) -> list[str]:
        """Stop every process of the lab (SIGTERM, then SIGKILL); return the stopped names."""
        with self._dir.locked():
            return self._stop_all(progress)

    def status(self) -> LabStatus:
        """Processes and health of every component this lab should run."""
        state = self._dir.load_state()
        live = self._dir.live_pids()
        if state is None or not live:
            return LabStatus(self.state_dir, up=bool(live), healthy=False, components={})
        shape = LabShape.from_dict(state["shape"])
        components: dict[str, ComponentStatus] = {}
        for name, spec_data in state["components"].items():
            pid = live.get(name)
            if pid is None:
                components[name] = ComponentStatus(name, None, False, False, "not running")
                continue
            ok, detail = health.probe(ProcessSpec(**spec_data), self._dir.pki)
            components[name] = ComponentStatus(name, pid, True, ok, detail, procs.rss_kib(pid))
        return LabStatus(
            self.state_dir,
            up=True,
            healthy=all(c.healthy for c in components.values()),
            components=components,
            shape=shape,
            server=state["server"],
            kubeconfig=self.kubeconfig,
            rss_kib=sum(procs.rss_kib(pid) for pid in live.values()),
        )

    def info(self) -> LabInfo:
        """Connection details of the lab described by the state directory."""
        state = self._dir.load_state()
        if state is None:
            raise LabError(f"no lab in {self.state_dir}")
        return LabInfo(
            kubeconfig=self.kubeconfig,
            server=state["server"],
            shape=LabShape.from_dict(state["shape"]),
            state_dir=self.state_dir,
            ports=dict(state["ports"]),
            images_file=_images_file(self.state_dir, LabShape.from_dict(state["shape"])),
            helm=installkit.helm_path(self.state_dir),
            charts_dir=installkit.charts_dir(self.state_dir),
        )

    def stop_component(self, name: str, progress: Progress = _quiet) -> None:
        """Stop one component (the others keep running), e.g. to test a check's failure."""
        _check_component_name(name)
        with self._dir.locked():
            pid = self._dir.live_pids().get(name)
            if pid is None:
                raise LabError(f"lab component {name} is not running in {self.state_dir}")
            procs.stop([pid], str(self.state_dir))
            self._dir.pid_file(name).unlink(missing_ok=True)
            progress(f"stopped {name} (pid {pid})")

    def start_component(self, name: str, progress: Progress = _quiet) -> None:
        """Start a stopped component again with its original command line; wait until healthy."""
        _check_component_name(name)
        with self._dir.locked():
            state = self._dir.load_state()
            if state is None or not self._dir.live_pids():
                raise LabError(f"no running lab in {self.state_dir}; run up first")
            if name not in state["components"]:
                raise LabError(f"lab component {name} is not part of this lab's shape")
            if name in self._dir.live_pids():
                raise LabError(f"lab component {name} is already running")
            spec = ProcessSpec(**state["components"][name])
            if name == "kwok":
                bootstrap.release_node_leases(self._api(), LabShape.from_dict(state["shape"]))
            launch(spec, self._dir)
            wait_healthy(spec, self._dir)
            progress(f"started {name}")

    # ---- internals -------------------------------------------------------------------------
    def _reuse_or_clean(self, shape: LabShape, progress: Progress) -> LabInfo | None:
        state = self._dir.load_state()
        live = self._dir.live_pids()
        if live and state is not None:
            owner = state.get("owner_pid")
            running = LabShape.from_dict(state["shape"])
            if owner is not None and not procs.alive(int(owner)):
                progress(f"cleaning lab in {self.state_dir} left by ended session (pid {owner})")
            elif running != shape:
                raise LabError(
                    f"a lab with another shape is running in {self.state_dir}"
                    f" ({running.describe()}); run 'down' first or use another --state-dir"
                )
            else:
                status = self.status()
                if status.healthy:
                    progress(f"reusing the running lab in {self.state_dir}")
                    return dataclasses.replace(self.info(), reused=True)
                bad = ", ".join(n for n, c in status.components.items() if not c.healthy)
                progress(f"running lab in {self.state_dir} is unhealthy ({bad}); restarting it")
            self._stop_all(progress)
        elif live:
            progress(f"stopping lab processes without state in {self.state_dir}")
            self._stop_all(progress)
        elif self._dir.has_pid_files():
            progress(f"cleaning stale state dir {self.state_dir} (its processes are gone)")
            self._stop_all(progress)  # A real node's containers and host state may be left.
        return None

    def _stop_all(self, progress: Progress) -> list[str]:
        live = self._dir.live_pids()
        if live:
            started = time.monotonic()
            # Clients first, then the API server, etcd last: an API server that loses etcd
            # first hangs in its graceful shutdown.  Its graceful shutdown drains requests for
            # up to a minute, which nothing needs (the next up starts from an empty etcd): it
            # gets 2 s, then SIGKILL.
            marker = str(self.state_dir)
            procs.stop([p for n, p in live.items() if n not in ("apiserver", "etcd")], marker)
            procs.stop([p for n, p in live.items() if n == "apiserver"], marker,
                       timeout=_APISERVER_STOP_S)
            procs.stop([p for n, p in live.items() if n == "etcd"], marker)
            names = ", ".join(live)
            progress(f"stopped {names} in {time.monotonic() - started:.1f} s")
        # A real node's shims and containers outlive its processes; its host changes too.
        shims = realnode.stop_shims(self.state_dir)
        realnode.forget_plugin(self.state_dir)
        removed = hostnet.HostNet(self.state_dir).cleanup()
        if shims or removed:
            progress(f"removed the real node's host state: "
                     f"{', '.join([f'{len(shims)} shims', *removed])}")
        self._dir.remove_pid_files()
        return list(live)

    def _start(
        self,
        shape: LabShape,
        built: dict[str, BuiltModule],
        progress: Progress,
        owner_pid: int | None,
    ) -> LabInfo:
        if shape.kuberay and procs.port_bound(objects.kuberay_webhook_port()):
            # Fail before starting anything: the operator could not serve its webhook.
            raise LabError(webhook_port_busy("kuberay", objects.kuberay_webhook_port()))
        try:
            inputs = self._prepare(shape, built, progress)
        except BaseException:
            self._stop_all(_quiet)  # A half-made real node's host changes go too.
            raise
        specs = _specs(inputs)
        server = inputs.url("apiserver")
        self._dir.write_state(
            {
                "shape": shape.to_dict(),
                "server": server,
                "ports": inputs.ports,
                "owner_pid": owner_pid,
                "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
                "components": {s.name: s.__dict__ for s in specs},
            }
        )
        try:
            self._run(specs, inputs, built, progress)
        except BaseException:
            # Never leave half a lab behind: its ports and memory would leak silently.
            self._stop_all(_quiet)
            raise
        return LabInfo(
            kubeconfig=self.kubeconfig,
            server=server,
            shape=shape,
            state_dir=self.state_dir,
            ports=inputs.ports,
            images_file=_images_file(self.state_dir, shape),
            helm=installkit.helm_path(self.state_dir),
            charts_dir=installkit.charts_dir(self.state_dir),
        )

    def _prepare(
        self, shape: LabShape, built: dict[str, BuiltModule], progress: Progress
    ) -> SpecInputs:
        """A fresh state directory with the PKI and the files the components read."""
        self._dir.fresh()
        binaries = {n: b.binary(n) for b in built.values() for n in b.module.binaries}
        paths = pki.generate(self._dir.pki.directory)
        inputs = SpecInputs(shape, binaries, _choose_ports(shape), paths, self._dir)
        write_kubeconfigs(self._dir, inputs.url("apiserver"), paths)
        kwok_metrics.write_config(self._dir)
        host_operators.prepare(inputs)
        if shape.keda:
            keda.prepare(inputs)
        if shape.coscheduling:
            coscheduling.prepare(inputs)
        if shape.real_nodes:
            # The bridge first: the API server listens on the node's address.
            hostnet.HostNet(self.state_dir).setup()
            realnode.prepare(inputs, built, progress)
            installkit.prepare(self.state_dir, built)
        return inputs

    def _run(
        self,
        specs: list[ProcessSpec],
        inputs: SpecInputs,
        built: dict[str, BuiltModule],
        progress: Progress,
    ) -> None:
        """Start the components in order, bootstrap the cluster, wait until it is usable."""
        by_name = {s.name: s for s in specs}
        for name in ("etcd", "apiserver"):
            t0 = time.monotonic()
            launch(by_name[name], self._dir)
            wait_healthy(by_name[name], self._dir)
            progress(f"{name} ready in {time.monotonic() - t0:.1f} s")
        rest = [by_name[n] for n in _AFTER_APISERVER if n in by_name]
        ops = [by_name[n] for n in host_operators.NAMES if n in by_name]
        kd = [by_name[n] for n in keda.NAMES if n in by_name]
        cs = [by_name[n] for n in coscheduling.NAMES if n in by_name]
        node = [by_name[n] for n in realnode.NAMES if n in by_name]
        gw = [by_name[n] for n in (traefik.NAME,) if n in by_name]
        prom = [by_name[n] for n in (prometheus.COMPONENT,) if n in by_name]
        t0 = time.monotonic()
        guard = _LaunchGuard(self._dir)
        for spec in rest:
            guard.launch(spec)
        api = self._api()
        bootstrap.apply_cluster_objects(api, inputs.shape, inputs.ports, inputs.pki)
        # Each installer applies its own objects and starts its own processes; none needs
        # another's, so they run side by side (a lab's start is mostly waiting on the API
        # server and on pods).  The slowest chains go first: Prometheus (operator, then its
        # pod on the real node, then a first scrape) and the real node itself.
        tasks: list[Callable[[], object]] = []
        if prom:  # Its CRDs Established before the operator starts; its images imported.
            images = prometheus.image_refs(realnode.images_json(inputs))

            def operator_starts() -> None:
                guard.open_gate()
                guard.launch(prom[0])  # Its pod's objects are applied meanwhile.

            tasks.append(lambda: prometheus.install(self._api(), inputs, built, images,
                                                    progress, crds_established=operator_starts))
        else:
            guard.open_gate()
        if node:
            def start_node() -> None:
                realnode.start(node, inputs, self._dir, progress, launcher=guard.launch)
                realnode.install(self._api(), inputs)
            tasks.append(start_node)
        # The other CRDs wait for Prometheus' to be Established: the API server is the busiest
        # process of a start (each CRD is validated, compiled and served), and Prometheus'
        # operator, its pod on the real node and a first scrape are the longest chain after.
        if ops:
            tasks.append(guard.then_launch(
                lambda: host_operators.install(self._api(), inputs, built, progress), ops,
                gated=True))
        if kd:  # Its CRDs Established before the operator starts.
            tasks.append(guard.then_launch(
                lambda: keda.install(self._api(), inputs, built, progress), kd, gated=True))
        if cs:  # Its CRDs Established before the scheduler and the controller start.
            tasks.append(guard.then_launch(
                lambda: coscheduling.install(self._api(), built, progress), cs, gated=True))
        if gw:  # The data plane listens on the node's bridge, made in ``_prepare``.
            tasks.append(guard.then_launch(
                lambda: traefik.install(self._api(), inputs, built, progress), gw, gated=True))
        eg = envoygateway.enabled(inputs.shape)
        if eg:  # Pods on the real node; its CRDs wait like the others'.
            eg_images = realnode.image_refs(realnode.images_json(inputs), envoygateway.IMAGES,
                                            "Envoy Gateway needs them")
            tasks.append(guard.then_launch(
                lambda: envoygateway.install(self._api(), inputs, built, eg_images, progress,
                                             node=realnode.NODE_NAME), [], gated=True))
        guard.run(tasks)
        started = rest + ops + kd + cs + [s for s in node if s.name != "containerd"] + gw + prom
        with ThreadPoolExecutor(len(started)) as pool:
            list(pool.map(lambda spec: wait_healthy(spec, self._dir), started))
        names_up = ", ".join(s.name for s in started)
        progress(f"{names_up} ready in {time.monotonic() - t0:.1f} s")
        bootstrap.wait_ready(api, inputs.shape, progress)
        if node:
            realnode.wait_ready(api, progress, inputs.shape)
        if gw:
            traefik.wait_accepted(api, progress)
        if eg:
            envoygateway.wait_accepted(api, progress)
        if prom:
            exporter = () if inputs.shape.gpu_exporter == "off" else (gpusim.EXPORTER_NAME,)
            prometheus.wait_ready(api, progress, scraped=exporter)
        if kd:
            keda.wait_available(api, progress)
        bootstrap.occupy_gpus(api, inputs.shape, progress)


class _LaunchGuard:
    """Runs a lab's installers side by side and starts its processes, until cancelled.

    On an error or Ctrl-C in any of them the guard stops further launches before ``up``
    stops what was started: a thread that finishes its install a moment later cannot start
    a process the clean-up has already missed.  Gated installers start once the gate opens.
    """

    def __init__(self, state: StateDir) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._cancelled = False
        self._gate = threading.Event()

    def open_gate(self) -> None:
        self._gate.set()

    def launch(self, spec: ProcessSpec, _state: StateDir | None = None) -> int:
        with self._lock:
            if self._cancelled:
                raise LabError(f"lab start cancelled before {spec.name} started")
            return launch(spec, self._state)

    def then_launch(self, install: Callable[[], object], specs: list[ProcessSpec], *,
                    gated: bool = False) -> Callable[[], None]:
        """A task: ``install`` (objects the processes need first), then start ``specs``."""
        def task() -> None:
            if gated:
                self._gate.wait()
            if self._cancelled:
                return
            install()
            for spec in specs:
                self.launch(spec)
        return task

    def run(self, tasks: list[Callable[[], object]]) -> None:
        """Run ``tasks`` in threads; re-raise the first failure once launches are stopped."""
        if not tasks:
            return
        pool = ThreadPoolExecutor(len(tasks), thread_name_prefix="lab-up")
        try:
            futures = [pool.submit(task) for task in tasks]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                future.result()
        except BaseException:
            with self._lock:
                self._cancelled = True
            self._gate.set()  # Gated tasks wake up, see the cancel and end.
            # Do not wait: the caller stops the API server, and the threads' waits then end.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def _specs(inputs: SpecInputs) -> list[ProcessSpec]:
    """Every component's spec; this order is that of ``state.json`` and of ``status``."""
    return [
        *controlplane.specs(inputs),
        kwok_metrics.kwok(inputs),
        *host_operators.specs(inputs),
        *keda.specs(inputs),
        *coscheduling.specs(inputs),
        *kwok_metrics.metrics_server(inputs),
        *realnode.specs(inputs),
        *prometheus.specs(inputs),
        *traefik.specs(inputs),
    ]


def _choose_ports(shape: LabShape) -> dict[str, int]:
    """Free ports for every server of the shape's components (KubeRay's webhook port is fixed)."""
    names = ["etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok"]
    if shape.metrics_server:
        names.append("metrics-server")
    if shape.kuberay:
        names.append("kuberay")
    if shape.kueue:
        names += ["kueue", "kueue-webhook"]
    if shape.karpenter:
        names += ["karpenter", "karpenter-metrics"]
    if shape.trainer:
        names += ["trainer", "trainer-webhook"]
    if shape.real_nodes:
        names += realnode.PORTS
    if traefik.enabled(shape):
        names += traefik.PORTS
    if shape.prometheus:
        names += prometheus.PORTS
    if shape.keda:
        names += keda.PORTS
    if shape.coscheduling:
        names += coscheduling.PORTS
    ports = dict(zip(names, procs.free_ports(len(names)), strict=True))
    if shape.kuberay:
        ports["kuberay-webhook"] = objects.kuberay_webhook_port()
    return ports


def _modules_for(shape: LabShape) -> tuple[str, ...]:
    """The Go modules a lab of ``shape`` runs binaries of (others need not even compile)."""
    return ("controlplane", "tools", *host_operators.enabled(shape),
            *(realnode.MODULES if shape.real_nodes else ()),
            *(installkit.MODULES if shape.real_nodes else ()),
            *((gatewayapi.MODULE,) if shape.gateway else ()),
            *((envoygateway.MODULE,) if envoygateway.enabled(shape) else ()),
            *(prometheus.MODULES if shape.prometheus else ()),
            *((keda.MODULE,) if shape.keda else ()),
            *((coscheduling.MODULE,) if shape.coscheduling else ()))


def _images_file(state_dir: Path, shape: LabShape) -> Path | None:
    """Image overrides naming the locally built images, for a lab with a real node."""
    return realnode.images_file(state_dir) if shape.real_nodes else None


def _check_component_name(name: str) -> None:
    if name not in COMPONENTS:
        raise LabError(f"unknown lab component {name!r}; one of: {', '.join(COMPONENTS)}")


def _wait_port_free(port: int, timeout: float, progress: Progress) -> None:
    deadline = time.monotonic() + timeout
    next_note = 0.0
    while procs.port_bound(port) and time.monotonic() < deadline:
        if time.monotonic() >= next_note:
            left = deadline - time.monotonic()
            progress(f"port {port} is in use (another lab?); waiting up to {left:.0f} s")
            next_note = time.monotonic() + 30.0
        time.sleep(0.5)  # Held by a process we cannot watch: polling only.
