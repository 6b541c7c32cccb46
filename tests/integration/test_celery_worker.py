"""End to end through a real worker: an async import job, a lost job recovered by the sweeper, a judge run."""

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from annotate.models import Item, Job
from jobs import runner
from tests.conftest import pair

from .conftest import wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def finished(job_id):
    job = Job.objects.get(pk=job_id)
    return job if job.state in ("succeeded", "failed", "cancelled") else None


def test_async_import_through_the_api_is_run_by_the_worker(celery_worker_process, admin_api, campaign):
    body = "".join(json.dumps(pair(i)) + "\n" for i in range(250)).encode()
    response = admin_api.post(
        f"/api/campaigns/{campaign.slug}/items/import/?async=1", {"file": SimpleUploadedFile("items.jsonl", body)}
    )
    assert response.status_code == 202
    job = wait_for(lambda: finished(response.json()["job"]["id"]), what="the import job")
    assert job.state == "succeeded", job.error
    assert job.result["created"] == 250 and job.attempts == 1 and job.worker
    assert Item.objects.filter(campaign=campaign).count() == 250


def test_a_job_whose_worker_died_is_requeued_and_finished(celery_worker_process, campaign, tmp_path):
    upload = tmp_path / "lost.upload"
    upload.write_text(json.dumps(pair(1)) + "\n")
    # As if a worker had claimed it and then been killed: running, with a heartbeat long gone.
    job = Job.objects.create(
        kind="import_items",
        campaign=campaign,
        params={"path": str(upload), "filename": "lost.jsonl"},
        state=Job.State.RUNNING,
        attempts=1,
        heartbeat_at=timezone.now() - timedelta(minutes=30),
    )
    summary = runner.jobs_sweep(stale_seconds=60)
    assert summary["requeued"] == [job.pk]
    job = wait_for(lambda: finished(job.pk), what="the re-queued job")
    assert job.state == "succeeded" and job.attempts == 2
    assert Item.objects.filter(campaign=campaign, external_id="p1").exists()


def test_a_judge_run_through_the_api_is_run_by_the_worker(celery_worker_process, admin_api):
    from annotate.models import Annotation
    from tests.factories import CampaignFactory, ItemFactory
    from tests.fakes.openai_server import FakeOpenAIServer, FaultPlan

    campaign = CampaignFactory(preset_name="simple-pairwise")
    ItemFactory.create_batch(25, campaign=campaign, route="llm")
    with FakeOpenAIServer(latency=0.02, faults=FaultPlan(by_attempt={1: "500"})) as server:
        created = admin_api.post(
            "/api/judges/",
            {
                "name": "worker-judge",
                "base_url": server.base_url,
                "model": "m",
                "concurrency": 4,
                "probe": False,
                "requests_per_minute": 60_000,
            },
            format="json",
        )
        campaign.judges.add(created.json()["id"])
        response = admin_api.post(f"/api/campaigns/{campaign.slug}/judge-runs/", {}, format="json")
        assert response.status_code == 202
        job = wait_for(lambda: finished(response.json()["id"]), what="the judge run")
        assert job.state == "succeeded", job.error
        assert job.result["done"] == 50 and job.result["failed"] == 0
        assert server.faults_served["500"] == 50  # every judgment failed once and was retried
    assert Annotation.objects.filter(campaign=campaign, source="judge").count() == 50


def test_judge_first_routing_through_the_worker(celery_worker_process, admin_api):
    """POST a routing pass: the worker routes the calibration slice, starts the judge run the other items
    wait for, and that run routes them; the items whose verdict flips with the order go to humans."""
    from annotate.models import Campaign, RoutingDecision
    from tests.factories import CampaignFactory, ItemFactory
    from tests.fakes.openai_server import FakeOpenAIServer

    def answer(request: dict) -> str:
        text = "\n".join(m["content"] for m in request["messages"])
        return "overall: [[A>B]]" if "HARD" in text else "Both are fine.\n\noverall: [[A=B]]"  # HARD: first shown wins

    campaign = CampaignFactory(
        preset_name="simple-pairwise", routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.3,
        calibration_fraction=0.05,
    )  # fmt: skip
    hard = {k for k in range(40) if k % 8 == 0}
    for k in range(40):
        ItemFactory(campaign=campaign, external_id=f"j{k}", response_a=("HARD " if k in hard else "") + f"a{k}")
    with FakeOpenAIServer(answer=answer) as server:
        created = admin_api.post(
            "/api/judges/",
            {"name": "router-judge", "base_url": server.base_url, "model": "m", "probe": False,
             "requests_per_minute": 60_000, "concurrency": 8},
            format="json",
        )  # fmt: skip
        campaign.judges.add(created.json()["id"])
        response = admin_api.post(f"/api/campaigns/{campaign.slug}/route/")
        assert response.status_code == 202
        first = wait_for(lambda: finished(response.json()["id"]), what="the first routing pass")
        assert first.state == "succeeded", first.error
        assert first.result["waiting_for_judges"] == 38 and first.result["judge_run"]
        judged = wait_for(lambda: finished(first.result["judge_run"]), what="the judge run")
        assert judged.state == "succeeded", judged.error
        second = wait_for(
            lambda: Job.objects.filter(campaign=campaign, kind="route", state="succeeded").exclude(pk=first.pk).first(),
            what="the routing pass the judge run asked for",
        )
    assert second.result["destinations"] == {"unrouted": 0, "human": 10, "llm": 28, "both": 2}
    flipped = Item.objects.filter(campaign=campaign, external_id__in=[f"j{k}" for k in hard])
    assert all(item.route in ("human", "both") for item in flipped)
    assert RoutingDecision.objects.filter(campaign=campaign).count() == 40
