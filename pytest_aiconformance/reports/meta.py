"""What the reports say about the run and the platform, beyond the verdicts.

Platform metadata is the PRODUCT.yaml `metadata` block; the user supplies it (file or
options) because no cluster can tell us its vendor or website.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from pytest_aiconformance import __version__


@dataclass(frozen=True)
class RunMeta:
    """Facts about one run of the suite, for verdicts.json and evidence.md."""

    checklist_version: str  # "1.35"
    server_version: str = ""  # "v1.35.3"
    run_id: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    suite_version: str = __version__
    kube_context: str = ""
    operators: tuple[str, ...] = ()  # detected operators, e.g. "Volcano v1.14.1 (volcano-system)"
    accelerator: str = ""  # accelerator profile name
    allocation_mode: str = ""  # "dra" | "device-plugin"
    # What of the run is simulated (discovery.describe_simulation); '' on a real platform.
    # When set, every report says so; when empty, they are as if the field did not exist.
    simulated: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checklist_version": self.checklist_version,
            "server_version": self.server_version,
            "run_id": self.run_id,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "suite_version": self.suite_version,
            "kube_context": self.kube_context,
            "operators": list(self.operators),
            "accelerator": self.accelerator,
            "allocation_mode": self.allocation_mode,
        }
        if self.simulated:
            out["simulated"] = self.simulated
        return out


def simulated_note(simulated: str) -> str:
    """The sentence every PRODUCT.yaml note of a simulated run ends with."""
    return f"Decided on a simulated cluster, not a real platform: {simulated}."


def simulated_banner(simulated: str) -> str:
    """The evidence pages' warning, first thing under the title."""
    return (f"> **Simulated run: not a real platform.** This run's nodes or accelerators are "
            f"simulated ({simulated}); its verdicts are not evidence for any real platform.")


def iso(moment: datetime | None) -> str:
    """ISO 8601 to the second ('' when unknown): stable and readable."""
    return moment.isoformat(timespec="seconds") if moment else ""


OPTIONAL_METADATA = ("repoUrl",)  # the only metadata the program does not require
# PRODUCT.yaml metadata keys in template order, with the template's placeholder for each.
_PLACEHOLDERS = {
    "platformName": "[Platform Name]",
    "platformVersion": "[Platform Version]",
    "vendorName": "[Vendor Name]",
    "websiteUrl": "[Website URL]",
    "repoUrl": "[Repository URL]",
    "documentationUrl": "[Documentation URL]",
    "productLogoUrl": "[Product Logo URL]",
    "description": "[Description]",
    "contactEmailAddress": "[Contact Email Address]",
    "k8sConformanceUrl": "[URL to k8s-conformance submission, e.g., "
                         "https://github.com/cncf/k8s-conformance/tree/master/v{version}/product-name]",
}


@dataclass(frozen=True)
class PlatformMeta:
    """The PRODUCT.yaml metadata the user provides; '' means unknown (placeholder written).

    Fields are spelled like the PRODUCT.yaml keys so a file maps onto them one to one.
    """

    platformName: str = ""
    platformVersion: str = ""
    vendorName: str = ""
    websiteUrl: str = ""
    repoUrl: str = ""
    documentationUrl: str = ""
    productLogoUrl: str = ""
    description: str = ""
    contactEmailAddress: str = ""
    k8sConformanceUrl: str = ""

    def with_overrides(self, **values: str | None) -> PlatformMeta:
        """A copy with the given non-empty values set (command-line options win over the file)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown platform metadata key(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v})

    def product_metadata(self, version: str) -> dict[str, str]:
        """The metadata block for PRODUCT.yaml: placeholders where a required value is unknown.

        An unknown optional value stays empty: the program's validator refuses a placeholder
        in any field, and an empty optional one is accepted.
        """
        out: dict[str, str] = {}
        for key, placeholder in _PLACEHOLDERS.items():
            value: str = getattr(self, key)
            optional = key in OPTIONAL_METADATA
            out[key] = value or ("" if optional else placeholder.format(version=version))
        return out

    def to_json(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in _PLACEHOLDERS}


METADATA_KEYS = ("kubernetesVersion", *_PLACEHOLDERS)


def load_platform_meta(path: Path) -> PlatformMeta:
    """Read the user's platform metadata YAML (keys as in PRODUCT.yaml `metadata`).

    The file may hold the keys at top level or under `metadata:` (so a previous PRODUCT.yaml
    works; its `spec` is ignored). `kubernetesVersion` is accepted and ignored: the run's
    checklist version decides it. Any other key, or a non-text value, is a ValueError whose
    message is one line.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"platform metadata file not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"cannot read platform metadata file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ValueError(f"platform metadata file {path} is not valid YAML{line}") from None
    if data is None:
        return PlatformMeta()
    if not isinstance(data, dict):
        raise ValueError(f"platform metadata file {path} must hold a mapping of metadata keys")
    if "metadata" in data:
        rest = sorted(str(k) for k in data if k not in ("metadata", "spec"))
        if rest:
            raise ValueError(f"platform metadata file {path}: unknown key(s) {', '.join(rest)}")
        data = data["metadata"] or {}
        if not isinstance(data, dict):
            raise ValueError(f"platform metadata file {path}: 'metadata' must be a mapping")
    unknown = sorted(str(k) for k in data if k not in METADATA_KEYS)
    if unknown:
        raise ValueError(
            f"platform metadata file {path}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(METADATA_KEYS)}"
        )
    values: dict[str, str] = {}
    for key, value in data.items():
        if key == "kubernetesVersion" or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"platform metadata file {path}: {key} must be text")
        values[str(key)] = str(value)
    return PlatformMeta(**values)
