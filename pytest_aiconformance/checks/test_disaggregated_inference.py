"""disaggregated_inference: prefill and decode run in separate pods (a 1.36 SHOULD).

Essential: a serving stack runs prefill and decode in separate, Running pods, recognised by
the role labels of known stacks (llm-d's llm-d.ai/role=prefill|decode and similar).
Essential (data plane): one completion request with a unique x-request-id, sent from inside
the cluster to the Service in front of the decode pods, appears in the logs of a prefill pod
and of a decode pod.
No prefill/decode pods -> failure (Not Implemented); simulated nodes -> not observable.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    EvidenceRecorder,
    Kube,
    RunContext,
    Settings,
    disaggregated_inference,
    get_table,
    name,
    probes,
    simulation,
    traffic,
)

pytestmark = pytest.mark.needs_containers


REQ = "disaggregated_inference"


def roles(kube: Kube,
          evidence: EvidenceRecorder) -> tuple[disaggregated_inference.Roles, list[dict[str, Any]]]:
    """The Running prefill and decode pods; Not Implemented when there are none."""
    pods = [p for p in kube.items("v1", "Pod")
            if p.get("status", {}).get("phase") == "Running"]
    found = disaggregated_inference.classify_roles(pods)
    keys = ", ".join(k for k, _, _ in disaggregated_inference.ROLE_LABELS)
    assert found, ("Not Implemented: no Running prefill and decode pods found (role labels "
                   f"looked for: {keys})")
    chosen = [p for p in pods if name(p) in found.prefill + found.decode]
    evidence.command(f"kubectl get pods -A -l '{found.label} in (prefill,decode)' -o wide",
                     get_table(chosen, POD_WIDE))
    return found, chosen


@pytest.mark.requirement(REQ)
def test_prefill_decode_separate_pods(kube: Kube, evidence: EvidenceRecorder) -> None:
    """Prefill and decode run in separate pods."""
    found, _pods = roles(kube, evidence)
    ok, reason = disaggregated_inference.separate_pods(found)
    evidence.note(reason)
    assert ok, reason


def decode_service(kube: Kube, decode: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The Service in front of the (first) decode pod, where the request is sent."""
    ns = decode[0]["metadata"]["namespace"]
    return disaggregated_inference.service_for(kube.items("v1", "Service", ns), decode[0])


@pytest.mark.requirement(REQ)
def test_request_id_in_both_logs(kube: Kube, namespace: str, run_context: RunContext,
                                 evidence: EvidenceRecorder, timeout: Callable[[float], float],
                                 aic_settings: Settings) -> None:
    """One request id appears in the logs of a prefill pod and of a decode pod."""
    found, pods = roles(kube, evidence)
    simulation.require_running_containers(kube, sorted({p["spec"]["nodeName"] for p in pods}))
    decode = [p for p in pods if name(p) in found.decode]
    svc = decode_service(kube, decode)
    assert svc, "no Service selects the decode pods, so no request can be sent to them"
    port = svc["spec"]["ports"][0]["port"]
    base = f"http://{name(svc)}.{svc['metadata']['namespace']}.svc:{port}"
    script = traffic.client_script([traffic.Case("models", f"{base}/v1/models")], max_time=30)
    probes.run_probe(kube, run_context, namespace,
                      traffic.client_pod("models", namespace, script, aic_settings.image("curl")),
                      timeout=timeout(120))
    models = traffic.parse_client_log(kube.logs(namespace, "models", "client")).get("models", [])
    assert models, f"GET {base}/v1/models: no answer"
    assert models[0].status == 200, f"GET {base}/v1/models: {traffic.status_summary(models)}"
    model = disaggregated_inference.first_model(models[0].body_text())
    request_id = f"aic-{run_context.run_id}-{secrets.token_hex(6)}"
    body = disaggregated_inference.completion_body(model)
    case = traffic.Case("completion", f"{base}/v1/completions", 1, method="POST", body=body,
                        headers=(("Content-Type", "application/json"),
                                 ("x-request-id", request_id)))
    probes.run_probe(kube, run_context, namespace,
                      traffic.client_pod("completion", namespace,
                                         traffic.client_script([case], max_time=120),
                                         aic_settings.image("curl")),
                      timeout=timeout(300))
    answers = traffic.parse_client_log(kube.logs(namespace, "completion", "client")).get(
        "completion", [])
    evidence.http(f"curl -si -X POST {base}/v1/completions -H 'x-request-id: {request_id}' "
                  f"--data-raw '{body}'", traffic.first_raw(answers))
    assert answers, "completion request: no answer"
    assert answers[0].status == 200, f"completion request: {traffic.status_summary(answers)}"

    def logs(names: tuple[str, ...]) -> dict[str, str]:
        ns_of = {name(p): p["metadata"]["namespace"] for p in pods}
        return {n: kube.logs(ns_of[n], n, tail=2000) for n in names}

    prefill_logs, decode_logs = logs(found.prefill), logs(found.decode)
    for pod_name, text in {**prefill_logs, **decode_logs}.items():
        lines = disaggregated_inference.log_lines_with(text, request_id)
        if lines:
            evidence.log(f"{pod_name}: lines with {request_id}", lines,
                         f"kubectl logs {pod_name} | grep {request_id}")
    ok, reason = disaggregated_inference.request_id_in_both(prefill_logs, decode_logs, request_id)
    evidence.note(reason)
    assert ok, reason
