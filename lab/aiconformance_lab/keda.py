"""KEDA (v2.21.0) as lab host processes: its operator and its external metrics API server.

KEDA is what pod_autoscaling's custom-metric check tries first: a ScaledObject's trigger reads
a value (here the metrics-api trigger, over HTTP from the check's own pods), KEDA's operator
creates an HPA on an External metric, and KEDA's metrics server answers that metric through
``external.metrics.k8s.io``, which the HPA controller reads.

Both binaries are upstream's mains (``lab/go/keda/cmd``, copied from ``cmd/operator`` and
``cmd/adapter`` at v2.21.0 so the binaries get names of their own) run as host processes with
the admin kubeconfig, as the lab's other operators are:

- the operator (``keda-operator``): controllers for KEDA's kinds, no leader election, probes on
  127.0.0.1, no metrics endpoint, and its gRPC metrics service (which the metrics server asks
  for metric values) on 127.0.0.1 with mutual TLS.  No certificate rotation: KEDA's own
  rotator would patch the APIService; the lab owns it.
- the metrics server (``keda-adapter``): the aggregated API on 127.0.0.1, reached by the API
  server through the ExternalName Service ``keda/keda-metrics-apiserver`` -> ``localhost``
  (as metrics-server is), the APIService ``v1beta1.external.metrics.k8s.io`` from KEDA's own
  manifests with the lab CA as caBundle.  Its Prometheus endpoint binds all interfaces on a
  port the lab chooses (``--port``; upstream has no flag for the host).

One certificate from the lab CA (``certs/``: ``ca.crt``, ``tls.crt``, ``tls.key``, the layout
both read) serves the aggregated API under the Service's DNS name and is both ends of the
gRPC link (server and client), as KEDA's own generated certificate is.

KEDA's scalers run inside the operator: a host process reaches pod IPs and ClusterIPs on the
lab's bridge (kube-proxy), but no cluster DNS name, so the check gives its trigger the
Service's ClusterIP.  KEDA's admission webhooks (``cmd/webhooks``) are not run.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import time
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import bootstrap, objects
from .build import BuiltModule, Progress
from .errors import LabError
from .kapi import KubeAPI, Obj, object_path
from .pki import PKIPaths
from .spec import ProcessSpec, SpecInputs

MODULE = "keda"  # lab/go/keda, build.MODULES
OPERATOR = "keda-operator"  # component and binary
ADAPTER = "keda-adapter"  # component and binary: KEDA's metrics API server
NAMES = (OPERATOR, ADAPTER)  # the components, in start order
# The ports the lab chooses for them (lab._choose_ports).
OPERATOR_GRPC = "keda-operator-grpc"
ADAPTER_METRICS = "keda-adapter-metrics"
PORTS = (OPERATOR, OPERATOR_GRPC, ADAPTER, ADAPTER_METRICS)

NAMESPACE = "keda"
ADAPTER_SERVICE = "keda-metrics-apiserver"  # KEDA's name, which its APIService references
APISERVICE = "v1beta1.external.metrics.k8s.io"
# From KEDA's config/metrics-server: the external metrics reader and its binding to the HPA
# controller's ServiceAccount.  (Its other bindings are for the keda-operator ServiceAccount,
# which host processes with the admin kubeconfig do not use.)
RBAC = ("keda-external-metrics-reader", "keda-hpa-controller-external-metrics")
MANAGED_BY = {"app.kubernetes.io/managed-by": "aic-lab"}
# The aggregator verifies the adapter for <service>.<namespace>.svc; the gRPC client dials
# 127.0.0.1 and verifies that.
CERT_NAMES = (
    "localhost",
    "127.0.0.1",
    ADAPTER_SERVICE,
    f"{ADAPTER_SERVICE}.{NAMESPACE}",
    f"{ADAPTER_SERVICE}.{NAMESPACE}.svc",
    f"{OPERATOR}.{NAMESPACE}.svc",
)
# What both processes read from the environment (upstream's Deployments set the same).
ENV = {
    "WATCH_NAMESPACE": "",  # all namespaces
    "POD_NAMESPACE": NAMESPACE,
    "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
}
_VALIDITY = datetime.timedelta(days=365)


def operator_dir(inputs: SpecInputs) -> Path:
    return inputs.state.operator_dir(MODULE)


def cert_dir(inputs: SpecInputs) -> Path:
    """``ca.crt``, ``tls.crt`` and ``tls.key``: what ``--cert-dir`` of both processes reads."""
    return operator_dir(inputs) / "certs"


def issue_cert(paths: PKIPaths, directory: Path) -> None:
    """Write KEDA's certificate (server and client, ``CERT_NAMES``), issued by the lab CA,
    with the lab CA beside it, into ``directory``."""
    ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(paths.file("ca.key").read_bytes(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise LabError(f"lab CA key {paths.file('ca.key')} is not an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for entry in CERT_NAMES:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            sans.append(x509.DNSName(entry))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keda")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(paths.ca_cert.read_bytes())
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "tls.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)


def prepare(inputs: SpecInputs) -> None:
    """Write the certificates both processes read at start."""
    issue_cert(inputs.pki, cert_dir(inputs))


def operator_argv(binary: str, *, kubeconfig: str, probe_port: int, grpc_port: int,
                  certs: Path, custom_ca: Path) -> list[str]:
    """The operator's command line: probes and gRPC on 127.0.0.1, no metrics endpoint, no
    leader election, no certificate rotation (``--cert-dir`` holds the lab's certificate);
    ``--ca-dir``: extra CAs for scalers' TLS, a directory of the lab's (upstream's default is
    the absolute /custom/ca)."""
    return [
        binary,
        f"--kubeconfig={kubeconfig}",
        f"--health-probe-bind-address=127.0.0.1:{probe_port}",
        "--metrics-bind-address=0",
        f"--metrics-service-bind-address=127.0.0.1:{grpc_port}",
        f"--cert-dir={certs}",
        f"--ca-dir={custom_ca}",
        "--enable-cert-rotation=false",
        "--leader-elect=false",
        "--zap-encoder=console",
        "--zap-log-level=info",
    ]


def adapter_argv(binary: str, *, kubeconfig: str, port: int, metrics_port: int, grpc_port: int,
                 certs: Path) -> list[str]:
    """The metrics server's command line: the aggregated API on 127.0.0.1 with the lab's
    certificate, delegated authentication and authorization, the operator's gRPC service
    on 127.0.0.1."""
    return [
        binary,
        f"--kubeconfig={kubeconfig}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={certs}",
        f"--tls-cert-file={certs / 'tls.crt'}",
        f"--tls-private-key-file={certs / 'tls.key'}",
        f"--metrics-service-address=127.0.0.1:{grpc_port}",
        f"--port={metrics_port}",
        "--zap-encoder=console",
        "--zap-log-level=info",
    ]


def specs(inputs: SpecInputs) -> list[ProcessSpec]:
    """The operator, then the metrics server (which dials the operator's gRPC service), when
    the shape asks for KEDA (``keda``); else none."""
    if not inputs.shape.keda:
        return []
    ports = inputs.ports
    kubeconfig = inputs.admin_kubeconfig
    operator = ProcessSpec(
        OPERATOR,
        operator_argv(inputs.binary(OPERATOR), kubeconfig=kubeconfig,
                      probe_port=ports[OPERATOR], grpc_port=ports[OPERATOR_GRPC],
                      certs=cert_dir(inputs), custom_ca=operator_dir(inputs) / "custom-ca"),
        f"http://127.0.0.1:{ports[OPERATOR]}/readyz",
        "plain",
        ports[OPERATOR],
        env=dict(ENV),
    )
    adapter = ProcessSpec(
        ADAPTER,
        adapter_argv(inputs.binary(ADAPTER), kubeconfig=kubeconfig, port=ports[ADAPTER],
                     metrics_port=ports[ADAPTER_METRICS], grpc_port=ports[OPERATOR_GRPC],
                     certs=cert_dir(inputs)),
        f"https://127.0.0.1:{ports[ADAPTER]}/readyz",
        "insecure",
        ports[ADAPTER],
        env=dict(ENV),
    )
    return [operator, adapter]


def crds(built: BuiltModule) -> list[Obj]:
    """ScaledObject, ScaledJob, (Cluster)TriggerAuthentication, (Cluster)CloudEventSource."""
    return objects.crds(built.manifest_dir("crds"))


def _manifests(built: BuiltModule) -> list[Obj]:
    return [json.loads(p.read_text())
            for p in sorted(built.manifest_dir("metrics-server").glob("*.json"))]


def cluster_objects(built: BuiltModule, adapter_port: int, ca_pem: bytes) -> list[Obj]:
    """Namespace, the adapter's ExternalName Service, KEDA's APIService (the adapter's port,
    the lab CA) and the external metrics reader RBAC, in creation order."""
    found = {(d.get("kind"), d["metadata"]["name"]): d for d in _manifests(built)}
    try:
        api_service = found[("APIService", APISERVICE)]
        rbac = [found[("ClusterRole", RBAC[0])], found[("ClusterRoleBinding", RBAC[1])]]
    except KeyError as err:
        raise LabError(f"KEDA's manifests in {built.manifest_dir('metrics-server')} lack "
                       f"{err.args[0]}; rebuild the lab binaries") from err
    api_service["spec"].pop("insecureSkipTLSVerify", None)
    api_service["spec"]["service"] = {"name": ADAPTER_SERVICE, "namespace": NAMESPACE,
                                      "port": adapter_port}
    api_service["spec"]["caBundle"] = base64.b64encode(ca_pem).decode()
    namespace: Obj = {"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": NAMESPACE, "labels": dict(MANAGED_BY)}}
    service: Obj = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": ADAPTER_SERVICE, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/name": ADAPTER_SERVICE, **MANAGED_BY}},
        "spec": {"type": "ExternalName", "externalName": "localhost"},
    }
    return [namespace, service, api_service, *rbac]


def install(api: KubeAPI, inputs: SpecInputs, built: Mapping[str, BuiltModule],
            progress: Progress) -> None:
    """Apply KEDA's CRDs (Established before the operator starts: controller-runtime exits
    on a kind it cannot watch) and the objects the metrics server needs."""
    t0 = time.monotonic()
    module = built[MODULE]
    crd_list = crds(module)
    docs = cluster_objects(module, inputs.ports[ADAPTER], inputs.pki.ca_cert.read_bytes())
    bootstrap.apply_crds_and_objects(api, crd_list, docs)
    bootstrap.wait_established(api, {c["metadata"]["name"] for c in crd_list})
    progress(f"{len(crd_list)} KEDA CRDs Established, {APISERVICE} registered in "
             f"{time.monotonic() - t0:.1f} s")


def apiservice_available(api: KubeAPI) -> tuple[bool, str]:
    """Whether the aggregator reports KEDA's APIService Available, and its message."""
    svc = api.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE}")
    if svc is None:
        return False, f"APIService {APISERVICE} does not exist"
    for cond in (svc.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Available":
            return cond.get("status") == "True", str(cond.get("message") or cond.get("reason"))
    return False, "no Available condition yet"


def wait_available(api: KubeAPI, progress: Progress, timeout: float = 60.0) -> None:
    """Wait until the API server reaches the metrics server through the APIService."""
    t0 = time.monotonic()
    while True:
        ok, message = apiservice_available(api)
        if ok:
            progress(f"{APISERVICE} Available in {time.monotonic() - t0:.1f} s")
            return
        if time.monotonic() - t0 > timeout:
            raise LabError(f"{APISERVICE} not Available after {timeout:.0f} s: {message}")
        time.sleep(0.5)


def uninstall(api: KubeAPI, built: BuiltModule) -> list[str]:
    """Delete what ``install`` made (APIService first, so the aggregator stops routing to a
    server that is gone); returns what was deleted.  ScaledObjects carry KEDA's finalizer:
    delete them while the operator still runs, or their CRD's deletion waits on them."""
    doomed = [*reversed(cluster_objects(built, 1, b"")), *crds(built)]
    # The APIService before the rest (it is third in creation order).
    doomed.sort(key=lambda d: d["kind"] != "APIService")
    deleted = []
    for doc in doomed:
        status, body = api.request("DELETE", object_path(doc))
        if status < 300:
            deleted.append(f"{doc['kind']}/{doc['metadata']['name']}")
        elif status != 404:
            raise LabError(f"deleting {doc['kind']} {doc['metadata']['name']}: HTTP {status}: "
                           f"{body.get('message', '')}")
    return deleted
