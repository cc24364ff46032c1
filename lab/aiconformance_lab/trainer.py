"""Kubeflow Trainer (v2.0.0) as a lab host process: controllers and validating webhooks.

The binary is our own main over Trainer's packages (``lab/go/trainer/main.go``): upstream's runs a
certificate rotator that patches the webhook configuration and reads its certificate from a
fixed /tmp path.  Here the webhook server listens on 127.0.0.1 at a port the lab chooses, with
a serving certificate from the lab CA, and the lab owns the ValidatingWebhookConfiguration
(Trainer's own, from the module's manifests, with ``clientConfig.url``).  The CRDs come from the
same module source, plus the JobSet CRD at the version Trainer requires: Trainer builds a
JobSet per TrainJob and refuses to watch JobSets whose CRD is missing.  No JobSet controller
runs: a JobSet stays as Trainer made it (no Jobs, no pods), which is enough to see Trainer
reconcile a TrainJob and repair a deleted JobSet.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from . import objects
from .build import BuiltModule
from .errors import LabError
from .kapi import Obj
from .spec import ProcessSpec, SpecInputs

# The configuration's name in Trainer's release manifests (kustomize patch of the base name).
WEBHOOK_CONFIGURATION = "validator.trainer.kubeflow.org"


def cert_dir(inputs: SpecInputs) -> Path:
    """Where the webhook server reads tls.crt and tls.key."""
    return inputs.state.operator_dir("trainer") / "certs"


def spec(inputs: SpecInputs) -> ProcessSpec:
    """The controller manager: probes and webhook server on 127.0.0.1, no leader election."""
    port = inputs.ports["trainer"]
    argv = [
        inputs.binary("trainer-controller-manager"),
        f"--kubeconfig={inputs.admin_kubeconfig}",
        f"--health-probe-bind-address=127.0.0.1:{port}",
        "--webhook-host=127.0.0.1",
        f"--webhook-port={inputs.ports['trainer-webhook']}",
        f"--webhook-cert-dir={cert_dir(inputs)}",
        "--leader-elect=false",
    ]
    return ProcessSpec(
        "trainer",
        argv,
        f"{inputs.url('trainer', 'http')}/readyz",
        "plain",
        port,
        webhook_port=inputs.ports["trainer-webhook"],
    )


def crds(built: BuiltModule) -> list[Obj]:
    """Trainer's CRDs and JobSet's."""
    return objects.crds(built.manifest_dir("crds")) + objects.crds(
        built.manifest_dir("jobset-crds"))


def webhook_configuration(built: BuiltModule, webhook_port: int, ca_pem: bytes) -> Obj:
    """Trainer's ValidatingWebhookConfiguration, calling the host process by URL."""
    found = [json.loads(p.read_text()) for p in sorted(built.manifest_dir("webhooks").glob(
        "*.json"))]
    configs = [c for c in found if c.get("kind") == "ValidatingWebhookConfiguration"]
    if len(configs) != 1:
        raise LabError(f"Trainer's ValidatingWebhookConfiguration missing in "
                       f"{built.manifest_dir('webhooks')}")
    config: Obj = configs[0]
    config["metadata"] = {
        "name": WEBHOOK_CONFIGURATION,
        "labels": {"app.kubernetes.io/name": "trainer", "app.kubernetes.io/managed-by": "aic-lab"},
    }
    ca = base64.b64encode(ca_pem).decode()
    for webhook in config["webhooks"]:
        path = webhook["clientConfig"]["service"]["path"]
        webhook["clientConfig"] = {"url": f"https://localhost:{webhook_port}{path}",
                                   "caBundle": ca}
        webhook["timeoutSeconds"] = 10
    return config
