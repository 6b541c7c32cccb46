"""The fake OpenAI server itself: the API's shape, its default verdicts, faults, counters and concurrency."""

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from annotate.schema import PRESET_KINDS, label_validate, preset, schema_validate
from routing.judges.templates import BUILTIN_TEMPLATES
from routing.judges.verdicts import logprob_confidence
from tests.fakes import FakeOpenAIServer, FakeReply, Fault, FaultPlan, key_for
from tests.fakes.openai_server import REFUSAL_TEXT, tokenize

SIMPLE = schema_validate(preset("simple-pairwise"), "pairwise")
COMBINATIONS = [
    (template, name)
    for name, kind in sorted(PRESET_KINDS.items())
    for template in (["pairwise-arena", "llmbar"] if kind == "pairwise" else ["rubric-prometheus"])
]


def send(server, body, *, method="POST", path="/v1/chat/completions", timeout=5.0, headers=None):
    """One request over plain http.client: (status, headers, raw body)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def chat(server, messages=None, **extra):
    messages = messages or [{"role": "user", "content": "Which is better? Answer [[A>B]] or [[B>A]]."}]
    status, headers, raw = send(server, {"model": "judge-1", "messages": messages, **extra})
    return status, headers, raw


def completion(server, messages=None, **extra):
    status, _, raw = chat(server, messages, **extra)
    assert status == 200, raw
    return json.loads(raw)


def judge_messages(template_name, preset_name, *, item=0, structured=False):
    template = BUILTIN_TEMPLATES[template_name]
    schema = schema_validate(preset(preset_name), PRESET_KINDS[preset_name])
    kwargs = {"responses": [f"A{item}", f"B{item}"]} if template.kind == "pairwise" else {"response": f"R{item}"}
    messages = template.render(
        campaign_schema=schema, kind=template.kind, prompt=f"Question {item}?", structured=structured, **kwargs
    )
    return template, schema, messages


@pytest.fixture
def server():
    with FakeOpenAIServer() as running:
        yield running


# The API's shape


def test_models_are_listed_and_unknown_paths_are_404(server):
    status, _, raw = send(server, None, method="GET", path="/v1/models")
    assert status == 200 and json.loads(raw)["data"][0] == {
        "id": "fake-judge",
        "object": "model",
        "created": 1700000000,
        "owned_by": "tandem-tests",
    }
    assert json.loads(send(server, None, method="GET", path="/v1/models/gpt-x")[2])["id"] == "gpt-x"
    status, _, raw = send(server, {"model": "m", "messages": []}, path="/v1/embeddings")
    assert status == 404 and json.loads(raw)["error"]["code"] == "not_found"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"messages": []}', b'{"model": "m"}'])
def test_a_malformed_request_is_a_400(server, body):
    status, _, raw = send(server, body)
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    assert server.calls == 0


def test_a_completion_has_the_openai_shape(server):
    status, headers, raw = chat(server)
    body = json.loads(raw)
    assert status == 200 and headers["content-type"] == "application/json"
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "judge-1" and isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop" and choice["logprobs"] is None
    assert choice["message"]["role"] == "assistant" and choice["message"]["refusal"] is None
    assert choice["message"]["content"].rstrip().endswith(("[[A>B]]", "[[B>A]]"))
    usage = body["usage"]
    assert usage["completion_tokens"] == len(tokenize(choice["message"]["content"]))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] and usage["prompt_tokens"] > 4


def test_n_asks_for_several_choices(server):
    body = completion(server, n=3)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]


@pytest.mark.parametrize(("template_name", "preset_name"), COMBINATIONS)
@pytest.mark.parametrize("structured", [False, True])
def test_the_default_judge_answers_every_template_in_its_own_format(server, template_name, preset_name, structured):
    template, schema, messages = judge_messages(template_name, preset_name, structured=structured)
    extra = {"response_format": template.response_format(schema)} if structured else {}
    content = completion(server, messages, **extra)["choices"][0]["message"]["content"]
    result = template.parse(content, campaign_schema=schema)
    assert result.ok, (content, result.failure)
    kind = "pairwise" if template.kind == "pairwise" else "rubric"
    label_validate(schema=schema, kind=kind, label=result.label, partial=True, source="judge")
    if structured:
        json.loads(content)
    # Deterministic per prompt: the same messages get the same verdict.
    assert completion(server, messages, **extra)["choices"][0]["message"]["content"] == content


def test_default_verdicts_vary_across_prompts(server):
    verdicts = set()
    for item in range(30):
        template, schema, messages = judge_messages("pairwise-arena", "multipref", item=item)
        content = completion(server, messages)["choices"][0]["message"]["content"]
        verdicts.add(template.parse(content, campaign_schema=schema).label["overall"])
    assert verdicts == {-2, -1, 0, 1, 2}


def test_logprobs_come_with_top_alternatives_when_asked(server):
    template, schema, messages = judge_messages("pairwise-arena", "multipref")
    body = completion(server, messages, logprobs=True, top_logprobs=3)
    choice = body["choices"][0]
    content, entries = choice["message"]["content"], choice["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == content
    assert all(bytes(e["bytes"]) == e["token"].encode() for e in entries)
    assert all(1 <= len(e["top_logprobs"]) <= 3 and e["top_logprobs"][0]["token"] == e["token"] for e in entries)
    result = template.parse(content, campaign_schema=schema)
    tokens = template.verdict_tokens(schema)
    for key, (start, _) in result.spans.items():
        confidence = logprob_confidence(entries, tokens[key], at=start)
        assert 0.0 < confidence < 1.0
    assert (
        completion(server, messages, logprobs=True, top_logprobs=0)["choices"][0]["logprobs"]["content"][0][
            "top_logprobs"
        ]
        == []
    )


def test_an_answer_callable_decides_what_the_judge_says():
    seen = []

    def answer(request):
        seen.append(request["model"])
        return FakeReply("Output (b)", finish_reason="length") if request.get("seed") else "Output (a)"

    with FakeOpenAIServer(answer=answer) as server:
        assert completion(server)["choices"][0]["message"]["content"] == "Output (a)"
        choice = completion(server, seed=1)["choices"][0]
        assert (choice["message"]["content"], choice["finish_reason"]) == ("Output (b)", "length")
    assert seen == ["judge-1", "judge-1"]


def test_an_api_key_is_required_when_set():
    with FakeOpenAIServer(api_key="sk-test") as server:
        status, _, raw = chat(server)
        assert status == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"
        status, _, _ = send(
            server,
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer sk-test"},
        )
        assert status == 200 and server.calls == 1


# Faults


def test_a_429_carries_retry_after_and_the_next_call_succeeds():
    with FakeOpenAIServer(faults=FaultPlan(by_call={1: Fault("429", retry_after=0.25)})) as server:
        status, headers, raw = chat(server)
        assert status == 429
        assert headers["retry-after"] == "0.25" and headers["retry-after-ms"] == "250"
        assert json.loads(raw)["error"]["code"] == "rate_limit_exceeded"
        assert chat(server)[0] == 200
        assert server.faults_served == {"429": 1}


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("503", 503)])
def test_server_errors(kind, status):
    with FakeOpenAIServer(faults=FaultPlan(by_call={1: kind})) as server:
        code, headers, raw = chat(server)
        assert code == status and json.loads(raw)["error"]["type"] == "server_error"
        assert ("retry-after" in headers) == (kind == "503")


def test_a_dropped_connection_gets_no_response():
    with FakeOpenAIServer(faults=FaultPlan(by_call={1: "drop"})) as server:
        with pytest.raises(ConnectionError):  # http.client.RemoteDisconnected or a reset
            chat(server)
        assert chat(server)[0] == 200


def test_a_timeout_outlasts_the_client_and_stopping_does_not_wait_for_it():
    with FakeOpenAIServer(faults=FaultPlan(by_call={1: "timeout"}), hang_seconds=30) as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            send(server, {"model": "m", "messages": [{"role": "user", "content": "hi"}]}, timeout=0.3)
        assert server.in_flight == 1
    assert time.monotonic() - started < 5


def test_truncated_garbage_and_refusal_texts_fail_to_parse():
    template = BUILTIN_TEMPLATES["pairwise-arena"]
    plan = FaultPlan(by_call={1: "truncated", 2: "garbage", 3: "refusal"})
    with FakeOpenAIServer(faults=plan) as server:
        _, _, messages = judge_messages("pairwise-arena", "simple-pairwise")
        truncated, garbage, refusal = (completion(server, messages)["choices"][0] for _ in range(3))
        whole = completion(server, messages)["choices"][0]["message"]["content"]
    assert truncated["finish_reason"] == "length" and whole.startswith(truncated["message"]["content"])
    assert not template.parse(truncated["message"]["content"], campaign_schema=SIMPLE).ok
    assert template.parse(garbage["message"]["content"], campaign_schema=SIMPLE).failure.startswith("no verdict found")
    assert refusal["message"]["content"] == REFUSAL_TEXT
    assert "refused" in template.parse(refusal["message"]["content"], campaign_schema=SIMPLE).failure


def test_a_structured_refusal_comes_in_the_refusal_field():
    template = BUILTIN_TEMPLATES["pairwise-arena"]
    with FakeOpenAIServer(faults=FaultPlan(by_call={1: "refusal"})) as server:
        message = completion(server, response_format=template.response_format(SIMPLE))["choices"][0]["message"]
    assert message == {"role": "assistant", "content": None, "refusal": REFUSAL_TEXT}


def test_bad_json_is_a_200_that_does_not_decode():
    with FakeOpenAIServer(faults=FaultPlan(by_call={1: "bad_json"})) as server:
        status, _, raw = chat(server)
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(raw)


def test_faults_by_attempt_fail_each_prompt_once_and_the_counters_show_it():
    with FakeOpenAIServer(faults=FaultPlan(by_attempt={1: "429"})) as server:
        for item in range(3):
            messages = [{"role": "user", "content": f"item {item}"}]
            assert chat(server, messages)[0] == 429
            assert chat(server, messages)[0] == 200
        key = key_for([{"role": "user", "content": "item 0"}])
        assert server.received[key] == 2 and server.answered[key] == 1
        assert server.calls == 6 and sum(server.answered.values()) == 3 and server.faults_served == {"429": 3}
        assert [r["messages"][0]["content"] for r in server.requests][:2] == ["item 0", "item 0"]
        server.reset()
        assert server.calls == 0 and not server.received and not server.requests and server.max_in_flight == 0


def faulted_items(seed, rate=0.3, count=120):
    with FakeOpenAIServer(faults=FaultPlan(rate=rate, kinds=("500", "503"), seed=seed)) as server:
        statuses = {item: chat(server, [{"role": "user", "content": f"item {item}"}])[0] for item in range(count)}
    return {item for item, status in statuses.items() if status != 200}, statuses


def test_random_faults_are_reproducible_from_the_seed():
    first, statuses = faulted_items(seed=7)
    assert set(statuses.values()) <= {200, 500, 503}
    assert 0.15 * 120 < len(first) < 0.45 * 120
    assert faulted_items(seed=7)[0] == first
    assert faulted_items(seed=8)[0] != first


def test_fault_plans_are_validated():
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("418")
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan(kinds=("429", "teapot"))
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=1.5)


# Latency, concurrency, lifecycle


def test_latency_is_applied_per_request():
    with FakeOpenAIServer(latency=(0.2, 0.3)) as server:
        started = time.monotonic()
        chat(server)
        assert time.monotonic() - started >= 0.2


def test_many_slow_requests_are_served_at_once_and_the_gauge_records_it():
    clients = 80
    barrier = threading.Barrier(clients)

    def one(item):
        barrier.wait()
        return chat(server, [{"role": "user", "content": f"item {item}"}])[0]

    with FakeOpenAIServer(latency=1.0) as server:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            statuses = list(pool.map(one, range(clients)))
        elapsed = time.monotonic() - started
        assert statuses == [200] * clients
        assert server.max_in_flight >= 64 and server.in_flight == 0
        assert elapsed < 10  # one at a time would take 80 s
        assert len(server.answered) == clients and max(server.answered.values()) == 1


def test_leaving_the_context_closes_the_port():
    with FakeOpenAIServer() as server:
        port = server.port
        assert server.base_url == f"http://127.0.0.1:{port}/v1"
        chat(server)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port


def test_keep_alive_connections_serve_several_requests():
    with FakeOpenAIServer() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        for _ in range(3):
            connection.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["choices"]
        connection.close()
        assert server.calls == 3
