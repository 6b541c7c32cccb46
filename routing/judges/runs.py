"""Judge runs: every judgment a campaign still lacks, sent to its judges and stored as it arrives.

A run is a Job of kind `judge_run` (progress, cancel, resume after a lost worker come from the job
machinery). A judgment is keyed by (item, judge, prompt version, order, sample) — the same key the
database holds unique — so a run that is retried or redelivered skips what is stored and never
asks the endpoint twice for it; cost is the sum over stored judgments, never a counter that a
retry could bump twice.

The HTTP calls run on an asyncio loop in a thread of their own, many at once (the per-judge limits
in `limits.py` decide how many); the job's thread feeds it work, stores the answers in batches and
reports progress. Pairwise items are judged in both orders; parse failures and refusals are
stored with their raw text and send the item to humans; calls that still fail after the retries
are reported in the run's result and tried again by the next run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO
from urllib.parse import quote

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from annotate.models import Annotation, Campaign, Item, Job, Judge, JudgeVerdict, RoutingDecision
from jobs.registry import JobCancelled, JobFailed, job_handler
from jobs.runner import job_create
from routing.judges import client as judge_client
from routing.judges.limits import limiter_for_loop, redis_url
from routing.judges.templates import JudgeTemplate, template_for
from routing.judges.verdicts import aggregate_judgments, consistency, logprob_confidence, verdict_to_item
from routing.router import JUDGE_POLICIES, route_request
from routing.signals import judge_run_finished, verdicts_updated

log = logging.getLogger(__name__)

JOB_KIND = "judge_run"
SCOPES = ("routed", "all", "routable", "gold")
ITEM_CHUNK = 500
FLUSH_ROWS = 200
FLUSH_SECONDS = 0.5
MAX_REPORTED_FAILURES = 200
MAX_SAMPLES = 16
COST_QUANTUM = Decimal(1).scaleb(-Annotation._meta.get_field("cost").decimal_places)


@dataclass(frozen=True)
class Plan:
    """How one judge judges this campaign."""

    judge: Judge
    template: JudgeTemplate
    samples: int
    structured: bool
    logprobs: bool
    orders: tuple[bool, ...]  # position_swapped values: both orders for pairwise

    @property
    def per_item(self) -> int:
        return self.samples * len(self.orders)


def judge_plans(*, campaign: Campaign, judges: list[Judge]) -> list[Plan]:
    """Each judge's template, samples and capabilities for this campaign; ValueError says what is wrong."""
    if campaign.kind not in (Campaign.Kind.PAIRWISE, Campaign.Kind.RUBRIC):
        raise ValueError(
            f"campaign {campaign.slug!r} has {campaign.kind} labels; judges label pairwise or rubric campaigns"
        )
    plans = []
    for judge in judges:
        if judge.imported:
            raise ValueError(f"judge {judge.name!r} only holds imported labels; it has no endpoint to call")
        if not judge.model:
            raise ValueError(f"judge {judge.name!r} has no model name")
        try:
            template = template_for(name=judge.prompt_template, override=judge.prompt_override, kind=campaign.kind)
        except ValueError as exc:
            raise ValueError(f"judge {judge.name!r}: {exc}") from None
        samples = judge.sampling.get("samples", 1)
        if not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
            raise ValueError(f"judge {judge.name!r}: sampling.samples must be an integer from 1 to {MAX_SAMPLES}")
        plans.append(
            Plan(
                judge=judge,
                template=template,
                samples=samples,
                structured=bool(judge.capabilities.get("json_schema")),
                logprobs=bool(judge.capabilities.get("logprobs")),
                orders=(False, True) if campaign.kind == Campaign.Kind.PAIRWISE else (False,),
            )
        )
    return plans


