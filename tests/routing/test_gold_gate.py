"""The gold gate: a judge below the campaign's gold threshold never gets items alone — not from a routing
pass of any policy, an import, an admin's override (page or API) — and the forecast and pages say why."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from annotate.models import Annotation, Campaign, Item, Job, RoutingDecision
from annotate.services.imports import items_import
from jobs.runner import job_run
from routing.forecast import routing_forecast
from routing.router import GOLD_GATE, JOB_KIND, route_campaign, route_override, route_start
from tests.conftest import jsonl, pair
from tests.factories import AdminFactory, CampaignFactory, ItemFactory, JudgeFactory, UserFactory
from tests.fakes.openai_server import FakeOpenAIServer

from .test_judge_runs import make_judge, prefers_good, run
from .test_router import judge_items, judged_campaign

pytestmark = pytest.mark.django_db(transaction=True)

BELOW = "scored 50% on gold (4 of 8 answers, both orders), below the campaign's 80%"


def gold_items(campaign, judge, *, right: int, n: int = 4) -> list[Item]:
    """n gold items (B is better) the judge answers in both orders, right on the first `right` of them."""
    items = [
        ItemFactory(campaign=campaign, external_id=f"gold{k}", gold_label={"overall": 1}, route=Item.Route.UNROUTED)
        for k in range(n)
    ]
    judge_items(campaign, judge, items, wrong=set(range(right, n)))  # judge_items says B (+1) unless wrong
    return items


def llm_items(campaign) -> int:
    return Item.objects.filter(campaign=campaign, route=Item.Route.LLM).count()


@pytest.mark.parametrize(
    "policy",
    [
        Campaign.RoutingPolicy.ALL_LLM,
        Campaign.RoutingPolicy.RANDOM,
        Campaign.RoutingPolicy.JUDGE_UNCERTAINTY,
        Campaign.RoutingPolicy.LEARNED,
    ],
)
def test_a_judge_below_the_threshold_is_never_routed_llm_only(policy):
    campaign, judge, items = judged_campaign(n=60, policy=policy, budget=0.25, judge_gold_threshold=0.8)
    gold_items(campaign, judge, right=2)
    summary = route_campaign(campaign=campaign)
    assert llm_items(campaign) == 0
    assert (
        summary["destinations"]["llm"] == 0 and summary["destinations"]["human"] + summary["destinations"]["both"] == 60
    )
    gate = summary["gold_gate"]
    assert gate["allowed"] is False and gate["to_humans"] > 0 and BELOW in gate["reason"]
    assert summary["over_budget"] >= gate["to_humans"]
    gated = RoutingDecision.objects.filter(campaign=campaign, policy=GOLD_GATE)
    assert gated.count() == gate["to_humans"]
    assert all(d.destination == "human" and judge.name in d.reason and BELOW in d.reason for d in gated)
    # Gold items are never routed, gate or not.
    assert not RoutingDecision.objects.filter(item__gold_label__isnull=False).exists()
    # The judge scores better once it is right more often: the gate opens and the policy routes as usual.
    Annotation.objects.filter(item__campaign=campaign, item__gold_label__isnull=False).update(label={"overall": 1})
    summary = route_campaign(campaign=campaign)
    assert summary["gold_gate"]["allowed"] is True and summary["gold_gate"]["to_humans"] == 0
    assert llm_items(campaign) > 0


def test_a_judge_without_gold_answers_does_not_qualify_and_no_threshold_sets_no_gate():
    campaign, judge, _ = judged_campaign(n=20, policy=Campaign.RoutingPolicy.ALL_LLM, judge_gold_threshold=0.5)
    summary = route_campaign(campaign=campaign)
    assert llm_items(campaign) == 0 and "has no answer on this campaign's gold items" in summary["gold_gate"]["reason"]
    Campaign.objects.filter(pk=campaign.pk).update(judge_gold_threshold=None)
    campaign.refresh_from_db()
    summary = route_campaign(campaign=campaign)
    assert summary["gold_gate"]["allowed"] is True and llm_items(campaign) == 19  # one is in the calibration slice


def test_an_override_to_the_judges_alone_is_refused_and_an_old_one_is_undone():
    campaign, judge, items = judged_campaign(n=20, policy=Campaign.RoutingPolicy.ALL_HUMAN)
    gold_items(campaign, judge, right=2)
    admin = AdminFactory()
    route_campaign(campaign=campaign)
    older = Item.objects.get(campaign=campaign, external_id="i3")
    route_override(item=older, destination=Item.Route.LLM, user=admin, reason="before the gate")  # no threshold yet
    Campaign.objects.filter(pk=campaign.pk).update(judge_gold_threshold=0.8)
    campaign.refresh_from_db()
    item = Item.objects.get(campaign=campaign, external_id="i4")
    with pytest.raises(
        ValueError, match=re.escape(f"item i4 cannot go to the judges alone: judge {judge.name} {BELOW}")
    ):
        route_override(item=item, destination=Item.Route.LLM, user=admin)
    route_override(item=item, destination=Item.Route.BOTH, user=admin)  # humans included: allowed
    # The page refuses with the same words and shows why beside the form.
    client = Client()
    client.force_login(admin)
    other = Item.objects.get(campaign=campaign, external_id="i5")
    url = reverse("campaign-routing-override", args=[campaign.slug, other.pk])
    page = html.unescape(client.post(url, {"destination": "llm"}, follow=True).content.decode())
    assert "cannot go to the judges alone" in page and BELOW in page and 'id="override-gold-gate"' in page
    # The API refuses too.
    api = Client()
    api.force_login(admin)
    answer = api.post(f"/api/items/{other.pk}/routing/", {"destination": "llm"}, content_type="application/json")
    assert answer.status_code == 400 and BELOW in answer.json()["destination"][0]
    assert Item.objects.get(pk=other.pk).route != Item.Route.LLM
    # An override made before the threshold does not keep an item with the judges alone.
    route_campaign(campaign=campaign)
    assert Item.objects.get(pk=older.pk).route == Item.Route.HUMAN and llm_items(campaign) == 0
    assert RoutingDecision.objects.filter(item=older).first().policy == GOLD_GATE


def test_imports_under_all_llm_go_to_humans_while_the_gate_is_closed():
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.ALL_LLM, judge_gold_threshold=0.7)
    judge = JudgeFactory(base_url="http://127.0.0.1:9/v1")  # an endpoint, no gold answers yet
    campaign.judges.add(judge)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(5)]), filename="items.jsonl")
    assert set(Item.objects.filter(campaign=campaign).values_list("route", flat=True)) == {Item.Route.HUMAN}
    decisions = RoutingDecision.objects.filter(campaign=campaign)
    assert decisions.count() == 5 and set(decisions.values_list("policy", flat=True)) == {GOLD_GATE}
    assert "has no answer on this campaign's gold items" in decisions.first().reason
    # Without a threshold, the same import goes to the judges.
    Campaign.objects.filter(pk=campaign.pk).update(judge_gold_threshold=None)
    campaign.refresh_from_db()
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(5, 8)]), filename="more.jsonl")
    assert Item.objects.filter(campaign=campaign, route=Item.Route.LLM).count() == 3


def test_the_forecast_calls_the_same_gate():
    """The forecast replays the calibration slice: with the gate closed the pass gives every item to humans,
    so the expected agreement is the all-human one and the note says why."""
    campaign = CampaignFactory(
        routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.4, calibration_fraction=0.2
    )
    judge = JudgeFactory(imported=True)
    campaign.judges.add(judge)
    items = [ItemFactory(campaign=campaign, external_id=f"f{k}") for k in range(150)]
    wrong = {k for k in range(150) if k % 5 == 0}
    judge_items(campaign, judge, items, wrong=wrong)
    gold_items(campaign, judge, right=2)
    route_campaign(campaign=campaign)
    annotators = [UserFactory(), UserFactory()]
    for item in Item.objects.filter(campaign=campaign, route=Item.Route.BOTH):
        for annotator in annotators:
            Annotation.objects.create(
                item=item, campaign=campaign, source=Annotation.Source.HUMAN, annotator=annotator, label={"overall": 1}
            )
    opened = routing_forecast(campaign=campaign)
    assert opened["gold_gate"]["allowed"] is True and opened["expected"]["accuracy"] < 1.0  # judges err on 20%
    Campaign.objects.filter(pk=campaign.pk).update(judge_gold_threshold=0.8)
    campaign.refresh_from_db()
    closed = routing_forecast(campaign=campaign)
    assert closed["gold_gate"]["allowed"] is False and BELOW in closed["gold_gate"]["reason"]
    assert closed["expected"] == closed["all_human"] and closed["budget_fraction"] == 1.0
    assert closed["note"].startswith("the gold gate sends every item to humans")
    # The pass it forecasts does what it says.
    route_campaign(campaign=campaign)
    assert llm_items(campaign) == 0


def test_the_routing_and_judges_pages_say_who_qualifies_and_why():
    campaign, judge, _ = judged_campaign(n=10, policy=Campaign.RoutingPolicy.ALL_LLM, judge_gold_threshold=0.8)
    gold_items(campaign, judge, right=2)
    job_run(job_id=route_start(campaign=campaign, dispatch=False, start_judges=False).pk)
    client = Client()
    client.force_login(AdminFactory())
    page = html.unescape(client.get(reverse("campaign-routing", args=[campaign.slug])).content.decode())
    assert 'id="gold-scores"' in page and "does not qualify" in page and BELOW in page
    assert "No item goes to the judges alone" in page and 'id="pass-gold-gate"' in page
    judges = client.get(reverse("campaign-judges", args=[campaign.slug])).content.decode()
    assert '<option value="gold">the gold items (both orders), to score the judges</option>' in judges
    assert 'id="gold-scores"' in judges
    status = client.get(f"/api/campaigns/{campaign.slug}/routing/").json()
    assert status["gold_gate"]["allowed"] is False and BELOW in status["gold_gate"]["reason"]


def test_a_gold_run_asks_for_a_routing_pass_that_applies_the_new_scores():
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.ALL_LLM, judge_gold_threshold=0.8)
    for k in range(4):
        good_first = k % 2 == 0
        ItemFactory(
            campaign=campaign,
            external_id=f"g{k}",
            response_a="GOOD one" if good_first else "weak one",
            response_b="weak one" if good_first else "GOOD one",
            gold_label={"overall": -1 if good_first else 1},
        )
    ItemFactory(campaign=campaign, external_id="w0", route=Item.Route.HUMAN)
    with FakeOpenAIServer(answer=prefers_good) as server:
        make_judge(server, campaign)
        Job.objects.filter(campaign=campaign, kind=JOB_KIND).delete()
        job = run(campaign, scope="gold")
    assert job.state == Job.State.SUCCEEDED, job.error
    queued = Job.objects.filter(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED)
    assert queued.count() == 1
    summary = route_campaign(campaign=campaign)
    assert summary["gold_gate"]["allowed"] is True and "scored 100% on gold" in summary["gold_gate"]["reason"]


def test_a_new_gold_threshold_asks_for_a_routing_pass():
    from annotate.services.campaigns import campaign_update

    campaign, judge, _ = judged_campaign(n=10, policy=Campaign.RoutingPolicy.ALL_LLM, budget=0.25)
    Job.objects.filter(campaign=campaign, kind=JOB_KIND).delete()
    campaign_update(campaign=campaign, name="Renamed")  # routing depends on nothing that changed
    assert not Job.objects.filter(campaign=campaign, kind=JOB_KIND).exists()
    campaign_update(campaign=campaign, judge_gold_threshold=0.8)
    assert Job.objects.filter(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED).count() == 1


def test_imported_judge_labels_ask_for_a_pass_when_the_gate_is_on():
    from routing.api import labels_imported

    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.ALL_LLM, judge_gold_threshold=0.8)
    ItemFactory(campaign=campaign, external_id="w0")
    Job.objects.filter(campaign=campaign, kind=JOB_KIND).delete()
    labels_imported(campaign=campaign)
    assert Job.objects.filter(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED).count() == 1
