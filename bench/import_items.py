"""import_items: 100,000 pairwise rows of about 1 KB into PostgreSQL in under 10 s, streaming.

Measured, on a synthetic JSONL file written once per run (bench/datagen.py, seeded):

- first import into a fresh campaign (every row created), wall clock end to end, `--repeat` times;
- re-import of the same file into the same campaign (every row unchanged: the idempotent path);
- memory: RSS sampled every 5 ms during the first import, ru_maxrss, and (a separate, slower run)
  the tracemalloc peak of Python allocations;
- where the time goes without a profiler: reading only, reading + parsing rows (no database);
- `manage.py import_items` in a subprocess, once (startup included, and reported apart);
- with --profile, cProfile of a first import and a re-import (bench/results/import_items.profile.txt).

Every campaign made here is deleted afterwards, and leftovers of an interrupted run at the start.
"""

from __future__ import annotations

import cProfile
import gc
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

from bench.datagen import GENERATOR_VERSION, write_pairwise_jsonl

ROOT = Path(__file__).resolve().parent.parent
FULL_ROWS = 100_000
QUICK_ROWS = 10_000
WARMUP_ROWS = 1_000
TARGET_SECONDS = 10.0  # for FULL_ROWS rows, from the issue
SEED = 20240611
CHAT_FRACTION = 0.1
SLUG_PREFIX = "bench-import-items"
BUSY_CORES = 0.25  # other processes using more than this during a timed run make it unreliable
MB = 1_000_000
MIB = 1024 * 1024


def add_arguments(group) -> None:
    group.add_argument("--rows", type=int, help=f"rows to import (default {FULL_ROWS:,}; --quick: {QUICK_ROWS:,})")
    group.add_argument("--repeat", type=int, default=1, help="timed first-import + re-import rounds (default 1)")
    group.add_argument("--seed", type=int, default=SEED, help="data generator seed")
    group.add_argument("--profile", action="store_true", help="also cProfile one import and one re-import")
    group.add_argument("--no-command", action="store_true", help="skip the manage.py import_items subprocess")
    group.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each timed import, wait up to SECONDS for other processes to go (nearly) idle",
    )
    group.add_argument("--no-tracemalloc", action="store_true", help="skip the (slow) tracemalloc run")


# --- Measuring helpers ----------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


class RssSampler:
    """Peak resident set size of this process while a block runs, sampled every `interval` s."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.before = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _backend_cpu_seconds() -> float | None:
    """CPU used so far by this connection's PostgreSQL backend (same host only: /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _mb(n: int | float) -> float:
    return round(n / MB, 2)


def _machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (user + system + irq + steal), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_quiet(timeout: float, threshold: float = 0.3) -> float:
    """Wait (up to `timeout` s) until the rest of the machine uses under `threshold` cores; return that use."""
    deadline = time.monotonic() + timeout
    while True:
        busy0 = _machine_busy_seconds()
        time.sleep(1.0)
        busy = _machine_busy_seconds() - busy0
        if busy < threshold or time.monotonic() >= deadline:
            return round(busy, 2)


class GcTimer:
    """Time spent in Python's cyclic garbage collector while a block runs."""

    def __init__(self):
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections[info["generation"]] += 1

    def __enter__(self):
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)


def timed_import(campaign, path: Path, quiet_timeout: float = 0.0) -> dict:
    """One items_import, measured: wall, CPU of this process and of its database backend, memory.

    `other_cpu_s` is what every other process on the machine used meanwhile (PostgreSQL's
    background writers included): more than a few tenths of a second per second of wall time
    means the figures were taken on a busy machine.
    """
    from annotate.services.imports import items_import

    size = path.stat().st_size
    busy_before = wait_quiet(quiet_timeout) if quiet_timeout > 0 else None
    load = os.getloadavg()[0]
    server0 = _backend_cpu_seconds()
    with RssSampler() as rss, GcTimer() as gc_timer, open(path, "rb") as stream:
        busy0, cpu0, t0 = _machine_busy_seconds(), time.process_time(), time.perf_counter()
        report = items_import(campaign=campaign, stream=stream, filename=str(path))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        busy = _machine_busy_seconds() - busy0
    server1 = _backend_cpu_seconds()
    server = None if server0 is None or server1 is None else server1 - server0
    return {
        "wall_s": round(wall, 3),
        "rows_per_s": round(report.rows / wall),
        "mb_per_s": round(size / MB / wall, 2),
        "client_cpu_s": round(cpu, 3),
        "client_gc_s": round(gc_timer.seconds, 3),
        "gc_collections": gc_timer.collections,
        "db_backend_cpu_s": None if server is None else round(server, 3),
        "other_cpu_s": round(busy - cpu - (server or 0), 2),
        "loadavg_1min_before": round(load, 2),
        "busy_cores_before": busy_before,
        "rss_before_mb": _mb(rss.before),
        "rss_peak_mb": _mb(rss.peak),
        "rss_growth_mb": _mb(rss.peak - rss.before),
        "report": {k: v for k, v in report.as_dict().items() if k != "conflict_rows"},
    }


