"""Start, inspect and stop a lab: a real Kubernetes control plane with simulated GPU nodes.

Each component (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the kwok
controller, metrics-server and, when the shape asks for them, operators such as KubeRay) runs as
its own host process bound to 127.0.0.1 on ports chosen at start.  Everything a lab owns lives
in its state directory: PKI, kubeconfigs, etcd data, pid files, logs and ``state.json`` (shape,
ports and the exact command line of every component, so a single component can be stopped and
started again later, by another process).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import json
import os
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import objects, pki, procs
from .build import BuiltModule, Progress, build_all, build_modules, cache_root
from .errors import LabError
from .kapi import KubeAPI, Obj
from .shape import LabShape

CONTEXT = "aic-lab"
STATE_VERSION = 1
COMPONENTS = (
    "etcd",
    "apiserver",
    "controller-manager",
    "scheduler",
    "kwok",
    "metrics-server",
    "kuberay",
    "kueue",
)
# Components started once the API server serves, all at the same time.
_AFTER_APISERVER = ("controller-manager", "scheduler", "kwok", "metrics-server")
# Operators, started once their CRDs are Established (controller-runtime exits otherwise).
_OPERATORS = ("kuberay", "kueue")
_START_TIMEOUT_S = 60.0
_READY_TIMEOUT_S = 60.0
SERVICE_CIDR = "10.96.0.0/16"


def default_state_dir() -> Path:
    """``$AIC_LAB_STATE_DIR`` or ``<cache>/lab``."""
    override = os.environ.get("AIC_LAB_STATE_DIR")
    return Path(override).expanduser() if override else cache_root() / "lab"


def _quiet(_: str) -> None:
    """Progress sink that drops messages."""


@dataclass(frozen=True)
class LabInfo:
    """How to reach a running lab."""

    kubeconfig: Path
    server: str
    shape: LabShape
    state_dir: Path
    context: str = CONTEXT
    reused: bool = False
    ports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ComponentStatus:
    """One component's process and health."""

    name: str
    pid: int | None
    running: bool
    healthy: bool
    detail: str
    rss_kib: int = 0

    def line(self) -> str:
        """Human-readable one-liner for ``status``."""
        state = "healthy" if self.healthy else ("running" if self.running else "stopped")
        pid = f"pid {self.pid}" if self.pid and self.running else "no process"
        rss = f"{self.rss_kib // 1024} MiB" if self.running else "-"
        return f"{self.name:<19} {state:<8} {pid:<12} {rss:>8}  {self.detail}"


