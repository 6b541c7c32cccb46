"""The judge engine: a process's share of a run's judgments, sent to the judges many at once and stored as
they arrive.

The HTTP calls run on an asyncio loop in a thread of their own (the per-judge limits in `limits.py`
decide how many at once); the calling thread feeds it work, parses the answers and stores each batch as
soon as it arrives — an answer that was paid for is never held only in memory, so a process killed at any
instant can lose (and the next run pay again for) only the calls in flight then — and reports progress
on a timer. Parse failures and refusals are stored with their raw text (they send the item to humans);
calls that still fail after the retries are reported and tried again by the next run.

On a warm shutdown (`jobs.shutdown`) no new call is sent, the calls in flight are awaited (at most
TANDEM_JUDGE_DRAIN_SECONDS), their answers stored, and `JobInterrupted` hands the run back to the queue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from annotate.models import Annotation, Campaign, Judge
from jobs.registry import JobInterrupted
from jobs.shutdown import stopping
from routing.judges import client as judge_client
from routing.judges.limits import limiter_for_loop
from routing.judges.plans import Plan
from routing.judges.store import judgments_store, pending
from routing.judges.verdicts import logprob_confidence, verdict_to_item

FLUSH_SECONDS = 0.5  # how often progress is reported (and cancellation checked); answers are stored at once
MAX_REPORTED_FAILURES = 200


class EventLoop:
    """An asyncio loop on a thread of its own, running the calls while the job's thread stores results (and
    working whatever loop the calling thread may be inside: a browser test's, an async server's)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="judge-calls", daemon=True)
        self.thread.start()

    def submit(self, coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine):
        return self.submit(coroutine).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


class _NotSent(Exception):
    """A call the stop gate held back: nothing was sent, so nothing was paid; the next run asks again."""


class _StopGate:
    """The limiter with one more condition: once a stop is requested, a call that gets its slot (a first
    attempt or a retry) gives it back unsent. Counts the calls that went out."""

    def __init__(self, limiter):
        self.limiter = limiter
        self.sent = 0

    @contextlib.asynccontextmanager
    async def slot(self, **limits):
        async with self.limiter.slot(**limits):
            if stopping():
                raise _NotSent()
            self.sent += 1
            yield

    async def close(self) -> None:
        await self.limiter.close()


class _Calls:
    """Per-loop resources: one SDK client per judge and the shared limiter (behind the stop gate)."""

    def __init__(self, plans: list[Plan]):
        self.clients = {plan.judge.pk: judge_client.judge_client(plan.judge) for plan in plans}
        self.limiter = _StopGate(limiter_for_loop())

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        await self.limiter.close()


async def _open(plans: list[Plan]) -> _Calls:
    return _Calls(plans)


@dataclass
class _Outcome:
    row: Annotation | None = None
    failure: dict | None = None
    unsent: bool = False


def _messages(plan: Plan, campaign: Campaign, item: dict, swapped: bool) -> list[dict]:
    common = {
        "campaign_schema": campaign.label_schema,
        "kind": campaign.kind,
        "guidelines": campaign.guidelines,
        "prompt": item["prompt"],
        "structured": plan.structured,
        "reference": item["reference"],
    }
    if plan.template.kind == "rubric":
        return plan.template.render(**common, response=item["response"])
    # Pairwise and "both": the two responses in the order shown (a "both" template rates each one too).
    shown = [item["response_b"], item["response_a"]] if swapped else [item["response_a"], item["response_b"]]
    return plan.template.render(**common, responses=shown)


def _confidence(plan: Plan, campaign: Campaign, parsed, logprobs: list[dict] | None) -> float | None:
    """The verdict's probability from token logprobs (the least sure key, when there are several)."""
    if not logprobs:
        return None
    values = []
    for key, tokens in plan.template.verdict_tokens(campaign.label_schema).items():
        span = parsed.spans.get(key)
        value = logprob_confidence(logprobs, tokens, at=span[0] if span else None)
        if value is None:
            return None
        values.append(value)
    return min(values) if values else None


async def _call(calls: _Calls, judge: Judge, messages: list[dict], response_format: dict | None, logprobs: bool):
    """The only part on the event loop: the HTTP exchange. Rendering and parsing stay on the job's
    thread, so a response that arrives is read at once instead of waiting behind other work."""
    try:
        return await judge_client.complete(
            client=calls.clients[judge.pk],
            judge=judge,
            limiter=calls.limiter,
            messages=messages,
            response_format=response_format,
            logprobs=logprobs,
        )
    except judge_client.CallFailed as exc:
        return exc


def _request(calls: _Calls, plan: Plan, campaign: Campaign, item: dict, swapped: bool):
    response_format = plan.template.response_format(campaign.label_schema) if plan.structured else None
    return _call(calls, plan.judge, _messages(plan, campaign, item, swapped), response_format, plan.logprobs)


