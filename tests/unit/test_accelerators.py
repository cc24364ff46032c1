"""Accelerator profiles and the image table: exact names, strict loading, one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aiconformance import images as images_mod
from pytest_aiconformance.accelerators import (
    ProfileDataError,
    UnknownAcceleratorError,
    accelerator_tolerations,
    get_profile,
    is_accelerator_resource,
    load_profiles,
    parse_profiles,
    profile_for_dra_driver,
    profile_for_resource,
    vendor_domains,
)
from pytest_aiconformance.images import (
    ImageConfigError,
    UnknownImageError,
    list_images,
    load_images,
    split_reference,
)

DATA = Path(__file__).resolve().parents[2] / "pytest_aiconformance" / "data"


def raw_profiles() -> dict[str, Any]:
    return yaml.safe_load((DATA / "accelerators.yaml").read_text())


# --- profile table -------------------------------------------------------------------------


def test_profiles_in_order_nvidia_first():
    assert list(load_profiles()) == ["nvidia", "amd", "intel", "dra-example"]


def test_nvidia_profile_names():
    p = get_profile("nvidia")
    assert p.extended_resources == ("nvidia.com/gpu",)
    assert p.dra.drivers == ("gpu.nvidia.com",)
    assert p.dra.device_classes == ("gpu.nvidia.com", "mig.nvidia.com")
    assert p.dra.driver_version_attribute == "driverVersion"
    assert p.device_files.glob == "/dev/nvidia[0-9]*"
    assert "/dev/nvidiactl" in p.device_files.control
    assert "/dev/nvidia-uvm" in p.device_files.control
    assert p.runtime_class == "nvidia"
    assert p.all_devices_env is not None
    assert (p.all_devices_env.name, p.all_devices_env.value) == ("NVIDIA_VISIBLE_DEVICES", "all")
    assert p.tool is not None
    assert p.tool.command == "nvidia-smi"
    assert p.tool.list_args == ("-L",)
    assert p.tool.query_args == ("-q", "-x")
    assert p.node_labels.product == "nvidia.com/gpu.product"
    assert p.node_labels.sharing_strategy == "nvidia.com/gpu.sharing-strategy"
    assert p.node_labels.replicas == "nvidia.com/gpu.replicas"
    assert p.node_labels.mig_strategy == "nvidia.com/mig.strategy"
    assert p.node_labels.driver_version == "nvidia.com/cuda.driver-version.full"
    assert p.metrics is not None
    assert p.metrics.utilization == ("DCGM_FI_DEV_GPU_UTIL",)
    assert p.metrics.memory_used == ("DCGM_FI_DEV_FB_USED",)
    assert p.metrics.memory_free == ("DCGM_FI_DEV_FB_FREE",)
    assert p.metrics.temperature == ("DCGM_FI_DEV_GPU_TEMP",)
    assert p.metrics.power == ("DCGM_FI_DEV_POWER_USAGE",)
    assert "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL" in p.metrics.interconnect
    assert p.metrics.device_labels == ("UUID", "gpu", "device")
    assert p.metrics.host_label == "Hostname"


def test_amd_and_intel_rows():
    amd = get_profile("amd")
    assert amd.extended_resources == ("amd.com/gpu",)
    assert amd.dra.drivers == ("gpu.amd.com",)
    assert amd.device_files.glob == "/dev/dri/renderD*"
    assert amd.node_labels.driver_version == "amd.com/gpu.driver-version"
    assert amd.metrics is not None
    assert amd.metrics.utilization[0] == "gpu_gfx_activity"
    assert amd.metrics.memory_used[0] == "gpu_used_vram"
    assert amd.metrics.memory_total[0] == "gpu_total_vram"
    intel = get_profile("intel")
    assert intel.extended_resources == ("gpu.intel.com/i915", "gpu.intel.com/xe")
    assert intel.dra.device_classes == ("gpu.intel.com",)
    assert intel.dra.driver_version_attribute is None
    assert intel.metrics is not None
    assert "xpum_memory_used_bytes" in intel.metrics.memory_used


def test_dra_example_row_has_env_not_device_files():
    p = get_profile("dra-example")
    assert p.dra.drivers == ("gpu.example.com",)
    assert p.dra.device_classes == ("gpu.example.com",)
    assert p.device_files.glob is None
    assert p.injected_env_prefix == "GPU_DEVICE_"
    assert p.tool is None
    assert p.metrics is None
    assert p.runtime_class is None
    assert p.probe_env() == {"ENV_PREFIX": "GPU_DEVICE_"}
    assert not p.is_device_file("/dev/nvidia0")


def test_unknown_profile_error_lists_known_names_on_one_line():
    with pytest.raises(UnknownAcceleratorError) as err:
        get_profile("tpu")
    assert isinstance(err.value, ValueError)
    assert str(err.value) == (
        "unknown accelerator profile 'tpu'; known: nvidia, amd, intel, dra-example"
    )
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("path", "counted"),
    [
        ("/dev/nvidia0", True),
        ("/dev/nvidia1", True),
        ("/dev/nvidia15", True),
        ("/dev/nvidiactl", False),
        ("/dev/nvidia-uvm", False),
        ("/dev/nvidia-uvm-tools", False),
        ("/dev/nvidia-modeset", False),
        ("/dev/nvidia-caps", False),
    ],
)
def test_nvidia_device_file_glob_never_counts_control_nodes(path, counted):
    assert get_profile("nvidia").is_device_file(path) is counted


def test_amd_counts_render_nodes_not_kfd_or_cards():
    amd = get_profile("amd")
    assert amd.is_device_file("/dev/dri/renderD128")
    assert not amd.is_device_file("/dev/kfd")
    assert not amd.is_device_file("/dev/dri/card0")


@pytest.mark.parametrize(
    ("resource", "profile"),
    [
        ("nvidia.com/gpu", "nvidia"),
        ("nvidia.com/mig-1g.10gb", "nvidia"),
        ("nvidia.com/gpu.shared", "nvidia"),
        ("amd.com/gpu", "amd"),
        ("gpu.intel.com/xe", "intel"),
        ("example.com/fpga", None),
        ("nvidia.com/gpux", None),
    ],
)
def test_profile_for_resource(resource, profile):
    found = profile_for_resource(resource)
    assert (found.name if found else None) == profile


def test_profile_for_dra_driver_unknown_vendor_is_none():
    nvidia = profile_for_dra_driver("gpu.nvidia.com")
    example = profile_for_dra_driver("gpu.example.com")
    assert nvidia is not None
    assert nvidia.name == "nvidia"
    assert example is not None
    assert example.name == "dra-example"
    assert profile_for_dra_driver("tpu.google.com") is None


def test_probe_env_for_nvidia():
    env = get_profile("nvidia").probe_env()
    assert env["DEVICE_GLOB"] == "/dev/nvidia[0-9]*"
    assert env["IGNORE_GLOB"].split()[0] == "/dev/nvidiactl"
    assert env["TOOL"] == "nvidia-smi"
    assert env["TOOL_LIST_ARGS"] == "-L"
    assert env["TOOL_VERSION_ARGS"] == "--query-gpu=driver_version --format=csv,noheader"
    assert env["VERSION_FILE"] == "/proc/driver/nvidia/version"


def test_load_profiles_returns_a_fresh_dict():
    first = load_profiles()
    first.pop("nvidia")
    assert "nvidia" in load_profiles()


def test_profile_typo_is_rejected():
    data = raw_profiles()
    data["profiles"]["nvidia"]["runtime_clas"] = data["profiles"]["nvidia"].pop("runtime_class")
    with pytest.raises(ProfileDataError, match=r"nvidia: unknown keys runtime_clas"):
        parse_profiles(data)


def test_profile_missing_key_is_rejected():
    data = raw_profiles()
    del data["profiles"]["amd"]["metrics"]["utilization"]
    with pytest.raises(ProfileDataError, match=r"amd.metrics: missing keys utilization"):
        parse_profiles(data)


def test_profile_bad_uuid_regex_is_rejected():
    data = raw_profiles()
    data["profiles"]["nvidia"]["tool"]["uuid_regex"] = "(GPU"
    with pytest.raises(ProfileDataError, match=r"nvidia.tool.uuid_regex"):
        parse_profiles(data)


def test_profile_bad_env_prefix_is_rejected():
    data = raw_profiles()
    data["profiles"]["dra-example"]["injected_env_prefix"] = "GPU DEVICE"
    with pytest.raises(ProfileDataError, match=r"not an env var prefix"):
        parse_profiles(data)


# --- images --------------------------------------------------------------------------------

EXPECTED_KEYS = {
    "probe",
    "driver-injection",
    "http-echo",
    "curl",
    "metrics-demo",
    "gpu-load",
    "pause",
    "ray",
}


def test_every_image_is_pinned_with_a_purpose():
    imgs = load_images()
    assert set(imgs) == EXPECTED_KEYS
    for img in imgs.values():
        assert img.tag
        assert img.tag != "latest"
        assert img.purpose
    assert imgs["probe"].ref == "docker.io/library/busybox:1.36.1"
    assert imgs["http-echo"].ref == "docker.io/hashicorp/http-echo:1.0.0"


def test_list_images_one_reference_per_image_sorted():
    refs = list_images()
    assert refs == sorted(refs)
    assert len(refs) == len(EXPECTED_KEYS)
    assert "quay.io/brancz/prometheus-example-app:v0.5.0" in refs


def test_override_file_replaces_entries(tmp_path):
    digest = "sha256:" + "a" * 64
    override = tmp_path / "images.yaml"
    override.write_text(
        "probe: mirror.example:5000/library/busybox:1.36.1\n"
        f"curl: {{repository: mirror.example/curl, digest: '{digest}'}}\n"
    )
    imgs = load_images(override)
    assert imgs["probe"].ref == "mirror.example:5000/library/busybox:1.36.1"
    assert imgs["curl"].ref == f"mirror.example/curl:8.12.1@{digest}"
    assert imgs["pause"].ref == "registry.k8s.io/pause:3.10"


def test_override_accepts_images_wrapper(tmp_path):
    override = tmp_path / "images.yaml"
    override.write_text("images:\n  pause: mirror.example/pause:3.10\n")
    assert load_images(override)["pause"].ref == "mirror.example/pause:3.10"


def test_override_unknown_key_is_one_line_error(tmp_path):
    override = tmp_path / "images.yaml"
    override.write_text("busybox: mirror.example/busybox:1.36.1\n")
    with pytest.raises(UnknownImageError) as err:
        load_images(override)
    message = str(err.value)
    assert "\n" not in message
    assert "unknown image key 'busybox'" in message
    assert "known: probe, driver-injection, http-echo, curl, metrics-demo, gpu-load, pause" in (
        message
    )


@pytest.mark.parametrize(
    "bad",
    [
        "probe: mirror.example/busybox\n",  # no tag
        "probe: mirror.example/busybox:latest\n",  # floating tag
        "probe: mirror.example/busybox:1.36.1@sha256:abc\n",  # short digest
        "probe: [1, 2]\n",
        "probe: {registry: x}\n",
        "- probe\n",
    ],
)
def test_override_rejects_unpinned_or_malformed(tmp_path, bad):
    override = tmp_path / "images.yaml"
    override.write_text(bad)
    with pytest.raises(ImageConfigError):
        load_images(override)


def test_override_file_missing_is_config_error(tmp_path):
    with pytest.raises(ImageConfigError, match="cannot read"):
        load_images(tmp_path / "nope.yaml")


def test_split_reference_handles_registry_port():
    assert split_reference("localhost:5000/a/b:1.2@sha256:" + "0" * 64) == (
        "localhost:5000/a/b",
        "1.2",
        "sha256:" + "0" * 64,
    )
    with pytest.raises(ImageConfigError, match="no tag"):
        split_reference("localhost:5000/a/b")


def test_packaged_table_rejects_unknown_entry_keys():
    data = yaml.safe_load((DATA / "images.yaml").read_text())
    broken = copy.deepcopy(data)
    broken["images"]["probe"]["image"] = "x"
    with pytest.raises(ImageConfigError, match="unknown keys"):
        images_mod.parse_images(broken)


def test_console_entry_prints_one_image_per_line(capsys, tmp_path):
    assert images_mod.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == list_images()
    override = tmp_path / "o.yaml"
    override.write_text("nope: a/b:1\n")
    assert images_mod.main(["--override", str(override)]) == 2
    assert "unknown image key 'nope'" in capsys.readouterr().err


# Vendor knowledge comes from the table: resource names, domains and taints.

@pytest.mark.parametrize(("resource", "expected"), [
    ("nvidia.com/gpu", True),
    ("nvidia.com/mig-1g.10gb", True),
    ("nvidia.com/gpu.shared", True),
    ("amd.com/gpu", True),
    ("gpu.intel.com/i915", True),
    ("gpu.intel.com/millicores", False),  # a share of a device, not a device
    ("habana.ai/gaudi", True),
    ("aws.amazon.com/neuroncore", True),
    ("google.com/tpu", True),
    ("cpu", False),
    ("example.com/fpga", False),
])
def test_is_accelerator_resource(resource: str, expected: bool) -> None:
    assert is_accelerator_resource(resource) is expected


def test_vendor_domains_and_tolerations_from_the_table() -> None:
    assert vendor_domains() == ("nvidia.com", "amd.com", "gpu.intel.com", "intel.com",
                                "habana.ai")
    assert accelerator_tolerations() == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
