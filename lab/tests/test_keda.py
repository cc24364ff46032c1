"""The lab's KEDA: its two command lines, the objects from the module's manifests, and its
certificate from the lab CA (no Go build, no cluster)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from aiconformance_lab import build, keda, pki, procs
from aiconformance_lab.build import BuiltModule
from aiconformance_lab.shape import LabShape
from aiconformance_lab.spec import COMPONENTS, SpecInputs
from aiconformance_lab.statedir import StateDir
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

PORTS = {"keda-operator": 21001, "keda-operator-grpc": 21002, "keda-adapter": 21003,
         "keda-adapter-metrics": 21004}

# config/metrics-server/{api_service,role,role_binding}.yaml of KEDA v2.21.0, as stored.
UPSTREAM = [
    {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
     "metadata": {"labels": {"app.kubernetes.io/name": "v1beta1.external.metrics.k8s.io",
                             "app.kubernetes.io/version": "latest",
                             "app.kubernetes.io/part-of": "keda-operator"},
                  "name": "v1beta1.external.metrics.k8s.io"},
     "spec": {"service": {"name": "keda-metrics-apiserver", "namespace": "keda"},
              "group": "external.metrics.k8s.io", "version": "v1beta1",
              "groupPriorityMinimum": 100, "versionPriority": 100}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "keda-external-metrics-reader"},
     "rules": [{"apiGroups": ["external.metrics.k8s.io"], "resources": ["*"], "verbs": ["*"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
     "metadata": {"name": "keda-system-auth-delegator"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                 "name": "system:auth-delegator"},
     "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": "keda"}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
     "metadata": {"name": "keda-auth-reader", "namespace": "kube-system"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                 "name": "extension-apiserver-authentication-reader"},
     "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": "keda"}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
     "metadata": {"name": "keda-hpa-controller-external-metrics"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                 "name": "keda-external-metrics-reader"},
     "subjects": [{"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler",
                   "namespace": "kube-system"}]},
]


def built(tmp_path: Path) -> BuiltModule:
    out = tmp_path / "bin"
    (out / "metrics-server").mkdir(parents=True)
    for i, doc in enumerate(UPSTREAM):
        (out / "metrics-server" / f"doc-{i}.json").write_text(json.dumps(doc))
    (out / "crds").mkdir()
    (out / "crds" / "keda.sh_scaledobjects.json").write_text(json.dumps({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "scaledobjects.keda.sh"}}))
    return BuiltModule(build.module_for("keda-operator"), out, True, 0.0)


def inputs(tmp_path: Path) -> SpecInputs:
    state = StateDir(tmp_path / "state")
    binaries = {"keda-operator": Path("/b/keda-operator"), "keda-adapter": Path("/b/keda-adapter")}
    return SpecInputs(LabShape(keda=True), binaries, PORTS, pki.PKIPaths(tmp_path / "pki"), state)


def test_module_registered_with_its_manifests() -> None:
    module = build.module_for("keda-adapter")
    assert module.name == "keda"
    assert module.directory == "keda"
    assert module.targets == ("tool",)
    assert module.renames == (("github.com/kedacore/keda/v2/cmd/operator", "keda-operator"),
                              ("github.com/kedacore/keda/v2/cmd/adapter", "keda-adapter"))
    assert module.binaries == ("keda-operator", "keda-adapter")
    assert module.manifests == (
        ("crds", "github.com/kedacore/keda/v2", "config/crd/bases/*.yaml"),
        ("metrics-server", "github.com/kedacore/keda/v2", "config/metrics-server/[ar]*.yaml"),
    )
    assert "-X github.com/kedacore/keda/v2/version.Version=2.21.0" in module.ldflags


def test_specs_argv_ports_and_env(tmp_path: Path) -> None:
    ins = inputs(tmp_path)
    certs = tmp_path / "state" / "operators" / "keda" / "certs"
    assert keda.cert_dir(ins) == certs
    operator, adapter = keda.specs(ins)
    kubeconfig = f"{tmp_path / 'state' / 'etc' / 'admin.kubeconfig'}"
    assert operator.name == "keda-operator"
    assert operator.argv == [
        "/b/keda-operator",
        f"--kubeconfig={kubeconfig}",
        "--health-probe-bind-address=127.0.0.1:21001",
        "--metrics-bind-address=0",
        "--metrics-service-bind-address=127.0.0.1:21002",
        f"--cert-dir={certs}",
        f"--ca-dir={tmp_path / 'state' / 'operators' / 'keda' / 'custom-ca'}",
        "--enable-cert-rotation=false",
        "--leader-elect=false",
        "--zap-encoder=console",
        "--zap-log-level=info",
    ]
    assert (operator.health_url, operator.health_tls, operator.port) == (
        "http://127.0.0.1:21001/readyz", "plain", 21001)
    assert adapter.name == "keda-adapter"
    assert adapter.argv == [
        "/b/keda-adapter",
        f"--kubeconfig={kubeconfig}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--secure-port=21003",
        f"--cert-dir={certs}",
        f"--tls-cert-file={certs / 'tls.crt'}",
        f"--tls-private-key-file={certs / 'tls.key'}",
        "--metrics-service-address=127.0.0.1:21002",
        "--port=21004",
        "--zap-encoder=console",
        "--zap-log-level=info",
    ]
    assert (adapter.health_url, adapter.health_tls, adapter.port) == (
        "https://127.0.0.1:21003/readyz", "insecure", 21003)
    env = {"WATCH_NAMESPACE": "", "POD_NAMESPACE": "keda", "KEDA_CLUSTER_OBJECT_NAMESPACE": "keda"}
    assert operator.env == env
    assert adapter.env == env
    assert tuple(PORTS) == keda.PORTS


def test_no_specs_without_keda_and_wiring(tmp_path: Path) -> None:
    ins = inputs(tmp_path)
    assert keda.specs(SpecInputs(LabShape(), ins.binaries, PORTS, ins.pki, ins.state)) == []
    assert LabShape(keda=True).describe().endswith("keda=on")
    assert LabShape.from_dict({k: v for k, v in LabShape(keda=True).to_dict().items()
                               if k != "keda"}).keda is False
    assert {"keda-operator", "keda-adapter"} <= set(COMPONENTS)
    assert {"keda-operator", "keda-adapter"} <= procs.LAB_BINARIES


def test_cluster_objects_route_the_apiservice_to_the_host_process(tmp_path: Path) -> None:
    docs = keda.cluster_objects(built(tmp_path), 21003, b"CA PEM")
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Namespace", "keda"),
        ("Service", "keda-metrics-apiserver"),
        ("APIService", "v1beta1.external.metrics.k8s.io"),
        ("ClusterRole", "keda-external-metrics-reader"),
        ("ClusterRoleBinding", "keda-hpa-controller-external-metrics"),
    ]
    namespace, service, api_service, role, binding = docs
    assert namespace["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "aic-lab"}
    assert service["metadata"]["namespace"] == "keda"
    assert service["spec"] == {"type": "ExternalName", "externalName": "localhost"}
    assert api_service["spec"] == {
        "service": {"name": "keda-metrics-apiserver", "namespace": "keda", "port": 21003},
        "group": "external.metrics.k8s.io", "version": "v1beta1",
        "groupPriorityMinimum": 100, "versionPriority": 100,
        "caBundle": base64.b64encode(b"CA PEM").decode()}
    assert role["rules"] == UPSTREAM[1]["rules"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler",
                                    "namespace": "kube-system"}]
    assert [c["metadata"]["name"] for c in keda.crds(built(tmp_path / "again"))] == [
        "scaledobjects.keda.sh"]


def test_certificate_from_the_lab_ca_serves_and_authenticates(tmp_path: Path) -> None:
    paths = pki.generate(tmp_path / "pki")
    keda.prepare(inputs(tmp_path))
    certs = tmp_path / "state" / "operators" / "keda" / "certs"
    assert sorted(p.name for p in certs.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert (certs / "ca.crt").read_bytes() == paths.ca_cert.read_bytes()
    assert (certs / "tls.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((certs / "tls.crt").read_bytes())
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "localhost", "keda-metrics-apiserver", "keda-metrics-apiserver.keda",
        "keda-metrics-apiserver.keda.svc", "keda-operator.keda.svc"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
