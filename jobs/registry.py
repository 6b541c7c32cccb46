"""The job kinds: a handler per kind, and the follow-ups that run after a job of a kind succeeded.

A handler is a plain function `handler(job, progress) -> dict` registered under a kind. It must be
idempotent: the sweeper re-queues a job whose worker died, and the handler then runs again.

A follow-up is `followup(job, result) -> dict | None`, run in the worker after the handler returned and
before the job is marked succeeded; what it returns is merged into the job's result (e.g. the id of a job
it started). Follow-ups chain work across apps without the handlers importing each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annotate.models import Job

Progress = Callable[..., None]
Handler = Callable[["Job", Progress], dict]
Followup = Callable[["Job", dict], "dict | None"]
RUN_TASK = "jobs.run"  # the Celery task that runs a job (`jobs.tasks`)
_HANDLERS: dict[str, Handler] = {}
_FOLLOWUPS: dict[str, list[Followup]] = defaultdict(list)


class JobCancelled(Exception):
    """Raised inside a handler (by `progress`) when the job was cancelled meanwhile."""


class JobInterrupted(Exception):
    """Raised by a handler that stopped at a safe point because its worker is shutting down
    (`jobs.shutdown`): its work so far is stored, and the runner puts the job back in the queue."""


class JobFailed(Exception):
    """A handler's failure with a result worth keeping (e.g. an import's list of bad rows)."""

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        _HANDLERS[kind] = func
        return func

    return register


def job_followup(kind: str) -> Callable[[Followup], Followup]:
    """Register `func` to run after each job of `kind` that succeeds (once per function)."""

    def register(func: Followup) -> Followup:
        if func not in _FOLLOWUPS[kind]:
            _FOLLOWUPS[kind].append(func)
        return func

    return register


def job_kinds() -> list[str]:
    return sorted(_HANDLERS)


def handler_for(kind: str) -> Handler | None:
    return _HANDLERS.get(kind)


def followups_for(kind: str) -> list[Followup]:
    return list(_FOLLOWUPS.get(kind, ()))
