"""Judge throughput: a judge run against a loopback OpenAI-compatible server with fixed latency.

The server (tests/fakes/openai_server.py, in its own process) answers every request after
`--latency-ms` (default 200 ms) and the judge may have `--concurrency` (default 64) requests in
flight, so the ceiling is concurrency / latency = 320 judgments/s. A pairwise campaign of `--items`
items (default 5,000: 10,000 judgments, both orders) is judged by `manage.py run_judges --sync` in a
child process; the report gives judgments per second over the run, the share of the ceiling, and
the run's CPU time per judgment (the whole process: the SDK, parsing, logprob confidence and the
database writes). Target (issue): at least 90% of the ceiling on this 2-core machine. The fake server
runs on the same two cores and its CPU time is reported too.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SERVER_SCRIPT = """
import sys, time, resource
sys.path.insert(0, {root!r})
from tests.fakes.openai_server import FakeOpenAIServer
server = FakeOpenAIServer(latency={latency!r})
server.start()
print(server.base_url, flush=True)
try:
    sys.stdin.read()
finally:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{{usage.ru_utime + usage.ru_stime}} {{server.calls}} {{server.max_in_flight}}", flush=True)
    server.stop()
"""


def add_arguments(group) -> None:
    group.add_argument("--judge-items", type=int, default=5_000, help="pairwise items to judge (×2 orders)")
    group.add_argument("--latency-ms", type=float, default=200.0, help="the fake endpoint's latency")
    group.add_argument("--concurrency", type=int, default=64, help="the judge's concurrency limit")
    group.add_argument("--processes", type=int, default=2, help="processes a run splits over (needs Redis; else one)")


def _redis_url() -> str | None:
    import redis

    url = os.environ.get("TANDEM_REDIS_URL") or "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


def _setup(items: int, base_url: str, concurrency: int):
    from annotate.models import Campaign, Item
    from annotate.services.campaigns import campaign_create
    from routing.judges.services import judge_create

    campaign = campaign_create(
        name=f"bench judges {int(time.time())}", kind="pairwise", preset="simple-pairwise", overlap=1
    )
    Campaign.objects.filter(pk=campaign.pk).update(routing_policy=Campaign.RoutingPolicy.ALL_LLM)
    Item.objects.bulk_create(
        Item(
            campaign=campaign,
            external_id=f"b{i}",
            prompt=f"Question {i}: explain the difference between a list and a tuple in Python.",
            response_a=f"A list is mutable and a tuple is not ({i}). " * 8,
            response_b=f"Tuples are immutable sequences; lists can change ({i}). " * 8,
            content_hash=f"{i:064d}",
            route=Item.Route.LLM,
        )
        for i in range(items)
    )
    judge = judge_create(
        name=f"bench-judge-{campaign.pk}",
        base_url=base_url,
        model="fake-judge",
        concurrency=concurrency,
        requests_per_minute=1_000_000,
        price_in_per_1k="0.001",
        price_out_per_1k="0.002",
    )
    campaign.judges.add(judge)
    return campaign, judge


def _job_rate(campaign, judgments: int) -> float:
    """Judgments per second over the job as a worker runs it: claim to finish, shards' start-up and the
    final per-item verdicts included, the command's own Python start-up not."""
    from annotate.models import Job

    job = Job.objects.filter(campaign=campaign, kind="judge_run").latest("id")
    return judgments / (job.finished_at - job.started_at).total_seconds()


def _steady_rate(campaign) -> float:
    """Judgments per second between the first and the last stored batch: the run without process start-up."""
    from django.db.models import Count, Max, Min

    from annotate.models import Annotation

    span = Annotation.objects.filter(campaign=campaign, source="judge").aggregate(
        first=Min("created_at"), last=Max("created_at"), n=Count("id")
    )
    seconds = (span["last"] - span["first"]).total_seconds()
    return span["n"] / seconds if seconds > 0 else 0.0


def _teardown(campaign, judge) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("annotate_annotation", "annotate_judgeverdict", "annotate_routingdecision", "annotate_item"):
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [campaign.pk])
    campaign.delete()
    judge.delete()


def run(args) -> dict:
    from django.conf import settings

    items = 200 if args.quick else args.judge_items
    latency = args.latency_ms / 1000
    ceiling = args.concurrency / latency
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT.format(root=str(ROOT), latency=latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    base_url = server.stdout.readline().strip()
    campaign, judge = _setup(items, base_url, args.concurrency)
    try:
        db = settings.DATABASES["default"]
        env = dict(os.environ)
        env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        redis = _redis_url()
        if redis:  # the limits shared by the run's processes live in Redis
            env["TANDEM_REDIS_URL"] = redis
        env["TANDEM_JUDGE_PROCESSES"] = str(args.processes)
        with tempfile.TemporaryFile() as out:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "manage.py", "run_judges", campaign.slug, "--sync"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE, check=True,
            )  # fmt: skip
            wall = time.perf_counter() - began
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            out.seek(0)
            summary = json.loads(out.read())
        steady = _steady_rate(campaign)
        job_rate = _job_rate(campaign, summary["done"])
    finally:
        server.stdin.close()
        server_cpu, calls, max_in_flight = server.stdout.readline().split()
        server.wait(timeout=30)
        _teardown(campaign, judge)
    judgments = summary["done"]
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rate = judgments / wall
    measurements = {
        "judgments": judgments,
        "failed": summary["failed"],
        "wall_s": round(wall, 2),
        "judgments_per_s": round(rate, 1),
        "ceiling_per_s": round(ceiling, 1),
        "share_of_ceiling": round(rate / ceiling, 3),
        "job_judgments_per_s": round(job_rate, 1),
        "job_share_of_ceiling": round(job_rate / ceiling, 3),
        "steady_judgments_per_s": round(steady, 1),
        "steady_share_of_ceiling": round(steady / ceiling, 3),
        "worker_cpu_s": round(cpu, 2),
        "worker_cpu_ms_per_judgment": round(cpu / max(judgments, 1) * 1000, 2),
        "server_cpu_s": round(float(server_cpu), 2),
        "server_calls": int(calls),
        "server_max_in_flight": int(max_in_flight),
        "processes": summary.get("processes", 1),
        "shared_limits": "redis" if redis else "in-process",
    }
    return {
        "parameters": {
            "items": items,
            "judgments_per_item": 2,
            "latency_ms": args.latency_ms,
            "concurrency": args.concurrency,
            "processes": args.processes,
            "targets": {"share_of_ceiling": 0.9},
        },
        "measurements": measurements,
        "summary": (
            f"{judgments:,} judgments: {job_rate:.0f}/s over the job ({job_rate / ceiling:.0%} of the "
            f"{ceiling:.0f}/s ceiling), {steady:.0f}/s steady ({steady / ceiling:.0%}), {rate:.0f}/s over the "
            f"whole command ({wall:.1f} s); worker CPU {measurements['worker_cpu_ms_per_judgment']} ms per judgment "
            f"(the run's processes, start-up included); at most {max_in_flight} requests in flight"
        ),
    }
