"""The job engine's Celery tasks: thin wrappers that take ids and call the runner."""

from celery import shared_task

from jobs import runner, shutdown  # noqa: F401  (shutdown: hears the worker's warm shutdown)
from jobs.registry import RUN_TASK


@shared_task(name=RUN_TASK, acks_late=True)
def job_run_task(job_id: int) -> None:
    runner.job_run(job_id=job_id)


@shared_task(name="jobs.sweep")
def jobs_sweep_task() -> dict:
    return runner.jobs_sweep()
