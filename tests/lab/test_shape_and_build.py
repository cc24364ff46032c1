"""Lab shape, simulated objects and the build cache key: no lab process needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from aiconformance_lab import LabError, LabShape, build, objects


def test_shape_from_yaml_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "shape.yaml"
    good.write_text("gpu-nodes: 4\ntime_sliced_nodes: 1\nmetrics_server: false\n")
    shape = LabShape.from_yaml(good)
    assert shape == LabShape(gpu_nodes=4, time_sliced_nodes=1, metrics_server=False)
    typo = tmp_path / "typo.yaml"
    typo.write_text("gpu_node: 4\n")
    with pytest.raises(LabError, match="unknown key"):
        LabShape.from_yaml(typo)
    with pytest.raises(LabError, match="gpu_nodes must be an integer"):
        LabShape(gpu_nodes=-1)
    with pytest.raises(LabError, match="needs dra_api"):
        LabShape(dra=True, dra_api=False)


def test_example_shape_file_is_the_default() -> None:
    path = Path(objects.__file__).parent / "data" / "example-shape.yaml"
    assert LabShape.from_yaml(path) == LabShape()


def test_gpu_and_time_sliced_nodes() -> None:
    shape = LabShape(
        gpu_nodes=1, gpus_per_node=2, time_sliced_nodes=1, time_slice_replicas=4, cpu_nodes=1
    )
    nodes = {n["metadata"]["name"]: n for n in objects.nodes(shape)}
    assert sorted(nodes) == ["aic-cpu-0", "aic-gpu-0", "aic-gpu-ts-0"]
    gpu, shared, cpu = nodes["aic-gpu-0"], nodes["aic-gpu-ts-0"], nodes["aic-cpu-0"]
    assert gpu["status"]["allocatable"]["nvidia.com/gpu"] == "2"
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.count"] == "2"
    assert gpu["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    labels = shared["metadata"]["labels"]
    assert shared["status"]["capacity"]["nvidia.com/gpu"] == "8"  # 2 physical x 4 replicas
    assert labels["nvidia.com/gpu.count"] == "2"
    assert labels["nvidia.com/gpu.replicas"] == "4"
    assert labels["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
    assert labels["nvidia.com/gpu.product"].endswith("-SHARED")
    assert labels["aic.lab/role"] == "gpu"
    assert "nvidia.com/gpu" not in cpu["status"]["allocatable"]
    assert cpu["metadata"]["labels"]["aic.lab/role"] == "cpu"
    assert not any(k.startswith("nvidia.com/") for k in cpu["metadata"]["labels"])


def test_dra_objects_like_the_example_driver() -> None:
    objs = objects.dra_objects(LabShape(gpu_nodes=2, time_sliced_nodes=1))
    assert objs[0]["kind"] == "DeviceClass"
    assert objs[0]["metadata"]["name"] == "gpu.example.com"
    slices = objs[1:]
    assert [s["spec"]["nodeName"] for s in slices] == ["aic-gpu-0", "aic-gpu-1", "aic-gpu-ts-0"]
    devices = slices[0]["spec"]["devices"]
    assert [d["name"] for d in devices] == [f"gpu-{i}" for i in range(8)]
    attrs = devices[3]["attributes"]
    assert attrs["index"] == {"int": 3}
    assert attrs["uuid"]["string"].startswith("gpu-")
    assert set(attrs) >= {"index", "uuid", "model", "driverVersion"}
    uuids = {d["attributes"]["uuid"]["string"] for s in slices for d in s["spec"]["devices"]}
    assert len(uuids) == 24
    assert objects.dra_objects(LabShape(dra=False)) == []


def test_cache_key_follows_go_sum_and_sources(tmp_path: Path) -> None:
    root = build.source_root()
    module = build.module_for("kwok")
    copy = tmp_path / module.directory
    shutil.copytree(root / module.directory, copy)
    key = build.cache_key(module, tmp_path, "go1.26.8 linux amd64")
    assert key == build.cache_key(module, tmp_path, "go1.26.8 linux amd64")
    assert key != build.cache_key(module, tmp_path, "go1.26.9 linux amd64")
    (copy / "go.sum").write_text((copy / "go.sum").read_text() + "\n")
    changed = build.cache_key(module, tmp_path, "go1.26.8 linux amd64")
    assert changed != key
    (copy / "extra.go").write_text("package main\n")
    assert build.cache_key(module, tmp_path, "go1.26.8 linux amd64") != changed


def test_registry_and_version_stamp() -> None:
    assert build.module_for("aiclab").name == "controlplane"
    assert build.module_for("metrics-server").name == "tools"
    flags = " ".join(build.module_for("aiclab").ldflags)
    assert "-X k8s.io/component-base/version.gitVersion=v1.35.4" in flags
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.35.4" in flags
    with pytest.raises(LabError):
        build.module_for("volcano")


@pytest.mark.lab
def test_second_build_is_a_cache_hit() -> None:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain")
    build.build_all(lambda _: None)  # cold or warm: whatever the cache holds
    lines: list[str] = []
    first = {m.name: build.build_module(m, lines.append) for m in build.MODULES}
    assert all(b.cached for b in first.values()), lines
    assert all(b.seconds < 10 for b in first.values())
    assert not lines  # a cache hit builds (and prints) nothing
