"""import_items: 100,000 pairwise rows of about 1 KB into PostgreSQL in under 10 s, streaming.

Measured, on a synthetic JSONL file written once per run (bench/datagen.py, seeded):

- first import into a fresh campaign (every row created), wall clock end to end, `--repeat` times;
- re-import of the same file into the same campaign (every row unchanged: the idempotent path);
- memory: RSS sampled every 5 ms during the first import, ru_maxrss, and (a separate, slower run)
  the tracemalloc peak of Python allocations;
- where the time goes without a profiler: reading only, reading + parsing rows (no database), and
  one import and re-import with each step and SQL statement timed (the breakdown);
- `manage.py import_items` in a subprocess, once (startup included, and reported apart);
- with --profile, cProfile of a first import and a re-import (bench/results/import_items.profile.txt).

Every campaign made here is deleted afterwards, and leftovers of an interrupted run at the start.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import re
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
    group.add_argument("--only-e2e", action="store_true", help="only the end-to-end API imports")
    add_e2e_arguments(group)


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


def _wal_insert_lsn(connection) -> int | None:
    """WAL insert position as a byte count, read on the raw connection (no Django wrappers)."""
    raw = connection.connection
    if raw is None or getattr(raw.info, "transaction_status", 0) == 3:  # 3: INERROR
        return None
    return raw.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint").fetchone()[0]


def _wal_lsn() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return cursor.fetchone()[0]


def _wal_bytes_since(lsn: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint", [lsn])
        return cursor.fetchone()[0]


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


_CALIBRATION_DOC = {
    "prompt": "How do I " * 40,
    "response_a": "Some words. " * 40,
    "metadata": {"tags": list(range(20))},
}


def calibrate() -> float:
    """Seconds for a fixed pure-Python workload (JSON round trips and hashing), best of three.

    Timed before each import: on a shared or virtual machine the CPU's speed drifts, and a round
    whose calibration is slower than the others' ran on a slower machine, busy or not.
    """
    import hashlib

    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(6000):
            text = json.dumps({**_CALIBRATION_DOC, "id": i}, sort_keys=True)
            hashlib.sha256(text.encode()).hexdigest()
            json.loads(text)
        best = min(best, time.perf_counter() - t0)
    return round(best, 4)


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
    calibration = calibrate()
    load = os.getloadavg()[0]
    server0 = _backend_cpu_seconds()
    wal0 = _wal_lsn()
    with RssSampler() as rss, GcTimer() as gc_timer, open(path, "rb") as stream:
        busy0, cpu0, t0 = _machine_busy_seconds(), time.process_time(), time.perf_counter()
        report = items_import(campaign=campaign, stream=stream, filename=str(path))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        busy = _machine_busy_seconds() - busy0
    server1 = _backend_cpu_seconds()
    wal = _wal_bytes_since(wal0)
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
        "wal_mb": _mb(wal),
        "loadavg_1min_before": round(load, 2),
        "busy_cores_before": busy_before,
        "cpu_calibration_s": calibration,
        "rss_before_mb": _mb(rss.before),
        "rss_peak_mb": _mb(rss.peak),
        "rss_growth_mb": _mb(rss.peak - rss.before),
        "report": {k: v for k, v in report.as_dict().items() if k != "conflict_rows"},
    }


# Functions of the import timed one by one in the breakdown run: (module, name or Class.method, label),
# by the name items.py calls them by. Update this when the import is restructured; a name that no
# longer exists is skipped and listed under `missing`.
SPANS = (
    ("annotate.services.imports.items", "item_row_parse", "parse"),
    ("annotate.services.imports.items", "_CopySink.add", "copy_format"),
    ("annotate.services.imports.items", "_CopySink.__exit__", "copy_finish"),
    ("annotate.services.imports.items", "_BulkSink._send", "bulk_insert"),
    ("annotate.services.imports.items", "_record_conflicts", "conflicts"),
    ("annotate.services.imports.items", "route_new_items", "route"),
)
_ABSENT = object()
_TABLE = re.compile(r'"?((?:annotate|routing|auth)_\w+)"?')


class Spans:
    """Time the SPANS functions, the connection's commit and every SQL statement while a block runs.

    Statements are grouped by their first word and first table ("UPDATE annotate_item"). Time is
    counted once: a span or statement inside another span belongs to the outer one, and `rest` is
    what no span and no statement covers (reading the file, the per-row loop).
    """

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.sql: dict[str, dict] = {}
        self.outer = 0.0  # seconds in spans and statements not nested in a span
        self.missing: list[str] = []
        self._depth = 0
        self._restore: list = []
        self._stack = contextlib.ExitStack()

    def _timed(self, label: str, call):
        t0 = time.perf_counter()
        self._depth += 1
        try:
            return call()
        finally:
            self._depth -= 1
            took = time.perf_counter() - t0
            self.seconds[label] = self.seconds.get(label, 0.0) + took
            self.calls[label] = self.calls.get(label, 0) + 1
            if self._depth == 0:
                self.outer += took

    def _wrap(self, label: str, func):
        def timed(*args, **kwargs):
            return self._timed(label, lambda: func(*args, **kwargs))

        return timed

    def _sql(self, execute, sql, params, many, context):
        table = _TABLE.search(sql)
        label = f"{sql.split(None, 1)[0].upper()} {table.group(1) if table else ''}".strip()
        wal0 = _wal_insert_lsn(context["connection"])
        t0 = time.perf_counter()
        try:
            return self._timed("sql", lambda: execute(sql, params, many, context))
        finally:
            took = time.perf_counter() - t0
            entry = self.sql.setdefault(label, {"s": 0.0, "n": 0, "wal": 0})
            entry["s"] += took
            entry["n"] += 1
            if wal0 is not None:
                entry["wal"] += _wal_insert_lsn(context["connection"]) - wal0

    def __enter__(self):
        import importlib

        from django.db import connections

        for module_name, dotted, label in SPANS:
            target = importlib.import_module(module_name)
            *owners, attr = dotted.split(".")
            for owner in owners:
                target = getattr(target, owner, None)
            if target is None or not hasattr(target, attr):
                self.missing.append(f"{module_name}.{dotted}")
                continue
            own = vars(target).get(attr, _ABSENT)  # a method as defined on its class, not bound
            original = getattr(target, attr) if own is _ABSENT or not isinstance(target, type) else own
            setattr(target, attr, self._wrap(label, original))
            self._restore.append((target, attr, own))
        conn = connections["default"]
        conn.commit = self._wrap("commit", conn.commit)  # instance attribute: what Atomic.__exit__ calls
        self._restore.append((conn, "commit", _ABSENT))
        self._stack.enter_context(conn.execute_wrapper(self._sql))
        return self

    def __exit__(self, *exc):
        self._stack.close()
        for target, attr, own in reversed(self._restore):
            if own is _ABSENT:
                delattr(target, attr)
            else:
                setattr(target, attr, own)


def breakdown_import(campaign, path: Path) -> dict:
    from django.db import connection

    from annotate.services.imports import items_import

    connection.ensure_connection()
    wal0 = _wal_insert_lsn(connection)
    with Spans() as spans, open(path, "rb") as stream:
        t0 = time.perf_counter()
        report = items_import(campaign=campaign, stream=stream, filename=str(path))
        wall = time.perf_counter() - t0
    wal = _wal_insert_lsn(connection) - wal0
    out = {"wall_s": round(wall, 3)}
    out["spans_s"] = {k: round(v, 3) for k, v in spans.seconds.items()}
    out["rest_s"] = round(wall - spans.outer, 3)
    out["sql"] = {
        k: {"s": round(v["s"], 3), "n": v["n"], "wal_mb": _mb(v["wal"])} for k, v in sorted(spans.sql.items())
    }
    out["wal_mb"] = _mb(wal)
    out["wal_mb_outside_sql"] = _mb(wal - sum(v["wal"] for v in spans.sql.values()))
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
    """Start every round from the same state: no dead rows of the last one (VACUUM also hands the
    emptied pages back, so the next COPY extends the table as a first import would), fresh
    statistics, and a checkpoint just done, so no WAL-triggered checkpoint lands in the middle of
    one round and not another (a 100,000-row import writes 200-300 MB of WAL; max_wal_size is 1 GB
    by default)."""
    from django.db import DatabaseError, connection

    from annotate.models import Item

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Item._meta.db_table}")
        for relation in Item._meta.related_objects:
            if not relation.many_to_many and relation.field.concrete:
                cursor.execute(f"VACUUM ANALYZE {relation.related_model._meta.db_table}")
        try:
            cursor.execute("CHECKPOINT")  # superuser or pg_checkpoint
        except DatabaseError:
            pass


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
    return {"items": count, "row_data_mb": _mb(size)}


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
    """Peak of Python allocations during a first import and a re-import (slow: not a timing).

    The first import shows whether memory follows the file (it must not: streaming); the
    re-import, into a campaign that already holds every row, whether it follows the campaign.
    """
    from annotate.services.imports import items_import

    campaign = new_campaign("tracemalloc")
    out = {}
    try:
        for label, created in (("first_import", rows), ("reimport", 0)):
            tracemalloc.start()
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            t0 = time.perf_counter()
            with open(path, "rb") as stream:
                report = items_import(campaign=campaign, stream=stream, filename=str(path))
            wall = time.perf_counter() - t0
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            _check(report.as_dict(), rows, created=created, unchanged=rows - created, what=f"tracemalloc {label}")
            out[label] = {
                "peak_mb": _mb(peak - base),
                "retained_after_mb": _mb(current - base),
                "peak_bytes_per_row": round((peak - base) / rows),
                "wall_s_with_tracemalloc": round(wall, 3),
            }
        return out
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
    if args.only_e2e:
        try:
            measurements["end_to_end"] = e2e_run(args, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return {"parameters": parameters, "measurements": measurements, "summary": _e2e_summary(measurements)}
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
                "note": "one more import and re-import with each step timed (wall s): spans_s per function "
                "(SPANS) plus sql (all statements) and commit; a nested span is also counted in its parent; "
                "rest_s is what none covers (reading the file, the per-row loop); sql lists statements by kind "
                "and table with the WAL each wrote; wal_mb_outside_sql is mostly the COPY (cluster-wide WAL)",
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
        if not args.skip_e2e:
            measurements["end_to_end"] = e2e_run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    median = statistics.median(firsts)
    target_applies = rows == FULL_ROWS
    if target_applies:
        measurements["target_met"] = median < TARGET_SECONDS
    summary = (
        f"{rows:,} rows ({data['mb']:.1f} MB) imported in {median:.2f} s median of {repeat}, "
        f"best {min(firsts):.2f} s ({rows / median:,.0f} rows/s, {data['bytes'] / MB / median:.1f} MB/s median); "
        f"re-import {statistics.median(agains):.2f} s; "
        f"RSS +{max(r['first_import']['rss_growth_mb'] for r in rounds):.0f} MB"
    )
    if "tracemalloc" in measurements:
        peaks = measurements["tracemalloc"]
        summary += (
            f", tracemalloc peak {peaks['first_import']['peak_mb']:.0f} MB"
            f" (re-import {peaks['reimport']['peak_mb']:.0f} MB)"
        )
    if "command" in measurements:
        summary += f"; manage.py {measurements['command']['wall_s']:.2f} s"
    busiest = max(r[k]["other_cpu_s"] / r[k]["wall_s"] for r in rounds for k in ("first_import", "reimport"))
    measurements["busiest_other_cores"] = round(busiest, 2)
    if busiest > BUSY_CORES:
        summary += f" (BUSY MACHINE: other processes used up to {busiest:.1f} cores during a timed run)"
    if target_applies:
        summary += f" [target < {TARGET_SECONDS:g} s: {'met' if measurements['target_met'] else 'MISSED'}]"
    if "end_to_end" in measurements:
        summary += "; " + _e2e_summary(measurements)
    return {"parameters": parameters, "measurements": measurements, "summary": summary}


# --- End to end through the API, as the Procfile runs the server ------------------------------------
# POST /api/campaigns/<ref>/items/import/ (no ?async: the request waits for the worker's job) against
# gunicorn and a Celery worker started from the Procfile (bench/load_annotators.py's helpers), on the
# PostgreSQL database of this run and on a fresh embedded SQLite under a temporary var dir.

E2E_ROWS = (10_000, 50_000)
E2E_WARMUPS = 4  # uploads before the timed ones, so each of the 2 gunicorn workers has likely served one
E2E_WARMUP_ROWS = 200
GB = 1_000_000_000
_E2E_SETUP = """
import json, secrets
from django.contrib.auth import get_user_model
from annotate.services.campaigns import campaign_create
from annotate.models.tokens import api_token_create
user, _ = get_user_model().objects.get_or_create(username="bench-import-e2e", defaults={"is_superuser": True})
user.is_superuser = user.is_staff = True
user.save()
slugs = [campaign_create(name=f"bench import e2e {n}", slug=f"{prefix}-{n}-{secrets.token_hex(3)}", kind="pairwise",
         preset="simple-pairwise").slug for n in names]
