"""Calling a judge: one chat completion through the `openai` SDK, with limits, retries and accounting.

Retries are ours (the SDK's are switched off) so that every attempt passes through the per-judge
limits: 429 waits what `Retry-After` says; 5xx, timeouts, dropped connections and unreadable
bodies back off exponentially with jitter; any other 4xx fails at once and is reported.

A run keeps dozens of requests in flight from one process, so the client takes the SDK's cheap
path: its aiohttp transport (the SDK's own recommendation for concurrency), the request body as
plain JSON and the response read as JSON with orjson. The SDK's typed request transform and
response models cost more CPU per call than everything else a judgment does, and they are what
kept one worker from reaching the endpoint's ceiling (bench/judge_throughput.py).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from decimal import Decimal

import openai
import orjson
import redis
from django.conf import settings
from httpx2 import Response
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from annotate.models import Judge

# Sampling settings a judge may carry that go to the endpoint as they are.
SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "frequency_penalty", "stop")
TOP_LOGPROBS = 5


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


def api_key(judge: Judge) -> str:
    """The key from the environment variable the judge names; local servers need none."""
    if judge.api_key_env:
        value = os.environ.get(judge.api_key_env)
        if value:
            return value
    return "no-key"


def judge_client(judge: Judge) -> openai.AsyncOpenAI:
    """An SDK client for the judge's endpoint; create and use it on one event loop."""
    return openai.AsyncOpenAI(
        base_url=judge.base_url or None,
        api_key=api_key(judge),
        max_retries=0,
        timeout=float(judge.sampling.get("timeout", settings.TANDEM_JUDGE_TIMEOUT)),
        http_client=openai.DefaultAioHttpClient(),
    )


def cost_of(judge: Judge, prompt_tokens: int | None, completion_tokens: int | None) -> Decimal:
    tokens_in, tokens_out = Decimal(prompt_tokens or 0), Decimal(completion_tokens or 0)
    return (tokens_in * judge.price_in_per_1k + tokens_out * judge.price_out_per_1k) / Decimal(1000)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, _Unreadable, redis.RedisError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, openai.APIResponseValidationError)


def _retry_after(exc: BaseException | None) -> float | None:
    if not isinstance(exc, openai.APIStatusError) or exc.status_code != 429:
        return None
    header = exc.response.headers.get("retry-after")
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None


def _wait(state: RetryCallState) -> float:
    ceiling = settings.TANDEM_JUDGE_MAX_BACKOFF
    told = _retry_after(state.outcome.exception() if state.outcome else None)
    if told is not None:
        return min(told, ceiling)
    return wait_random_exponential(multiplier=settings.TANDEM_JUDGE_BACKOFF, max=ceiling)(state)


def describe_error(exc: BaseException) -> tuple[str, int | None]:
    if isinstance(exc, openai.APIStatusError):
        body = exc.response.text[:300] if exc.response is not None else ""
        return f"HTTP {exc.status_code} from the judge endpoint: {body or exc.message}", exc.status_code
    if isinstance(exc, openai.APITimeoutError):
        return "the judge endpoint did not answer in time", None
    if isinstance(exc, openai.APIConnectionError):
        return f"could not reach the judge endpoint: {exc.__cause__ or exc}", None
    return f"{type(exc).__name__}: {exc}", None


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
        message, status = describe_error(exc)
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
