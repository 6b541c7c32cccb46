"""The campaign router: policies over a live campaign, the calibration slice, incremental passes,
overrides, what is never revoked, the learned policy's training, and the `route` command."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate.models import Annotation, Campaign, Item, Job, RoutingDecision
from jobs.registry import JobFailed
from jobs.runner import job_run
from routing import reads, router
from routing.router import CALIBRATION, OVERRIDE, route_campaign, route_override
from tests.factories import AdminFactory, CampaignFactory, ItemFactory, JudgeFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def judged_campaign(n: int = 100, *, policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, budget=0.25, flipped=(), **kw):
    """n items judged by an imported judge in both orders; the items in `flipped` flip with the order."""
    campaign = CampaignFactory(routing_policy=policy, human_budget=budget, calibration_fraction=0.05, **kw)
    judge = JudgeFactory(imported=True)
    campaign.judges.add(judge)
    items = [ItemFactory(campaign=campaign, external_id=f"i{k}") for k in range(n)]
    judge_items(campaign, judge, items, flipped=set(flipped))
    return campaign, judge, items


def judge_items(campaign, judge, items, *, flipped=frozenset(), wrong=frozenset()):
    rows = []
    for k, item in enumerate(items):
        verdict = -1 if k in wrong else 1
        for swapped in (False, True):
            label = {"overall": -verdict if (swapped and k in flipped) else verdict}
            rows.append(
                Annotation(
                    item=item, campaign=campaign, source=Annotation.Source.JUDGE, judge=judge, label=label,
                    position_swapped=swapped, prompt_version="v1",
                )
            )  # fmt: skip
    Annotation.objects.bulk_create(rows)


def routes(campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for route in Item.objects.filter(campaign=campaign, gold_label__isnull=True).values_list("route", flat=True):
        counts[route] = counts.get(route, 0) + 1
    return counts


def label(item, annotator, overall: int) -> None:
    Annotation.objects.create(
        item=item,
        campaign=item.campaign,
        source=Annotation.Source.HUMAN,
        annotator=annotator,
        label={"overall": overall},
    )
    Item.objects.filter(pk=item.pk).update(human_label_count=1, assigned_count=1)


def test_judge_uncertainty_spends_the_budget_on_flips_and_keeps_a_calibration_slice():
    flipped = set(range(0, 100, 7))  # 15 items
    campaign, _, items = judged_campaign(flipped=flipped)
    summary = route_campaign(campaign=campaign)
    assert summary["destinations"] == {"unrouted": 0, "human": 20, "llm": 75, "both": 5}
    assert summary["calibration"]["items"] == 5 and summary["human_items_target"] == 25
    both = set(Item.objects.filter(campaign=campaign, route=Item.Route.BOTH).values_list("pk", flat=True))
    human = set(Item.objects.filter(campaign=campaign, route=Item.Route.HUMAN).values_list("pk", flat=True))
    flipped_ids = {items[k].pk for k in flipped}
    assert flipped_ids - both <= human  # every flip outside the slice went to humans
    # Every item has a decision with its reason; flips say why.
    assert RoutingDecision.objects.filter(campaign=campaign).count() == 100
    decision = RoutingDecision.objects.filter(item_id=min(flipped_ids - both)).first()
    assert decision.destination == "human" and decision.policy == "judge_uncertainty"
    assert (
        "flips when the order is swapped" in decision.reason and decision.score == 9.0
    )  # flip (8) + the tie it leaves (1)
    slice_reason = RoutingDecision.objects.filter(item_id__in=both).first()
    assert slice_reason.policy == CALIBRATION and "calibration slice" in slice_reason.reason
    # A second pass with nothing new changes nothing and writes nothing.
    again = route_campaign(campaign=campaign)
    assert again["decisions_written"] == 0 and again["destinations"] == summary["destinations"]


def test_new_items_are_routed_and_a_raised_budget_never_revokes_labels():
    campaign, judge, items = judged_campaign(n=100)
    route_campaign(campaign=campaign)
    humans = list(Item.objects.filter(campaign=campaign, route=Item.Route.HUMAN).order_by("pk"))
    annotator = UserFactory()
    for item in humans[:10]:
        label(item, annotator, 1)
    # 20 more items arrive: the slice grows to 6 of 120, the target to 30.
    more = [ItemFactory(campaign=campaign, external_id=f"new{k}") for k in range(20)]
    judge_items(campaign, judge, more)
    summary = route_campaign(campaign=campaign)
    assert summary["calibration"]["items"] == 6 and summary["destinations"]["unrouted"] == 0
    assert summary["destinations"]["human"] + summary["destinations"]["both"] == 30
    # The slice's new item is drawn from every item the policy may move, a labelled one included (it stays with
    # humans and the judges label it too): which one depends on the item ids, so count what the draw took.
    labelled = Item.objects.filter(pk__in=[i.pk for i in humans[:10]])
    in_slice = labelled.filter(route=Item.Route.BOTH).count()
    # Lower the budget to 5%: the labelled items stay with humans, the unlabelled ones go to the judges.
    campaign.human_budget = 0.05
    campaign.save()
    summary = route_campaign(campaign=campaign)
    assert labelled.filter(route=Item.Route.HUMAN).count() == 10 - in_slice
    assert labelled.filter(route=Item.Route.BOTH).count() == in_slice
    assert summary["kept_for_humans"] == 10 - in_slice
    assert summary["destinations"]["human"] == 10 - in_slice and summary["destinations"]["both"] == 6
    # Raise it to half: more items to humans, nothing revoked.
    campaign.human_budget = 0.5
    campaign.save()
    summary = route_campaign(campaign=campaign)
    assert summary["destinations"]["human"] + summary["destinations"]["both"] == 60


def test_a_leased_item_is_never_taken_from_its_annotator():
    campaign, _, _ = judged_campaign(n=40, budget=0.5)
    route_campaign(campaign=campaign)
    leased = Item.objects.filter(campaign=campaign, route=Item.Route.HUMAN).first()
    Item.objects.filter(pk=leased.pk).update(assigned_count=1)
    campaign.human_budget = 0.0
    campaign.save()
    route_campaign(campaign=campaign)
    assert Item.objects.get(pk=leased.pk).route == Item.Route.HUMAN
    # The guard holds even when the pass read the item before the lease was taken.
    free = Item.objects.filter(campaign=campaign, route=Item.Route.BOTH).first()
    Item.objects.filter(pk=free.pk).update(route=Item.Route.HUMAN, assigned_count=1)
    assert router._move(campaign, [free.pk], Item.Route.LLM, was=Item.Route.HUMAN) == []
    # Compare-and-set: an item whose route changed since the pass read it stays where it is now.
    other = Item.objects.filter(campaign=campaign, route=Item.Route.LLM).first()
    assert router._move(campaign, [other.pk], Item.Route.HUMAN, was=Item.Route.BOTH) == []
    assert router._move(campaign, [other.pk], Item.Route.HUMAN, was=Item.Route.LLM) == [other.pk]


def test_an_override_holds_until_the_next_override():
    campaign, _, _ = judged_campaign(n=40, flipped={1})
    admin = AdminFactory()
    route_campaign(campaign=campaign)
    item = Item.objects.get(campaign=campaign, external_id="i1")
    target = Item.Route.LLM if item.route != Item.Route.LLM else Item.Route.HUMAN
    decision = route_override(item=item, destination=target, user=admin, reason="checked it myself")
    assert decision.policy == OVERRIDE and decision.overridden_by == admin
    route_campaign(campaign=campaign)
    assert Item.objects.get(pk=item.pk).route == target
    assert RoutingDecision.objects.filter(item=item).first().pk == decision.pk
    with pytest.raises(ValueError, match="destination must be one of"):
        route_override(item=item, destination="robots", user=admin)


def test_random_is_a_stable_draw_of_exactly_the_budget():
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.RANDOM, human_budget=30.0)
    for k in range(200):
        ItemFactory(campaign=campaign, external_id=f"r{k}")
    summary = route_campaign(campaign=campaign)
    assert summary["human_items_target"] == 30
    assert summary["destinations"] == {"unrouted": 0, "human": 20, "llm": 170, "both": 10}
    assert route_campaign(campaign=campaign)["decisions_written"] == 0
    assert RoutingDecision.objects.filter(campaign=campaign, policy="random", destination="human").count() == 20


def test_judge_first_items_wait_for_a_verdict():
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.5)
    for k in range(20):
        ItemFactory(campaign=campaign, external_id=f"w{k}")
    summary = route_campaign(campaign=campaign)
    assert summary["waiting_for_judges"] == 19  # one is in the calibration slice
    assert summary["destinations"]["unrouted"] == 19
    assert "judge_run" not in summary and "note" not in summary  # the judge chain is the route job's follow-up
    # The pass as a job: its follow-up (routing.chain) finds no judge to start and says so.
    job = job_run(job_id=router.route_start(campaign=campaign, dispatch=False, start_judges=True).pk)
    assert job.state == Job.State.SUCCEEDED and job.result["waiting_for_judges"] == 19
    assert job.result["judge_run"] is None and "no active judge" in job.result["note"]


def test_unusable_verdicts_go_to_humans_first():
    campaign, judge, items = judged_campaign(n=20, budget=0.1)
    Annotation.objects.filter(item=items[3]).update(label=None, parse_failed=True)
    route_campaign(campaign=campaign)
    item = Item.objects.get(pk=items[3].pk)
    assert item.route in (Item.Route.HUMAN, Item.Route.BOTH)
    if item.route == Item.Route.HUMAN:
        assert "no usable verdict" in RoutingDecision.objects.filter(item=item).first().reason


def test_a_budgeted_policy_needs_a_budget():
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.RANDOM, human_budget=None)
    with pytest.raises(JobFailed, match="set human_budget"):
        route_campaign(campaign=campaign)
    with pytest.raises(CommandError, match="human_budget"):
        call_command("route", campaign.slug, "--sync")


def test_learned_falls_back_until_trained_then_learns_what_the_judges_miss():
    campaign, judge, items = judged_campaign(n=300, policy=Campaign.RoutingPolicy.LEARNED, budget=0.2)
    summary = route_campaign(campaign=campaign)
    assert "needs 30" in summary["learned"]["fallback"]
    # An earlier campaign where the judge is wrong on every safety-flagged item teaches the policy.
    earlier = CampaignFactory(routing_policy=Campaign.RoutingPolicy.ALL_HUMAN)
    old_judge = JudgeFactory(imported=True)
    annotator = UserFactory()
    old = []
    for k in range(120):
        risky = k % 4 == 0
        old.append(ItemFactory(campaign=earlier, external_id=f"o{k}", metadata={"safety": "high" if risky else "low"}))
    judge_items(earlier, old_judge, old, wrong={k for k in range(120) if k % 4 == 0})
    for item in old:
        label(item, annotator, 1)
    for k, item in enumerate(items):
        Item.objects.filter(pk=item.pk).update(metadata={"safety": "high" if k % 10 == 0 else "low"})
    campaign.routing_params = {"train_campaigns": [earlier.slug]}
    campaign.save()
    summary = route_campaign(campaign=campaign)
    learned = summary["learned"]
    assert learned["fallback"] == "" and learned["training_items"] == 120
    assert learned["judge_error_rate"] == pytest.approx(0.25)
    assert next(iter(learned["importances"])) in ("tag:safety=high", "tag:safety=low")
    risky = [i.pk for k, i in enumerate(items) if k % 10 == 0]
    # The 30 risky items fill the 60-item budget before anything else (minus those in the slice: both).
    assert Item.objects.filter(pk__in=risky, route__in=(Item.Route.HUMAN, Item.Route.BOTH)).count() == 30
    # Those the trained model moved say why (some were already with humans after the first pass).
    moved = RoutingDecision.objects.filter(item_id__in=risky, policy="learned", reason__contains="P(judges differ")
    assert moved.count() >= 10
    with pytest.raises(JobFailed, match="no campaign 'nope'"):
        campaign.routing_params = {"train_campaigns": ["nope"]}
        route_campaign(campaign=campaign)


def test_route_command_prints_the_summary(capsys):
    campaign, _, _ = judged_campaign(n=40, flipped={2, 3})
    call_command("route", campaign.slug, "--sync")
    summary = json.loads(capsys.readouterr().out)
    assert summary["state"] == "succeeded" and summary["policy"] == "judge_uncertainty"
    assert summary["destinations"] == {"unrouted": 0, "human": 8, "llm": 30, "both": 2}
    with pytest.raises(CommandError, match="no campaign"):
        call_command("route", "no-such-campaign", "--sync")


def test_a_pass_is_a_job_and_import_asks_for_one():
    from annotate.services.imports.items import items_import

    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.RANDOM, human_budget=0.5)
    lines = [json.dumps({"id": f"a{k}", "prompt": "p", "response_a": "x", "response_b": "y"}) for k in range(10)]
    items_import(campaign=campaign, stream=io.BytesIO("\n".join(lines).encode()), filename="items.jsonl")
    queued = Job.objects.get(campaign=campaign, kind=router.JOB_KIND)
    assert queued.state == Job.State.QUEUED
    assert router.route_request(campaign=campaign) is None  # the queued pass will see what comes next
    job = job_run(job_id=queued.pk)
    assert job.state == Job.State.SUCCEEDED and job.result["destinations"]["unrouted"] == 0


def test_rubric_items_where_the_judges_disagree_go_to_humans():
    campaign = CampaignFactory(
        preset_name="prometheus", routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.2,
        calibration_fraction=0.0,
    )  # fmt: skip
    key = campaign.label_schema["rubric"]["criteria"][0]["name"]
    judges = [JudgeFactory(imported=True), JudgeFactory(imported=True)]
    items = [ItemFactory(campaign=campaign, external_id=f"r{k}", response="An answer.") for k in range(50)]
    disputed = {k for k in range(50) if k % 5 == 0}
    rows = []
    for k, item in enumerate(items):
        for n, judge in enumerate(judges):
            score = 1 if (k in disputed and n == 1) else 4
            rows.append(Annotation(item=item, campaign=campaign, source="judge", judge=judge, label={key: score},
                                   position_swapped=False, prompt_version="v1"))  # fmt: skip
    Annotation.objects.bulk_create(rows)
    summary = route_campaign(campaign=campaign)
    assert summary["destinations"] == {"unrouted": 0, "human": 10, "llm": 40, "both": 0}
    routed = set(Item.objects.filter(campaign=campaign, route=Item.Route.HUMAN).values_list("pk", flat=True))
    assert routed == {items[k].pk for k in disputed}
    assert "the judges disagree" in RoutingDecision.objects.filter(item=items[0]).first().reason


def test_a_campaign_of_both_kinds_is_routed_by_judge_uncertainty():
    """Pairwise + rubric in one label: flips and disagreement on the pair, and judges a point or more apart on
    a response's rubric score, both make an item uncertain."""
    campaign = CampaignFactory(
        preset_name="simple-pairwise", routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.2,
        calibration_fraction=0.0,
    )  # fmt: skip
    schema = {**campaign.label_schema, "rubric": {"criteria": [{"name": "helpful", "min": 1, "max": 5}]}}
    Campaign.objects.filter(pk=campaign.pk).update(kind=Campaign.Kind.BOTH, label_schema=schema)
    campaign.refresh_from_db()
    router.route_check(campaign)  # no longer refused
    judges = [JudgeFactory(imported=True), JudgeFactory(imported=True)]
    items = [ItemFactory(campaign=campaign, external_id=f"b{k}") for k in range(50)]
    flipped, scored_apart = {0, 5, 10, 15, 20}, {25, 30, 35, 40, 45}
    rows = []
    for k, item in enumerate(items):
        for n, judge in enumerate(judges):
            for swapped in (False, True):
                overall = -1 if (k in flipped and swapped) else 1
                helpful_b = 1 if (k in scored_apart and n == 1) else 4
                label = {"overall": overall, "helpful_a": 3, "helpful_b": helpful_b}
                rows.append(Annotation(item=item, campaign=campaign, source="judge", judge=judge, label=label,
                                       position_swapped=swapped, prompt_version="v1"))  # fmt: skip
    Annotation.objects.bulk_create(rows)
    summary = route_campaign(campaign=campaign)
    assert summary["destinations"] == {"unrouted": 0, "human": 10, "llm": 40, "both": 0}
    routed = set(Item.objects.filter(campaign=campaign, route=Item.Route.HUMAN).values_list("pk", flat=True))
    assert routed == {items[k].pk for k in flipped | scored_apart}
    assert "flips when the order is swapped" in RoutingDecision.objects.filter(item=items[0]).first().reason
    apart = RoutingDecision.objects.filter(item=items[25]).first()
    assert "the judges disagree" in apart.reason and apart.features == [{"signal": "disagree", "weight": 4.0}]


