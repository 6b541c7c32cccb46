"""Celery tasks of the annotate app: thin wrappers that take ids and call services."""

from celery import shared_task

from annotate.services import assignments, jobs


@shared_task(name="annotate.tasks.job_run", acks_late=True)
def job_run_task(job_id: int) -> None:
    jobs.job_run(job_id=job_id)


@shared_task(name="annotate.tasks.jobs_sweep")
def jobs_sweep_task() -> dict:
    return jobs.jobs_sweep()


@shared_task(name="annotate.tasks.leases_expire")
def leases_expire_task() -> int:
    return assignments.leases_expire()
