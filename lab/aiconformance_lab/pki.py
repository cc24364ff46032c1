"""The lab's PKI, generated with ``cryptography`` at every fresh start.

Kubernetes components refuse to talk without TLS, and the aggregation layer (metrics-server)
needs a second trust root (the front-proxy CA) so the API server can prove which user it is
proxying.  ECDSA P-256 keys make generating the whole set take milliseconds, so a new PKI per
lab costs nothing and no key outlives its lab.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .hostnet import NODE_IP, REAL_NODE_NAME

_VALIDITY = datetime.timedelta(days=365)

SANName = x509.DNSName | x509.IPAddress
CAKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _write_key(path: Path, key: CAKey) -> None:
    # RSA keys in PKCS#1 ("RSA PRIVATE KEY"): the one format cert-controller's rotator reads.
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if isinstance(key, rsa.RSAPrivateKey)
        else serialization.PrivateFormat.PKCS8
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_pair(paths: PKIPaths, stem: str, key: CAKey, cert: x509.Certificate) -> None:
    """``<stem>.crt`` and ``<stem>.key`` in the PKI directory."""
    _write_cert(paths.file(f"{stem}.crt"), cert)
    _write_key(paths.file(f"{stem}.key"), key)


@dataclass(frozen=True)
class _CA:
    key: CAKey
    cert: x509.Certificate


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: CertificatePublicKeyTypes
) -> x509.CertificateBuilder:
    """A certificate for ``subject``, valid from five minutes ago for ``_VALIDITY``."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _make_ca(common_name: str, dns_names: tuple[str, ...] = (), *, rsa_key: bool = False) -> _CA:
    key: CAKey = rsa.generate_private_key(65537, 2048) if rsa_key else _key()
    builder = (
        _builder(_name(common_name), _name(common_name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if dns_names:
        sans = x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names])
        builder = builder.add_extension(sans, critical=False)
    return _CA(key, builder.sign(key, hashes.SHA256()))


def _issue(
    ca: _CA,
    common_name: str,
    *,
    organization: str | None = None,
    server_names: tuple[str, ...] = (),
    client: bool = False,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    usages = []
    if server_names:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        _builder(_name(common_name, organization), ca.cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if server_names:
        sans: list[SANName] = []
        for entry in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(entry)))
            except ValueError:
                sans.append(x509.DNSName(entry))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca.key, hashes.SHA256())


# Names the API server is reached by: directly, and through the in-cluster Service.
APISERVER_NAMES = (
    "127.0.0.1",
    NODE_IP,  # With a real node the API server listens on the node's bridge.
    "localhost",
    "10.96.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
# The aggregator dials metrics-server through an ExternalName Service named "localhost" but
# verifies the certificate against the Service's DNS name.
METRICS_SERVER_NAMES = (
    "127.0.0.1",
    "localhost",
    "metrics-server",
    "metrics-server.kube-system",
    "metrics-server.kube-system.svc",
)

# Operators' admission webhooks run as host processes; the API server calls them at
# https://localhost:<port>/... (clientConfig.url), verifying this certificate with the lab CA.
WEBHOOK_NAMES = ("localhost", "127.0.0.1")

# Kueue manages its webhook certificate itself (cert-controller's rotator; Kueue cannot run
# with it off outside a pod: it then reads a metrics certificate from a fixed /etc path).  The
# lab hands it a valid set up front in its Secret, which the rotator accepts and keeps: a CA of
# its own (the rotator wants the CA key too, so never the lab CA) valid for the rotator's CA
# name, and a serving certificate for the webhook Service's DNS name and for localhost.
KUEUE_CA_NAMES = ("kueue-ca",)
KUEUE_WEBHOOK_NAMES = ("kueue-webhook-service.kueue-system.svc", "localhost", "127.0.0.1")

# Serving certificates issued by the cluster CA: file stem -> (common name, names served).
SERVING: dict[str, tuple[str, tuple[str, ...]]] = {
    "apiserver": ("kube-apiserver", APISERVER_NAMES),
    "metrics-server": ("metrics-server", METRICS_SERVER_NAMES),
    # kwok serves the simulated kubelets' endpoints (metrics-server scrapes them there).
    "kwok": ("kwok", ("127.0.0.1", "localhost")),
    "webhook": ("aic-lab-webhooks", WEBHOOK_NAMES),
}

# Client identities: file stem -> (common name, organization).
CLIENTS: dict[str, tuple[str, str | None]] = {
    "admin": ("aic-lab-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    # The real node (realnode): the API server's client at the kubelet, the kubelet itself
    # (Node authorizer, NodeRestriction) and kube-proxy (bound to system:node-proxier).
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
    "kubelet": (f"system:node:{REAL_NODE_NAME}", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", None),
}


@dataclass(frozen=True)
class PKIPaths:
    """Files of the lab PKI, all under one directory."""

    directory: Path

    def file(self, stem: str) -> Path:
        """``<dir>/<stem>``: e.g. ``file('ca.crt')``."""
        return self.directory / stem

    @property
    def ca_cert(self) -> Path:
        """The cluster CA certificate (also the kubeconfig's trust root)."""
        return self.file("ca.crt")

    def client(self, who: str) -> tuple[Path, Path]:
        """Certificate and key of a client identity in ``CLIENTS``."""
        return self.file(f"{who}.crt"), self.file(f"{who}.key")


def generate(directory: Path) -> PKIPaths:
    """Write a complete, fresh PKI into ``directory`` and return its paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = PKIPaths(directory)

    ca = _make_ca("aic-lab-ca")
    _write_pair(paths, "ca", ca.key, ca.cert)

    for stem, (common_name, names) in SERVING.items():
        _write_pair(paths, stem, *_issue(ca, common_name, server_names=names))
    for who, (common_name, organization) in CLIENTS.items():
        _write_pair(paths, who, *_issue(ca, common_name, organization=organization, client=True))

    # Service-account tokens are signed by the API server and verified by everyone.
    sa_key = _key()
    _write_key(paths.file("sa.key"), sa_key)
    paths.file("sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    # Aggregation layer: the API server authenticates to aggregated APIs with this client.
    front = _make_ca("aic-lab-front-proxy-ca")
    _write_pair(paths, "front-proxy-ca", front.key, front.cert)
    _write_pair(paths, "front-proxy-client", *_issue(front, "front-proxy-client", client=True))
    return paths


def generate_kueue(paths: PKIPaths) -> None:
    """Kueue's own webhook CA (RSA: the rotator parses only PKCS#1 CA keys) and serving cert."""
    kueue = _make_ca("kueue-ca", KUEUE_CA_NAMES, rsa_key=True)
    _write_pair(paths, "kueue-ca", kueue.key, kueue.cert)
    key, cert = _issue(kueue, "kueue-webhook", server_names=KUEUE_WEBHOOK_NAMES)
    _write_pair(paths, "kueue-webhook", key, cert)