print("E2E", json.dumps({"slugs": slugs, "token": api_token_create(user=user, name="bench").key}))
"""


def add_e2e_arguments(group) -> None:
    group.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end API imports")
    group.add_argument("--skip-1gb", action="store_true", help="skip the 1 GB file's memory run")
    group.add_argument("--e2e-databases", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite")
    group.add_argument("--e2e-port", type=int, default=None, help="gunicorn's port (default: a free one)")


class _FamilyRss:
    """Peak RSS of each process of gunicorn's and the worker's process trees, sampled every 20 ms."""

    def __init__(self, roots: dict[str, int]):
        self.roots = roots
        self.peak: dict[str, float] = {name: 0.0 for name in roots}
        self.before: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> dict[str, float]:
        from bench.load_annotators import _family, _memory_mb

        out = {}
        for name, pid in self.roots.items():
            out[name] = max((_memory_mb(p).get("VmRSS", 0.0) for p in _family(pid)), default=0.0)
        return out

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            for name, mb in self._sample().items():
                self.peak[name] = max(self.peak[name], mb)

    def __enter__(self):
        self.before = self._sample()
        self.peak = dict(self.before)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _post_file(port: int, slug: str, token: str, path: Path) -> tuple[int, dict, float]:
    """Stream a multipart upload from disk (never in this process's memory); (status, body, wall s)."""
    import http.client

    boundary = "tandem-bench-" + os.urandom(8).hex()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/x-ndjson\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    conn.putrequest("POST", f"/api/campaigns/{slug}/items/import/")
    conn.putheader("Authorization", f"Token {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            conn.send(chunk)
    conn.send(tail)
    sent = time.perf_counter() - t0
    response = conn.getresponse()
    body = json.loads(response.read() or b"{}")
    body["_upload_s"] = sent
    return response.status, body, time.perf_counter() - t0


def _e2e_env(database: str, var_dir: Path) -> dict:
    from bench.load_annotators import _server_env

    if database == "postgresql":
        env = _server_env(f"bench-import-{os.getpid()}", str(var_dir))
    else:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
        env.update({"DEBUG": "0", "TANDEM_VAR_DIR": str(var_dir), "CELERY_TASK_DEFAULT_QUEUE": "celery"})
    env["TANDEM_UPLOAD_DIR"] = str(var_dir / "uploads")
    return env


def _manage(env: dict, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(argv[:2])} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def e2e_database(database: str, *, data: dict[int, Path], big: Path | None, port: int | None = None) -> dict:
    """Every end-to-end figure on one database: 10k and 50k first imports, a 50k re-import, the 1 GB run."""
    from bench.datagen import write_pairwise_jsonl
    from bench.load_annotators import (
        _cpu_s,
        _family,
        _gunicorn,
        _loadavg,
        _start,
        _stop,
        _wait_log,
        procfile_command,
    )

    var_dir = Path(tempfile.mkdtemp(prefix=f"tandem-bench-e2e-{database}-"))
    env = _e2e_env(database, var_dir)
    out: dict = {"database": database}
    processes = []
    try:
        if database == "sqlite":
            _manage(env, "migrate", "-v0")
        warmups = [f"warmup-{i}" for i in range(E2E_WARMUPS)]
        names = [*warmups, *(str(n) for n in data), *(["1gb"] if big else [])]
        code = _E2E_SETUP.replace("names", repr(names)).replace("prefix", repr(f"{SLUG_PREFIX}-e2e"))
        setup = json.loads(_manage(env, "shell", "-c", code).split("E2E", 1)[1])
        slugs, token = dict(zip(names, setup["slugs"], strict=True)), setup["token"]
        worker_log, web_log = var_dir / "worker.log", var_dir / "web.log"
        worker = _start(procfile_command("worker", {}), env, worker_log)
        processes.append(worker)
        gunicorn, port, _ = _gunicorn(workers=2, keep_alive=75, env=env, log=web_log, port=port)
        processes.append(gunicorn)
        _wait_log("ready.", worker, worker_log)
        # A server that has been up a while: every gunicorn worker and the Celery worker have
        # served an import (connections open, code paths loaded) before the first timed one.
        warmup_file = var_dir / "warmup.jsonl"
        write_pairwise_jsonl(warmup_file, E2E_WARMUP_ROWS, 7, CHAT_FRACTION)
        for name in warmups:
            status, body, _ = _post_file(port, slugs[name], token, warmup_file)
            if status != 201:
                raise RuntimeError(f"{database} warm-up import: HTTP {status}: {str(body)[:500]}")
        runs = [(f"first_{n // 1000}k", str(n), path) for n, path in data.items()]
        largest = max(data)
        runs.append((f"reimport_{largest // 1000}k", str(largest), data[largest]))
        if big:
            runs.append(("file_1gb", "1gb", big))
        for label, name, path in runs:
            rows = sum(1 for _ in path.open("rb")) if name == "1gb" else int(name)
            cpu0 = {k: sum(_cpu_s(_family(p)).values()) for k, p in (("web", gunicorn.pid), ("worker", worker.pid))}
            with _FamilyRss({"web": gunicorn.pid, "worker": worker.pid}) as rss:
                status, body, wall = _post_file(port, slugs[name], token, path)
            cpu1 = {k: sum(_cpu_s(_family(p)).values()) for k, p in (("web", gunicorn.pid), ("worker", worker.pid))}
            if status not in (200, 201):
                raise RuntimeError(f"{database} {label}: HTTP {status}: {str(body)[:500]}")
            out[label] = {
                "rows": rows,
                "mb": _mb(path.stat().st_size),
                "status": status,
                "created": body.get("created"),
                "unchanged": body.get("unchanged"),
                "wall_s": round(wall, 2),
                "upload_s": round(body["_upload_s"], 2),  # until the last byte was sent; the rest is the import
                "rows_per_s": round(rows / wall),
                # Process CPU (load-independent): the import's cost where the wall clock is not trustworthy.
                "web_cpu_s": round(cpu1["web"] - cpu0["web"], 2),
                "worker_cpu_s": round(cpu1["worker"] - cpu0["worker"], 2),
                "web_peak_rss_mb": rss.peak["web"],
                "worker_peak_rss_mb": rss.peak["worker"],
                "web_rss_growth_mb": round(rss.peak["web"] - rss.before["web"], 1),
                "worker_rss_growth_mb": round(rss.peak["worker"] - rss.before["worker"], 1),
                "loadavg": _loadavg(),
            }
            out[label].update(_job_timing(database, var_dir, slugs[name]))
            print(f"import_items e2e {database} {label}: {out[label]}", file=sys.stderr, flush=True)
    finally:
        _stop(*processes)
        if database == "postgresql":
            from annotate.models import Campaign

            for campaign in Campaign.objects.filter(slug__startswith=f"{SLUG_PREFIX}-e2e"):
                drop_campaign(campaign.pk)
        shutil.rmtree(var_dir, ignore_errors=True)
    return out


def _job_timing(database: str, var_dir: Path, slug: str) -> dict:
    """How long the campaign's latest import job waited for the worker, and how long it ran."""
    sql = (
        "SELECT j.created_at, j.started_at, j.finished_at FROM annotate_job j JOIN annotate_campaign c "
        "ON c.id = j.campaign_id WHERE c.slug = %s AND j.kind = 'import_items' ORDER BY j.id DESC LIMIT 1"
    )
    if database == "postgresql":
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(sql, [slug])
            row = cursor.fetchone()
    else:
        import sqlite3

        from django.utils.dateparse import parse_datetime

        with contextlib.closing(sqlite3.connect(var_dir / "tandem.sqlite3")) as db:
            found = db.execute(sql.replace("%s", "?"), [slug]).fetchone()
        row = found and [parse_datetime(value) if value else None for value in found]
    if not row or not row[1] or not row[2]:
        return {}
    return {
        "job_start_delay_s": round((row[1] - row[0]).total_seconds(), 3),
        "job_run_s": round((row[2] - row[1]).total_seconds(), 2),
    }


def e2e_run(args, workdir: Path) -> dict:
    """The issue's targets, end to end: ≥ 35,000 rows/s on PostgreSQL, ≥ 15,000 on SQLite, memory per process."""
    from bench.datagen import write_pairwise_jsonl

    data = {}
    for n in E2E_ROWS:
        data[n] = workdir / f"e2e-{n}.jsonl"
        write_pairwise_jsonl(data[n], n, args.seed, CHAT_FRACTION)
    big = None
    if not args.skip_1gb:
        big = Path(tempfile.mkdtemp(prefix="tandem-bench-1gb-", dir="/tmp")) / "items-1gb.jsonl"
        rows = GB // (data[E2E_ROWS[-1]].stat().st_size // E2E_ROWS[-1]) + 1
        write_pairwise_jsonl(big, rows, args.seed + 2, CHAT_FRACTION)
    try:
        results = {
            db: e2e_database(db, data=data, big=big, port=args.e2e_port) for db in args.e2e_databases.split(",") if db
        }
    finally:
        if big is not None:
            shutil.rmtree(big.parent, ignore_errors=True)
    return {
        "note": "POST without ?async (the request waits for the worker's job), until the items are visible, after "
        f"{E2E_WARMUPS} warm-up imports of {E2E_WARMUP_ROWS} rows; peak RSS is the largest single process of "
        "gunicorn's tree (web) and of the worker's, sampled every 20 ms",
        "targets": {"postgresql_rows_per_s": 35_000, "sqlite_rows_per_s": 15_000, "web_mb": 150, "worker_mb": 250},
        **results,
    }


def _e2e_summary(measurements: dict) -> str:
    parts = []
    for db, figures in measurements["end_to_end"].items():
        if not isinstance(figures, dict) or "database" not in figures:
            continue
        runs = [f"{k} {v['rows_per_s']:,} rows/s" for k, v in figures.items() if isinstance(v, dict)]
        web = max(v["web_peak_rss_mb"] for v in figures.values() if isinstance(v, dict))
        worker = max(v["worker_peak_rss_mb"] for v in figures.values() if isinstance(v, dict))
        parts.append(f"API {db}: {', '.join(runs)}; peak RSS web {web:.0f} MiB, worker {worker:.0f} MiB")
    return "; ".join(parts)
