"""Accelerator profiles (NVIDIA, AMD, Intel, the example DRA driver) loaded from one data file.

Checks stay vendor-neutral by asking a profile for resource names, device globs, labels, tools
and metric names; a new vendor is a YAML row, not a code change. `detect_profile` picks the
profile a cluster's nodes call for (extended resources, DRA drivers, vendor node labels), so
a run without --accelerator probes the hardware that is there.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

_PROFILE_KEYS = frozenset(
    {
        "display_name",
        "extended_resources",
        "extended_resource_patterns",
        "vendor_domains",
        "tolerations",
        "detection_labels",
        "dra",
        "device_files",
        "node_labels",
        "sharing",
        "runtime_class",
        "all_devices_env",
        "injected_env_prefix",
        "tool",
        "driver_version_file",
        "load",
        "metrics",
    }
)
_DRA_KEYS = frozenset({"drivers", "device_classes", "driver_version_attribute", "uuid_attribute"})
_DEVICE_KEYS = frozenset({"glob", "control"})
_LABEL_KEYS = frozenset(
    {
        "product",
        "count",
        "memory",
        "driver_version",
        "sharing_strategy",
        "replicas",
        "mig_strategy",
        "mig_capable",
    }
)
_TOOL_KEYS = frozenset(
    {"command", "list_args", "query_args", "version_args", "uuid_regex", "image"}
)
_SHARING_KEYS = frozenset(
    {
        "time_sharing_values",
        "mig_single_value",
        "mig_mixed_value",
        "mig_product_marker",
        "partition_resources",
        "partition_uuid_prefix",
        "platforms",
    }
)
_PLATFORM_SHARING_KEYS = frozenset(
    {"name", "resource", "count", "strategy", "time_sharing_values", "clients", "partition_size"}
)
_LOAD_KEYS = frozenset({"image", "command"})
_ENV_KEYS = frozenset({"name", "value"})
_METRIC_KEYS = frozenset(
    {
        "exporter",
        "utilization",
        "ratio_metrics",
        "instance_label",
        "memory_used",
        "memory_free",
        "memory_total",
        "temperature",
        "power",
        "interconnect",
        "device_labels",
        "host_label",
        "model_label",
        "driver_version_label",
    }
)
_ENV_PREFIX_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ProfileDataError(ValueError):
    """The profile data file is malformed (a typo there must not silently disable a check)."""


class UnknownAcceleratorError(ValueError):
    """An accelerator name that no profile defines."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown accelerator profile {name!r}; known: {', '.join(known)}")
        self.name = name
        self.known = tuple(known)


@dataclass(frozen=True)
class DraInfo:
    """How the vendor's DRA driver publishes devices (empty tuples when it has none)."""

    drivers: tuple[str, ...]
    device_classes: tuple[str, ...]
    driver_version_attribute: str | None
    uuid_attribute: str | None


@dataclass(frozen=True)
class DeviceFiles:
    """Which device nodes count as devices, and which are control nodes never to be counted."""

    glob: str | None
    control: tuple[str, ...]


@dataclass(frozen=True)
class NodeLabels:
    """Node label keys set by the vendor's discovery component; None where it sets none."""

    product: str | None
    count: str | None
    memory: str | None
    driver_version: str | None
    sharing_strategy: str | None
    replicas: str | None
    mig_strategy: str | None
    mig_capable: str | None


@dataclass(frozen=True)
class PlatformSharing:
    """A platform's own labels on nodes whose shared devices its device plugin advertises
    (GKE: strategy, clients per GPU, MIG partition size); None where it sets no such label."""

    name: str
    resource: str
    count: str | None  # physical devices on the node
    strategy: str | None
    time_sharing_values: tuple[str, ...]  # strategy values meaning time-shared units
    clients: str | None  # units per physical device under time-sharing
    partition_size: str | None  # MIG partition profile: every unit is a partition


@dataclass(frozen=True)
class SharingLabels:
    """How the vendor's nodes advertise one device shared by several pods (gpu_sharing).

    The label keys of the vendor's own discovery (sharing strategy, replicas, MIG strategy,
    product, count) are in NodeLabels; this holds the values and names that tell the
    mechanisms apart, and the platforms that label shared nodes themselves.
    """

    time_sharing_values: tuple[str, ...]  # sharing-strategy values meaning time-shared units
    mig_single_value: str | None  # MIG strategy whose plain resource units are partitions
    mig_mixed_value: str | None  # MIG strategy with one resource per partition profile
    mig_product_marker: str | None  # in the product label under the single strategy
    partition_resources: tuple[str, ...]  # fnmatch patterns of per-profile resources
    partition_uuid_prefix: str | None  # how the tool names a partition (MIG-<uuid>)
    platforms: tuple[PlatformSharing, ...]

    def is_partition_resource(self, resource: str) -> bool:
        return any(fnmatch.fnmatchcase(resource, p) for p in self.partition_resources)


