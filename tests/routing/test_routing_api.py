"""Routing through the API and the campaign's routing pages: roles, settings, passes, overrides, the
forecast of what the budget buys on the stats dashboard, and CSRF on every form."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotate.models import Annotation, Campaign, Item, Job, RoutingDecision
from annotate.services.stats import campaign_stats
from jobs.runner import job_run
from routing.forecast import routing_forecast
from routing.router import JOB_KIND, route_campaign, route_start
from tests.factories import AdminFactory, CampaignFactory, ItemFactory, JudgeFactory, UserFactory

from .test_router import judge_items, judged_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def test_annotators_cannot_see_or_change_routing(annotator_api):
    campaign, _, items = judged_campaign(n=10)
    assert annotator_api.get(f"/api/campaigns/{campaign.slug}/routing/").status_code == 403
    assert annotator_api.post(f"/api/campaigns/{campaign.slug}/route/").status_code == 403
    assert annotator_api.get(f"/api/items/{items[0].pk}/routing/").status_code == 403
    answer = annotator_api.post(f"/api/items/{items[0].pk}/routing/", {"destination": "llm"}, format="json")
    assert answer.status_code == 403
    client = Client()
    client.force_login(UserFactory())
    assert client.get(reverse("campaign-routing", args=[campaign.slug])).status_code == 403


def test_settings_pass_and_override_through_the_api(admin_api):
    campaign, _, items = judged_campaign(n=40, budget=None)
    answer = admin_api.post(f"/api/campaigns/{campaign.slug}/route/")
    assert answer.status_code == 400 and "human_budget" in answer.json()["detail"]
    answer = admin_api.patch(
        f"/api/campaigns/{campaign.slug}/routing/", {"human_budget": 0.5, "routing_params": {"x": 1}}, format="json"
    )
    assert answer.status_code == 400 and "unknown keys" in str(answer.json()["routing_params"])
    answer = admin_api.patch(f"/api/campaigns/{campaign.slug}/routing/", {"human_budget": 0.5}, format="json")
    assert answer.status_code == 200 and answer.json()["human_budget"] == 0.5
    queued = Job.objects.get(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED)  # the budget routes again
    job_run(job_id=queued.pk)
    status = admin_api.get(f"/api/campaigns/{campaign.slug}/routing/").json()
    assert status["destinations"] == {"unrouted": 0, "human": 18, "llm": 20, "both": 2}
    assert status["last_pass"]["state"] == "succeeded" and status["last_pass"]["result"]["decisions_written"] == 40
    item = items[5]
    answer = admin_api.post(
        f"/api/items/{item.pk}/routing/", {"destination": "both", "reason": "tricky"}, format="json"
    )
    assert answer.status_code == 201 and answer.json()["policy"] == "override"
    history = admin_api.get(f"/api/items/{item.pk}/routing/").json()
    assert history["route"] == "both" and history["decisions"][0]["reason"] == "tricky"
    assert history["decisions"][0]["overridden_by"].startswith("admin")
    answer = admin_api.post(f"/api/items/{item.pk}/routing/", {"destination": "robots"}, format="json")
    assert answer.status_code == 400 and "destination" in answer.json()


def test_routing_page_item_page_and_override_form():
    campaign, _, items = judged_campaign(n=30, flipped={4, 5, 6}, policy=Campaign.RoutingPolicy.LEARNED)
    job_run(job_id=route_start(campaign=campaign, dispatch=False, start_judges=False).pk)
    admin = AdminFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    page = client.get(reverse("campaign-routing", args=[campaign.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Items per destination" in html and 'value="learned" selected' in html
    assert "needs 30" in html  # the learned policy says why it is not trained yet
    # A flipped item outside the (random) calibration slice: its reason is the judges' flip.
    item = Item.objects.filter(pk__in=[i.pk for i in items[4:7]]).exclude(route=Item.Route.BOTH).first()
    page = client.get(reverse("campaign-routing-item", args=[campaign.slug, item.pk]))
    assert page.status_code == 200 and "flips when the order is swapped" in page.content.decode()
    assert page.content.decode().count("<td>swapped</td>") == 1  # its judgments, both orders
    url = reverse("campaign-routing-override", args=[campaign.slug, item.pk])
    assert client.post(url, {"destination": "llm"}).status_code == 403  # no CSRF token
    token = page.context["csrf_token"]
    answer = client.post(url, {"destination": "llm", "reason": "judges are fine here", "csrfmiddlewaretoken": token})
    assert answer.status_code == 302
    assert Item.objects.get(pk=item.pk).route == Item.Route.LLM
    assert RoutingDecision.objects.filter(item=item).first().overridden_by == admin
    # Settings from the page: a bad budget is refused with a message, a good one queues a pass.
    settings_url = reverse("campaign-routing-settings", args=[campaign.slug])
    answer = client.post(
        settings_url,
        {
            "routing_policy": "learned",
            "human_budget": "lots",
            "calibration_fraction": "0.05",
            "csrfmiddlewaretoken": token,
        },
        follow=True,
    )
    assert "Human budget: a fraction" in answer.content.decode()
    form = {
        "routing_policy": "random",
        "human_budget": "10",
        "calibration_fraction": "0.1",
        "csrfmiddlewaretoken": token,
    }
    answer = client.post(settings_url, {**form, "train_campaigns": "nope"}, follow=True)
    assert "no campaign nope" in answer.content.decode()
    earlier = CampaignFactory()
    client.post(settings_url, {**form, "train_campaigns": f" {earlier.slug} "})
    campaign.refresh_from_db()
    assert (campaign.routing_policy, campaign.human_budget, campaign.calibration_fraction) == ("random", 10.0, 0.1)
    assert campaign.routing_params["train_campaigns"] == [earlier.slug]
    assert Job.objects.filter(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED).exists()


def test_the_forecast_replays_the_calibration_slice():
    """300 items, 20% in the slice; a 40% budget leaves the policy 60 of the other 240 items (25%). The
    judge is wrong on every tenth item and flips exactly there, so judge_uncertainty at 25% (15 of the
    slice's 60 items) fixes every error the slice shows (about 6, whichever items the slice holds; more
    than 15 would be a 4-sigma draw)."""
    campaign = CampaignFactory(
        routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.4, calibration_fraction=0.2
    )
    judge = JudgeFactory(imported=True)
    campaign.judges.add(judge)
    items = [ItemFactory(campaign=campaign, external_id=f"f{k}") for k in range(300)]
    wrong = {k for k in range(300) if k % 10 == 0}
    judge_items(campaign, judge, items, wrong=wrong, flipped=wrong)
    assert routing_forecast(campaign=campaign)["note"].startswith("no calibration slice yet")
    route_campaign(campaign=campaign)  # a pass alone starts no judge run (routing.chain does)
    annotators = [UserFactory(), UserFactory()]
    for item in Item.objects.filter(campaign=campaign, route=Item.Route.BOTH):
        for annotator in annotators:
            Annotation.objects.create(
                item=item, campaign=campaign, source=Annotation.Source.HUMAN, annotator=annotator, label={"overall": 1}
            )
    forecast = routing_forecast(campaign=campaign)
    assert forecast["n_items"] == 60 and forecast["budget_fraction"] == 0.4 and forecast["rest_fraction"] == 0.25
    assert forecast["all_llm"]["accuracy"] == pytest.approx(1 - len(wrong) / 300, abs=0.1)
    assert forecast["expected"]["accuracy"] == 1.0  # humans agree with each other here; flips = errors
    assert forecast["expected"]["accuracy"] >= forecast["random"]["accuracy"]
    assert [p["budget"] for p in forecast["curve"]["oracle"]] == [0.0, 0.1, 0.25, 0.5, 0.75, 1.0]
    # The dashboard's snapshot carries it, and the page draws it.
    assert campaign_stats(campaign=campaign, bootstrap=0)["routing"]["expected"]["accuracy"] == 1.0
    client = Client()
    client.force_login(AdminFactory())
    client.post(reverse("campaign-stats-recompute", args=[campaign.slug]))
    for job in Job.objects.filter(campaign=campaign, state=Job.State.QUEUED, kind="compute_stats"):
        job_run(job_id=job.pk)
    html = client.get(reverse("campaign-stats", args=[campaign.slug])).content.decode()
    assert "What the human budget buys" in html and 'id="routing-curve"' in html and "100%" in html


def test_patch_checks_the_policy_and_merges_parameters(admin_api):
    earlier = CampaignFactory()
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.ALL_HUMAN, routing_params={"auto_judge": False})
    url = f"/api/campaigns/{campaign.slug}/routing/"
    answer = admin_api.patch(url, {"routing_policy": "random"}, format="json")
    assert answer.status_code == 400 and "human budget" in str(answer.json()["routing_policy"])
    answer = admin_api.patch(url, {"routing_policy": "random", "human_budget": 12.5}, format="json")
    assert answer.status_code == 400 and "whole number" in str(answer.json()["human_budget"])
    answer = admin_api.patch(
        url, {"routing_policy": "learned", "human_budget": 12, "routing_params": {"train_campaigns": [earlier.slug]}},
        format="json",
    )  # fmt: skip
    assert answer.status_code == 200
    assert answer.json()["routing_params"] == {"auto_judge": False, "train_campaigns": [earlier.slug]}


def test_new_labels_schedule_a_relearn_instead_of_dropping_it():
    from routing.api import labels_changed

    campaign, _, _ = judged_campaign(n=10, policy=Campaign.RoutingPolicy.LEARNED)
    job_run(job_id=route_start(campaign=campaign, dispatch=False, start_judges=False).pk)
    labels_changed(campaign=campaign)  # the last pass was a moment ago: one is queued for the window's end
    queued = Job.objects.filter(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED)
    assert queued.count() == 1 and queued.first().params == {"start_judges": False}
    labels_changed(campaign=campaign)
    assert queued.count() == 1


# --- what pushed a decision: RoutingDecision.features on the item page and in the API ---------------------

CONTRIBUTIONS = [
    {"feature": "judge_flipped", "value": 1.0, "contribution": 1.75},
    {"feature": "prompt_chars", "value": 812.0, "contribution": -0.35},
]


def _decisions_with_features(campaign, item):
    """A learned decision that says why, then an admin's override that says nothing of features."""
    RoutingDecision.objects.create(campaign=campaign, item=item, destination="human", policy="learned", score=0.8,
                                   reason="gain 0.8", features=CONTRIBUTIONS)  # fmt: skip
    RoutingDecision.objects.create(campaign=campaign, item=item, destination="both", policy="override", reason="hm")


