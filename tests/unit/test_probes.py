"""The probe scripts (pytest_aiconformance/data/probes) run under /bin/sh and busybox sh
against a temporary /dev.

The scripts decide isolation inside real containers, so the cases that must fail are here too:
control nodes never count, a missing tool is reported as missing (never as isolation), and the
weak /dev/nvidia* glob is shown to over-count. Set BUSYBOX=/path/to/busybox to add the busybox
runs where no busybox is on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from pytest_aiconformance.cluster import probes
from pytest_aiconformance.cluster.profiles import get_profile
from pytest_aiconformance.parsers import parse_key_values

PROBES = Path(str(resources.files("pytest_aiconformance").joinpath("data", "probes")))
RECORDED = Path(__file__).resolve().parent / "data" / "recorded"
LIB = "lib.sh"  # loaded by every probe, never run as one
SCRIPTS = sorted(p.name for p in PROBES.glob("*.sh") if p.name != LIB)
# Every external command the scripts use; a busybox image must provide all of them.
APPLETS = ("sh", "grep", "awk", "sed", "sort", "env", "cat")


def _busybox() -> str | None:
    candidate = os.environ.get("BUSYBOX") or shutil.which("busybox")
    return candidate if candidate and os.access(candidate, os.X_OK) else None


SHELLS = ["/bin/sh"] + (["busybox"] if _busybox() else [])


@dataclass
class Shell:
    """How to run a probe: the shell binary and a PATH holding only what that image has."""

    argv: list[str]
    path: str


@pytest.fixture(params=SHELLS)
def shell(request, tmp_path_factory) -> Shell:
    # PATH holds only the applets the scripts may use, so a real vendor tool on the machine
    # running the tests (nvidia-smi on a GPU host) cannot leak into the cases.
    bindir = tmp_path_factory.mktemp("probe-bin")
    busybox = _busybox() if request.param == "busybox" else None
    for applet in APPLETS:
        target = busybox or shutil.which(applet)
        assert target is not None, f"{applet} not found"
        (bindir / applet).symlink_to(target)
    return Shell([str(bindir / "sh")], str(bindir))


@dataclass(frozen=True)
class ProbeOutput:
    """A probe's KEY=VALUE output with typed lookups (test helper over parse_key_values)."""

    values: dict[str, list[str]]

    def get(self, key: str) -> str | None:
        """The last value printed for ``key``, or None."""
        found = self.values.get(key)
        return found[-1] if found else None

    def all(self, key: str) -> tuple[str, ...]:
        return tuple(self.values.get(key, ()))

    def integer(self, key: str) -> int:
        value = self.get(key)
        assert value is not None, f"probe printed no {key}"
        return int(value)

    def flag(self, key: str) -> bool:
        """True only for an explicit KEY=1."""
        return self.get(key) == "1"


def parse_probe_output(text: str) -> ProbeOutput:
    """Strict: every non-empty line a probe prints must be a KEY=VALUE line."""
    values = parse_key_values(text)
    lines = [line for line in text.splitlines() if line.strip()]
    assert sum(len(v) for v in values.values()) == len(lines), f"not all KEY=VALUE: {text!r}"
    return ProbeOutput(values)


@dataclass
class Run:
    rc: int
    out: ProbeOutput
    text: str


def run(shell: Shell, script: str, env: dict[str, str], extra_path: Path | None = None) -> Run:
    path = f"{extra_path}:{shell.path}" if extra_path else shell.path
    proc = subprocess.run(
        [*shell.argv, str(PROBES / script)],
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.stderr == "", proc.stderr
    return Run(proc.returncode, parse_probe_output(proc.stdout), proc.stdout)


def make_dev(root: Path, files: list[str], dirs: Sequence[str] = ()) -> Path:
    for d in dirs:
        (root / d).mkdir(parents=True)
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).touch()
    return root


def fake_tool(bindir: Path, name: str, body: str) -> Path:
    bindir.mkdir(exist_ok=True)
    tool = bindir / name
    tool.write_text("#!/bin/sh\n" + body)
    tool.chmod(0o755)
    return bindir


NVIDIA_NODES = [
    "nvidia0",
    "nvidia1",
    "nvidiactl",
    "nvidia-uvm",
    "nvidia-uvm-tools",
    "nvidia-modeset",
]


def nvidia_env(dev: Path) -> dict[str, str]:
    return {"DEV_ROOT": str(dev), **get_profile("nvidia").probe_env()}