def _outcome(result, plan: Plan, campaign: Campaign, item: dict, swapped: bool, sample: int) -> _Outcome:
    """A stored judgment (verdict or parse failure) from a completion, or a reported failure."""
    judge = plan.judge
    if isinstance(result, judge_client.CallFailed) and isinstance(result.__cause__, _NotSent):
        return _Outcome(unsent=True)
    if isinstance(result, judge_client.CallFailed):
        failure = {"item": item["id"], "external_id": item["external_id"], "judge": judge.name, "swapped": swapped}
        return _Outcome(failure={**failure, "sample": sample, "error": str(result), "attempts": result.attempts})
    completion = result
    parsed = plan.template.parse(completion.text, campaign_schema=campaign.label_schema)
    label = confidence = None
    note = parsed.reasoning
    if parsed.ok:
        label = verdict_to_item(parsed.label, swapped, campaign_schema=campaign.label_schema, kind=campaign.kind)
        confidence = _confidence(plan, campaign, parsed, completion.logprobs)
    else:
        cut = " (the output was cut off: finish_reason=length)" if completion.finish_reason == "length" else ""
        note = f"parse failure: {parsed.failure}{cut}"
    row = Annotation(
        item_id=item["id"],
        campaign_id=campaign.pk,
        source=Annotation.Source.JUDGE,
        judge_id=judge.pk,
        label=label,
        justification=note[:5000],
        position_swapped=swapped,
        raw_output=completion.text,
        parse_failed=not parsed.ok,
        confidence=confidence,
        prompt_version=plan.template.version,
        sample_index=sample,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        latency_ms=completion.latency_ms,
        cost=judge_client.cost_of(judge, completion.prompt_tokens, completion.completion_tokens),
    )
    return _Outcome(row=row)


def _tally(outcome: _Outcome, stats: dict, failures: list[dict], rows: list[Annotation]) -> None:
    if outcome.unsent:
        return
    if outcome.row is not None:
        rows.append(outcome.row)
        stats["done"] += 1
        stats["parse_failures"] += outcome.row.parse_failed
        stats["cost_this_run"] += outcome.row.cost or 0
    else:
        stats["failed"] += 1
        if len(failures) < MAX_REPORTED_FAILURES:
            failures.append(outcome.failure)


def judge_items(*, campaign: Campaign, plans: list[Plan], item_ids: list[int], on_flush) -> tuple[dict, list[dict]]:
    """Judge these items' missing judgments; `on_flush(stats, failures)` runs every FLUSH_SECONDS (it may
    raise JobCancelled: the answers already received are stored). Returns what this process did:
    {done, failed, parse_failures, cost_this_run} and the first failures. Raises JobInterrupted after a
    warm shutdown stopped it (what was received is stored; the rest is pending for the next run)."""
    stats = {"done": 0, "failed": 0, "parse_failures": 0, "cost_this_run": Decimal(0)}
    failures: list[dict] = []
    # A request ready for every slot that frees up while this thread is busy storing results.
    window = sum(plan.judge.concurrency for plan in plans) * 2
    loop = EventLoop()
    calls = loop.run(_open(plans))
    in_flight: dict[concurrent.futures.Future, tuple] = {}
    rows: list[Annotation] = []
    work = pending(plans=plans, item_ids=item_ids)
    reported_at = time.monotonic()
    drain_until = None
    try:
        while True:
            if drain_until is None and stopping():
                drain_until = time.monotonic() + settings.TANDEM_JUDGE_DRAIN_SECONDS
            while drain_until is None and len(in_flight) < window and (unit := next(work, None)) is not None:
                plan, item, swapped, _ = unit
                in_flight[loop.submit(_request(calls, plan, campaign, item, swapped))] = unit
            if not in_flight or (drain_until is not None and time.monotonic() > drain_until):
                break
            finished, _ = concurrent.futures.wait(
                in_flight, timeout=FLUSH_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in finished:
                plan, item, swapped, sample = in_flight.pop(future)
                _tally(_outcome(future.result(), plan, campaign, item, swapped, sample), stats, failures, rows)
            judgments_store(rows)
            rows.clear()
            if time.monotonic() - reported_at >= FLUSH_SECONDS:
                reported_at = time.monotonic()
                on_flush(stats, failures)
    finally:
        for future in in_flight:
            future.cancel()
        judgments_store(rows)  # answers already paid for are kept, whatever happens
        loop.run(calls.close())
        loop.close()
    if drain_until is not None and (in_flight or next(work, None) is not None):
        on_flush(stats, failures)
        raise JobInterrupted(
            f"the worker is shutting down: {stats['done']} judgments stored by this process, "
            f"{len(in_flight)} calls still in flight dropped; the rest is judged when the run resumes"
        )
    return stats, failures
