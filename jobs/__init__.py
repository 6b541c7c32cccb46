"""Tandem's job engine: long work as rows with state and progress, run by Celery, resumable after a lost worker.

- `jobs.registry`: the kinds — `@job_handler(kind)` registers a handler, `@job_followup(kind)` what happens
  after a job of that kind succeeded (the apps register both from their AppConfig.ready);
- `jobs.runner`: creating, running, waiting for, cancelling and sweeping jobs;
- `jobs.tasks`: the Celery tasks (the only ones the engine has: run a job, sweep lost ones).

The engine knows no app: apps import it, never the other way round.
"""
