"""The judge engine: a process's share of a run's judgments, sent to the judges many at once and stored as
they arrive.

The HTTP calls run on an asyncio loop in a thread of their own (the per-judge limits in `limits.py`
decide how many at once); the calling thread feeds it work, parses and stores the answers in batches and
reports progress. Parse failures and refusals are stored with their raw text (they send the item to
humans); calls that still fail after the retries are reported and tried again by the next run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from annotate.models import Annotation, Campaign, Judge
from routing.judges import client as judge_client
from routing.judges.limits import limiter_for_loop
from routing.judges.plans import Plan
from routing.judges.store import judgments_store, pending
from routing.judges.verdicts import logprob_confidence, verdict_to_item

FLUSH_ROWS = 200
FLUSH_SECONDS = 0.5
MAX_REPORTED_FAILURES = 200


class _EventLoop:
    """An asyncio loop on a thread of its own, running the calls while the job's thread stores results."""

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


class _Calls:
    """Per-loop resources: one SDK client per judge and the shared limiter."""

    def __init__(self, plans: list[Plan]):
        self.clients = {plan.judge.pk: judge_client.judge_client(plan.judge) for plan in plans}
        self.limiter = limiter_for_loop()

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
    """Judge these items' missing judgments; `on_flush(stats, failures)` runs after each stored batch
    (it may raise JobCancelled: the answers already received are stored first). Returns what this
    process did: {done, failed, parse_failures, cost_this_run} and the first failures."""
    stats = {"done": 0, "failed": 0, "parse_failures": 0, "cost_this_run": Decimal(0)}
    failures: list[dict] = []
    # A request ready for every slot that frees up while this thread is busy storing results.
    window = sum(plan.judge.concurrency for plan in plans) * 2
    loop = _EventLoop()
    calls = loop.run(_open(plans))
    in_flight: dict[concurrent.futures.Future, tuple] = {}
    rows: list[Annotation] = []
    work = pending(plans=plans, item_ids=item_ids)
    flushed_at = time.monotonic()
    try:
        while True:
            while len(in_flight) < window and (unit := next(work, None)) is not None:
                plan, item, swapped, _ = unit
                in_flight[loop.submit(_request(calls, plan, campaign, item, swapped))] = unit
            if not in_flight:
                break
            finished, _ = concurrent.futures.wait(
                in_flight, timeout=FLUSH_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in finished:
                plan, item, swapped, sample = in_flight.pop(future)
                _tally(_outcome(future.result(), plan, campaign, item, swapped, sample), stats, failures, rows)
            if len(rows) >= FLUSH_ROWS or time.monotonic() - flushed_at >= FLUSH_SECONDS:
                judgments_store(rows)
                rows.clear()
                flushed_at = time.monotonic()
                on_flush(stats, failures)
    finally:
        for future in in_flight:
            future.cancel()
        judgments_store(rows)  # answers already paid for are kept, whatever happens
        loop.run(calls.close())
        loop.close()
    return stats, failures
