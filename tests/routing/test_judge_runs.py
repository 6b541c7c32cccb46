"""Judge runs end to end against the fake OpenAI-compatible server: storage, orientation, faults, resume."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum

from annotate.models import Annotation, Campaign, Item, Job, JudgeVerdict, RoutingDecision
from jobs.runner import job_run
from routing.judges.runs import judge_run_start, money
from routing.judges.services import judge_create, judge_probe
from tests.factories import CampaignFactory, ItemFactory
from tests.fakes.openai_server import FakeOpenAIServer, Fault, FaultPlan, default_answer

pytestmark = pytest.mark.django_db(transaction=True)

_SHOWN = re.compile(r"\[The start of Response A\]\n(.*?)\n\[The end of Response A\].*?"
                    r"\[The start of Response B\]\n(.*?)\n\[The end of Response B\]", re.S)  # fmt: skip


def prefers_good(request: dict) -> str:
    """A perfectly position-consistent judge: the response containing GOOD wins."""
    text = "\n".join(m["content"] for m in request["messages"])
    shown = _SHOWN.search(text)
    if shown is None:  # the capability probe
        return default_answer(request)
    first, second = shown.groups()
    verdict = "A>B" if "GOOD" in first else "B>A" if "GOOD" in second else "A=B"
    if request.get("response_format"):
        return json.dumps({"reasoning": "Both read carefully.", "verdicts": {"overall": verdict}})
    return f"Both read carefully.\n\noverall: [[{verdict}]]"


def first_shown_wins(request: dict) -> str:
    """A judge with pure position bias: always the response shown first."""
    return "It reads better.\n\noverall: [[A>B]]"


@pytest.fixture
def pairwise(db):
    campaign = CampaignFactory(preset_name="simple-pairwise", routing_policy=Campaign.RoutingPolicy.ALL_LLM)
    for i in range(10):
        good_first = i % 2 == 0
        ItemFactory(
            campaign=campaign,
            external_id=f"x{i}",
            route=Item.Route.LLM,
            response_a=f"GOOD answer {i}" if good_first else f"weak answer {i}",
            response_b=f"weak answer {i}" if good_first else f"GOOD answer {i}",
        )
    return campaign


def make_judge(server: FakeOpenAIServer, campaign: Campaign, name: str = "fake", **extra):
    values = {
        "name": name,
        "base_url": server.base_url,
        "model": "fake-judge",
        "concurrency": 8,
        "requests_per_minute": 600_000,
        "price_in_per_1k": "0.5",
        "price_out_per_1k": "1.5",
    } | extra
    judge = judge_create(**values)
    campaign.judges.add(judge)
    return judge


def run(campaign, **kwargs) -> Job:
    job = judge_run_start(campaign=campaign, dispatch=False, **kwargs)
    return job_run(job_id=job.pk)


def test_a_run_judges_both_orders_and_maps_verdicts_back_to_the_item(pairwise):
    with FakeOpenAIServer(answer=prefers_good) as server:
        judge = make_judge(server, pairwise)
        job = run(pairwise)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["done"] == job.result["total"] == 20 and job.result["failed"] == 0
    judgments = Annotation.objects.filter(campaign=pairwise, source=Annotation.Source.JUDGE, judge=judge)
    assert judgments.count() == 20
    for item in pairwise.items.all():
        expected = -1 if item.response_a.startswith("GOOD") else 1
        orders = {a.position_swapped: a for a in judgments.filter(item=item)}
        assert set(orders) == {False, True}
        assert all(a.label == {"overall": expected} for a in orders.values())
        assert all(a.prompt_version and a.raw_output and a.latency_ms is not None for a in orders.values())
        verdict = JudgeVerdict.objects.get(item=item)
        assert verdict.label == {"overall": expected}
        assert verdict.position_consistency == 1.0 and verdict.n_judgments == 2
    # The fake returns logprobs and structured output; the probe found both and the run used them.
    judge.refresh_from_db()
    assert judge.capabilities["logprobs"] is True and judge.capabilities["json_schema"] is True


def test_position_bias_shows_as_inconsistency_and_a_tie(pairwise):
    with FakeOpenAIServer(answer=first_shown_wins) as server:
        judge = make_judge(server, pairwise)
        judge.capabilities = {}  # plain text answers: the fake's structured mode would not be position-biased
        judge.save()
        job = run(pairwise)
    assert job.state == Job.State.SUCCEEDED, job.error
    for verdict in JudgeVerdict.objects.filter(campaign=pairwise):
        assert verdict.position_consistency == 0.0
        assert verdict.label == {"overall": 0}  # A>B then B>A once mapped back: a tie
        assert verdict.confidence == 0.0


def test_cost_is_the_sum_of_stored_token_counts_at_the_judges_prices(pairwise):
    with FakeOpenAIServer() as server:
        make_judge(server, pairwise)
        job = run(pairwise)
    judgments = Annotation.objects.filter(campaign=pairwise, source=Annotation.Source.JUDGE)
    tokens = judgments.aggregate(i=Sum("prompt_tokens"), o=Sum("completion_tokens"))
    expected = (Decimal(tokens["i"]) * Decimal("0.5") + Decimal(tokens["o"]) * Decimal("1.5")) / 1000
    assert Decimal(job.result["cost"]) == money(judgments.aggregate(c=Sum("cost"))["c"]) == expected


def test_a_second_run_calls_nothing_for_stored_work(pairwise):
    with FakeOpenAIServer() as server:
        make_judge(server, pairwise)
        run(pairwise)
        calls = server.calls
        again = run(pairwise)
        assert server.calls == calls
    assert again.state == Job.State.SUCCEEDED and again.result["done"] == 20


def test_unparsable_output_is_stored_raw_and_sends_the_item_to_humans(pairwise):
    item = pairwise.items.get(external_id="x3")

    def answer(request: dict) -> str:
        text = request["messages"][-1]["content"]
        return "I'm sorry, but I can't help with that." if item.response_b in text else default_answer(request)

    with FakeOpenAIServer(answer=answer) as server:
        judge = make_judge(server, pairwise)
        judge.capabilities = {}
        judge.save()
        job = run(pairwise)
    assert job.result["parse_failures"] == 2 and job.result["routed_to_humans"] == 1
    failed = Annotation.objects.filter(item=item, source=Annotation.Source.JUDGE)
    assert all(a.parse_failed and a.label is None and "sorry" in a.raw_output for a in failed)
    item.refresh_from_db()
    assert item.route == Item.Route.HUMAN
    decision = RoutingDecision.objects.filter(item=item).latest("created_at")
    assert decision.destination == "human" and "no usable verdict" in decision.reason


def test_429_waits_what_retry_after_says(pairwise, settings):
    settings.TANDEM_JUDGE_BACKOFF = 0.01
    one = pairwise.items.filter(pk=pairwise.items.first().pk)
    pairwise.items.exclude(pk__in=one).update(route=Item.Route.HUMAN)
    with FakeOpenAIServer(faults=FaultPlan(by_attempt={1: Fault("429", retry_after=0.6)})) as server:
        make_judge(server, pairwise)
        began = time.monotonic()
        job = run(pairwise)
        elapsed = time.monotonic() - began
    assert job.result["done"] == 2 and job.result["failed"] == 0
    assert server.faults_served["429"] >= 2
    assert elapsed >= 0.6


def test_other_client_errors_are_reported_not_retried(pairwise, monkeypatch):
    monkeypatch.setenv("TANDEM_JUDGE_KEY_FAKE", "wrong")
    with FakeOpenAIServer(api_key="right") as server:
        make_judge(server, pairwise, api_key_env="TANDEM_JUDGE_KEY_FAKE")
        server.reset()
        job = run(pairwise)
    assert job.result["failed"] == 20 and job.result["done"] == 0
    assert all(f["attempts"] == 1 for f in job.result["failures"])  # a 401 is not retried
    assert "HTTP 401" in job.result["failures"][0]["error"]
    assert not Annotation.objects.filter(campaign=pairwise, source=Annotation.Source.JUDGE).exists()


def test_five_hundred_items_with_every_fault_end_judged_or_reported_and_never_judged_twice(settings):
    settings.TANDEM_JUDGE_BACKOFF = 0.01
    settings.TANDEM_JUDGE_MAX_BACKOFF = 0.05
    settings.TANDEM_JUDGE_TIMEOUT = 1.0
    settings.TANDEM_JUDGE_MAX_ATTEMPTS = 3
    campaign = CampaignFactory(preset_name="simple-pairwise")
    Item.objects.bulk_create(
        Item(
            campaign=campaign,
            external_id=f"f{i}",
            prompt=f"Question {i}?",
            response_a=f"First answer {i}",
            response_b=f"Second answer {i}",
            content_hash=f"{i:064d}",
            route=Item.Route.LLM,
        )
        for i in range(500)
    )
    kinds = ("429", "500", "503", "timeout", "drop", "truncated", "garbage", "refusal", "bad_json")
    plan = FaultPlan(rate=0.3, kinds=kinds, seed=3, retry_after=0.02)
    with FakeOpenAIServer(faults=plan, latency=(0.001, 0.01), hang_seconds=3) as server:
        judge = make_judge(server, campaign, concurrency=16)
        judge.capabilities = {"logprobs": True}
        judge.save()
        first = run(campaign)
        stored = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE)
        keys = set(stored.values_list("item_id", "position_swapped"))
        reported = {(f["item"], f["swapped"]) for f in first.result["failures"]}
        # Every judgment is stored (a verdict or a parse failure) or reported as failed; none both.
        assert len(keys) + len(reported) == 1000 and not keys & reported
        assert first.result["done"] == len(keys) and first.result["failed"] == len(reported)
        for fault in kinds:
            assert server.faults_served[fault] > 0, fault
        assert stored.filter(parse_failed=True).exists() and stored.filter(parse_failed=False).exists()
        # Cost is exactly what the stored token counts say.
        tokens = stored.aggregate(i=Sum("prompt_tokens"), o=Sum("completion_tokens"))
        assert (
            Decimal(first.result["cost"])
            == (Decimal(tokens["i"]) * Decimal("0.5") + tokens["o"] * Decimal("1.5")) / 1000
        )
        # A second run asks only for what is missing.
        stored_keys = {json.dumps(r["messages"], sort_keys=True) for r in server.requests}
        server.reset()
        run(campaign)
        assert server.calls >= len(reported)
        asked_again = {json.dumps(r["messages"], sort_keys=True) for r in server.requests}
        assert len(asked_again) <= len(reported)
        assert stored_keys  # the first run did ask
    assert stored.count() <= 1000


def test_a_rubric_campaign_is_judged_once_per_item_with_prometheus_scores(db):
    campaign = CampaignFactory(preset_name="helpsteer2", routing_policy=Campaign.RoutingPolicy.ALL_LLM)
    for i in range(4):
        ItemFactory(campaign=campaign, route=Item.Route.LLM, response=f"Response {i}", response_a="", response_b="")
    with FakeOpenAIServer() as server:
        judge = make_judge(server, campaign)
        judge.capabilities = {}
        judge.save()
        job = run(campaign)
    assert job.state == Job.State.SUCCEEDED, job.error
    judgments = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE)
    assert judgments.count() == 4 and not judgments.filter(parse_failed=True).exists()
    criteria = {c["name"] for c in campaign.label_schema["rubric"]["criteria"]}
    assert all(set(a.label) == criteria for a in judgments)
    assert "[RESULT]" in judgments.first().raw_output


def test_probe_records_what_the_endpoint_lacks():
    with FakeOpenAIServer(faults=FaultPlan(by_call={1: "500", 2: "500"})) as server:
        judge = judge_create(name="flaky", base_url=server.base_url, model="m", probe=False)
        capabilities = judge_probe(judge=judge)
    assert "probe_error" in capabilities and "HTTP 500" in capabilities["probe_error"]


def test_create_judge_and_run_judges_commands(pairwise, capsys):
    with FakeOpenAIServer(answer=prefers_good) as server:
        call_command(
            "create_judge", "cli-judge", "--base-url", server.base_url, "--model", "fake-judge",
            "--api-key-env", "TANDEM_JUDGE_KEY_SOME", "--concurrency", "4", "--rpm", "6000", "--price-in", "1",
            "--price-out", "2", "--campaign", pairwise.slug,
        )  # fmt: skip
        created = json.loads(capsys.readouterr().out)
        assert created["capabilities"]["logprobs"] is True and created["campaigns"] == [pairwise.slug]
        call_command("run_judges", pairwise.slug, "--sync")
        summary = json.loads(capsys.readouterr().out)
    assert summary["state"] == "succeeded" and summary["done"] == 20 and summary["failed"] == 0
    assert Decimal(summary["cost"]) > 0


def test_create_judge_refuses_a_key_in_place_of_its_variable_name():
    with pytest.raises(ValueError, match="api_key_env"):
        judge_create(name="bad", base_url="http://127.0.0.1:1/v1", model="m", api_key_env="sk-live-123", probe=False)


def test_the_concurrency_limit_holds_across_runs_on_two_threads(db):
    import threading

    campaigns = [CampaignFactory(preset_name="simple-pairwise") for _ in range(2)]
    for campaign in campaigns:
        ItemFactory.create_batch(30, campaign=campaign, route=Item.Route.LLM)
    with FakeOpenAIServer(latency=0.05) as server:
        judge = judge_create(
            name="shared", base_url=server.base_url, model="m", concurrency=5, requests_per_minute=10**6
        )
        for campaign in campaigns:
            campaign.judges.add(judge)
        jobs = [judge_run_start(campaign=c, dispatch=False) for c in campaigns]
        server.reset()

        def run_in_thread(job_id: int) -> None:
            try:
                job_run(job_id=job_id)
            finally:
                connection.close()

        threads = [threading.Thread(target=run_in_thread, args=(job.pk,)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.calls == 120
        assert server.max_in_flight == 5  # used to the full, never beyond, whichever run sent them
    assert Annotation.objects.filter(source=Annotation.Source.JUDGE).count() == 120


def test_requests_per_minute_spread_the_calls(pairwise):
    with FakeOpenAIServer() as server:
        make_judge(server, pairwise, requests_per_minute=600, concurrency=50)  # 10 per second
        server.reset()
        began = time.monotonic()
        run(pairwise)
        elapsed = time.monotonic() - began
    assert server.calls == 20
    assert elapsed >= 0.9  # a bucket of one second's calls (10), then 10 more at 10 per second


def test_a_large_run_splits_over_processes_that_share_the_limits(settings):
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/14").ping()
    except redis.ConnectionError:
        pytest.skip("the shared limits need Redis on 127.0.0.1:6379")
    settings.TANDEM_REDIS_URL = "redis://127.0.0.1:6379/14"
    settings.TANDEM_JUDGE_PROCESSES = 3
    settings.TANDEM_JUDGE_SHARD_MIN = 100
    campaign = CampaignFactory(preset_name="simple-pairwise")
    ItemFactory.create_batch(90, campaign=campaign, route=Item.Route.LLM)
    with FakeOpenAIServer(latency=0.03) as server:
        make_judge(server, campaign, concurrency=6)
        server.reset()
        job = run(campaign)
        assert server.max_in_flight <= 6  # one budget for the three processes
        assert max(server.answered.values()) == 1 and server.calls == 180  # each judgment asked once
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["processes"] == 3 and job.result["done"] == 180 and job.result["failed"] == 0
    stored = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE)
    assert stored.count() == 180
    assert Decimal(job.result["cost"]) == money(stored.aggregate(c=Sum("cost"))["c"])
    assert Decimal(job.result["cost_this_run"]) == Decimal(job.result["cost"])