def run_items(*, campaign: Campaign, scope: str):
    """The items a run judges: those routed to the judges (llm or both), every item, every item a judge
    may still be needed on (`routable`: not a gold check, and not one that humans alone label and have
    labelled or leased; what a judge-first routing policy needs verdicts on), or the gold checks (`gold`: in
    both orders like every pairwise item, so the judges are scored on the same gold as the humans,
    `routing.gold`)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    items = Item.objects.filter(campaign=campaign)
    if scope == "gold":
        if not items.filter(gold_label__isnull=False).exists():
            raise ValueError(f"campaign {campaign.slug!r} has no gold items to score the judges on")
        return items.filter(gold_label__isnull=False)
    if scope == "routed":
        items = items.filter(route__in=(Item.Route.LLM, Item.Route.BOTH))
    elif scope == "routable":
        items = items.filter(gold_label__isnull=True).exclude(
            Q(route=Item.Route.HUMAN) & (Q(human_label_count__gt=0) | Q(assigned_count__gt=0))
        )
    return items


def judge_run_start(
    *,
    campaign: Campaign,
    judges: list[Judge] | None = None,
    scope: str = "routed",
    created_by=None,
    dispatch: bool = True,
    then_route: bool = False,
    route_after: bool = True,
) -> Job:
    """Check the run can start (judges, templates, scope), then queue it as a job. `then_route`: a routing
    pass follows the run (a judge-first policy waits for its verdicts); `route_after=False`: none does, not
    even for a judge-first policy (the caller routes itself, as `route --sync` does)."""
    if judges is None:
        judges = list(campaign.judges.filter(active=True, imported=False))
    if not judges:
        raise ValueError(f"campaign {campaign.slug!r} has no active judge to run; add one to the campaign first")
    judge_plans(campaign=campaign, judges=judges)
    run_items(campaign=campaign, scope=scope)
    return job_create(
        kind=JOB_KIND,
        params={"judges": [j.pk for j in judges], "scope": scope, "then_route": then_route, "route_after": route_after},
        campaign=campaign,
        created_by=created_by,
        dispatch=dispatch,
    )


# --- the calls ---------------------------------------------------------------------------------


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
    }
    if campaign.kind == Campaign.Kind.PAIRWISE:
        shown = [item["response_b"], item["response_a"]] if swapped else [item["response_a"], item["response_b"]]
        return plan.template.render(**common, responses=shown)
    return plan.template.render(**common, response=item["response"], reference=item["reference"])


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


# --- the run -------------------------------------------------------------------------------------


def _judged_by(plans: list[Plan]) -> Q:
    """Judgments made by these judges with the prompt version each uses now."""
    condition = Q()
    for plan in plans:
        condition |= Q(judge=plan.judge, prompt_version=plan.template.version)
    return condition


def _stored_keys(*, item_ids: list[int], plans: list[Plan]) -> set[tuple]:
    condition = _judged_by(plans)
    return set(
        Annotation.objects.filter(condition, item_id__in=item_ids, source=Annotation.Source.JUDGE).values_list(
            "item_id", "judge_id", "position_swapped", "sample_index"
        )
    )


def _pending(*, campaign: Campaign, plans: list[Plan], item_ids: list[int]) -> Iterator[tuple]:
    """(plan, item, swapped, sample) for every judgment not stored yet, reading items a chunk at a time."""
    for start in range(0, len(item_ids), ITEM_CHUNK):
        chunk = item_ids[start : start + ITEM_CHUNK]
        stored = _stored_keys(item_ids=chunk, plans=plans)
        items = Item.objects.filter(pk__in=chunk).values(
            "id", "external_id", "prompt", "response_a", "response_b", "response", "reference"
        )
        for item in sorted(items, key=lambda i: i["id"]):
            for plan in plans:
                for sample in range(plan.samples):
                    for swapped in plan.orders:
                        if (item["id"], plan.judge.pk, swapped, sample) not in stored:
                            yield plan, item, swapped, sample


def money(value) -> Decimal:
    """A sum of costs at the column's precision: SQLite sums decimals as floats (170.191000000001)."""
    return Decimal(str(value or 0)).quantize(COST_QUANTUM)


def _stored_count(*, campaign: Campaign, plans: list[Plan], scope: str) -> tuple[int, Decimal]:
    items = run_items(campaign=campaign, scope=scope)
    condition = _judged_by(plans)
    totals = Annotation.objects.filter(
        condition, campaign=campaign, source=Annotation.Source.JUDGE, item__in=items
    ).aggregate(n=Count("id"), cost=Sum("cost"))
    return totals["n"], money(totals["cost"])