@dataclass(frozen=True)
class LabStatus:
    """Whether the lab is up and healthy, and per-component detail."""

    state_dir: Path
    up: bool
    healthy: bool
    components: dict[str, ComponentStatus]
    shape: LabShape | None = None
    server: str | None = None
    kubeconfig: Path | None = None
    rss_kib: int = 0

    def summary(self) -> str:
        """Multi-line report for the CLI."""
        if not self.up:
            return f"lab in {self.state_dir}: down"
        head = "healthy" if self.healthy else "UNHEALTHY"
        lines = [f"lab in {self.state_dir}: up, {head}"]
        if self.shape is not None:
            lines.append(f"shape: {self.shape.describe()}")
        lines.append(f"server: {self.server}  memory (RSS): {self.rss_kib // 1024} MiB")
        lines += [c.line() for c in self.components.values()]
        lines.append(f"kubeconfig: {self.kubeconfig}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Spec:
    """How to run and probe one component."""

    name: str
    argv: list[str]
    health_url: str
    # "plain": no TLS; "admin": verify the lab CA and present the admin cert;
    # "insecure": TLS without verification (self-signed serving certs of KCM/scheduler).
    health_tls: str
    port: int
    # Added to the component's environment.
    env: dict[str, str] = field(default_factory=dict)
    # An admission webhook server the component must also serve (TLS, verified with the PKI
    # file ``webhook_ca`` for the name "localhost") before it counts as healthy; 0: none.
    webhook_port: int = 0
    webhook_ca: str = "ca.crt"


class Lab:
    """A lab in one state directory.  Cheap to construct; holds no processes itself."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = (state_dir or default_state_dir()).expanduser().absolute()

    # ---- paths -----------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig of the lab (self-contained; context ``aic-lab``)."""
        return self.state_dir / "kubeconfig"

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def _pki(self) -> pki.PKIPaths:
        return pki.PKIPaths(self.state_dir / "pki")

    def _pid_file(self, name: str) -> Path:
        return self.state_dir / "pids" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        """Log of a component (kept after ``down`` for diagnosis)."""
        return self.state_dir / "logs" / f"{name}.log"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One lab operation at a time per state directory (also across processes)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- state -----------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return None
        return data

    def _live_pids(self) -> dict[str, int]:
        """Components whose pid file names a live process of this lab."""
        marker = str(self.state_dir)
        live: dict[str, int] = {}
        pid_dir = self.state_dir / "pids"
        if not pid_dir.is_dir():
            return live
        for pid_file in sorted(pid_dir.glob("*.pid")):
            pid = procs.read_pid(pid_file)
            if pid is not None and procs.is_ours(pid, marker):
                live[pid_file.stem] = pid
        return live

    def _api(self) -> KubeAPI:
        state = self._load_state()
        if state is None:
            raise LabError(f"no lab state in {self.state_dir}")
        cert, key = self._pki.client("admin")
        return KubeAPI(state["server"], self._pki.ca_cert, cert, key)

    # ---- public API ------------------------------------------------------------------------
    def build(self, progress: Progress = print) -> dict[str, Path]:
        """Build (or find cached) the lab binaries."""
        return build_all(progress)

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
        with self._locked():
            reused = self._reuse_or_clean(shape, progress)
            if reused is not None:
                return reused
            started = time.monotonic()
            if shape.kuberay:
                self._wait_port_free(objects.kuberay_webhook_port(), port_wait_s, progress)
            built = build_modules(_modules_for(shape), progress)
            info = self._start(shape, built, progress, owner_pid)
            progress(f"lab up in {time.monotonic() - started:.1f} s ({shape.describe()})")
            return info

    @staticmethod
    def _wait_port_free(port: int, timeout: float, progress: Progress) -> None:
        deadline = time.monotonic() + timeout
        next_note = 0.0
        while procs.port_bound(port) and time.monotonic() < deadline:
            if time.monotonic() >= next_note:
                left = deadline - time.monotonic()
                progress(f"port {port} is in use (another lab?); waiting up to {left:.0f} s")
                next_note = time.monotonic() + 30.0
            time.sleep(0.5)  # Held by a process we cannot watch: polling only.

    def down(self, progress: Progress = print) -> list[str]:
        """Stop every process of the lab (SIGTERM, then SIGKILL); return the stopped names."""
        with self._locked():
            return self._stop_all(progress)

    def status(self) -> LabStatus:
        """Processes and health of every component this lab should run."""
        state = self._load_state()
        live = self._live_pids()
        if state is None or not live:
            return LabStatus(self.state_dir, up=bool(live), healthy=False, components={})
        shape = LabShape.from_dict(state["shape"])
        components: dict[str, ComponentStatus] = {}
        for name, spec_data in state["components"].items():
            spec = _Spec(**spec_data)
            pid = live.get(name)
            if pid is None:
                components[name] = ComponentStatus(name, None, False, False, "not running")
                continue
            ok, detail = self._probe(spec)
            components[name] = ComponentStatus(name, pid, True, ok, detail, procs.rss_kib(pid))
        rss = sum(procs.rss_kib(pid) for pid in live.values())
        return LabStatus(
            self.state_dir,
            up=True,
            healthy=all(c.healthy for c in components.values()),
            components=components,
            shape=shape,
            server=state["server"],
            kubeconfig=self.kubeconfig,
            rss_kib=rss,
        )

    def info(self) -> LabInfo:
        """Connection details of the lab described by the state directory."""
        state = self._load_state()
        if state is None:
            raise LabError(f"no lab in {self.state_dir}")
        return LabInfo(
            kubeconfig=self.kubeconfig,
            server=state["server"],
            shape=LabShape.from_dict(state["shape"]),
            state_dir=self.state_dir,
            ports=dict(state["ports"]),
        )

    def stop_component(self, name: str, progress: Progress = _quiet) -> None:
        """Stop one component (the others keep running), e.g. to test a check's failure."""
        self._check_component_name(name)
        with self._locked():
            pid = self._live_pids().get(name)
            if pid is None:
                raise LabError(f"lab component {name} is not running in {self.state_dir}")
            procs.stop([pid], str(self.state_dir))
            self._pid_file(name).unlink(missing_ok=True)
            progress(f"stopped {name} (pid {pid})")

    def start_component(self, name: str, progress: Progress = _quiet) -> None:
        """Start a stopped component again with its original command line; wait until healthy."""
        self._check_component_name(name)
        with self._locked():
            state = self._load_state()
            if state is None or not self._live_pids():
                raise LabError(f"no running lab in {self.state_dir}; run up first")
            if name not in state["components"]:
                raise LabError(f"lab component {name} is not part of this lab's shape")
            if name in self._live_pids():
                raise LabError(f"lab component {name} is already running")
            spec = _Spec(**state["components"][name])
            if name == "kwok":
                self._release_node_leases(LabShape.from_dict(state["shape"]))
            self._launch(spec)
            self._wait_healthy(spec)
            progress(f"started {name}")

    # ---- internals -------------------------------------------------------------------------
    def _release_node_leases(self, shape: LabShape) -> None:
        """Delete the simulated nodes' leases so a restarted kwok takes its nodes at once.

        kwok only manages a node while it holds the node's lease; the stopped instance's
        leases would otherwise block the new one until they expire.
        """
        api = self._api()
        for group in objects.node_names(shape).values():
            for node in group:
                api.request(
                    "DELETE",
                    f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}",
                )

    @staticmethod
    def _check_component_name(name: str) -> None:
        if name not in COMPONENTS:
            raise LabError(f"unknown lab component {name!r}; one of: {', '.join(COMPONENTS)}")

    def _reuse_or_clean(self, shape: LabShape, progress: Progress) -> LabInfo | None:
        state = self._load_state()
        live = self._live_pids()
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
                    info = self.info()
                    return LabInfo(
                        kubeconfig=info.kubeconfig,
                        server=info.server,
                        shape=info.shape,
                        state_dir=info.state_dir,
                        reused=True,
                        ports=info.ports,
                    )
                bad = ", ".join(n for n, c in status.components.items() if not c.healthy)
                progress(f"running lab in {self.state_dir} is unhealthy ({bad}); restarting it")
            self._stop_all(progress)
        elif live:
            progress(f"stopping lab processes without state in {self.state_dir}")
            self._stop_all(progress)
        elif (self.state_dir / "pids").is_dir() and any((self.state_dir / "pids").iterdir()):
            progress(f"cleaning stale state dir {self.state_dir} (its processes are gone)")
        return None

    def _stop_all(self, progress: Progress) -> list[str]:
        live = self._live_pids()
        if live:
            started = time.monotonic()
            # etcd last: an API server that loses etcd first hangs in its graceful shutdown.
            procs.stop([p for n, p in live.items() if n != "etcd"], str(self.state_dir))
            procs.stop([p for n, p in live.items() if n == "etcd"], str(self.state_dir))
            names = ", ".join(live)
            progress(f"stopped {names} in {time.monotonic() - started:.1f} s")
        shutil.rmtree(self.state_dir / "pids", ignore_errors=True)
        return list(live)

    def _fresh_dirs(self) -> None:
        """Remove what belongs to a previous lab; keep its logs one generation back."""
        for name in ("pids", "etcd", "pki", "etc", "operators"):
            shutil.rmtree(self.state_dir / name, ignore_errors=True)
        for name in ("state.json", "kubeconfig"):
            (self.state_dir / name).unlink(missing_ok=True)
        logs = self.state_dir / "logs"
        if logs.is_dir():
            previous = self.state_dir / "logs.previous"
            shutil.rmtree(previous, ignore_errors=True)
            logs.rename(previous)
        for name in ("pids", "etc", "logs"):
            (self.state_dir / name).mkdir(parents=True, exist_ok=True)

    def _start(
        self,
        shape: LabShape,
        built: dict[str, BuiltModule],
        progress: Progress,
        owner_pid: int | None,
    ) -> LabInfo:
        if shape.kuberay and procs.port_bound(objects.kuberay_webhook_port()):
            # Fail before starting anything: the operator could not serve its webhook.
            raise LabError(_webhook_port_busy("kuberay", objects.kuberay_webhook_port()))
        self._fresh_dirs()
        binaries = {n: b.binary(n) for b in built.values() for n in b.module.binaries}
        paths = pki.generate(self.state_dir / "pki")
        names = ["etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok"]
        if shape.metrics_server:
            names.append("metrics-server")
        if shape.kuberay:
            names.append("kuberay")
        if shape.kueue:
            names += ["kueue", "kueue-webhook"]
        ports = dict(zip(names, procs.free_ports(len(names)), strict=True))
        if shape.kuberay:
            ports["kuberay-webhook"] = objects.kuberay_webhook_port()
        server = f"https://127.0.0.1:{ports['apiserver']}"
        self._write_kubeconfigs(server, paths)
        kwok_config = self.state_dir / "etc" / "kwok.yaml"
        kwok_config.write_text(objects.data_text("kwok.yaml"))
        if shape.kueue:
            pki.generate_kueue(paths)
            # Kueue reads its serving certificate from certDir (in a pod, the mounted Secret).
            cert_dir = self.state_dir / "operators" / "kueue" / "certs"
            cert_dir.mkdir(parents=True)
            shutil.copyfile(paths.file("kueue-webhook.crt"), cert_dir / "tls.crt")
            shutil.copyfile(paths.file("kueue-webhook.key"), cert_dir / "tls.key")
            (cert_dir / "tls.key").chmod(0o600)
            config = objects.kueue_configuration(ports["kueue"], ports["kueue-webhook"], cert_dir)
            (self.state_dir / "etc" / "kueue.yaml").write_text(yaml.safe_dump(config))
        specs = self._specs(shape, binaries, ports, paths, kwok_config)
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "shape": shape.to_dict(),
            "server": server,
            "ports": ports,
            "owner_pid": owner_pid,
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "components": {s.name: s.__dict__ for s in specs},
        }
        self._state_file.write_text(json.dumps(state, indent=2))
        by_name = {s.name: s for s in specs}
        try:
            for name in ("etcd", "apiserver"):
                t0 = time.monotonic()
                self._launch(by_name[name])
                self._wait_healthy(by_name[name])
                progress(f"{name} ready in {time.monotonic() - t0:.1f} s")
            rest = [by_name[n] for n in _AFTER_APISERVER if n in by_name]
            operators = [by_name[n] for n in _OPERATORS if n in by_name]
            t0 = time.monotonic()
            for spec in rest:
                self._launch(spec)
            api = self._api()
            self._bootstrap(api, shape, ports, paths)
            if operators:
                self._install_operators(api, shape, built, paths, ports, progress)
            for spec in operators:
                self._launch(spec)
            started = rest + operators
            with ThreadPoolExecutor(len(started)) as pool:
                list(pool.map(self._wait_healthy, started))
            names_up = ", ".join(s.name for s in started)
            progress(f"{names_up} ready in {time.monotonic() - t0:.1f} s")
            self._wait_ready(api, shape, progress)
        except BaseException:
            # Never leave half a lab behind: its ports and memory would leak silently.
            self._stop_all(_quiet)
            raise
        return LabInfo(
            kubeconfig=self.kubeconfig,
            server=server,
            shape=shape,
            state_dir=self.state_dir,
            ports=ports,
        )

    def _write_kubeconfigs(self, server: str, paths: pki.PKIPaths) -> None:
        def config(who: str, embed: bool) -> dict[str, Any]:
            cert, key = paths.client(who)
            if embed:
                cluster = {"server": server, "certificate-authority-data": _b64(paths.ca_cert)}
                user = {
                    "client-certificate-data": _b64(cert),
                    "client-key-data": _b64(key),
                }
            else:
                cluster = {"server": server, "certificate-authority": str(paths.ca_cert)}
                user = {"client-certificate": str(cert), "client-key": str(key)}
            return {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": CONTEXT, "cluster": cluster}],
                "users": [{"name": f"{CONTEXT}-{who}", "user": user}],
                "contexts": [
                    {
                        "name": CONTEXT,
                        "context": {"cluster": CONTEXT, "user": f"{CONTEXT}-{who}"},
                    }
                ],
                "current-context": CONTEXT,
            }

        self.kubeconfig.write_text(yaml.safe_dump(config("admin", embed=True)))
        self.kubeconfig.chmod(0o600)
        for who in pki.CLIENTS:
            target = self.state_dir / "etc" / f"{who}.kubeconfig"
            target.write_text(yaml.safe_dump(config(who, embed=False)))

    def _specs(
        self,
        shape: LabShape,
        binaries: dict[str, Path],
        ports: dict[str, int],
        paths: pki.PKIPaths,
        kwok_config: Path,
    ) -> list[_Spec]:
        aiclab = str(binaries["aiclab"])
        etc = self.state_dir / "etc"
        f = paths.file
        admin_kc = str(etc / "admin.kubeconfig")
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        specs = [
            _Spec(
                "etcd",
                [
                    aiclab,
                    "etcd",
                    "--name=aic-lab",
                    f"--data-dir={self.state_dir / 'etcd'}",
                    f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=aic-lab={peer_url}",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                ],
                f"{etcd_url}/health",
                "plain",
                ports["etcd"],
            ),
            _Spec(
                "apiserver",
                [
                    aiclab,
                    "kube-apiserver",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={ports['apiserver']}",
                    f"--etcd-servers={etcd_url}",
                    f"--client-ca-file={f('ca.crt')}",
                    f"--tls-cert-file={f('apiserver.crt')}",
                    f"--tls-private-key-file={f('apiserver.key')}",
                    # The Node authorizer watches ResourceSlices and keeps the API server
                    # unready while resource.k8s.io/v1 is off; no kubelet needs it without DRA.
                    "--authorization-mode=" + ("Node,RBAC" if shape.dra_api else "RBAC"),
                    "--enable-admission-plugins=NodeRestriction",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-account-key-file={f('sa.pub')}",
                    f"--service-account-signing-key-file={f('sa.key')}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--allow-privileged=true",
                    f"--requestheader-client-ca-file={f('front-proxy-ca.crt')}",
                    "--requestheader-allowed-names=front-proxy-client",
                    "--requestheader-username-headers=X-Remote-User",
                    "--requestheader-group-headers=X-Remote-Group",
                    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                    f"--proxy-client-cert-file={f('front-proxy-client.crt')}",
                    f"--proxy-client-key-file={f('front-proxy-client.key')}",
                    "--profiling=false",
                    *([] if shape.dra_api else ["--runtime-config=resource.k8s.io/v1=false"]),
                ],
                f"https://127.0.0.1:{ports['apiserver']}/readyz",
                "admin",
                ports["apiserver"],
            ),
            _Spec(
                "controller-manager",
                [
                    aiclab,
                    "kube-controller-manager",
                    f"--kubeconfig={etc / 'controller-manager.kubeconfig'}",
                    f"--authentication-kubeconfig={etc / 'controller-manager.kubeconfig'}",
                    f"--authorization-kubeconfig={etc / 'controller-manager.kubeconfig'}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={ports['controller-manager']}",
                    "--leader-elect=false",
                    "--use-service-account-credentials=true",
                    f"--service-account-private-key-file={f('sa.key')}",
                    f"--root-ca-file={f('ca.crt')}",
                    f"--cluster-signing-cert-file={f('ca.crt')}",
                    f"--cluster-signing-key-file={f('ca.key')}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    # The lab's HPA reacts in seconds, not minutes: tests wait on it.
                    "--horizontal-pod-autoscaler-sync-period=5s",
                    "--horizontal-pod-autoscaler-downscale-stabilization=15s",
                    "--horizontal-pod-autoscaler-cpu-initialization-period=10s",
                    "--horizontal-pod-autoscaler-initial-readiness-delay=5s",
                    "--profiling=false",
                ],
                f"https://127.0.0.1:{ports['controller-manager']}/healthz",
                "insecure",
                ports["controller-manager"],
            ),
            _Spec(
                "scheduler",
                [
                    aiclab,
                    "kube-scheduler",
                    f"--kubeconfig={etc / 'scheduler.kubeconfig'}",
                    f"--authentication-kubeconfig={etc / 'scheduler.kubeconfig'}",
                    f"--authorization-kubeconfig={etc / 'scheduler.kubeconfig'}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={ports['scheduler']}",
                    "--leader-elect=false",
                    "--profiling=false",
                ],
                f"https://127.0.0.1:{ports['scheduler']}/healthz",
                "insecure",
                ports["scheduler"],
            ),
            _Spec(
                "kwok",
                [
                    str(binaries["kwok"]),
                    f"--kubeconfig={admin_kc}",
                    f"--config={kwok_config}",
                    "--manage-all-nodes=false",
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                    "--node-ip=127.0.0.1",
                    f"--node-port={ports['kwok']}",
                    f"--server-address=127.0.0.1:{ports['kwok']}",
                    f"--tls-cert-file={f('kwok.crt')}",
                    f"--tls-private-key-file={f('kwok.key')}",
                    "--node-lease-duration-seconds=40",
                ],
                f"http://127.0.0.1:{ports['kwok']}/healthz",
                "plain",
                ports["kwok"],
            ),
        ]
        if shape.kuberay:
            # controller-runtime reads its webhook serving certificate from
            # $TMPDIR/k8s-webhook-server/serving-certs (no flag for it in ray-operator).
            tmp = self.state_dir / "operators" / "kuberay"
            specs.append(
                _Spec(
                    "kuberay",
                    [
                        str(binaries["ray-operator"]),
                        f"--kubeconfig={admin_kc}",
                        "--metrics-addr=0",  # "0": no metrics endpoint
                        f"--health-probe-bind-address=127.0.0.1:{ports['kuberay']}",
                        "--enable-leader-election=false",
                        "--log-stdout-encoder=console",
                    ],
                    f"http://127.0.0.1:{ports['kuberay']}/readyz",
                    "plain",
                    ports["kuberay"],
                    env={"ENABLE_WEBHOOKS": "true", "TMPDIR": str(tmp)},
                    webhook_port=ports["kuberay-webhook"],
                )
            )
        if shape.kueue:
            specs.append(
                _Spec(
                    "kueue",
                    [
                        str(binaries["kueue"]),
                        f"--kubeconfig={admin_kc}",
                        f"--config={etc / 'kueue.yaml'}",
                    ],
                    f"http://127.0.0.1:{ports['kueue']}/readyz",
                    "plain",
                    ports["kueue"],
                    webhook_port=ports["kueue-webhook"],
                    webhook_ca="kueue-ca.crt",
                )
            )
        if shape.metrics_server:
            specs.append(
                _Spec(
                    "metrics-server",
                    [
                        str(binaries["metrics-server"]),
                        "--bind-address=127.0.0.1",
                        f"--secure-port={ports['metrics-server']}",
                        f"--kubeconfig={admin_kc}",
                        f"--authentication-kubeconfig={admin_kc}",
                        f"--authorization-kubeconfig={admin_kc}",
                        f"--tls-cert-file={f('metrics-server.crt')}",
                        f"--tls-private-key-file={f('metrics-server.key')}",
                        "--kubelet-use-node-status-port",
                        "--kubelet-insecure-tls",
                        "--kubelet-preferred-address-types=InternalIP",
                        "--metric-resolution=10s",
                        "--kubelet-request-timeout=5s",
                    ],
                    f"https://127.0.0.1:{ports['metrics-server']}/healthz",
                    "insecure",
                    ports["metrics-server"],
                )
            )
        return specs

    def _launch(self, spec: _Spec) -> int:
        if procs.port_bound(spec.port):
            raise LabError(
                f"port {spec.port} for lab component {spec.name} is already in use"
                " by another process; run 'down' or free the port"
            )
        if spec.webhook_port and procs.port_bound(spec.webhook_port):
            raise LabError(_webhook_port_busy(spec.name, spec.webhook_port))
        return procs.start(
            spec.argv,
            self.log_file(spec.name),
            self._pid_file(spec.name),
            self.state_dir,
            env=spec.env,
        )

    def _probe(self, spec: _Spec) -> tuple[bool, str]:
        ctx: ssl.SSLContext | None = None
        if spec.health_tls == "admin":
            ctx = ssl.create_default_context(cafile=str(self._pki.ca_cert))
            ctx.load_cert_chain(*(str(p) for p in self._pki.client("admin")))
        elif spec.health_tls == "insecure":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(spec.health_url, context=ctx, timeout=2) as resp:
                body = resp.read(200).decode(errors="replace").strip()
                detail = f"{spec.health_url} {resp.status} {body[:40]}"
                if resp.status != 200:
                    return False, detail
        except urllib.error.HTTPError as err:
            return False, f"{spec.health_url} HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            return False, f"{spec.health_url} {reason}"
        if spec.webhook_port:
            ok, webhook = self._probe_webhook(spec.webhook_port, spec.webhook_ca)
            return ok, f"{detail}; {webhook}"
        return True, detail

    def _probe_webhook(self, port: int, ca: str) -> tuple[bool, str]:
        """TLS handshake with a webhook server, verifying its certificate like the API server."""
        ctx = ssl.create_default_context(cafile=str(self._pki.file(ca)))
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
                ctx.wrap_socket(sock, server_hostname="localhost"),
            ):
                return True, f"webhook https://localhost:{port} serving"
        except (OSError, ssl.SSLError) as err:
            return False, f"webhook https://localhost:{port} {err}"

    def _wait_healthy(self, spec: _Spec) -> None:
        """Wait for the component's health endpoint; fail fast if its process exits."""
        pid = procs.read_pid(self._pid_file(spec.name))
        deadline = time.monotonic() + _START_TIMEOUT_S
        log = self.log_file(spec.name)
        detail = ""
        while time.monotonic() < deadline:
            if pid is None or not procs.alive(pid):
                tail = procs.log_tail(log)
                if "address already in use" in tail:
                    if spec.webhook_port and f":{spec.webhook_port}" in tail:
                        raise LabError(
                            f"{_webhook_port_busy(spec.name, spec.webhook_port)}; see {log}"
                        )
                    raise LabError(
                        f"lab component {spec.name}: port {spec.port} is busy"
                        f" (address already in use); see {log}"
                    )
                raise LabError(
                    f"lab component {spec.name} exited at start: {tail[-300:]}; see {log}"
                )
            ok, detail = self._probe(spec)
            if ok:
                return
            time.sleep(0.1)  # Process readiness: nothing to watch yet.
        raise LabError(
            f"lab component {spec.name} not healthy after {_START_TIMEOUT_S:.0f} s ({detail});"
            f" see {log}"
        )

    def _bootstrap(
        self, api: KubeAPI, shape: LabShape, ports: dict[str, int], paths: pki.PKIPaths
    ) -> None:
        """Create the simulated nodes, the DRA driver's objects and the metrics APIService."""
        docs: list[Obj] = [*objects.nodes(shape), *objects.dra_objects(shape)]
        if shape.metrics_server:
            docs += objects.metrics_server_objects(
                ports["metrics-server"], paths.ca_cert.read_bytes()
            )
        for doc in docs:
            api.apply(doc)

    def _install_operators(
        self,
        api: KubeAPI,
        shape: LabShape,
        built: dict[str, BuiltModule],
        paths: pki.PKIPaths,
        ports: dict[str, int],
        progress: Progress,
    ) -> None:
        """Apply the operators' CRDs and webhook configurations; write their serving certs.

        The webhook configurations exist before their servers do: with failurePolicy Fail,
        the API server refuses the operator's kinds until the server answers, never lets one
        through unchecked.  ``up`` returns only once the servers answer.
        """
        t0 = time.monotonic()
        ca_pem = paths.ca_cert.read_bytes()
        crds: list[Obj] = []
        docs: list[Obj] = []
        if shape.kuberay:
            cert_dir = self.state_dir / "operators" / "kuberay" / "k8s-webhook-server"
            cert_dir = cert_dir / "serving-certs"
            cert_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(paths.file("webhook.crt"), cert_dir / "tls.crt")
            shutil.copyfile(paths.file("webhook.key"), cert_dir / "tls.key")
            (cert_dir / "tls.key").chmod(0o600)
            crds += objects.crds(built["kuberay"].manifest_dir("crds"))
            docs += objects.kuberay_objects(ca_pem)
        if shape.kueue:
            port = ports["kueue-webhook"]
            kueue_ca = paths.file("kueue-ca.crt").read_bytes()
            crds += objects.kueue_crds(built["kueue"].manifest_dir("crds"), port, kueue_ca)
            docs += objects.kueue_objects(
                built["kueue"].manifest_dir("webhooks"),
                port,
                kueue_ca,
                paths.file("kueue-ca.key").read_bytes(),
                paths.file("kueue-webhook.crt").read_bytes(),
                paths.file("kueue-webhook.key").read_bytes(),
            )
        with ThreadPoolExecutor(min(8, len(crds))) as pool:
            list(pool.map(api.apply, crds))
        for doc in docs:  # In order: a namespace before what lives in it.
            api.apply(doc)
        names = {c["metadata"]["name"] for c in crds}

        def established(items: list[Obj]) -> bool:
            done = {
                i["metadata"]["name"]
                for i in items
                if any(
                    c.get("type") == "Established" and c.get("status") == "True"
                    for c in (i.get("status") or {}).get("conditions") or []
                )
            }
            return names <= done

        api.wait_list(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            established,
            timeout=_READY_TIMEOUT_S,
            what=f"CRDs {', '.join(sorted(names))} Established",
        )
        progress(f"{len(crds)} operator CRDs Established in {time.monotonic() - t0:.1f} s")

    def _wait_ready(self, api: KubeAPI, shape: LabShape, progress: Progress) -> None:
        """Wait until the lab is usable: nodes Ready, default ServiceAccount, metrics API."""
        t0 = time.monotonic()
        expected = {n for group in objects.node_names(shape).values() for n in group}

        def nodes_ready(items: list[Obj]) -> bool:
            ready = {
                i["metadata"]["name"]
                for i in items
                if any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in i.get("status", {}).get("conditions", [])
                )
            }
            return expected <= ready

        api.wait_list("/api/v1/nodes", nodes_ready, timeout=_READY_TIMEOUT_S, what="nodes Ready")
        # Pods are rejected until the ServiceAccount controller made the default account.
        api.wait_list(
            "/api/v1/namespaces/default/serviceaccounts",
            lambda items: any(i["metadata"]["name"] == "default" for i in items),
            timeout=_READY_TIMEOUT_S,
            what="the default ServiceAccount",
        )
        if shape.metrics_server:
            api.wait_list(
                "/apis/apiregistration.k8s.io/v1/apiservices?fieldSelector="
                "metadata.name%3Dv1beta1.metrics.k8s.io",
                lambda items: any(
                    c.get("type") == "Available" and c.get("status") == "True"
                    for i in items
                    for c in i.get("status", {}).get("conditions", [])
                ),
                timeout=_READY_TIMEOUT_S,
                what="APIService v1beta1.metrics.k8s.io Available",
            )
        progress(f"nodes, service accounts and APIs ready in {time.monotonic() - t0:.1f} s")


def _modules_for(shape: LabShape) -> tuple[str, ...]:
    """The Go modules a lab of ``shape`` runs binaries of (others need not even compile)."""
    operators = [name for name in _OPERATORS if getattr(shape, name)]
    return ("controlplane", "tools", *operators)


def _webhook_port_busy(name: str, port: int) -> str:
    if name != "kuberay":  # Other operators' webhook ports are chosen free at start.
        return (
            f"port {port} for the webhook server of lab component {name} is already in use"
            " by another process; run 'down' or free the port"
        )
    return (
        f"port {port} for the webhook server of lab component {name} is already in use"
        " (another lab with this operator, or another program); the operator binds it on all"
        " interfaces and cannot move it, so run 'down' on the other lab or free the port, or"
        f" start this lab without {name}"
    )


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
