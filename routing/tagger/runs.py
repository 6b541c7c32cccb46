"""Tagging runs: the `tag_items` job asks the tagger about every item the cache lacks and stores the answers.

The tagger is a `Judge` row (its endpoint, model, key variable, limits and prices), named in the campaign's
`routing_params["tagger"] = {"judge": "<judge name>"}` or given to `tagging_start`. Its calls go through the
judges' client (`routing.judges.client.complete`: retries with backoff on 429, 5xx and timeouts, cost from
the token counts) and limiter (`routing.judges.limits`: the judge's concurrency and requests per minute,
shared with every run that uses the same judge). With the judge's probed `json_schema` capability the answer
is asked for as structured output; otherwise the prompt asks for JSON and `routing.tagger.prompt.parse_tags`
finds it in whatever comes back.

Answers are stored per item and prompt version (`ItemTags`, unique), a batch at a time, so a run that is
killed, cancelled or redelivered resumes where it stopped and never asks twice for a stored item. An answer
that does not parse is stored as a failure with its reason and asked again only by a run with
`retry_failed`; a call that still fails after the retries stores nothing, is reported in the run's result,
and is asked again by the next run. A row's cost is that of the answer it holds; a run's result adds up what
the run paid (`cost_this_run`), retried failures included.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from django.db import transaction

from annotate.models import Campaign, Item, ItemTags, Job, Judge
from jobs.registry import JobFailed, job_handler
from jobs.runner import job_create
from routing.judges import client as judge_client
from routing.judges.engine import EventLoop
from routing.judges.limits import limiter_for_loop
from routing.tagger.cache import items_to_tag
from routing.tagger.prompt import PROMPT_VERSION, parse_tags, response_format, tagger_messages

JOB_KIND = "tag_items"
MAX_BATCH = 200  # items asked for, then stored, between two progress reports
MAX_REPORTED_FAILURES = 20
UPDATED = ["campaign", "tagger", "tags", "error", "cost"]


def tagger_for(*, campaign: Campaign, name: str | None = None) -> Judge:
    """The judge that tags this campaign: `name`, else the campaign's `routing_params["tagger"]["judge"]`.
    ValueError says what is missing or unusable."""
    if not name:
        setting = (campaign.routing_params or {}).get("tagger")
        name = setting.get("judge") if isinstance(setting, dict) else None
    if not name:
        raise ValueError(
            f"campaign {campaign.slug!r} names no tagger: set routing_params.tagger = "
            '{"judge": "<judge name>"} or name a judge'
        )
    judge = Judge.objects.filter(name=name).first()
    if judge is None:
        raise ValueError(f"no judge named {name!r} to tag with")
    if judge.imported:
        raise ValueError(f"judge {judge.name!r} only holds imported labels; it has no endpoint to call")
    if not judge.model:
        raise ValueError(f"judge {judge.name!r} has no model name")
    return judge


def tagging_start(
    *, campaign: Campaign, judge: Judge, created_by=None, dispatch: bool = True, retry_failed: bool = False
) -> Job:
    """Queue a `tag_items` job of this campaign's untagged items with `judge` as the tagger (with
    `retry_failed`, its failed answers too). ValueError when the judge cannot tag."""
    tagger_for(campaign=campaign, name=judge.name)  # the same checks as a configured tagger
    return job_create(
        kind=JOB_KIND,
        params={"judge": judge.pk, "retry_failed": retry_failed},
        campaign=campaign,
        created_by=created_by,
        dispatch=dispatch,
    )


class _Calls:
    """The run's SDK client and limiter; created on the event loop that uses them."""

    def __init__(self, judge: Judge):
        self.judge = judge
        self.client = judge_client.judge_client(judge)
        self.limiter = limiter_for_loop()
        self.response_format = response_format() if judge.capabilities.get("json_schema") else None

    async def ask(self, prompt) -> judge_client.Completion | judge_client.CallFailed:
        try:
            return await judge_client.complete(
                client=self.client,
                judge=self.judge,
                limiter=self.limiter,
                messages=tagger_messages(prompt),
                response_format=self.response_format,
            )
        except judge_client.CallFailed as exc:
            return exc

    async def ask_all(self, prompts: list) -> list:
        return await asyncio.gather(*(self.ask(prompt) for prompt in prompts))

    async def close(self) -> None:
        await self.client.close()
        await self.limiter.close()


async def _open(judge: Judge) -> _Calls:
    return _Calls(judge)


