"""Dispatching while the broker is down: the caller never fails, the job stays queued with a note, dispatches
within the next seconds do not even try, and the sweep tries again at once (it is what probes the broker)."""

import pytest
from celery import current_app
from kombu.exceptions import OperationalError

from annotate.models import Job
from jobs import dispatch, runner
from jobs.registry import RUN_TASK
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(monkeypatch):
    """The run task's `apply_async`, down until `broker.up = True`; counts the tries that reached it."""

    class Broker:
        up = False
        tries = 0
        sent: list[int] = []

    def apply_async(args, **kwargs):
        Broker.tries += 1
        if not Broker.up:
            raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
        Broker.sent.append(args[0])

    monkeypatch.setattr(current_app.tasks[RUN_TASK], "apply_async", apply_async)
    monkeypatch.setattr(dispatch, "_down_until", 0.0)
    monkeypatch.setattr(dispatch, "_down_logged", False)
    Broker.sent = []
    return Broker


def test_a_broker_that_is_down_leaves_the_job_queued_with_a_note_and_later_dispatches_do_not_try(broker):
    first, second = JobFactory(state="queued"), JobFactory(state="queued")
    assert dispatch.job_dispatch(first.pk) is False
    assert dispatch.job_dispatch(second.pk) is False
    assert broker.tries == 1  # the second one did not pay another connection timeout
    first.refresh_from_db(), second.refresh_from_db()
    assert first.state == second.state == "queued"
    assert first.error.startswith(dispatch.UNSENT) and "OperationalError" in first.error
    assert second.error.startswith(dispatch.UNSENT) and "moments ago" in second.error


def test_the_sweep_tries_the_broker_again_at_once_and_sends_what_was_not_sent(
    broker, django_capture_on_commit_callbacks
):
    jobs = [JobFactory(state="queued") for _ in range(3)]
    for job in jobs:
        dispatch.job_dispatch(job.pk)
    assert not broker.sent
    broker.up = True  # back within the seconds in which dispatches would not try
    with django_capture_on_commit_callbacks(execute=True):
        summary = runner.jobs_sweep()
    assert set(summary["resent"]) == {job.pk for job in jobs}
    assert sorted(broker.sent) == sorted(job.pk for job in jobs)
    assert all(error == "" for error in Job.objects.filter(pk__in=broker.sent).values_list("error", flat=True))


def test_a_sweep_while_the_broker_is_still_down_tries_once_and_notes_every_job_again(
    broker, django_capture_on_commit_callbacks
):
    jobs = [JobFactory(state="queued") for _ in range(3)]
    for job in jobs:
        dispatch.job_dispatch(job.pk)
    tries = broker.tries
    with django_capture_on_commit_callbacks(execute=True):
        runner.jobs_sweep()
    assert broker.tries == tries + 1
    assert all(job.error.startswith(dispatch.UNSENT) for job in Job.objects.filter(pk__in=[j.pk for j in jobs]))