def test_learned_with_embeddings_needs_the_optional_model(monkeypatch):
    from routing import features

    campaign, _, items = judged_campaign(n=60, policy=Campaign.RoutingPolicy.LEARNED, budget=0.3)
    annotator = UserFactory()
    for k, item in enumerate(items[:40]):
        label(item, annotator, -1 if k % 3 == 0 else 1)  # the judge says 1: wrong on a third
    campaign.routing_params = {"embeddings": True}
    campaign.save()
    monkeypatch.setattr(features, "embeddings_available", lambda: False)
    with pytest.raises(JobFailed, match="routing_params.embeddings: embedding features need the optional model"):
        route_campaign(campaign=campaign)


@pytest.mark.skipif(
    not __import__("routing.embeddings").embeddings.embeddings_available(), reason="no embeddings extra"
)
def test_learned_with_the_bundled_embedding_model():
    campaign, _, items = judged_campaign(n=60, policy=Campaign.RoutingPolicy.LEARNED, budget=0.3)
    annotator = UserFactory()
    for k, item in enumerate(items):
        Item.objects.filter(pk=item.pk).update(response_b="First response." if k % 3 == 0 else "Something else.")
    for k, item in enumerate(items[:40]):
        label(item, annotator, -1 if k % 3 == 0 else 1)  # the judge is wrong where the responses are identical
    campaign.routing_params = {"embeddings": True}
    campaign.save()
    summary = route_campaign(campaign=campaign)
    assert summary["learned"]["fallback"] == "" and "embedding_similarity" in summary["learned"]["importances"]
    assert summary["learned"]["importances"]["embedding_similarity"] > 0


