#!/usr/bin/env python
"""Tandem's benchmarks: `make bench`, or `.venv/bin/python bench/run.py [names...] [--quick]`.

Each benchmark is a module with `run(args) -> dict` (and, optionally, `add_arguments(parser)`),
registered in BENCHMARKS below. `run` returns {"parameters": ..., "measurements": ..., "summary": str};
this script adds the machine and database it ran on and a timestamp, writes the whole to
bench/results/<name>.json and prints the summary line.

Benchmarks run against PostgreSQL: DATABASE_URL if set, otherwise a `tandem_bench` database on the
local server (created when missing), migrated before the first benchmark runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tandem_bench"
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

# name -> module (under bench/) with run(args) -> dict. Add new benchmarks here.
BENCHMARKS: dict[str, str] = {
    "import_items": "bench.import_items",
    "annotate_flow": "bench.annotate_flow",
    "judge_throughput": "bench.judge_throughput",
    "stats_agreement": "bench.stats_agreement",
    "export_dataset": "bench.export_dataset",
    "route_campaign": "bench.route_campaign",
    "campaign_home": "bench.campaign_home",
    "quality_control": "bench.quality_control",
    "load_annotators": "bench.load_annotators",
    "compare_labelstudio": "bench.compare_labelstudio",
}
# Run only when named: they install and start other software (Label Studio), so `make bench` leaves them out.
OPT_IN: set[str] = {"compare_labelstudio"}


def load(name: str):
    return importlib.import_module(BENCHMARKS[name])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all but {', '.join(sorted(OPT_IN))}): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not a measurement")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where <name>.json goes")
    for name in BENCHMARKS:
        module = load(name)
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser.add_argument_group(name))
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}")
    args.names = args.names or [name for name in BENCHMARKS if name not in OPT_IN]
    return args


# --- Database ---------------------------------------------------------------------------------


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def ensure_default_database(url: str) -> None:
    """Create the default benchmark database if it does not exist (CREATE DATABASE needs autocommit)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"bench: created database {name!r}", file=sys.stderr)


def setup_django() -> str:
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = DEFAULT_DATABASE_URL
        ensure_default_database(DEFAULT_DATABASE_URL)
    # DEBUG keeps every query in memory (connection.queries): never measure with it on.
    os.environ["DEBUG"] = "0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "annotate.settings"
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    if connection.vendor != "postgresql":
        raise SystemExit(f"bench: benchmarks need PostgreSQL, DATABASE_URL points to {connection.vendor}")
    call_command("migrate", interactive=False, verbosity=0)
    return os.environ["DATABASE_URL"]


# --- Machine ------------------------------------------------------------------------------------


def _first_line_with(path: str, prefix: str) -> str | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git(*cmd: str) -> str | None:
    try:
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.rstrip("\n") if out.returncode == 0 else None  # not strip(): porcelain starts with " M"


def machine_info(database_url: str) -> dict:
    import django
    import psycopg
    from django.db import connection

    mem = _first_line_with("/proc/meminfo", "MemTotal")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        db_version = cursor.fetchone()[0]
        cursor.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
            [["shared_buffers", "synchronous_commit", "fsync", "wal_level", "max_wal_size", "work_mem"]],
        )
        db_settings = dict(cursor.fetchall())
    status = _git("status", "--porcelain")
    return {
        "cpu_count": os.cpu_count(),
        "cpu_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _first_line_with("/proc/cpuinfo", "model name") or platform.processor() or None,
        "memory_total": mem,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "django": django.get_version(),
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__}, libpq {psycopg.pq.version()})",
        "database": {
            "vendor": connection.vendor,
            "version": db_version,
            "server_version_num": connection.pg_version,
            "url": redact(database_url),
            "settings": db_settings,
        },
        "git": {
            "commit": _git("rev-parse", "HEAD"),
            "dirty": bool(status) if status is not None else None,
            # Uncommitted changes outside bench/: the code measured is not exactly the commit's.
            "modified": None
            if status is None
            else [line[3:] for line in status.splitlines() if not line[3:].startswith("bench/")],
        },
    }


# --- Beside the previous run ----------------------------------------------------------------------


def figures(measurements: object, prefix: str = "") -> dict[str, float]:
    """Every number of a result's measurements, by its dotted path (list entries by index)."""
    out: dict[str, float] = {}
    if isinstance(measurements, dict):
        items = measurements.items()
    elif isinstance(measurements, list):
        items = ((str(i), v) for i, v in enumerate(measurements))
    else:
        if isinstance(measurements, (int, float)) and not isinstance(measurements, bool):
            out[prefix] = measurements
        return out
    for key, value in items:
        out.update(figures(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def beside_previous(previous: dict | None, current: dict) -> list[dict]:
    """Each figure of `current` with the same figure of `previous` (None when it is new) and the change."""
    before = figures((previous or {}).get("measurements", {}))
    rows = []
    for path, value in figures(current.get("measurements", {})).items():
        old = before.get(path)
        change = None if old in (None, 0) else round((value - old) / abs(old) * 100, 1)
        rows.append({"figure": path, "previous": old, "now": value, "change_pct": change})
    return rows


def comparison_text(name: str, previous: dict | None, rows: list[dict], limit: int = 40) -> str:
    if previous is None:
        return f"{name}: no previous result to compare with"
    when = previous.get("timestamp", "?")
    commit = ((previous.get("machine") or {}).get("git") or {}).get("commit") or "?"
    lines = [f"{name}: beside the previous run ({when}, {commit[:10]}{', quick' if previous.get('quick') else ''})"]
    # The figures that moved most first: a benchmark has dozens, the reader wants the changes.
    ordered = sorted(rows, key=lambda r: -abs(r["change_pct"]) if r["change_pct"] is not None else 0)
    width = max((len(r["figure"]) for r in ordered[:limit]), default=0)
    for row in ordered[:limit]:
        old = "new" if row["previous"] is None else f"{row['previous']:g}"
        change = "" if row["change_pct"] is None else f"  ({row['change_pct']:+.1f} %)"
        lines.append(f"  {row['figure']:<{width}}  {old:>12} -> {row['now']:<12g}{change}")
    if len(ordered) > limit:
        lines.append(f"  … {len(ordered) - limit} more figures in the JSON's 'beside_previous'")
    return "\n".join(lines)


def _previous(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --- Main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    database_url = setup_django()
    machine = machine_info(database_url)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in args.names:
        started = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        try:
            result = load(name).run(args)
        except Exception:
            failed += 1
            traceback.print_exc()
            print(f"{name}: FAILED", flush=True)
            continue
        document = {
            "benchmark": name,
            "timestamp": started.isoformat(timespec="seconds"),
            "duration_s": round(time.perf_counter() - t0, 3),
            "quick": args.quick,
            "machine": machine,
            "parameters": result.get("parameters", {}),
            "measurements": result.get("measurements", {}),
            **{k: v for k, v in result.items() if k not in ("parameters", "measurements", "summary")},
        }
        path = args.results_dir / f"{name}.json"
        previous = _previous(path)
        rows = beside_previous(previous, document)
        if previous is not None:
            document["previous"] = {
                "timestamp": previous.get("timestamp"),
                "commit": ((previous.get("machine") or {}).get("git") or {}).get("commit"),
                "quick": previous.get("quick"),
            }
            document["beside_previous"] = rows
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        print(f"{name}: {result.get('summary', '')}  -> {os.path.relpath(path)}", flush=True)
        print(comparison_text(name, previous, rows), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
