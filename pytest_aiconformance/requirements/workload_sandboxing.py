"""workload_sandboxing decisions: which RuntimeClasses claim a sandbox, and whether one is.

A sandbox (gVisor, Kata Containers) isolates a pod from the host node's kernel, so the only
honest proof is the kernel a pod sees: a control pod without the RuntimeClass and a sandboxed
pod with it run on the same node and report `uname -r`, `/proc/version`, the PIDs they can see
and their /dev entries. The sandboxed pod must see another kernel (gVisor's sentry, Kata's
guest kernel) and no device node the control pod does not see. A RuntimeClass named like a
sandbox whose handler is really runc sees the host's kernel and fails. Pure functions only,
unit-tested on realistic outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# Handler names (the CRI runtime handler a RuntimeClass points at) per sandbox, as globs.
SANDBOX_HANDLERS: dict[str, tuple[str, ...]] = {
    "gVisor": ("runsc", "runsc-*", "gvisor", "gvisor-*"),
    "Kata Containers": ("kata*",),
}

# RuntimeClass names that installers and managed platforms give their sandboxes; a class
# found only by its name is still tried, so one that is really runc fails instead of hiding.
KNOWN_SANDBOX_NAMES: dict[str, str] = {
    "gvisor": "gVisor",
    "runsc": "gVisor",
    "kata": "Kata Containers",
    "kata-qemu": "Kata Containers",
    "kata-fc": "Kata Containers",
    "kata-clh": "Kata Containers",
}

# /dev entries a sandbox kernel serves itself (gVisor's sentry implements /dev/fuse and
# /dev/net/tun): present in the sandboxed pod but not host devices.
SANDBOX_OWN_DEVICES = frozenset({"fuse", "net"})

# What both pods run (POSIX sh, busybox applets only); one KEY=VALUE line per fact.
PROBE_SCRIPT = (
    'echo "KERNEL_RELEASE=$(uname -r)"\n'
    'echo "PROC_VERSION=$(head -n 1 /proc/version 2>/dev/null)"\n'
    "n=0\n"
    'for p in /proc/[0-9]*; do [ -d "$p" ] && n=$((n + 1)); done\n'
    'echo "PROC_PIDS=$n"\n'
    "echo \"DEV_ENTRIES=$(ls -A /dev 2>/dev/null | tr '\\n' ' ')\"\n"
)
PROBE_KEYS = ("KERNEL_RELEASE", "PROC_VERSION", "PROC_PIDS", "DEV_ENTRIES")


def sandbox_kind(handler: str) -> str | None:
    """The sandbox a CRI handler name stands for ('gVisor', 'Kata Containers'), else None."""
    for kind, patterns in SANDBOX_HANDLERS.items():
        if any(fnmatchcase(handler, p) for p in patterns):
            return kind
    return None


@dataclass(frozen=True)
class SandboxClass:
    """A RuntimeClass that claims a sandbox, and what the claim rests on."""

    name: str
    handler: str
    kind: str
    by_handler: bool  # False: only its name is a known sandbox name

    def describe(self) -> str:
        basis = "handler" if self.by_handler else "name"
        return f"RuntimeClass {self.name} (handler {self.handler}: {self.kind} by its {basis})"


def sandbox_classes(runtime_classes: Sequence[Mapping[str, Any]]) -> list[SandboxClass]:
    """The RuntimeClasses that claim a sandbox, those named by their handler first."""
    found = []
    for rc in runtime_classes:
        name = str((rc.get("metadata") or {}).get("name", ""))
        handler = str(rc.get("handler", ""))
        kind = sandbox_kind(handler)
        if kind is not None:
            found.append(SandboxClass(name, handler, kind, True))
        elif name in KNOWN_SANDBOX_NAMES:
            found.append(SandboxClass(name, handler, KNOWN_SANDBOX_NAMES[name], False))
    return sorted(found, key=lambda c: (not c.by_handler, c.name))


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether any toleration matches the taint, with the API server's matching rules."""
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol.get("key") == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and \
                (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def usable_nodes(nodes: Sequence[Mapping[str, Any]], runtime_class: Mapping[str, Any],
                 pod_tolerations: Sequence[Mapping[str, Any]]) -> list[str]:
    """Nodes a pod of this RuntimeClass can run on: Ready, schedulable, admitted, tolerated.

    The RuntimeClass's scheduling.nodeSelector must match and its scheduling.tolerations add
    to the pod's (the RuntimeClass admission controller merges both into the pod).
    """
    scheduling = runtime_class.get("scheduling") or {}
    selector = scheduling.get("nodeSelector") or {}
    tolerations = [*pod_tolerations, *(scheduling.get("tolerations") or [])]
    out = []
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        spec = node.get("spec") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (node.get("status") or {}).get("conditions") or [])
        blocking = [t for t in spec.get("taints") or []
                    if t.get("effect") in ("NoSchedule", "NoExecute")
                    and not tolerates(tolerations, t)]
        if ready and not spec.get("unschedulable") and not blocking and \
                all(labels.get(k) == v for k, v in selector.items()):
            out.append(str(node["metadata"]["name"]))
    return sorted(out)


