"""Judge runs: the job (kind `judge_run`) that asks a campaign's judges for every judgment it still lacks.

A run is a Job (progress, cancel, resume after a lost worker come from the job machinery). It fixes its
plans and items when it starts (`plans.py`), judges them on an asyncio engine (`engine.py`), split over
several processes for a large run (`shards.py`), storing each judgment as it arrives under the key the
database holds unique (`store.py`), so a retried or redelivered run never pays twice for one. When the
judgments are in it recomputes the items' combined verdicts and sends to humans what the judges could not
label (`aggregate.py`). What follows a run — a routing pass that uses the new verdicts — is chained by
`routing.chain`, not here.
"""

from __future__ import annotations

import time
from decimal import Decimal

from annotate.models import Campaign, Job, Judge
from jobs.registry import JobFailed, job_handler
from jobs.runner import job_create
from routing.judges.aggregate import judge_verdicts_update, unjudgeable_route
from routing.judges.engine import FLUSH_SECONDS, MAX_REPORTED_FAILURES, judge_items
from routing.judges.plans import JOB_KIND, SCOPES, Plan, judge_plans, run_items
from routing.judges.shards import shard_count, shard_main, shard_start, shard_wait
from routing.judges.store import money, stored_count
from routing.signals import judge_run_finished

# Importers name these here, where a run is started and run.
__all__ = [
    "JOB_KIND", "SCOPES", "Plan", "judge_items", "judge_plans", "judge_run", "judge_run_start",
    "judge_verdicts_update", "money", "run_items", "shard_main",
]  # fmt: skip


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
    even for a judge-first policy (the caller routes itself, as `route --sync` does). `routing.chain` reads
    both when the run has ended."""
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
    done, _ = stored_count(campaign=campaign, plans=plans, scope=scope)
    progress(done=done, total=total)
    tallied, failures = _judge_sharded(job, plans, item_ids, done=done, total=total, progress=progress)
    stats = {"done": done, **{k: tallied[k] for k in ("failed", "parse_failures", "cost_this_run")}}
    stats["done"], stats["cost"] = stored_count(campaign=campaign, plans=plans, scope=scope)
    stats["total"], stats["processes"] = total, tallied["processes"]
    stats["verdicts"] = judge_verdicts_update(campaign=campaign, item_ids=item_ids)
    stats["routed_to_humans"] = unjudgeable_route(campaign=campaign, item_ids=item_ids)
    judge_run_finished.send(sender=JOB_KIND, campaign=campaign, job=job)  # judges against humans: statistics
    progress(done=stats["done"], total=total)
    return _summary(stats, failures, running=False)


def _judge_sharded(job: Job, plans: list[Plan], item_ids: list[int], *, done: int, total: int, progress):
    """Judge the run's items here (share 0) and in the other shards' processes; returns what they did
    together ({failed, parse_failures, cost_this_run, processes}) and the first failures."""
    campaign, scope = job.campaign, job.params.get("scope", "routed")
    shards = shard_count(pending=total - done)
    children = [shard_start(job_id=job.pk, shard=k, shards=shards) for k in range(1, shards)]

    def report(local: dict, failures: list[dict]) -> None:
        if children:  # the other shards' work is in the database
            done_now, _ = stored_count(campaign=campaign, plans=plans, scope=scope)
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
    stats = {"failed": 0, "parse_failures": 0, "cost_this_run": Decimal(0)}
    for part in [local, *shard_results]:
        for key in ("failed", "parse_failures"):
            stats[key] += part[key]
        stats["cost_this_run"] += Decimal(str(part["cost_this_run"]))
        failures += part.get("failures", [])[: max(0, MAX_REPORTED_FAILURES - len(failures))]
    stats["processes"] = shards
    return stats, failures


def _summary(stats: dict, failures: list[dict], *, running: bool) -> dict:
    summary = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in stats.items()}
    summary["failures"] = list(failures)
    summary["running"] = running
    return summary