def test_a_pass_never_undoes_an_override_made_while_it_ran():
    from django.utils import timezone

    campaign, _, _ = judged_campaign(n=20)
    route_campaign(campaign=campaign)
    item = Item.objects.filter(campaign=campaign, route=Item.Route.LLM).first()
    started = timezone.now()
    route_override(item=item, destination=Item.Route.LLM, user=AdminFactory(), reason="keep it with the judges")
    # The pass read the item as llm and wants it with humans: the override made since it began wins.
    assert router._move(campaign, [item.pk], Item.Route.HUMAN, was=Item.Route.LLM, since=started) == []
    assert router._move(campaign, [item.pk], Item.Route.HUMAN, was=Item.Route.LLM, since=timezone.now()) == [item.pk]


def test_switching_to_a_judge_first_policy_judges_the_items_humans_have_not_touched():
    from routing.judges.runs import run_items

    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.ALL_HUMAN)
    items = [ItemFactory(campaign=campaign, external_id=f"s{k}", route=Item.Route.HUMAN) for k in range(10)]
    label(items[0], UserFactory(), 1)
    Item.objects.filter(pk=items[1].pk).update(assigned_count=1)  # leased
    routable = set(run_items(campaign=campaign, scope="routable").values_list("pk", flat=True))
    assert routable == {i.pk for i in items[2:]}
    campaign.routing_policy, campaign.human_budget = Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, 0.5
    campaign.calibration_fraction = 0.0
    campaign.save()
    summary = route_campaign(campaign=campaign)
    assert summary["waiting_for_judges"] == 8 and summary["kept_for_humans"] == 2


