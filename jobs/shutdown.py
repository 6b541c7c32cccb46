"""A worker's warm shutdown as an event long handlers can see, so they stop at a safe point and resume later.

Celery's warm shutdown (SIGTERM, Ctrl-C once) lets the running task finish; a judge run of thousands of
calls would outlive any stop timeout and then be killed with answers still unstored. Handlers that can
resume (their work is keyed and stored as it goes) check `stopping()`, drain what is in flight, store it
and raise `JobInterrupted`; the runner puts the job back in the queue. Child processes a handler started
(a judge run's shards) are told in turn through `on_stop`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from celery.signals import worker_shutting_down

log = logging.getLogger(__name__)
_stop = threading.Event()
_callbacks: list[Callable[[], None]] = []
_lock = threading.Lock()


def stopping() -> bool:
    return _stop.is_set()


def stop_request(reason: str = "stop requested") -> None:
    """Ask every handler in this process to stop at its next safe point (idempotent)."""
    if _stop.is_set():
        return
    log.warning("jobs: %s; handlers that can resume stop at their next safe point", reason)
    _stop.set()
    with _lock:
        callbacks = list(_callbacks)
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("jobs: a stop callback failed")


def on_stop(callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` when a stop is requested (at once if it already was); returns its unregistration."""
    with _lock:
        _callbacks.append(callback)
    if _stop.is_set():
        callback()

    def unregister() -> None:
        with _lock:
            if callback in _callbacks:
                _callbacks.remove(callback)

    return unregister


def stop_on_sigterm() -> None:
    """For a plain process (a judge run's shard): SIGTERM asks for a stop instead of killing at once."""
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_request("SIGTERM"))


def stop_reset() -> None:
    """Forget a stop (tests; a process that keeps serving after it)."""
    _stop.clear()


@worker_shutting_down.connect
def _worker_shutting_down(sig=None, how=None, exitcode=None, **kwargs) -> None:
    # Sent in the worker's main process: with the solo and threads pools the tasks run there too.
    stop_request(f"worker {how or 'warm'} shutdown ({sig})")
