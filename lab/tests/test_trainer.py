"""The lab's Kubeflow Trainer: its command line, its webhook configuration from the module's
manifests, and the lab's bookkeeping of its process (no Go build needed)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from aiconformance_lab import build, procs, trainer
from aiconformance_lab.build import BuiltModule
from aiconformance_lab.pki import PKIPaths
from aiconformance_lab.shape import LabShape
from aiconformance_lab.spec import COMPONENTS, SpecInputs
from aiconformance_lab.statedir import StateDir

PATHS = ("clustertrainingruntime", "trainingruntime", "trainjob")


def upstream_webhooks() -> dict:
    """manifests/base/webhook/manifests.yaml of trainer v2.0.0, as the build stores it."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "validating-webhook-configuration"},
        "webhooks": [{
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {
                "name": "webhook-service", "namespace": "system",
                "path": f"/validate-trainer-kubeflow-org-v1alpha1-{kind}"}},
            "failurePolicy": "Fail",
            "name": f"validator.{kind}.trainer.kubeflow.org",
            "rules": [{"apiGroups": ["trainer.kubeflow.org"], "apiVersions": ["v1alpha1"],
                       "operations": ["CREATE", "UPDATE"], "resources": [f"{kind}s"]}],
            "sideEffects": "None",
        } for kind in PATHS],
    }


def built(tmp_path: Path) -> BuiltModule:
    (tmp_path / "webhooks").mkdir()
    (tmp_path / "webhooks" / "manifests.json").write_text(json.dumps(upstream_webhooks()))
    return BuiltModule(build.module_for("trainer-controller-manager"), tmp_path, True, 0.0)


def test_webhook_configuration_calls_the_host_process_by_url(tmp_path: Path) -> None:
    config = trainer.webhook_configuration(built(tmp_path), 40123, b"CA PEM")
    assert config["metadata"]["name"] == "validator.trainer.kubeflow.org"
    assert config["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aic-lab"
    assert [w["clientConfig"] for w in config["webhooks"]] == [
        {"url": f"https://localhost:40123/validate-trainer-kubeflow-org-v1alpha1-{kind}",
         "caBundle": base64.b64encode(b"CA PEM").decode()} for kind in PATHS]
    assert {w["failurePolicy"] for w in config["webhooks"]} == {"Fail"}
    assert [w["name"] for w in config["webhooks"]] == [
        f"validator.{kind}.trainer.kubeflow.org" for kind in PATHS]


def test_spec_binds_loopback_on_allocated_ports(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    inputs = SpecInputs(LabShape(trainer=True), {"trainer-controller-manager": Path("/b/tcm")},
                        {"trainer": 31001, "trainer-webhook": 31002}, PKIPaths(tmp_path), state)
    spec = trainer.spec(inputs)
    assert spec.argv[0] == "/b/tcm"
    assert "--health-probe-bind-address=127.0.0.1:31001" in spec.argv
    assert "--webhook-host=127.0.0.1" in spec.argv
    assert "--webhook-port=31002" in spec.argv
    assert "--leader-elect=false" in spec.argv
    assert f"--webhook-cert-dir={tmp_path / 'operators' / 'trainer' / 'certs'}" in spec.argv
    assert (spec.health_url, spec.webhook_port) == ("http://127.0.0.1:31001/readyz", 31002)


def test_every_built_binary_is_a_lab_process() -> None:
    """procs signals only lab binaries: one the build makes but procs does not know would be
    left running by down and by the cleanup after a killed session."""
    assert {b for m in build.MODULES for b in m.host_processes} <= procs.LAB_BINARIES
    assert "trainer" in COMPONENTS
