"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, with scripted faults, for judge-client tests.

    with FakeOpenAIServer(latency=0.05, faults=FaultPlan(by_attempt={1: "429"})) as server:
        client = OpenAI(base_url=server.base_url, api_key="test")
        ...
        assert max(server.answered.values()) == 1  # no judgment was paid for twice
        assert server.max_in_flight <= 8           # the client's concurrency limit held

It answers ``POST /v1/chat/completions`` and ``GET /v1/models`` with the JSON the OpenAI API returns
(usage, `logprobs.content` with `top_logprobs` when asked, a JSON object when `response_format` carries a
JSON Schema). What the judge says comes from a pluggable ``answer(request_json) -> str``; the default reads
the prompt and answers, deterministically per prompt, in the format it asks for: Arena ``[[A>B]]`` lines,
Prometheus ``[RESULT] n`` lines, or LLMBar ``Output (a)``.

Faults (`Fault`, planned by `FaultPlan` per request number, per attempt of the same messages, or at a seeded
rate): ``429`` (with Retry-After), ``500``, ``503`` (with Retry-After), ``timeout`` (answers only after
`hang_seconds`, longer than any sane client timeout), ``drop`` (closes the socket without a response),
``truncated`` (half the answer, finish_reason "length"), ``garbage`` (text with no verdict), ``refusal``
(a refusal; under structured output, in the `refusal` field with null content as OpenAI does), and
``bad_json`` (a 200 whose body is not JSON).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULT_KINDS = ("429", "500", "503", "timeout", "drop", "truncated", "garbage", "refusal", "bad_json")
# Faults that still deliver a completion (a paid-for answer), only a useless one.
_COMPLETION_FAULTS = ("timeout", "truncated", "garbage", "refusal")
REFUSAL_TEXT = "I'm sorry, but I can't help with that."
COMPLETIONS_PATHS = ("/v1/chat/completions", "/chat/completions")
MODELS_PATHS = ("/v1/models", "/models")


def key_for(messages: object) -> str:
    """The identity of a request's messages: what the per-prompt counters are keyed by."""
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts: reproducible choices that ignore arrival order."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pick(options: list, *parts: object) -> object:
    return options[int(_unit(*parts) * len(options))]


# ---------------------------------------------------------------------------------------------------------
# Faults


@dataclass(frozen=True)
class Fault:
    """One misbehaviour. `retry_after` is the Retry-After a 429 or 503 sends, in seconds."""

    kind: str
    retry_after: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; choose one of {', '.join(FAULT_KINDS)}")


def _fault(value: Fault | str) -> Fault:
    return value if isinstance(value, Fault) else Fault(value)


@dataclass
class FaultPlan:
    """Which requests misbehave, and how.

    `by_call` keys are the server-wide request numbers (1 = the first request received); `by_attempt` keys
    are attempt numbers of the same messages (1 = the first time these messages arrive), so
    ``by_attempt={1: "429"}`` makes every prompt fail once and succeed on its retry. Otherwise a request
    fails with probability `rate`, drawing one of `kinds`; the draw hashes (seed, messages, attempt), so it
    does not depend on the order in which concurrent requests arrive. `by_call` wins over `by_attempt`,
    which wins over `rate`.
    """

    by_call: dict[int, Fault | str] = field(default_factory=dict)
    by_attempt: dict[int, Fault | str] = field(default_factory=dict)
    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "503")
    seed: int = 0
    retry_after: float = 0.05

    def __post_init__(self) -> None:
        for kind in self.kinds:
            Fault(kind)  # validates
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")

    def fault_for(self, *, call: int, key: str, attempt: int) -> Fault | None:
        if call in self.by_call:
            return _fault(self.by_call[call])
        if attempt in self.by_attempt:
            return _fault(self.by_attempt[attempt])
        if self.rate and _unit(self.seed, key, attempt, "fault") < self.rate:
            return Fault(str(_pick(list(self.kinds), self.seed, key, attempt, "kind")), self.retry_after)
        return None


# ---------------------------------------------------------------------------------------------------------
# Default answers: what a compliant judge would say, in the format the prompt asks for


def _messages_text(request: Mapping) -> str:
    parts = []
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        parts.append(content if isinstance(content, str) else "")
    return "\n".join(parts)


