"""The chain of judge runs and routing passes (`routing.chain`), through jobs, against the fake OpenAI server:
a run routes what it judged, a pass starts the run its items wait for, and no chain goes on forever."""

from __future__ import annotations

import pytest

from annotate.models import Campaign, Item, Job
from jobs.registry import followups_for
from jobs.runner import job_run
from routing import chain, router
from routing.judges import runs
from routing.judges.runs import judge_run_start
from tests.factories import CampaignFactory, ItemFactory
from tests.fakes.openai_server import FakeOpenAIServer

from .test_judge_runs import make_judge

pytestmark = pytest.mark.django_db(transaction=True)


def hard_flips(request: dict) -> str:
    """Position bias on HARD items only: the first shown wins there, so their verdict flips with the order."""
    text = "\n".join(m["content"] for m in request["messages"])
    return "overall: [[A>B]]" if "HARD" in text else "Both are fine.\n\noverall: [[A=B]]"


def campaign_with_items(n: int = 12, *, hard: int = 3, **extra) -> Campaign:
    values = {"routing_policy": Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, "human_budget": 0.25,
              "calibration_fraction": 0.0} | extra  # fmt: skip
    campaign = CampaignFactory(**values)
    for k in range(n):
        ItemFactory(campaign=campaign, external_id=f"c{k}", response_a=("HARD " if k < hard else "") + f"a{k}")
    return campaign


def jobs_of(campaign: Campaign, kind: str):
    return Job.objects.filter(campaign=campaign, kind=kind).order_by("id")


def test_the_follow_ups_are_registered_for_both_kinds():
    assert chain.route_after_judges in followups_for(runs.JOB_KIND)
    assert chain.judges_after_route in followups_for(router.JOB_KIND)


def test_a_judge_run_of_a_judge_first_campaign_queues_a_pass_that_starts_no_run():
    campaign = campaign_with_items()
    with FakeOpenAIServer(answer=hard_flips) as server:
        make_judge(server, campaign)
        run = job_run(job_id=judge_run_start(campaign=campaign, scope="routable", dispatch=False).pk)
        assert run.state == Job.State.SUCCEEDED, run.error
        passes = jobs_of(campaign, router.JOB_KIND)
        assert [p.pk for p in passes] == [run.result["routing_pass"]] and run.result["next_judge_run"] is None
        routing_pass = passes.get()
        assert routing_pass.state == Job.State.QUEUED and routing_pass.params["start_judges"] is False
        routed = job_run(job_id=routing_pass.pk)
    assert routed.state == Job.State.SUCCEEDED, routed.error
    assert routed.result["waiting_for_judges"] == 0 and routed.result["judge_run"] is None
    assert routed.result["destinations"] == {"unrouted": 0, "human": 3, "llm": 9, "both": 0}
    assert {i.route for i in Item.objects.filter(campaign=campaign, external_id__in=["c0", "c1", "c2"])} == {"human"}
    assert jobs_of(campaign, runs.JOB_KIND).count() == 1  # the pass a run asked for starts none


def test_a_run_for_another_policy_asks_for_no_pass_and_route_after_false_never_does():
    campaign = campaign_with_items(routing_policy=Campaign.RoutingPolicy.ALL_LLM)
    Item.objects.filter(campaign=campaign).update(route=Item.Route.LLM)
    with FakeOpenAIServer(answer=hard_flips) as server:
        make_judge(server, campaign)
        run = job_run(job_id=judge_run_start(campaign=campaign, dispatch=False).pk)
        assert run.state == Job.State.SUCCEEDED and "routing_pass" not in run.result
        judge_first = campaign_with_items()
        judge_first.judges.add(*campaign.judges.all())
        quiet = judge_run_start(campaign=judge_first, scope="routable", dispatch=False, route_after=False)
        assert "routing_pass" not in job_run(job_id=quiet.pk).result
    assert not Job.objects.filter(kind=router.JOB_KIND).exists()


