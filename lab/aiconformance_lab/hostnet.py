"""Host state of the lab's real node: bridge, firewall guard, cgroups, sysctls, and its removal.

A real node (kubelet + containerd + runc + CNI + kube-proxy) changes the host it runs on.  Every
change is made under a name of the lab's own (bridge ``aiclab0`` whose alias is the state
directory, nft table ``inet aiclab``, cgroup ``aiclab`` in every hierarchy), or recorded before
it is made (the kernel tunables the kubelet sets, directories at fixed paths that did not exist)
in ``<state>/node/host.json``, so that ``down`` -- or the next ``up`` after a killed session --
puts the host back exactly as it was and touches nothing else.

Traffic stays on this machine: pods get routes only to the pod subnet and the Service range
(no default route), forwarding is switched on for the bridge alone, and the guard table drops
anything forwarded from the bridge to another interface.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LabError

REAL_NODE_NAME = "aic-real-0"
BRIDGE = "aiclab0"
POD_SUBNET = "10.213.0.0/24"
NODE_IP = "10.213.0.1"
SERVICE_CIDR = "10.96.0.0/16"
GUARD_TABLE = "aiclab"  # nft table in the inet family
CGROUP_NAME = "aiclab"
# kube-proxy's nftables mode owns these tables (fixed names); the lab removes them only when
# its own node created them.
KUBE_PROXY_TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"))
# The kubelet's device-plugin directory is a constant of the kubelet API, whatever --root-dir.
DEVICE_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
# Fixed paths the real node writes outside the state directory: the kubelet's legacy log
# symlinks and containerd's shim sockets.
CONTAINER_LOG_LINKS = Path("/var/log/containers")
SHIM_SOCKET_DIR = Path("/run/containerd/s")
# Kernel tunables the kubelet sets at start (protectKernelDefaults: false): restored on down.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Host programs the real node needs (Debian packages runc, nftables, iproute2,
# containernetworking-plugins).
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
CNI_PLUGINS = ("bridge", "host-local", "loopback")
HOST_TOOLS = ("runc", "nft", "ip")
# Host values the node's components change, recorded at set-up and restored on clean-up: the
# kubelet's tunables, and IPv4 forwarding (the CNI bridge plugin switches it on globally).
RESTORED_SYSCTLS = (*KUBELET_SYSCTLS, "net/ipv4/ip_forward")
_RECORD = "host.json"


def _run(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        raise LabError(f"cannot run {' '.join(args)}: {err}") from err
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LabError(f"{' '.join(args)} failed: {detail[-1] if detail else result.returncode}")
    return result


def cni_bin_dir() -> Path | None:
    """The directory holding the CNI plugins the node uses, or None."""
    for directory in CNI_BIN_DIRS:
        if all((directory / p).is_file() for p in CNI_PLUGINS):
            return directory
    return None


# The kubelet's deepest socket under the state directory ("node/kubelet/root/pod-resources/"
# and ten digits) must fit a Unix socket path (108 bytes with its terminating NUL).
_SOCKET_TAIL = len("/node/kubelet/root/pod-resources/0123456789")
MAX_STATE_DIR = 107 - _SOCKET_TAIL


def missing_prerequisite(state_dir: Path | None = None) -> str | None:
    """Why this host (or this state directory) cannot run a real node, in one line, or None."""
    if state_dir is not None and len(str(state_dir)) > MAX_STATE_DIR:
        return (f"the real node's sockets need a state directory path of at most "
                f"{MAX_STATE_DIR} characters ({state_dir} has {len(str(state_dir))}); "
                "use a shorter --state-dir")
    if os.geteuid() != 0:
        return "a real node needs root (network namespaces, bridge, cgroups, mounts)"
    try:
        filesystems = Path("/proc/filesystems").read_text()
    except OSError:
        filesystems = ""
    if "overlay" not in filesystems:
        return "a real node needs the overlay filesystem (containerd's snapshotter)"
    if not Path("/proc/self/ns/net").exists():
        return "a real node needs network namespaces"
    if not any(Path(m).is_dir() for m in _cgroup_mounts()):
        return "a real node needs cgroups mounted under /sys/fs/cgroup"
    tools = [t for t in HOST_TOOLS if shutil.which(t) is None]
    if tools:
        return (f"a real node needs {', '.join(tools)} on PATH (Debian: apt-get install runc "
                "nftables iproute2 containernetworking-plugins)")
    if cni_bin_dir() is None:
        return ("a real node needs the CNI plugins bridge, host-local and loopback in "
                f"{' or '.join(map(str, CNI_BIN_DIRS))} (Debian: containernetworking-plugins)")
    return None


@dataclass(frozen=True)
class HostNet:
    """The host changes of the real node of the lab in ``state_root``."""

    state_root: Path

    @property
    def node_dir(self) -> Path:
        """Everything the real node writes that can live under the state directory."""
        return self.state_root / "node"

    @property
    def record(self) -> Path:
        return self.node_dir / _RECORD

    # ---- set-up ----------------------------------------------------------------------------
    def setup(self) -> None:
        """Bridge, guard table, cgroups and the recorded host values; undone by ``cleanup``."""
        owner = bridge_owner()
        if owner is not None and owner != str(self.state_root):
            raise LabError(
                f"another lab's real node runs on this machine (bridge {BRIDGE} belongs to "
                f"{owner or 'something else'}); one real node per machine: run its 'down' first"
            )
        if str(DEVICE_PLUGIN_DIR / "kubelet.sock") in _listening_unix_paths():
            raise LabError(
                f"a kubelet already serves {DEVICE_PLUGIN_DIR / 'kubelet.sock'} on this machine;"
                " the lab's real node would take its device plugins over"
            )
        for family, table in KUBE_PROXY_TABLES:
            if _nft_table_exists(family, table):
                raise LabError(
                    f"nft table {family} {table} exists: a kube-proxy of another cluster runs "
                    "here, and a real node of the lab would take it over"
                )
        self.node_dir.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {
            "sysctls": {k: _read_sysctl(k) for k in RESTORED_SYSCTLS},
            "created_dirs": [],
        }
        for directory in (DEVICE_PLUGIN_DIR, CONTAINER_LOG_LINKS, SHIM_SOCKET_DIR):
            record["created_dirs"] += [str(d) for d in _missing_parents(directory)]
        # Written before any change: a session killed half-way is still cleaned up.
        self.record.write_text(json.dumps(record, indent=2))
        for directory in (DEVICE_PLUGIN_DIR, CONTAINER_LOG_LINKS):
            directory.mkdir(parents=True, exist_ok=True)
        self._bridge()
        self._guard(forwarding_was_on=record["sysctls"]["net/ipv4/ip_forward"] == "1")
        self._cgroups()

    def _bridge(self) -> None:
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        _run(["ip", "link", "set", BRIDGE, "alias", str(self.state_root)])
        _run(["ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])
        # Forwarding for packets that arrive on the bridge only; the host's global
        # net.ipv4.ip_forward stays as it is.
        _write_sysctl(f"net/ipv4/conf/{BRIDGE}/forwarding", "1")

    def _guard(self, *, forwarding_was_on: bool) -> None:
        """Forwarding stays within the bridge.  Where the host forwarded nothing before (the
        CNI bridge plugin turns IPv4 forwarding on globally), nothing else is forwarded now
        either; otherwise the host's own forwarding is left as it was."""
        others = f'    iifname "{BRIDGE}" drop\n' if forwarding_was_on else "    drop\n"
        rules = (
            f"table inet {GUARD_TABLE} {{\n"
            f'  comment "aic-lab real node of {self.state_root}"\n'
            "  chain forward {\n"
            "    type filter hook forward priority filter; policy accept;\n"
            f'    iifname "{BRIDGE}" oifname "{BRIDGE}" accept\n'
            f"{others}"
            "  }\n"
            "}\n"
        )
        try:
            subprocess.run(["nft", "-f", "-"], input=rules, text=True, capture_output=True,
                           check=True, timeout=30)
        except subprocess.CalledProcessError as err:
            raise LabError(f"cannot create nft table inet {GUARD_TABLE}: {err.stderr.strip()}"
                           ) from err
        except (OSError, subprocess.SubprocessError) as err:
            raise LabError(f"cannot run nft: {err}") from err

    def _cgroups(self) -> None:
        """The kubelet's cgroup root (``cgroupRoot: /aiclab``) in every hierarchy."""
        for mount in _cgroup_mounts():
            path = Path(mount) / CGROUP_NAME
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            if (path / "cpuset.cpus").exists():  # cgroup v1 cpuset children start empty
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not (path / name).read_text().strip():
                        (path / name).write_text((Path(mount) / name).read_text())

    # ---- clean-up --------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Undo everything ``setup`` and the node's processes left; return what was removed.

        Idempotent, and safe when nothing of the lab is left.  Processes of the node must be
        stopped first (the lab's pid files); containers left by killed shims are killed here
        through the lab's cgroups.
        """
        removed: list[str] = []
        ours = bridge_owner() == str(self.state_root)
        record = self._load_record()
        if not ours and record is None:
            removed += self._unmount()
            return removed
        killed = self._kill_cgroup_procs()
        if killed:
            removed.append(f"{killed} container processes")
        removed += self._unmount()
        removed += self._remove_cgroups()
        if ours:
            _run(["ip", "link", "del", BRIDGE], check=False)
            removed.append(f"bridge {BRIDGE}")
            for family, table in KUBE_PROXY_TABLES:
                if _nft_table_exists(family, table):
                    _run(["nft", "delete", "table", family, table], check=False)
                    removed.append(f"nft table {family} {table}")
        if _nft_table_exists("inet", GUARD_TABLE) and _guard_owner() == str(self.state_root):
            _run(["nft", "delete", "table", "inet", GUARD_TABLE], check=False)
            removed.append(f"nft table inet {GUARD_TABLE}")
        removed += self._remove_links()
        if record is not None:
            for key, value in record.get("sysctls", {}).items():
                if value is not None and _read_sysctl(key) != value:
                    _write_sysctl(key, value)
                    removed.append(f"sysctl {key} restored to {value}")
            for directory in reversed(record.get("created_dirs", [])):
                path = Path(directory)
                with contextlib.suppress(OSError):
                    _clear_stale_sockets(path)
                    if path == DEVICE_PLUGIN_DIR:  # The kubelet's own state in a dir we made.
                        (path / "kubelet_internal_checkpoint").unlink(missing_ok=True)
                    path.rmdir()  # Only when empty: nothing of anyone else goes.
                    removed.append(f"directory {path}")
            self.record.unlink(missing_ok=True)
        return removed

    def _load_record(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _kill_cgroup_procs(self) -> int:
        """SIGKILL every process in the lab's cgroups (containers of a killed session)."""
        killed = 0
        for _ in range(20):
            pids = {pid for mount in _cgroup_mounts()
                    for pid in _cgroup_pids(Path(mount) / CGROUP_NAME)}
            pids.discard(os.getpid())
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            time.sleep(0.1)  # The kernel empties the cgroups asynchronously: polling only.
        return killed

    def _remove_cgroups(self) -> list[str]:
        removed = []
        for mount in _cgroup_mounts():
            root = Path(mount) / CGROUP_NAME
            if not root.is_dir():
                continue
            # Deepest first: a cgroup directory can only go once its children are gone.
            dirs = sorted((p for p in root.rglob("*") if p.is_dir()),
                          key=lambda p: len(p.parts), reverse=True)
            for path in [*dirs, root]:
                for _ in range(50):
                    try:
                        path.rmdir()
                        break
                    except OSError as err:
                        if err.errno == errno.ENOENT:
                            break
                        if err.errno != errno.EBUSY:
                            raise LabError(f"cannot remove cgroup {path}: {err}") from err
                        time.sleep(0.1)  # Exiting processes still leave it: polling only.
            removed.append(f"cgroup {root}")
        return removed

    def _unmount(self) -> list[str]:
        """Unmount every mount under the node directory (overlays, netns, volumes), deepest
        first."""
        prefix = str(self.node_dir) + "/"
        points = [m for m in _mount_points() if m.startswith(prefix)]
        for point in sorted(points, key=len, reverse=True):
            _run(["umount", "-l", point], check=False)
        return [f"{len(points)} mounts"] if points else []

    def _remove_links(self) -> list[str]:
        """The kubelet's log symlinks that point into this lab's state directory."""
        removed = 0
        if CONTAINER_LOG_LINKS.is_dir():
            for link in CONTAINER_LOG_LINKS.iterdir():
                with contextlib.suppress(OSError):
                    if link.is_symlink() and os.readlink(link).startswith(str(self.node_dir)):
                        link.unlink()
                        removed += 1
        return [f"{removed} log links in {CONTAINER_LOG_LINKS}"] if removed else []


def bridge_owner() -> str | None:
    """The state directory recorded on the lab's bridge; None without a bridge, '' when the
    bridge carries no alias of ours."""
    try:
        alias = Path(f"/sys/class/net/{BRIDGE}/ifalias").read_text().strip()
    except OSError:
        return None
    return alias


def _guard_owner() -> str:
    """The state directory named in the guard table's comment ('' when none)."""
    result = _run(["nft", "list", "table", "inet", GUARD_TABLE], check=False)
    prefix = 'comment "aic-lab real node of '
    for line in result.stdout.splitlines():
        text = line.strip()
        if text.startswith(prefix) and text.endswith('"'):
            return text[len(prefix):-1]
    return ""


def _nft_table_exists(family: str, table: str) -> bool:
    if shutil.which("nft") is None:
        return False
    return _run(["nft", "list", "table", family, table], check=False).returncode == 0


def _read_sysctl(key: str) -> str | None:
    try:
        return Path("/proc/sys", key).read_text().strip()
    except OSError:
        return None


def _write_sysctl(key: str, value: str) -> None:
    try:
        Path("/proc/sys", key).write_text(value)
    except OSError as err:
        raise LabError(f"cannot set sysctl {key.replace('/', '.')}={value}: {err}") from err


def _missing_parents(directory: Path) -> list[Path]:
    """``directory`` and its ancestors that do not exist yet, outermost first."""
    missing = []
    for path in [directory, *directory.parents]:
        if path.exists():
            break
        missing.append(path)
    return list(reversed(missing))


def _clear_stale_sockets(directory: Path) -> None:
    """Socket files in a directory the lab created that nobody listens on any more."""
    if not directory.is_dir():
        return
    listening = _listening_unix_paths()
    for entry in directory.iterdir():
        if entry.is_socket() and str(entry) not in listening:
            entry.unlink()


def _listening_unix_paths() -> set[str]:
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {parts[-1] for parts in (line.split() for line in lines) if len(parts) >= 8}


def _cgroup_mounts() -> list[str]:
    """Mount points of every cgroup hierarchy (v1 controllers, named ones and v2)."""
    points: list[str] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return points
    for line in lines:
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        if fstype in ("cgroup", "cgroup2"):
            points.append(left.split()[4])
    return points


def _cgroup_pids(root: Path) -> set[int]:
    pids: set[int] = set()
    if not root.is_dir():
        return pids
    for procs_file in root.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(x) for x in procs_file.read_text().split())
    return pids


def _mount_points() -> list[str]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    return [line.split()[4].replace("\\040", " ") for line in lines]