@job_handler(JOB_KIND)
def judge_run(job: Job, progress) -> dict:
    campaign = job.campaign
    scope = job.params.get("scope", "routed")
    judges = list(Judge.objects.filter(pk__in=job.params.get("judges", [])))
    try:
        plans = judge_plans(campaign=campaign, judges=judges)
        item_ids = list(run_items(campaign=campaign, scope=scope).order_by("id").values_list("id", flat=True))
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    total = len(item_ids) * sum(plan.per_item for plan in plans)
    done, _ = _stored_count(campaign=campaign, plans=plans, scope=scope)
    progress(done=done, total=total)
    shards = shard_count(pending=total - done)
    children = [shard_start(job_id=job.pk, shard=k, shards=shards) for k in range(1, shards)]
    stats = {"done": done, "failed": 0, "parse_failures": 0, "cost_this_run": Decimal(0)}

    def report(local: dict, failures: list[dict]) -> None:
        if children:  # the other shards' work is in the database
            done_now, _ = _stored_count(campaign=campaign, plans=plans, scope=scope)
        else:
            done_now = done + local["done"]
        running = {k: local[k] for k in ("failed", "parse_failures", "cost_this_run")}
        progress(done=done_now, total=total, result=_summary({"done": done_now, **running}, failures, running=True))

    failures: list[dict] = []
    try:
        local, failures = judge_items(campaign=campaign, plans=plans, item_ids=item_ids[0::shards], on_flush=report)
        while any(child.process.poll() is None for child in children):
            time.sleep(FLUSH_SECONDS)
            report(local, failures)  # the other shards are still at work: keep the progress (and heartbeat) live
    finally:
        shard_results = [shard_wait(child) for child in children]
    for part in [local, *shard_results]:
        for key in ("failed", "parse_failures"):
            stats[key] += part[key]
        stats["cost_this_run"] += Decimal(str(part["cost_this_run"]))
        failures += part.get("failures", [])[: max(0, MAX_REPORTED_FAILURES - len(failures))]
    stats["done"], stats["cost"] = _stored_count(campaign=campaign, plans=plans, scope=scope)
    stats["total"] = total
    stats["processes"] = shards
    stats["verdicts"] = judge_verdicts_update(campaign=campaign, item_ids=item_ids)
    stats["routed_to_humans"] = _route_unjudgeable(campaign=campaign, item_ids=item_ids)
    judge_run_finished.send(sender=JOB_KIND, campaign=campaign, job=job)  # judges against humans: statistics
    # The new verdicts decide where items go. A pass that found this run busy asked for judges again: items
    # that arrived meanwhile are not in this run. Otherwise the pass starts no run (no endless chain).
    again = bool((Job.objects.filter(pk=job.pk).values_list("params", flat=True).first() or {}).get("route_again"))
    # New gold scores may open or close the gold gate (routing.gold): a pass applies it.
    gated = campaign.judge_gold_threshold is not None and scope in ("gold", "all")  # "all" judges gold items too
    wanted = again or gated or job.params.get("then_route") or campaign.routing_policy in JUDGE_POLICIES
    if wanted and job.params.get("route_after", True):
        route_request(campaign=campaign, start_judges=again)
    progress(done=stats["done"], total=total)
    return _summary(stats, failures, running=False)


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
    work = _pending(campaign=campaign, plans=plans, item_ids=item_ids)
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
                outcome = _outcome(future.result(), plan, campaign, item, swapped, sample)
                if outcome.row is not None:
                    rows.append(outcome.row)
                    stats["done"] += 1
                    stats["parse_failures"] += outcome.row.parse_failed
                    stats["cost_this_run"] += outcome.row.cost or 0
                else:
                    stats["failed"] += 1
                    if len(failures) < MAX_REPORTED_FAILURES:
                        failures.append(outcome.failure)
            if len(rows) >= FLUSH_ROWS or time.monotonic() - flushed_at >= FLUSH_SECONDS:
                if rows:
                    Annotation.objects.bulk_create(rows, ignore_conflicts=True)
                    rows.clear()
                flushed_at = time.monotonic()
                on_flush(stats, failures)
    finally:
        for future in in_flight:
            future.cancel()
        if rows:  # answers already paid for are kept, whatever happens
            Annotation.objects.bulk_create(rows, ignore_conflicts=True)
        loop.run(calls.close())
        loop.close()
    return stats, failures


