"""Run settings: every option resolved once (command line > environment > ini > default).

Validation happens here so that bad input becomes one clear line before any cluster I/O:
files named by options (platform metadata, template, image overrides) are read and checked
now, and the results travel in Settings, so nothing later re-reads them or the environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aiconformance.cluster.helm import HelmError, check_charts_option, find_helm
from pytest_aiconformance.cluster.images import (
    Image,
    ImageConfigError,
    UnknownImageError,
    apply_overrides,
    load_images,
)
from pytest_aiconformance.cluster.monitoring import QueryEndpoint, parse_prometheus_option
from pytest_aiconformance.cluster.profiles import AcceleratorProfile, default_profile, get_profile
from pytest_aiconformance.reports.meta import PlatformMeta, load_platform_meta
from pytest_aiconformance.reports.product_yaml import load_template_descriptions
from pytest_aiconformance.verdicts.catalog import (
    UnknownVersionError,
    load_catalog,
    normalize_version,
)

KEEP_CHOICES = ("never", "on-failure", "always")
ALLOCATION_CHOICES = ("auto", "dra", "device-plugin")


def _known_versions_text() -> str:
    """'1.33, 1.34 or 1.35': the catalog's versions, so the help never lags behind it."""
    known = load_catalog().known_versions
    return " or ".join(filter(None, (", ".join(known[:-1]), known[-1])))


@dataclass(frozen=True)
class OptionSpec:
    """One option: its flag, ini key, environment variable, default and help."""

    flag: str
    dest: str
    help: str
    env: str = ""
    default: Any = None
    kind: str = "string"  # string | bool | float | choice
    choices: tuple[str, ...] = ()
    metavar: str = ""


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("--context", "aic_context", "kubeconfig context to use (default: current context)",
               env="AIC_CONTEXT", metavar="NAME"),
    OptionSpec("--aic-version", "aic_version",
               f"checklist version: {_known_versions_text()} (default: from the server "
               "version, newest known if newer)", env="AIC_VERSION", metavar="X.Y"),
    OptionSpec("--accelerator", "aic_accelerator",
               "accelerator profile name (default: detected from the accelerator nodes' "
               "extended resources, DRA drivers or vendor labels; nvidia when none is found)",
               env="AIC_ACCELERATOR", metavar="PROFILE"),
    OptionSpec("--allocation-mode", "aic_allocation_mode",
               "how checks request accelerators (default: auto: DRA when the accelerator's "
               "DeviceClass exists, else the device plugin's extended resource)",
               env="AIC_ALLOCATION_MODE", default="auto", kind="choice",
               choices=ALLOCATION_CHOICES),
    OptionSpec("--aic-install", "aic_install",
               "install missing operators with helm (default: detect only)",
               env="AIC_INSTALL", default=False, kind="bool"),
    OptionSpec("--aic-charts", "aic_charts",
               "where --aic-install takes charts from: a directory holding CHART/ or "
               "CHART-VERSION.tgz per chart, or one Helm repository URL (oci://, https://) "
               "for every chart (default: each operator's upstream repository)",
               env="AIC_CHARTS", metavar="DIR|URL"),
    OptionSpec("--aic-helm", "aic_helm",
               "the helm CLI --aic-install runs (default: helm on PATH; on the lab, its own)",
               env="AIC_HELM", metavar="FILE"),
    OptionSpec("--aic-lab", "aic_lab",
               "run against the local lab (started for the session, or reused if running)",
               env="AIC_LAB", default=False, kind="bool"),
    OptionSpec("--aic-lab-shape", "aic_lab_shape",
               "the lab's shape: a named one (dra-only, tainted-gpus, mig, busy, amd) or a YAML "
               "file describing the lab's nodes", env="AIC_LAB_SHAPE", metavar="NAME|FILE"),
    OptionSpec("--aic-report-dir", "aic_report_dir", "where reports are written",
               env="AIC_REPORT_DIR", default="aic-report", metavar="DIR"),
    OptionSpec("--aic-submission", "aic_submission",
               "also write a CNCF submission directory (vX.Y/<product>/ with PRODUCT.yaml, "
               "per-requirement evidence pages and test artifacts) under DIR",
               env="AIC_SUBMISSION", metavar="DIR"),
    OptionSpec("--aic-keep-namespaces", "aic_keep_namespaces",
               "keep test namespaces: never, on-failure or always (default: never)",
               env="AIC_KEEP_NAMESPACES", default="never", kind="choice", choices=KEEP_CHOICES),
    OptionSpec("--aic-timeout-scale", "aic_timeout_scale", "multiply every wait by this factor",
               env="AIC_TIMEOUT_SCALE", default=1.0, kind="float", metavar="FACTOR"),
    OptionSpec("--aic-cleanup", "aic_cleanup",
               "delete every labelled leftover of earlier runs, then exit",
               default=False, kind="bool"),
    OptionSpec("--aic-platform", "aic_platform",
               "YAML file with PRODUCT.yaml metadata (platformName, vendorName, ...)",
               env="AIC_PLATFORM", metavar="FILE"),
    OptionSpec("--aic-platform-name", "aic_platform_name", "platform name for PRODUCT.yaml",
               env="AIC_PLATFORM_NAME", metavar="NAME"),
    OptionSpec("--aic-platform-version", "aic_platform_version",
               "platform version for PRODUCT.yaml", env="AIC_PLATFORM_VERSION", metavar="VER"),
    OptionSpec("--aic-vendor", "aic_vendor", "vendor name for PRODUCT.yaml",
               env="AIC_VENDOR", metavar="NAME"),
    OptionSpec("--aic-template", "aic_template",
               "official checklist template YAML; its descriptions go into PRODUCT.yaml",
               env="AIC_TEMPLATE", metavar="FILE"),
    OptionSpec("--aic-autoscaler", "aic_autoscaler",
               "the platform provides a cluster autoscaler even if none is detected",
               env="AIC_AUTOSCALER", default=False, kind="bool"),
    OptionSpec("--aic-prometheus", "aic_prometheus",
               "the platform's own Prometheus-compatible query API, queried instead of the "
               "one found from the Prometheus or VictoriaMetrics operator, and the only one "
               "for a managed Prometheus (GMP, Azure Monitor): a URL, or "
               "NAMESPACE/SERVICE:PORT[/PATH] through the API server's service proxy",
               env="AIC_PROMETHEUS", metavar="URL|NS/SVC:PORT"),
    OptionSpec("--aic-gateway-class", "aic_gateway_class",
               "the GatewayClass ai_inference uses (default: the first Accepted one by name)",
               env="AIC_GATEWAY_CLASS", metavar="NAME"),
)

