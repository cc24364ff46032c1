"""Accelerator profiles and the image table: exact names, strict loading, one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aiconformance.cluster import images as images_mod
from pytest_aiconformance.cluster.images import (
    ImageConfigError,
    UnknownImageError,
    list_images,
    load_images,
    split_reference,
)
from pytest_aiconformance.cluster.profiles import (
    LoadSpec,
    NodeEvidence,
    PlatformSharing,
    ProfileDataError,
    UnknownAcceleratorError,
    accelerator_tolerations,
    default_profile,
    detect_profile,
    get_profile,
    is_accelerator_resource,
    load_profiles,
    parse_profiles,
    profile_for_dra_driver,
    profile_for_resource,
    vendor_domains,
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
    assert p.metrics.utilization == ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE")
    assert p.metrics.ratio_metrics == ("DCGM_FI_PROF_GR_ENGINE_ACTIVE",)
    assert p.metrics.instance_label == "GPU_I_ID"
    assert p.metrics.memory_used == ("DCGM_FI_DEV_FB_USED",)
    assert p.metrics.memory_free == ("DCGM_FI_DEV_FB_FREE",)
    assert p.metrics.temperature == ("DCGM_FI_DEV_GPU_TEMP",)
    assert p.metrics.power == ("DCGM_FI_DEV_POWER_USAGE",)
    assert "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL" in p.metrics.interconnect
    assert p.metrics.device_labels == ("UUID", "gpu", "device")
    assert p.metrics.host_label == "Hostname"
    assert p.load == LoadSpec("gpu-load", "/tmp/sample --benchmark --numbodies=1048576")
    assert p.detection_labels == (
        "nvidia.com/gpu.present=true", "feature.node.kubernetes.io/pci-10de.present=true",
        "feature.node.kubernetes.io/pci-0302_10de.present=true",
        "feature.node.kubernetes.io/pci-0300_10de.present=true")


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
    assert amd.metrics.ratio_metrics == ()
    assert amd.metrics.instance_label is None
    assert amd.load is None
    assert amd.detection_labels == ("amd.com/gpu.family", "beta.amd.com/gpu.family",
                                    "amd.com/gpu.device-id",
                                    "feature.node.kubernetes.io/amd-gpu=true")
    intel = get_profile("intel")
    assert intel.extended_resources == ("gpu.intel.com/i915", "gpu.intel.com/xe")
    assert intel.dra.device_classes == ("gpu.intel.com",)
    assert intel.dra.driver_version_attribute is None
    assert intel.metrics is not None
    assert "xpum_memory_used_bytes" in intel.metrics.memory_used
    assert intel.detection_labels == ("intel.feature.node.kubernetes.io/gpu=true",)
    assert intel.load is None


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
    assert p.detection_labels == ()
    assert p.load is None


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


def test_profile_load_needs_image_and_command():
    data = raw_profiles()
    data["profiles"]["nvidia"]["load"] = {"image": "gpu-load"}
    with pytest.raises(ProfileDataError, match=r"nvidia.load: missing keys command"):
        parse_profiles(data)


def test_profile_missing_ratio_metrics_is_rejected():
    data = raw_profiles()
    del data["profiles"]["intel"]["metrics"]["ratio_metrics"]
    with pytest.raises(ProfileDataError, match=r"intel.metrics: missing keys ratio_metrics"):
        parse_profiles(data)


def test_every_load_image_is_pinned():
    # A load names an images.yaml key: the check reads it with Settings.image().
    loads = {p.name: p.load.image for p in load_profiles().values() if p.load is not None}
    assert loads == {"nvidia": "gpu-load"}
    assert set(loads.values()) <= set(load_images())


def test_every_tool_image_is_pinned():
    """The vendor tool runs in its profile's image: NVIDIA's injected nvidia-smi is a glibc
    binary that cannot start in the musl busybox probe image, so its probes use a glibc one."""
    tools = {p.name: p.tool.image for p in load_profiles().values() if p.tool is not None}
    assert tools == {"nvidia": "driver-injection", "amd": "probe", "intel": "probe"}
    assert set(tools.values()) <= set(load_images())
    assert load_images()["probe"].repository == "docker.io/library/busybox"
    assert load_images()["driver-injection"].repository != "docker.io/library/busybox"


def test_profile_tool_needs_an_image():
    data = raw_profiles()
    del data["profiles"]["nvidia"]["tool"]["image"]
    with pytest.raises(ProfileDataError, match=r"nvidia.tool: missing keys image"):
        parse_profiles(data)


def test_nvidia_sharing_labels():
    sharing = get_profile("nvidia").sharing
    assert sharing is not None
    assert sharing.time_sharing_values == ("time-slicing", "mps")
    assert (sharing.mig_single_value, sharing.mig_mixed_value) == ("single", "mixed")
    assert sharing.mig_product_marker == "-MIG-"
    assert sharing.partition_resources == ("nvidia.com/mig-*",)
    assert sharing.partition_uuid_prefix == "MIG-"
    assert sharing.is_partition_resource("nvidia.com/mig-1g.10gb")
    assert not sharing.is_partition_resource("nvidia.com/gpu.shared")
    [gke] = sharing.platforms
    assert gke == PlatformSharing(
        name="GKE", resource="nvidia.com/gpu", count="cloud.google.com/gke-accelerator-count",
        strategy="cloud.google.com/gke-gpu-sharing-strategy",
        time_sharing_values=("time-sharing", "mps"),
        clients="cloud.google.com/gke-max-shared-clients-per-gpu",
        partition_size="cloud.google.com/gke-gpu-partition-size")
    for name in ("amd", "intel", "dra-example"):
        assert get_profile(name).sharing is None


def test_sharing_typos_are_rejected():
    data = raw_profiles()
    data["profiles"]["nvidia"]["sharing"]["platforms"][0]["client"] = "x"
    with pytest.raises(ProfileDataError, match=r"nvidia.sharing.platforms\[0\]: unknown keys "
                                               r"client"):
        parse_profiles(data)
    data = raw_profiles()
    del data["profiles"]["nvidia"]["sharing"]["mig_product_marker"]
    with pytest.raises(ProfileDataError,
                       match=r"nvidia.sharing: missing keys mig_product_marker"):
        parse_profiles(data)
    data = raw_profiles()
    data["profiles"]["nvidia"]["sharing"]["platforms"] = {"name": "GKE"}
    with pytest.raises(ProfileDataError, match=r"nvidia.sharing.platforms: expected a list"):
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
    "kueue",
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


# --- which profile the cluster calls for ---------------------------------------------------


def node(name, resources=None, dra=None, labels=None):
    return NodeEvidence(name, resources or {}, dra or {}, labels or {})


def test_default_profile_is_the_first_row():
    assert default_profile().name == "nvidia"


def test_nvidia_nodes_detect_nvidia():
    found = detect_profile([node("g1", {"nvidia.com/gpu": "8"}),
                            node("g2", {"nvidia.com/mig-1g.10gb": "7"}), node("cpu")])
    assert found.chosen is not None
    assert found.chosen.name == "nvidia"
    assert found.source() == ("detected: nvidia 15 devices on 2 nodes via nvidia.com/gpu, "
                              "nvidia.com/mig-1g.10gb")


def test_amd_nodes_detect_amd():
    found = detect_profile([node("m1", {"amd.com/gpu": "8"},
                                 labels={"amd.com/gpu.family": "AI"})])
    assert found.chosen is not None
    assert found.chosen.name == "amd"
    assert found.source() == "detected: amd 8 devices on 1 node via amd.com/gpu"


def test_dra_only_nodes_detect_by_driver():
    found = detect_profile([node("m1", dra={"gpu.amd.com": 8}),
                            node("m2", dra={"gpu.amd.com": 8, "unknown.example.org": 4})])
    assert found.chosen is not None
    assert found.chosen.name == "amd"
    assert found.source() == "detected: amd 16 devices on 2 nodes via DRA driver gpu.amd.com"


def test_device_plugin_resources_outrank_a_nodes_dra_driver():
    # The lab: nvidia.com/gpu from the device plugin plus the simulated example driver's
    # 8 devices on the same node. The node's devices are the device plugin's.
    found = detect_profile([node("aic-gpu-0", {"nvidia.com/gpu": "1"},
                                 dra={"gpu.example.com": 8})])
    assert [(f.profile.name, f.devices) for f in found.findings] == [("nvidia", 1)]


def test_labels_detect_where_nothing_is_published():
    found = detect_profile([
        node("n1", labels={"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "4"}),
        node("n2", labels={"feature.node.kubernetes.io/amd-gpu": "true"}),
        node("n3", labels={"nvidia.com/gpu.present": "false"}),
    ])
    assert [(f.profile.name, f.devices, f.nodes) for f in found.findings] == [
        ("nvidia", 4, ("n1",)), ("amd", 1, ("n2",))]
    assert found.findings[1].signals == ("node label feature.node.kubernetes.io/amd-gpu=true",)


def test_several_vendors_most_devices_wins_and_the_header_names_them():
    found = detect_profile([node("g1", {"nvidia.com/gpu": "2"}),
                            node("m1", {"amd.com/gpu": "8"}),
                            node("i1", {"gpu.intel.com/xe": "1"})])
    assert found.chosen is not None
    assert found.chosen.name == "amd"
    assert found.source() == (
        "detected: most devices among 3 vendors: amd 8 devices on 1 node via amd.com/gpu; "
        "nvidia 2 devices on 1 node via nvidia.com/gpu; intel 1 device on 1 node via "
        "gpu.intel.com/xe; choose another with --accelerator")


def test_a_tie_goes_to_the_tables_order():
    found = detect_profile([node("m1", {"amd.com/gpu": "4"}), node("g1", {"nvidia.com/gpu": "4"})])
    assert [f.profile.name for f in found.findings] == ["nvidia", "amd"]


def test_unplaced_dra_devices_count_for_their_driver():
    found = detect_profile([node("g1", {"nvidia.com/gpu": "2"})],
                           unplaced_dra={"gpu.intel.com": 3, "gpu.nvidia.com": 0})
    assert [(f.profile.name, f.devices, f.nodes) for f in found.findings] == [
        ("intel", 3, ()), ("nvidia", 2, ("g1",))]


def test_nothing_found_leaves_the_choice_to_the_default():
    found = detect_profile([node("cpu", labels={"kubernetes.io/os": "linux"}),
                            node("tpu", {"google.com/tpu": "4"})])
    assert found.chosen is None
    assert found.source() == ("default: no accelerator of a known vendor found in extended "
                              "resources, DRA drivers or node labels; choose one with "
                              "--accelerator")
