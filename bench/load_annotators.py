"""Load: 64 simulated annotators for 5 minutes against gunicorn and a Celery worker on PostgreSQL, then the invariants.

The server is started from the Procfile's own `web` and `worker` lines (the worker with `--beat`, so the
periodic lease sweep runs as in production), with `--bind`, `WEB_CONCURRENCY` and `GUNICORN_KEEP_ALIVE`
filled in: what is measured is what a deployment runs. A pairwise campaign (overlap 3, 20 s leases) gets
`--load-items` items, enough that the run does not exhaust them (the result says whether it did). One
client process runs every annotator on asyncio + aiohttp, each with its own keep-alive connections, looping
next → think → submit:

- `--load-abandon` of leases (10 %) are abandoned: never submitted. The annotator asks for the next item
  at once, listing its abandoned leases still live in `exclude` (as a page that keeps an item open would);
  with two held it hears `hold` and waits until the older lease runs out. The sweep gives them back.
- `--load-retry` of submits (5 %) are sent twice with the same body to the same URL — the assignment id is
  the submit's idempotency key (`annotation_submit` returns the stored label on a second call) — half one
  after the other (the first response lost), half at once on two connections (a client timing out while
  the server still works). A submit that fails on the connection is resent once, the same way.

Afterwards, in the database: exactly `overlap` human labels on every finished item and never more, the
item counters equal to what the rows say, no annotator twice on an item, every retried submit stored once,
every acknowledged label stored, no abandoned lease submitted, and no lease left live longer than its
expiry plus the sweep interval (sampled every `SAMPLE_S` during the run, and checked at the end).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import multiprocessing
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from queue import Empty

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
SAMPLE_S = 2.0
# Beat's tick, the task waiting behind a job on the worker, and this process's sampling period.
SWEEP_TOLERANCE_S = 10.0
THINK_S = (0.3, 3.0)  # straddles gunicorn's old 2 s keep-alive, as real annotators' pauses do
_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def add_arguments(group) -> None:
    group.add_argument("--duration", type=float, default=None, help="seconds of load (default 300; quick 20)")
    group.add_argument("--load-annotators", type=int, default=None, help="simulated annotators (default 64; quick 8)")
    group.add_argument("--load-items", type=int, default=None, help="items in the campaign (default 8,000; quick 40)")
    group.add_argument("--load-lease-seconds", type=int, default=20, help="the campaign's lease time")
    group.add_argument("--load-abandon", type=float, default=0.10, help="share of leases never submitted")
    group.add_argument("--load-retry", type=float, default=0.05, help="share of submits sent twice")
    group.add_argument("--load-workers", type=int, default=2, help="gunicorn processes (WEB_CONCURRENCY)")
    group.add_argument("--load-keep-alive", type=int, default=75, help="gunicorn --keep-alive for the measured run")
    group.add_argument(
        "--load-compare-keep-alive",
        type=int,
        default=2,
        help="then a shorter round with this keep-alive (gunicorn's default, 2 s), to count its resets; 0: skip",
    )
    group.add_argument("--load-compare-duration", type=float, default=60.0, help="seconds of the comparison round")
    group.add_argument("--load-log-dir", type=Path, default=None, help="keep gunicorn's and the worker's logs here")


# --- processes: the Procfile's commands, /proc ------------------------------------------------------


def procfile_command(process: str, values: dict[str, str]) -> list[str]:
    """The Procfile's `process` line as argv, `${VAR:-default}` filled from `values`, then the default."""
    lines = [(n, line.partition(":")) for n, line in enumerate(PROCFILE.read_text().splitlines(), 1)]
    found = [(n, command) for n, (name, sep, command) in lines if sep and name.strip() == process]
    if not found:
        raise ValueError(f"{PROCFILE}: no {process!r} process")
    number, command = found[0]

    def fill(match: re.Match) -> str:
        if match[1] in values:
            return str(values[match[1]])
        if match[2] is None:
            raise ValueError(f"{PROCFILE}:{number}: ${{{match[1]}}} has no default and the benchmark sets none")
        return match[2]

    argv = shlex.split(_VAR.sub(fill, command))
    return [sys.executable, "-m", argv[0], *argv[1:]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status in (200, 503):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn not answering after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _wait_log(text: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if text in log.read_text():
            return
        time.sleep(0.2)
    raise RuntimeError(f"worker not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(*processes: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to every process group at once (each shuts down gracefully meanwhile), SIGKILL after `timeout`."""
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


_CLK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()  # fields from the state on; the name may hold spaces
    except OSError:
        return None


def _family(pid: int) -> list[int]:
    """`pid` and its descendants (gunicorn's workers, celery's pool), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _cpu_s(pids: list[int]) -> dict[int, float]:
    times = {}
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            times[pid] = (int(fields[11]) + int(fields[12])) / _CLK  # utime, stime
    return times


def _memory_mb(pid: int) -> dict[str, float]:
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = round(int(rest.split()[0]) / 1024, 1)
    except OSError:
        pass
    return values


def _machine_busy() -> tuple[float, float]:
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def _loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# --- the client process -----------------------------------------------------------------------------


class Recorder:
    """Everything the annotators saw: one sample per answered request, errors by kind, what to check later."""

    def __init__(self, t0: float):
        self.t0 = t0
        self.samples: list[tuple[str, float, float, float | None, int]] = []  # kind, t, client ms, server ms, status
        self.http_errors: Counter[str] = Counter()
        self.connection_errors: Counter[str] = Counter()
        self.error_examples: list[str] = []
        self.next_statuses: Counter[str] = Counter()
        self.acknowledged: list[tuple[int, int]] = []  # (assignment, annotation) of every 200/201 submit
        self.retried: list[dict] = []
        self.abandoned: list[int] = []
        self.done_annotators = 0

    def _example(self, text: str) -> None:
        if len(self.error_examples) < 10:
            self.error_examples.append(text[:300])

    async def post(self, session, kind: str, url: str, body: dict) -> tuple[int | None, dict | None]:
        import aiohttp

        began = time.perf_counter()
        try:
            async with session.post(url, json=body) as response:
                payload = await response.read()
                status = response.status
                timing = response.headers.get("Server-Timing", "")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.connection_errors[f"{kind} {type(exc).__name__}"] += 1
            self._example(f"{kind} {url}: {type(exc).__name__}: {exc}")
            return None, None
        client_ms = (time.perf_counter() - began) * 1000
        server_ms = float(timing.split("dur=")[1]) if "dur=" in timing else None
        self.samples.append((kind, round(time.monotonic() - self.t0, 3), round(client_ms, 2), server_ms, status))
        try:
            data = json.loads(payload or b"{}")
        except ValueError:
            data = {"detail": payload[:200].decode("utf-8", "replace")}
        if status >= 400:
            code = data.get("code", "") if isinstance(data, dict) else ""
            self.http_errors[f"{kind} {status} {code}".strip()] += 1
            self._example(f"{kind} {url}: {status} {payload[:200]!r}")
        return status, data

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "http_errors": dict(self.http_errors),
            "connection_errors": dict(self.connection_errors),
            "error_examples": self.error_examples,
            "next_statuses": dict(self.next_statuses),
            "acknowledged": self.acknowledged,
            "retried": self.retried,
            "abandoned": self.abandoned,
            "done_annotators": self.done_annotators,
        }


async def _submit(rec: Recorder, sessions, url: str, body: dict, assignment: int, mode: str | None) -> None:
    """One submit; with `mode` the same request twice (`sequential`, `concurrent`); resent once after a lost answer."""
    if mode == "concurrent":
        answers = await asyncio.gather(*(rec.post(s, "submit", url, body) for s in sessions))
    else:
        answers = [await rec.post(sessions[0], "submit", url, body)]
        if mode == "sequential" or answers[0][0] is None:
            mode = mode or "after_connection_error"
            answers.append(await rec.post(sessions[0], "submit", url, body))
    for status, data in answers:
        if status in (200, 201):
            rec.acknowledged.append((assignment, data["annotation"]))
    if mode:
        rec.retried.append(
            {
                "assignment": assignment,
                "mode": mode,
                "answers": [
                    {"status": s, "annotation": d.get("annotation"), "created": d.get("created")}
                    if isinstance(d, dict)
                    else {"status": s}
                    for s, d in answers
                ],
            }
        )


async def _nap(seconds: float, stop_at: float) -> None:
    """Wait, but not past the end of the run: a waiting annotator has nothing in flight to finish."""
    await asyncio.sleep(max(0.05, min(seconds, stop_at - time.monotonic())))


async def _annotator(index: int, token: str, cfg: dict, rec: Recorder, stop_at: float) -> None:
    import aiohttp

    rng = random.Random(cfg["seed"] * 1000 + index)
    base = f"http://127.0.0.1:{cfg['port']}"
    headers = {"Authorization": f"Token {token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    sessions = [aiohttp.ClientSession(base, headers=headers, timeout=timeout) for _ in range(2)]
    abandoned: list[tuple[int, float]] = []  # (assignment, when it runs out, monotonic)
    try:
        await asyncio.sleep(rng.uniform(0, THINK_S[1]))  # annotators arrive spread out, not in one millisecond
        while time.monotonic() < stop_at:
            now = time.monotonic()
            abandoned = [(a, until) for a, until in abandoned if until > now]
            body = {"exclude": [a for a, _ in abandoned]}
            status, data = await rec.post(sessions[0], "next", f"/api/campaigns/{cfg['slug']}/next/", body)
            if status != 200:
                await _nap(1.0, stop_at)
                continue
            rec.next_statuses[data["status"]] += 1
            if data["status"] == "done":
                rec.done_annotators += 1
                return
            if data["status"] == "hold" and abandoned:
                await _nap(min(until for _, until in abandoned) - time.monotonic() + 0.2, stop_at)
                continue
            if data["status"] != "leased":
                await _nap(float(data.get("retry_after") or 1), stop_at)
                continue
            assignment = data["assignment"]["assignment"]
            if rng.random() < cfg["abandon"]:
                abandoned.append((assignment, time.monotonic() + cfg["lease_seconds"]))
                rec.abandoned.append(assignment)
                continue
            think = rng.uniform(*THINK_S)
            await asyncio.sleep(think)
            label = {"label": {"overall": rng.choice([-1, 0, 1])}, "active_seconds": round(think, 3)}
            mode = None
            if rng.random() < cfg["retry"]:
                mode = "concurrent" if rng.random() < 0.5 else "sequential"
            await _submit(rec, sessions, f"/api/assignments/{assignment}/submit/", label, assignment, mode)
    finally:
        for session in sessions:
            await session.close()


async def _annotators(cfg: dict) -> dict:
    rec = Recorder(t0=time.monotonic())
    delay = cfg["start_at"] - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    rec.t0 = time.monotonic()
    stop_at = rec.t0 + cfg["duration"]
    await asyncio.gather(*(_annotator(i, token, cfg, rec, stop_at) for i, token in enumerate(cfg["tokens"])))
    return {**rec.as_dict(), "wall_s": round(time.monotonic() - rec.t0, 3)}


def _client_process(cfg: dict, queue) -> None:
    try:
        queue.put(asyncio.run(_annotators(cfg)))
    except BaseException as exc:  # the parent must hear about it, not wait for a result forever
        queue.put({"crashed": f"{type(exc).__name__}: {exc}"})
        raise


# --- one round: start the clients, watch the server, collect -----------------------------------------


def _lease_lag_s(campaign_id: int) -> tuple[float, int]:
    """(seconds the most overdue live lease is past its expiry, how many live leases are overdue)."""
    from django.db import connection

    from annotate.models import Assignment

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT coalesce(extract(epoch FROM now() - min(expires_at)), 0), count(*) FROM "
            f"{Assignment._meta.db_table} WHERE campaign_id = %s AND state = %s AND expires_at < now()",
            [campaign_id, Assignment.State.LEASED],
        )
        lag, overdue = cursor.fetchone()
    return float(lag), overdue


def _round(*, cfg: dict, campaign_id: int, gunicorn: subprocess.Popen, worker: subprocess.Popen) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    cfg = {**cfg, "start_at": time.time() + 2}  # the client process imports aiohttp meanwhile
    client = context.Process(target=_client_process, args=(cfg, queue))
    client.start()
    while time.time() < cfg["start_at"]:
        time.sleep(0.01)
    web = _family(gunicorn.pid)
    web_cpu0, worker_cpu0 = _cpu_s(web), _cpu_s(_family(worker.pid))
    busy0, total0 = _machine_busy()
    load_start = _loadavg()
    max_lag, max_overdue, web_rss_peak = 0.0, 0, 0.0
    result = None
    while result is None:
        try:
            result = queue.get(timeout=SAMPLE_S)
        except Empty:  # the clients are still running
            if not client.is_alive():
                raise RuntimeError(f"client process died with exit code {client.exitcode}") from None
        lag, overdue = _lease_lag_s(campaign_id)
        max_lag, max_overdue = max(max_lag, lag), max(max_overdue, overdue)
        web_rss_peak = max(web_rss_peak, sum(_memory_mb(p).get("VmRSS", 0) for p in _family(gunicorn.pid)))
    client.join()
    if "crashed" in result:
        raise RuntimeError(f"client process failed: {result['crashed']}")
    busy1, total1 = _machine_busy()
    web_now = _family(gunicorn.pid)
    web_cpu1, worker_cpu1 = _cpu_s(web_now), _cpu_s(_family(worker.pid))
    wall = result["wall_s"]
    respawned = sorted(set(web_now) - set(web))  # a worker gunicorn had to replace would show here
    result["server"] = {
        "gunicorn_processes": len(web_now),
        "gunicorn_processes_replaced": len(respawned),
        "gunicorn_cpu_s": round(sum(web_cpu1.get(p, 0) - web_cpu0.get(p, 0) for p in web_now), 2),
        "gunicorn_cpu_cores": round(sum(web_cpu1.get(p, 0) - web_cpu0.get(p, 0) for p in web_now) / wall, 3),
        "gunicorn_worker_peak_rss_mb": max((_memory_mb(p).get("VmHWM", 0) for p in web_now[1:]), default=None),
        "gunicorn_total_rss_peak_mb": round(web_rss_peak, 1),
        "celery_cpu_s": round(sum(worker_cpu1.get(p, 0) - worker_cpu0.get(p, 0) for p in worker_cpu1), 2),
        "celery_peak_rss_mb": _memory_mb(worker.pid).get("VmHWM"),
        "machine_cpu_busy_fraction": round((busy1 - busy0) / max(total1 - total0, 1), 3),
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
    }
    result["lease_lag"] = {"max_s": round(max_lag, 1), "max_overdue_leases": max_overdue, "sample_every_s": SAMPLE_S}
    return result


# --- measurements ---------------------------------------------------------------------------------


def _figures(result: dict) -> dict:
    from bench.annotate_flow import summarize

    samples = result["samples"]
    labels = [s for s in samples if s[0] == "submit" and s[4] == 201]
    requests = len(samples) + sum(result["connection_errors"].values())
    errors = sum(result["http_errors"].values()) + sum(result["connection_errors"].values())
    per_minute = Counter(int(s[1] // 60) for s in labels)
    latency = {}
    for kind in ("next", "submit"):
        mine = [s for s in samples if s[0] == kind]
        latency[kind] = {
            "client_ms": summarize([s[2] for s in mine]),
            "server_ms": summarize([s[3] for s in mine if s[3] is not None]),
        }
    return {
        "wall_s": result["wall_s"],
        "requests": requests,
        "labels": len(labels),
        "labels_per_s": round(len(labels) / result["wall_s"], 2),
        "labels_per_minute": [per_minute.get(m, 0) for m in range(max(per_minute, default=-1) + 1)],
        "errors": errors,
        "error_rate": round(errors / max(requests, 1), 5),
        "http_errors": result["http_errors"],
        "connection_errors": result["connection_errors"],
        "error_examples": result["error_examples"],
        "next_statuses": result["next_statuses"],
        "abandoned_leases": len(result["abandoned"]),
        "retried_submits": dict(Counter(r["mode"] for r in result["retried"])),
        "annotators_done": result["done_annotators"],
        "latency": latency,
        "server": result["server"],
        "lease_lag": result["lease_lag"],
    }


# --- the invariants, in the database ---------------------------------------------------------------


def _one(sql: str, params: list) -> tuple:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _invariants(*, campaign, results: list[dict], sweep_s: float) -> dict:
    from annotate.models import Annotation, Assignment, Item

    item_t, label_t, lease_t = Item._meta.db_table, Annotation._meta.db_table, Assignment._meta.db_table
    human, leased = Annotation.Source.HUMAN, Assignment.State.LEASED
    finished, over, label_counter_off, slot_counter_off = _one(
        f"SELECT count(*) FILTER (WHERE n = %s), count(*) FILTER (WHERE n > %s), "
        f"count(*) FILTER (WHERE n <> human_label_count), count(*) FILTER (WHERE n + live <> assigned_count) "
        f"FROM (SELECT i.human_label_count, i.assigned_count, "
        f"(SELECT count(*) FROM {label_t} a WHERE a.item_id = i.id AND a.source = %s) AS n, "
        f"(SELECT count(*) FROM {lease_t} l WHERE l.item_id = i.id AND l.state = %s) AS live "
        f"FROM {item_t} i WHERE i.campaign_id = %s) counts",
        [campaign.overlap, campaign.overlap, human, leased, campaign.pk],
    )  # one statement, one snapshot: the sweep may be moving leases meanwhile
    twice_leased = _one(
        f"SELECT count(*) FROM (SELECT 1 FROM {lease_t} WHERE campaign_id = %s AND returned_at IS NULL "
        "GROUP BY item_id, annotator_id HAVING count(*) > 1) t",
        [campaign.pk],
    )[0]
    twice_labelled = _one(
        f"SELECT count(*) FROM (SELECT 1 FROM {label_t} WHERE campaign_id = %s AND source = %s "
        "GROUP BY item_id, annotator_id HAVING count(*) > 1) t",
        [campaign.pk, human],
    )[0]
    retried = [r for result in results for r in result["retried"]]
    stored = Counter(
        Annotation.objects.filter(assignment_id__in=[r["assignment"] for r in retried]).values_list(
            "assignment_id", flat=True
        )
    )
    stored_ids = dict(
        Annotation.objects.filter(assignment_id__in=[r["assignment"] for r in retried]).values_list(
            "assignment_id", "pk"
        )
    )
    retry_bad = []
    for r in retried:
        answered = [a for a in r["answers"] if a["status"] in (200, 201)]
        ids = {a["annotation"] for a in answered}
        created = sum(1 for a in answered if a["created"])
        n = stored[r["assignment"]]
        every_answer_came = len(answered) == len(r["answers"])
        if (
            n > 1
            or (answered and (n != 1 or ids != {stored_ids.get(r["assignment"])} or created > 1))
            or (every_answer_came and created != 1)
        ):
            retry_bad.append({**r, "stored": n})
    acknowledged = {pair for result in results for pair in result["acknowledged"]}
    found = set(Annotation.objects.filter(pk__in=[a for _, a in acknowledged]).values_list("assignment_id", "pk"))
    abandoned = [a for result in results for a in result["abandoned"]]
    abandoned_states = Counter(Assignment.objects.filter(pk__in=abandoned).values_list("state", flat=True))
    allowed = sweep_s + SWEEP_TOLERANCE_S
    overdue_at_end = _one(
        f"SELECT count(*) FROM {lease_t} WHERE campaign_id = %s AND state = %s "
        "AND expires_at < now() - make_interval(secs => %s)",
        [campaign.pk, leased, allowed],
    )[0]
    max_lag = max(result["lease_lag"]["max_s"] for result in results)
    return {
        "overlap_exact": {
            "ok": over == 0 and label_counter_off == 0,
            "overlap": campaign.overlap,
            "finished_items": finished,
            "items_over_overlap": over,
            "items_whose_label_counter_differs": label_counter_off,
        },
        "slot_counter_consistent": {
            "ok": slot_counter_off == 0,
            "items_whose_assigned_count_differs": slot_counter_off,
        },
        "never_one_annotator_twice": {
            "ok": twice_leased == 0 and twice_labelled == 0,
            "item_annotator_pairs_leased_twice": twice_leased,
            "item_annotator_pairs_labelled_twice": twice_labelled,
        },
        "retried_submit_stored_once": {
            "ok": not retry_bad,
            "retried": len(retried),
            "stored_once": sum(1 for r in retried if stored[r["assignment"]] == 1),
            "violations": len(retry_bad),
            "examples": retry_bad[:5],
        },
        "acknowledged_labels_stored": {
            "ok": acknowledged <= found,
            "acknowledged": len(acknowledged),
            "missing": len(acknowledged - found),
        },
        "abandoned_never_submitted": {
            "ok": abandoned_states.get(Assignment.State.SUBMITTED, 0) == 0,
            "abandoned": len(abandoned),
            "states": dict(abandoned_states),
        },
        "leases_swept_in_time": {
            "ok": overdue_at_end == 0 and max_lag <= allowed,
            "allowed_s": allowed,
            "sweep_interval_s": sweep_s,
            "max_overdue_s_seen": max_lag,
            "overdue_at_end": overdue_at_end,
            "expired_leases": Assignment.objects.filter(campaign=campaign, state=Assignment.State.EXPIRED).count(),
        },
    }


# --- setup, teardown, run --------------------------------------------------------------------------

SLUG_PREFIX = "bench-load-annotators-"
TOKEN_NAME = "bench load_annotators"


def _api_token(user) -> str:
    """A fresh API token for a benchmark account; the previous runs' are deleted (their keys are gone anyway)."""
    from annotate.models.tokens import ApiToken, api_token_create

    ApiToken.objects.filter(user=user, name=TOKEN_NAME).delete()
    return api_token_create(user=user, name=TOKEN_NAME, days=1).key


def _setup(*, items: int, annotators: int, lease_seconds: int) -> tuple[object, list[str], dict]:
    from django.contrib.auth import get_user_model

    from annotate.models import Campaign
    from annotate.services.campaigns import campaign_create
    from annotate.services.imports import items_import
    from bench.datagen import write_pairwise_jsonl

    for leftover in Campaign.objects.filter(slug__startswith=SLUG_PREFIX):  # an interrupted run's
        _teardown(leftover)
    stamp = f"{int(time.time())}-{uuid.uuid4().hex[:6]}"
    campaign = campaign_create(
        name=f"bench load annotators {stamp}",
        slug=SLUG_PREFIX + stamp,
        kind="pairwise",
        preset="simple-pairwise",
        overlap=3,
    )
    # The settings check's floor is 60 s (a person needs time to read); the engine takes any length, and a
    # short lease lets abandoned ones come back many times within the run.
    campaign.lease_seconds = lease_seconds
    campaign.state = Campaign.State.OPEN
    campaign.save(update_fields=["lease_seconds", "state"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        write_pairwise_jsonl(path, items, seed=17)
        with path.open("rb") as stream:
            report = items_import(campaign=campaign, stream=stream, filename=str(path))
    User = get_user_model()
    tokens = [_api_token(User.objects.get_or_create(username=f"bench-load-{i}")[0]) for i in range(annotators)]
    return campaign, tokens, {"items": report.created}


def _teardown(campaign) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("annotate_annotation", "annotate_assignment", "annotate_routingdecision", "annotate_item"):
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [campaign.pk])
    campaign.delete()


def _server_env(queue: str, var_dir: str) -> dict:
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{db['NAME']}"
    )
    env["DEBUG"] = "0"
    env["CELERY_TASK_DEFAULT_QUEUE"] = queue  # a queue of our own: no other worker on the broker takes our tasks
    env["TANDEM_VAR_DIR"] = var_dir
    return env


def _gunicorn(
    *, workers: int, keep_alive: int, env: dict, log: Path, port: int | None = None
) -> tuple[subprocess.Popen, int, list[str]]:
    """The Procfile's `web` process on 127.0.0.1:`port` (a free one by default), once it answers /healthz."""
    port = port or _free_port()
    values = {"TANDEM_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers), "GUNICORN_KEEP_ALIVE": keep_alive}
    argv = procfile_command("web", values)
    if "--keep-alive" not in argv:
        raise ValueError(f"{PROCFILE}: the web process sets no --keep-alive (gunicorn's default is 2 s)")
    process = _start(argv, env, log)
    _wait_http(port, process, log)
    return process, port, argv


class _Phases:
    """Wall seconds of each step of the run: where a slow run spent its time."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 2)
        self._last = now


def run(args) -> dict:
    from django.conf import settings
    from django.db import connection

    from annotate.celery import app as celery_app

    if connection.vendor != "postgresql":
        raise RuntimeError(f"load_annotators needs PostgreSQL; the database is {connection.vendor}")
    quick = args.quick
    duration = args.duration if args.duration is not None else (20.0 if quick else 300.0)
    annotators = args.load_annotators or (8 if quick else 64)
    items = args.load_items or (40 if quick else 8000)
    compare_keep_alive = 0 if quick else args.load_compare_keep_alive
    sweep_s = float(settings.CELERY_BEAT_SCHEDULE["leases-expire"]["schedule"])
    queue = f"bench-load-{uuid.uuid4().hex[:8]}"
    old_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue  # jobs the setup asks for go to the benchmark's worker
    phases = _Phases()
    campaign, tokens, setup = _setup(items=items, annotators=annotators, lease_seconds=args.load_lease_seconds)
    phases.done("setup")
    cfg = {
        "slug": campaign.slug,
        "tokens": tokens,
        "abandon": args.load_abandon,
        "retry": args.load_retry,
        "lease_seconds": args.load_lease_seconds,
        "seed": 17,
    }
    with tempfile.TemporaryDirectory(prefix="tandem-load-") as var_dir:
        env = _server_env(queue, var_dir)
        worker_log, web_log = Path(var_dir) / "worker.log", Path(var_dir) / "web.log"
        worker_argv = procfile_command("worker", {"WORKER_CONCURRENCY": "4"})
        worker = _start(worker_argv, env, worker_log)
        gunicorn = None
        try:
            gunicorn, port, web_argv = _gunicorn(
                workers=args.load_workers, keep_alive=args.load_keep_alive, env=env, log=web_log
            )
            _wait_log("ready.", worker, worker_log)  # started first, so both came up meanwhile
            phases.done("servers_start")
            main = _round(cfg={**cfg, "port": port, "duration": duration}, campaign_id=campaign.pk, gunicorn=gunicorn,
                          worker=worker)  # fmt: skip
            results = [main]
            phases.done("load")
            comparison = None
            if compare_keep_alive:
                _stop(gunicorn)
                time.sleep(args.load_lease_seconds + 1)  # round 1's abandoned leases run out: nobody takes them up
                gunicorn, port, _ = _gunicorn(
                    workers=args.load_workers, keep_alive=compare_keep_alive, env=env, log=web_log
                )
                compared = _round(cfg={**cfg, "port": port, "duration": args.load_compare_duration},
                                  campaign_id=campaign.pk, gunicorn=gunicorn, worker=worker)  # fmt: skip
                results.append(compared)
                comparison = {"keep_alive_s": compare_keep_alive, **_figures(compared)}
            phases.done("comparison")
            invariants = _invariants(campaign=campaign, results=results, sweep_s=sweep_s)
            phases.done("invariants")
            sweeps = len(re.findall(r"Task annotate\.tasks\.leases_expire\[[^]]+\] succeeded", worker_log.read_text()))
        finally:
            _stop(*([gunicorn] if gunicorn is not None else []), worker)
            phases.done("stop")
            celery_app.conf.task_default_queue = old_queue
            web_errors = [line for line in web_log.read_text().splitlines() if "[ERROR]" in line or "Traceback" in line]
            if args.load_log_dir is not None:
                args.load_log_dir.mkdir(parents=True, exist_ok=True)
                for log in (worker_log, web_log):
                    shutil.copy(log, args.load_log_dir / f"load_annotators.{log.name}")
    remaining = campaign.items.filter(human_label_count__lt=campaign.overlap).count()
    _teardown(campaign)
    phases.done("teardown")
    figures = _figures(main)
    return _report(
        parameters={
            "annotators": annotators,
            "duration_s": duration,
            "items": setup["items"],
            "overlap": 3,
            "lease_seconds": args.load_lease_seconds,
            "lease_seconds_note": "written to the row directly: campaign_settings_check's floor is 60 s",
            "abandon": args.load_abandon,
            "abandon_behaviour": "asks next at once, its abandoned leases still live in `exclude`; waits on `hold`",
            "retry": args.load_retry,
            "retry_modes": "half sequential (first answer lost), half concurrent; connection failures resent once",
            "think_s": list(THINK_S),
            "keep_alive_s": args.load_keep_alive,
            "gunicorn_workers": args.load_workers,
            "web_command": " ".join(web_argv[2:]),
            "worker_command": " ".join(worker_argv[2:]),
            "lease_sweep": f"celery beat in the worker, every {sweep_s:g} s (annotate.tasks.leases_expire)",
        },
        figures=figures,
        comparison=comparison,
        invariants=invariants,
        extra={
            "items_left_unfinished": remaining,
            "campaign_finished": remaining == 0,
            "lease_sweeps_run": sweeps,
            "gunicorn_log_errors": web_errors[:20],
            "phases_s": phases.seconds,
        },
    )


def _report(*, parameters: dict, figures: dict, comparison: dict | None, invariants: dict, extra: dict) -> dict:
    failed = [name for name, check in invariants.items() if not check["ok"]]
    lat, server = figures["latency"], figures["server"]
    verdict = (
        f"INVARIANTS FAILED: {', '.join(failed)}"
        if failed
        else f"invariants hold ({len(invariants)}: overlap exact on {invariants['overlap_exact']['finished_items']:,} "
        f"finished items, {invariants['retried_submit_stored_once']['retried']} retried submits stored once)"
    )
    summary = (
        f"{verdict}. {parameters['annotators']} annotators × {parameters['duration_s']:g} s, keep-alive "
        f"{parameters['keep_alive_s']} s: {figures['labels']:,} labels ({figures['labels_per_s']}/s), errors "
        f"{figures['errors']}/{figures['requests']:,} ({sum(figures['connection_errors'].values())} connection); "
        f"next p50/p95/p99 {lat['next']['client_ms']['p50']}/{lat['next']['client_ms']['p95']}/"
        f"{lat['next']['client_ms']['p99']} ms, submit {lat['submit']['client_ms']['p50']}/"
        f"{lat['submit']['client_ms']['p95']}/{lat['submit']['client_ms']['p99']} ms (client); gunicorn "
        f"{server['gunicorn_cpu_cores']} cores, worker peak RSS {server['gunicorn_worker_peak_rss_mb']} MB; "
        f"load avg {server['loadavg_end'][0]}"
    )
    if comparison:
        summary += (
            f". Keep-alive {comparison['keep_alive_s']} s for {comparison['wall_s']:.0f} s: "
            f"{sum(comparison['connection_errors'].values())} connection errors"
        )
    if extra["gunicorn_log_errors"]:
        summary = f"GUNICORN LOGGED ERRORS. {summary}"
    return {
        "parameters": parameters,
        "measurements": {**figures, "keep_alive_comparison": comparison, **extra},
        "invariants": invariants,
        "invariants_ok": not failed,
        "summary": summary,
    }
