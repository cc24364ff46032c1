"""accelerator_metrics' decisions (pytest_aiconformance.requirements.accelerator_metrics) on
recorded exporter pages and Prometheus API answers, including inputs that must fail.

Recorded: dcgm/l40s-dcgm-exporter-metrics.txt (dcgm-exporter, one L40S),
dcgm/dcgm-exporter-readme-excerpt.txt (a page without the utilisation metric),
prometheus/api-query-instant-vector.json, prometheus/exposition-formats-example.txt; inline,
an H100's MIG instances as published in NVIDIA/dcgm-exporter issue 512 (MIG_GPU0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_aiconformance.cluster import allocations
from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.parsers import parse_exposition, parse_query_response
from pytest_aiconformance.requirements import accelerator_metrics as AM

REC = Path(__file__).resolve().parents[1] / "data" / "recorded"
NVIDIA = get_profile("nvidia").metrics
L40S_TEXT = (REC / "dcgm" / "l40s-dcgm-exporter-metrics.txt").read_text()
L40S = parse_exposition(L40S_TEXT)
README = parse_exposition((REC / "dcgm" / "dcgm-exporter-readme-excerpt.txt").read_text())
UP = parse_query_response((REC / "prometheus" / "api-query-instant-vector.json").read_text())
UUID = "GPU-5b4e07f6-3a86-4340-039d-25f2a83cdc43"


# --- device metrics -----------------------------------------------------------------------


def test_l40s_page_has_device_metrics():
    report = AM.check_device_metrics(L40S, NVIDIA)
    assert report.ok, report.reason
    assert report.devices == (UUID,)
    assert report.quantities["utilization"].device_label == "UUID"
    lines = report.lines(NVIDIA.device_labels)
    assert any(line.startswith("temperature: DCGM_FI_DEV_GPU_TEMP UUID=") for line in lines)
    assert any(line.startswith("power: DCGM_FI_DEV_POWER_USAGE") for line in lines)
    assert any(line.startswith("interconnect: not exported") for line in lines)


def test_readme_page_lacks_utilisation():
    report = AM.check_device_metrics(README, NVIDIA)
    assert not report.ok
    assert "no utilization metric" in report.reason


def test_metrics_without_device_label_fail():
    text = "DCGM_FI_DEV_GPU_UTIL{Hostname=\"n1\"} 5\nDCGM_FI_DEV_FB_USED{Hostname=\"n1\"} 10\n"
    report = AM.check_device_metrics(parse_exposition(text), NVIDIA)  # synthetic
    assert not report.ok
    assert "lack a device label" in report.reason


def test_generic_exposition_is_not_accelerator_metrics():
    expo = parse_exposition((REC / "prometheus" / "exposition-formats-example.txt").read_text())
    assert not AM.check_device_metrics(expo, NVIDIA).ok


def test_amd_names_are_used_for_amd():
    text = ('gpu_gfx_activity{gpu_id="0",hostname="n"} 7\n'
            'gpu_used_vram{gpu_id="0",hostname="n"} 1024\n')  # synthetic, AMD names
    report = AM.check_device_metrics(parse_exposition(text), get_profile("amd").metrics)
    assert report.ok, report.reason


def test_utilisation_moved_on_recorded_sample():
    before = AM.utilisation_by_device(L40S, NVIDIA)
    assert before == {UUID: 0.0}
    during_text = (REC / "dcgm" / "l40s-dcgm-exporter-metrics.txt").read_text().replace(
        'DCGM_FI_DRIVER_VERSION="595.58.03"} 0\n# HELP DCGM_FI_DEV_MEM_COPY_UTIL',
        'DCGM_FI_DRIVER_VERSION="595.58.03"} 97\n# HELP DCGM_FI_DEV_MEM_COPY_UTIL')
    during = AM.utilisation_by_device(parse_exposition(during_text), NVIDIA)
    assert during == {UUID: 97.0}
    ok, reason = AM.utilisation_moved(before, during)
    assert ok, reason


def test_utilisation_not_moved_fails():
    before = AM.utilisation_by_device(L40S, NVIDIA)
    ok, reason = AM.utilisation_moved(before, dict(before))
    assert not ok
    assert "did not rise" in reason


def test_utilisation_on_another_device_does_not_count():
    ok, reason = AM.utilisation_moved({"GPU-a": 0.0}, {"GPU-b": 90.0})
    assert not ok
    assert "no device in both" in reason


def test_utilisation_drop_does_not_count():
    assert not AM.utilisation_moved({"g": 50.0}, {"g": 10.0})[0]


# --- MIG: utilisation from the profiling ratio where GPU_UTIL is absent ---------------------

# GPU 0's lines as published in NVIDIA/dcgm-exporter issue 512 (an H100 80GB in MIG mode,
# driver 535.129.03: three 1g.10gb instances export DCGM_FI_PROF_GR_ENGINE_ACTIVE only).
MIG_GPU0 = """\
# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.
# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="GPU-58e8f5ea-13cc-013a-d88f-2bcf5ae8bc77",\
pci_bus_id="00000000:1A:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",\
GPU_I_PROFILE="1g.10gb",GPU_I_ID="7",Hostname="gsrh100-074",DCGM_FI_DRIVER_VERSION="535.129.03",\
container="kserve-container",namespace="model-playground-stg",\
pod="text-embedding-predictor-00008-deployment-57946f6c67-vdtjl"} 0.000000
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="GPU-58e8f5ea-13cc-013a-d88f-2bcf5ae8bc77",\
pci_bus_id="00000000:1A:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",\
GPU_I_PROFILE="1g.10gb",GPU_I_ID="8",Hostname="gsrh100-074",\
DCGM_FI_DRIVER_VERSION="535.129.03"} 0.000000
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="GPU-58e8f5ea-13cc-013a-d88f-2bcf5ae8bc77",\
pci_bus_id="00000000:1A:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",\
GPU_I_PROFILE="1g.10gb",GPU_I_ID="9",Hostname="gsrh100-074",DCGM_FI_DRIVER_VERSION="535.129.03",\
container="kserve-container",namespace="model-playground-stg",\
pod="tts-predictor-00011-deployment-5554f75554-8j8pl"} 0.000000
"""
# GPU 1 of the same node is not in MIG mode (nvidia-smi in the issue: 14 %, 51958 MiB used).
# Synthetic lines in the exporter's shape (the issue shows no GPU 1 lines; UUID made up).
GPU1 = "GPU-00000000-0000-0000-0000-000000000001"
MIG_GPU1 = f"""\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{{gpu="1",UUID="{GPU1}",device="nvidia1",Hostname="gsrh100-074"}} 14
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{{gpu="1",UUID="{GPU1}",device="nvidia1",Hostname="gsrh100-074"}} 51958
DCGM_FI_PROF_GR_ENGINE_ACTIVE{{gpu="1",UUID="{GPU1}",device="nvidia1",Hostname="gsrh100-074"}} \
0.140000
"""
H100 = "GPU-58e8f5ea-13cc-013a-d88f-2bcf5ae8bc77"
INSTANCES = tuple(f"{H100}/GPU_I_ID={i}" for i in (7, 8, 9))


def test_mig_page_takes_the_profiling_ratio_where_gpu_util_is_absent():
    report = AM.check_device_metrics(parse_exposition(MIG_GPU0 + MIG_GPU1), NVIDIA)
    assert report.ok, report.reason
    util = report.quantities["utilization"]
    assert util.found == "DCGM_FI_DEV_GPU_UTIL, DCGM_FI_PROF_GR_ENGINE_ACTIVE"
    assert util.device_label == "UUID"
    assert report.devices == (GPU1, *INSTANCES)
    assert report.reason == ("4 device(s) export DCGM_FI_DEV_GPU_UTIL, "
                             "DCGM_FI_PROF_GR_ENGINE_ACTIVE and DCGM_FI_DEV_FB_USED labelled "
                             "by UUID")


def test_mig_utilisation_is_in_percent_per_instance():
    util = AM.utilisation_by_device(parse_exposition(MIG_GPU0 + MIG_GPU1), NVIDIA)
    # GPU 1 keeps GPU_UTIL (listed first), not its ratio x 100.
    assert util == {INSTANCES[0]: 0.0, INSTANCES[1]: 0.0, INSTANCES[2]: 0.0, GPU1: 14.0}


def loaded(instance: str, ratio: str) -> str:
    """GPU 0's page with one instance's ratio replaced, as a sample during a load."""
    head, tail = MIG_GPU0.split(f'GPU_I_ID="{instance}"', 1)
    value_at = tail.index("} 0.000000") + 2
    return head + f'GPU_I_ID="{instance}"' + tail[:value_at] + ratio + tail[value_at + 8:]


def test_mig_instance_under_load_moves():
    before = AM.utilisation_by_device(parse_exposition(MIG_GPU0), NVIDIA)
    during = AM.utilisation_by_device(parse_exposition(loaded("8", "0.620000")), NVIDIA)
    assert during == {INSTANCES[0]: 0.0, INSTANCES[1]: 62.0, INSTANCES[2]: 0.0}
    ok, reason = AM.utilisation_moved(before, during)
    assert ok, reason
    assert f"{INSTANCES[1]}: 0 -> 62" in reason


def test_mig_ratio_rise_below_one_percent_does_not_count():
    # 0.005 is half a percent: the ratio is compared in percent, not as a raw value.
    before = AM.utilisation_by_device(parse_exposition(MIG_GPU0), NVIDIA)
    during = AM.utilisation_by_device(parse_exposition(loaded("7", "0.005000")), NVIDIA)
    assert during[INSTANCES[0]] == 0.5
    assert not AM.utilisation_moved(before, during)[0]


def test_later_names_without_the_device_label_count_for_no_device():
    # synthetic: the second name's sample carries no UUID, so it names no device
    text = (f'DCGM_FI_DEV_GPU_UTIL{{UUID="{GPU1}"}} 14\n'
            'DCGM_FI_PROF_GR_ENGINE_ACTIVE{Hostname="n1"} 0.5\n')
    assert AM.utilisation_by_device(parse_exposition(text), NVIDIA) == {GPU1: 14.0}


def test_all_mig_page_without_memory_metrics_fails():
    # Some exporter versions export no FB_* for GPU instances (NVIDIA/dcgm-exporter 380, 512):
    # the memory MUST quantity is then missing, and the check says so.
    report = AM.check_device_metrics(parse_exposition(MIG_GPU0), NVIDIA)
    assert not report.ok
    assert report.reason == "no memory_used metric (DCGM_FI_DEV_FB_USED)"
    assert report.devices == INSTANCES



def test_collected_utilisation_needs_device_labelled_series():
    doc = json.loads((REC / "prometheus" / "api-query-instant-vector.json").read_text())
    doc["data"]["result"] = [
        {"metric": {"__name__": "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "UUID": H100, "GPU_I_ID": "7",
                    "Hostname": "gsrh100-074"}, "value": [1435781451.781, "0"]},
        {"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "UUID": GPU1,
                    "Hostname": "gsrh100-074"}, "value": [1435781451.781, "14"]}]
    ok, reason = AM.collected_utilisation(parse_query_response(doc), NVIDIA)
    assert ok, reason
    assert reason == ("2 utilisation series (DCGM_FI_DEV_GPU_UTIL, "
                      "DCGM_FI_PROF_GR_ENGINE_ACTIVE) with a device label collected from "
                      "gsrh100-074")
    ok, reason = AM.collected_utilisation(UP, NVIDIA)
    assert not ok
    assert reason == ("no series of DCGM_FI_DEV_GPU_UTIL, DCGM_FI_PROF_GR_ENGINE_ACTIVE in the "
                      "platform's Prometheus (2 other series)")


# --- the exporter and the evidence ------------------------------------------------------------


def service(name: str, namespace: str, selector: dict[str, str] | None = None,
            port: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": selector, "ports": [port or {"port": 9400}]}}


def exporter_pod(name: str, node: str, phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "gpu-operator"},
            "spec": {"nodeName": node}, "status": {"phase": phase}}


def test_exporter_service_is_the_first_that_selects_pods():
    services = [service("nvidia-dcgm-exporter", "a-ns"),  # selects nothing: no pods behind it
                service("nvidia-dcgm-exporter", "z-ns", {"app": "dcgm"}),
                service("dcgm-exporter", "b-ns", {"app": "dcgm", "tier": "x"}),
                service("node-exporter", "a-ns", {"app": "node"})]
    found = AM.exporter_service(services, "dcgm-exporter")
    assert found is services[2]
    assert AM.pod_selector(found) == "app=dcgm,tier=x"
    assert AM.exporter_service(services[3:], "dcgm-exporter") is None


def test_metrics_port_prefers_the_target_port():
    assert AM.metrics_port(service("e", "n", port={"port": 9400, "targetPort": "metrics"})) \
        == "metrics"
    assert AM.metrics_port(service("e", "n", port={"port": 9400})) == 9400


def test_only_running_exporters_on_accelerator_nodes_count_sorted_by_node():
    pods = [exporter_pod("e-3", "gpu-3"), exporter_pod("e-1", "gpu-1"),
            exporter_pod("e-2", "gpu-2", "Pending"), exporter_pod("e-cpu", "cpu-1")]
    running = AM.running_on(pods, ["gpu-1", "gpu-2", "gpu-3"])
    assert [p["metadata"]["name"] for p in running] == ["e-1", "e-3"]
    assert AM.running_on(pods, ["gpu-9"]) == []


def test_proxy_path_reaches_the_page_through_the_api_server():
    assert AM.proxy_path(exporter_pod("e-1", "gpu-1"), 9400) == (
        "/api/v1/namespaces/gpu-operator/pods/e-1:9400/proxy/metrics")


def test_page_excerpt_keeps_the_profiles_sample_lines_only():
    wanted = AM.profile_names(NVIDIA)
    assert wanted[:3] == ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
                          "DCGM_FI_DEV_FB_USED"]
    excerpt = AM.page_excerpt(L40S_TEXT, wanted)
    assert [line.split("{", 1)[0] for line in excerpt] == [
        "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"]
    assert excerpt[2].endswith(f'UUID="{UUID}",pci_bus_id="00000000:00:07.0",device="nvidia0",'
                               'modelName="NVIDIA L40S",Hostname="gpu1-wl8sg",'
                               'DCGM_FI_DRIVER_VERSION="595.58.03"} 0')
    assert AM.page_excerpt(L40S_TEXT, wanted, limit=2) == excerpt[:2]
    assert AM.page_excerpt("# HELP x\nother_metric 1\n", wanted) == []


def test_device_lines():
    assert AM.device_lines({"GPU-b": 2.0, "GPU-a": 62.5}) == "GPU-a: 62.5\nGPU-b: 2"
    assert AM.device_lines({}) == "(none)"


def test_load_pod_asks_for_one_accelerator_and_stops_by_itself():
    profile = get_profile("nvidia")
    plugin = AM.load_pod("ns", allocations.Allocation("device-plugin", profile,
                                                      resource="nvidia.com/gpu"),
                         90, None, "img:1", "nbody -benchmark")
    [ctr] = plugin["spec"]["containers"]
    assert (plugin["metadata"]["name"], ctr["image"]) == ("gpu-load", "img:1")
    assert ctr["command"] == ["sh", "-c", "end=$(( $(date +%s) + 90 )); while [ $(date +%s) "
                              "-lt $end ]; do nbody -benchmark 2>&1 | tail -1; done"]
    assert ctr["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert "resourceClaims" not in plugin["spec"]
    assert "runtimeClassName" not in plugin["spec"]
    dra = AM.load_pod("ns", allocations.Allocation("dra", profile,
                                                   device_class="gpu.nvidia.com"),
                      30, "nvidia", "img:1", "nbody")
    assert dra["spec"]["resourceClaims"] == [{"name": "accel",
                                              "resourceClaimTemplateName": "one-device"}]
    assert dra["spec"]["containers"][0]["resources"] == {"claims": [{"name": "accel"}]}
    assert dra["spec"]["runtimeClassName"] == "nvidia"


def test_utilisation_query_and_rows():
    assert AM.utilisation_query(NVIDIA) == (
        '{__name__=~"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_PROF_GR_ENGINE_ACTIVE"}')
    doc = json.loads((REC / "prometheus" / "api-query-instant-vector.json").read_text())
    doc["data"]["result"] = [
        {"metric": {"__name__": "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "UUID": H100, "GPU_I_ID": "7",
                    "Hostname": "gsrh100-074"}, "value": [1435781451.781, "0.5"]},
        {"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "UUID": GPU1},
         "value": [1435781451.781, "14"]}]
    result = parse_query_response(doc)
    # name, Hostname, then the device labels (UUID, gpu, device), GPU_I_ID, value
    assert AM.series_rows(result, NVIDIA) == [
        ["DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gsrh100-074", H100, "", "", "7", "0.5"],
        ["DCGM_FI_DEV_GPU_UTIL", "", GPU1, "", "", "", "14"]]
    assert AM.series_rows(result, NVIDIA, limit=1) == AM.series_rows(result, NVIDIA)[:1]
