"""advanced_inference_ingress decisions, with cases that must fail.

Objects are written inline (synthetic) in the shapes the Gateway API Inference Extension uses
(v1 and v1alpha2 status); answers are client logs framed as cluster/traffic.py's script prints
them.
"""

from __future__ import annotations

from typing import Any

from pytest_aiconformance.cluster import traffic
from pytest_aiconformance.requirements import advanced_inference_ingress as aii


def pool(parents: list[dict[str, Any]], version: str = "v1", name: str = "vllm-pool",
         namespace: str = "llm") -> dict[str, Any]:
    status = {"parents": parents} if version == "v1" else {"parent": parents}
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "vllm"}},
                     "endpointPickerRef": {"name": "vllm-epp", "port": {"number": 9002}}},
            "status": status}


def parent(**conds: str) -> dict[str, Any]:
    return {"parentRef": {"name": "inference-gateway"},
            "conditions": [{"type": k, "status": v} for k, v in conds.items()]}


def test_pool_accepted_and_resolved() -> None:
    assert aii.pool_accepted(pool([parent(Accepted="True", ResolvedRefs="True")]))[0]
    assert aii.pool_accepted(pool([parent(Accepted="True")], "v1alpha2"))[0]


def test_pool_not_accepted_fails() -> None:
    assert not aii.pool_accepted(pool([parent(Accepted="False")]))[0]
    assert not aii.pool_accepted(pool([]))[0]
    ok, reason = aii.pool_accepted(pool([parent(Accepted="True", ResolvedRefs="False")]))
    assert not ok
    assert "ResolvedRefs=False" in reason


def test_endpoint_picker_refs() -> None:
    assert aii.endpoint_picker(pool([])) == ("vllm-epp", 9002)
    old = {"spec": {"extensionRef": {"name": "epp", "portNumber": 9002}}}
    assert aii.endpoint_picker(old) == ("epp", 9002)
    assert aii.endpoint_picker({"spec": {}}) is None


def test_ready_endpoints() -> None:
    slices = [{"endpoints": [{"conditions": {"ready": True}}, {"conditions": {"ready": False}},
                             {"conditions": {}}]}]
    assert aii.ready_endpoints(slices) == 1
    assert aii.ready_endpoints([]) == 0


def test_first_accepted_pool_by_namespace_and_name() -> None:
    ok = [parent(Accepted="True")]
    pools = [pool(ok, name="b", namespace="z"), pool([parent(Accepted="False")], name="a"),
             pool(ok, name="c", namespace="llm"), pool(ok, name="b", namespace="llm")]
    chosen, reasons = aii.first_accepted_pool(pools)
    assert chosen is pools[3]
    assert reasons == [
        "InferencePool b Accepted by Gateway/inference-gateway",
        "InferencePool a: no parent reports Accepted=True "
        "({'Gateway/inference-gateway': {'Accepted': 'False'}})",
        "InferencePool c Accepted by Gateway/inference-gateway",
        "InferencePool b Accepted by Gateway/inference-gateway"]


def test_no_accepted_pool_is_none_with_every_reason() -> None:
    chosen, reasons = aii.first_accepted_pool([pool([])])
    assert chosen is None
    assert reasons == ["InferencePool vllm-pool has no parent status (no Gateway accepted it)"]
    assert aii.first_accepted_pool([]) == (None, [])


def test_pool_selector() -> None:
    assert aii.pool_selector(pool([])) == "app=vllm"
    # v1alpha2 pools carry the labels directly as the selector.
    old = {"spec": {"selector": {"role": "decode", "app": "vllm"}}}
    assert aii.pool_selector(old) == "app=vllm,role=decode"


def http_route(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"parentRefs": [{"name": "inference-gateway"}], "rules": list(rules)}}


def test_routes_to_pool_needs_the_pool_as_a_backend() -> None:
    to_pool = {"backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool",
                                "name": "vllm-pool"}]}
    to_service = {"backendRefs": [{"kind": "Service", "name": "vllm-pool"}]}
    assert aii.routes_to_pool(http_route(to_service, to_pool), "vllm-pool")
    assert not aii.routes_to_pool(http_route(to_service), "vllm-pool")
    assert not aii.routes_to_pool(http_route(to_pool), "other-pool")
    assert not aii.routes_to_pool(http_route(), "vllm-pool")


def test_route_path_prefix_is_the_last_path_match() -> None:
    rule = {"matches": [{"path": {"type": "PathPrefix", "value": "/llm"}},
                        {"headers": [{"name": "x", "value": "y"}]}]}
    assert aii.route_path_prefix(http_route(rule)) == "/llm"
    assert aii.route_path_prefix(http_route({"matches": []})) == "/"


MODELS_200 = ('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n'
              '{"object":"list","data":[{"id":"Qwen/Qwen3-0.6B","object":"model"}]}')
ERROR_503 = 'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\n\r\nno healthy upstream'


def answers(*outputs: str) -> list[traffic.Answer]:
    log = "".join(f"{traffic.MARKER} models {i}\n{out}\n{traffic.END} models {i} rc=0\n"
                  for i, out in enumerate(outputs, start=1))
    return traffic.parse_client_log(log)["models"]


def test_served_by_model_servers() -> None:
    ok, reason = aii.served_by_model_servers(answers(MODELS_200, MODELS_200, MODELS_200), 3,
                                             "vllm-pool")
    assert ok, reason


def test_an_unhealthy_or_missing_answer_is_not_served() -> None:
    ok, reason = aii.served_by_model_servers(answers(MODELS_200, ERROR_503, MODELS_200), 3,
                                             "vllm-pool")
    assert not ok
    assert reason == ("requests through InferencePool vllm-pool: 200 x 2, 503 x 1; expected "
                      "200 with an OpenAI model list from a model server")
    # Two answers logged for three requests sent is no pass, even if both are good.
    assert not aii.served_by_model_servers(answers(MODELS_200, MODELS_200), 3, "p")[0]
    # A 200 without a model list came from something else than a model server.
    plain = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert not aii.served_by_model_servers(answers(plain, plain, plain), 3, "p")[0]
