"""--aic-install's Helm side: where charts come from, the values the suite owns, the exact helm
command lines (run against a recording stand-in for the helm CLI), and the manager's install and
uninstall of exactly its own releases."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance.cluster import helm
from pytest_aiconformance.cluster.client import ApiError
from pytest_aiconformance.cluster.helm import HelmError, HelmTool
from pytest_aiconformance.cluster.images import Image
from pytest_aiconformance.cluster.operators import OperatorManager, load_operator_specs

KUEUE = {"repo": "oci://registry.k8s.io/kueue/charts", "name": "kueue", "version": "0.17.0"}
IMAGES = {
    "kueue": Image("kueue", "aic-lab.local/kueue", "0123456789ab", None, "p"),
    "pinned": Image("pinned", "mirror.example/kueue", "v0.17.0", "sha256:" + "a" * 64, "p"),
}


def chart_dir(root: Path, version: str) -> Path:
    (root / "kueue").mkdir(parents=True)
    (root / "kueue" / "Chart.yaml").write_text(f"apiVersion: v2\nname: kueue\nversion: {version}\n")
    return root


def test_upstream_oci_and_https_repositories() -> None:
    assert helm.chart_args(KUEUE, None) == (
        ["oci://registry.k8s.io/kueue/charts/kueue", "--version", "0.17.0"],
        "oci://registry.k8s.io/kueue/charts/kueue 0.17.0")
    volcano = {"repo": "https://volcano-sh.github.io/helm-charts", "name": "volcano",
               "version": "1.13.0"}
    assert helm.chart_args(volcano, None) == (
        ["volcano", "--repo", "https://volcano-sh.github.io/helm-charts", "--version", "1.13.0"],
        "volcano 1.13.0 from https://volcano-sh.github.io/helm-charts")


def test_one_repository_url_replaces_every_upstream() -> None:
    assert helm.chart_args(KUEUE, "oci://mirror.example/charts")[0] == [
        "oci://mirror.example/charts/kueue", "--version", "0.17.0"]
    assert helm.chart_args(KUEUE, "https://mirror.example/charts")[0] == [
        "kueue", "--repo", "https://mirror.example/charts", "--version", "0.17.0"]


def test_local_chart_directory_of_the_pinned_version(tmp_path: Path) -> None:
    root = chart_dir(tmp_path, "v0.17.0")  # a leading v is the same version
    args, described = helm.chart_args(KUEUE, str(root))
    assert args == [str(root / "kueue")]
    assert described == f"kueue v0.17.0 from {root / 'kueue'}"


def test_local_chart_of_another_version_is_refused(tmp_path: Path) -> None:
    root = chart_dir(tmp_path, "0.16.2")
    with pytest.raises(HelmError) as err:
        helm.chart_args(KUEUE, str(root))
    assert str(err.value) == (f"chart kueue in {root / 'kueue'} is version 0.16.2; the suite "
                              "pins 0.17.0 (operators.yaml)")


def test_packaged_chart_and_missing_chart(tmp_path: Path) -> None:
    (tmp_path / "kueue-0.17.0.tgz").write_bytes(b"tgz")
    assert helm.chart_args(KUEUE, str(tmp_path))[0] == [str(tmp_path / "kueue-0.17.0.tgz")]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HelmError) as err:
        helm.chart_args(KUEUE, str(empty))
    assert str(err.value) == (f"chart kueue 0.17.0 not found in {empty} (looked for "
                              "kueue/Chart.yaml and kueue-0.17.0.tgz)")


PLACE = {"nodeSelector": "controllerManager.nodeSelector",
         "tolerations": "controllerManager.tolerations"}
GPU_NODE = {"metadata": {"name": "aic-real-0"}, "spec": {"taints": [
    {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
    {"key": "dedicated", "effect": "NoExecute"},
    {"key": "soft", "value": "x", "effect": "PreferNoSchedule"}]}}


def test_values_take_images_from_the_table_and_placement_only_when_asked() -> None:
    base = {"controllerManager": {"replicas": 1, "manager": {"image": {"tag": "main"}},
                                  "tolerations": [{"key": "own", "operator": "Exists"}]}}
    values = helm.install_values(base, {"controllerManager.manager.image": "kueue"}, IMAGES,
                                 PLACE, GPU_NODE)
    assert values == {"controllerManager": {
        "replicas": 1,
        "manager": {"image": {"repository": "aic-lab.local/kueue", "tag": "0123456789ab",
                              "pullPolicy": "IfNotPresent"}},
        "tolerations": [
            {"key": "own", "operator": "Exists"},
            {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
             "effect": "NoSchedule"},
            {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}],
        "nodeSelector": {"kubernetes.io/hostname": "aic-real-0"}}}
    assert base["controllerManager"]["manager"]["image"] == {"tag": "main"}  # not mutated
    unplaced = helm.install_values({}, {"a.image": "pinned"}, IMAGES, PLACE, None)
    assert unplaced == {"a": {"image": {"repository": "mirror.example/kueue",
                                        "tag": "v0.17.0@sha256:" + "a" * 64,
                                        "pullPolicy": "IfNotPresent"}}}
    untainted = helm.install_values({}, {}, IMAGES, PLACE, {"metadata": {"name": "n1"}})
    assert untainted == {"controllerManager": {"nodeSelector": {"kubernetes.io/hostname": "n1"}}}
    with pytest.raises(HelmError, match=r"image 'nope' \(operators.yaml\) is not in the image"):
        helm.install_values({}, {"a.image": "nope"}, IMAGES, {}, None)


def test_kueue_spec_names_its_chart_image_and_placement() -> None:
    spec = load_operator_specs()["kueue"]
    assert spec.chart == KUEUE
    assert spec.images == {"controllerManager.manager.image": "kueue"}
    assert spec.placement == PLACE


def test_find_helm_and_charts_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HelmError) as err:
        helm.find_helm(None)
    assert str(err.value).startswith("--aic-install needs the helm CLI: put helm on PATH")
    not_exec = tmp_path / "helm"
    not_exec.write_text("")
    with pytest.raises(HelmError, match="--aic-helm: not an executable file: "):
        helm.find_helm(not_exec)
    not_exec.chmod(0o755)
    assert helm.find_helm(None) == str(not_exec)
    assert helm.check_charts_option("oci://mirror/charts/") == "oci://mirror/charts"
    assert helm.check_charts_option(str(tmp_path)) == str(tmp_path.resolve())
    with pytest.raises(HelmError) as err:
        helm.check_charts_option("mirror/charts")
    assert str(err.value) == ("--aic-charts: not a directory or a repository URL (oci://, "
                              "https://): mirror/charts")


def fake_helm(tmp_path: Path, list_output: str = "[]", fail: str = "") -> tuple[Path, Path]:
    """A stand-in helm: appends its argv (JSON) to a log; `list` prints list_output."""
    log = tmp_path / "helm.log"
    script = tmp_path / "helm"
    script.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "if '--values' in sys.argv:\n"
        f"    open({str(log) + '.values'!r}, 'a').write("
        "open(sys.argv[sys.argv.index('--values') + 1]).read() + '\\n')\n"
        f"if {fail!r} and {fail!r} in sys.argv: sys.stderr.write('Error: boom\\n'); sys.exit(1)\n"
        f"if 'list' in sys.argv: print({list_output!r})\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_install_and_uninstall_command_lines(tmp_path: Path) -> None:
    script, log = fake_helm(tmp_path)
    tool = HelmTool(str(script), "oci://mirror/charts", "/k/config", "lab")
    described = helm.install(tool, "kueue", KUEUE, "kueue-system", {"a": 1}, "run-1", 300)
    helm.uninstall(tool, "kueue", "kueue-system", 120)
    install, uninstall = calls(log)
    assert described == "oci://mirror/charts/kueue 0.17.0"
    values_file = install[install.index("--values") + 1]
    assert install == [
        "--kubeconfig", "/k/config", "--kube-context", "lab", "upgrade", "--install",
        "aic-kueue", "oci://mirror/charts/kueue", "--version", "0.17.0",
        "--namespace", "kueue-system", "--values", values_file,
        "--labels", "aiconformance.io/run-id=run-1", "--wait", "--timeout", "300s"]
    assert not os.path.exists(values_file)  # a temporary file, gone after the call
    assert uninstall == [
        "--kubeconfig", "/k/config", "--kube-context", "lab", "uninstall", "aic-kueue",
        "--namespace", "kueue-system", "--ignore-not-found", "--wait", "--timeout", "120s"]


def test_failed_install_is_one_line(tmp_path: Path) -> None:
    script, _ = fake_helm(tmp_path, fail="upgrade")
    with pytest.raises(HelmError) as err:
        helm.install(HelmTool(str(script)), "kueue", KUEUE, "kueue-system", {}, "r", 60)
    assert str(err.value) == ("helm install of oci://registry.k8s.io/kueue/charts/kueue 0.17.0 "
                              "failed: Error: boom")


def test_labelled_releases_are_only_the_suites(tmp_path: Path) -> None:
    rows = [{"name": "aic-kueue", "namespace": "kueue-system"},
            {"name": "kueue", "namespace": "prod"}]  # labelled by hand, not ours by name
    script, log = fake_helm(tmp_path, json.dumps(rows))
    assert helm.labelled_releases(HelmTool(str(script))) == [("aic-kueue", "kueue-system")]
    assert helm.labelled_releases(HelmTool(str(script)), "r9") == [("aic-kueue", "kueue-system")]
    first, second = calls(log)
    assert first == ["list", "--all-namespaces", "--all", "--selector",
                     "aiconformance.io/run-id", "--output", "json"]
    assert second[second.index("--selector") + 1] == "aiconformance.io/run-id=r9"


class InstallKube:
    """Nodes (one simulated), namespaces, CRDs appearing once helm has run."""

    def __init__(self, namespaces: set[str], log: Path) -> None:
        self.namespaces, self.log, self.created = namespaces, log, []
        self.forgotten = False
        self.deleted: list[str] = []
        run = {"app.kubernetes.io/managed-by": "pytest-aiconformance",
               "aiconformance.io/run-id": "run-7"}
        # The run's ClusterQueue (Kueue's finalizer on it) and one labelled by another run.
        self.queues = [{"metadata": {"name": "q-run-7", "labels": run}},
                       {"metadata": {"name": "q-other", "labels": {
                           **run, "aiconformance.io/run-id": "run-1"}}}]

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        if kind == "Namespace" and name in self.namespaces:
            return {"metadata": {"name": name}}
        raise ApiError(404, "NotFound", {}, "GET")

    def create(self, obj: dict[str, Any]) -> Any:
        self.created.append(obj)
        self.namespaces.add(obj["metadata"]["name"])
        return obj

    def items(self, api_version: str, kind: str, namespace: str | None = None,
              label_selector: str | None = None, **_: Any) -> list[dict[str, Any]]:
        if kind == "ClusterQueue":
            terms = dict(t.split("=", 1) for t in (label_selector or "").split(",") if t)
            return [q for q in self.queues
                    if all(q["metadata"]["labels"].get(k) == v for k, v in terms.items())]
        if kind == "Node":
            return [{"metadata": {"name": "kwok-gpu-0", "annotations": {"sim": "yes"}}},
                    {"metadata": {"name": "a-real-gpu"}, "spec": {"taints": [
                        {"key": "nvidia.com/gpu", "effect": "NoSchedule"}]}},
                    {"metadata": {"name": "real-0"}}]
        installed = bool(calls(self.log))
        if kind == "CustomResourceDefinition" and installed:
            return [{"metadata": {"name": n}, "status": {"conditions": [
                {"type": "Established", "status": "True"}]}}
                for n in ("clusterqueues.kueue.x-k8s.io", "localqueues.kueue.x-k8s.io",
                          "workloads.kueue.x-k8s.io")]
        if kind == "Deployment" and installed:
            return [{"metadata": {"name": "kueue-controller-manager", "namespace": "kueue-system"},
                     "spec": {"replicas": 1}, "status": {"readyReplicas": 1,
                                                         "availableReplicas": 1,
                                                         "updatedReplicas": 1}}]
        return []

    def get_or_none(self, *args: Any, **kwargs: Any) -> Any:
        return None

    def forget_discovery(self) -> None:
        self.forgotten = True

    def request(self, method: str, path: str) -> Any:
        assert (method, path) == ("GET", "/apis")
        return {"groups": [{"preferredVersion": {"groupVersion": "kueue.x-k8s.io/v1beta1"}},
                           {"preferredVersion": {"groupVersion": "rbac.authorization.k8s.io/v1"}}]}

    def resources(self, api_version: str) -> list[dict[str, Any]]:
        kind = {"kueue.x-k8s.io/v1beta1": "ClusterQueue",
                "rbac.authorization.k8s.io/v1": "ClusterRole"}.get(api_version)
        return [{"name": kind.lower() + "s", "kind": kind, "namespaced": False,
                 "verbs": ["list", "delete", "watch"]}] if kind else []

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> Any:
        return {"metadata": {"resourceVersion": "9"},
                "items": self.items(api_version, kind, namespace, label_selector)}

    def delete(self, api_version: str, kind: str, name: str) -> None:
        self.deleted.append(f"{kind}/{name}")
        self.queues = [q for q in self.queues if q["metadata"]["name"] != name]
        self.namespaces.discard(name if kind == "Namespace" else "")

    def serves(self, api_version: str, kind: str | None = None) -> bool:
        return True


def manager(tmp_path: Path, namespaces: set[str]) -> tuple[OperatorManager, InstallKube, Path]:
    script, log = fake_helm(tmp_path)
    kube = InstallKube(namespaces, log)
    mgr = OperatorManager(kube, "run-7", helm=HelmTool(str(script)),  # type: ignore[arg-type]
                          images=IMAGES,
                          is_simulated=lambda n: "sim" in n["metadata"].get("annotations", {}))
    return mgr, kube, log


def test_manager_installs_into_a_labelled_namespace_on_a_real_node(tmp_path: Path) -> None:
    mgr, kube, log = manager(tmp_path, set())
    found = mgr.ensure("kueue")
    assert found.installed_by_us
    assert kube.forgotten  # the chart's APIs are seen after the install
    assert kube.created == [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "kueue-system", "labels": {"app.kubernetes.io/managed-by": "pytest-aiconformance",
                                           "aiconformance.io/run-id": "run-7"}}}]
    install = calls(log)[0]
    assert install[install.index("upgrade") + 2] == "aic-kueue"
    values = json.loads(Path(f"{log}.values").read_text())
    # The untainted node that runs containers, not the simulated one or the tainted one.
    assert values == {"controllerManager": {
        "manager": {"image": {"repository": "aic-lab.local/kueue", "tag": "0123456789ab",
                              "pullPolicy": "IfNotPresent"}},
        "nodeSelector": {"kubernetes.io/hostname": "real-0"}}}
    assert mgr.installed == ["kueue"]
    said: list[str] = []
    assert mgr.uninstall(said.append) == []
    # The run's Kueue object went while Kueue still ran, then the release; nothing else.
    assert kube.deleted == ["ClusterQueue/q-run-7", "Namespace/kueue-system"]
    assert said == ["deleting ClusterQueue q-run-7 before Kueue goes",
                    "deleting namespace kueue-system"]
    assert calls(log)[-1][:2] == ["uninstall", "aic-kueue"]
    assert mgr.installed == []


def test_manager_leaves_an_existing_namespace_alone(tmp_path: Path) -> None:
    mgr, kube, _ = manager(tmp_path, {"kueue-system"})
    mgr.ensure("kueue")
    assert kube.created == []
    assert mgr.uninstall() == []
    assert "Namespace/kueue-system" not in kube.deleted


def test_install_failure_goes_to_the_fatal_handler(tmp_path: Path) -> None:
    mgr, _, _ = manager(tmp_path, set())
    mgr.helm = HelmTool(mgr.helm.path, str(tmp_path / "nowhere"))  # type: ignore[union-attr]
    messages: list[str] = []

    def fatal(message: str) -> Any:
        messages.append(message)
        raise SystemExit(4)

    mgr.fatal = fatal
    with pytest.raises(SystemExit):
        mgr.ensure("kueue")
    assert messages == [f"--aic-install: chart kueue 0.17.0 not found in {tmp_path / 'nowhere'}"
                        " (looked for kueue/Chart.yaml and kueue-0.17.0.tgz)"]
    # Recorded before helm ran: the session's teardown uninstalls it (nothing to find: fine).
    assert mgr.installed == ["kueue"]
