"""A running job's heartbeat, written by a thread of its own every few seconds while the handler runs.

The sweep takes a job whose heartbeat is older than TANDEM_JOB_STALE_SECONDS for one whose worker died.
Progress calls alone cannot carry that promise: a handler blocked in one long statement (a COPY, a big
aggregate, a slow endpoint) calls nothing for minutes, so a short stale limit would re-queue live work and
a long one shows dead work as running. The thread beats whatever the handler does, on its own database
connection in autocommit, and stops when the job is no longer running (finished, cancelled, re-queued).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from annotate.models import Job

log = logging.getLogger(__name__)


class Heartbeat:
    """`with Heartbeat(job_id, claim=...): handler(...)` keeps the job's `heartbeat_at` fresh until the block
    ends, for as long as the row is still this run's claim (`Job.worker`)."""

    def __init__(self, job_id: int, *, claim: str, interval: float | None = None):
        self.job_id = job_id
        self.claim = claim
        self.interval = interval if interval is not None else settings.TANDEM_JOB_HEARTBEAT_SECONDS
        self.beats = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        # Inside the caller's open transaction (a test, a command's --sync) the job row is not visible
        # to another connection yet, and on SQLite the thread would only wait on the caller's write lock.
        if self.interval > 0 and not connection.in_atomic_block:
            self._thread = threading.Thread(target=self._run, name=f"job-{self.job_id}-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 10)

    def _run(self) -> None:
        try:
            while not self._done.wait(self.interval):
                if not self._beat():
                    return
        finally:
            connection.close()  # this thread's own connection

    def _beat(self) -> bool:
        """One beat; False once the job is no longer running here (nothing left to keep alive)."""
        try:
            written = Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING, worker=self.claim).update(
                heartbeat_at=timezone.now()
            )
        except DatabaseError as exc:
            # A busy database must not stop the beats: the next one may get through before the job looks dead.
            log.warning("job %s: heartbeat not written (%s)", self.job_id, exc)
            connection.close()
            return True
        self.beats += 1
        return bool(written)
