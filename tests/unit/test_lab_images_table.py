"""A run on the lab's real node uses the images the lab built; an explicit AIC_IMAGES wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aiconformance.run.settings import IMAGES_ENV, images_with_lab


def test_lab_images_replace_the_packaged_ones(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IMAGES_ENV, raising=False)
    lab = tmp_path / "images.yaml"
    lab.write_text("images:\n  probe: aic-lab.local/probe:0123456789ab\n"
                   "  pause: aic-lab.local/pause:ba9876543210\n")
    table = images_with_lab(lab)
    assert table["probe"].ref == "aic-lab.local/probe:0123456789ab"
    assert table["pause"].ref == "aic-lab.local/pause:ba9876543210"
    assert table["curl"].ref == "docker.io/curlimages/curl:8.12.1"  # not built: packaged


def test_an_explicit_override_wins_over_the_lab(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text("images:\n  probe: aic-lab.local/probe:0123456789ab\n")
    mine = tmp_path / "mine.yaml"
    mine.write_text("probe: mirror.example/busybox:1.36.1\n")
    monkeypatch.setenv(IMAGES_ENV, str(mine))
    assert images_with_lab(lab)["probe"].ref == "mirror.example/busybox:1.36.1"


def test_a_bad_override_is_one_usage_line(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text("images:\n  probe: aic-lab.local/probe:0123456789ab\n")
    monkeypatch.setenv(IMAGES_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(pytest.UsageError, match=r"^AIC_IMAGES: .*missing\.yaml: cannot read"):
        images_with_lab(lab)
