"""OCI image archives written by aiconformance_lab.ociimage: byte-reproducible, in the
OCI image layout ctr imports, with exactly the members, modes and links asked for."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from aiconformance_lab import ociimage
from aiconformance_lab.errors import LabError
from aiconformance_lab.ociimage import Dir, File, ImageConfig, Symlink

NAME = "aic-lab.local/test:0123456789ab"


def members(tmp_path: Path) -> list[ociimage.Member]:
    host = tmp_path / "prog"
    host.write_bytes(b"\x7fELF fake program")
    return [
        Symlink("/bin/sh", "/bin/busybox"),
        File("/bin/busybox", b"busybox bytes", 0o755),
        File("/usr/bin/prog", host, 0o755),
        Dir("/tmp", 0o1777),
        File("/etc/passwd", b"nobody:x:65534:65534::/:/bin/false\n"),
    ]


CONFIG = ImageConfig(entrypoint=("/usr/bin/prog",), cmd=("-x",), user="65534:65534",
                     working_dir="/tmp", labels={"k": "v"})


def archive(tmp_path: Path, name: str = NAME) -> tuple[ociimage.Image, dict[str, bytes]]:
    image = ociimage.build_image([members(tmp_path)], CONFIG, architecture="amd64")
    path = ociimage.write_archive(image, name, tmp_path / "out" / "image.tar")
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    return image, files


def test_two_builds_are_byte_identical(tmp_path):
    first = ociimage.archive_bytes(
        ociimage.build_image([members(tmp_path)], CONFIG, architecture="amd64"), NAME)
    second = ociimage.archive_bytes(
        ociimage.build_image([list(reversed(members(tmp_path)))], CONFIG,
                             architecture="amd64"), NAME)
    assert first == second
    assert ociimage.layer_tar(members(tmp_path)) == ociimage.layer_tar(members(tmp_path))


def test_layout_index_names_the_image(tmp_path):
    image, files = archive(tmp_path)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == ociimage.MEDIA_INDEX
    (desc,) = index["manifests"]
    assert desc["mediaType"] == ociimage.MEDIA_MANIFEST
    assert desc["digest"] == image.digest
    assert desc["annotations"] == {"io.containerd.image.name": NAME,
                                   "org.opencontainers.image.ref.name": "0123456789ab"}
    assert desc["platform"] == {"architecture": "amd64", "os": "linux"}
    # Every blob is stored under its own digest, and nothing else is.
    blobs = {k: v for k, v in files.items() if k.startswith("blobs/")}
    assert sorted(blobs) == sorted(f"blobs/sha256/{b.digest[7:]}" for b in image.blobs())
    for path, data in blobs.items():
        assert hashlib.sha256(data).hexdigest() == path.rsplit("/", 1)[1]
    assert desc["size"] == len(blobs[f"blobs/sha256/{image.digest[7:]}"])


def test_manifest_and_config(tmp_path):
    image, files = archive(tmp_path)
    manifest = json.loads(files[f"blobs/sha256/{image.digest[7:]}"])
    assert manifest["schemaVersion"] == 2
    assert manifest["config"]["mediaType"] == ociimage.MEDIA_CONFIG
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == ociimage.MEDIA_LAYER
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'][7:]}"])
    assert config["architecture"] == "amd64"
    assert config["os"] == "linux"
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert config["config"] == {
        "Entrypoint": ["/usr/bin/prog"], "Cmd": ["-x"], "User": "65534:65534",
        "WorkingDir": "/tmp", "Env": [ociimage.DEFAULT_PATH], "Labels": {"k": "v"}}
    raw = gzip.decompress(files[f"blobs/sha256/{layer['digest'][7:]}"])
    assert config["rootfs"] == {"type": "layers",
                                "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}


def test_layer_members_modes_links_and_order(tmp_path):
    image, _ = archive(tmp_path)
    layer = gzip.decompress(image.layers[0].data)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        infos = tar.getmembers()
        got = {m.name: m for m in infos}
        assert [m.name for m in infos] == [
            "bin", "bin/busybox", "bin/sh", "etc", "etc/passwd", "tmp", "usr", "usr/bin",
            "usr/bin/prog"]
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in infos)
        assert got["bin/sh"].issym()
        assert got["bin/sh"].linkname == "/bin/busybox"
        assert got["tmp"].isdir()
        assert got["tmp"].mode == 0o1777
        assert got["usr"].isdir()
        assert got["usr"].mode == 0o755
        assert got["bin/busybox"].mode == 0o755
        assert got["etc/passwd"].mode == 0o644
        assert tar.extractfile("usr/bin/prog").read() == b"\x7fELF fake program"
    # gzip header: no name, mtime 0.
    assert image.layers[0].data[4:8] == b"\0\0\0\0"


def test_digest_depends_on_content_only(tmp_path):
    a = ociimage.build_image([members(tmp_path)], CONFIG, architecture="amd64")
    other = [*members(tmp_path), File("/extra", b"x")]
    b = ociimage.build_image([other], CONFIG, architecture="amd64")
    assert a.digest != b.digest
    # The name is not part of the image: two names, one manifest digest.
    assert ociimage.archive_bytes(a, NAME) != ociimage.archive_bytes(a, "aic-lab.local/x:1")


def test_bad_members_are_lab_errors(tmp_path):
    with pytest.raises(LabError, match="appears twice"):
        ociimage.layer_tar([File("/a", b"1"), File("a", b"2")])
    with pytest.raises(LabError, match="not a directory"):
        ociimage.layer_tar([File("/a", b"1"), File("/a/b", b"2")])
    with pytest.raises(LabError, match="bad path"):
        ociimage.layer_tar([File("/", b"1")])
    with pytest.raises(LabError, match="cannot read"):
        ociimage.layer_tar([File("/a", tmp_path / "missing")])
    with pytest.raises(LabError, match="at least one layer"):
        ociimage.build_image([], CONFIG)


def test_paths_cannot_escape_the_root():
    layer = ociimage.layer_tar([File("../../etc/x", b"1")])
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        assert tar.getnames() == ["etc", "etc/x"]


def test_long_paths_and_several_layers(tmp_path):
    deep = "/" + "/".join(["d" * 40] * 4) + "/file"
    image = ociimage.build_image([[File(deep, b"x")], [File("/second", b"y")]], CONFIG,
                                 architecture="arm64")
    assert len(image.layers) == 2
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(image.layers[0].data))) as tar:
        assert deep.lstrip("/") in tar.getnames()
    assert image.architecture == "arm64"
