"""The job runner: create a job and dispatch it to a Celery worker, run it there, wait for it, cancel it,
and sweep the jobs whose worker or message was lost (the job row is the truth).

A run claims the row with a token of its own (`Job.worker`: host, process, token): its heartbeat, progress
and finish touch the row only while that claim holds, so a run the sweep gave up on — a worker that was
only frozen — cannot overwrite the run that took over.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from annotate.models import Job
from jobs.dispatch import UNSENT, broker_try_again, job_dispatch_on_commit
from jobs.heartbeat import Heartbeat, beat_file_fresh
from jobs.registry import JobCancelled, JobFailed, JobInterrupted, followups_for, handler_for, job_kinds

log = logging.getLogger(__name__)


def job_create(
    *, kind: str, params: dict, campaign=None, created_by=None, dispatch: bool = True, countdown: float = 0
) -> Job:
    """Create a job and dispatch it once the surrounding transaction commits (after `countdown` seconds).

    With `dispatch=False` the caller runs it in-process (`job_run`), e.g. a command's `--sync`.
    """
    if handler_for(kind) is None:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(job_kinds())}")
    job = Job.objects.create(kind=kind, params=params, campaign=campaign, created_by=created_by)
    if countdown:
        # `queued_at` is when the job is due: the sweep does not take a job waiting out its countdown for lost.
        job.queued_at = job.queued_at + timedelta(seconds=countdown)
        Job.objects.filter(pk=job.pk).update(queued_at=job.queued_at)
    if dispatch:
        job_dispatch_on_commit(job.pk, countdown=countdown)
    return job


def _claim_token() -> str:
    return f"{socket.gethostname()} pid {os.getpid()} run {secrets.token_hex(4)}"


def job_run(*, job_id: int) -> Job | None:
    """Claim a queued job and run its handler. Running a job that is not queued does nothing."""
    now = timezone.now()
    claim = _claim_token()
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
            state=Job.State.RUNNING, started_at=now, heartbeat_at=now, worker=claim
        )
    job = Job.objects.filter(pk=job_id).first()
    if not claimed or job is None:
        return job
    Job.objects.filter(pk=job_id).update(attempts=job.attempts + 1)
    job.attempts += 1
    handler = handler_for(job.kind)
    progress = _ProgressWriter(job_id, claim)
    history = _history(job)
    try:
        if handler is None:
            raise JobFailed(f"no handler for job kind {job.kind!r} in this worker")
        with Heartbeat(job_id, claim=claim):
            result = _followed_up(job, handler(job, progress) or {})
    except JobCancelled:
        return Job.objects.get(pk=job_id)
    except JobInterrupted as exc:
        _requeue_interrupted(job, claim, str(exc))
    except JobFailed as exc:
        _finish(job_id, claim, Job.State.FAILED, error=str(exc), result=_with_history(exc.result, history))
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, job.kind)
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
        _finish(job_id, claim, Job.State.FAILED, error=error, result=_with_history(None, history))
    else:
        _finish(job_id, claim, Job.State.SUCCEEDED, result=_with_history(result, history))
    finally:
        progress.close()
    return Job.objects.get(pk=job_id)


def _history(job: Job) -> list[str]:
    """What happened to the job's earlier attempts (lost workers, stops), as the sweep or a stop noted it."""
    notes = list((job.result or {}).get("requeued", [])) if isinstance(job.result, dict) else []
    if job.error and not job.error.startswith(UNSENT) and job.error not in notes:
        notes.append(job.error)
    return notes


def _with_history(result: dict | None, history: list[str]) -> dict | None:
    if not history:
        return result
    return {**(result or {}), "requeued": history}


def _requeue_interrupted(job: Job, claim: str, why: str) -> None:
    """A handler that stopped at a safe point (its worker is stopping) goes back to the queue to resume."""
    note = f"stopped at {_stamp(timezone.now())} ({why or 'the worker is shutting down'}); re-queued to resume"
    with transaction.atomic():
        requeued = Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, worker=claim).update(
            state=Job.State.QUEUED, queued_at=timezone.now(), error=note
        )
        if requeued:
            job_dispatch_on_commit(job.pk)
    log.warning("job %s (%s): %s", job.pk, job.kind, note)


