"""gpu_sharing's decision logic: which nodes offer one accelerator to several pods, and how.

A node shares its devices by hardware partitions (NVIDIA MIG: the GPU Operator's `mixed`
strategy advertises one resource per MIG profile, its `single` strategy advertises MIG
devices as the plain resource; GKE labels the partition size) or by software time-sharing
(time-slicing or MPS: more units than physical devices, with the GPU Feature Discovery or
GKE labels saying so). Label names and values come from the profile (accelerators.yaml).

A label says what a node is configured for; only a schedulable resource with units behind
it is an offer. A label whose resource is missing, zero, or not more than the physical
devices is reported as a claim, never as an offer, so a check built on this can fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pytest_aiconformance.cluster.profiles import AcceleratorProfile

# The device plugin's renamed time-shared replicas (renameByDefault: <resource>.shared).
SHARED_SUFFIX = ".shared"
PARTITION = "partition"  # hardware partitions: each unit is its own device instance
TIME_SHARED = "time-shared"  # software sharing: units are turns on one device


@dataclass(frozen=True)
class SharingOffer:
    """One node's schedulable shared units of one resource, and what showed them."""

    node: str
    mechanism: str  # e.g. "MIG mixed strategy", "time-slicing", "GKE time-sharing"
    kind: str  # PARTITION or TIME_SHARED
    resource: str
    units: int  # allocatable units of the resource
    physical: int  # devices behind the units (physical GPUs, or partitions shared); 0 unknown
    per_device: int = 0  # units per device a label states (replicas, clients); 0 none
    signals: tuple[str, ...] = ()  # "label=value" and "resource=units" that showed it

    @property
    def consistent(self) -> bool:
        """Whether the units equal devices x units per device, where labels state both."""
        return not (self.physical and self.per_device) or \
            self.units == self.physical * self.per_device

    def describe(self) -> str:
        devices = (f"{self.physical} device(s)" if self.physical
                   else "a number of devices no label states")
        text = (f"{self.node}: {self.mechanism}: {self.units} x {self.resource} from {devices}"
                f" ({', '.join(self.signals)})")
        if not self.consistent:
            text += (f"; expected {self.physical} x {self.per_device} = "
                     f"{self.physical * self.per_device} units")
        return text


@dataclass(frozen=True)
class SharingClaim:
    """A label that claims a sharing mechanism which no schedulable resource backs."""

    node: str
    mechanism: str
    signals: tuple[str, ...]
    why: str  # why it is not an offer

    def describe(self) -> str:
        return f"{self.node}: {', '.join(self.signals)} claims {self.mechanism}, but {self.why}"


@dataclass(frozen=True)
class SharingSurvey:
    """Every offer and every unbacked claim found on the nodes, in node order."""

    offers: tuple[SharingOffer, ...]
    claims: tuple[SharingClaim, ...]

    def summary(self) -> str:
        """One line for a failure message: the claims, or that nothing was found."""
        if self.claims:
            return "; ".join(c.describe() for c in self.claims)
        return "no sharing label or shared resource found"


def _int(text: object) -> int:
    try:
        return max(int(str(text)), 0)
    except (TypeError, ValueError):
        return 0


def _label(labels: Mapping[str, str], key: str | None) -> str:
    return str(labels.get(key, "")) if key else ""


class _Node:
    """One node's labels and allocatable units of the profile's resources."""

    def __init__(self, node: Mapping[str, Any], profile: AcceleratorProfile,
                 extra: set[str]) -> None:
        meta = node.get("metadata") or {}
        self.name = str(meta.get("name", ""))
        self.labels: dict[str, str] = {str(k): str(v) for k, v in
                                       (meta.get("labels") or {}).items()}
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        self.units = {str(r): _int(v) for r, v in allocatable.items()
                      if profile.matches_resource(str(r)) or r in extra}
        self.offers: list[SharingOffer] = []
        self.claims: list[SharingClaim] = []

    def signal(self, key: str | None) -> str:
        return f"{key}={self.labels[key]}" if key and key in self.labels else ""

    def offer(self, mechanism: str, kind: str, resource: str, physical: int,
              per_device: int, signals: list[str]) -> None:
        units = self.units[resource]
        self.offers.append(SharingOffer(
            self.name, mechanism, kind, resource, units, physical, per_device,
            tuple(s for s in [*signals, f"{resource}={units}"] if s)))

    def claim(self, mechanism: str, signals: list[str], why: str) -> None:
        self.claims.append(SharingClaim(self.name, mechanism, tuple(s for s in signals if s),
                                        why))


