"""--aic-install's kit on a lab with a real node: the helm module, the Kueue chart shipped in
the Kueue module, the image built from the same module, and the state-directory layout the
suite reads (installkit.py)."""

from __future__ import annotations

from pathlib import Path

from aiconformance_lab import build, installkit, nodeimages
from aiconformance_lab.build import BuiltModule
from aiconformance_lab.lab import _modules_for
from aiconformance_lab.shape import LabShape


def test_helm_and_the_kueue_chart_are_registered() -> None:
    helm = build.module_for("helm")
    assert (helm.directory, helm.targets, helm.host_processes) == ("helm", ("tool",), ())
    assert "-X helm.sh/helm/v3/internal/version.version=v3.22.0" in helm.ldflags
    kueue = build.module_for("kueue")
    assert kueue.charts == (("kueue", "sigs.k8s.io/kueue", "charts/kueue"),)
    image = nodeimages.spec_for("kueue")
    assert image.binaries == (nodeimages.Binary("kueue", "kueue", "/manager"),)
    assert (image.entrypoint, image.user, image.in_suite) == (("/manager",), nodeimages.NOBODY,
                                                              True)


def test_charts_change_the_cache_key(tmp_path: Path) -> None:
    root = build.source_root()
    kueue = build.module_for("kueue")
    without = build.GoModule(**{**kueue.__dict__, "charts": ()})
    assert build.cache_key(kueue, root, "go1.26.8 linux amd64") != \
        build.cache_key(without, root, "go1.26.8 linux amd64")


def test_a_real_node_lab_builds_the_kit() -> None:
    assert {"helm", "kueue"} <= set(_modules_for(LabShape(real_nodes=1, kueue=False)))
    assert not {"helm", "kueue"} & set(_modules_for(LabShape(real_nodes=0, kueue=False)))


def _built(tmp_path: Path) -> dict[str, BuiltModule]:
    helm_dir, kueue_dir = tmp_path / "helm-x", tmp_path / "kueue-x"
    helm_dir.mkdir(parents=True)
    (helm_dir / "helm").write_text("#!/bin/sh\n")
    (kueue_dir / "charts" / "kueue" / "templates").mkdir(parents=True)
    (kueue_dir / "charts" / "kueue" / "Chart.yaml").write_text("name: kueue\nversion: 0.17.0\n")
    (kueue_dir / "charts" / "kueue" / "templates" / "a.yaml").write_text("{{ .Values.x }}\n")
    return {"helm": BuiltModule(build.module_for("helm"), helm_dir, True, 0.0),
            "kueue": BuiltModule(build.module_for("kueue"), kueue_dir, True, 0.0)}


def test_prepare_links_helm_and_copies_the_charts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert installkit.helm_path(state) is None
    assert installkit.charts_dir(state) is None
    installkit.prepare(state, _built(tmp_path))
    helm = installkit.helm_path(state)
    assert helm == state / "install" / "helm"
    assert helm.resolve() == (tmp_path / "helm-x" / "helm").resolve()
    charts = installkit.charts_dir(state)
    assert charts == state / "install" / "charts"
    assert sorted(p.name for p in charts.iterdir()) == ["kueue"]
    assert (charts / "kueue" / "templates" / "a.yaml").read_text() == "{{ .Values.x }}\n"
    installkit.prepare(state, _built(tmp_path / "again"))  # a second up replaces the kit
    assert helm.resolve() == (tmp_path / "again" / "helm-x" / "helm").resolve()