def test_a_pass_whose_items_wait_starts_the_run_and_that_run_routes_them():
    campaign = campaign_with_items()
    with FakeOpenAIServer(answer=hard_flips) as server:
        make_judge(server, campaign)
        first = job_run(job_id=router.route_start(campaign=campaign, dispatch=False).pk)
        assert first.state == Job.State.SUCCEEDED, first.error
        assert first.result["waiting_for_judges"] == 12 and "note" not in first.result
        run = jobs_of(campaign, runs.JOB_KIND).get()
        assert first.result["judge_run"] == run.pk and run.state == Job.State.QUEUED
        assert run.params["scope"] == "routable" and run.params["then_route"] is True
        run = job_run(job_id=run.pk)
        second = job_run(job_id=run.result["routing_pass"])
    assert second.result["waiting_for_judges"] == 0 and second.result["destinations"]["unrouted"] == 0
    assert jobs_of(campaign, runs.JOB_KIND).count() == 1 and jobs_of(campaign, router.JOB_KIND).count() == 2


def test_a_pass_that_finds_a_run_busy_asks_it_to_route_again_and_never_doubles_it():
    campaign = campaign_with_items(n=4)
    with FakeOpenAIServer(answer=hard_flips) as server:
        make_judge(server, campaign)
        busy = Job.objects.create(kind=runs.JOB_KIND, campaign=campaign, state=Job.State.RUNNING,
                                  params={"scope": "routable", "judges": []})  # fmt: skip
        for _ in range(2):  # a second pass finds the same run: still one run, still flagged
            routed = job_run(job_id=router.route_start(campaign=campaign, dispatch=False).pk)
            assert routed.result["judge_run"] is None
            assert routed.result["note"] == "4 items wait for the judge run in progress; a pass follows it"
    busy.refresh_from_db()
    assert busy.params == {"scope": "routable", "judges": [], "route_again": True}
    assert jobs_of(campaign, runs.JOB_KIND).count() == 1


def test_items_wait_with_no_judge_to_ask_and_auto_judge_false_starts_none():
    campaign = campaign_with_items(n=5)
    routed = job_run(job_id=router.route_start(campaign=campaign, dispatch=False).pk)
    assert routed.result["judge_run"] is None
    assert routed.result["note"].startswith("5 items wait for a judge verdict, and the campaign has no active judge")
    with FakeOpenAIServer(answer=hard_flips) as server:
        make_judge(server, campaign)
        Campaign.objects.filter(pk=campaign.pk).update(routing_params={"auto_judge": False})
        routed = job_run(job_id=router.route_start(campaign=campaign, dispatch=False).pk)
        assert routed.result["judge_run"] is None and routed.result["waiting_for_judges"] == 5
        skipped = job_run(job_id=router.route_start(campaign=campaign, dispatch=False, start_judges=False).pk)
        assert skipped.result["judge_run"] is None
    assert not jobs_of(campaign, runs.JOB_KIND).exists()


def test_a_run_asked_to_route_again_starts_the_next_run_and_a_failing_endpoint_ends_the_chain(monkeypatch):
    """Every call fails (a wrong key): nothing is stored, so the judges always owe every item. The run that a
    pass flagged starts one more run; that run and the passes after it start nothing: the chain ends."""
    monkeypatch.setenv("TANDEM_JUDGE_KEY_CHAIN", "wrong")
    campaign = campaign_with_items(n=3)
    with FakeOpenAIServer(api_key="right") as server:
        make_judge(server, campaign, api_key_env="TANDEM_JUDGE_KEY_CHAIN")
        first = judge_run_start(campaign=campaign, scope="routable", dispatch=False)
        Job.objects.filter(pk=first.pk).update(params={**first.params, "route_again": True})  # as a busy pass does
        first = job_run(job_id=first.pk)
        assert first.state == Job.State.SUCCEEDED and first.result["failed"] == 6
        following = jobs_of(campaign, runs.JOB_KIND).exclude(pk=first.pk).get()
        assert first.result["next_judge_run"] == following.pk and following.params["then_route"] is True
        routing_pass = jobs_of(campaign, router.JOB_KIND).get()
        assert first.result["routing_pass"] == routing_pass.pk and routing_pass.params["start_judges"] is False
        following = job_run(job_id=following.pk)
        assert following.result["routing_pass"] is None  # the queued pass will see its (lack of) verdicts
        assert following.result["next_judge_run"] is None
        routed = job_run(job_id=routing_pass.pk)
    assert routed.result["judge_run"] is None and routed.result["waiting_for_judges"] == 3
    assert jobs_of(campaign, runs.JOB_KIND).count() == 2 and jobs_of(campaign, router.JOB_KIND).count() == 1
    chained = (runs.JOB_KIND, router.JOB_KIND)  # (the statistics a run asks for are another matter)
    assert not Job.objects.filter(campaign=campaign, kind__in=chained, state__in=Job.ACTIVE_STATES).exists()
