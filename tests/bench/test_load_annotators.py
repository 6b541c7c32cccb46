"""bench/load_annotators.py, quick: gunicorn and a beat worker from the Procfile, 8 annotators, the invariants.

Leases of 5 s and few items, so abandoned leases run out within the run, and a quarter of the submits are sent
twice so the retried path is taken. Beat's first sweep comes 30 s after the worker starts, later than this short
run ends: the full run (bench/results/load_annotators.json, `lease_sweeps_run`) is where the sweep is measured.
"""

import argparse
import json

import pytest
from django.db import connection

from bench import load_annotators

QUICK = [
    "--duration", "15", "--load-items", "16", "--load-lease-seconds", "5",
    "--load-abandon", "0.2", "--load-retry", "0.25", "--load-workers", "1",
]  # fmt: skip


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the load benchmark runs against PostgreSQL (SKIP LOCKED leasing, gunicorn on the same database)")


def quick_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    load_annotators.add_arguments(parser)
    args = parser.parse_args(QUICK)
    args.quick = True
    return args


@pytest.mark.postgres
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_quick_load_keeps_every_invariant_without_errors(postgres_only):
    result = load_annotators.run(quick_args())

    assert json.loads(json.dumps(result)) == result  # what run.py writes must be plain JSON
    failed = {name: check for name, check in result["invariants"].items() if not check["ok"]}
    assert not failed, result["summary"]
    assert result["invariants_ok"] and "FAILED" not in result["summary"]
    m = result["measurements"]
    assert m["errors"] == 0, (m["http_errors"], m["connection_errors"], m["error_examples"])
    assert m["error_rate"] == 0
    assert m["gunicorn_log_errors"] == []
    # The paths the invariants are about were taken, so the checks above could have failed.
    invariants = result["invariants"]
    assert m["labels"] > 0 and invariants["overlap_exact"]["finished_items"] > 0
    assert invariants["retried_submit_stored_once"]["retried"] > 0
    assert invariants["acknowledged_labels_stored"]["acknowledged"] >= m["labels"]
    assert invariants["abandoned_never_submitted"]["abandoned"] > 0
    assert m["latency"]["next"]["client_ms"]["n"] > 0 and m["latency"]["submit"]["server_ms"]["p95"] is not None
    assert m["server"]["gunicorn_cpu_s"] > 0 and m["server"]["gunicorn_worker_peak_rss_mb"] > 0
    assert "--keep-alive 75" in result["parameters"]["web_command"]


def test_the_bench_runs_the_procfile_commands():
    web = load_annotators.procfile_command("web", {"TANDEM_BIND": "127.0.0.1:1", "GUNICORN_KEEP_ALIVE": "9"})
    assert web[1:3] == ["-m", "gunicorn"]
    assert web[web.index("--keep-alive") + 1] == "9" and web[web.index("--bind") + 1] == "127.0.0.1:1"
    assert web[web.index("--workers") + 1] == "2"  # the Procfile's default
    default = load_annotators.procfile_command("web", {})
    assert default[default.index("--keep-alive") + 1] == "75"  # above common client idle and retry waits
    with pytest.raises(ValueError, match="no 'nope' process"):
        load_annotators.procfile_command("nope", {})