def _stamp(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _followed_up(job: Job, result: dict) -> dict:
    """The result with what each follow-up of the job's kind added. A follow-up that fails is logged and named
    in `followup_errors`: the job's own work is done and stays done."""
    for followup in followups_for(job.kind):
        try:
            result = {**result, **(followup(job, result) or {})}
        except (JobCancelled, JobInterrupted):
            raise
        except Exception as exc:
            log.exception("job %s (%s): follow-up %s failed", job.pk, job.kind, followup.__qualname__)
            errors = [*result.get("followup_errors", []), f"{followup.__qualname__}: {type(exc).__name__}: {exc}"]
            result = {**result, "followup_errors": errors}
    return result


def _finish(job_id: int, claim: str, state: str, *, error: str = "", result: dict | None = None) -> None:
    # Only this run's claim may finish the job: a cancel that came first wins, and so does a re-queue.
    Job.objects.filter(pk=job_id, state=Job.State.RUNNING, worker=claim).update(
        state=state, error=error, result=result, finished_at=timezone.now(), heartbeat_at=timezone.now()
    )


class _ProgressWriter:
    """Writes a job's progress and heartbeat; raises JobCancelled once the job was cancelled.

    On PostgreSQL it writes from a thread of its own, on its own connection, in autocommit: the
    progress is visible while the handler's transaction is still open (an import is one
    transaction), and it never interrupts a COPY running on the handler's connection. SQLite has one
    writer at a time, so there it writes on the handler's connection.
    """

    def __init__(self, job_id: int, claim: str):
        self.job_id = job_id
        self.claim = claim
        self.executor = ThreadPoolExecutor(max_workers=1) if connection.vendor == "postgresql" else None

    def _write(self, fields: dict) -> int:
        return Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING, worker=self.claim).update(**fields)

    def __call__(self, done: int | None = None, total: int | None = None, result: dict | None = None) -> None:
        """Record progress; `result` is a partial result worth showing while the job runs (e.g. cost so far)."""
        fields: dict = {"heartbeat_at": timezone.now()}
        if done is not None:
            fields["progress_done"] = done
        if total is not None:
            fields["progress_total"] = total
        if result is not None:
            fields["result"] = result
        written = self.executor.submit(self._write, fields).result() if self.executor else self._write(fields)
        if not written:
            raise JobCancelled(self.job_id)

    def close(self) -> None:
        if self.executor:
            self.executor.submit(connections.close_all).result()
            self.executor.shutdown()


def job_wait(*, job: Job, timeout: float = 0, poll: float = 0.5, on_progress=None) -> Job:
    """Wait for a job a worker runs to end; TimeoutError after `timeout` seconds (0: no limit; the job keeps
    running). `on_progress(job)` sees each poll."""
    began = time.monotonic()
    while job.state in Job.ACTIVE_STATES:
        if timeout and time.monotonic() - began > timeout:
            raise TimeoutError(f"job {job.pk} still {job.state} after {timeout:.0f} s (it keeps running)")
        time.sleep(poll)
        job.refresh_from_db()
        if on_progress is not None:
            on_progress(job)
    return job


def job_cancel(*, job: Job) -> Job:
    Job.objects.filter(pk=job.pk, state__in=Job.ACTIVE_STATES).update(
        state=Job.State.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def jobs_sweep(*, stale_seconds: int | None = None, redispatch_seconds: int | None = None) -> dict:
    """Re-queue jobs whose worker was lost (no heartbeat for `stale_seconds`), and send again the queued jobs
    whose message never reached the broker or has waited `redispatch_seconds` past its due time (lost).

    The job row is the truth: a broker can drop a message when a worker is killed, and a broker that was
    down never got the message at all. A redundant message is harmless: only a queued job can be claimed.
    """
    now = timezone.now()
    stale = timedelta(seconds=stale_seconds if stale_seconds is not None else settings.TANDEM_JOB_STALE_SECONDS)
    waited = timedelta(
        seconds=redispatch_seconds if redispatch_seconds is not None else settings.TANDEM_JOB_REDISPATCH_SECONDS
    )
    lost_worker = Q(state=Job.State.RUNNING, heartbeat_at__lt=now - stale)
    lost_message = Q(state=Job.State.QUEUED) & (
        Q(queued_at__lt=now - waited) | Q(error__startswith=UNSENT, queued_at__lte=now)
    )
    requeued, resent, failed = [], [], []
    broker_try_again()
    with transaction.atomic():
        for job in Job.objects.select_for_update(skip_locked=True).filter(lost_worker | lost_message):
            if job.state == Job.State.QUEUED:
                Job.objects.filter(pk=job.pk).update(
                    queued_at=now, error="" if job.error.startswith(UNSENT) else job.error
                )
                job_dispatch_on_commit(job.pk)
                resent.append(job.pk)
            elif beat_file_fresh(job.pk, stale_seconds=stale.total_seconds()):
                continue  # SQLite: the run is alive, its handler's transaction held the row's lock
            elif job.attempts >= settings.TANDEM_JOB_MAX_ATTEMPTS:
                Job.objects.filter(pk=job.pk).update(
                    state=Job.State.FAILED,
                    finished_at=now,
                    error=f"gave up after {job.attempts} attempts: the worker running it was lost each time "
                    f"(last heard from {job.worker or 'a worker'} at {_stamp(job.heartbeat_at)})",
                )
                failed.append(job.pk)
            else:
                note = (
                    f"worker lost at {_stamp(job.heartbeat_at)} ({job.worker or 'unknown'}: no heartbeat for "
                    f"{stale.total_seconds():.0f} s), re-queued (attempt {job.attempts + 1} of "
                    f"{settings.TANDEM_JOB_MAX_ATTEMPTS})"
                )
                Job.objects.filter(pk=job.pk).update(state=Job.State.QUEUED, queued_at=now, error=note)
                job_dispatch_on_commit(job.pk)
                requeued.append(job.pk)
    if requeued or failed:
        log.warning("jobs sweep: re-queued %s (worker lost), failed %s", requeued, failed)
    if resent:
        log.info("jobs sweep: sent again %s (message lost or never sent)", resent)
    return {"requeued": [*requeued, *resent], "lost_workers": requeued, "resent": resent, "failed": failed}