# Functions of the import timed one by one in the breakdown run, by the name items.py calls them by.
# A name that no longer exists (after a refactor) is skipped and reported as missing.
SPANS = (
    ("annotate.services.imports.items", "item_row_parse", "parse"),
    ("annotate.services.imports.items", "_flush", "flush"),
    ("annotate.services.imports.items", "_insert", "insert"),
    ("annotate.services.imports.items", "route_new_items", "route"),
)


class Spans:
    """Wrap the SPANS functions and the connection's commit with timers while a block runs."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.missing: list[str] = []
        self._restore: list = []

    def _wrap(self, label: str, func):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0
                self.calls[label] = self.calls.get(label, 0) + 1

        return timed

    def __enter__(self):
        import importlib

        from django.db import connections

        for module_name, attr, label in SPANS:
            module = importlib.import_module(module_name)
            if not hasattr(module, attr):
                self.missing.append(f"{module_name}.{attr}")
                continue
            original = getattr(module, attr)
            setattr(module, attr, self._wrap(label, original))
            self._restore.append((module, attr, original))
        conn = connections["default"]
        conn.commit = self._wrap("commit", conn.commit)  # instance attribute: what Atomic.__exit__ calls
        self._restore.append((conn, "commit", None))
        return self

    def __exit__(self, *exc):
        for target, attr, original in reversed(self._restore):
            if original is None:
                delattr(target, attr)
            else:
                setattr(target, attr, original)


def breakdown_import(campaign, path: Path) -> dict:
    from annotate.services.imports import items_import

    with Spans() as spans, open(path, "rb") as stream:
        t0 = time.perf_counter()
        report = items_import(campaign=campaign, stream=stream, filename=str(path))
        wall = time.perf_counter() - t0
    sec = spans.seconds
    out = {"wall_s": round(wall, 3)}
    out["parse_s"] = round(sec.get("parse", 0.0), 3)
    out["existence_query_s"] = round(sec.get("flush", 0.0) - sec.get("insert", 0.0), 3)
    out["insert_copy_s"] = round(sec.get("insert", 0.0), 3)
    out["route_s"] = round(sec.get("route", 0.0), 3)
    out["commit_s"] = round(sec.get("commit", 0.0), 3)
    out["rest_s"] = round(wall - sum(sec.get(k, 0.0) for k in ("parse", "flush", "route", "commit")), 3)
    out["calls"] = spans.calls
    if spans.missing:
        out["missing"] = spans.missing
    out["report"] = {k: v for k, v in report.as_dict().items() if k != "conflict_rows"}
    return out


# --- Campaigns ------------------------------------------------------------------------------------


def new_campaign(label: str):
    from annotate.services.campaigns import campaign_create

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return campaign_create(
        name=f"{SLUG_PREFIX} {label} {stamp}",
        slug=f"{SLUG_PREFIX}-{label}-{stamp}-{os.getpid()}",
        kind="pairwise",
        preset="simple-pairwise",
    )


def drop_campaign(campaign_id: int) -> None:
    """Delete a benchmark campaign, its items and what points at them (routing decisions) in SQL.

    The ORM's cascade would load 100,000 items and their decisions into memory first.
    """
    from django.db import connection, transaction

    from annotate.models import Campaign, Item

    items = Item._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        for relation in Item._meta.related_objects:  # RoutingDecision, Assignment, Annotation, ...
            if relation.many_to_many or not relation.field.concrete:
                continue
            cursor.execute(
                f"DELETE FROM {relation.related_model._meta.db_table} WHERE {relation.field.column} IN "
                f"(SELECT id FROM {items} WHERE campaign_id = %s)",
                [campaign_id],
            )
        cursor.execute(f"DELETE FROM {items} WHERE campaign_id = %s", [campaign_id])
        Campaign.objects.filter(pk=campaign_id).delete()


def drop_leftovers() -> int:
    from annotate.models import Campaign

    ids = list(Campaign.objects.filter(slug__startswith=SLUG_PREFIX + "-").values_list("id", flat=True))
    for campaign_id in ids:
        drop_campaign(campaign_id)
    return len(ids)


def vacuum() -> None:
    """Start every run from a table without the dead rows of the last one."""
    from django.db import connection

    from annotate.models import Item

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Item._meta.db_table}")
        for relation in Item._meta.related_objects:
            if not relation.many_to_many and relation.field.concrete:
                cursor.execute(f"VACUUM ANALYZE {relation.related_model._meta.db_table}")


def stored_bytes(campaign_id: int) -> dict:
    from django.db import connection

    from annotate.models import Item

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), coalesce(sum(pg_column_size(i.*)), 0) FROM {Item._meta.db_table} i "
            "WHERE campaign_id = %s",
            [campaign_id],
        )
        count, size = cursor.fetchone()
        cursor.execute("SELECT pg_total_relation_size(%s)", [Item._meta.db_table])
        table = cursor.fetchone()[0]
    return {"items": count, "row_data_mb": _mb(size), "item_table_total_mb": _mb(table)}


def _check(report: dict, rows: int, *, created: int, unchanged: int, what: str) -> None:
    expect = {"rows": rows, "created": created, "unchanged": unchanged, "conflicts": 0}
    got = {k: report.get(k) for k in expect}
    if got != expect:
        raise AssertionError(f"{what}: import report {got}, expected {expect}")


# --- Extra measurements -----------------------------------------------------------------------------


def _phase_read(path: Path) -> tuple[float, int]:
    """Reading alone (JSONL lines -> dicts): the floor under an import."""
    from django.conf import settings

    from annotate.services.imports.readers import read_rows

    t0 = time.perf_counter()
    n = 0
    with open(path, "rb") as stream:
        for _where, _row in read_rows(
            stream,
            filename=str(path),
            max_row_bytes=settings.TANDEM_IMPORT_MAX_ROW_BYTES,
            max_file_bytes=settings.TANDEM_IMPORT_MAX_FILE_BYTES,
        ):
            n += 1
    return time.perf_counter() - t0, n


def _phase_parse(path: Path, campaign) -> tuple[float, int]:
    """Reading + row parsing (validation, content hash): pure Python, no database."""
    from django.conf import settings

    from annotate.services.imports.readers import read_rows
    from annotate.services.imports.rows import item_row_parse

    t0 = time.perf_counter()
    n = 0
    with open(path, "rb") as stream:
        for _where, row in read_rows(
            stream,
            filename=str(path),
            max_row_bytes=settings.TANDEM_IMPORT_MAX_ROW_BYTES,
            max_file_bytes=settings.TANDEM_IMPORT_MAX_FILE_BYTES,
        ):
            item_row_parse(row, kind=campaign.kind, schema=campaign.label_schema)
            n += 1
    return time.perf_counter() - t0, n


def tracemalloc_import(path: Path, rows: int) -> dict:
    """Peak of Python allocations during a first import (tracemalloc slows it down: not a timing)."""
    from annotate.services.imports import items_import

    campaign = new_campaign("tracemalloc")
    try:
        tracemalloc.start()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        t0 = time.perf_counter()
        with open(path, "rb") as stream:
            report = items_import(campaign=campaign, stream=stream, filename=str(path))
        wall = time.perf_counter() - t0
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        _check(report.as_dict(), rows, created=rows, unchanged=0, what="tracemalloc import")
        return {
            "peak_mb": _mb(peak - base),
            "retained_after_mb": _mb(current - base),
            "peak_bytes_per_row": round((peak - base) / rows),
            "wall_s_with_tracemalloc": round(wall, 3),
        }
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        drop_campaign(campaign.pk)


def _vm_hwm(pid: int) -> int | None:
    """Peak RSS of a running process since its exec (VmHWM), in bytes."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _spawn(cmd: list[str], workdir: Path) -> dict:
    """Run a command, returning wall time, exit status, output, CPU time and the child's peak RSS.

    The peak comes from polling the child's VmHWM: the ru_maxrss that wait4 reports includes the
    memory of this (large) parent process at fork time, so it is no measure of the child.
    """
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    peak = 0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env=os.environ.copy())
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _vm_hwm(proc.pid) or 0)
            time.sleep(0.02)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": round(wall, 3),
        "exit": proc.returncode,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": _mb(peak) if peak else None,
        "stdout": out_path.read_text(errors="replace"),
        "stderr": err_path.read_text(errors="replace"),
    }