_ARENA_OPTION = re.compile(r"\[\[([AB](?:>{1,3}|=)[AB])\]\]")
_ARENA_LINE = re.compile(r"^([a-z][a-z0-9_]*): \[\[verdict\]\]\s*$", re.MULTILINE)
_ARENA_BLOCK = re.compile(r"Verdict options for ([a-z][a-z0-9_]*):\n((?:\[\[.*(?:\n|$))+)")
_RESULT_LINE = re.compile(r"(?:^|\n)(?:([a-z][a-z0-9_]*): )?\[RESULT\] <an integer from (-?\d+) to (-?\d+)>")
REASONING = "Both responses were compared on what the prompt asks for."


def _arena_answer(text: str, key: str) -> str:
    options = list(dict.fromkeys(_ARENA_OPTION.findall(text)))
    per_aspect = {m.group(1): _ARENA_OPTION.findall(m.group(2)) for m in _ARENA_BLOCK.finditer(text)}
    aspects = list(dict.fromkeys(_ARENA_LINE.findall(text)))
    if not aspects:
        return f"{REASONING}\n\nMy verdict: [[{_pick(options, key)}]]"
    lines = [f"{a}: [[{_pick(per_aspect.get(a) or options, key, a)}]]" for a in aspects]
    return REASONING + "\n\n" + "\n".join(lines)


def _prometheus_answer(text: str, key: str) -> str:
    found = _RESULT_LINE.findall(text) or [("", "1", "5")]
    scores = [(name, _pick(list(range(int(low), int(high) + 1)), key, name)) for name, low, high in found]
    feedback = "Feedback: The response addresses the instruction; the rubric places it as scored."
    if len(scores) == 1:
        return f"{feedback} [RESULT] {scores[0][1]}"
    return feedback + "\n\n" + "\n".join(f"{name}: [RESULT] {score}" for name, score in scores)


