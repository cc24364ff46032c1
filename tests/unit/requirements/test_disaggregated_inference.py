"""disaggregated_inference decisions, with cases that must fail.

Objects are written inline (synthetic) in the shapes llm-d uses (its llm-d.ai/role labels).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_aiconformance.requirements import disaggregated_inference as dis


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def test_llm_d_roles() -> None:
    roles = dis.classify_roles([pod("p-0", **{"llm-d.ai/role": "prefill"}),
                                pod("d-0", **{"llm-d.ai/role": "decode"}),
                                pod("d-1", **{"llm-d.ai/role": "decode"}), pod("other")])
    assert roles is not None
    assert roles.prefill == ("p-0",)
    assert roles.decode == ("d-0", "d-1")
    assert dis.separate_pods(roles)[0]


def test_only_decode_is_not_disaggregated() -> None:
    assert dis.classify_roles([pod("d-0", **{"llm-d.ai/role": "decode"})]) is None
    assert dis.classify_roles([]) is None


def test_a_pod_in_both_roles_is_not_separate() -> None:
    ok, reason = dis.separate_pods(dis.Roles("role", ("both", "p-0"), ("both",)))
    assert not ok
    assert reason == "pods ['both'] are both prefill and decode"


def test_request_id_in_both_logs() -> None:
    rid = "aic-abc123-0011223344"
    pre = {"p-0": f"INFO prefill request {rid} 12 tokens\n", "p-1": "idle\n"}
    dec = {"d-0": f"INFO decode x-request-id={rid} done\n"}
    ok, reason = dis.request_id_in_both(pre, dec, rid)
    assert ok, reason
    assert dis.log_lines_with(pre["p-0"], rid).startswith("INFO prefill")


def test_request_id_only_in_decode_fails() -> None:
    rid = "aic-abc123-0011223344"
    ok, reason = dis.request_id_in_both({"p-0": "other request\n"}, {"d-0": rid}, rid)
    assert not ok
    assert "prefill" in reason


def test_short_request_id_is_refused() -> None:
    assert not dis.request_id_in_both({"p": "a"}, {"d": "a"}, "a")[0]


def service(name: str, selector: dict[str, str] | None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": selector}}


def test_service_for_the_decode_pods() -> None:
    decode = pod("d-0", **{"llm-d.ai/role": "decode", "app": "qwen"})
    services = [service("headless", None), service("prefill", {"llm-d.ai/role": "prefill"}),
                service("decode", {"app": "qwen", "llm-d.ai/role": "decode"}),
                service("all", {"app": "qwen"})]
    found = dis.service_for(services, decode)
    assert found is not None
    assert found["metadata"]["name"] == "decode"
    # A Service without a selector selects nothing, not everything.
    assert dis.service_for(services[:2], decode) is None


def test_first_model_and_completion_body() -> None:
    body = '{"object":"list","data":[{"id":"Qwen/Qwen3-0.6B"},{"id":"other"}]}'
    assert dis.first_model(body) == "Qwen/Qwen3-0.6B"
    assert json.loads(dis.completion_body("Qwen/Qwen3-0.6B")) == {
        "model": "Qwen/Qwen3-0.6B", "prompt": "Say hello.", "max_tokens": 8}
    with pytest.raises(IndexError):
        dis.first_model('{"object":"list","data":[]}')