def command_import(path: Path, rows: int, workdir: Path) -> dict:
    """`manage.py import_items SLUG FILE` in a subprocess, and the same interpreter's startup alone."""
    campaign = new_campaign("command")
    manage = str(ROOT / "manage.py")
    try:
        run = _spawn([sys.executable, manage, "import_items", campaign.slug, str(path)], workdir)
        if run["exit"] != 0:
            raise RuntimeError(f"manage.py import_items exited {run['exit']}: {run['stderr'][-2000:]}")
        report = json.loads(run["stdout"].strip().splitlines()[-1])
        _check(report, rows, created=rows, unchanged=0, what="manage.py import_items")
    finally:
        drop_campaign(campaign.pk)
    # Django setup and the command's imports, without the import itself.
    startup = _spawn([sys.executable, manage, "help", "import_items"], workdir)
    size = path.stat().st_size
    return {
        "wall_s": run["wall_s"],
        "rows_per_s": round(rows / run["wall_s"]),
        "mb_per_s": round(size / MB / run["wall_s"], 2),
        "cpu_s": run["cpu_s"],
        "peak_rss_mb": run["peak_rss_mb"],
        "startup_wall_s": startup["wall_s"],
        "startup_peak_rss_mb": startup["peak_rss_mb"],
        "import_wall_s_without_startup": round(run["wall_s"] - startup["wall_s"], 3),
        "report": {k: v for k, v in report.items() if k != "conflict_rows"},
    }