@dataclass(frozen=True)
class Toleration:
    """A taint the vendor's accelerator nodes usually carry, tolerated by the checks' pods."""

    key: str
    operator: str
    effect: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "operator": self.operator, "effect": self.effect}


@dataclass(frozen=True)
class OtherAccelerator:
    """An accelerator recognised on nodes that has no profile (no probes, no metrics)."""

    name: str
    extended_resources: tuple[str, ...]
    vendor_domains: tuple[str, ...]


@dataclass(frozen=True)
class EnvVar:
    """One environment variable (name and value)."""

    name: str
    value: str


@dataclass(frozen=True)
class DeviceTool:
    """The in-container tool that lists devices, and how to pick UUIDs out of its output."""

    command: str
    list_args: tuple[str, ...]
    query_args: tuple[str, ...]
    version_args: tuple[str, ...]
    uuid_regex: str
    # images.yaml key of an image the tool can run in (an injected glibc binary needs glibc)
    image: str = "probe"


@dataclass(frozen=True)
class LoadSpec:
    """A short accelerator load: the images.yaml key of its image and the command to repeat."""

    image: str
    command: str


@dataclass(frozen=True)
class MetricNames:
    """Exporter metric names per quantity (first name preferred) and the labels they carry.

    ``ratio_metrics`` are exported as 0-1 ratios (utilisation is compared in percent);
    ``instance_label`` names a partition of a device (a MIG GPU instance), each its own device.
    """

    exporter: str
    utilization: tuple[str, ...]
    memory_used: tuple[str, ...]
    memory_free: tuple[str, ...]
    memory_total: tuple[str, ...]
    temperature: tuple[str, ...]
    power: tuple[str, ...]
    interconnect: tuple[str, ...]
    device_labels: tuple[str, ...]
    host_label: str | None
    model_label: str | None
    driver_version_label: str | None
    ratio_metrics: tuple[str, ...] = ()
    instance_label: str | None = None


@dataclass(frozen=True)
class AcceleratorProfile:
    """Everything vendor-specific one accelerator family needs, as immutable data."""

    name: str
    display_name: str
    extended_resources: tuple[str, ...]
    extended_resource_patterns: tuple[str, ...]
    vendor_domains: tuple[str, ...]
    tolerations: tuple[Toleration, ...]
    dra: DraInfo
    device_files: DeviceFiles
    node_labels: NodeLabels
    runtime_class: str | None
    all_devices_env: EnvVar | None
    injected_env_prefix: str | None
    tool: DeviceTool | None
    driver_version_file: str | None
    metrics: MetricNames | None
    detection_labels: tuple[str, ...] = ()
    load: LoadSpec | None = None
    sharing: SharingLabels | None = None

    def matches_resource(self, resource: str) -> bool:
        """Whether an extended resource name (e.g. nvidia.com/mig-1g.10gb) belongs here."""
        if resource in self.extended_resources:
            return True
        return any(fnmatch.fnmatchcase(resource, p) for p in self.extended_resource_patterns)

    def detection_label(self, labels: Mapping[str, str]) -> str | None:
        """The first detection label (`key` or `key=value`) these node labels carry, or None."""
        for wanted in self.detection_labels:
            key, sep, value = wanted.partition("=")
            if key in labels and (not sep or labels[key] == value):
                return wanted
        return None

    def is_device_file(self, path: str) -> bool:
        """Whether a path counts as one device (matches the glob and is no control node)."""
        if self.device_files.glob is None:
            return False
        if any(fnmatch.fnmatchcase(path, c) for c in self.device_files.control):
            return False
        return fnmatch.fnmatchcase(path, self.device_files.glob)

    def probe_env(self) -> dict[str, str]:
        """Environment for the probe scripts (data/probes/*.sh): they stay vendor-neutral."""
        env: dict[str, str] = {}
        if self.device_files.glob is not None:
            env["DEVICE_GLOB"] = self.device_files.glob
        if self.device_files.control:
            env["IGNORE_GLOB"] = " ".join(self.device_files.control)
        if self.tool is not None:
            env["TOOL"] = self.tool.command
            env["TOOL_LIST_ARGS"] = " ".join(self.tool.list_args)
            env["TOOL_VERSION_ARGS"] = " ".join(self.tool.version_args)
            env["UUID_REGEX"] = self.tool.uuid_regex
        if self.driver_version_file is not None:
            env["VERSION_FILE"] = self.driver_version_file
        if self.injected_env_prefix is not None:
            env["ENV_PREFIX"] = self.injected_env_prefix
        return env