def test_the_item_page_shows_what_pushed_the_decision_with_signed_contributions():
    campaign = CampaignFactory(preset_name="simple-pairwise")
    item = ItemFactory(campaign=campaign)
    _decisions_with_features(campaign, item)
    client = Client()
    client.force_login(AdminFactory())
    page = client.get(reverse("campaign-routing-item", args=[campaign.slug, item.pk]))
    html = page.content.decode()
    assert "What pushed this decision" in html and 'id="decision-features"' in html
    table = html[html.index('id="decision-features"') :]
    table = table[: table.index("</table>")]
    # Largest first, as stored; signed; in words with the feature's name; an override does not hide the reason.
    assert table.index("judge_flipped") < table.index("prompt_chars")
    assert "+1.750" in table and "-0.350" in table and "flips when the order is swapped" in table
    assert 'class="bar negative"' in table and "Contribution" in table and "The learned decision" in html
    rows = page.context["explained"]["rows"]
    assert [row["width"] for row in rows] == [100, 20]


def test_the_item_page_names_the_judge_signals_that_fired():
    campaign = CampaignFactory(preset_name="simple-pairwise")
    item = ItemFactory(campaign=campaign)
    RoutingDecision.objects.create(campaign=campaign, item=item, destination="human", policy="judge_uncertainty",
                                   features=[{"signal": "judges_disagree", "weight": 1.0}])  # fmt: skip
    client = Client()
    client.force_login(AdminFactory())
    html = client.get(reverse("campaign-routing-item", args=[campaign.slug, item.pk])).content.decode()
    table = html[html.index('id="decision-features"') :]
    assert "<th>Signal</th>" in table and "the judges disagree" in table and "+1.000" in table
    other = ItemFactory(campaign=campaign)
    RoutingDecision.objects.create(campaign=campaign, item=other, destination="human", policy="random")
    html = client.get(reverse("campaign-routing-item", args=[campaign.slug, other.pk])).content.decode()
    assert "What pushed this decision" not in html  # a policy that reads no feature: no table