# --- count_devices.sh / list_devices.sh ----------------------------------------------------


def test_two_numbered_nodes_count_two_control_nodes_never(shell, tmp_path):
    dev = make_dev(tmp_path, NVIDIA_NODES, dirs=["nvidia-caps"])
    r = run(shell, "count_devices.sh", nvidia_env(dev))
    assert r.rc == 0
    assert r.out.integer("DEVICE_COUNT") == 2
    assert r.out.get("DEVICE_GLOB") == "/dev/nvidia[0-9]*"


def test_only_control_nodes_count_zero(shell, tmp_path):
    dev = make_dev(
        tmp_path,
        ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"],
        dirs=["nvidia-caps"],
    )
    r = run(shell, "count_devices.sh", nvidia_env(dev))
    assert r.out.integer("DEVICE_COUNT") == 0


def test_one_device_counts_one(shell, tmp_path):
    dev = make_dev(tmp_path, ["nvidia3", "nvidiactl", "nvidia-uvm"])
    assert run(shell, "count_devices.sh", nvidia_env(dev)).out.integer("DEVICE_COUNT") == 1


def test_empty_dev_counts_zero_not_the_literal_pattern(shell, tmp_path):
    r = run(shell, "count_devices.sh", nvidia_env(tmp_path))
    assert r.out.integer("DEVICE_COUNT") == 0
    assert r.out.integer("IGNORED_COUNT") == 0


def test_two_digit_minor_numbers_count(shell, tmp_path):
    dev = make_dev(tmp_path, ["nvidia0", "nvidia10", "nvidia11"])
    assert run(shell, "count_devices.sh", nvidia_env(dev)).out.integer("DEVICE_COUNT") == 3


def test_weak_glob_overcounts_and_ignore_list_corrects_it(shell, tmp_path):
    """The known bug: /dev/nvidia* matches the control nodes too."""
    dev = make_dev(tmp_path, NVIDIA_NODES, dirs=["nvidia-caps"])
    weak = run(shell, "count_devices.sh", {"DEV_ROOT": str(dev), "DEVICE_GLOB": "/dev/nvidia*"})
    assert weak.out.integer("DEVICE_COUNT") == 6  # 2 GPUs + 4 control nodes: wrong on purpose
    guarded = run(
        shell,
        "count_devices.sh",
        {
            "DEV_ROOT": str(dev),
            "DEVICE_GLOB": "/dev/nvidia*",
            "IGNORE_GLOB": get_profile("nvidia").probe_env()["IGNORE_GLOB"],
        },
    )
    assert guarded.out.integer("DEVICE_COUNT") == 2
    assert guarded.out.integer("IGNORED_COUNT") == 4


def test_directories_never_count_symlinks_and_char_devices_do(shell, tmp_path):
    dev = make_dev(tmp_path, [], dirs=["nvidia7"])
    (dev / "nvidia0").symlink_to("/dev/null")  # a character device, as real nodes are
    r = run(shell, "count_devices.sh", nvidia_env(dev))
    assert r.out.integer("DEVICE_COUNT") == 1
    assert r.out.integer("DEVICE_CHAR_COUNT") == 1


def test_amd_render_nodes_count_cards_and_kfd_do_not(shell, tmp_path):
    dev = make_dev(tmp_path, ["kfd", "dri/card0", "dri/card1", "dri/renderD128", "dri/renderD129"])
    env = {"DEV_ROOT": str(dev), **get_profile("amd").probe_env()}
    assert run(shell, "count_devices.sh", env).out.integer("DEVICE_COUNT") == 2


@pytest.mark.parametrize("script", ["count_devices.sh", "list_devices.sh"])
def test_missing_device_glob_is_an_error(shell, tmp_path, script):
    r = run(shell, script, {"DEV_ROOT": str(tmp_path)})
    assert r.rc == 2
    assert r.out.get("ERROR") == "DEVICE_GLOB is not set"


def test_list_devices_reports_dev_paths_and_control_nodes(shell, tmp_path):
    dev = make_dev(tmp_path, NVIDIA_NODES, dirs=["nvidia-caps"])
    r = run(shell, "list_devices.sh", nvidia_env(dev))
    assert r.out.all("DEVICE_FILE") == ("/dev/nvidia0", "/dev/nvidia1")
    assert set(r.out.all("CONTROL_FILE")) == {
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidia-modeset",
        "/dev/nvidia-caps",
    }
    assert r.out.integer("DEVICE_COUNT") == 2
    assert r.out.integer("CONTROL_COUNT") == 5
    assert r.out.get("DEV_ROOT") == str(dev)