def test_a_busy_judge_run_is_asked_to_route_with_judges_again(monkeypatch):
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.5)
    campaign.judges.add(JudgeFactory(base_url="http://127.0.0.1:9/v1", model="m"))
    ItemFactory(campaign=campaign, external_id="late")
    busy = Job.objects.create(
        kind="judge_run", campaign=campaign, state=Job.State.RUNNING, params={"scope": "routable"}
    )
    job = job_run(job_id=router.route_start(campaign=campaign, dispatch=False, start_judges=True).pk)
    assert job.result["judge_run"] is None and "wait for the judge run in progress" in job.result["note"]
    busy.refresh_from_db()
    assert busy.params["route_again"] is True and busy.params["scope"] == "routable"


def test_judges_that_split_are_ranked_within_the_budget_and_failures_go_first():
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.1,
                               calibration_fraction=0.0)  # fmt: skip
    a, b = JudgeFactory(imported=True), JudgeFactory(imported=True)
    items = [ItemFactory(campaign=campaign, external_id=f"d{k}") for k in range(100)]
    rows = []
    for k, item in enumerate(items):
        for judge, value in ((a, 1), (b, -1 if k % 5 == 0 else 1)):  # they split on 20 items
            failed = k < 3 and judge == b  # and b's output did not parse on 3 items
            rows.append(Annotation(item=item, campaign=campaign, source="judge", judge=judge, position_swapped=False,
                                   label=None if failed else {"overall": value}, parse_failed=failed,
                                   prompt_version="v1"))  # fmt: skip
    Annotation.objects.bulk_create(rows)
    summary = route_campaign(campaign=campaign)
    assert summary["destinations"]["human"] == 10 and summary["over_budget"] == 0  # not 20 + 3
    Annotation.objects.filter(item__in=items[:12], judge=a).update(label=None, parse_failed=True)
    Annotation.objects.filter(item__in=items[:12], judge=b).update(label=None, parse_failed=True)
    summary = route_campaign(campaign=campaign)
    assert summary["unusable_verdicts"] == 12 and summary["over_budget"] == 2
    assert Item.objects.filter(pk__in=[i.pk for i in items[:12]], route=Item.Route.HUMAN).count() == 12