def _schema_instance(schema: Mapping, *parts: object) -> object:
    """A value valid under a (simple) JSON Schema, chosen deterministically."""
    if "enum" in schema:
        return _pick(list(schema["enum"]), *parts)
    kind = schema.get("type")
    if kind == "object":
        return {name: _schema_instance(sub, *parts, name) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind == "integer":
        low, high = int(schema.get("minimum", 0)), int(schema.get("maximum", 10))
        return _pick(list(range(low, high + 1)), *parts)
    if kind == "number":
        return round(_unit(*parts), 3)
    if kind == "boolean":
        return _unit(*parts) < 0.5
    return REASONING


def default_answer(request: Mapping) -> str:
    """A deterministic verdict for the request, in the format its prompt (or its response_format) asks for."""
    key = key_for(request.get("messages"))
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return json.dumps(_schema_instance(schema, key))
    text = _messages_text(request)
    if _ARENA_OPTION.search(text):
        return _arena_answer(text, key)
    if "[RESULT]" in text:
        return _prometheus_answer(text, key)
    if "Output (a)" in text and "Output (b)" in text:
        return str(_pick(["Output (a)", "Output (b)"], key))
    return "I see no verdict format to follow in this prompt."


# ---------------------------------------------------------------------------------------------------------
# Tokens and logprobs

_TOKEN = re.compile(r"\s*(?:\[\[|\[RESULT\])|\]\]|>{1,3}|<{1,3}|=|\s*[A-Za-z_]+|\s*\d|\s*[^\w\s]|\s+")
_VERDICT_ALTERNATIVES = {
    "A": ["B"],
    "B": ["A"],
    "a": ["b"],
    "b": ["a"],
    ">": [">>", "=", ">>>"],
    ">>": [">", ">>>", "="],
    ">>>": [">>", ">"],
    "=": [">", ">>"],
}


def tokenize(text: str) -> list[str]:
    """The fake's tokenizer: verdict pieces ("[[", "A", ">>", "B", "]]", "[RESULT]", digits) come apart."""
    return _TOKEN.findall(text)


def _alternatives(token: str) -> list[str]:
    if token in _VERDICT_ALTERNATIVES:
        return _VERDICT_ALTERNATIVES[token]
    core = token.lstrip()
    if len(core) == 1 and core.isdigit():
        lead, digit = token[: len(token) - 1], int(core)
        return [f"{lead}{d}" for d in (digit + 1, digit - 1, digit + 2, digit - 2) if 0 <= d <= 9]
    return []


def logprobs_for(content: str, *, top_logprobs: int, key: str) -> list[dict]:
    """`logprobs.content` for an answer: verdict tokens get a probability in [0.55, 0.95] and alternatives
    sharing the rest; other tokens are near-certain."""
    entries = []
    for index, token in enumerate(tokenize(content)):
        alternatives = _alternatives(token)
        chosen = 0.55 + 0.4 * _unit(key, index, token) if alternatives else 0.999
        rest = (1.0 - chosen) / max(len(alternatives), 1)
        top = [(token, chosen)] + [(alt, rest) for alt in alternatives]
        entries.append(
            {
                "token": token,
                "logprob": math.log(chosen),
                "bytes": list(token.encode("utf-8")),
                "top_logprobs": [
                    {"token": t, "logprob": math.log(p), "bytes": list(t.encode("utf-8"))}
                    for t, p in top[:top_logprobs]
                ],
            }
        )
    return entries


# ---------------------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class FakeReply:
    """A scripted reply, for an `answer` callable that needs more than the text."""

    content: str
    finish_reason: str = "stop"
    logprobs: list[dict] | None = None


Answer = Callable[[dict], "str | FakeReply"]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() closes the sockets itself; a parked keep-alive thread must not block it
    request_queue_size = 512  # the listen backlog: bursts of concurrent clients must not be refused
    allow_reuse_address = True
    fake: FakeOpenAIServer

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a client that gave up (a timeout test) is not a server error
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the OpenAI SDK's connection pool expects
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (up to 40 ms), which a real API server does not add.
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection's thread ends after a minute
    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # test output stays readable

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path in MODELS_PATHS:
            model = self.server.fake.model
            self.send_json(200, {"object": "list", "data": [_model_entry(model)]})
        elif path.startswith(tuple(p + "/" for p in MODELS_PATHS)):
            self.send_json(200, _model_entry(path.rsplit("/", 1)[-1]))
        else:
            self.send_json(404, _error(f"Unknown path {self.path}", "invalid_request_error", "not_found"))

    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path not in COMPLETIONS_PATHS:
            self.send_json(404, _error(f"Unknown path {self.path}", "invalid_request_error", "not_found"))
            return
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list) or not request.get("model"):
            self.send_json(
                400, _error("The body must be a JSON object with model and messages.", "invalid_request_error")
            )
            return
        try:
            self.server.fake._serve(self, request)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def send_json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        self.send_raw(status, json.dumps(payload).encode("utf-8"), headers)

    def send_raw(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _error(message: str, kind: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _model_entry(model: str) -> dict:
    return {"id": model, "object": "model", "created": 1700000000, "owned_by": "tandem-tests"}


class FakeOpenAIServer:
    """An OpenAI-compatible chat-completions server in a background thread; a context manager.

    `latency` is seconds per request, or a (low, high) range drawn with `seed`; `answer` decides what the
    judge says (default: `default_answer`); `faults` plans misbehaviour; `api_key`, when set, is required
    as a Bearer token (401 otherwise). Counters, safe to read while it runs: `calls` (requests to the
    completions endpoint), `received` and `answered` (per `key_for(messages)`: every request, and those
    the judge answered with a completion, as a paid API would bill them, useless ones from the timeout,
    truncated, garbage and refusal faults included), `faults_served` (per fault kind), `requests` (the
    bodies, in arrival order), `in_flight` and `max_in_flight` (the most requests being handled at once).
    Counters are final before the response is sent.
    """

    def __init__(
        self,
        *,
        answer: Answer | None = None,
        latency: float | tuple[float, float] = 0.0,
        faults: FaultPlan | None = None,
        model: str = "fake-judge",
        hang_seconds: float = 30.0,
        api_key: str | None = None,
        seed: int = 0,
    ) -> None:
        self.answer = answer or default_answer
        self.latency = latency
        self.faults = faults or FaultPlan()
        self.model = model
        self.hang_seconds = hang_seconds
        self.api_key = api_key
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # Lifecycle

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            raise RuntimeError("the fake server is already running")
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes requests sleeping on latency or a timeout fault
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """The URL an OpenAI client takes as `base_url`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        """Zero every counter (between phases of a test)."""
        with self._lock:
            self.calls = 0
            self.received: Counter[str] = Counter()
            self.answered: Counter[str] = Counter()
            self.faults_served: Counter[str] = Counter()
            self.requests: list[dict] = []
            self.in_flight = 0
            self.max_in_flight = 0

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # Serving

    def _delay(self) -> float:
        if isinstance(self.latency, tuple):
            with self._lock:
                return self._random.uniform(*self.latency)
        return float(self.latency)

    def _serve(self, handler: _Handler, request: dict) -> None:
        if self.api_key is not None and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            handler.send_json(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
            return
        key = key_for(request["messages"])
        with self._lock:
            self.calls += 1
            call = self.calls
            self.received[key] += 1
            attempt = self.received[key]
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay = self._delay()
            if delay > 0:
                self._stopping.wait(delay)
            fault = self.faults.fault_for(call=call, key=key, attempt=attempt)
            if fault is not None:
                with self._lock:
                    self.faults_served[fault.kind] += 1
                if fault.kind == "timeout":
                    self._stopping.wait(self.hang_seconds)  # then answers, long after the client gave up
            reply = self._reply(request, call, key, fault)
            if fault is None or fault.kind in _COMPLETION_FAULTS:
                with self._lock:
                    self.answered[key] += 1
        finally:
            # Counters settle before the response leaves: a client that has its answer sees them final.
            with self._lock:
                self.in_flight -= 1
        if reply is None:
            handler.drop()
        else:
            handler.send_raw(*reply)

    def _reply(self, request: dict, call: int, key: str, fault: Fault | None) -> tuple[int, bytes, dict] | None:
        """The response to send (status, body, headers), or None to drop the connection."""
        kind = fault.kind if fault is not None else None
        if kind == "drop":
            return None
        if kind in ("429", "503"):
            headers = {"Retry-After": f"{fault.retry_after:g}", "retry-after-ms": str(int(fault.retry_after * 1000))}
            if kind == "429":
                message = f"Rate limit reached for {request['model']}. Please try again in {fault.retry_after:g}s."
                return 429, _json(_error(message, "requests", "rate_limit_exceeded")), headers
            message = "The engine is currently overloaded, please try again later."
            return 503, _json(_error(message, "server_error")), headers
        if kind == "500":
            return 500, _json(_error("The server had an error while processing your request.", "server_error")), {}
        if kind == "bad_json":
            return 200, b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"mess', {}
        payload = self._completion(request, call, key, kind)
        return 200, _json(payload), {"x-request-id": f"req_fake{call:08d}"}

    def _completion(self, request: dict, call: int, key: str, fault: str | None) -> dict:
        structured = (request.get("response_format") or {}).get("type") == "json_schema"
        choices = []
        for index in range(max(int(request.get("n") or 1), 1)):
            reply = self.answer(request)
            reply = reply if isinstance(reply, FakeReply) else FakeReply(str(reply))
            content: str | None = reply.content
            refusal, finish, logprobs = None, reply.finish_reason, reply.logprobs
            if fault == "truncated":
                content, finish, logprobs = content[: len(content) // 2], "length", None
            elif fault == "garbage":
                content, logprobs = _garbage(key), None
            elif fault == "refusal":
                content, logprobs = REFUSAL_TEXT, None
                if structured:  # structured outputs report a refusal beside a null content
                    content, refusal = None, REFUSAL_TEXT
            if request.get("logprobs") and content is not None and logprobs is None:
                logprobs = logprobs_for(content, top_logprobs=int(request.get("top_logprobs") or 0), key=key)
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "logprobs": {"content": logprobs, "refusal": None} if request.get("logprobs") else None,
                    "finish_reason": finish,
                }
            )
        # Roughly what a tokenizer would count: the content's tokens plus a few per message for the framing.
        prompt_tokens = len(tokenize(_messages_text(request))) + 4 * len(request["messages"])
        completion_tokens = sum(
            len(tokenize(c["message"]["content"] or c["message"]["refusal"] or "")) for c in choices
        )
        return {
            "id": f"chatcmpl-fake{call:08d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request["model"],
            "system_fingerprint": "fp_tandem_fake",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _json(payload: object) -> bytes:
    return json.dumps(payload).encode("utf-8")


def _garbage(key: str) -> str:
    words = ["lorem", "qzx", "ipsum", "##", "0x7f", "\u00bf", "response", "tok", "\u2591\u2591", "and"]
    return " ".join(str(_pick(words, key, i)) for i in range(24))