def test_list_devices_names_ignored_matches(shell, tmp_path):
    dev = make_dev(tmp_path, ["nvidia0", "nvidiactl"])
    r = run(
        shell,
        "list_devices.sh",
        {"DEV_ROOT": str(dev), "DEVICE_GLOB": "/dev/nvidia*", "IGNORE_GLOB": "/dev/nvidiactl"},
    )
    assert r.out.all("DEVICE_FILE") == ("/dev/nvidia0",)
    assert r.out.all("IGNORED_FILE") == ("/dev/nvidiactl",)


# --- device_uuids.sh -----------------------------------------------------------------------


def test_tool_missing_is_reported_and_is_not_isolation(shell, tmp_path):
    dev = make_dev(tmp_path / "dev", ["nvidia0", "nvidiactl"])
    env = nvidia_env(dev)
    uuids = run(shell, "device_uuids.sh", env)
    assert uuids.rc == 0
    assert uuids.out.flag("TOOL_MISSING") is True
    assert uuids.out.integer("UUID_COUNT") == 0
    # The device node is still there: a missing tool proves nothing about isolation.
    assert run(shell, "count_devices.sh", env).out.integer("DEVICE_COUNT") == 1


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        (
            "t4-envall-before-L.txt",
            [
                "GPU-6cfb8bf0-b556-d216-90a4-0827b23b1348",
                "GPU-90ac9649-3c3b-4d9f-e3ab-95c8043e7d48",
            ],
        ),
        (
            "h100-mig-mixed-L.txt",
            [
                "GPU-b4895dbf-9350-2524-a89b-98161ddd9fe4",
                "MIG-7089d0f3-293f-58c9-8f8c-5ea666eedbde",
                "MIG-56c30729-347f-5dd6-8da0-c3cc59e969e0",
                "MIG-9d14fb21-4ae1-546f-a636-011582899c39",
                "MIG-0f709664-740c-52b0-ae79-3e4c9ede6d3b",
            ],
        ),
    ],
)
def test_uuids_from_recorded_tool_output(shell, tmp_path, recorded, expected):
    source = RECORDED / "nvidia-smi" / recorded
    bindir = fake_tool(
        tmp_path / "bin", "nvidia-smi", f'[ "$1" = "-L" ] || exit 64\ncat "{source}"\n'
    )
    r = run(shell, "device_uuids.sh", nvidia_env(tmp_path), extra_path=bindir)
    assert r.out.flag("TOOL_MISSING") is False
    assert r.out.integer("TOOL_RC") == 0
    assert r.out.get("TOOL_UNRUNNABLE") == "0"
    assert list(r.out.all("UUID")) == expected
    assert r.out.integer("UUID_COUNT") == len(expected)
    assert r.out.all("TOOL_LINE")[0] == source.read_text().splitlines()[0]


def test_tool_failure_is_reported_with_its_status(shell, tmp_path):
    bindir = fake_tool(
        tmp_path / "bin",
        "nvidia-smi",
        "echo \"NVIDIA-SMI has failed because it couldn't communicate with the "
        'NVIDIA driver."\nexit 9\n',
    )
    r = run(shell, "device_uuids.sh", nvidia_env(tmp_path), extra_path=bindir)
    assert r.out.flag("TOOL_MISSING") is False
    assert r.out.integer("TOOL_RC") == 9
    assert r.out.integer("UUID_COUNT") == 0
    assert r.out.all("TOOL_LINE")[0].startswith("NVIDIA-SMI has failed")


