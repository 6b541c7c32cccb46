"""The annotation round trip under load: next + submit through the HTTP API, many annotators at once.

A campaign of `--items` pairwise items (default 100,000, overlap 3) is imported; gunicorn serves the
app from `--workers` processes (several counts, to see throughput grow until the database is the
limit); `--annotators` client threads (default 32), spread over a few client processes, each loop
`POST next` → `POST submit` over keep-alive connections for `--seconds`. Each request records its
client-side latency and the server's own time from the `Server-Timing` header.

Targets (issue): p95 of next < 30 ms and of submit < 30 ms (server side); throughput that grows
with processes until the database is the limit. Everything runs on one 2-core machine, so client
threads, gunicorn and PostgreSQL share the same cores; the report says how busy the machine was.

`--database sqlite` measures the embedded default instead: a fresh SQLite file under a temporary
TANDEM_VAR_DIR, set up by a child process and served by gunicorn as the Procfile starts it (pass
`--workers 2`). Targets there (issue 15): next p50 <= 5 ms and p95 <= 10 ms for one annotator, flat
from 10k to 1M items (`--items 10000,1000000`), >= 100 labels/s for 8 annotators flat out
(`--annotators 8`), and <= 6 ms of server CPU per next + submit (`server_cpu_ms_per_cycle`: the
gunicorn processes' CPU time over the round divided by the labels given, whatever else the machine
runs). Up to IMPORTED rows come through the import service; a larger campaign is filled by copying
those rows in SQL (new external ids and queue ranks), so 1M items take a minute, not an hour.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_PORT", "8765"))
IMPORTED = 20_000  # rows through the import service; more items are copies made in SQL
THREADS = int(os.environ.get("BENCH_GUNICORN_THREADS", "4"))
WORKER_CLASS = os.environ.get("BENCH_GUNICORN_CLASS", "gthread")


def add_arguments(group) -> None:
    group.add_argument(
        "--items", default="100000", help="items in the campaign, or several sizes comma-separated (quick: 5,000)"
    )
    group.add_argument(
        "--database",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="postgresql (the benchmark database) or sqlite: the embedded default, a fresh file in a temp dir",
    )
    group.add_argument("--annotators", type=int, default=32, help="concurrent annotators (client threads)")
    group.add_argument("--seconds", type=float, default=20.0, help="measured seconds per worker count")
    group.add_argument("--workers", default="1,2,4", help="gunicorn process counts to measure, comma-separated")
    group.add_argument("--client-processes", type=int, default=4, help="client processes the annotators are spread on")
    group.add_argument(
        "--think-ms", type=float, default=1000.0, help="an annotator's pause between items in the paced rounds"
    )


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def summarize(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": round(statistics.fmean(values), 2) if values else None,
    }


# --- the client side ---------------------------------------------------------------------------


def _annotator(token: str, slug: str, stop_at: float, start_at: float, think_s: float, out: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    rng = random.Random(token)

    def call(path: str, body: dict) -> tuple[int, dict, float, float]:
        began = time.perf_counter()
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        payload = response.read()
        client_ms = (time.perf_counter() - began) * 1000
        timing = response.getheader("Server-Timing", "app;dur=nan")
        server_ms = float(timing.split("dur=")[1])
        return response.status, json.loads(payload or b"{}"), client_ms, server_ms

    # Warm up outside the measurement: the connection, and the server thread's database connection.
    # The lease this takes is the one the first measured `next` returns.
    call(f"/api/campaigns/{slug}/next/", {})
    while time.time() < start_at:
        time.sleep(0.005)
    if think_s:
        # Paced annotators are measured in their steady state, not all arriving in the same millisecond.
        time.sleep(rng.uniform(0, think_s))
    conn.close()  # idle longer than gunicorn's keep-alive: reconnect (on the first request) as a browser would
    while time.time() < stop_at:
        try:
            status, body, c_ms, s_ms = call(f"/api/campaigns/{slug}/next/", {})
            out.append(("next", c_ms, s_ms))
            if status != 200:
                errors.append(f"next: {status} {body}")
                time.sleep(0.05)
                continue
            if body["status"] != "leased":
                time.sleep(0.05)
                continue
            assignment = body["assignment"]["assignment"]
            if think_s:
                time.sleep(rng.uniform(0.5, 1.5) * think_s)  # reading and deciding
            status, body, c_ms, s_ms = call(
                f"/api/assignments/{assignment}/submit/", {"label": {"overall": rng.choice([-1, 0, 1])}}
            )
            out.append(("submit", c_ms, s_ms))
            if status != 201:
                errors.append(f"submit: {status} {body}")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)


def _client_process(tokens: list[str], slug: str, start_at: float, stop_at: float, think_s: float, queue) -> None:
    out: list = []
    errors: list = []
    threads = [
        threading.Thread(target=_annotator, args=(t, slug, stop_at, start_at, think_s, out, errors)) for t in tokens
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put((out, errors[:20], len(errors)))


# --- the server side ---------------------------------------------------------------------------


def _start_gunicorn(workers: int, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "annotate.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
            "--workers", str(workers), "--threads", str(THREADS), "--worker-class", WORKER_CLASS,
            "--log-level", "warning",
        ],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=0.5):
                pass
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status in (200, 503):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"gunicorn did not start: {process.stderr.read().decode()[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def _tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of process `root` and its children (gunicorn's master and workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid == root or ppid == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _cpu_busy() -> tuple[float, float]:
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def measure(
    workers: int, tokens: list[str], slug: str, seconds: float, client_processes: int, env: dict, think_ms: float
) -> dict:
    server = _start_gunicorn(workers, env)
    try:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        start_at = time.time() + 5  # let every client connect and warm up first
        stop_at = start_at + seconds
        chunks = [tokens[i::client_processes] for i in range(client_processes)]
        procs = [
            context.Process(target=_client_process, args=(c, slug, start_at, stop_at, think_ms / 1000, queue))
            for c in chunks
            if c
        ]
        for proc in procs:
            proc.start()
        while time.time() < start_at:
            time.sleep(0.01)
        busy0, total0 = _cpu_busy()
        server0 = _tree_cpu_s(server.pid)
        while time.time() < stop_at:
            time.sleep(0.01)
        server1 = _tree_cpu_s(server.pid)  # at the end of the window: the clients' last calls may still run
        load = os.getloadavg()
        results = [queue.get(timeout=seconds + 120) for _ in procs]
        busy1, total1 = _cpu_busy()
        for proc in procs:
            proc.join()
    finally:
        _stop(server)
    samples = [s for out, _, _ in results for s in out]
    errors = [e for _, errs, _ in results for e in errs]
    n_errors = sum(n for _, _, n in results)
    submits = [s for s in samples if s[0] == "submit"]
    nexts = [s for s in samples if s[0] == "next"]
    labels = len(submits)
    return {
        "workers": workers,
        "annotators": len(tokens),
        "think_ms": think_ms,
        "threads_per_worker": THREADS,
        "seconds": seconds,
        "labels_per_s": round(len(submits) / seconds, 1),
        "requests_per_s": round(len(samples) / seconds, 1),
        "next_server_ms": summarize([s[2] for s in nexts]),
        "next_client_ms": summarize([s[1] for s in nexts]),
        "submit_server_ms": summarize([s[2] for s in submits]),
        "submit_client_ms": summarize([s[1] for s in submits]),
        "machine_cpu_busy_fraction": round((busy1 - busy0) / max(total1 - total0, 1), 3),
        # The server's own CPU per next + submit: not inflated by other load on the machine (wall times are).
        "server_cpu_ms_per_cycle": round((server1 - server0) * 1000 / labels, 2) if labels else None,
        "load_average_1m": round(load[0], 2),
        "errors": n_errors,
        "error_examples": errors[:5],
    }


# --- setup -------------------------------------------------------------------------------------


def _setup(items: int, annotators: int) -> tuple[object, list[str], dict]:
    from django.contrib.auth import get_user_model

    from annotate.models.tokens import api_token_create
    from annotate.services.campaigns import campaign_create
    from annotate.services.imports import items_import
    from bench.datagen import write_pairwise_jsonl

    campaign = campaign_create(
        name=f"bench annotate flow {int(time.time())}", kind="pairwise", preset="simple-pairwise", overlap=3
    )
    campaign.state = "open"
    campaign.save(update_fields=["state"])
    imported = min(items, IMPORTED)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        write_pairwise_jsonl(path, imported, seed=7)
        began = time.perf_counter()
        with path.open("rb") as stream:
            report = items_import(campaign=campaign, stream=stream, filename=str(path))
        import_s = time.perf_counter() - began
    began = time.perf_counter()
    copied = _copy_items(campaign=campaign, items=items)
    copy_s = time.perf_counter() - began
    User = get_user_model()
    tokens = []
    for i in range(annotators):
        user, _ = User.objects.get_or_create(username=f"bench-annotator-{i}")
        tokens.append(api_token_create(user=user, name="bench annotate_flow", days=1).key)
    setup = {
        "items": report.created + copied,
        "imported": report.created,
        "import_s": round(import_s, 2),
        "copied": copied,
        "copy_s": round(copy_s, 2),
    }
    return campaign, tokens, setup


def _copy_items(*, campaign, items: int) -> int:
    """Fill the campaign up to `items` by copying its imported rows in SQL: each pass doubles it at most, with
    new external ids and fresh random queue ranks (the queue's shuffle), in one transaction per pass."""
    from django.db import connection, transaction

    from annotate.models import Item

    table = Item._meta.db_table
    copy = [f.column for f in Item._meta.concrete_fields if f.column not in ("id", "external_id", "queue_rank")]
    rank = "random()" if connection.vendor == "sqlite" else "(floor((random() - 0.5) * 1.8e19))::bigint"
    suffix = "CAST(%s AS TEXT)" if connection.vendor == "sqlite" else "%s::text"
    copied, passes = 0, 0
    while True:
        have = Item.objects.filter(campaign=campaign).count()
        if have >= items or have == 0:
            return copied
        passes += 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(copy)}, external_id, queue_rank) "
                f"SELECT {', '.join(copy)}, external_id || '-c' || {suffix}, {rank} FROM {table} "
                "WHERE campaign_id = %s ORDER BY id LIMIT %s",
                [passes, campaign.pk, items - have],
            )
            copied += cursor.rowcount