KUBECONFIG_HELP = "kubeconfig file of the cluster under test (default: $KUBECONFIG, ~/.kube/config)"
IMAGES_ENV = "AIC_IMAGES"  # a YAML file of image overrides (mirrors)
LAB_CONTEXT = "aic-lab"


@dataclass(frozen=True)
class ClusterTarget:
    """Which cluster the run talks to: a kubeconfig file (None: kubectl's default) and context.

    The options give the first value; starting the lab, or the xdist controller handing its
    target to a worker, replaces it, so every process reads the target from here only.
    """

    kubeconfig: Path | None = None
    context: str | None = None

    @property
    def named(self) -> bool:
        """Whether the user named a cluster (so the session connects before collection)."""
        return self.kubeconfig is not None or self.context is not None

    def to_worker(self) -> dict[str, str]:
        return {"kubeconfig": str(self.kubeconfig or ""), "context": self.context or ""}

    @classmethod
    def from_worker(cls, data: dict[str, str]) -> ClusterTarget:
        return cls(Path(data["kubeconfig"]) if data.get("kubeconfig") else None,
                   data.get("context") or None)


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know from its options; built once per session."""

    target: ClusterTarget
    version: str | None  # None: derive from the server
    profile: AcceleratorProfile
    allocation_mode: str
    install: bool
    lab: bool
    lab_shape: str | None  # --aic-lab-shape NAME|FILE, resolved by the lab when it starts
    report_dir: Path
    submission: Path | None
    keep_namespaces: str
    timeout_scale: float
    cleanup: bool
    platform: PlatformMeta = field(default_factory=PlatformMeta)
    descriptions: dict[str, str] = field(default_factory=dict)  # from --aic-template
    template: Path | None = None
    images: dict[str, Image] = field(default_factory=dict)
    autoscaler: bool = False
    # How the profile was chosen ("--accelerator", "AIC_ACCELERATOR", "ini aic_accelerator",
    # "detected: ..."); empty until the session detects it from the cluster after discovery.
    profile_source: str = ""
    prometheus: QueryEndpoint | None = None  # --aic-prometheus
    gateway_class: str | None = None  # --aic-gateway-class
    charts: str | None = None  # --aic-charts (checked: a directory or a repository URL)
    helm: Path | None = None  # --aic-helm, or the lab's own helm

    @property
    def accelerator(self) -> str:
        """The accelerator profile's name (given to --accelerator, or detected)."""
        return self.profile.name

    def timeout(self, seconds: float) -> float:
        """A wait's deadline after --aic-timeout-scale."""
        return seconds * self.timeout_scale

    def image(self, key: str) -> str:
        """The pinned image reference for a key of images.yaml (after AIC_IMAGES overrides)."""
        return self.images[key].ref

    def to_worker(self) -> dict[str, Any]:
        """What the xdist controller learnt after the options (the lab's image table, helm and
        charts), for its workers, which read only the options themselves."""
        return {"images": {k: dataclasses.asdict(v) for k, v in self.images.items()},
                "helm": str(self.helm or ""), "charts": self.charts or ""}

    def with_worker(self, data: dict[str, Any]) -> Settings:
        """These settings with what the controller handed over (``to_worker``)."""
        return dataclasses.replace(
            self, images={k: Image(**v) for k, v in data["images"].items()},
            helm=Path(data["helm"]) if data.get("helm") else None,
            charts=data.get("charts") or None)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise pytest.UsageError(f"{name}: expected true or false, got {value!r}")


