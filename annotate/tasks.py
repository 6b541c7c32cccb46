"""Celery tasks of the annotate app that are not jobs (the job engine's own are in `jobs.tasks`)."""

from celery import shared_task

from annotate.services import assignments


@shared_task(name="annotate.tasks.leases_expire")
def leases_expire_task() -> int:
    return assignments.leases_expire()
