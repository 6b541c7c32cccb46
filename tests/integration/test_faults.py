"""Faults with a real worker: killed (SIGKILL) mid-export and mid-judge-run, stopped (SIGTERM) mid-judge-run,
and the broker down while annotators submit. Each test stays under a minute."""

import signal
import socket
import subprocess
import sys
import uuid

import pytest
from celery import Celery
from django.db import connection
from rest_framework.test import APIClient

from annotate.celery import app as celery_app
from annotate.models import Annotation, Assignment, Item, Job
from annotate.models.tokens import api_token_create
from annotate.services.assignments import next_assignment_for
from annotate.services.exports import export_start
from annotate.services.imports import items_import
from jobs import runner
from jobs.dispatch import UNSENT
from tests.conftest import jsonl, pair, subprocess_env
from tests.factories import CampaignFactory, ItemFactory, JudgeFactory, UserFactory
from tests.fakes.openai_server import FakeOpenAIServer

from .conftest import ROOT, _wait_ready, wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]
CONCURRENCY = 4
ROWS = 4000


@pytest.fixture
def workers(transactional_db, tmp_path):
    """Start Celery workers on a queue of this test's own; kill any still running at the end."""
    queue = f"tandem-faults-{uuid.uuid4().hex[:8]}"
    old_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    started: list[subprocess.Popen] = []

    def start(**extra_env) -> subprocess.Popen:
        env = subprocess_env(connection)
        env |= {"CELERY_BROKER_URL": celery_app.conf.broker_url, "CELERY_TASK_DEFAULT_QUEUE": queue}
        env |= {"TANDEM_JOB_HEARTBEAT_SECONDS": "1", "TANDEM_JOB_STALE_SECONDS": "3", **extra_env}
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "annotate", "worker", "--pool", "solo", "-Q", queue,
                 "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        started.append(process)
        _wait_ready(log_path, process)
        return process

    yield start
    celery_app.conf.task_default_queue = old_queue
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def sweep_lost(job_id: int) -> None:
    """What beat's sweep does once the killed worker's heartbeat is older than the stale limit."""
    wait_for(lambda: job_id in runner.jobs_sweep(stale_seconds=2)["lost_workers"], timeout=15, what="the sweep")


def ended(job_id: int):
    job = Job.objects.get(pk=job_id)
    return job if job.state not in Job.ACTIVE_STATES else None


def test_a_worker_killed_mid_export_never_lists_a_partial_file_and_the_export_resumes(workers, settings, tmp_path):
    settings.TANDEM_EXPORT_DIR = tmp_path / "exports"
    campaign = CampaignFactory(preset_name="simple-pairwise")
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(ROWS)]), filename="items.jsonl")
    annotator = UserFactory()
    Annotation.objects.bulk_create(
        Annotation(item=item, campaign=campaign, source="human", annotator=annotator, label={"overall": 1})
        for item in Item.objects.filter(campaign=campaign)
    )
    worker = workers(TANDEM_EXPORT_DIR=str(settings.TANDEM_EXPORT_DIR))
    export = export_start(campaign=campaign, options={"format": "raw", "file_type": "jsonl"})
    directory = settings.TANDEM_EXPORT_DIR / f"{campaign.slug}-{export.pk}"
    # The partial file lives while the rows are written (a fraction of a second): look often, and tell a
    # missed window (the export already done) from an export that never started.
    seen = wait_for(
        lambda: (
            ("partial" if any(p.name.endswith(".partial") for p in directory.glob("*")) else None)
            or ("ended" if ended(export.job_id) else None)
        ),
        timeout=30,
        what="a partial file",
        interval=0.01,
    )
    assert seen == "partial", "the export ended before a partial file was seen"
    kill(worker)
    export.refresh_from_db()
    assert not export.complete and export.files == [] and export.job.state == "running"
    sweep_lost(export.job_id)
    workers(TANDEM_EXPORT_DIR=str(settings.TANDEM_EXPORT_DIR))
    job = wait_for(lambda: ended(export.job_id), timeout=120, what="the resumed export")
    assert job.state == "succeeded" and job.attempts == 2, job.error
    assert "worker lost at" in job.result["requeued"][0]
    export.refresh_from_db()
    assert export.complete and not list(directory.glob("*.partial"))
    (listed,) = export.files
    lines = (directory / listed["name"]).read_bytes().count(b"\n")
    assert listed["rows"] == lines == ROWS


def judged_campaign(items: int):
    campaign = CampaignFactory(preset_name="simple-pairwise")
    ItemFactory.create_batch(items, campaign=campaign, route="llm")
    return campaign


def release_leaked_slots(judge) -> None:
    """A SIGKILLed worker cannot give back its Redis concurrency slots: they lapse after `slot_ttl()`
    (2 × TANDEM_JUDGE_TIMEOUT + 30 s), longer than this test may take. Lapse them now, as time would."""
    from routing.judges import limits

    url = limits.redis_url()
    if url:
        import redis

        redis.Redis.from_url(url).delete(f"{limits._namespace()}:judge:{judge.pk}:slots")


