"""/healthz: is the database reachable, is the broker reachable — and which one failed."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from annotate.celery import app as celery_app


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the message says which
        return f"error: {type(exc).__name__}: {exc}"
    return "ok"


def _check_broker() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            # Virtual transports (Redis, SQLAlchemy) connect lazily: ask the broker something real.
            try:
                conn.default_channel.queue_declare(queue=celery_app.conf.task_default_queue, passive=True)
            except conn.channel_errors:
                pass  # the queue does not exist yet, but the broker answered
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"
    return "ok"


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _check_database(), "broker": _check_broker()}
    failed = [name for name, result in checks.items() if result != "ok"]
    body = {"status": "ok" if not failed else "fail", "failed": failed, **checks}
    return JsonResponse(body, status=200 if not failed else 503)