def survey(nodes: Iterable[Mapping[str, Any]], profile: AcceleratorProfile) -> SharingSurvey:
    """Sharing offers and unbacked sharing claims on Node objects (as the API returns them)."""
    if profile.sharing is None:
        return SharingSurvey((), ())
    extra = {p.resource for p in profile.sharing.platforms}
    offers: list[SharingOffer] = []
    claims: list[SharingClaim] = []
    for raw in nodes:
        node = _Node(raw, profile, extra)
        _mig_mixed(node, profile)
        _mig_single(node, profile)
        _time_sharing(node, profile)
        _platforms(node, profile)
        offers += _merge(node.offers)
        claims += node.claims
    return SharingSurvey(tuple(offers), tuple(claims))


def _whole_resources(node: _Node, profile: AcceleratorProfile) -> list[str]:
    """The node's resources with units that are not per-profile partition resources."""
    assert profile.sharing is not None
    return [r for r, u in sorted(node.units.items())
            if u > 0 and not profile.sharing.is_partition_resource(r)]


def _whole_names(profile: AcceleratorProfile) -> str:
    """The resource names (and patterns) time-shared units may carry, for messages."""
    assert profile.sharing is not None
    names = [*profile.extended_resources,
             *(p for p in profile.extended_resource_patterns
               if not profile.sharing.is_partition_resource(p))]
    return " or ".join(names)


def _mig_disabled(node: _Node, profile: AcceleratorProfile) -> bool:
    """The node's GPUs cannot do MIG: a cluster-wide MIG strategy label there claims nothing."""
    return _label(node.labels, profile.node_labels.mig_capable) == "false"


def _mig_mixed(node: _Node, profile: AcceleratorProfile) -> None:
    """One resource per MIG profile (nvidia.com/mig-1g.10gb): each unit is a partition."""
    sharing, labels = profile.sharing, profile.node_labels
    assert sharing is not None
    strategy = _label(node.labels, labels.mig_strategy)
    mechanism = "MIG mixed strategy"
    parts = [r for r, u in sorted(node.units.items()) if u > 0
             and sharing.is_partition_resource(r)]
    physical = _int(node.labels.get(labels.count or ""))
    for resource in parts:
        node.offer(mechanism, PARTITION, resource, physical, 0,
                   [node.signal(labels.mig_strategy)])
    if not parts and strategy and strategy == sharing.mig_mixed_value \
            and not _mig_disabled(node, profile):
        node.claim(mechanism, [node.signal(labels.mig_strategy)],
                   f"no {' or '.join(sharing.partition_resources)} resource is allocatable")


def _mig_single(node: _Node, profile: AcceleratorProfile) -> None:
    """MIG devices advertised as the plain resource; the product label names the profile."""
    sharing, labels = profile.sharing, profile.node_labels
    assert sharing is not None
    if not sharing.mig_single_value or _mig_disabled(node, profile) or \
            _label(node.labels, labels.mig_strategy) != sharing.mig_single_value:
        return
    mechanism = "MIG single strategy"
    product = _label(node.labels, labels.product)
    signals = [node.signal(labels.mig_strategy), node.signal(labels.product)]
    plain = [r for r in profile.extended_resources if node.units.get(r, 0) > 0]
    if not sharing.mig_product_marker or sharing.mig_product_marker not in product:
        node.claim(mechanism, signals,
                   f"{labels.product}={product or '(unset)'} names no MIG profile "
                   f"({sharing.mig_product_marker}<profile>): the units are whole devices")
    elif not plain:
        node.claim(mechanism, signals,
                   f"no {' or '.join(profile.extended_resources)} is allocatable")
    else:
        # The count label counts MIG devices under this strategy, not physical GPUs.
        node.offer(mechanism, PARTITION, plain[0], 0, 0, signals)


