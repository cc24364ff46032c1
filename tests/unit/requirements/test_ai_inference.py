"""ai_inference's routing decisions (requirements/ai_inference.py) on recorded curl -si outputs,
and the client pod plumbing they judge (cluster/traffic.py: script, log framing, warm-up).

Recorded inputs: http/http-echo-alb-200.txt (http-echo answering through an ALB, with its
backend-only X-App-Name header), http/kong-404-no-route.txt (the proxy's own 404),
http/kong-200-echoserver.txt (a 200 from a backend that is not http-echo). Client logs are
assembled from those recordings the way the client script frames them.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_aiconformance.cluster import traffic
from pytest_aiconformance.requirements import ai_inference

REC = Path(__file__).resolve().parents[1] / "data" / "recorded"
ECHO_200 = (REC / "http" / "http-echo-alb-200.txt").read_text()
KONG_404 = (REC / "http" / "kong-404-no-route.txt").read_text()
KONG_200 = (REC / "http" / "kong-200-echoserver.txt").read_text()


def framed(label: str, outputs: list[str], rc: int = 0) -> str:
    """A client log as client_script prints it: marker, curl -si output, end line."""
    parts = []
    for i, out in enumerate(outputs, start=1):
        parts.append(f"{traffic.MARKER} {label} {i}\n{out}\n{traffic.END} {label} {i} rc={rc}")
    return "\n".join(parts) + "\n"


def answers(label: str, outputs: list[str], rc: int = 0) -> list[traffic.Answer]:
    return traffic.parse_client_log(framed(label, outputs, rc))[label]


def test_echo_answer_is_from_backend() -> None:
    (a,) = answers("path", [ECHO_200])
    assert a.status == 200
    assert a.from_backend
    assert a.body_text() == "apple"


def test_routed_to_the_intended_backend() -> None:
    verdict = ai_inference.routed_to(answers("path", [ECHO_200, ECHO_200]), "apple")
    assert verdict.ok, verdict.reason


def test_routed_to_fails_for_the_other_backend() -> None:
    verdict = ai_inference.routed_to(answers("path", [ECHO_200]), "banana")
    assert not verdict.ok
    assert "'apple'" in verdict.reason


def test_routed_to_fails_for_a_non_echo_200() -> None:
    # A 200 from some other backend (Kong's echoserver) has no X-App-Name: not our backend.
    verdict = ai_inference.routed_to(answers("path", [KONG_200]), "apple")
    assert not verdict.ok
    assert "X-App-Name" in verdict.reason


def test_routed_to_fails_for_the_proxy_404() -> None:
    assert not ai_inference.routed_to(answers("path", [KONG_404]), "apple").ok


def test_routed_to_needs_answers() -> None:
    assert not ai_inference.routed_to([], "apple").ok


def test_rejection_by_data_plane_on_recorded_404() -> None:
    verdict = ai_inference.rejected_by_data_plane(answers("nopath", [KONG_404, KONG_404]))
    assert verdict.ok, verdict.reason
    assert "404" in verdict.reason


def test_backend_answer_is_not_a_rejection() -> None:
    verdict = ai_inference.rejected_by_data_plane(answers("nopath", [KONG_404, ECHO_200]))
    assert not verdict.ok
    assert "backend answered" in verdict.reason


def test_connection_failure_is_not_a_rejection() -> None:
    # curl exit 7 (connection refused): nothing answered, so nothing was proven.
    verdict = ai_inference.rejected_by_data_plane(answers("nopath", ["curl: (7) refused"], rc=7))
    assert not verdict.ok
    assert "curl exited 7" in verdict.reason


def test_a_200_without_the_header_is_not_a_rejection() -> None:
    verdict = ai_inference.rejected_by_data_plane(answers("nopath", [KONG_200]))
    assert not verdict.ok
    assert "4xx" in verdict.reason


def test_unparseable_output_is_an_error_answer() -> None:
    (a,) = answers("x", ["<html>not http</html>"])
    assert a.response is None
    assert "no HTTP status line" in a.error


def split_log(n_a: int, n_b: int, n_other: int = 0) -> list[traffic.Answer]:
    apple = ECHO_200
    banana = ECHO_200.replace("Content-Length: 6", "Content-Length: 7").rsplit(
        "apple", 1)[0] + "banana\n"
    outs = [apple] * n_a + [banana] * n_b + [KONG_404] * n_other
    return answers("split", outs)


def test_split_within_tolerance_on_a_correct_split() -> None:
    counts = ai_inference.count_backends(split_log(158, 42), ["apple", "banana"])
    assert counts == {"apple": 158, "banana": 42, "other": 0}
    verdict = ai_inference.split_within_tolerance(counts, {"apple": 4, "banana": 1}, 200, 0.12)
    assert verdict.ok, verdict.reason


def test_split_ignoring_weights_fails() -> None:
    # An implementation that ignores weights splits 50/50: outside ±0.12 of 0.8/0.2.
    counts = ai_inference.count_backends(split_log(100, 100), ["apple", "banana"])
    verdict = ai_inference.split_within_tolerance(counts, {"apple": 4, "banana": 1}, 200, 0.12)
    assert not verdict.ok
    assert "outside" in verdict.reason


def test_split_to_one_backend_fails() -> None:
    counts = {"apple": 200, "banana": 0, "other": 0}
    verdict = ai_inference.split_within_tolerance(counts, {"apple": 99, "banana": 1}, 200, 0.05)
    assert not verdict.ok  # within tolerance numerically, but banana got nothing


def test_split_with_rejections_fails() -> None:
    counts = ai_inference.count_backends(split_log(150, 40, 10), ["apple", "banana"])
    verdict = ai_inference.split_within_tolerance(counts, {"apple": 4, "banana": 1}, 200, 0.12)
    assert not verdict.ok
    assert "10 answered otherwise" in verdict.reason


def test_split_needs_two_weighted_backends() -> None:
    assert not ai_inference.split_within_tolerance({"a": 5}, {"a": 1}, 5, 0.1).ok


@pytest.mark.parametrize(("n", "tol"), [(200, 0.12), (400, 0.08), (100, 0.16)])
def test_binomial_tolerance(n: int, tol: float) -> None:
    assert ai_inference.binomial_tolerance(n, {"a": 4, "b": 1}) == tol


# --- control plane: GatewayClass choice and HTTPRoute status --------------------------------


def gateway_class(name: str, accepted: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"controllerName": f"example.com/{name}"},
            "status": {"conditions": [{"type": "Accepted", "status": accepted}]}}


def test_first_accepted_class_by_name() -> None:
    classes = [gateway_class("zeta", "True"), gateway_class("alpha", "False"),
               gateway_class("beta", "True")]
    assert ai_inference.first_accepted_class(classes)["metadata"]["name"] == "beta"


def http_route(*parents: dict[str, str]) -> dict[str, Any]:
    return {"status": {"parents": [
        {"parentRef": {"name": f"gw-{i}"},
         "conditions": [{"type": k, "status": v} for k, v in conds.items()]}
        for i, conds in enumerate(parents)]}}


def test_route_accepted_needs_resolved_refs_on_one_parent() -> None:
    assert ai_inference.route_accepted(http_route({"Accepted": "True", "ResolvedRefs": "True"}))
    assert ai_inference.route_accepted(http_route({"Accepted": "False"},
                                                  {"Accepted": "True", "ResolvedRefs": "True"}))
    # Accepted with a backend that does not resolve (a missing Service) is not enough.
    assert not ai_inference.route_accepted(http_route({"Accepted": "True",
                                                       "ResolvedRefs": "False"}))
    assert not ai_inference.route_accepted(http_route({"Accepted": "True"}))
    assert not ai_inference.route_accepted({})


def test_route_conditions_are_described_per_parent() -> None:
    route = http_route({"Accepted": "True", "ResolvedRefs": "False"}, {"Accepted": "False"})
    assert ai_inference.route_conditions(route) == (
        "gw-0: Accepted=True, ResolvedRefs=False; gw-1: Accepted=False")
    assert ai_inference.route_conditions({"status": {}}) == "no parent status"


def test_verdict_carries_the_counts_it_was_decided_on() -> None:
    counts = {"apple": 150, "banana": 50, "other": 0}
    verdict = ai_inference.split_within_tolerance(counts, {"apple": 4, "banana": 1}, 200, 0.12)
    assert verdict == ai_inference.Verdict(
        True, "split within ±0.12: apple: 150/200 = 0.75 (weight share 0.80); "
              "banana: 50/200 = 0.25 (weight share 0.20)", counts)


# --- the client pod's plumbing (cluster/traffic.py) ------------------------------------------


def test_client_script_runs_bounded_loop(tmp_path: Path) -> None:
    # Run the generated script with a fake curl: exactly the stated number of requests.
    fake = tmp_path / "curl"
    fake.write_text("#!/bin/sh\nprintf 'HTTP/1.1 200 OK\\r\\nX-App-Name: http-echo\\r\\n"
                    "\\r\\nbody-a\\n'\necho call >> \"$CALLS\"\n")
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    script = traffic.client_script([traffic.Case("a", "http://x/", 5),
                                    traffic.Case("b", "http://x/y", 2,
                                                 headers=(("x-ai-eg-model", "m b"),))])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin", "CALLS": str(calls)})
    parsed = traffic.parse_client_log(out.stdout)
    assert [len(parsed["a"]), len(parsed["b"])] == [5, 2]
    assert len(calls.read_text().splitlines()) == 7
    assert ai_inference.routed_to(parsed["a"], "body-a").ok


def test_client_script_rejects_bad_labels() -> None:
    with pytest.raises(ValueError, match="label"):
        traffic.client_script([traffic.Case("a b", "http://x/")])
    with pytest.raises(ValueError, match="at least one"):
        traffic.client_script([traffic.Case("a", "http://x/", 0)])


def test_warmup_lines() -> None:
    log = "WARMUP ok=1 tries=1 url=a\nWARMUP ok=0 tries=60 url=b\n"
    assert traffic.warmups_ok(log) == ["WARMUP ok=0 tries=60 url=b"]


def fake_curl(tmp_path: Path, body_on_call: int | None) -> dict[str, str]:
    """A curl that prints ``body-a`` from call ``body_on_call`` on (never when None)."""
    fake = tmp_path / "curl"
    answer = "" if body_on_call is None else (
        f'[ "$(wc -l < "$CALLS")" -ge {body_on_call} ] && echo body-a\n')
    fake.write_text("#!/bin/sh\necho \"$@\" >> \"$CALLS\"\n" + answer + "exit 0\n")
    fake.chmod(0o755)
    return {"PATH": f"{tmp_path}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls")}


def test_warmup_stops_at_the_expected_backend(tmp_path: Path) -> None:
    env = fake_curl(tmp_path, 3)
    script = traffic.warmup_script("http://x/v1/chat", "body-a", (("x-ai-eg-model", "m b"),),
                                   seconds=30)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True,
                         env=env, timeout=20)
    assert out.stdout == "WARMUP ok=1 tries=3 seconds=30 url=http://x/v1/chat\n"
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["-s --max-time 3 -H x-ai-eg-model: m b http://x/v1/chat"] * 3
    assert traffic.warmups_ok(out.stdout) == []


def test_warmup_gives_up_at_its_deadline(tmp_path: Path) -> None:
    env = fake_curl(tmp_path, None)
    started = time.monotonic()
    out = subprocess.run(["sh", "-c", traffic.warmup_script("http://x/", "body-a", seconds=1)],
                         capture_output=True, text=True, check=True, env=env, timeout=20)
    elapsed = time.monotonic() - started
    line = out.stdout.strip()
    tries = int(line.split()[2].removeprefix("tries="))
    assert line == f"WARMUP ok=0 tries={tries} seconds=1 url=http://x/"
    assert 1 <= tries <= 3
    assert elapsed < 4
    assert traffic.warmups_ok(out.stdout) == [line]


@pytest.mark.parametrize(("seconds", "limit"), [(60, 60), (60 * 0.3, 18), (60 * 2.5, 150),
                                                (0.2, 1)])
def test_warmup_deadline_follows_the_scaled_wait(seconds: float, limit: int) -> None:
    script = traffic.warmup_script("http://x/", "b", seconds=seconds)
    assert script.startswith(f"end=$(( $(date +%s) + {limit} ));")
    assert f"seconds={limit} url=" in script