@dataclass(frozen=True)
class KernelView:
    """What one probe container saw of its kernel."""

    kernel_release: str
    proc_version: str
    pids: int
    devices: frozenset[str]


class ProbeOutputError(ValueError):
    """A probe's output lacks what the decision needs: nothing can be decided from it."""


def read_view(values: Mapping[str, Sequence[str]], who: str) -> KernelView:
    """The KernelView in a probe's KEY=VALUE output; ProbeOutputError names what is missing."""
    last = {k: values[k][-1].strip() for k in PROBE_KEYS if values.get(k)}
    missing = [k for k in PROBE_KEYS if not last.get(k)]
    if missing:
        raise ProbeOutputError(f"the {who} pod's output lacks {', '.join(missing)}")
    if not last["PROC_PIDS"].isdigit():
        raise ProbeOutputError(f"the {who} pod's PROC_PIDS {last['PROC_PIDS']!r} is not a count")
    return KernelView(last["KERNEL_RELEASE"], last["PROC_VERSION"], int(last["PROC_PIDS"]),
                      frozenset(last["DEV_ENTRIES"].split()))


@dataclass(frozen=True)
class SandboxDecision:
    """Whether the sandboxed pod is isolated from the host kernel, and why (one sentence)."""

    isolated: bool
    reason: str
    error: bool = False  # the output was unusable, so nothing was decided


def judge(control: Mapping[str, Sequence[str]], sandboxed: Mapping[str, Sequence[str]],
          runtime_class: str) -> SandboxDecision:
    """Another kernel than the control pod's, and no device node the control pod lacks."""
    try:
        host = read_view(control, "control")
        box = read_view(sandboxed, "sandboxed")
    except ProbeOutputError as exc:
        return SandboxDecision(False, f"cannot decide: {exc}", error=True)
    problems = []
    if box.kernel_release == host.kernel_release and box.proc_version == host.proc_version:
        problems.append(
            f"a pod with RuntimeClass {runtime_class} runs on the host's kernel "
            f"({host.kernel_release}, {host.proc_version!r}), the same as a pod without it: "
            "its handler runs containers like runc, not in a sandbox")
    extra = sorted(box.devices - host.devices - SANDBOX_OWN_DEVICES)
    if extra:
        problems.append(
            f"a pod with RuntimeClass {runtime_class} sees device nodes a pod without it does "
            f"not: {', '.join('/dev/' + d for d in extra)}")
    if problems:
        return SandboxDecision(False, "; ".join(problems))
    return SandboxDecision(True, (
        f"a pod with RuntimeClass {runtime_class} runs on its own kernel {box.kernel_release} "
        f"({box.proc_version!r}), not the host's {host.kernel_release} "
        f"({host.proc_version!r}); it sees {box.pids} PIDs (the control pod {host.pids}) "
        "and no device node the control pod does not"))


HOSTNAME_LABEL = "kubernetes.io/hostname"


def no_sandbox_class(runtime_class_names: Iterable[str]) -> str:
    """Why the requirement is not implemented: no RuntimeClass claims a sandbox."""
    names = ", ".join(sorted(runtime_class_names)) or "none"
    return ("no RuntimeClass offers a sandbox: none has a gVisor (runsc) or Kata handler or a "
            f"known sandbox name (RuntimeClasses: {names})")


def first_usable(candidates: Sequence[SandboxClass],
                 runtime_classes: Mapping[str, Mapping[str, Any]],
                 nodes: Sequence[Mapping[str, Any]],
                 pod_tolerations: Sequence[Mapping[str, Any]]) -> tuple[SandboxClass, str] | None:
    """The first candidate (in order) that some node admits, with the first such node by name;
    None when no node admits any."""
    for cand in candidates:
        usable = usable_nodes(nodes, runtime_classes[cand.name], pod_tolerations)
        if usable:
            return cand, usable[0]
    return None


def no_usable_node(candidates: Sequence[SandboxClass]) -> str:
    """Why no sandbox class can be tried: no node admits any of them."""
    return ("no Ready, schedulable node admits a sandbox RuntimeClass (its nodeSelector, "
            "taints and tolerations): " + "; ".join(c.describe() for c in candidates))


def hostname(nodes: Sequence[Mapping[str, Any]], node_name: str) -> str:
    """The node's kubernetes.io/hostname label (what a nodeSelector pins to), else its name."""
    node = next(n for n in nodes if n["metadata"]["name"] == node_name)
    return str(node["metadata"].get("labels", {}).get(HOSTNAME_LABEL, node_name))


def runtime_class_excerpt(rc: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a RuntimeClass a reviewer needs: name, handler, overhead, scheduling."""
    out = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
           "metadata": {"name": rc["metadata"]["name"]}, "handler": rc.get("handler")}
    for key in ("overhead", "scheduling"):
        if rc.get(key):
            out[key] = rc[key]
    return out
