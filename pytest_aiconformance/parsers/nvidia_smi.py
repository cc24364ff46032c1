"""nvidia-smi output: ``-q -x`` XML (driver, GPUs, MIG) and ``-L`` listings (GPU and MIG UUIDs).

Isolation and sharing checks compare UUIDs seen in different pods, and the driver check compares
the version seen inside a container with what the platform advertises, so both outputs are
parsed strictly: anything unrecognised is an error, never an empty result.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .errors import ParseError

_XML = "nvidia-smi -q -x"
_LIST = "nvidia-smi -L"


@dataclass(frozen=True)
class MigDevice:
    """One MIG instance of a GPU. The XML of the drivers we have seen carries no MIG UUID;
    take those from ``-L`` (``uuid`` is None then)."""

    index: int
    gpu_instance_id: int | None
    compute_instance_id: int | None
    uuid: str | None
    memory_total_mib: int | None
    memory_used_mib: int | None


@dataclass(frozen=True)
class NvidiaGpu:
    """One physical GPU as ``nvidia-smi -q -x`` reports it (None where it prints N/A)."""

    index: int
    pci_bus_id: str | None
    uuid: str
    product_name: str
    minor_number: int | None
    mig_mode: str | None
    mig_devices: tuple[MigDevice, ...]
    utilization_gpu_percent: float | None
    utilization_memory_percent: float | None
    memory_total_mib: int | None
    memory_used_mib: int | None
    memory_free_mib: int | None

    @property
    def mig_enabled(self) -> bool:
        return self.mig_mode == "Enabled"


@dataclass(frozen=True)
class NvidiaSmiReport:
    """The whole ``nvidia-smi -q -x`` document."""

    driver_version: str
    cuda_version: str | None
    gpus: tuple[NvidiaGpu, ...]

    @property
    def uuids(self) -> tuple[str, ...]:
        return tuple(g.uuid for g in self.gpus)


def _text(elem: ET.Element | None) -> str | None:
    """Element text, stripped; None when absent, empty or N/A."""
    if elem is None or elem.text is None:
        return None
    value = elem.text.strip()
    if not value or value in ("N/A", "None", "[N/A]", "Not Supported", "[Not Supported]"):
        return None
    return value


def _number(elem: ET.Element | None, unit: str, where: str) -> float | None:
    value = _text(elem)
    if value is None:
        return None
    if unit and value.endswith(unit):
        value = value[: -len(unit)].strip()
    try:
        return float(value)
    except ValueError:
        raise ParseError(f"{where}: not a number: {value!r}", source=_XML) from None


def _int(elem: ET.Element | None, unit: str, where: str) -> int | None:
    value = _number(elem, unit, where)
    return None if value is None else int(value)


def _parse_mig(elem: ET.Element, where: str) -> MigDevice:
    index = _int(elem.find("index"), "", f"{where} index")
    if index is None:
        raise ParseError(f"{where}: MIG device without an index", source=_XML)
    uuid = _text(elem.find("uuid"))
    return MigDevice(
        index=index,
        gpu_instance_id=_int(elem.find("gpu_instance_id"), "", f"{where} gpu_instance_id"),
        compute_instance_id=_int(
            elem.find("compute_instance_id"), "", f"{where} compute_instance_id"
        ),
        uuid=uuid,
        memory_total_mib=_int(elem.find("fb_memory_usage/total"), "MiB", f"{where} fb total"),
        memory_used_mib=_int(elem.find("fb_memory_usage/used"), "MiB", f"{where} fb used"),
    )


def _parse_gpu(position: int, elem: ET.Element) -> NvidiaGpu:
    where = f"gpu {position}"
    uuid = _text(elem.find("uuid"))
    if uuid is None:
        raise ParseError(f"{where}: no <uuid>", source=_XML)
    product = _text(elem.find("product_name"))
    if product is None:
        raise ParseError(f"{where}: no <product_name>", source=_XML)
    mig_elems = elem.findall("mig_devices/mig_device")
    migs = tuple(_parse_mig(m, f"{where} mig {i}") for i, m in enumerate(mig_elems))
    return NvidiaGpu(
        index=position,
        pci_bus_id=elem.get("id") or _text(elem.find("pci/pci_bus_id")),
        uuid=uuid,
        product_name=product,
        minor_number=_int(elem.find("minor_number"), "", f"{where} minor_number"),
        mig_mode=_text(elem.find("mig_mode/current_mig")),
        mig_devices=migs,
        utilization_gpu_percent=_number(elem.find("utilization/gpu_util"), "%", f"{where} util"),
        utilization_memory_percent=_number(
            elem.find("utilization/memory_util"), "%", f"{where} memory util"
        ),
        memory_total_mib=_int(elem.find("fb_memory_usage/total"), "MiB", f"{where} fb total"),
        memory_used_mib=_int(elem.find("fb_memory_usage/used"), "MiB", f"{where} fb used"),
        memory_free_mib=_int(elem.find("fb_memory_usage/free"), "MiB", f"{where} fb free"),
    )


def parse_nvidia_smi_xml(text: str) -> NvidiaSmiReport:
    """Parse ``nvidia-smi -q -x``. GPUs keep document order (= nvidia-smi's index order).

    Entity declarations are refused outright: the document is produced inside a workload
    container, so it is untrusted input.
    """
    if "<!ENTITY" in text:
        raise ParseError("entity declarations are not allowed", source=_XML)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise ParseError(f"malformed XML: {exc}", line, _XML) from None
    if root.tag != "nvidia_smi_log":
        raise ParseError(f"root element is <{root.tag}>, not <nvidia_smi_log>", source=_XML)
    driver = _text(root.find("driver_version"))
    if driver is None:
        raise ParseError("no <driver_version>", source=_XML)
    gpus = tuple(_parse_gpu(i, g) for i, g in enumerate(root.findall("gpu")))
    attached = _int(root.find("attached_gpus"), "", "attached_gpus")
    if attached is not None and attached != len(gpus):
        raise ParseError(f"attached_gpus says {attached} but {len(gpus)} <gpu> found", source=_XML)
    return NvidiaSmiReport(
        driver_version=driver, cuda_version=_text(root.find("cuda_version")), gpus=gpus
    )


@dataclass(frozen=True)
class ListedMig:
    """A MIG line of ``nvidia-smi -L``."""

    profile: str
    device_index: int
    uuid: str


@dataclass(frozen=True)
class ListedGpu:
    """A GPU line of ``nvidia-smi -L`` with the MIG lines under it."""

    index: int
    name: str
    uuid: str
    migs: tuple[ListedMig, ...]


_GPU_LINE = re.compile(r"^GPU (\d+): (.+?) \(UUID: ([^)\s]+)\)$")
_MIG_LINE = re.compile(r"^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: ([^)\s]+)\)$")
_NO_DEVICES = "No devices found."


def parse_nvidia_smi_list(text: str) -> tuple[ListedGpu, ...]:
    """Parse ``nvidia-smi -L``. "No devices found." is an empty tuple; any other unexpected
    line (a driver error message, a MIG line before any GPU) raises ParseError with its line.
    """
    gpus: list[ListedGpu] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.strip() == _NO_DEVICES and not gpus:
            continue
        gpu = _GPU_LINE.match(line)
        if gpu:
            uuid = gpu.group(3)
            if not uuid.startswith("GPU-"):
                raise ParseError(f"GPU UUID {uuid!r} does not start with GPU-", number, _LIST)
            gpus.append(ListedGpu(int(gpu.group(1)), gpu.group(2), uuid, ()))
            continue
        mig = _MIG_LINE.match(line)
        if mig:
            if not gpus:
                raise ParseError("MIG line before any GPU line", number, _LIST)
            uuid = mig.group(3)
            if not uuid.startswith("MIG-"):
                raise ParseError(f"MIG UUID {uuid!r} does not start with MIG-", number, _LIST)
            parent = gpus[-1]
            entry = ListedMig(mig.group(1), int(mig.group(2)), uuid)
            gpus[-1] = ListedGpu(parent.index, parent.name, parent.uuid, (*parent.migs, entry))
            continue
        raise ParseError(f"unrecognised line: {line.strip()!r}", number, _LIST)
    return tuple(gpus)


def listed_uuids(gpus: tuple[ListedGpu, ...]) -> tuple[str, ...]:
    """The UUIDs a container can address: MIG UUIDs where a GPU has MIG devices, else the GPU's."""
    result: list[str] = []
    for gpu in gpus:
        if gpu.migs:
            result.extend(m.uuid for m in gpu.migs)
        else:
            result.append(gpu.uuid)
    return tuple(result)
