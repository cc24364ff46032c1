"""Write OCI image archives from files in memory, byte for byte reproducibly, with the stdlib.

The lab's real node cannot pull from any registry, so its images are built here and imported
with ``ctr images import``.  An archive is an OCI image layout in a tar stream: ``oci-layout``,
``index.json`` (the image named by ``io.containerd.image.name`` and, as containerd's own
exporter does, its tag in ``org.opencontainers.image.ref.name``), and content-addressed blobs
(config, manifest, gzip'd layer tars).

Everything that could vary between two builds of the same content is fixed: member order
(sorted paths, parents first), mtimes (0), owners (0:0, no names), gzip header (no name,
mtime 0), JSON key order.  The manifest digest is therefore a pure function of the content,
which is what lets the lab name an image after it and cache it by it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import posixpath
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LabError

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The epoch: a fixed creation date keeps the config (and so every digest) reproducible.
EPOCH = "1970-01-01T00:00:00Z"
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class File:
    """A regular file: its bytes, or a host path read when the layer is written."""

    path: str
    content: bytes | Path
    mode: int = 0o644

    def data(self) -> bytes:
        """The file's bytes (a host file that cannot be read is a LabError)."""
        if isinstance(self.content, bytes):
            return self.content
        try:
            return self.content.read_bytes()
        except OSError as err:
            raise LabError(f"image file {self.path}: cannot read {self.content}: {err}") from err


@dataclass(frozen=True)
class Dir:
    """A directory (parents of other members are added as 0755 directories when not listed)."""

    path: str
    mode: int = 0o755


@dataclass(frozen=True)
class Symlink:
    """A symbolic link (busybox applets are symlinks to /bin/busybox)."""

    path: str
    target: str


Member = File | Dir | Symlink


@dataclass(frozen=True)
class ImageConfig:
    """The runtime settings of the image config (``config`` in the OCI image config)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = (DEFAULT_PATH,)
    user: str = ""
    working_dir: str = "/"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Blob:
    """A content-addressed blob of the layout."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass(frozen=True)
class Image:
    """An image ready to be written: its manifest's digest names it before any file exists."""

    config: Blob
    manifest: Blob
    layers: tuple[Blob, ...]
    architecture: str

    @property
    def digest(self) -> str:
        """The manifest digest, ``sha256:<64 hex>``: what the image is, independent of name."""
        return self.manifest.digest

    def blobs(self) -> list[Blob]:
        return [self.config, self.manifest, *self.layers]


def host_architecture() -> str:
    """The GOARCH name of this machine (the lab builds binaries for it)."""
    machine = platform.machine().lower()
    if machine not in _GOARCH:
        raise LabError(f"unsupported machine {machine!r} for lab images (amd64 or arm64 only)")
    return _GOARCH[machine]


def _canonical(path: str) -> str:
    """``bin/sh`` for ``/bin/sh``: tar member names are relative, normalised, never escaping."""
    norm = posixpath.normpath("/" + path).lstrip("/")
    if not norm or norm == "." or path.endswith("/.."):
        raise LabError(f"bad path {path!r} in an image layer")
    return norm


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _tar_info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = link
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def layer_tar(members: Iterable[Member]) -> bytes:
    """The uncompressed layer: members sorted by path, missing parent directories added."""
    entries: dict[str, Member] = {}
    for member in members:
        name = _canonical(member.path)
        if name in entries:
            raise LabError(f"path /{name} appears twice in an image layer")
        entries[name] = member
    for name in list(entries):
        parent = posixpath.dirname(name)
        while parent and parent not in entries:
            entries[parent] = Dir(parent)
            parent = posixpath.dirname(parent)
    for name in entries:
        parent = posixpath.dirname(name)
        if parent and not isinstance(entries[parent], Dir):
            raise LabError(f"/{name} is inside /{parent}, which is not a directory")
    buf = io.BytesIO()
    # PAX: plain ustar headers for short names, exact long names when needed, no timestamps
    # of the build.
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries, key=lambda n: n.split("/")):
            member = entries[name]
            if isinstance(member, Dir):
                tar.addfile(_tar_info(name, tarfile.DIRTYPE, member.mode))
            elif isinstance(member, Symlink):
                tar.addfile(_tar_info(name, tarfile.SYMTYPE, 0o777, link=member.target))
            else:
                data = member.data()
                info = _tar_info(name, tarfile.REGTYPE, member.mode, size=len(data))
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed header (no file name, mtime 0), so equal input gives equal bytes."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def build_image(
    layers: Sequence[Iterable[Member]],
    config: ImageConfig,
    *,
    architecture: str | None = None,
    created_by: str = "aiconformance_lab.ociimage",
) -> Image:
    """Assemble config, layers and manifest in memory (``layers`` bottom first)."""
    if not layers:
        raise LabError("an image needs at least one layer")
    arch = architecture or host_architecture()
    tars = [layer_tar(members) for members in layers]
    gzipped = tuple(Blob(MEDIA_LAYER, gzip_bytes(t)) for t in tars)
    runtime: dict[str, object] = {"Env": list(config.env), "WorkingDir": config.working_dir}
    if config.entrypoint:
        runtime["Entrypoint"] = list(config.entrypoint)
    if config.cmd:
        runtime["Cmd"] = list(config.cmd)
    if config.user:
        runtime["User"] = config.user
    if config.labels:
        runtime["Labels"] = dict(config.labels)
    config_doc = {
        "architecture": arch,
        "os": "linux",
        "created": EPOCH,
        "config": runtime,
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars],
        },
        "history": [{"created": EPOCH, "created_by": created_by} for _ in tars],
    }
    config_blob = Blob(MEDIA_CONFIG, _json(config_doc))
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor() for layer in gzipped],
    }
    return Image(config_blob, Blob(MEDIA_MANIFEST, _json(manifest_doc)), gzipped, arch)


def index_json(image: Image, name: str) -> bytes:
    """The layout's index: one manifest, named as containerd's exporter names it."""
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else name
    descriptor = image.manifest.descriptor()
    descriptor["annotations"] = {ANNOTATION_IMAGE_NAME: name, ANNOTATION_REF_NAME: tag}
    descriptor["platform"] = {"architecture": image.architecture, "os": "linux"}
    return _json({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [descriptor]})


def archive_bytes(image: Image, name: str) -> bytes:
    """The OCI layout of ``image`` named ``name`` as one tar stream (``ctr images import``)."""
    files: dict[str, bytes] = {
        "oci-layout": _json({"imageLayoutVersion": "1.0.0"}),
        "index.json": index_json(image, name),
    }
    for blob in image.blobs():
        files[f"blobs/sha256/{blob.digest.split(':', 1)[1]}"] = blob.data
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            tar.addfile(_tar_info(directory, tarfile.DIRTYPE, 0o755))
        for path in sorted(files):
            data = files[path]
            tar.addfile(_tar_info(path, tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))
    return buf.getvalue()


def write_archive(image: Image, name: str, path: Path) -> Path:
    """Write the archive atomically (a half-written file is never found under ``path``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(archive_bytes(image, name))
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise LabError(f"cannot write image archive {path}: {err}") from err
    return path
