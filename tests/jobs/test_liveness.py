"""A job's liveness: the heartbeat thread keeps a blocked handler alive, the sweep says when and why it
re-queued a job, a run that lost its claim cannot finish over the run that took over, and a handler
stopped by a warm shutdown goes back to the queue and resumes."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Job
from jobs import registry, runner, shutdown
from jobs.heartbeat import Heartbeat
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)  # heartbeats are written on their own connection


def test_a_handler_blocked_without_progress_calls_keeps_beating_and_is_not_swept(settings, handlers):
    settings.TANDEM_JOB_HEARTBEAT_SECONDS = 0.2
    seen = {}

    def blocked(job, progress):
        first = Job.objects.get(pk=job.pk).heartbeat_at
        time.sleep(1.5)  # one long statement: no progress call for several stale periods
        seen["beat"] = Job.objects.get(pk=job.pk).heartbeat_at
        seen["sweep"] = runner.jobs_sweep(stale_seconds=1)
        seen["first"] = first
        return {"ok": True}

    handlers("test_blocked", blocked)
    job = runner.job_run(job_id=JobFactory(kind="test_blocked").pk)
    assert job.state == "succeeded" and job.attempts == 1
    assert seen["beat"] - seen["first"] >= timedelta(seconds=1)
    assert job.pk not in seen["sweep"]["requeued"]


def test_the_heartbeat_stops_once_the_run_no_longer_holds_the_job():
    job = JobFactory(kind="test_none", state="running", worker="host pid 1 run a")
    beat = Heartbeat(job.pk, claim="host pid 1 run a", interval=0.05)
    with beat:
        time.sleep(0.3)
        assert beat.beats >= 2
        Job.objects.filter(pk=job.pk).update(worker="host pid 2 run b", heartbeat_at=None)
        time.sleep(0.3)
    assert Job.objects.get(pk=job.pk).heartbeat_at is None  # the other run's row was left alone


def test_the_sweep_says_when_the_worker_was_lost_and_the_finished_job_keeps_it(settings, handlers, eager_celery):
    settings.TANDEM_JOB_MAX_ATTEMPTS = 4
    handlers("test_ok", lambda job, progress: {"ok": True})
    lost_at = timezone.now() - timedelta(seconds=25)
    job = JobFactory(kind="test_ok", state="running", heartbeat_at=lost_at, attempts=1, worker="w1 pid 7 run x")
    alive = JobFactory(kind="test_ok", state="running", heartbeat_at=timezone.now() - timedelta(seconds=5))
    # Worker lost 25 s ago: found by the default 20 s limit, not a 2-minute one.
    assert settings.TANDEM_JOB_STALE_SECONDS == 20
    summary = runner.jobs_sweep()
    assert summary["lost_workers"] == [job.pk] and alive.pk not in summary["requeued"]
    job.refresh_from_db()
    assert job.state == "succeeded" and job.attempts == 2 and job.error == ""
    (note,) = job.result["requeued"]
    assert note.startswith(f"worker lost at {lost_at:%Y-%m-%d %H:%M:%S} UTC (w1 pid 7 run x")
    assert note.endswith("re-queued (attempt 2 of 4)")


def test_a_run_that_lost_its_claim_cannot_finish_over_the_run_that_took_over(handlers):
    def frozen_then_back(job, progress):
        if job.attempts == 1:
            # This worker froze: its heartbeat went stale, the sweep re-queued the job, another run took it.
            Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
            assert runner.jobs_sweep(stale_seconds=60)["lost_workers"] == [job.pk]
            assert runner.job_run(job_id=job.pk).state == "succeeded"
            return {"by": "the frozen run"}
        return {"by": "the run that took over"}

    handlers("test_frozen", frozen_then_back)
    job = runner.job_run(job_id=JobFactory(kind="test_frozen").pk)
    assert job.state == "succeeded" and job.result["by"] == "the run that took over" and job.attempts == 2


def test_a_handler_stopped_by_a_warm_shutdown_is_requeued_and_resumes(handlers, eager_celery):
    def resumable(job, progress):
        if job.attempts == 1:
            raise registry.JobInterrupted("the worker is shutting down: 3 of 5 done")
        return {"done": 5}

    handlers("test_resumable", resumable)
    job = runner.job_run(job_id=JobFactory(kind="test_resumable").pk)
    # Re-queued and dispatched on commit; the eager "broker" ran it again at once.
    assert job.state == "succeeded" and job.attempts == 2 and job.result["done"] == 5
    (note,) = job.result["requeued"]
    assert "the worker is shutting down: 3 of 5 done" in note and note.endswith("re-queued to resume")


def test_a_stop_request_reaches_callbacks_once_and_sigterm_asks_for_it():
    import os
    import signal

    calls = []
    old = signal.getsignal(signal.SIGTERM)
    unregister = shutdown.on_stop(lambda: calls.append(threading.current_thread().name))
    try:
        shutdown.stop_on_sigterm()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert shutdown.stopping() and len(calls) == 1
        shutdown.stop_request("again")
        assert len(calls) == 1
    finally:
        unregister()
        shutdown.stop_reset()
        signal.signal(signal.SIGTERM, old)
    assert not shutdown.stopping()


def test_on_sqlite_a_handler_holding_the_write_lock_is_not_taken_for_lost(settings, handlers, tmp_path):
    """An import holds SQLite's one write lock for its whole transaction, so the row's heartbeat cannot be
    written meanwhile; the beat file carries it and the sweep that waited for the lock leaves the job be."""
    from django.db import connection, transaction

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL writes the heartbeat row while another transaction writes other rows")
    settings.TANDEM_JOB_HEARTBEAT_SECONDS = 0.2
    settings.VAR_DIR = tmp_path
    other = JobFactory(kind="test_other")
    swept = {}

    def sweep_later():
        swept.update(runner.jobs_sweep(stale_seconds=1))

    def holding(job, progress):
        with transaction.atomic():
            Job.objects.filter(pk=other.pk).update(error="written by the handler")
            time.sleep(1.3)  # the row's heartbeat is older than the stale limit from here on
            sweeper = threading.Thread(target=sweep_later)
            sweeper.start()  # it waits for the write lock, then looks at the heartbeats
            time.sleep(0.5)
        sweeper.join(timeout=30)
        return {"ok": True}

    handlers("test_holding", holding)
    job = runner.job_run(job_id=JobFactory(kind="test_holding").pk)
    assert swept, "the sweep ran"
    assert job.pk not in swept["requeued"]
    assert job.state == "succeeded" and job.attempts == 1
    assert not (tmp_path / "job-heartbeats" / str(job.pk)).exists()  # removed with the run