def _check_keys(where: str, data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(data) - allowed)
    missing = sorted(allowed - set(data))
    if unknown:
        raise ProfileDataError(f"accelerators.yaml: {where}: unknown keys {', '.join(unknown)}")
    if missing:
        raise ProfileDataError(f"accelerators.yaml: {where}: missing keys {', '.join(missing)}")


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProfileDataError(f"accelerators.yaml: {where}: expected a mapping")
    return value


def _str(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ProfileDataError(f"accelerators.yaml: {where}: expected a non-empty string")
    return value


def _opt_str(where: str, value: Any) -> str | None:
    return None if value is None else _str(where, value)


def _strs(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ProfileDataError(f"accelerators.yaml: {where}: expected a list")
    return tuple(_str(f"{where}[{i}]", v) for i, v in enumerate(value))


def _parse_profile(name: str, raw: Any) -> AcceleratorProfile:
    data = _mapping(name, raw)
    _check_keys(name, data, _PROFILE_KEYS)

    dra = _mapping(f"{name}.dra", data["dra"])
    _check_keys(f"{name}.dra", dra, _DRA_KEYS)
    devs = _mapping(f"{name}.device_files", data["device_files"])
    _check_keys(f"{name}.device_files", devs, _DEVICE_KEYS)
    labels = _mapping(f"{name}.node_labels", data["node_labels"])
    _check_keys(f"{name}.node_labels", labels, _LABEL_KEYS)

    env: EnvVar | None = None
    if data["all_devices_env"] is not None:
        raw_env = _mapping(f"{name}.all_devices_env", data["all_devices_env"])
        _check_keys(f"{name}.all_devices_env", raw_env, _ENV_KEYS)
        env = EnvVar(
            _str(f"{name}.all_devices_env.name", raw_env["name"]),
            _str(f"{name}.all_devices_env.value", raw_env["value"]),
        )

    tool: DeviceTool | None = None
    if data["tool"] is not None:
        raw_tool = _mapping(f"{name}.tool", data["tool"])
        _check_keys(f"{name}.tool", raw_tool, _TOOL_KEYS)
        regex = _str(f"{name}.tool.uuid_regex", raw_tool["uuid_regex"])
        try:
            re.compile(regex)
        except re.error as exc:
            raise ProfileDataError(f"accelerators.yaml: {name}.tool.uuid_regex: {exc}") from exc
        tool = DeviceTool(
            command=_str(f"{name}.tool.command", raw_tool["command"]),
            list_args=_strs(f"{name}.tool.list_args", raw_tool["list_args"]),
            query_args=_strs(f"{name}.tool.query_args", raw_tool["query_args"]),
            version_args=_strs(f"{name}.tool.version_args", raw_tool["version_args"]),
            uuid_regex=regex,
            image=_str(f"{name}.tool.image", raw_tool["image"]),
        )

    metrics: MetricNames | None = None
    if data["metrics"] is not None:
        m = _mapping(f"{name}.metrics", data["metrics"])
        _check_keys(f"{name}.metrics", m, _METRIC_KEYS)
        where = f"{name}.metrics"
        metrics = MetricNames(
            exporter=_str(f"{where}.exporter", m["exporter"]),
            utilization=_strs(f"{where}.utilization", m["utilization"]),
            memory_used=_strs(f"{where}.memory_used", m["memory_used"]),
            memory_free=_strs(f"{where}.memory_free", m["memory_free"]),
            memory_total=_strs(f"{where}.memory_total", m["memory_total"]),
            temperature=_strs(f"{where}.temperature", m["temperature"]),
            power=_strs(f"{where}.power", m["power"]),
            interconnect=_strs(f"{where}.interconnect", m["interconnect"]),
            device_labels=_strs(f"{where}.device_labels", m["device_labels"]),
            host_label=_opt_str(f"{where}.host_label", m["host_label"]),
            model_label=_opt_str(f"{where}.model_label", m["model_label"]),
            driver_version_label=_opt_str(
                f"{where}.driver_version_label", m["driver_version_label"]
            ),
            ratio_metrics=_strs(f"{where}.ratio_metrics", m["ratio_metrics"]),
            instance_label=_opt_str(f"{where}.instance_label", m["instance_label"]),
        )

    load: LoadSpec | None = None
    if data["load"] is not None:
        raw_load = _mapping(f"{name}.load", data["load"])
        _check_keys(f"{name}.load", raw_load, _LOAD_KEYS)
        load = LoadSpec(_str(f"{name}.load.image", raw_load["image"]),
                        _str(f"{name}.load.command", raw_load["command"]))

    sharing = None if data["sharing"] is None else _sharing(f"{name}.sharing", data["sharing"])

    prefix = _opt_str(f"{name}.injected_env_prefix", data["injected_env_prefix"])
    if prefix is not None and not _ENV_PREFIX_RE.match(prefix):
        raise ProfileDataError(
            f"accelerators.yaml: {name}.injected_env_prefix: not an env var prefix: {prefix!r}"
        )

    return AcceleratorProfile(
        name=name,
        display_name=_str(f"{name}.display_name", data["display_name"]),
        extended_resources=_strs(f"{name}.extended_resources", data["extended_resources"]),
        extended_resource_patterns=_strs(
            f"{name}.extended_resource_patterns", data["extended_resource_patterns"]
        ),
        vendor_domains=_strs(f"{name}.vendor_domains", data["vendor_domains"]),
        tolerations=tuple(_toleration(f"{name}.tolerations", t) for t in
                          data["tolerations"] or []),
        dra=DraInfo(
            drivers=_strs(f"{name}.dra.drivers", dra["drivers"]),
            device_classes=_strs(f"{name}.dra.device_classes", dra["device_classes"]),
            driver_version_attribute=_opt_str(
                f"{name}.dra.driver_version_attribute", dra["driver_version_attribute"]
            ),
            uuid_attribute=_opt_str(f"{name}.dra.uuid_attribute", dra["uuid_attribute"]),
        ),
        device_files=DeviceFiles(
            glob=_opt_str(f"{name}.device_files.glob", devs["glob"]),
            control=_strs(f"{name}.device_files.control", devs["control"]),
        ),
        node_labels=NodeLabels(
            **{k: _opt_str(f"{name}.node_labels.{k}", labels[k]) for k in sorted(_LABEL_KEYS)}
        ),
        runtime_class=_opt_str(f"{name}.runtime_class", data["runtime_class"]),
        all_devices_env=env,
        injected_env_prefix=prefix,
        tool=tool,
        driver_version_file=_opt_str(f"{name}.driver_version_file", data["driver_version_file"]),
        metrics=metrics,
        detection_labels=_strs(f"{name}.detection_labels", data["detection_labels"]),
        load=load,
        sharing=sharing,
    )


def _sharing(where: str, raw: Any) -> SharingLabels:
    data = _mapping(where, raw)
    _check_keys(where, data, _SHARING_KEYS)
    platforms = []
    raw_platforms = data["platforms"]
    if not isinstance(raw_platforms, list):
        raise ProfileDataError(f"accelerators.yaml: {where}.platforms: expected a list")
    for i, item in enumerate(raw_platforms):
        at = f"{where}.platforms[{i}]"
        plat = _mapping(at, item)
        _check_keys(at, plat, _PLATFORM_SHARING_KEYS)
        platforms.append(PlatformSharing(
            name=_str(f"{at}.name", plat["name"]),
            resource=_str(f"{at}.resource", plat["resource"]),
            count=_opt_str(f"{at}.count", plat["count"]),
            strategy=_opt_str(f"{at}.strategy", plat["strategy"]),
            time_sharing_values=_strs(f"{at}.time_sharing_values", plat["time_sharing_values"]),
            clients=_opt_str(f"{at}.clients", plat["clients"]),
            partition_size=_opt_str(f"{at}.partition_size", plat["partition_size"]),
        ))
    return SharingLabels(
        time_sharing_values=_strs(f"{where}.time_sharing_values", data["time_sharing_values"]),
        mig_single_value=_opt_str(f"{where}.mig_single_value", data["mig_single_value"]),
        mig_mixed_value=_opt_str(f"{where}.mig_mixed_value", data["mig_mixed_value"]),
        mig_product_marker=_opt_str(f"{where}.mig_product_marker", data["mig_product_marker"]),
        partition_resources=_strs(f"{where}.partition_resources", data["partition_resources"]),
        partition_uuid_prefix=_opt_str(f"{where}.partition_uuid_prefix",
                                       data["partition_uuid_prefix"]),
        platforms=tuple(platforms),
    )


def _toleration(where: str, raw: Any) -> Toleration:
    data = _mapping(where, raw)
    _check_keys(where, data, frozenset({"key", "operator", "effect"}))
    return Toleration(_str(f"{where}.key", data["key"]), _str(f"{where}.operator",
                      data["operator"]), _str(f"{where}.effect", data["effect"]))


def _parse_other(name: str, raw: Any) -> OtherAccelerator:
    data = _mapping(f"other_accelerators.{name}", raw)
    _check_keys(f"other_accelerators.{name}", data,
                frozenset({"extended_resources", "vendor_domains"}))
    return OtherAccelerator(name, _strs(f"{name}.extended_resources", data["extended_resources"]),
                            _strs(f"{name}.vendor_domains", data["vendor_domains"]))


def parse_profiles(data: Any) -> tuple[AcceleratorProfile, ...]:
    """Validate the parsed YAML document and build profiles in file order."""
    return _parse_table(data)[0]


def _parse_table(data: Any) -> tuple[tuple[AcceleratorProfile, ...], tuple[OtherAccelerator, ...]]:
    top = _mapping("top level", data)
    _check_keys("top level", top, frozenset({"profiles", "other_accelerators"}))
    profiles = _mapping("profiles", top["profiles"])
    if not profiles:
        raise ProfileDataError("accelerators.yaml: profiles: empty")
    others = _mapping("other_accelerators", top.get("other_accelerators") or {})
    return (tuple(_parse_profile(str(name), raw) for name, raw in profiles.items()),
            tuple(_parse_other(str(name), raw) for name, raw in others.items()))


@cache
def _packaged_table() -> tuple[tuple[AcceleratorProfile, ...], tuple[OtherAccelerator, ...]]:
    # Immutable packaged data, read once per process like the catalog.
    text = resources.files("pytest_aiconformance").joinpath("data/accelerators.yaml").read_text()
    return _parse_table(yaml.safe_load(text))


def _packaged_profiles() -> tuple[AcceleratorProfile, ...]:
    return _packaged_table()[0]


def is_accelerator_resource(resource: str) -> bool:
    """Whether an extended resource is an accelerator of any vendor the table knows."""
    if profile_for_resource(resource) is not None:
        return True
    return any(fnmatch.fnmatchcase(resource, pattern) for other in _packaged_table()[1]
               for pattern in other.extended_resources)


def vendor_domains() -> tuple[str, ...]:
    """Every accelerator vendor's resource domain (e.g. `nvidia.com`), profiles' and others'."""
    profiles, others = _packaged_table()
    return (*(d for p in profiles for d in p.vendor_domains),
            *(d for o in others for d in o.vendor_domains))


def accelerator_tolerations() -> list[dict[str, str]]:
    """The taints of every vendor's accelerator nodes, as pod tolerations."""
    seen = dict.fromkeys(t for p in _packaged_profiles() for t in p.tolerations)
    return [t.to_dict() for t in seen]


def load_profiles() -> dict[str, AcceleratorProfile]:
    """All packaged profiles by name, in file order (nvidia first)."""
    return {p.name: p for p in _packaged_profiles()}


def get_profile(name: str) -> AcceleratorProfile:
    """The profile called ``name``; UnknownAcceleratorError (a ValueError) names the known ones."""
    profiles = load_profiles()
    if name not in profiles:
        raise UnknownAcceleratorError(name, list(profiles))
    return profiles[name]


def profile_for_resource(resource: str) -> AcceleratorProfile | None:
    """The profile owning an extended resource name, or None (an unknown vendor)."""
    for profile in _packaged_profiles():
        if profile.matches_resource(resource):
            return profile
    return None


def profile_for_dra_driver(driver: str) -> AcceleratorProfile | None:
    """The profile whose DRA driver publishes ``driver`` devices, or None (an unknown vendor)."""
    for profile in _packaged_profiles():
        if driver in profile.dra.drivers:
            return profile
    return None


def default_profile() -> AcceleratorProfile:
    """The first profile of the table (nvidia): used when nothing on the cluster names one."""
    return _packaged_profiles()[0]


# --- which profile a cluster calls for ---------------------------------------------------


@dataclass(frozen=True)
class NodeEvidence:
    """What one node shows of its accelerators: extended resources (name -> allocatable),
    DRA devices per driver from ResourceSlices naming it, and its labels."""

    name: str
    resources: Mapping[str, str] = field(default_factory=dict)
    dra_devices: Mapping[str, int] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VendorFinding:
    """One profile's devices on the cluster and the signals that showed them."""

    profile: AcceleratorProfile
    devices: int
    nodes: tuple[str, ...]
    signals: tuple[str, ...]

    def describe(self) -> str:
        count = len(self.nodes)
        where = f" on {count} node{'' if count == 1 else 's'}" if count else ""
        return (f"{self.profile.name} {self.devices} device{'' if self.devices == 1 else 's'}"
                f"{where} via {', '.join(self.signals)}")


@dataclass(frozen=True)
class ProfileDetection:
    """Every vendor found, most devices first (ties in the table's order)."""

    findings: tuple[VendorFinding, ...]

    @property
    def chosen(self) -> AcceleratorProfile | None:
        return self.findings[0].profile if self.findings else None

    def source(self) -> str:
        """How the profile was chosen, for the report header."""
        if not self.findings:
            return ("default: no accelerator of a known vendor found in extended resources, "
                    "DRA drivers or node labels; choose one with --accelerator")
        if len(self.findings) == 1:
            return f"detected: {self.findings[0].describe()}"
        return (f"detected: most devices among {len(self.findings)} vendors: "
                + "; ".join(f.describe() for f in self.findings)
                + "; choose another with --accelerator")


def _count(text: str | None) -> int:
    try:
        return max(int(str(text)), 0)
    except (TypeError, ValueError):
        return 0


def _node_vendors(node: NodeEvidence) -> dict[str, tuple[int, list[str]]]:
    """Profile name -> (devices, signals) on one node, from its strongest signal.

    Extended resources decide where there are any (the device plugin counts the devices);
    else DRA devices; else vendor labels (count label, else one device). A node's simulated
    or secondary DRA driver does not outvote the devices its device plugin advertises.
    """
    found: dict[str, tuple[int, list[str]]] = {}

    def add(profile: AcceleratorProfile, devices: int, signal: str) -> None:
        before, signals = found.get(profile.name, (0, []))
        found[profile.name] = (before + devices, [*signals, signal])

    for resource, quantity in sorted(node.resources.items()):
        resource_profile = profile_for_resource(resource)
        if resource_profile is not None:
            add(resource_profile, _count(quantity), resource)
    if found:
        return found
    for driver, devices in sorted(node.dra_devices.items()):
        driver_profile = profile_for_dra_driver(driver)
        if driver_profile is not None and devices > 0:
            add(driver_profile, devices, f"DRA driver {driver}")
    if found:
        return found
    for profile in _packaged_profiles():
        label = profile.detection_label(node.labels)
        if label is not None:
            count_label = profile.node_labels.count
            count = _count(node.labels.get(count_label)) if count_label else 0
            add(profile, count or 1, f"node label {label}")
    return found


def detect_profile(nodes: Iterable[NodeEvidence],
                   unplaced_dra: Mapping[str, int] | None = None) -> ProfileDetection:
    """The profiles the cluster's accelerators call for, most devices first.

    ``unplaced_dra`` counts DRA devices per driver in ResourceSlices that name no node
    (network-attached devices): they count for their driver's profile.
    """
    devices: dict[str, int] = {}
    where: dict[str, list[str]] = {}
    signals: dict[str, dict[str, None]] = {}
    for node in nodes:
        for name, (count, node_signals) in _node_vendors(node).items():
            devices[name] = devices.get(name, 0) + count
            where.setdefault(name, []).append(node.name)
            signals.setdefault(name, {}).update(dict.fromkeys(node_signals))
    for driver, count in sorted((unplaced_dra or {}).items()):
        driver_profile = profile_for_dra_driver(driver)
        if driver_profile is not None and count > 0:
            devices[driver_profile.name] = devices.get(driver_profile.name, 0) + count
            where.setdefault(driver_profile.name, [])
            signals.setdefault(driver_profile.name, {})[f"DRA driver {driver}"] = None
    order = {p.name: i for i, p in enumerate(_packaged_profiles())}
    ranked = sorted(devices, key=lambda name: (-devices[name], order[name]))
    profiles = load_profiles()
    return ProfileDetection(tuple(
        VendorFinding(profiles[name], devices[name], tuple(where[name]),
                      tuple(signals[name])) for name in ranked))