def test_random_keeps_items_the_judges_could_not_label_with_humans():
    from annotate.models import JudgeVerdict

    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.RANDOM, human_budget=0.1, calibration_fraction=0)
    judge = JudgeFactory(imported=True)
    items = [ItemFactory(campaign=campaign, external_id=f"u{k}") for k in range(50)]
    judge_items(campaign, judge, items)
    stuck = items[7]
    JudgeVerdict.objects.create(campaign=campaign, item=stuck, label=None, n_judgments=2, n_parse_failures=2)
    route_campaign(campaign=campaign)
    assert Item.objects.get(pk=stuck.pk).route == Item.Route.HUMAN
    assert Item.objects.filter(campaign=campaign, route=Item.Route.HUMAN).count() == 5


def test_judgments_from_an_old_prompt_version_do_not_count():
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.2,
                               calibration_fraction=0)  # fmt: skip
    judge = JudgeFactory(base_url="http://127.0.0.1:9/v1", model="m")
    campaign.judges.add(judge)
    current = reads.stale_judgments(campaign)
    items = [ItemFactory(campaign=campaign, external_id=f"v{k}") for k in range(10)]
    from routing.judges.templates import template_for

    version = template_for(name=judge.prompt_template, override=judge.prompt_override, kind=campaign.kind).version
    for item in items:
        for swapped in (False, True):
            for v, label_value in ((version, 1), ("an-old-prompt", -1 if swapped else 1)):  # the old one flipped
                Annotation.objects.create(
                    item=item,
                    campaign=campaign,
                    source="judge",
                    judge=judge,
                    position_swapped=swapped,
                    prompt_version=v,
                    label={"overall": label_value},
                )
    signals = router.judge_signal_map(campaign, [i.pk for i in items])
    assert not any(sig["flipped"] or sig["disagree"] for sig in signals.values())
    assert len(reads.judge_labels([items[0].pk], exclude=current)[items[0].pk]) == 1