def test_the_decisions_api_carries_each_decisions_features(admin_api):
    campaign = CampaignFactory(preset_name="simple-pairwise")
    item = ItemFactory(campaign=campaign)
    _decisions_with_features(campaign, item)
    decisions = admin_api.get(reverse("api-item-routing", args=[item.pk])).json()["decisions"]
    assert [d["policy"] for d in decisions] == ["override", "learned"]
    assert decisions[0]["features"] is None and decisions[1]["features"] == CONTRIBUTIONS
    override = admin_api.post(reverse("api-item-routing", args=[item.pk]), {"destination": "llm"}, format="json")
    assert override.status_code == 201 and override.json()["features"] is None


def test_routing_urls_keep_their_names_and_paths_and_resolve_to_routing_views():
    from django.urls import resolve

    pages = {
        "campaign-judges": "judges/", "campaign-judges-runs": "judges/runs/", "campaign-judges-run": "judges/run/",
        "campaign-routing": "routing/", "campaign-routing-pass": "routing/pass/",
        "campaign-routing-route": "routing/route/", "campaign-routing-settings": "routing/settings/",
    }  # fmt: skip
    for name, tail in pages.items():
        assert reverse(name, args=["c1"]) == f"/c/c1/{tail}"
        assert resolve(f"/c/c1/{tail}").func.__module__ == "routing.views"
    assert reverse("campaign-routing-item", args=["c1", 7]) == "/c/c1/routing/items/7/"
    assert reverse("campaign-routing-override", args=["c1", 7]) == "/c/c1/routing/items/7/override/"
    assert reverse("campaign-judges-cancel", args=["c1", 3]) == "/c/c1/judges/runs/3/cancel/"
    api = {
        "api-judges": ([], "/api/judges/"), "api-judge": ([2], "/api/judges/2/"),
        "api-judge-probe": ([2], "/api/judges/2/probe/"), "api-judge-runs": (["c1"], "/api/campaigns/c1/judge-runs/"),
        "api-routing": (["c1"], "/api/campaigns/c1/routing/"), "api-route": (["c1"], "/api/campaigns/c1/route/"),
        "api-item-routing": ([7], "/api/items/7/routing/"), "api-tags": (["c1"], "/api/campaigns/c1/tags/"),
    }  # fmt: skip
    for name, (args, url) in api.items():
        assert reverse(name, args=args) == url
        assert resolve(url).func.view_class.__module__.startswith("routing.api_views.")
    assert reverse("api-job-cancel", args=[5]) == "/api/jobs/5/cancel/"  # any job's cancel stays with the jobs API


def test_the_admins_item_page_lists_each_decisions_features():
    campaign = CampaignFactory(preset_name="simple-pairwise")
    item = ItemFactory(campaign=campaign)
    _decisions_with_features(campaign, item)
    client = Client()
    client.force_login(AdminFactory())
    page = client.get(reverse("admin:annotate_item_change", args=[item.pk]))
    assert page.status_code == 200
    assert "judge_flipped" in page.content.decode() and "1.75" in page.content.decode()