def _teardown(campaign) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("annotate_annotation", "annotate_assignment", "annotate_routingdecision", "annotate_item"):
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [campaign.pk])
    campaign.delete()


def _sqlite_env(var_dir: Path) -> dict:
    """The environment of `make run` on the embedded default, with its var/ in `var_dir`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TANDEM_CACHE_URL")}
    env.update({"TANDEM_VAR_DIR": str(var_dir), "DEBUG": "0", "DJANGO_SETTINGS_MODULE": "annotate.settings"})
    env.pop("TANDEM_REDIS_URL", None)
    return env


def _setup_sqlite(var_dir: Path, items: int, annotators: int) -> tuple[str, list[str], dict]:
    """Migrate a fresh SQLite database in `var_dir` and set the campaign up there, in a child process."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--setup-sqlite", str(items), str(annotators)],
        cwd=ROOT, env=_sqlite_env(var_dir), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"SQLite setup failed: {done.stderr[-3000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["slug"], answer["tokens"], answer["setup"]


def _queue_plan(*, campaign, annotator) -> list[list[str]]:
    """EXPLAIN QUERY PLAN (SQLite) of each lookup a work lease tries, for a fresh annotator: index searches only."""
    from django.db import connection

    from annotate.services.assignments import _work_walks

    plans = []
    with connection.cursor() as cursor:
        for sql, params in _work_walks(annotator=annotator, campaign=campaign, columns="i.id"):
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plans.append([row[-1] for row in cursor.fetchall()])
    return plans