def test_route_sync_runs_the_judges_it_waits_for_then_routes(capsys):
    from routing.judges.services import judge_create
    from tests.fakes.openai_server import FakeOpenAIServer

    def answer(request: dict) -> str:
        text = "\n".join(m["content"] for m in request["messages"])
        return "overall: [[A>B]]" if "HARD" in text else "Both are fine.\n\noverall: [[A=B]]"  # HARD: first shown wins

    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.25,
                               calibration_fraction=0.0)  # fmt: skip
    for k in range(20):
        ItemFactory(campaign=campaign, external_id=f"y{k}", response_a=("HARD " if k < 5 else "") + f"a{k}")
    with FakeOpenAIServer(answer=answer) as server:
        judge = judge_create(name="sync-judge", base_url=server.base_url, model="m", probe=False,
                             requests_per_minute=600_000, concurrency=8)  # fmt: skip
        campaign.judges.add(judge)
        call_command("route", campaign.slug, "--sync")
    summary = json.loads(capsys.readouterr().out)
    assert summary["state"] == "succeeded" and summary["judge_run"] and summary["waiting_for_judges"] == 0
    assert summary["destinations"] == {"unrouted": 0, "human": 5, "llm": 15, "both": 0}
    hard = Item.objects.filter(campaign=campaign, external_id__in=[f"y{k}" for k in range(5)])
    assert {item.route for item in hard} == {Item.Route.HUMAN}
    # Everything ran here: no pass was left queued for a worker.
    assert not Job.objects.filter(campaign=campaign, kind=router.JOB_KIND, state=Job.State.QUEUED).exists()