def _time_sharing(node: _Node, profile: AcceleratorProfile) -> None:
    """Time-slicing or MPS by the vendor's device plugin: units beyond the physical count."""
    sharing, labels = profile.sharing, profile.node_labels
    assert sharing is not None
    strategy = _label(node.labels, labels.sharing_strategy)
    replicas = _int(node.labels.get(labels.replicas or ""))
    if strategy not in sharing.time_sharing_values and replicas <= 1:
        return
    mechanism = strategy if strategy in sharing.time_sharing_values else "time-slicing"
    signals = [node.signal(labels.sharing_strategy), node.signal(labels.replicas)]
    _shared_units(node, mechanism, signals, _whole_names(profile),
                  _whole_resources(node, profile),
                  _int(node.labels.get(labels.count or "")), labels.count, replicas)


def _shared_units(node: _Node, mechanism: str, signals: list[str], wanted: str,
                  resources: list[str], physical: int, count_label: str | None,
                  per_device: int) -> None:
    """An offer per resource with more units than physical devices, else one claim."""
    if not resources:
        node.claim(mechanism, signals, f"no {wanted} is allocatable")
        return
    advertised = ", ".join(f"{r}={node.units[r]}" for r in resources)
    counted = node.signal(count_label)
    if not physical:
        # The device plugin advertises devices x units per device: without a count label the
        # devices follow from a whole multiple (the identity probe still checks them).
        whole = [r for r in resources if per_device > 1 and node.units[r] % per_device == 0]
        if not whole:
            node.claim(mechanism, signals,
                       f"no {count_label or 'count'} label states the physical devices and "
                       f"{advertised} is no whole multiple of the units per device, so the "
                       "units cannot be shown to exceed the devices")
            return
        resources = whole
        physical = node.units[whole[0]] // per_device
        counted = f"{physical} device(s) = units / {per_device}"
    # Renamed replicas (the device plugin's `rename`, GPU Operator `renameByDefault`:
    # <resource>.shared) may cover a subset of the devices, the rest staying whole under the
    # plain name; the count label counts them all, so the devices behind the renamed
    # resource are its units / units per device.
    behind = {r: node.units[r] // per_device if _renamed_replicas(r, node.units[r], per_device,
                                                                   physical) else physical
              for r in resources}
    shared = [r for r in resources if node.units[r] > behind[r]]
    if not shared:
        node.claim(mechanism, [*signals, counted],
                   f"{advertised} is not more than the {physical} physical device(s)")
    for resource in shared:
        signal = counted if behind[resource] == physical else (
            f"{behind[resource]} of {counted} = units / {per_device}")
        node.offer(mechanism, TIME_SHARED, resource, behind[resource], per_device,
                   [*signals, signal])


def _renamed_replicas(resource: str, units: int, per_device: int, physical: int) -> bool:
    """Whether a resource holds renamed time-shared replicas of fewer devices than the node
    has: a `.shared` name with a whole multiple of the units per device, below all of them."""
    return resource.endswith(SHARED_SUFFIX) and per_device > 1 and units % per_device == 0 \
        and units // per_device < physical