def test_tool_that_cannot_start_is_reported_as_unrunnable(shell, tmp_path):
    """An injected glibc nvidia-smi in the musl busybox image: the file is on PATH, but its
    ELF loader is missing, so the shell cannot start it (status 127, "not found"). The probe
    says so, and the caller must not read the empty UUID list as an answer."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "nvidia-smi"
    tool.write_text("#!/lib64/ld-linux-x86-64-missing.so.2\n")
    tool.chmod(0o755)
    r = run(shell, "device_uuids.sh", nvidia_env(tmp_path), extra_path=bindir)
    assert r.rc == 0
    assert r.out.flag("TOOL_MISSING") is False
    assert r.out.integer("TOOL_RC") == 127
    assert r.out.flag("TOOL_UNRUNNABLE") is True
    assert r.out.integer("UUID_COUNT") == 0
    assert "not found" in r.out.all("TOOL_LINE")[0]
    with pytest.raises(pytest.skip.Exception,
                       match=r"^not observable here: nvidia-smi is in pod p but could not "
                             r"start \(exit status 127: .*not found"):
        probes.probed_uuids(r.out.values, get_profile("nvidia"), "pod p")


def test_uuids_are_read_only_where_the_tool_ran(shell, tmp_path):
    nvidia = get_profile("nvidia")
    missing = run(shell, "device_uuids.sh", nvidia_env(tmp_path))
    with pytest.raises(pytest.skip.Exception,
                       match=r"^not observable here: nvidia-smi is not in pod p, so its "
                             r"device UUIDs cannot be read$"):
        probes.probed_uuids(missing.out.values, nvidia, "pod p")
    source = RECORDED / "nvidia-smi" / "h100-mig-mixed-L.txt"
    bindir = fake_tool(tmp_path / "bin", "nvidia-smi", f'cat "{source}"\n')
    ran = run(shell, "device_uuids.sh", nvidia_env(tmp_path), extra_path=bindir)
    # The host's listing: the H100 is the parent of the four MIG devices, not a fifth device.
    parent, *partitions = ran.out.all("UUID")
    assert parent == "GPU-b4895dbf-9350-2524-a89b-98161ddd9fe4"
    assert probes.probed_uuids(ran.out.values, nvidia, "pod p") == partitions
    assert len(partitions) == 4


def test_a_pod_on_one_mig_device_holds_that_device_not_its_parent(shell, tmp_path):
    """Real nvidia-smi -L in a pod holding one MIG device prints the parent GPU's line too:
    the pod holds one device, the MIG one (the checks counted two before)."""
    source = RECORDED / "nvidia-smi" / "h100-one-mig-in-pod-L.txt"
    bindir = fake_tool(tmp_path / "bin", "nvidia-smi", f'cat "{source}"\n')
    r = run(shell, "device_uuids.sh", nvidia_env(tmp_path), extra_path=bindir)
    assert list(r.out.all("UUID")) == ["GPU-717ef73c-2d43-4fdc-76d2-1cddef4863bb",
                                       "MIG-2d636152-57c2-5e73-9654-b1d21d6d21fb"]
    assert probes.probed_uuids(r.out.values, get_profile("nvidia"), "pod p") == [
        "MIG-2d636152-57c2-5e73-9654-b1d21d6d21fb"]


NVIDIA_UUIDS = "(GPU|MIG)-[0-9A-Za-z/-]+"


@pytest.mark.parametrize(("lines", "held"), [
    # Two whole GPUs (tests/unit/data/recorded/nvidia-smi/t4-envall-before-L.txt's shape).
    (["GPU 0: T4 (UUID: GPU-a)", "GPU 1: T4 (UUID: GPU-b)"], ["GPU-a", "GPU-b"]),
    # A whole GPU beside a MIG device of another GPU (mixed strategy, both requested).
    (["GPU 0: A100 (UUID: GPU-a)", "GPU 1: A100 (UUID: GPU-b)",
      "  MIG 1g.5gb Device 0: (UUID: MIG-c)"], ["GPU-a", "MIG-c"]),
    # Two MIG devices of one GPU; R450's MIG-GPU-<uuid>/<gi>/<ci> form is a partition too.
    (["GPU 0: A100 (UUID: GPU-a)", "  MIG 1g.5gb Device 0: (UUID: MIG-GPU-a/1/0)",
      "  MIG 1g.5gb Device 1: (UUID: MIG-GPU-a/2/0)"], ["MIG-GPU-a/1/0", "MIG-GPU-a/2/0"]),
    # A listing repeated (the tool run twice) counts each device once.
    (["GPU 0: T4 (UUID: GPU-a)", "GPU 0: T4 (UUID: GPU-a)"], ["GPU-a"]),
    ([], []),
])
def test_held_devices(lines, held):
    assert probes.held_devices(lines, NVIDIA_UUIDS, "MIG-") == held


def test_held_devices_without_partitions_in_the_profile_keeps_every_uuid():
    lines = ["GPU 0: A100 (UUID: GPU-a)", "  MIG 1g.5gb Device 0: (UUID: MIG-c)"]
    assert probes.held_devices(lines, NVIDIA_UUIDS, None) == ["GPU-a", "MIG-c"]


def test_probes_that_run_the_vendor_tool_use_the_profiles_tool_image():
    nvidia = get_profile("nvidia")
    assert probes.probe_image_key(nvidia, ["device_uuids.sh"]) == "driver-injection"
    assert probes.probe_image_key(nvidia, probes.count_scripts(nvidia)) == "driver-injection"
    assert probes.probe_image_key(nvidia, ["count_devices.sh"]) == "probe"
    example = get_profile("dra-example")
    assert probes.probe_image_key(example, probes.count_scripts(example)) == "probe"


def test_tool_args_are_passed_without_glob_expansion(shell, tmp_path):
    (tmp_path / "nvidia-smi-fake-match").touch()
    bindir = fake_tool(tmp_path / "bin", "lister", 'for a in "$@"; do echo "ARG $a"; done\n')
    r = run(
        shell,
        "device_uuids.sh",
        {"TOOL": "lister", "TOOL_LIST_ARGS": f"-L {tmp_path}/*", "UUID_REGEX": "x^"},
        extra_path=bindir,
    )
    assert r.out.all("TOOL_LINE") == ("ARG -L", f"ARG {tmp_path}/*")


def test_tool_unset_is_an_error(shell):
    r = run(shell, "device_uuids.sh", {})
    assert r.rc == 2
    assert r.out.get("ERROR") == "TOOL is not set"


# --- driver_version.sh ---------------------------------------------------------------------

NVRM = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
    "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n"
)


def test_driver_version_from_tool(shell, tmp_path):
    bindir = fake_tool(
        tmp_path / "bin",
        "nvidia-smi",
        '[ "$1" = "--query-gpu=driver_version" ] || exit 64\nprintf "580.126.20\\n580.126.20\\n"\n',
    )
    r = run(shell, "driver_version.sh", nvidia_env(tmp_path), extra_path=bindir)
    assert r.out.get("DRIVER_VERSION") == "580.126.20"
    assert r.out.get("DRIVER_VERSION_SOURCE") == "tool"
    assert r.out.integer("DRIVER_VERSION_DISTINCT") == 1


def test_driver_versions_that_disagree_are_counted(shell, tmp_path):
    bindir = fake_tool(tmp_path / "bin", "nvidia-smi", 'printf "580.126.20\\n570.86.15\\n"\n')
    r = run(shell, "driver_version.sh", nvidia_env(tmp_path), extra_path=bindir)
    assert r.out.integer("DRIVER_VERSION_DISTINCT") == 2


def test_driver_version_from_module_file_when_tool_missing(shell, tmp_path):
    version_file = tmp_path / "version"
    version_file.write_text(NVRM)
    env = {**nvidia_env(tmp_path), "VERSION_FILE": str(version_file)}
    r = run(shell, "driver_version.sh", env)
    assert r.out.flag("TOOL_MISSING") is True
    assert r.out.get("DRIVER_VERSION") == "535.104.05"
    assert r.out.get("DRIVER_VERSION_SOURCE") == "file"


def test_driver_version_falls_back_when_tool_fails(shell, tmp_path):
    version_file = tmp_path / "version"
    version_file.write_text(NVRM)
    bindir = fake_tool(tmp_path / "bin", "nvidia-smi", "exit 9\n")
    env = {**nvidia_env(tmp_path), "VERSION_FILE": str(version_file)}
    r = run(shell, "driver_version.sh", env, extra_path=bindir)
    assert r.out.integer("TOOL_RC") == 9
    assert r.out.get("DRIVER_VERSION") == "535.104.05"
    assert r.out.get("DRIVER_VERSION_TOOL") is None


def test_driver_version_missing(shell, tmp_path):
    env = {**nvidia_env(tmp_path), "VERSION_FILE": str(tmp_path / "absent")}
    r = run(shell, "driver_version.sh", env)
    assert r.out.flag("DRIVER_VERSION_MISSING") is True
    assert r.out.get("DRIVER_VERSION") is None


# --- env_prefix.sh -------------------------------------------------------------------------

SEED_ENV = {  # the per-device variables the example DRA driver injects
    "GPU_DEVICE_5": "gpu-5",
    "GPU_DEVICE_5_RESOURCE_CLAIM": "03f5fca0-c04c-43d2-9ba9-db6f570bce00",
    "GPU_DEVICE_5_SHARING_STRATEGY": "TimeSlicing",
    "GPU_DEVICE_5_TIMESLICE_INTERVAL": "Default",
}


def test_env_prefix_one_injected_device(shell):
    env = {**get_profile("dra-example").probe_env(), **SEED_ENV, "OTHER": "x"}
    r = run(shell, "env_prefix.sh", env)
    assert r.out.integer("ENV_DEVICE_COUNT") == 1
    assert r.out.integer("ENV_MATCH_COUNT") == 4
    assert r.out.get("GPU_DEVICE_5") == "gpu-5"
    assert r.out.get("GPU_DEVICE_5_SHARING_STRATEGY") == "TimeSlicing"
    assert r.out.get("OTHER") is None


def test_env_prefix_two_devices_and_lookalikes(shell):
    env = {
        "ENV_PREFIX": "GPU_DEVICE_",
        "GPU_DEVICE_0": "gpu-0",
        "GPU_DEVICE_1": "gpu-1",
        "GPU_DEVICE_X": "not-a-device",
        "MY_GPU_DEVICE_2": "not-ours",
    }
    r = run(shell, "env_prefix.sh", env)
    assert r.out.integer("ENV_DEVICE_COUNT") == 2
    assert r.out.integer("ENV_MATCH_COUNT") == 3
    assert r.out.get("MY_GPU_DEVICE_2") is None


def test_env_prefix_none_injected_counts_zero(shell):
    r = run(shell, "env_prefix.sh", {"ENV_PREFIX": "GPU_DEVICE_"})
    assert r.out.integer("ENV_DEVICE_COUNT") == 0
    assert r.out.integer("ENV_MATCH_COUNT") == 0


@pytest.mark.parametrize("prefix", ["", "GPU.DEVICE", "GPU DEVICE", "A*"])
def test_env_prefix_rejects_unsafe_prefix(shell, prefix):
    r = run(shell, "env_prefix.sh", {"ENV_PREFIX": prefix})
    assert r.rc == 2
    assert (r.out.get("ERROR") or "").startswith("ENV_PREFIX must be")


# --- the scripts themselves ----------------------------------------------------------------


def test_all_expected_scripts_exist():
    assert SCRIPTS == [
        "count_devices.sh",
        "device_uuids.sh",
        "driver_version.sh",
        "env_prefix.sh",
        "list_devices.sh",
    ]


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_posix_sh(script):
    text = (PROBES / script).read_text()
    assert text.startswith("#!/bin/sh\n")
    for bashism in ("[[", "function ", "local ", "$(<", "<<<", "${!", "declare ", "source "):
        assert bashism not in text, f"{script} uses {bashism!r}"
    assert subprocess.run(["/bin/sh", "-n", str(PROBES / script)], check=False).returncode == 0


def test_every_probe_loads_the_lib_from_its_own_directory():
    for script in SCRIPTS:
        assert '. "${0%/*}/lib.sh"' in (PROBES / script).read_text(), script


def test_lib_is_posix_sh_and_only_defines(shell):
    text = (PROBES / LIB).read_text()
    for bashism in ("[[", "function ", "local ", "$(<", "<<<", "${!", "declare ", "source "):
        assert bashism not in text, f"{LIB} uses {bashism!r}"
    # Run by mistake, it prints nothing; loaded, it leaves the environment as it was.
    proc = subprocess.run([*shell.argv, str(PROBES / LIB)], env={"PATH": shell.path},
                          capture_output=True, text=True, timeout=30, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    env_after = subprocess.run(
        [*shell.argv, "-c", f'. "{PROBES / LIB}"; env'], env={"PATH": shell.path, "X": "1"},
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    env_before = subprocess.run(
        [*shell.argv, "-c", "env"], env={"PATH": shell.path, "X": "1"},
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    assert env_after == env_before


def test_configmap_holds_every_probe_and_the_lib(shell, tmp_path):
    data = probes.probe_configmap("ns")["data"]
    assert sorted(data) == sorted([*SCRIPTS, LIB])
    assert all(data[name] == (PROBES / name).read_text() for name in data)
    # Mounted on its own, as at /probes in a pod, the ConfigMap's files are enough to run.
    mount = tmp_path / "probes"
    mount.mkdir()
    for name, text in data.items():
        (mount / name).write_text(text)
    dev = make_dev(tmp_path / "dev", ["nvidia0", "nvidiactl"])
    proc = subprocess.run([*shell.argv, str(mount / "count_devices.sh")],
                          env={"PATH": shell.path, **nvidia_env(dev)},
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert parse_probe_output(proc.stdout).integer("DEVICE_COUNT") == 1
