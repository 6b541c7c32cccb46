"""Sending a job's message to the broker, where a broker that is down never fails the caller.

A job is dispatched after the transaction that wrote its row commits, and that transaction is often an
annotator's submit (statistics, routing). A broker that is down or unreachable must not turn a stored
label into an error page: the row stays queued with a note saying why, the failure is logged once per
outage, and for a few seconds later dispatches do not even try (each try would cost the request a
connection timeout). The sweep sends every such job again as soon as it can reach the broker.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from celery import current_app
from django.db import DatabaseError, transaction
from django.utils import timezone
from kombu.exceptions import KombuError, OperationalError

from annotate.models import Job
from jobs.registry import RUN_TASK

log = logging.getLogger(__name__)
UNSENT = "not sent to a worker: "  # how a queued job's error starts when its message never reached the broker
BROKER_ERRORS = (OperationalError, KombuError, OSError)
RETRY_POLICY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.1, "interval_max": 0.1}
_state = threading.Lock()
_down_until = 0.0
_down_logged = False


def job_dispatch_on_commit(job_id: int, countdown: float = 0) -> None:
    transaction.on_commit(lambda: job_dispatch(job_id, countdown=countdown))


def _broker_errors() -> tuple[type[BaseException], ...]:
    """BROKER_ERRORS, and redis's errors once redis is loaded (by the production broker's transport). Not
    imported here: redis is no requirement of the embedded broker, and it costs ~20 MiB in every process."""
    redis_exceptions = sys.modules.get("redis.exceptions")
    return BROKER_ERRORS + (redis_exceptions.RedisError,) if redis_exceptions else BROKER_ERRORS


def job_dispatch(job_id: int, countdown: float = 0) -> bool:
    """Send the job's message now; False (and the job left queued with a note) when the broker is down."""
    global _down_until, _down_logged
    if time.monotonic() < _down_until:
        _unsent(job_id, "the broker was unreachable moments ago")
        return False
    # By name: `jobs.tasks` imports the runner, which imports this module.
    task = current_app.tasks[RUN_TASK]
    try:
        task.apply_async((job_id,), countdown=countdown or None, retry=True, retry_policy=RETRY_POLICY)
    except _broker_errors() as exc:
        with _state:
            _down_until = time.monotonic() + 5
            first, _down_logged = not _down_logged, True
        if first:
            log.error(
                "jobs: the broker is unreachable (%s: %s); jobs stay queued until the sweep resends them",
                type(exc).__name__,
                exc,
            )
        _unsent(job_id, f"the broker was unreachable ({type(exc).__name__}: {str(exc)[:200]})")
        return False
    with _state:
        if _down_logged:
            log.warning("jobs: the broker is reachable again")
        _down_logged = False
    return True


def broker_try_again() -> None:
    """Let the next dispatch try the broker even within the few seconds after it was found down.

    The sweep calls this before it sends its jobs again: it is what probes the broker, so a dispatch that
    short-circuited moments ago must not turn its resend into another note without even trying."""
    global _down_until
    with _state:
        _down_until = 0.0


def _unsent(job_id: int, why: str) -> None:
    note = f"{UNSENT}{why} at {timezone.now():%Y-%m-%d %H:%M:%S} UTC; the sweep sends it again"
    try:
        Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(error=note)
    except DatabaseError:
        log.exception("jobs: could not note that job %s was not sent", job_id)
