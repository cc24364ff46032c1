"""Container images the checks run: pinned in one data file, listable, overridable from one file.

Air-gapped users mirror exactly what ``python -m pytest_aiconformance.cluster.images`` prints
and point the suite at their registry with one override file, without editing the package.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

_ENTRY_KEYS = frozenset({"repository", "tag", "digest", "purpose"})
_OVERRIDE_KEYS = frozenset({"repository", "tag", "digest"})
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ImageConfigError(ValueError):
    """An image table or override file that cannot be used as written."""


class UnknownImageError(ImageConfigError):
    """An override names an image key that the checks do not use (likely a typo)."""

    def __init__(self, key: str, known: Sequence[str], source: str) -> None:
        super().__init__(f"{source}: unknown image key {key!r}; known: {', '.join(known)}")
        self.key = key


@dataclass(frozen=True)
class Image:
    """One pinned image: where it comes from and why the suite needs it."""

    key: str
    repository: str
    tag: str
    digest: str | None
    purpose: str

    @property
    def ref(self) -> str:
        """The reference to put in a pod spec (repository:tag, plus @digest when pinned)."""
        base = f"{self.repository}:{self.tag}"
        return f"{base}@{self.digest}" if self.digest else base


def split_reference(ref: str) -> tuple[str, str, str | None]:
    """Split 'registry:port/repo:tag@sha256:...' into (repository, tag, digest); tag required."""
    text = ref.strip()
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon <= slash:
        raise ImageConfigError(f"image reference {ref!r} has no tag (pin a tag)")
    repository, tag = text[:colon], text[colon + 1 :]
    _validate(ref, repository, tag, digest)
    return repository, tag, digest


def _validate(where: str, repository: str, tag: str, digest: str | None) -> None:
    if not repository or any(c.isspace() for c in repository):
        raise ImageConfigError(f"{where}: bad repository {repository!r}")
    if not _TAG_RE.match(tag) or tag == "latest":
        raise ImageConfigError(f"{where}: tag {tag!r} is not a pinned tag")
    if digest is not None and not _DIGEST_RE.match(digest):
        raise ImageConfigError(f"{where}: digest {digest!r} is not sha256:<64 hex>")


def _entry(key: str, raw: Any, source: str) -> Image:
    if not isinstance(raw, Mapping):
        raise ImageConfigError(f"{source}: {key}: expected a mapping")
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    missing = sorted(_ENTRY_KEYS - set(raw))
    if unknown or missing:
        raise ImageConfigError(
            f"{source}: {key}: unknown keys {unknown or '-'}, missing keys {missing or '-'}"
        )
    image = Image(
        key=key,
        repository=str(raw["repository"]),
        tag=str(raw["tag"]),
        digest=None if raw["digest"] is None else str(raw["digest"]),
        purpose=" ".join(str(raw["purpose"]).split()),
    )
    _validate(f"{source}: {key}", image.repository, image.tag, image.digest)
    return image


def parse_images(data: Any, source: str = "images.yaml") -> dict[str, Image]:
    """Validate a parsed images table (top-level key ``images``)."""
    if not isinstance(data, Mapping) or set(data) != {"images"}:
        raise ImageConfigError(f"{source}: expected exactly one top-level key 'images'")
    table = data["images"]
    if not isinstance(table, Mapping) or not table:
        raise ImageConfigError(f"{source}: images: expected a non-empty mapping")
    return {str(k): _entry(str(k), v, source) for k, v in table.items()}


def apply_overrides(
    images: Mapping[str, Image], data: Any, source: str = "override"
) -> dict[str, Image]:
    """Replace entries from an override document.

    Each value is either a full reference string ('mirror.local/busybox:1.36.1') or a mapping
    with any of repository / tag / digest. The document may be wrapped in ``images:``.
    """
    if data is None:
        return dict(images)
    if isinstance(data, Mapping) and set(data) == {"images"}:
        data = data["images"]
    if not isinstance(data, Mapping):
        raise ImageConfigError(f"{source}: expected a mapping of image key to reference")
    result = dict(images)
    known = list(images)
    for key, value in data.items():
        if key not in images:
            raise UnknownImageError(str(key), known, source)
        current = images[key]
        if isinstance(value, str):
            repository, tag, digest = split_reference(value)
            result[key] = replace(current, repository=repository, tag=tag, digest=digest)
        elif isinstance(value, Mapping):
            bad = sorted(set(value) - _OVERRIDE_KEYS)
            if bad:
                raise ImageConfigError(f"{source}: {key}: unknown keys {', '.join(map(str, bad))}")
            updated = replace(
                current,
                repository=str(value.get("repository", current.repository)),
                tag=str(value.get("tag", current.tag)),
                digest=value.get("digest", current.digest),
            )
            _validate(f"{source}: {key}", updated.repository, updated.tag, updated.digest)
            result[key] = updated
        else:
            raise ImageConfigError(f"{source}: {key}: expected a reference string or a mapping")
    return result


def packaged_images() -> dict[str, Image]:
    """The packaged table, without overrides."""
    text = resources.files("pytest_aiconformance").joinpath("data/images.yaml").read_text()
    return parse_images(yaml.safe_load(text))


def load_images(override: Path | None = None) -> dict[str, Image]:
    """The packaged table with one optional override file applied."""
    images = packaged_images()
    if override is None:
        return images
    try:
        text = Path(override).read_text()
    except OSError as exc:
        raise ImageConfigError(f"{override}: cannot read image override file: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ImageConfigError(f"{override}: not valid YAML: {exc}") from exc
    return apply_overrides(images, data, source=str(override))


def list_images(override: Path | None = None) -> list[str]:
    """Distinct image references, sorted, for mirroring."""
    return sorted({image.ref for image in load_images(override).values()})


def main(argv: Sequence[str] | None = None) -> int:
    """Print one image reference per line (``--purpose`` adds the key and why it is used)."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_aiconformance.cluster.images",
        description="List the container images the AI conformance checks use.",
    )
    parser.add_argument("--override", type=Path, default=None, help="YAML file of overrides")
    parser.add_argument("--purpose", action="store_true", help="also print key and purpose")
    args = parser.parse_args(argv)
    try:
        images = load_images(args.override)
    except ImageConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.purpose:
        for key in sorted(images):
            print(f"{images[key].ref}\t{key}\t{images[key].purpose}")
    else:
        for ref in sorted({i.ref for i in images.values()}):
            print(ref)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