def _platforms(node: _Node, profile: AcceleratorProfile) -> None:
    """A platform's own labels (GKE): MIG partition size, time-sharing or MPS clients."""
    assert profile.sharing is not None
    for plat in profile.sharing.platforms:
        units = node.units.get(plat.resource, 0)
        physical = _int(node.labels.get(plat.count or ""))
        size = _label(node.labels, plat.partition_size)
        if size:
            mechanism = f"{plat.name} MIG {size}"
            if units > 0:
                node.offer(mechanism, PARTITION, plat.resource, physical, 0,
                           [node.signal(plat.partition_size), node.signal(plat.count)])
            else:
                node.claim(mechanism, [node.signal(plat.partition_size)],
                           f"no {plat.resource} is allocatable")
        strategy = _label(node.labels, plat.strategy)
        clients = _int(node.labels.get(plat.clients or ""))
        if strategy in plat.time_sharing_values or clients > 1:
            value = strategy if strategy in plat.time_sharing_values else "time-sharing"
            _shared_units(node, f"{plat.name} {value}",
                          [node.signal(plat.strategy), node.signal(plat.clients)],
                          plat.resource, [plat.resource] if units > 0 else [], physical,
                          plat.count, clients)


def _merge(offers: list[SharingOffer]) -> list[SharingOffer]:
    """One offer per resource: time-sharing of partitions is time-sharing (the pods may see
    one partition), over as many devices as there are partitions; duplicates keep the first."""
    by_resource: dict[str, SharingOffer] = {}
    for offer in offers:
        seen = by_resource.get(offer.resource)
        if seen is None:
            by_resource[offer.resource] = offer
            continue
        if {seen.kind, offer.kind} == {PARTITION, TIME_SHARED}:
            part, shared = (seen, offer) if seen.kind == PARTITION else (offer, seen)
            devices = shared.units // shared.per_device if shared.per_device else \
                shared.physical
            by_resource[offer.resource] = replace(
                shared, mechanism=f"{shared.mechanism} of {part.mechanism} partitions",
                physical=devices, per_device=shared.per_device if devices else 0,
                signals=tuple(dict.fromkeys((*part.signals, *shared.signals))))
        else:
            by_resource[offer.resource] = replace(
                seen, signals=tuple(dict.fromkeys((*seen.signals, *offer.signals))))
    return list(by_resource.values())


def time_shared_reason(labels: Mapping[str, str], resources: Mapping[str, str],
                       profile: AcceleratorProfile, resource: str | None = None) -> str:
    """Why a node's devices may be seen by several pods at once (time-sharing labels or a
    renamed shared resource), or "": such a node cannot show distinct devices per pod.

    With ``resource`` (the one pods will request): where the node advertises that resource's
    renamed replicas (``<resource>.shared``), the sharing labels describe those replicas and
    ``resource`` itself holds whole devices (the device plugin renames the replicated
    devices and leaves the others under the plain name), so its devices are not shared."""
    names = profile.node_labels
    if resource and not resource.endswith(SHARED_SUFFIX) and \
            _int(resources.get(resource + SHARED_SUFFIX)) > 0 and _int(resources.get(resource)) > 0:
        return ""
    strategy = _label(labels, names.sharing_strategy)
    if strategy and strategy != "none":
        return f"{names.sharing_strategy}={strategy}"
    replicas = _label(labels, names.replicas)
    if _int(replicas) > 1:
        return f"{names.replicas}={replicas}"
    for plat in profile.sharing.platforms if profile.sharing else ():
        value = _label(labels, plat.strategy)
        if value:
            return f"{plat.strategy}={value}"
        clients = _label(labels, plat.clients)
        if _int(clients) > 1:
            return f"{plat.clients}={clients}"
    shared = sorted(r for r in resources if r.endswith(SHARED_SUFFIX))
    return f"advertises {shared[0]}" if shared else ""


def label_keys(profile: AcceleratorProfile) -> list[str]:
    """The node labels that name a sharing mechanism or the devices behind it."""
    names = profile.node_labels
    keys = [names.count, names.product, names.sharing_strategy, names.replicas,
            names.mig_strategy]
    for plat in profile.sharing.platforms if profile.sharing else ():
        keys += [plat.count, plat.strategy, plat.clients, plat.partition_size]
    return list(dict.fromkeys(k for k in keys if k))


