"""Calling a judge: one chat completion through the `openai` SDK, with limits, retries and accounting.

Retries are ours (the SDK's are switched off) so that every attempt passes through the per-judge
limits: 429 waits what `Retry-After` says; 5xx, timeouts, dropped connections and unreadable
bodies back off exponentially with jitter; any other 4xx fails at once and is reported.

A run keeps dozens of requests in flight from one process, so the client takes the SDK's cheap
path: its aiohttp transport (the SDK's own recommendation for concurrency), the request body as
plain JSON and the response read as JSON with orjson. The SDK's typed request transform and
response models cost more CPU per call than everything else a judgment does, and they are what
kept one worker from reaching the endpoint's ceiling (bench/judge_throughput.py).

A judge is configuration an admin types, so before anything is sent the client checks what it would
send and where: the key only from an allowed variable (`key_env_refusal`), the request only to an
address the egress policy allows (`egress.py`, enforced in the connection pool's resolver), never
following a redirect, and no key value in any error it reports.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import orjson
from django.conf import settings

from annotate.models import Judge
from routing.judges import egress

if TYPE_CHECKING:
    import aiohttp
    import openai
    from tenacity import RetryCallState

# The SDK and its transports (openai, aiohttp, httpx2, tenacity: ~90 MiB) are imported by the functions that
# call an endpoint, not here: the web and import processes load this module (through routing.api) and never
# call a judge (tests/test_startup_imports.py).

# Sampling settings a judge may carry that go to the endpoint as they are.
SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "frequency_penalty", "stop")
TOP_LOGPROBS = 5
# The server's own secrets: never a judge's key, whatever TANDEM_JUDGE_KEY_ENVS lists.
SERVER_SECRETS = frozenset({"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "TANDEM_REDIS_URL"})
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',]+")


class CallFailed(Exception):
    """A judgment that could not be obtained: the endpoint refused it or kept failing."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class _Unreadable(Exception):
    """A 200 whose body is not a chat completion: worth another try."""


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    attempts: int
    logprobs: list[dict] | None = field(default=None, repr=False)


def key_env_refusal(name: str) -> str | None:
    """Why `name` may not hold a judge's key, or None: keys come only from variables named with
    TANDEM_JUDGE_KEY_PREFIX or listed in TANDEM_JUDGE_KEY_ENVS, so a judge cannot send the server's
    own secrets (SECRET_KEY, DATABASE_URL, ...) to its endpoint."""
    if not name:
        return None
    prefix = settings.TANDEM_JUDGE_KEY_PREFIX
    if name not in SERVER_SECRETS and (name.startswith(prefix) or name in settings.TANDEM_JUDGE_KEY_ENVS):
        return None
    listed = ", ".join(settings.TANDEM_JUDGE_KEY_ENVS) or "none"
    return (
        f"{name!r} is not an allowed key variable: a judge's key must be in a variable whose name starts "
        f"with {prefix} (TANDEM_JUDGE_KEY_PREFIX) or is listed in TANDEM_JUDGE_KEY_ENVS (now: {listed})"
    )


def judge_refusal(judge: Judge, base_url: str) -> str | None:
    """Why nothing may be sent for this judge to `base_url`, checked before every call and probe: a judge
    saved before these rules (or written by SQL) is held to them too."""
    refusal = key_env_refusal(judge.api_key_env)
    if refusal:
        return f"judge {judge.name!r}: api_key_env {refusal}; nothing was sent"
    refusal = egress.url_refusal(base_url)
    return f"judge {judge.name!r}: {refusal}; nothing was sent" if refusal else None


def api_key(judge: Judge) -> str:
    """The key from the environment variable the judge names, when that variable is allowed; local servers
    need none."""
    if judge.api_key_env and key_env_refusal(judge.api_key_env) is None:
        value = os.environ.get(judge.api_key_env)
        if value:
            return value
    return "no-key"


def _session() -> aiohttp.ClientSession:
    import aiohttp
    import httpx2
    from openai._constants import DEFAULT_CONNECTION_LIMITS

    from routing.judges.resolver import PolicyResolver

    connector = aiohttp.TCPConnector(
        limit=DEFAULT_CONNECTION_LIMITS.max_connections or 0,
        keepalive_timeout=DEFAULT_CONNECTION_LIMITS.keepalive_expiry,
        ssl=httpx2.create_ssl_context(),
        resolver=PolicyResolver(),
    )
    return aiohttp.ClientSession(connector=connector)


def judge_client(judge: Judge) -> openai.AsyncOpenAI:
    """An SDK client for the judge's endpoint; create and use it on one event loop. Its connections resolve
    through the egress policy, it follows no redirect, and it reads no proxy from the environment."""
    import openai
    from openai._vendor.httpx_aiohttp import AiohttpTransport

    return openai.AsyncOpenAI(
        base_url=judge.base_url or None,
        api_key=api_key(judge),
        max_retries=0,
        timeout=float(judge.sampling.get("timeout", settings.TANDEM_JUDGE_TIMEOUT)),
        http_client=openai.DefaultAioHttpClient(follow_redirects=False, transport=AiohttpTransport(client=_session)),
    )