def paid_again(server: FakeOpenAIServer) -> int:
    """Answers the endpoint gave (and would bill) more than once for the same messages."""
    return sum(n - 1 for n in server.answered.values() if n > 1)


def assert_every_judgment_once(campaign, judge, expected: int) -> None:
    rows = Annotation.objects.filter(campaign=campaign, judge=judge)
    keys = set(rows.values_list("item_id", "position_swapped", "sample_index"))
    assert rows.count() == len(keys) == expected


def test_a_worker_killed_mid_judge_run_resumes_and_pays_again_only_what_was_in_flight(workers):
    from routing.judges.runs import judge_run_start

    campaign = judged_campaign(150)
    with FakeOpenAIServer(latency=(0.02, 0.08), seed=3) as server:
        judge = JudgeFactory(base_url=server.base_url, concurrency=CONCURRENCY, requests_per_minute=600_000)
        campaign.judges.add(judge)
        worker = workers()
        job = judge_run_start(campaign=campaign, judges=[judge])
        wait_for(lambda: Annotation.objects.filter(judge=judge).count() >= 80, timeout=120, what="80 judgments")
        kill(worker)
        stored_at_kill = Annotation.objects.filter(judge=judge).count()
        answered_at_kill = sum(server.answered.values())
        # Answers are stored as they arrive: what the endpoint answered and is not stored was in flight.
        assert answered_at_kill - stored_at_kill <= 2 * CONCURRENCY
        release_leaked_slots(judge)
        sweep_lost(job.pk)
        workers()
        finished = wait_for(lambda: ended(job.pk), timeout=120, what="the resumed judge run")
        assert finished.state == "succeeded" and finished.attempts == 2, finished.error
        assert finished.result["done"] == 300 and finished.result["failed"] == 0
        assert_every_judgment_once(campaign, judge, 300)
        assert paid_again(server) <= 2 * CONCURRENCY, dict(server.answered.most_common(10))


def test_a_warm_shutdown_mid_judge_run_drains_stores_and_leaves_the_job_to_resume(workers):
    from routing.judges.runs import judge_run_start

    campaign = judged_campaign(150)
    with FakeOpenAIServer(latency=(0.02, 0.08), seed=5) as server:
        judge = JudgeFactory(base_url=server.base_url, concurrency=CONCURRENCY, requests_per_minute=600_000)
        campaign.judges.add(judge)
        worker = workers()
        job = judge_run_start(campaign=campaign, judges=[judge])
        wait_for(lambda: Annotation.objects.filter(judge=judge).count() >= 80, timeout=120, what="80 judgments")
        worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        assert worker.wait(timeout=30) == 0
        stopped = Job.objects.get(pk=job.pk)
        assert stopped.state == "queued" and "re-queued to resume" in stopped.error
        assert stopped.error.startswith("stopped at") and "shutting down" in stopped.error
        # Everything the endpoint answered before the stop is stored: nothing will be paid again.
        assert Annotation.objects.filter(judge=judge).count() == sum(server.answered.values()) < 300
        workers()  # the message the stopping worker queued is waiting for the next worker
        finished = wait_for(lambda: ended(job.pk), timeout=120, what="the resumed judge run")
        assert finished.state == "succeeded" and finished.result["done"] == 300, finished.error
        assert_every_judgment_once(campaign, judge, 300)
        assert paid_again(server) == 0


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_submits_succeed_while_the_broker_is_down_and_their_jobs_run_once_it_is_back(workers, settings, monkeypatch):
    settings.TANDEM_STATS_DEBOUNCE_SECONDS = 0
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(6)]), filename="items.jsonl")
    annotators = UserFactory.create_batch(3)
    # "Down": a broker URL on a port nobody listens on (Celery reads CELERY_BROKER_URL before its own
    # configuration), in a fresh app with no connection pooled yet.
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{_unused_port()}/0")
    down = Celery("broker-down", set_as_current=False)
    down.conf.update(broker_connection_timeout=1, broker_connection_retry=False)
    down.set_current()
    try:
        for annotator in annotators:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=annotator, name='t').key}")
            for _ in range(2):
                lease = next_assignment_for(annotator=annotator, campaign=campaign)
                assert isinstance(lease, Assignment)
                answer = client.post(f"/api/assignments/{lease.pk}/submit/", {"label": {"overall": 1}}, format="json")
                assert answer.status_code in (200, 201), answer.content
    finally:
        monkeypatch.undo()
        celery_app.set_current()
    assert Annotation.objects.filter(campaign=campaign, source="human").count() == 6
    assert Item.objects.filter(campaign=campaign, human_label_count=1).count() == 6
    waiting = list(Job.objects.filter(campaign=campaign, kind="compute_stats"))
    assert waiting and all(job.state == "queued" and job.error.startswith(UNSENT) for job in waiting)
    workers()
    summary = runner.jobs_sweep()  # beat's next sweep, now that the broker answers
    assert {job.pk for job in waiting} <= set(summary["resent"])
    for job in waiting:
        done = wait_for(lambda job=job: ended(job.pk), timeout=120, what="the stats job")
        assert done.state == "succeeded" and done.error == "", done.error