def node_rows(nodes: Iterable[Mapping[str, Any]], profile: AcceleratorProfile,
              keys: list[str]) -> list[list[str]]:
    """NAME / ALLOCATABLE / <label>... rows of the nodes that show an accelerator resource or
    a sharing label: what the survey was decided from."""
    platforms = {p.resource for p in (profile.sharing.platforms if profile.sharing else ())}
    rows = []
    for node in nodes:
        labels = node["metadata"].get("labels") or {}
        allocatable = node.get("status", {}).get("allocatable") or {}
        resources = ",".join(f"{r}={v}" for r, v in sorted(allocatable.items())
                             if profile.matches_resource(r) or r in platforms)
        shown = [k for k in keys if k in labels]
        if resources or shown:
            rows.append([str(node["metadata"]["name"]), resources or "-",
                         *(str(labels.get(k, "")) for k in keys)])
    return rows


@dataclass(frozen=True)
class Oversubscription:
    """More one-unit pods than physical devices on one sharing node, and why that many."""

    offer: SharingOffer
    pods: int
    why: str  # what the node's devices are, for the evidence

    def shortfall(self) -> str:
        """Why the node cannot hold that many pods at once ("" when its units suffice)."""
        if self.offer.units >= self.pods:
            return ""
        return (f"{self.offer.node} advertises only {self.offer.units} {self.offer.resource} "
                f"({self.offer.mechanism})")


def oversubscription(offers: Sequence[SharingOffer]) -> Oversubscription:
    """Devices + 1 pods on the offer with the fewest stated devices; where no label states the
    devices (MIG single strategy: the units are partitions) two pods on the first offer."""
    counted = [o for o in offers if o.physical]
    if counted:
        target = min(counted, key=lambda o: (o.physical, o.node, o.resource))
        return Oversubscription(target, target.physical + 1,
                                f"which has {target.physical} device(s)")
    target = min(offers, key=lambda o: (o.node, o.resource))
    return Oversubscription(target, 2,
                            "whose physical devices no label states (each unit is a partition)")


def all_running(pods: Mapping[str, Mapping[str, Any]], want: int) -> bool:
    """Exactly ``want`` pods exist and every one is Running."""
    return len(pods) == want and all(o.get("status", {}).get("phase") == "Running"
                                     for o in pods.values())


def identity_target(offers: Sequence[SharingOffer], simulated: Iterable[str]) -> SharingOffer:
    """The offer whose pods report device identities: on a node that runs containers first
    (the identity is read inside the pods), then by node and resource."""
    skip = set(simulated)
    return min(offers, key=lambda o: (o.node in skip, o.node, o.resource))


def identity_pods(offer: SharingOffer) -> int:
    """How many identity probes share the offer: one more than its devices (at least two),
    no more than its units."""
    return min(offer.units, max(2, offer.physical + 1))


def identity_problem(offer: SharingOffer, seen: Mapping[str, list[str]],
                     profile: AcceleratorProfile) -> str:
    """What is wrong with the UUIDs the pods on ``offer`` saw ("" when nothing): each sees
    one; on partitions all differ (and look like partition UUIDs); time-shared pods see no
    more distinct UUIDs than there are devices."""
    for name, uuids in seen.items():
        if len(uuids) != 1:
            return f"{name} sees UUIDs {uuids}, expected exactly one"
    distinct = {u[0] for u in seen.values()}
    if offer.kind == PARTITION:
        if len(distinct) != len(seen):
            return f"pods on {offer.mechanism} share UUIDs: {seen}"
        prefix = profile.sharing.partition_uuid_prefix if profile.sharing else None
        if prefix and not all(u.startswith(prefix) for u in distinct):
            return f"not partition UUIDs ({prefix}...): {sorted(distinct)}"
    elif len(distinct) > offer.physical:
        return (f"{len(seen)} time-shared pods on {offer.physical} device(s) report "
                f"{len(distinct)} different UUIDs: {sorted(distinct)}")
    return ""