def _row(campaign: Campaign, judge: Judge, item_id: int, completion: judge_client.Completion) -> ItemTags:
    parsed = parse_tags(completion.text)
    error = ""
    if not parsed.ok:
        cut = " (the output was cut off: finish_reason=length)" if completion.finish_reason == "length" else ""
        error = f"parse failure: {parsed.failure}{cut}"
    return ItemTags(
        item_id=item_id,
        campaign=campaign,
        prompt_version=PROMPT_VERSION,
        tagger=judge,
        tags=parsed.tags,
        error=error[:5000],
        cost=judge_client.cost_of(judge, completion.prompt_tokens, completion.completion_tokens),
    )


def _store(rows: list[ItemTags], *, retry_failed: bool) -> None:
    """Tags replace a failure stored for the item; a failure never replaces anything, except that a retried
    failure's row takes the new reason and cost (a good answer stored meanwhile stays)."""
    good = [row for row in rows if row.tags is not None]
    bad = [row for row in rows if row.tags is None]
    with transaction.atomic():
        if good:
            ItemTags.objects.bulk_create(
                good, update_conflicts=True, unique_fields=["item", "prompt_version"], update_fields=UPDATED
            )
        if bad:
            ItemTags.objects.bulk_create(bad, ignore_conflicts=True)
        for row in bad if retry_failed else ():
            ItemTags.objects.filter(item_id=row.item_id, prompt_version=PROMPT_VERSION, tags__isnull=True).update(
                tagger=row.tagger, error=row.error, cost=row.cost
            )


def _summary(stats: dict, failures: list[dict], *, running: bool) -> dict:
    return {
        **{key: str(value) if isinstance(value, Decimal) else value for key, value in stats.items()},
        "failures": list(failures),
        "running": running,
    }


def _tag_batch(loop, calls: _Calls, campaign: Campaign, chunk: list[int], stats: dict, failures: list[dict]) -> list:
    """Ask about these items at once (the limiter spaces the calls); the rows to store, with `stats` and
    `failures` updated. An item deleted meanwhile is not asked about."""
    found = Item.objects.filter(pk__in=chunk).values_list("id", "external_id", "prompt")
    items = {item_id: (external_id, prompt) for item_id, external_id, prompt in found}
    chunk = [item_id for item_id in chunk if item_id in items]
    answers = loop.run(calls.ask_all([items[item_id][1] for item_id in chunk]))
    rows = []
    for item_id, answer in zip(chunk, answers, strict=True):
        if isinstance(answer, judge_client.CallFailed):
            stats["call_failures"] += 1
            if len(failures) < MAX_REPORTED_FAILURES:
                failures.append({"item": item_id, "external_id": items[item_id][0], "error": str(answer)})
            continue
        row = _row(campaign, calls.judge, item_id, answer)
        rows.append(row)
        stats["tagged" if row.tags is not None else "parse_failures"] += 1
        stats["cost_this_run"] += row.cost or 0
    return rows


@job_handler(JOB_KIND)
def tag_items(job: Job, progress) -> dict:
    campaign = job.campaign
    judge = Judge.objects.filter(pk=job.params.get("judge")).first()
    retry_failed = bool(job.params.get("retry_failed"))
    try:
        if judge is None:
            raise ValueError("the tagger's judge was deleted")
        tagger_for(campaign=campaign, name=judge.name)
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    pending = items_to_tag(campaign=campaign, retry_failed=retry_failed)
    total = Item.objects.filter(campaign=campaign).count()
    stats = {
        "tagger": judge.name,
        "prompt_version": PROMPT_VERSION,
        "items": total,
        "to_tag": len(pending),
        "tagged": 0,
        "parse_failures": 0,
        "call_failures": 0,
        "cost_this_run": Decimal(0),
    }
    failures: list[dict] = []
    done = total - len(pending)
    progress(done=done, total=total, result=_summary(stats, failures, running=True))
    batch = max(1, min(MAX_BATCH, judge.concurrency * 4))
    loop = EventLoop()
    calls = loop.run(_open(judge))
    try:
        for start in range(0, len(pending), batch):
            rows = _tag_batch(loop, calls, campaign, pending[start : start + batch], stats, failures)
            _store(rows, retry_failed=retry_failed)  # before the progress report, which raises on a cancel
            done += len(rows)
            progress(done=done, total=total, result=_summary(stats, failures, running=True))
    finally:
        loop.run(calls.close())
        loop.close()
    return _summary(stats, failures, running=False)
