"""The job runner: create a job and dispatch it to a Celery worker, run it there, wait for it, cancel it,
and sweep the jobs whose worker or message was lost (the job row is the truth)."""

from __future__ import annotations

import logging
import socket
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from annotate.models import Job
from jobs.registry import RUN_TASK, JobCancelled, JobFailed, followups_for, handler_for, job_kinds

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
    if dispatch:
        _dispatch_on_commit(job.pk, countdown=countdown)
    return job


def _dispatch_on_commit(job_id: int, countdown: float = 0) -> None:
    # By name: `jobs.tasks` imports this module (JobsConfig.ready registers the task in every process).
    task = current_app.tasks[RUN_TASK]
    transaction.on_commit(lambda: task.apply_async((job_id,), countdown=countdown or None))


def job_run(*, job_id: int) -> Job | None:
    """Claim a queued job and run its handler. Running a job that is not queued does nothing."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
            state=Job.State.RUNNING,
            started_at=now,
            heartbeat_at=now,
            worker=f"{socket.gethostname()}",
            error="",
        )
    job = Job.objects.filter(pk=job_id).first()
    if not claimed or job is None:
        return job
    Job.objects.filter(pk=job_id).update(attempts=job.attempts + 1)
    handler = handler_for(job.kind)
    progress = _ProgressWriter(job_id)
    try:
        if handler is None:
            raise JobFailed(f"no handler for job kind {job.kind!r} in this worker")
        result = _followed_up(job, handler(job, progress) or {})
    except JobCancelled:
        return Job.objects.get(pk=job_id)
    except JobFailed as exc:
        _finish(job_id, Job.State.FAILED, error=str(exc), result=exc.result)
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, job.kind)
        _finish(job_id, Job.State.FAILED, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
    else:
        _finish(job_id, Job.State.SUCCEEDED, result=result)
    finally:
        progress.close()
    return Job.objects.get(pk=job_id)


def _followed_up(job: Job, result: dict) -> dict:
    """The result with what each follow-up of the job's kind added. A follow-up that fails is logged and named
    in `followup_errors`: the job's own work is done and stays done."""
    for followup in followups_for(job.kind):
        try:
            result = {**result, **(followup(job, result) or {})}
        except JobCancelled:
            raise
        except Exception as exc:
            log.exception("job %s (%s): follow-up %s failed", job.pk, job.kind, followup.__qualname__)
            errors = [*result.get("followup_errors", []), f"{followup.__qualname__}: {type(exc).__name__}: {exc}"]
            result = {**result, "followup_errors": errors}
    return result


def _finish(job_id: int, state: str, *, error: str = "", result: dict | None = None) -> None:
    # Only a job still running may finish: a cancel that came first wins.
    Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(
        state=state, error=error, result=result, finished_at=timezone.now(), heartbeat_at=timezone.now()
    )


class _ProgressWriter:
    """Writes a job's progress and heartbeat; raises JobCancelled once the job was cancelled.

    On PostgreSQL it writes from a thread of its own, on its own connection, in autocommit: the
    progress is visible while the handler's transaction is still open (an import is one
    transaction), and it never interrupts a COPY running on the handler's connection. SQLite has one
    writer at a time, so there it writes on the handler's connection.
    """

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.executor = ThreadPoolExecutor(max_workers=1) if connection.vendor == "postgresql" else None

    def _write(self, fields: dict) -> int:
        return Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING).update(**fields)

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


def jobs_sweep(*, stale_seconds: int | None = None) -> dict:
    """Re-queue jobs whose worker was lost (no heartbeat) and jobs whose message was lost.

    The embedded broker can drop a task when a worker is killed; the job row is the truth.
    """
    stale = timedelta(seconds=stale_seconds if stale_seconds is not None else settings.TANDEM_JOB_STALE_SECONDS)
    cutoff = timezone.now() - stale
    requeued, failed = [], []
    with transaction.atomic():
        lost = list(
            Job.objects.select_for_update(skip_locked=True).filter(
                Q(state=Job.State.RUNNING, heartbeat_at__lt=cutoff) | Q(state=Job.State.QUEUED, queued_at__lt=cutoff)
            )
        )
        for job in lost:
            if job.attempts >= settings.TANDEM_JOB_MAX_ATTEMPTS:
                job.state = Job.State.FAILED
                job.error = f"gave up after {job.attempts} attempts: the worker running it was lost each time"
                job.finished_at = timezone.now()
                job.save(update_fields=["state", "error", "finished_at"])
                failed.append(job.pk)
                continue
            job.state = Job.State.QUEUED
            job.queued_at = timezone.now()
            job.save(update_fields=["state", "queued_at"])
            _dispatch_on_commit(job.pk)
            requeued.append(job.pk)
    if requeued or failed:
        log.warning("jobs sweep: re-queued %s, failed %s", requeued, failed)
    return {"requeued": requeued, "failed": failed}
