"""The operators a lab can run as host processes: KubeRay, Kueue, Karpenter and Trainer.

For each: the files it reads at start (serving certificates, Kueue's configuration), its
process spec, and its installation into the cluster (CRDs, webhook configurations and what
those need), done before the operator starts.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from . import bootstrap, karpenter, objects, pki, trainer
from .build import BuiltModule, Progress
from .kapi import KubeAPI, Obj
from .shape import LabShape
from .spec import ProcessSpec, SpecInputs
from .statedir import StateDir

# The operators, each named like the LabShape switch and the Go module that builds it.
NAMES = ("kuberay", "kueue", "karpenter", "trainer")


def enabled(shape: LabShape) -> list[str]:
    """The operators ``shape`` switches on."""
    return [name for name in NAMES if getattr(shape, name)]


def prepare(inputs: SpecInputs) -> None:
    """Write what the operators read at start: Kueue's PKI, serving certificate and config,
    Karpenter's instance types."""
    if inputs.shape.karpenter:
        karpenter.prepare(inputs)
    if not inputs.shape.kueue:
        return
    paths = inputs.pki
    pki.generate_kueue(paths)
    # Kueue reads its serving certificate from certDir (in a pod, the mounted Secret).
    cert_dir = inputs.state.operator_dir("kueue") / "certs"
    _install_serving_cert(paths, "kueue-webhook", cert_dir)
    ports = inputs.ports
    config = objects.kueue_configuration(ports["kueue"], ports["kueue-webhook"], cert_dir)
    (inputs.state.etc / "kueue.yaml").write_text(yaml.safe_dump(config))


def specs(inputs: SpecInputs) -> list[ProcessSpec]:
    """The specs of the operators the shape switches on (KubeRay first)."""
    result = []
    if inputs.shape.kuberay:
        result.append(_kuberay(inputs))
    if inputs.shape.kueue:
        result.append(_kueue(inputs))
    if inputs.shape.karpenter:
        result.append(karpenter.spec(inputs))
    if inputs.shape.trainer:
        result.append(trainer.spec(inputs))
    return result


def install(
    api: KubeAPI, inputs: SpecInputs, built: dict[str, BuiltModule], progress: Progress
) -> None:
    """Apply the operators' CRDs and webhook configurations; write their serving certs.

    The webhook configurations exist before their servers do: with failurePolicy Fail,
    the API server refuses the operator's kinds until the server answers, never lets one
    through unchecked.  ``up`` returns only once the servers answer.
    """
    t0 = time.monotonic()
    crds: list[Obj] = []
    docs: list[Obj] = []
    if inputs.shape.kuberay:
        _install_serving_cert(inputs.pki, "webhook", _kuberay_cert_dir(inputs.state))
        crds += objects.crds(built["kuberay"].manifest_dir("crds"))
        docs += objects.kuberay_objects(inputs.pki.ca_cert.read_bytes())
    if inputs.shape.kueue:
        crds += _kueue_crds(inputs, built["kueue"])
        docs += _kueue_objects(inputs, built["kueue"])
    if inputs.shape.karpenter:
        crds += karpenter.crds(built["karpenter"])
    if inputs.shape.trainer:
        _install_serving_cert(inputs.pki, "webhook", trainer.cert_dir(inputs))
        crds += trainer.crds(built["trainer"])
        docs.append(trainer.webhook_configuration(
            built["trainer"], inputs.ports["trainer-webhook"], inputs.pki.ca_cert.read_bytes()))
    bootstrap.apply_crds_and_objects(api, crds, docs)
    bootstrap.wait_established(api, {c["metadata"]["name"] for c in crds})
    if inputs.shape.karpenter:  # Custom resources: only once their CRDs are Established.
        for doc in karpenter.cluster_objects(inputs.shape):
            api.apply(doc)
    progress(f"{len(crds)} operator CRDs Established in {time.monotonic() - t0:.1f} s")


def _kuberay(inputs: SpecInputs) -> ProcessSpec:
    # controller-runtime reads its webhook serving certificate from
    # $TMPDIR/k8s-webhook-server/serving-certs (no flag for it in ray-operator).
    tmp = inputs.state.operator_dir("kuberay")
    port = inputs.ports["kuberay"]
    argv = [
        inputs.binary("ray-operator"),
        f"--kubeconfig={inputs.admin_kubeconfig}",
        "--metrics-addr=0",  # "0": no metrics endpoint
        f"--health-probe-bind-address=127.0.0.1:{port}",
        "--enable-leader-election=false",
        "--log-stdout-encoder=console",
    ]
    return ProcessSpec(
        "kuberay",
        argv,
        f"{inputs.url('kuberay', 'http')}/readyz",
        "plain",
        port,
        env={"ENABLE_WEBHOOKS": "true", "TMPDIR": str(tmp)},
        webhook_port=inputs.ports["kuberay-webhook"],
    )


def _kuberay_cert_dir(state: StateDir) -> Path:
    """Where controller-runtime looks for KubeRay's serving certificate (below its TMPDIR)."""
    return state.operator_dir("kuberay") / "k8s-webhook-server" / "serving-certs"


def _kueue(inputs: SpecInputs) -> ProcessSpec:
    argv = [
        inputs.binary("kueue"),
        f"--kubeconfig={inputs.admin_kubeconfig}",
        f"--config={inputs.state.etc / 'kueue.yaml'}",
    ]
    return ProcessSpec(
        "kueue",
        argv,
        f"{inputs.url('kueue', 'http')}/readyz",
        "plain",
        inputs.ports["kueue"],
        webhook_port=inputs.ports["kueue-webhook"],
        webhook_ca="kueue-ca.crt",
    )


def _kueue_crds(inputs: SpecInputs, built: BuiltModule) -> list[Obj]:
    kueue_ca = inputs.pki.file("kueue-ca.crt").read_bytes()
    return objects.kueue_crds(built.manifest_dir("crds"), inputs.ports["kueue-webhook"], kueue_ca)


def _kueue_objects(inputs: SpecInputs, built: BuiltModule) -> list[Obj]:
    f = inputs.pki.file
    return objects.kueue_objects(
        built.manifest_dir("webhooks"),
        inputs.ports["kueue-webhook"],
        f("kueue-ca.crt").read_bytes(),
        f("kueue-ca.key").read_bytes(),
        f("kueue-webhook.crt").read_bytes(),
        f("kueue-webhook.key").read_bytes(),
    )


def _install_serving_cert(paths: pki.PKIPaths, stem: str, cert_dir: Path) -> None:
    """Copy ``<stem>.crt``/``.key`` into ``cert_dir`` as ``tls.crt``/``tls.key``."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(paths.file(f"{stem}.crt"), cert_dir / "tls.crt")
    shutil.copyfile(paths.file(f"{stem}.key"), cert_dir / "tls.key")
    (cert_dir / "tls.key").chmod(0o600)
