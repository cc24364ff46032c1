"""Host processes of the lab: start detached, find again by pid file, stop for sure.

The lab outlives the command that started it (``up`` returns, the processes keep serving), so
every process is found again through its pid file.  A pid can be reused by an unrelated process
after a crash or reboot, so a pid only counts as the lab's when its command line names one of
the lab binaries and the lab's state directory: nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .errors import LabError

LAB_BINARIES = frozenset({"aiclab", "kwok", "metrics-server", "ray-operator", "kueue",
                          "trainer-controller-manager", "karpenter", "aic-gpu-plugin",
                          "nvidia-device-plugin",
                          # The NVIDIA runtime wrapper, while it edits a bundle (it then
                          # becomes runc); its argv names the lab's runc root.
                          "aic-nvidia-runtime", "aic-dra-plugin",
                          "containerd", "containerd-shim-runc-v2", "coredns", "traefik",
                          "operator",  # the Prometheus Operator (cmd/operator)
                          "keda-operator", "keda-adapter",
                          "scheduler-plugins-scheduler", "scheduler-plugins-controller"})


def cmdline(pid: int) -> list[str]:
    """The process's argv, or [] if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie is dead; it is reaped if it is our child)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def is_ours(pid: int, marker: str) -> bool:
    """Whether ``pid`` is a live lab process of the state directory ``marker``."""
    argv = cmdline(pid)
    if not argv or not alive(pid):
        return False
    return Path(argv[0]).name in LAB_BINARIES and any(marker in arg for arg in argv[1:])


def read_pid(path: Path) -> int | None:
    """Pid stored in a pid file, or None."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def start(
    argv: Sequence[str],
    log: Path,
    pid_file: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``argv`` detached (own session, survives its parent); log to ``log``.

    ``env`` adds to (or overrides) this process's environment.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env={**os.environ, **env} if env else None,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            raise LabError(f"cannot start {argv[0]}: {err}") from err
    # The Popen object is dropped on purpose: the process belongs to the lab, not to us.
    # Python keeps a reference to reap it if it exits while we still run.
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop(pids: Iterable[int], marker: str, timeout: float = 15.0) -> list[int]:
    """SIGTERM the lab processes among ``pids``, SIGKILL what is left after ``timeout``.

    Returns the pids that were signalled.  Pids that are not ours are left alone.
    """
    ours = [pid for pid in pids if is_ours(pid, marker)]
    for pid in ours:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in ours) and time.monotonic() < deadline:
        time.sleep(0.05)  # Waiting on unrelated (non-child) processes: only polling works.
    for pid in ours:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(alive(p) for p in ours) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in ours if alive(p)]
    if left:
        raise LabError(f"lab processes {left} did not exit after SIGKILL")
    return ours


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except OSError as err:
        if err.errno != errno.ESRCH:
            raise


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' source ports."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now, outside the ephemeral range.

    Ports from the ephemeral range (what bind(0) hands out) can be reused by the kernel as the
    source port of any outgoing connection, so a component restarted later could find its
    port taken; ports below that range are never handed out that way. All sockets are held
    open until every port is chosen, so the ports differ; a port taken by someone else before
    the component binds it is reported by the component's start check as a busy port.
    """
    low, _high = _ephemeral_range()
    first, last = 20000, max(20000 + 10 * count, low - 1)
    rng = random.Random()
    sockets: list[socket.socket] = []
    try:
        for _ in range(2000):
            if len(sockets) == count:
                break
            port = rng.randint(first, last)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        while len(sockets) < count:  # a crowded range: fall back to the kernel's choice
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_bound(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def log_tail(log: Path, lines: int = 5) -> str:
    """Last lines of a log, joined for a one-line message."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())
