"""A judge run split over several processes (`python -m routing.judges.shard`), each judging a share of it.

One process keeps a judge's 64 requests in flight, but the SDK's per-request CPU then holds the GIL often
enough to slow the reading of answers. With Redis holding the limits, a run splits its items over several
processes: the job's own process judges share 0 and starts one child per other share; each child stops
when the job stops running and prints one JSON line (what it judged, failed and spent).

On the worker's warm shutdown each child is sent SIGTERM: it drains its calls in flight, stores them and
reports itself interrupted, and the run goes back to the queue once every child has ended.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from annotate.models import Job, Judge
from jobs.registry import JobCancelled, JobInterrupted
from jobs.shutdown import on_stop, stopping
from routing.judges.engine import judge_items
from routing.judges.limits import redis_url
from routing.judges.plans import judge_plans, run_items

log = logging.getLogger(__name__)


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
    unregister: object = None


_live: list[Shard] = []


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
    shard = Shard(process, out, err)
    _live.append(shard)
    shard.unregister = on_stop(process.terminate)
    return shard


def shard_wait(child: Shard) -> dict:
    """A shard's report; a shard that died is reported as a failure, not lost silently. Raises JobInterrupted
    when the shard stopped for a warm shutdown, after every other live shard has ended too."""
    if stopping():
        for other in list(_live):
            other.process.wait()
    report = _shard_report(child)
    if report.get("interrupted"):
        raise JobInterrupted(report.get("interrupted_why") or "a judging process stopped for a shutdown")
    return report


def _shard_report(child: Shard) -> dict:
    child.process.wait()
    if child in _live:
        _live.remove(child)
    if callable(child.unregister):
        child.unregister()
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
    """One share of a run's items, in a process of its own; stops when the run that started it no longer
    holds the job (finished, cancelled, re-queued) or has died."""
    job = Job.objects.select_related("campaign").get(pk=job_id)
    campaign, claim = job.campaign, job.worker
    plans = judge_plans(campaign=campaign, judges=list(Judge.objects.filter(pk__in=job.params.get("judges", []))))
    item_ids = list(
        run_items(campaign=campaign, scope=job.params.get("scope", "routed"))
        .order_by("id")
        .values_list("id", flat=True)
    )

    parent = os.getppid()

    def still_running(stats: dict, failures: list[dict]) -> None:
        # The run that started this shard must still hold the job: after its worker was killed the sweep
        # re-queues the job and a new run starts shards of its own, so an orphan must not judge on beside them.
        if os.getppid() != parent or not Job.objects.filter(pk=job_id, state=Job.State.RUNNING, worker=claim).exists():
            raise JobCancelled(job_id)

    interrupted = {}
    try:
        stats, failures = judge_items(
            campaign=campaign, plans=plans, item_ids=item_ids[shard::shards], on_flush=still_running
        )
    except JobCancelled:
        stats, failures = {"failed": 0, "parse_failures": 0, "cost_this_run": 0}, []
    except JobInterrupted as exc:
        stats, failures = {"failed": 0, "parse_failures": 0, "cost_this_run": 0}, []
        interrupted = {"interrupted": True, "interrupted_why": f"shard {shard}: {exc}"}
    report = {k: str(v) if isinstance(v, Decimal) else v for k, v in stats.items()}
    return {**report, "failures": failures, **interrupted}