def _setup_sqlite_child(items: int, annotators: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    campaign, tokens, setup = _setup(items, annotators)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what `make run`'s database has after SQLite's own optimize, roughly
    fresh, _ = get_user_model().objects.get_or_create(username="bench-plan-probe")
    setup["queue_plan"] = _queue_plan(campaign=campaign, annotator=fresh)
    print(json.dumps({"slug": campaign.slug, "tokens": tokens, "setup": setup}))


def _rounds(*, tokens, slug, seconds, worker_counts, args, env) -> dict:
    single = measure(max(worker_counts), tokens[:1], slug, seconds, 1, env, 0)
    paced = [measure(w, tokens, slug, seconds, args.client_processes, env, args.think_ms) for w in worker_counts]
    flat_out = [measure(w, tokens, slug, seconds, args.client_processes, env, 0) for w in worker_counts]
    return {"single_annotator": single, "paced": paced, "flat_out": flat_out}


def run(args) -> dict:
    from django.conf import settings

    sizes = [5_000] if args.quick else [int(n) for n in str(args.items).split(",")]
    seconds = 5.0 if args.quick else args.seconds
    worker_counts = [1, 2] if args.quick else [int(w) for w in args.workers.split(",")]
    database = getattr(args, "database", "postgresql")
    by_items = {}
    for items in sizes:
        if database == "sqlite":
            var_dir = Path(tempfile.mkdtemp(prefix="tandem-bench-sqlite-"))
            try:
                slug, tokens, setup = _setup_sqlite(var_dir, items, args.annotators)
                rounds = _rounds(
                    tokens=tokens, slug=slug, seconds=seconds, worker_counts=worker_counts, args=args,
                    env=_sqlite_env(var_dir),
                )  # fmt: skip
            finally:
                shutil.rmtree(var_dir, ignore_errors=True)
        else:
            campaign, tokens, setup = _setup(items, args.annotators)
            db = settings.DATABASES["default"]
            env = dict(os.environ)
            env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or (
                f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
            )
            env["DEBUG"] = "0"
            try:
                rounds = _rounds(
                    tokens=tokens, slug=campaign.slug, seconds=seconds, worker_counts=worker_counts, args=args, env=env
                )
            finally:
                _teardown(campaign)
        by_items[str(items)] = {"setup": setup, "rounds": rounds}
    first = by_items[str(sizes[0])]
    summary = "; ".join(_summary(items, by_items[str(items)], args) for items in sizes)
    return {
        "parameters": {
            "database": database,
            "items": sizes[0],
            "item_sizes": sizes,
            "overlap": 3,
            "annotators": args.annotators,
            "seconds": seconds,
            "worker_counts": worker_counts,
            "threads_per_worker": THREADS,
            "client_processes": args.client_processes,
            "think_ms": args.think_ms,
            "targets": {
                "next_p95_server_ms": 30,
                "submit_p95_server_ms": 30,
                "sqlite": {
                    "next_p50_ms": 5,
                    "next_p95_ms": 10,
                    "flat_out_labels_per_s_8_annotators": 100,
                    "server_cpu_ms_per_cycle": 6,
                },
            },
        },
        # setup and rounds: the first size, as before; by_items: every size.
        "measurements": {"setup": first["setup"], "rounds": first["rounds"], "by_items": by_items},
        "summary": summary,
    }


def _summary(items: int, measured: dict, args) -> str:
    rounds, setup = measured["rounds"], measured["setup"]
    typical = max(rounds["paced"], key=lambda r: r["workers"])
    single = rounds["single_annotator"]
    return (
        f"{rounds['flat_out'][0]['annotators']} annotators, {setup['items']:,} items. Paced ({args.think_ms:.0f} ms "
        f"per item, {typical['workers']} processes): next p50/p95 server {typical['next_server_ms']['p50']}/"
        f"{typical['next_server_ms']['p95']} ms, submit {typical['submit_server_ms']['p50']}/"
        f"{typical['submit_server_ms']['p95']} ms, {typical['labels_per_s']} labels/s. Flat out: "
        + ", ".join(
            f"{r['workers']} proc → {r['labels_per_s']} labels/s ({r['server_cpu_ms_per_cycle']} ms server CPU a label)"
            for r in rounds["flat_out"]
        )
        + f". One annotator alone: next p50/p95 {single['next_server_ms']['p50']}/{single['next_server_ms']['p95']} ms "
        f"server, {single['next_client_ms']['p50']}/{single['next_client_ms']['p95']} ms client, "
        f"{single['server_cpu_ms_per_cycle']} ms server CPU per next + submit"
    )


if __name__ == "__main__":
    # The child that sets a SQLite campaign up (`_setup_sqlite`); benchmarks run through bench/run.py.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser()
    parser.add_argument("--setup-sqlite", nargs=2, type=int, metavar=("ITEMS", "ANNOTATORS"), required=True)
    _setup_sqlite_child(*parser.parse_args().setup_sqlite)