# --- several processes -----------------------------------------------------------------------------
# One process keeps a judge's 64 requests in flight, but the SDK's per-request CPU then holds the GIL
# often enough to slow the reading of answers. With Redis holding the limits, a run splits its items
# over several processes (`python -m routing.judges.shard`), each a share of them.


def shard_count(*, pending: int) -> int:
    if pending < settings.TANDEM_JUDGE_SHARD_MIN or not redis_url():
        return 1  # without Redis the limits are per process: one process keeps them
    return max(1, settings.TANDEM_JUDGE_PROCESSES)


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class Shard:
    process: subprocess.Popen
    out: IO[bytes]
    err: IO[bytes]


def shard_start(*, job_id: int, shard: int, shards: int) -> Shard:
    env = dict(os.environ)
    env |= {
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "annotate.settings"),
        "DATABASE_URL": _database_url(),
        "TANDEM_REDIS_URL": redis_url() or "",
        "TANDEM_JUDGE_TIMEOUT": str(settings.TANDEM_JUDGE_TIMEOUT),
        "TANDEM_JUDGE_MAX_ATTEMPTS": str(settings.TANDEM_JUDGE_MAX_ATTEMPTS),
        "TANDEM_JUDGE_BACKOFF": str(settings.TANDEM_JUDGE_BACKOFF),
        "TANDEM_JUDGE_MAX_BACKOFF": str(settings.TANDEM_JUDGE_MAX_BACKOFF),
    }
    # Files, not pipes: nobody reads a pipe while the shard works, and a full one would stall it.
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "routing.judges.shard", str(job_id), str(shard), str(shards)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=out,
        stderr=err,
    )
    return Shard(process, out, err)


def shard_wait(child: Shard) -> dict:
    """A shard's report; a shard that died is reported as a failure, not lost silently."""
    child.process.wait()
    child.out.seek(0)
    child.err.seek(0)
    out, err = child.out.read().decode(errors="replace"), child.err.read().decode(errors="replace")
    child.out.close()
    child.err.close()
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        message = f"a judging process exited {child.process.returncode}: {err.strip()[-500:]}"
        log.error(message)
        return {"failed": 0, "parse_failures": 0, "cost_this_run": "0", "failures": [{"error": message}]}


def shard_main(*, job_id: int, shard: int, shards: int) -> dict:
    """One share of a run's items, in a process of its own; stops when the job stops running."""
    job = Job.objects.select_related("campaign").get(pk=job_id)
    campaign = job.campaign
    plans = judge_plans(campaign=campaign, judges=list(Judge.objects.filter(pk__in=job.params.get("judges", []))))
    item_ids = list(
        run_items(campaign=campaign, scope=job.params.get("scope", "routed"))
        .order_by("id")
        .values_list("id", flat=True)
    )

    def still_running(stats: dict, failures: list[dict]) -> None:
        if not Job.objects.filter(pk=job_id, state=Job.State.RUNNING).exists():
            raise JobCancelled(job_id)

    try:
        stats, failures = judge_items(
            campaign=campaign, plans=plans, item_ids=item_ids[shard::shards], on_flush=still_running
        )
    except JobCancelled:
        stats, failures = {"failed": 0, "parse_failures": 0, "cost_this_run": 0}, []
    return {**{k: str(v) if isinstance(v, Decimal) else v for k, v in stats.items()}, "failures": failures}


def _summary(stats: dict, failures: list[dict], *, running: bool) -> dict:
    summary = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in stats.items()}
    summary["failures"] = list(failures)
    summary["running"] = running
    return summary


