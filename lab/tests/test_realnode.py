"""The real node's configuration: what it listens on, what it may touch, what it refuses."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml
from aiconformance_lab import hostnet, procs, realnode
from aiconformance_lab.errors import LabError
from aiconformance_lab.pki import PKIPaths
from aiconformance_lab.shape import LabShape
from aiconformance_lab.spec import COMPONENTS, SpecInputs
from aiconformance_lab.statedir import StateDir

BINARIES = {"aiclab": Path("/b/aiclab"), "containerd": Path("/b/ctd/containerd"),
            "ctr": Path("/b/ctd/ctr"), "coredns": Path("/b/coredns"),
            "aic-gpu-plugin": Path("/b/gpusim/aic-gpu-plugin"),
            "nvidia-device-plugin": Path("/b/nvidia/nvidia-device-plugin"),
            "libnvidia-ml.so": Path("/b/nvml/libnvidia-ml.so")}


def _inputs(tmp_path: Path, **shape: object) -> SpecInputs:
    ports = {name: 30000 + i for i, name in enumerate(("apiserver", *realnode.PORTS))}
    return SpecInputs(LabShape(real_nodes=1, **shape), BINARIES,  # type: ignore[arg-type]
                      ports, PKIPaths(tmp_path / "pki"), StateDir(tmp_path))


def test_every_process_is_found_again_and_named(tmp_path: Path) -> None:
    specs = realnode.specs(_inputs(tmp_path, real_node_dra=True, gpu_injection="runtime",
                                   shared_gpus=1, time_slice_replicas=2))
    assert [s.name for s in specs] == list(realnode.NAMES)
    direct = [s.name for s in realnode.specs(_inputs(tmp_path))]
    assert "dra-plugin" not in direct
    assert "gpu-plugin-shared" not in direct
    for spec in [*specs, *realnode.specs(_inputs(tmp_path))]:
        assert spec.name in COMPONENTS
        assert Path(spec.argv[0]).name in procs.LAB_BINARIES
        # procs recognises a lab process by its state directory in the command line.
        assert any(str(tmp_path) in arg for arg in spec.argv[1:]), spec.argv
        # NVIDIA's plugin has no health endpoint: its socket accepting is its readiness.
        assert spec.health_url.startswith(("http://127.0.0.1:", "unix:/")), spec.health_url


def test_no_real_node_no_processes(tmp_path: Path) -> None:
    inputs = SpecInputs(LabShape(), BINARIES, {}, PKIPaths(tmp_path), StateDir(tmp_path))
    assert realnode.specs(inputs) == []
    assert inputs.host("apiserver") == "127.0.0.1"
    assert _inputs(tmp_path).host("apiserver") == hostnet.NODE_IP


def test_configs_listen_on_the_bridge_only_and_keep_the_host(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    realnode.write_configs(inputs, "aic-lab.local/pause:0123456789ab")
    node = tmp_path / "node"
    kubelet = yaml.safe_load((node / "kubelet" / "config.yaml").read_text())
    assert kubelet["address"] == hostnet.NODE_IP
    assert kubelet["readOnlyPort"] == 0
    assert kubelet["healthzBindAddress"] == "127.0.0.1"
    assert kubelet["authentication"]["anonymous"] == {"enabled": False}
    assert kubelet["authorization"] == {"mode": "Webhook"}
    assert kubelet["cgroupRoot"] == "/aiclab"
    assert kubelet["failCgroupV1"] is False
    assert kubelet["makeIPTablesUtilChains"] is False
    assert kubelet["clusterDNS"] == [hostnet.NODE_IP]
    assert kubelet["podLogsDir"] == str(node / "pod-logs")
    assert kubelet["resolvConf"] == str(node / "resolv.conf")
    proxy = yaml.safe_load((node / "kube-proxy" / "config.yaml").read_text())
    assert proxy["mode"] == "nftables"
    assert proxy["bindAddress"] == hostnet.NODE_IP
    assert proxy["nodePortAddresses"] == [f"{hostnet.NODE_IP}/32"]
    assert proxy["conntrack"] == {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                                  "tcpCloseWaitTimeout": "0s"}
    assert proxy["healthzBindAddress"].startswith("127.0.0.1:")
    ctd = tomllib.loads((node / "containerd" / "config.toml").read_text())
    assert ctd["root"] == str(node / "containerd" / "root")
    assert ctd["state"] == str(node / "containerd" / "state")
    assert ctd["disabled_plugins"] == ["io.containerd.nri.v1.nri"]
    runtime = ctd["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["netns_mounts_under_state_dir"] is True
    assert runtime["containerd"]["runtimes"]["runc"]["options"]["Root"] == \
        str(node / "containerd" / "runc")
    assert ctd["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == \
        "aic-lab.local/pause:0123456789ab"
    assert ctd["plugins"]["io.containerd.internal.v1.opt"]["path"] == \
        str(node / "containerd" / "opt")
    assert ctd["plugins"]["io.containerd.grpc.v1.cri"]["stream_server_address"] == "127.0.0.1"


def test_pods_get_no_default_route_and_no_masquerade(tmp_path: Path) -> None:
    realnode.write_configs(_inputs(tmp_path), "p")
    conf = json.loads((tmp_path / "node" / "cni" / "net.d" / "10-aiclab.conflist").read_text())
    bridge = conf["plugins"][0]
    assert bridge["bridge"] == hostnet.BRIDGE
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["routes"] == [{"dst": hostnet.SERVICE_CIDR, "gw": hostnet.NODE_IP}]
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "node" / "cni" / "ipam")


def test_cluster_dns_answers_the_cluster_domain_only(tmp_path: Path) -> None:
    realnode.write_configs(_inputs(tmp_path), "p")
    corefile = (tmp_path / "node" / "coredns" / "Corefile").read_text()
    assert f"bind {hostnet.NODE_IP}" in corefile
    assert "kubernetes cluster.local in-addr.arpa" in corefile
    assert "forward" not in corefile


def test_node_labels_say_nvidia_gpus_and_simulation(tmp_path: Path) -> None:
    labels = realnode.node_labels(_inputs(tmp_path))
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.count"] == str(realnode.GPUS)
    assert labels["aic-lab.local/simulated-accelerators"] == "true"
    assert labels["nvidia.com/gpu.sharing-strategy"] == "none"
    sliced = realnode.node_labels(_inputs(tmp_path, gpu_plugin_mode="time-slicing"))
    assert sliced["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
    assert sliced["nvidia.com/gpu.replicas"] == "4"
    assert sliced["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3-SHARED"


def test_shared_gpus_beside_whole_ones(tmp_path: Path) -> None:
    """shared_gpus: GPU Feature Discovery's labels for renamed replicas (every GPU counted,
    the replicas and strategy labelled, no -SHARED product), the plugin's second resource
    and the exporter attributing both."""
    inputs = _inputs(tmp_path, shared_gpus=1)
    labels = realnode.node_labels(inputs)
    assert labels["nvidia.com/gpu.count"] == "3"
    assert labels["nvidia.com/gpu.replicas"] == "4"
    assert labels["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    (plugin,) = [s for s in realnode.specs(inputs) if s.name == "gpu-plugin"]
    assert "--shared-resource=nvidia.com/gpu.shared" in plugin.argv
    assert "--shared-devices=2" in plugin.argv
    assert "--resource=nvidia.com/gpu" in plugin.argv


@pytest.mark.parametrize("shape", [dict(shared_gpus=1),
                                   dict(real_nodes=1, shared_gpus=1,
                                        gpu_plugin_mode="time-slicing"),
                                   dict(real_nodes=1, shared_gpus=1, time_slice_replicas=1)])
def test_bad_shared_gpu_shapes(shape: dict[str, object]) -> None:
    with pytest.raises(LabError, match="shared_gpus time-slices"):
        LabShape(**shape)  # type: ignore[arg-type]


@pytest.mark.parametrize(("shape", "message"), [
    (dict(real_nodes=2), "real_nodes is 0 or 1"),
    (dict(prometheus=True), "prometheus needs real_nodes"),
    (dict(gateway=True), "gateway needs real_nodes"),
    (dict(real_nodes=1, vendor="amd"), "simulates NVIDIA GPUs"),
    (dict(real_nodes=1, gpu_plugin_mode="mig"), "gpu_plugin_mode must be one of"),
    (dict(real_nodes=1, gpu_exporter="nope"), "gpu_exporter must be one of"),
])
def test_bad_real_node_shapes_are_one_line(shape: dict[str, object], message: str) -> None:
    with pytest.raises(LabError, match=message):
        LabShape(**shape)  # type: ignore[arg-type]


def test_a_state_file_without_the_new_keys_is_a_lab_without_them() -> None:
    old = LabShape.from_dict({"gpu_nodes": 2})
    assert (old.real_nodes, old.prometheus, old.gateway) == (0, False, False)


def test_missing_root_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostnet.os, "geteuid", lambda: 1000)
    assert hostnet.missing_prerequisite() == (
        "a real node needs root (network namespaces, bridge, cgroups, mounts)")


def test_missing_tools_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostnet.os, "geteuid", lambda: 0)
    monkeypatch.setattr(hostnet.shutil, "which", lambda name: None if name == "runc" else name)
    reason = hostnet.missing_prerequisite()
    assert reason is not None
    assert reason.startswith("a real node needs runc on PATH")


def test_cleanup_of_a_lab_without_real_node_touches_nothing(tmp_path: Path) -> None:
    """No bridge of ours and no record: nothing to undo, nothing looked at beyond mounts."""
    assert hostnet.HostNet(tmp_path / "other-lab").cleanup() == []


def test_renamed_commands_are_built_one_by_one(tmp_path: Path) -> None:
    """Two upstream commands named like other binaries get names of their own with -o."""
    from aiconformance_lab.build import GoModule, cache_key

    module = GoModule(name="m", directory="m", targets=("tool",), binaries=("a-op", "a-ad"),
                      renames=(("example.org/x/cmd/operator", "a-op"),
                               ("example.org/x/cmd/adapter", "a-ad")))
    commands = module.go_build_commands(tmp_path)
    assert [c[-3:] for c in commands] == [
        ["-o", str(tmp_path / "a-op"), "example.org/x/cmd/operator"],
        ["-o", str(tmp_path / "a-ad"), "example.org/x/cmd/adapter"]]
    plain = GoModule(name="m", directory="m", targets=("tool",), binaries=("operator",))
    assert plain.go_build_commands(tmp_path) == [plain.go_build_args(tmp_path)]
    (tmp_path / "m").mkdir()
    for name in ("go.mod", "go.sum"):
        (tmp_path / "m" / name).write_text("module m\n")
    assert cache_key(module, tmp_path, "go") != cache_key(
        GoModule(name="m", directory="m", targets=("tool",), binaries=("a-op", "a-ad")),
        tmp_path, "go")


def test_a_state_dir_too_long_for_sockets_is_one_line() -> None:
    long_dir = Path("/tmp") / ("x" * hostnet.MAX_STATE_DIR)
    reason = hostnet.missing_prerequisite(long_dir)
    assert reason is not None
    assert reason.startswith(f"the real node's sockets need a state directory path of at most "
                             f"{hostnet.MAX_STATE_DIR} characters")
    assert 107 - len("/node/kubelet/root/pod-resources/0123456789") == hostnet.MAX_STATE_DIR


@pytest.mark.parametrize(("injection", "strategy", "permissive"), [
    ("runtime", "volume-mounts", False), ("runtime-envvar", "envvar", True)])
def test_nvidia_runtime_handler(tmp_path: Path, injection: str, strategy: str,
                                permissive: bool) -> None:
    """gpu_injection runtime: containerd's handler "nvidia" (also its default, as the GPU
    Operator sets it) runs aic-nvidia-runtime over runc; the plugin only lists devices; the
    runtime's switches say whose NVIDIA_VISIBLE_DEVICES it honours; RuntimeClass nvidia."""
    inputs = _inputs(tmp_path, gpu_injection=injection)
    realnode.write_configs(inputs, "p")
    node = tmp_path / "node"
    ctd = tomllib.loads((node / "containerd" / "config.toml").read_text())
    cri = ctd["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]
    assert cri["default_runtime_name"] == "nvidia"
    nvidia = cri["runtimes"]["nvidia"]
    assert nvidia["runtime_type"] == "io.containerd.runc.v2"
    assert nvidia["options"]["BinaryName"] == "/b/gpusim/aic-nvidia-runtime"
    assert nvidia["options"]["Root"] == cri["runtimes"]["runc"]["options"]["Root"]
    settings = json.loads(realnode.runtime_config(tmp_path).read_text())
    assert settings["runc"] == cri["runtimes"]["runc"]["options"]["BinaryName"]
    assert settings["stateDir"] == str(realnode.gpusim_dir(tmp_path))
    assert settings["nvidiaSmi"] == "/b/gpusim/nvidia-smi"
    assert settings["acceptVolumeMounts"] is True
    assert settings["acceptEnvvarUnprivileged"] is permissive
    specs = {s.name: s for s in realnode.specs(inputs)}
    assert specs["containerd"].env[realnode.RUNTIME_CONFIG_ENV] == \
        str(realnode.runtime_config(tmp_path))
    assert f"--device-list-strategy={strategy}" in specs["gpu-plugin"].argv
    assert Path(specs["gpu-plugin"].argv[0]).name == "nvidia-device-plugin"  # NVIDIA's own
    rc = realnode.runtime_class()
    assert (rc["metadata"]["name"], rc["handler"]) == ("nvidia", "nvidia")
    assert "scheduling" not in rc  # admits every node, as the GPU Operator's
    assert "aic-nvidia-runtime" in procs.LAB_BINARIES


def test_plugin_injection_keeps_runc(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    realnode.write_configs(inputs, "p")
    ctd = tomllib.loads((tmp_path / "node" / "containerd" / "config.toml").read_text())
    cri = ctd["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]
    assert cri["default_runtime_name"] == "runc"
    assert "nvidia" not in cri["runtimes"]
    assert not realnode.runtime_config(tmp_path).exists()
    specs = {s.name: s for s in realnode.specs(inputs)}
    assert realnode.RUNTIME_CONFIG_ENV not in specs["containerd"].env
    assert not any(a.startswith("--device-list-strategy") for a in specs["gpu-plugin"].argv)
    with pytest.raises(LabError, match="gpu_injection runtime needs real_nodes"):
        LabShape(gpu_injection="runtime")
    with pytest.raises(LabError, match="gpu_injection must be one of"):
        LabShape(real_nodes=1, gpu_injection="cdi")


def test_real_node_dra_plugin(tmp_path: Path) -> None:
    """real_node_dra: the DRA kubelet plugin (kubelet root, node credentials, CDI specs in the
    state dir, the example driver's env prefix) and containerd applying those CDI specs."""
    inputs = _inputs(tmp_path, real_node_dra=True)
    (spec,) = [s for s in realnode.specs(inputs) if s.name == "dra-plugin"]
    argv = spec.argv
    assert argv[0] == "/b/gpusim/aic-dra-plugin"
    assert "--driver=gpu.example.com" in argv
    assert "--node=aic-real-0" in argv
    assert f"--kubelet-root={realnode.kubelet_root(tmp_path)}" in argv
    assert f"--cdi-dir={realnode.cdi_dir(tmp_path)}" in argv
    assert "--env-prefix=GPU_DEVICE_" in argv
    assert any(a.endswith("kubelet.kubeconfig") for a in argv)
    realnode.write_configs(inputs, "p")
    ctd = tomllib.loads((tmp_path / "node" / "containerd" / "config.toml").read_text())
    runtime = ctd["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["enable_cdi"] is True
    assert runtime["cdi_spec_dirs"] == [str(realnode.cdi_dir(tmp_path))]
    nvidia = _inputs(tmp_path, real_node_dra=True, dra_driver="gpu.nvidia.com")
    (spec,) = [s for s in realnode.specs(nvidia) if s.name == "dra-plugin"]
    assert not any(a.startswith("--env-prefix") for a in spec.argv)  # identity by nvidia-smi
    with pytest.raises(LabError, match="real_node_dra needs real_nodes and dra"):
        LabShape(real_nodes=1, dra=False, real_node_dra=True)


def test_image_refs_from_the_node_image_list(tmp_path: Path) -> None:
    spec_inputs = _inputs(tmp_path, gateway=True)
    path = realnode.images_json(spec_inputs)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"envoy": {"ref": "aic-lab.local/envoy:0123456789ab"}}))
    assert realnode.image_refs(path, ["envoy"], "Envoy Gateway needs them") == {
        "envoy": "aic-lab.local/envoy:0123456789ab"}
    with pytest.raises(LabError, match=r"images\.json lacks the image\(s\) envoy-gateway: "
                                       r"Envoy Gateway needs them$"):
        realnode.image_refs(path, ["envoy", "envoy-gateway"], "Envoy Gateway needs them")
    path.write_text("{not json")
    with pytest.raises(LabError, match=r"^cannot read the real node's image list .*images\.json"):
        realnode.image_refs(path, ["envoy"], "Envoy Gateway needs them")