def _top(stats: pstats.Stats, sort: str, n: int) -> list[dict]:
    stats.sort_stats(sort)
    out = []
    for func in stats.fcn_list[:n]:
        cc, nc, tt, ct, _callers = stats.stats[func]
        filename, line, name = func
        short = filename
        for prefix in (str(ROOT) + "/", sys.prefix + "/lib/", sys.base_prefix + "/lib/"):
            short = short.removeprefix(prefix)
        out.append(
            {"function": f"{short}:{line}({name})", "ncalls": nc, "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3)}
        )
    return out


def profile_imports(path: Path, rows: int, out_path: Path) -> dict:
    """cProfile a first import and a re-import; full text to out_path, top functions returned."""
    from annotate.services.imports import items_import

    campaign = new_campaign("profile")
    result = {}
    text = io.StringIO()
    try:
        for label, expect_created in (("first_import", rows), ("reimport", 0)):
            profiler = cProfile.Profile()
            t0 = time.perf_counter()
            with open(path, "rb") as stream:
                profiler.enable()
                report = items_import(campaign=campaign, stream=stream, filename=str(path))
                profiler.disable()
            wall = time.perf_counter() - t0
            _check(report.as_dict(), rows, created=expect_created, unchanged=rows - expect_created, what=label)
            stats = pstats.Stats(profiler, stream=text)
            text.write(f"==== {label}: {rows:,} rows, {wall:.2f} s under cProfile ====\n")
            for sort in ("tottime", "cumulative"):
                stats.sort_stats(sort).print_stats(30)
            result[label] = {
                "wall_s_under_profiler": round(wall, 3),
                "top_tottime": _top(stats, "tottime", 15),
                "top_cumulative": _top(stats, "cumulative", 15),
            }
    finally:
        drop_campaign(campaign.pk)
    out_path.write_text(text.getvalue())
    result["text"] = os.path.relpath(out_path)
    return result


# --- The benchmark -------------------------------------------------------------------------------------


def _spread(values: list[float]) -> dict:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def run(args) -> dict:
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    repeat = max(1, args.repeat)
    parameters = {
        "rows": rows,
        "repeat": repeat,
        "seed": args.seed,
        "format": "jsonl",
        "kind": "pairwise",
        "preset": "simple-pairwise",
        "chat_prompt_fraction": CHAT_FRACTION,
        "generator_version": GENERATOR_VERSION,
        "warmup_rows": WARMUP_ROWS,
        "target": f"{FULL_ROWS:,} rows in < {TARGET_SECONDS:g} s",
    }
    measurements: dict = {}
    workdir = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    try:
        path = workdir / "items.jsonl"
        t0 = time.perf_counter()
        data = write_pairwise_jsonl(path, rows, args.seed, CHAT_FRACTION)
        data["generate_s"] = round(time.perf_counter() - t0, 3)
        data["mb"] = _mb(data["bytes"])
        measurements["data"] = data

        # Warm-up: one small import first, so the timed rounds do not pay one-time costs (module
        # imports, first COPY, statement caches) that a long-running web or worker process has paid.
        warmup = workdir / "warmup.jsonl"
        write_pairwise_jsonl(warmup, WARMUP_ROWS, args.seed + 1, CHAT_FRACTION)

        leftovers = drop_leftovers()
        if leftovers:
            print(f"import_items: removed {leftovers} campaign(s) left by an interrupted run", file=sys.stderr)
        campaign = new_campaign("warmup")
        try:
            timed_import(campaign, warmup)
        finally:
            drop_campaign(campaign.pk)
        vacuum()

        rounds = []
        for i in range(repeat):
            campaign = new_campaign(f"round{i + 1}")
            try:
                first = timed_import(campaign, path, args.wait_quiet)
                _check(first["report"], rows, created=rows, unchanged=0, what="first import")
                again = timed_import(campaign, path, args.wait_quiet)
                _check(again["report"], rows, created=0, unchanged=rows, what="re-import")
                if i == 0:
                    measurements["stored"] = stored_bytes(campaign.pk)
            finally:
                drop_campaign(campaign.pk)
            vacuum()
            rounds.append({"first_import": first, "reimport": again})
            print(
                f"import_items: round {i + 1}/{repeat}: import {first['wall_s']:.2f} s, "
                f"re-import {again['wall_s']:.2f} s",
                file=sys.stderr,
                flush=True,
            )
        firsts = [r["first_import"]["wall_s"] for r in rounds]
        agains = [r["reimport"]["wall_s"] for r in rounds]
        measurements["first_import"] = {
            "wall_s": _spread(firsts),
            "rows_per_s_median": round(rows / statistics.median(firsts)),
            "mb_per_s_median": round(data["bytes"] / MB / statistics.median(firsts), 2),
        }
        measurements["reimport"] = {
            "wall_s": _spread(agains),
            "rows_per_s_median": round(rows / statistics.median(agains)),
            "mb_per_s_median": round(data["bytes"] / MB / statistics.median(agains), 2),
        }
        measurements["rounds"] = rounds
        measurements["ru_maxrss_mb"] = _mb(_maxrss())

        # Without the database: what reading and parsing alone cost (a floor for the import).
        campaign = new_campaign("phases")
        try:
            read_s, n_read = _phase_read(path)
            parse_s, n_parsed = _phase_parse(path, campaign)
        finally:
            drop_campaign(campaign.pk)
        measurements["phases"] = {
            "read_s": round(read_s, 3),
            "read_and_parse_s": round(parse_s, 3),
            "rows": n_parsed,
            "note": "JSONL reading (json.loads per line), then + item_row_parse (validation, content hash); no DB",
        }
        assert n_read == n_parsed == rows

        campaign = new_campaign("breakdown")
        try:
            measurements["breakdown"] = {
                "note": "one more import and re-import with each step timed (wall s); rest_s = reading "
                "the file, the per-row loop and the campaign lock",
                "first_import": breakdown_import(campaign, path),
                "reimport": breakdown_import(campaign, path),
            }
        finally:
            drop_campaign(campaign.pk)
        vacuum()

        if not args.no_tracemalloc:
            measurements["tracemalloc"] = tracemalloc_import(path, rows)
        if not args.no_command:
            measurements["command"] = command_import(path, rows, workdir)
        if args.profile:
            measurements["profile"] = profile_imports(path, rows, args.results_dir / "import_items.profile.txt")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    median = statistics.median(firsts)
    target_applies = rows == FULL_ROWS
    if target_applies:
        measurements["target_met"] = median < TARGET_SECONDS
    summary = (
        f"{rows:,} rows ({data['mb']:.1f} MB) imported in {median:.2f} s median of {repeat} "
        f"({rows / median:,.0f} rows/s, {data['bytes'] / MB / median:.1f} MB/s); "
        f"re-import {statistics.median(agains):.2f} s; "
        f"RSS +{max(r['first_import']['rss_growth_mb'] for r in rounds):.0f} MB"
    )
    if "tracemalloc" in measurements:
        summary += f", tracemalloc peak {measurements['tracemalloc']['peak_mb']:.0f} MB"
    if "command" in measurements:
        summary += f"; manage.py {measurements['command']['wall_s']:.2f} s"
    busiest = max(r[k]["other_cpu_s"] / r[k]["wall_s"] for r in rounds for k in ("first_import", "reimport"))
    measurements["busiest_other_cores"] = round(busiest, 2)
    if busiest > BUSY_CORES:
        summary += f" (BUSY MACHINE: other processes used up to {busiest:.1f} cores during a timed run)"
    if target_applies:
        summary += f" [target < {TARGET_SECONDS:g} s: {'met' if measurements['target_met'] else 'MISSED'}]"
    return {"parameters": parameters, "measurements": measurements, "summary": summary}