def _raw(config: pytest.Config, spec: OptionSpec) -> tuple[Any, str]:
    """The option's value from the command line, else environment, else ini, else default;
    with where it came from (the flag, the variable, `ini <key>`, or "" for the default)."""
    value = config.getoption(spec.dest, default=None)
    if value not in (None, False):
        return value, spec.flag
    if spec.env and os.environ.get(spec.env) is not None:
        return os.environ[spec.env], spec.env
    ini = config.getini(spec.dest)
    if ini not in (None, "", []):
        return ini, f"ini {spec.dest}"
    return spec.default, ""


def kubeconfig_from(config: pytest.Config, dest: str) -> Path | None:
    """--kubeconfig (whichever plugin registered it), else the ini key; else None."""
    value = config.getoption(dest, default=None) or config.getini("aic_kubeconfig")
    if value:
        return Path(os.path.expanduser(str(value)))
    return None


def resolve(config: pytest.Config, kubeconfig_dest: str,
            target: ClusterTarget | None = None) -> Settings:
    """Resolve and validate all options; raises pytest.UsageError with one line.

    `target` replaces the cluster the options name (an xdist worker gets its controller's).
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in OPTIONS:
        raw, sources[spec.dest] = _raw(config, spec)
        if spec.kind == "bool":
            raw = _to_bool(spec.flag, raw)
        elif spec.kind == "float":
            try:
                raw = float(raw)
            except (TypeError, ValueError):
                raise pytest.UsageError(f"{spec.flag}: expected a number, got {raw!r}") from None
            if raw <= 0:
                raise pytest.UsageError(f"{spec.flag}: must be positive, got {raw}")
        elif spec.kind == "choice" and raw not in spec.choices:
            raise pytest.UsageError(
                f"{spec.flag}: {raw!r} is not one of {', '.join(spec.choices)}"
            )
        values[spec.dest] = raw

    version = values["aic_version"]
    if version:
        try:
            version = normalize_version(str(version))
            load_catalog().requirements(version)
        except (ValueError, UnknownVersionError):
            known = ", ".join(load_catalog().known_versions)
            raise pytest.UsageError(
                f"--aic-version: unknown checklist version {values['aic_version']!r}; "
                f"known: {known}"
            ) from None

    # Not given: the first profile stands in until the session detects one after discovery.
    accelerator = str(values["aic_accelerator"] or "")
    profile, profile_source = default_profile(), ""
    if accelerator:
        try:
            profile = get_profile(accelerator)
        except ValueError as exc:
            raise pytest.UsageError(f"--accelerator: {str(exc).splitlines()[0]}") from None
        profile_source = sources["aic_accelerator"]

    charts, helm_cli = None, None
    try:
        if values["aic_charts"]:
            charts = check_charts_option(str(values["aic_charts"]))
        if values["aic_helm"]:
            helm_cli = Path(find_helm(Path(os.path.expanduser(str(values["aic_helm"])))))
        elif values["aic_install"] and not values["aic_lab"]:
            find_helm(None)  # The lab brings its own helm.
    except HelmError as exc:
        raise pytest.UsageError(str(exc)) from None

    def path_or_none(key: str, must_exist: bool = True) -> Path | None:
        raw = values[key]
        if not raw:
            return None
        path = Path(os.path.expanduser(str(raw)))
        if must_exist and not path.is_file():
            flag = next(s.flag for s in OPTIONS if s.dest == key)
            raise pytest.UsageError(f"{flag}: file not found: {path}")
        return path

    template = path_or_none("aic_template")
    if target is None:
        target = ClusterTarget(kubeconfig_from(config, kubeconfig_dest),
                               values["aic_context"] or None)
    return Settings(
        target=target,
        version=version or None,
        profile=profile,
        allocation_mode=str(values["aic_allocation_mode"]),
        install=values["aic_install"],
        charts=charts,
        helm=helm_cli,
        lab=values["aic_lab"],
        lab_shape=str(values["aic_lab_shape"]) if values["aic_lab_shape"] else None,
        report_dir=Path(os.path.expanduser(str(values["aic_report_dir"]))),
        submission=Path(os.path.expanduser(str(values["aic_submission"])))
        if values["aic_submission"] else None,
        keep_namespaces=str(values["aic_keep_namespaces"]),
        timeout_scale=values["aic_timeout_scale"],
        cleanup=values["aic_cleanup"],
        platform=_platform(path_or_none("aic_platform"), values),
        descriptions=_descriptions(template),
        template=template,
        images=_images(),
        autoscaler=values["aic_autoscaler"],
        profile_source=profile_source,
        prometheus=_prometheus(values["aic_prometheus"]),
        gateway_class=_gateway_class(values["aic_gateway_class"]),
    )


def _prometheus(raw: Any) -> QueryEndpoint | None:
    """--aic-prometheus, checked before any cluster I/O."""
    if not raw:
        return None
    try:
        return parse_prometheus_option(str(raw))
    except ValueError as exc:
        raise pytest.UsageError(f"--aic-prometheus: {exc}") from None


# A Kubernetes object name (DNS-1123 subdomain), as a GatewayClass name must be.
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _gateway_class(raw: Any) -> str | None:
    """--aic-gateway-class, checked to be an object name before any cluster I/O."""
    if not raw:
        return None
    name = str(raw).strip()
    if len(name) > 253 or not _OBJECT_NAME.match(name):
        raise pytest.UsageError(
            f"--aic-gateway-class: {name!r} is not a Kubernetes object name (lower case "
            "letters, digits, '-' and '.')")
    return name


def _platform(path: Path | None, values: dict[str, Any]) -> PlatformMeta:
    """PRODUCT.yaml metadata: the --aic-platform file, then the single-value options on top."""
    try:
        base = load_platform_meta(path) if path else PlatformMeta()
    except ValueError as exc:
        raise pytest.UsageError(f"--aic-platform: {exc}") from None
    return base.with_overrides(platformName=values["aic_platform_name"],
                               platformVersion=values["aic_platform_version"],
                               vendorName=values["aic_vendor"])


def _descriptions(template: Path | None) -> dict[str, str]:
    """Official requirement texts from --aic-template, read and checked before any cluster I/O."""
    if template is None:
        return {}
    try:
        return load_template_descriptions(template)
    except ValueError as exc:
        raise pytest.UsageError(f"--aic-template: {exc}") from None


def _images(lab_file: Path | None = None) -> dict[str, Image]:
    """The image table with the AIC_IMAGES override file applied, read once per run.

    ``lab_file``: the lab's overrides naming the images it built for its real node (nothing
    can be pulled there); applied first, so an explicit AIC_IMAGES still wins.
    """
    override = os.environ.get(IMAGES_ENV)
    try:
        images = load_images(lab_file)
        if override:
            images = apply_overrides(images, _override_data(Path(override)), source=override)
        return images
    except (ImageConfigError, UnknownImageError) as exc:
        raise pytest.UsageError(f"{IMAGES_ENV}: {str(exc).splitlines()[0]}") from None


def images_with_lab(lab_file: Path) -> dict[str, Image]:
    """The image table of a run on a lab whose real node runs locally built images."""
    return _images(lab_file)


def _override_data(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ImageConfigError(f"{path}: cannot read image override file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ImageConfigError(f"{path}: not valid YAML: {exc}") from exc
