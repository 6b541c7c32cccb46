"""Celery tasks of the annotate app: thin wrappers that take ids and call services."""

from celery import shared_task

from annotate.services import jobs


@shared_task(name="annotate.tasks.job_run", acks_late=True)
def job_run_task(job_id: int) -> None:
    jobs.job_run(job_id=job_id)


@shared_task(name="annotate.tasks.jobs_sweep")
def jobs_sweep_task() -> dict:
    return jobs.jobs_sweep()