# --- after the run: one verdict per item, and humans for what the judges could not judge ---------


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def judge_verdicts_update(*, campaign: Campaign, item_ids: list[int]) -> int:
    """Recompute the judges' combined verdict of these items from every stored judgment of them.

    Per (judge, prompt version, sample): pairwise, the two orders give one label
    (`verdicts.consistency`: equal → that label; same side → the milder one; opposite sides → a tie
    if allowed, else undecided) and a consistency flag; rubric, the label itself. These are then
    combined across samples and judges (majority for pairwise, mean for rubric scores). The
    confidence multiplies what each source of doubt says: agreement across samples and judges,
    the share of consistent order pairs, and the mean logprob confidence when offered.
    """
    schema, kind = campaign.label_schema, campaign.kind
    written = 0
    for start in range(0, len(item_ids), ITEM_CHUNK):
        chunk = item_ids[start : start + ITEM_CHUNK]
        groups: dict[int, dict[tuple, dict[bool, Annotation]]] = defaultdict(lambda: defaultdict(dict))
        judges_seen: dict[int, set] = defaultdict(set)
        judgments = Annotation.objects.filter(item_id__in=chunk, source=Annotation.Source.JUDGE).select_related("judge")
        for a in judgments.only(
            "item_id", "judge__name", "prompt_version", "sample_index", "position_swapped", "label", "confidence",
            "parse_failed",
        ):  # fmt: skip
            groups[a.item_id][(a.judge_id, a.prompt_version, a.sample_index)][bool(a.position_swapped)] = a
            judges_seen[a.item_id].add((a.judge.name, a.prompt_version))
        verdicts = []
        for item_id, by_key in groups.items():
            votes, consistent, logprobs, n, failed = [], [], [], 0, 0
            for orders in by_key.values():
                n += len(orders)
                failed += sum(a.parse_failed for a in orders.values())
                usable = [a for a in orders.values() if not a.parse_failed and a.label is not None]
                logprobs += [a.confidence for a in usable if a.confidence is not None]
                if kind == Campaign.Kind.PAIRWISE and len(usable) == 2:
                    check = consistency(orders[False].label, orders[True].label, campaign_schema=schema)
                    consistent.append(1.0 if check.consistent else 0.0)
                    if check.aggregate is not None:
                        votes.append((check.aggregate, None))
                elif usable:
                    votes.append((usable[0].label, None))
            aggregate = aggregate_judgments(
                votes, campaign_schema=schema, method="majority" if kind == Campaign.Kind.PAIRWISE else "mean"
            )
            position, logprob = _mean(consistent), _mean(logprobs)
            confidence = None
            if aggregate.label is not None:
                confidence = aggregate.confidence if aggregate.confidence is not None else 1.0
                confidence *= (position if position is not None else 1.0) * (logprob if logprob is not None else 1.0)
                confidence = min(1.0, max(0.0, confidence))
            verdicts.append(
                JudgeVerdict(
                    campaign=campaign,
                    item_id=item_id,
                    label=aggregate.label,
                    confidence=confidence,
                    position_consistency=position,
                    logprob_confidence=logprob,
                    n_judgments=n,
                    n_parse_failures=failed,
                    judges=[{"judge": name, "prompt_version": v} for name, v in sorted(judges_seen[item_id])],
                )
            )
        JudgeVerdict.objects.bulk_create(
            verdicts,
            update_conflicts=True,
            unique_fields=["item"],
            update_fields=[
                "label", "confidence", "position_consistency", "logprob_confidence", "n_judgments",
                "n_parse_failures", "judges", "updated_at",
            ],
        )  # fmt: skip
        # A verdict that arrives after the humans labelled can dispute their majority (dynamic overlap).
        verdicts_updated.send(sender=JOB_KIND, campaign=campaign, item_ids=[verdict.item_id for verdict in verdicts])
        written += len(verdicts)
    return written


def _route_unjudgeable(*, campaign: Campaign, item_ids: list[int]) -> int:
    """Items only the judges were to label, on which they gave no usable verdict, go to humans."""
    with transaction.atomic():
        stuck = list(
            Item.objects.filter(
                pk__in=JudgeVerdict.objects.filter(
                    campaign=campaign, item_id__in=item_ids, label__isnull=True, n_parse_failures__gt=0
                ).values("item_id"),
                route=Item.Route.LLM,
            ).values_list("pk", flat=True)
        )
        if not stuck:
            return 0
        Item.objects.filter(pk__in=stuck).update(route=Item.Route.HUMAN)
        now = timezone.now()
        RoutingDecision.objects.bulk_create(
            RoutingDecision(
                campaign=campaign,
                item_id=item_id,
                destination=RoutingDecision.Destination.HUMAN,
                policy=campaign.routing_policy,
                reason="the judges gave no usable verdict (unparsable output or a refusal); a human labels it",
                created_at=now,
            )
            for item_id in stuck
        )
    return len(stuck)
