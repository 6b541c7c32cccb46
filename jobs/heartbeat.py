"""A running job's heartbeat, written by a thread of its own every few seconds while the handler runs.

The sweep takes a job whose heartbeat is older than TANDEM_JOB_STALE_SECONDS for one whose worker died.
Progress calls alone cannot carry that promise: a handler blocked in one long statement (a COPY, a big
aggregate, a slow endpoint) calls nothing for minutes, so a short stale limit would re-queue live work and
a long one shows dead work as running. The thread beats whatever the handler does, on its own database
connection in autocommit, and stops when the job is no longer running (finished, cancelled, re-queued).

On SQLite a handler's transaction (an import) holds the one write lock for as long as it runs, so the row
cannot be written meanwhile: there the thread also touches a file per job under TANDEM_VAR_DIR, which the
sweep reads before it takes a job for lost (the embedded default runs on one host, so a file is enough).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from annotate.models import Job

log = logging.getLogger(__name__)
BEAT_DIR = "job-heartbeats"
SQLITE_BUSY_MS = 500  # the beat thread's own wait for SQLite's write lock: the file carries the beat meanwhile


def _beat_file(job_id: int) -> Path | None:
    if connection.vendor != "sqlite":
        return None
    return Path(settings.VAR_DIR) / BEAT_DIR / str(job_id)


def beat_file_fresh(job_id: int, *, stale_seconds: float) -> bool:
    """True when a run of the job on this host touched its beat file within `stale_seconds` (SQLite only)."""
    path = _beat_file(job_id)
    if path is None:
        return False
    try:
        return time.time() - path.stat().st_mtime < stale_seconds
    except OSError:
        return False


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
            path = _beat_file(self.job_id)
            if path is not None:
                path.unlink(missing_ok=True)

    def _run(self) -> None:
        path = _beat_file(self.job_id)
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            while not self._done.wait(self.interval):
                if path is not None:
                    path.touch()
                if not self._beat(quiet=path is not None):
                    return
        finally:
            connection.close()  # this thread's own connection

    def _beat(self, *, quiet: bool = False) -> bool:
        """One beat; False once the job is no longer running here (nothing left to keep alive)."""
        try:
            if quiet:  # this thread's connection (it may be a new one): do not wait 30 s on the write lock
                with connection.cursor() as cursor:
                    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
            written = Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING, worker=self.claim).update(
                heartbeat_at=timezone.now()
            )
        except DatabaseError as exc:
            # A busy database must not stop the beats: the next one may get through before the job looks dead.
            # With a beat file (SQLite) a locked row is expected while the handler writes: not worth a warning.
            log.log(logging.DEBUG if quiet else logging.WARNING, "job %s: heartbeat not written (%s)", self.job_id, exc)
            connection.close()
            return True
        self.beats += 1
        return bool(written)