def test_imported_judge_labels_ask_for_a_routing_pass():
    from annotate.services.imports import annotations_import

    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, human_budget=0.5)
    for k in range(4):
        ItemFactory(campaign=campaign, external_id=f"im{k}")
    assert route_campaign(campaign=campaign)["waiting_for_judges"] == 4
    lines = [
        json.dumps({"item": f"im{k}", "judge": "imported-gpt", "label": {"overall": 1}, "position_swapped": swapped})
        for k in range(4)
        for swapped in (False, True)
    ]
    annotations_import(campaign=campaign, stream=io.BytesIO("\n".join(lines).encode()), filename="judges.jsonl")
    queued = Job.objects.get(campaign=campaign, kind=router.JOB_KIND, state=Job.State.QUEUED)
    assert job_run(job_id=queued.pk).result["waiting_for_judges"] == 0


def test_learned_reads_the_cached_prompt_tags_and_says_which_pushed_an_item():
    """With a tagger set, the pass reads each item's HyPER tags from the cache (`ItemTags`, the current prompt
    version): the model learns that the judge fails on expert prompts, and the decisions name that tag."""
    from annotate.models import ItemTags
    from routing.tagger.prompt import PROMPT_VERSION

    campaign, judge, items = judged_campaign(n=200, policy=Campaign.RoutingPolicy.LEARNED, budget=0.25)
    tagger = JudgeFactory(name="tagger")
    campaign.judges.add(tagger)
    annotator = UserFactory()
    expert = {k for k in range(200) if k % 5 == 0}
    tags = []
    for k, item in enumerate(items):
        level = 5 if k in expert else 1
        tags.append(
            ItemTags(
                item=item, campaign=campaign, prompt_version=PROMPT_VERSION, tagger=tagger,
                tags={"subject": "other", "expertise_level": level, "open_endedness": 2, "safety_concern": 1,
                      "complexity_of_intents": 2, "format_constraints": 0},
            )
        )  # fmt: skip
    ItemTags.objects.bulk_create(tags[:190])  # the last ten are untagged: tags_missing
    for k, item in enumerate(items[:100]):
        label(item, annotator, -1 if k in expert else 1)  # the judge says 1: wrong on every expert prompt
    campaign.routing_params = {"tagger": {"judge": "tagger"}}
    campaign.save()
    summary = route_campaign(campaign=campaign)
    learned = summary["learned"]
    assert learned["fallback"] == "" and "tagged:expertise_level" in learned["importances"]
    assert learned["importances"]["tagged:expertise_level"] > 0 and "tags_missing" in learned["importances"]
    pushed = RoutingDecision.objects.filter(
        item__in=[items[k] for k in range(100, 190) if k in expert], policy="learned"
    )
    assert pushed.exists()
    assert all(d.features[0]["feature"] == "tagged:expertise_level" for d in pushed)
    assert all(d.destination in ("human", "both") for d in pushed)
