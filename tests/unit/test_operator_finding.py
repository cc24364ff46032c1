"""The operator behind an API group (operators.find_operator / assess_operator): found through
the webhooks that name the group, whatever the install's names; CRDs alone never pass."""

from __future__ import annotations

from typing import Any

from pytest_aiconformance.cluster.client import ApiError
from pytest_aiconformance.cluster.operators import (
    OperatorFinding,
    ServiceBackend,
    WebhookRoute,
    assess_operator,
    find_operator,
    load_operator_specs,
)

KUBERAY = load_operator_specs()["kuberay"]
VWC = "ValidatingWebhookConfiguration"
CRDS = [("rayclusters.ray.io", "Established"), ("rayjobs.ray.io", "Established"),
        ("rayservices.ray.io", "Established")]


def established(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"group": "ray.io", **spec},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}}


class FakeKube:
    """Discovery, lists by kind (label selectors of equality terms) and gets by name."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]],
                 served: set[str] | None = None, forbidden: set[str] = frozenset()) -> None:
        self.objects, self.forbidden = objects, forbidden
        self.served = served if served is not None else set(objects) | {"Service"}

    def group_versions(self) -> list[str]:
        return ["v1", "ray.io/v1"]

    def resources(self, gv: str) -> list[dict[str, Any]]:
        return [{"name": "rayclusters"}, {"name": "rayclusters/status"}, {"name": "rayjobs"},
                {"name": "rayservices"}, {"name": "raycronjobs"}] if gv == "ray.io/v1" else []

    def serves(self, api_version: str, kind: str | None = None) -> bool:
        return kind in self.served

    def items(self, api_version: str, kind: str, namespace: str | None = None,
              label_selector: str | None = None) -> list[dict[str, Any]]:
        if kind in self.forbidden:
            raise ApiError(403, "Forbidden", {"message": f'{kind.lower()}s is forbidden: User '
                                                         '"u" cannot list'}, "GET")
        terms = dict(t.split("=", 1) for t in (label_selector or "").split(",") if t)
        return [o for o in self.objects.get(kind, [])
                if all((o["metadata"].get("labels") or {}).get(k) == v
                       for k, v in terms.items())]

    def get_or_none(self, api_version: str, kind: str, name: str,
                    namespace: str | None = None) -> Any:
        return next((o for o in self.objects.get(kind, []) if o["metadata"]["name"] == name
                     and o["metadata"].get("namespace") == namespace), None)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        obj = self.get_or_none(api_version, kind, name, namespace)
        if obj is None:
            raise ApiError(404, "Not Found", {"message": f'{kind.lower()}s "{name}" not found'},
                           "GET")
        return obj


def crd_objects(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    names = ["rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io",
             "raycronjobs.ray.io"]
    return [*extra, *(established(n) for n in names if n not in
                      {e["metadata"]["name"] for e in extra})]


def test_the_groups_served_crds_count_not_only_the_named_ones():
    kube = FakeKube({"CustomResourceDefinition": crd_objects()})
    finding = find_operator(kube, KUBERAY)
    assert [name for name, _ in finding.crds] == [
        "rayclusters.ray.io", "raycronjobs.ray.io", "rayjobs.ray.io", "rayservices.ray.io"]
    verdict = assess_operator(finding)
    assert not verdict.ok
    assert verdict.reason.startswith("CRDs rayclusters.ray.io, raycronjobs.ray.io, "
                                     "rayjobs.ray.io, rayservices.ray.io are Established but "
                                     "no operator was found behind them: ")


def test_mutating_webhook_and_conversion_webhook_lead_to_the_operator():
    conversion = established("raycronjobs.ray.io", conversion={
        "strategy": "Webhook", "webhook": {"clientConfig": {
            "service": {"namespace": "ops", "name": "ray-conv", "port": 443}}}})
    mwc = {"metadata": {"name": "ray-defaults"}, "webhooks": [{
        "name": "mraycluster.example", "clientConfig": {"url": "https://10.0.0.5:9443/m"},
        "rules": [{"apiGroups": ["ray.io"], "resources": ["rayclusters"]}]}]}
    kube = FakeKube({"CustomResourceDefinition": crd_objects(conversion),
                     "MutatingWebhookConfiguration": [mwc],
                     "Service": [{"metadata": {"name": "ray-conv", "namespace": "ops"},
                                  "spec": {"type": "ExternalName",
                                           "externalName": "ray.ops.example"}}]})
    finding = find_operator(kube, KUBERAY)
    assert finding.routes == [
        WebhookRoute("CustomResourceDefinition", "raycronjobs.ray.io", "conversion",
                     "ops/ray-conv", 443),
        WebhookRoute("MutatingWebhookConfiguration", "ray-defaults", "mraycluster.example",
                     url="https://10.0.0.5:9443/m")]
    verdict = assess_operator(finding)
    assert (verdict.ok, verdict.location) == (True, "outside the cluster")
    assert verdict.reason == (
        "CustomResourceDefinition raycronjobs.ray.io webhook conversion calls service "
        "ops/ray-conv -> ExternalName ray.ops.example (outside the cluster); "
        "MutatingWebhookConfiguration ray-defaults webhook mraycluster.example calls "
        "https://10.0.0.5:9443/m")


def test_pods_of_another_namespace_do_not_answer_a_service():
    labels = {"app": "ray-op"}
    kube = FakeKube({
        "CustomResourceDefinition": crd_objects(),
        VWC: [{"metadata": {"name": "v"}, "webhooks": [{
            "name": "w", "clientConfig": {"service": {"namespace": "a", "name": "hook"}},
            "rules": [{"apiGroups": ["ray.io"]}]}]}],
        "Service": [{"metadata": {"name": "hook", "namespace": "a"},
                     "spec": {"selector": labels}}],
        "Pod": [{"metadata": {"name": "p", "namespace": "b", "labels": labels},
                 "status": {"conditions": [{"type": "Ready", "status": "True"}]}}],
        "Deployment": []})
    finding = find_operator(kube, KUBERAY)
    assert finding.backends["a/hook"] == ServiceBackend("a/hook", selector=(("app", "ray-op"),))
    assert not assess_operator(finding).ok


def test_chart_labels_alone_with_a_ready_deployment_pass_and_say_no_webhook():
    finding = OperatorFinding(("ray.io",), CRDS, hints=KUBERAY.deployments,
                              hinted=[("kuberay-system/kuberay-operator", True, "1/1")])
    verdict = assess_operator(finding)
    assert (verdict.ok, verdict.location) == (True, "in the cluster")
    assert verdict.reason == ("Deployment kuberay-system/kuberay-operator 1/1 Ready (found by "
                              "its labels); no admission webhook has a rule for ray.io")


def test_crd_not_established_fails():
    finding = OperatorFinding(("ray.io",), [("rayclusters.ray.io", "not Established"),
                                            ("rayjobs.ray.io", "absent")])
    verdict = assess_operator(finding)
    assert not verdict.ok
    assert verdict.reason == ("CRDs of ray.io not Established: rayclusters.ray.io not "
                              "Established; rayjobs.ray.io absent")
    assert assess_operator(OperatorFinding(("ray.io",))).reason == (
        "no CRD of API group ray.io exists")


def test_a_refused_list_is_quoted_in_the_reason():
    kube = FakeKube({"CustomResourceDefinition": crd_objects(), VWC: [],
                     "MutatingWebhookConfiguration": [], "Deployment": []},
                    forbidden={VWC})
    verdict = assess_operator(find_operator(kube, KUBERAY))
    assert not verdict.ok
    assert verdict.reason.endswith(
        "no ValidatingWebhookConfiguration or MutatingWebhookConfiguration has a rule for API "
        "group ray.io; no Deployment labelled app.kubernetes.io/name=kuberay-operator; cannot "
        'list ValidatingWebhookConfigurations: validatingwebhookconfigurations is forbidden: '
        'User "u" cannot list')
