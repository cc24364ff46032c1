"""workload_sandboxing decisions on realistic probe outputs (gVisor, Kata, and a runc impostor)
and on synthetic RuntimeClass and Node objects."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aiconformance.parsers import parse_key_values
from pytest_aiconformance.requirements.workload_sandboxing import (
    KNOWN_SANDBOX_NAMES,
    PROBE_KEYS,
    PROBE_SCRIPT,
    first_usable,
    hostname,
    judge,
    no_sandbox_class,
    no_usable_node,
    runtime_class_excerpt,
    sandbox_classes,
    sandbox_kind,
    tolerates,
    usable_nodes,
)

RUNC_DEV = ("core fd full mqueue null ptmx pts random shm stderr stdin stdout termination-log "
            "tty urandom zero")
HOST = (
    "KERNEL_RELEASE=5.15.0-1057-azure\n"
    "PROC_VERSION=Linux version 5.15.0-1057-azure (buildd@lcy02-amd64-033) (gcc (Ubuntu "
    "11.4.0-1ubuntu1~22.04) 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38) #65-Ubuntu SMP Tue "
    "Jan 16 20:31:47 UTC 2024\n"
    "PROC_PIDS=3\n"
    f"DEV_ENTRIES={RUNC_DEV} \n"
)
# gVisor's sentry reports a fixed kernel and serves its own /dev (fuse and net/tun included).
GVISOR = (
    "KERNEL_RELEASE=4.4.0\n"
    "PROC_VERSION=Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016\n"
    "PROC_PIDS=3\n"
    "DEV_ENTRIES=fd full fuse net null ptmx pts random shm stderr stdin stdout "
    "termination-log tty urandom zero \n"
)
# Kata runs the pod in a VM with its own guest kernel.
KATA = (
    "KERNEL_RELEASE=6.1.62\n"
    "PROC_VERSION=Linux version 6.1.62 (root@kata-builder) (gcc (Ubuntu 11.4.0-1ubuntu1~22.04) "
    "11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38) #1 SMP Wed Nov 22 10:12:05 UTC 2023\n"
    "PROC_PIDS=4\n"
    f"DEV_ENTRIES={RUNC_DEV} \n"
)


def out(text: str) -> dict[str, list[str]]:
    return parse_key_values(text)


@pytest.mark.parametrize(("sandboxed", "kernel"), [(GVISOR, "4.4.0"), (KATA, "6.1.62")])
def test_own_kernel_passes(sandboxed: str, kernel: str) -> None:
    decision = judge(out(HOST), out(sandboxed), "gvisor")
    assert decision.isolated, decision.reason
    assert not decision.error
    assert f"runs on its own kernel {kernel}" in decision.reason
    assert "not the host's 5.15.0-1057-azure" in decision.reason


def test_kata_guest_with_host_release_but_own_build_passes() -> None:
    same_release = KATA.replace("6.1.62", "5.15.0-1057-azure")
    assert judge(out(HOST), out(same_release), "kata-qemu").isolated


def test_runc_impostor_fails_with_reason() -> None:
    decision = judge(out(HOST), out(HOST), "kata-qemu")
    assert not decision.isolated
    assert not decision.error
    assert decision.reason.startswith(
        "a pod with RuntimeClass kata-qemu runs on the host's kernel (5.15.0-1057-azure, ")
    assert "its handler runs containers like runc, not in a sandbox" in decision.reason


def test_host_devices_seen_only_in_the_sandbox_fail() -> None:
    leaky = GVISOR.replace("DEV_ENTRIES=", "DEV_ENTRIES=nvidia0 nvidiactl kvm ")
    decision = judge(out(HOST), out(leaky), "gvisor")
    assert not decision.isolated
    assert decision.reason == ("a pod with RuntimeClass gvisor sees device nodes a pod without "
                               "it does not: /dev/kvm, /dev/nvidia0, /dev/nvidiactl")


def test_same_kernel_and_extra_devices_both_said() -> None:
    leaky = HOST.replace("DEV_ENTRIES=", "DEV_ENTRIES=nvidia0 ")
    reason = judge(out(HOST), out(leaky), "gvisor").reason
    assert "host's kernel" in reason
    assert "/dev/nvidia0" in reason


@pytest.mark.parametrize(("control", "sandboxed", "expected"), [
    ("", GVISOR, "cannot decide: the control pod's output lacks KERNEL_RELEASE, PROC_VERSION, "
                 "PROC_PIDS, DEV_ENTRIES"),
    (HOST, "KERNEL_RELEASE=4.4.0\nPROC_VERSION=\nPROC_PIDS=3\n",
     "cannot decide: the sandboxed pod's output lacks PROC_VERSION, DEV_ENTRIES"),
    (HOST, GVISOR.replace("PROC_PIDS=3", "PROC_PIDS=many"),
     "cannot decide: the sandboxed pod's PROC_PIDS 'many' is not a count"),
])
def test_missing_or_bad_output_is_an_error(control: str, sandboxed: str, expected: str) -> None:
    decision = judge(out(control), out(sandboxed), "gvisor")
    assert decision.error
    assert not decision.isolated
    assert decision.reason == expected


def test_probe_script_prints_every_key() -> None:
    for key in PROBE_KEYS:
        assert f'echo "{key}=' in PROBE_SCRIPT


def test_sandbox_handlers_recognised() -> None:
    assert sandbox_kind("runsc") == "gVisor"
    assert sandbox_kind("gvisor") == "gVisor"
    assert sandbox_kind("kata-qemu") == "Kata Containers"
    assert sandbox_kind("kata") == "Kata Containers"
    for handler in ("runc", "nvidia", "crun", "", "youki", "nvidia-cdi"):
        assert sandbox_kind(handler) is None, handler
    assert {"gvisor", "kata-qemu", "kata-fc", "kata-clh"} <= set(KNOWN_SANDBOX_NAMES)


def rc(name: str, handler: str, **scheduling: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name}, "handler": handler}
    if scheduling:
        obj["scheduling"] = scheduling
    return obj


def test_sandbox_classes_by_handler_first_then_known_name() -> None:
    found = sandbox_classes([rc("nvidia", "nvidia"), rc("runc", "runc"),
                             rc("kata-fc", "runc"), rc("gvisor", "runsc"),
                             rc("kata-mshv-vm-isolation", "kata")])
    assert [(c.name, c.kind, c.by_handler) for c in found] == [
        ("gvisor", "gVisor", True),
        ("kata-mshv-vm-isolation", "Kata Containers", True),
        ("kata-fc", "Kata Containers", False),
    ]
    assert found[2].describe() == ("RuntimeClass kata-fc (handler runc: Kata Containers by its "
                                   "name)")
    assert sandbox_classes([rc("nvidia", "nvidia"), rc("crun", "crun")]) == []


def node(name: str, labels: dict[str, str] | None = None,
         taints: list[dict[str, str]] | None = None, ready: str = "True",
         unschedulable: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_usable_nodes_follow_selector_taints_and_readiness() -> None:
    cp_taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    sandbox_taint = {"key": "sandbox.gke.io/runtime", "value": "gvisor", "effect": "NoSchedule"}
    nodes = [
        node("cp", taints=[cp_taint]),
        node("plain"),
        node("sandbox-a", {"sandbox.gke.io/runtime": "gvisor"}, [sandbox_taint]),
        node("sandbox-b", {"sandbox.gke.io/runtime": "gvisor"}, ready="False"),
        node("sandbox-c", {"sandbox.gke.io/runtime": "gvisor"}, unschedulable=True),
        node("prefer", taints=[{"key": "x", "effect": "PreferNoSchedule"}]),
    ]
    assert usable_nodes(nodes, rc("kata", "kata"), []) == ["plain", "prefer"]
    gke = rc("gvisor", "gvisor", nodeSelector={"sandbox.gke.io/runtime": "gvisor"},
             tolerations=[{"key": "sandbox.gke.io/runtime", "operator": "Equal",
                           "value": "gvisor", "effect": "NoSchedule"}])
    assert usable_nodes(nodes, gke, []) == ["sandbox-a"]
    assert usable_nodes(nodes, rc("gvisor", "runsc", nodeSelector={"sandbox.gke.io/runtime":
                                                                   "gvisor"}), []) == []


@pytest.mark.parametrize(("toleration", "ok"), [
    ({"operator": "Exists"}, True),
    ({"key": "k", "operator": "Exists"}, True),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "k", "value": "v"}, True),
    ({"key": "k", "value": "w", "effect": "NoSchedule"}, False),
    ({"key": "other", "operator": "Exists"}, False),
])
def test_tolerates(toleration: dict[str, str], ok: bool) -> None:
    assert tolerates([toleration], {"key": "k", "value": "v", "effect": "NoSchedule"}) is ok


GKE_SANDBOX = rc("gvisor", "gvisor", nodeSelector={"sandbox.gke.io/runtime": "gvisor"},
                 tolerations=[{"key": "sandbox.gke.io/runtime", "operator": "Equal",
                               "value": "gvisor", "effect": "NoSchedule"}])


def test_first_usable_takes_the_first_candidate_a_node_admits() -> None:
    nodes = [node("plain-b"), node("plain-a"),
             node("sandbox", {"sandbox.gke.io/runtime": "gvisor"},
                  [{"key": "sandbox.gke.io/runtime", "value": "gvisor", "effect": "NoSchedule"}])]
    classes = {"gvisor": GKE_SANDBOX, "kata-fc": rc("kata-fc", "runc")}
    candidates = sandbox_classes(list(classes.values()))
    assert first_usable(candidates, classes, nodes, []) == (candidates[0], "sandbox")
    # Without the sandbox node, the class found by its name is tried on the first plain node.
    assert first_usable(candidates, classes, nodes[:2], []) == (candidates[1], "plain-a")


def test_first_usable_none_when_no_node_admits_any() -> None:
    candidates = sandbox_classes([GKE_SANDBOX])
    assert first_usable(candidates, {"gvisor": GKE_SANDBOX}, [node("plain")], []) is None
    assert no_usable_node(candidates) == (
        "no Ready, schedulable node admits a sandbox RuntimeClass (its nodeSelector, taints and "
        "tolerations): RuntimeClass gvisor (handler gvisor: gVisor by its handler)")


def test_no_sandbox_class_lists_the_runtime_classes() -> None:
    assert no_sandbox_class(["runc", "nvidia"]) == (
        "no RuntimeClass offers a sandbox: none has a gVisor (runsc) or Kata handler or a known "
        "sandbox name (RuntimeClasses: nvidia, runc)")
    assert no_sandbox_class([]).endswith("(RuntimeClasses: none)")


def test_hostname_label_else_node_name() -> None:
    nodes = [node("ip-10-0-0-1.ec2.internal", {"kubernetes.io/hostname": "ip-10-0-0-1"}),
             node("bare")]
    assert hostname(nodes, "ip-10-0-0-1.ec2.internal") == "ip-10-0-0-1"
    assert hostname(nodes, "bare") == "bare"


def test_runtime_class_excerpt_keeps_what_a_reviewer_needs() -> None:
    full = {**GKE_SANDBOX, "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": "gvisor", "uid": "x", "resourceVersion": "7"},
            "overhead": {"podFixed": {"memory": "50Mi"}}}
    assert runtime_class_excerpt(full) == {
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"},
        "handler": "gvisor", "overhead": {"podFixed": {"memory": "50Mi"}},
        "scheduling": GKE_SANDBOX["scheduling"]}
    assert runtime_class_excerpt(rc("kata", "kata")) == {
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "kata"},
        "handler": "kata"}