def cost_of(judge: Judge, prompt_tokens: int | None, completion_tokens: int | None) -> Decimal:
    tokens_in, tokens_out = Decimal(prompt_tokens or 0), Decimal(completion_tokens or 0)
    return (tokens_in * judge.price_in_per_1k + tokens_out * judge.price_out_per_1k) / Decimal(1000)


def _retryable(exc: BaseException) -> bool:
    import openai
    import redis

    if egress.refusal_in(exc) is not None:
        return False
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, _Unreadable, redis.RedisError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, openai.APIResponseValidationError)


def _retry_after(exc: BaseException | None) -> float | None:
    import openai

    if not isinstance(exc, openai.APIStatusError) or exc.status_code != 429:
        return None
    header = exc.response.headers.get("retry-after")
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None


def _wait(state: RetryCallState) -> float:
    from tenacity import wait_random_exponential

    ceiling = settings.TANDEM_JUDGE_MAX_BACKOFF
    told = _retry_after(state.outcome.exception() if state.outcome else None)
    if told is not None:
        return min(told, ceiling)
    return wait_random_exponential(multiplier=settings.TANDEM_JUDGE_BACKOFF, max=ceiling)(state)


def redact(text: str, judge: Judge | None = None) -> str:
    """`text` without the judge's key or any bearer token (an endpoint may echo the request's headers)."""
    key = api_key(judge) if judge is not None else "no-key"
    if key != "no-key":
        text = text.replace(key, "[redacted]")
    return _BEARER.sub(r"\1[redacted]", text)


def describe_error(exc: BaseException, judge: Judge | None = None) -> tuple[str, int | None]:
    """A failed call in a sentence for the run's report, with no key in it."""
    import openai

    refused = egress.refusal_in(exc)
    if refused is not None:
        return f"{refused}; nothing was sent", None
    if isinstance(exc, openai.APIStatusError) and 300 <= exc.status_code < 400:
        where = exc.response.headers.get("location", "") if exc.response is not None else ""
        message = f"HTTP {exc.status_code} from the judge endpoint: a redirect to {where or 'elsewhere'}, not "
        return redact(message + "followed (judge calls never follow redirects; give the final URL)", judge), None
    if isinstance(exc, openai.APIStatusError):
        body = exc.response.text[:300] if exc.response is not None else ""
        return redact(f"HTTP {exc.status_code} from the judge endpoint: {body or exc.message}", judge), exc.status_code
    if isinstance(exc, openai.APITimeoutError):
        return "the judge endpoint did not answer in time", None
    if isinstance(exc, openai.APIConnectionError):
        return redact(f"could not reach the judge endpoint: {exc.__cause__ or exc}", judge), None
    return redact(f"{type(exc).__name__}: {exc}", judge), None


async def complete(
    *,
    client: openai.AsyncOpenAI,
    judge: Judge,
    limiter,
    messages: list[dict],
    response_format: dict | None = None,
    logprobs: bool = False,
) -> Completion:
    """One chat completion, retried as the module docstring says; CallFailed when it cannot be had."""
    from httpx2 import Response
    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

    refusal = judge_refusal(judge, str(client.base_url))
    if refusal:
        raise CallFailed(refusal, attempts=0)
    body: dict = {"model": judge.model, "messages": messages}
    body |= {k: judge.sampling[k] for k in SAMPLING_KEYS if k in judge.sampling}
    if response_format is not None:
        body["response_format"] = response_format
    if logprobs:
        body |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
    attempts = 0
    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.TANDEM_JUDGE_MAX_ATTEMPTS),
        wait=_wait,
        retry=retry_if_exception(_retryable),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                async with limiter.slot(
                    judge_id=judge.pk, concurrency=judge.concurrency, rpm=judge.requests_per_minute
                ):
                    began = time.perf_counter()
                    # Error statuses raise the SDK's APIStatusError subclasses here, as create() would.
                    response = await client.post("/chat/completions", body=body, cast_to=Response)
                    content = await response.aread()
                    latency_ms = int((time.perf_counter() - began) * 1000)
                data = _completion_json(content)
    except Exception as exc:  # every failure of the endpoint ends here, described for the run's report
        message, status = describe_error(exc, judge)
        raise CallFailed(message, status=status, attempts=attempts) from exc
    choice = data["choices"][0]
    message = choice.get("message") or {}
    usage = data.get("usage") or {}
    logprob_content = (choice.get("logprobs") or {}).get("content")
    return Completion(
        # A structured-output refusal comes in its own field, with no content.
        text=message.get("content") or message.get("refusal") or "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_ms=latency_ms,
        attempts=attempts,
        logprobs=logprob_content or None,
    )


def _completion_json(content: bytes) -> dict:
    """The parsed body, or _Unreadable (retried) when it is not a chat completion."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise _Unreadable(f"the judge endpoint answered something that is not JSON: {content[:200]!r}") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict) or not isinstance(choices[0].get("message"), dict):
        raise _Unreadable(f"the judge endpoint answered something that is not a completion: {content[:200]!r}")
    return data
