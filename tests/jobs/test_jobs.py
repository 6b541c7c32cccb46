"""Jobs: claimed once, progress and cancellation, and the sweeper that re-queues lost work."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Job
from jobs import runner
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # progress is written on its own connection
def test_a_job_runs_once_and_keeps_its_result(handlers):
    calls = []

    def count(job, progress):
        calls.append(job.pk)
        progress(done=1, total=2)
        progress(done=2)
        return {"n": job.params["n"]}

    handlers("test_count", count)
    job = JobFactory(kind="test_count", params={"n": 7})
    finished = runner.job_run(job_id=job.pk)
    assert finished.state == "succeeded" and finished.result == {"n": 7}
    assert (finished.progress_done, finished.progress_total, finished.attempts) == (2, 2, 1)
    # A redelivered message finds the job finished and does nothing.
    runner.job_run(job_id=job.pk)
    assert calls == [job.pk]


def test_a_failing_handler_fails_the_job_with_its_message(handlers):
    def boom(job, progress):
        raise RuntimeError("disk on fire")

    handlers("test_boom", boom)
    job = runner.job_run(job_id=JobFactory(kind="test_boom").pk)
    assert job.state == "failed" and job.error.startswith("RuntimeError: disk on fire")


@pytest.mark.django_db(transaction=True)  # progress is written on its own connection
def test_cancelling_stops_the_handler_at_its_next_progress(handlers):
    def cancel_midway(job, progress):
        progress(done=1, total=3)
        runner.job_cancel(job=job)
        progress(done=2)
        raise AssertionError("not reached")

    handlers("test_cancel", cancel_midway)
    job = runner.job_run(job_id=JobFactory(kind="test_cancel").pk)
    assert job.state == "cancelled" and job.progress_done == 1


def test_unknown_kind_is_refused_at_creation():
    with pytest.raises(ValueError, match="unknown job kind 'nope'"):
        runner.job_create(kind="nope", params={})


def test_sweeper_requeues_lost_jobs_and_gives_up_after_max_attempts(
    settings, handlers, eager_celery, django_capture_on_commit_callbacks
):
    handlers("test_ok", lambda job, progress: {"ok": True})
    settings.TANDEM_JOB_MAX_ATTEMPTS = 3
    old = timezone.now() - timedelta(minutes=10)
    lost = JobFactory(kind="test_ok", state="running", heartbeat_at=old, attempts=1)
    hopeless = JobFactory(kind="test_ok", state="running", heartbeat_at=old, attempts=3)
    alive = JobFactory(kind="test_ok", state="running", heartbeat_at=timezone.now(), attempts=1)
    never_started = JobFactory(kind="test_ok", state="queued")
    Job.objects.filter(pk=never_started.pk).update(queued_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        summary = runner.jobs_sweep(stale_seconds=60)
    assert sorted(summary["requeued"]) == sorted([lost.pk, never_started.pk])
    assert summary["failed"] == [hopeless.pk]
    states = dict(Job.objects.values_list("pk", "state"))
    assert states[lost.pk] == "succeeded" and states[never_started.pk] == "succeeded"
    assert states[hopeless.pk] == "failed" and states[alive.pk] == "running"
    assert "gave up after 3 attempts" in Job.objects.get(pk=hopeless.pk).error
