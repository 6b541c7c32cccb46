"""Judges scored on the campaign's gold items in both orders, beside the humans on the same gold."""

from __future__ import annotations

import pytest

from annotate.models import Annotation, AnnotatorStanding, Assignment, Campaign, Item, Job
from annotate.services.quality.gold import gold_accuracy, human_gold_scores
from routing.gold import judge_gold_scores, llm_only_allowed, llm_only_gate
from routing.judges.runs import judge_run_start, run_items
from tests.factories import CampaignFactory, ItemFactory, JudgeFactory, UserFactory
from tests.fakes.openai_server import FakeOpenAIServer

from .test_judge_runs import first_shown_wins, make_judge, prefers_good, run

pytestmark = pytest.mark.django_db(transaction=True)


def gold_campaign(n_gold: int = 6, n_work: int = 4, **extra) -> Campaign:
    """Gold items whose gold label names the response with GOOD in it, and a few items without gold."""
    campaign = CampaignFactory(routing_policy=Campaign.RoutingPolicy.ALL_HUMAN, **extra)
    for i in range(n_gold):
        good_first = i % 2 == 0
        ItemFactory(
            campaign=campaign,
            external_id=f"g{i}",
            response_a=f"GOOD answer {i}" if good_first else f"weak answer {i}",
            response_b=f"weak answer {i}" if good_first else f"GOOD answer {i}",
            gold_label={"overall": -1 if good_first else 1},
        )
    for i in range(n_work):
        ItemFactory(campaign=campaign, external_id=f"w{i}", response_a=f"GOOD {i}", response_b=f"weak {i}")
    return campaign


def judge_rows(campaign, judge, labels: dict[str, tuple], *, version: str = "v1") -> None:
    """Stored judgments: per external id, (label in the original order, label in the swapped order), both
    already in the item's own A/B order (as a run stores them); None: a parse failure."""
    rows = []
    for external_id, pair in labels.items():
        item = Item.objects.get(campaign=campaign, external_id=external_id)
        for swapped, label in zip((False, True), pair, strict=True):
            rows.append(
                Annotation(
                    item=item, campaign=campaign, source=Annotation.Source.JUDGE, judge=judge, label=label,
                    parse_failed=label is None, position_swapped=swapped, prompt_version=version,
                )
            )  # fmt: skip
    Annotation.objects.bulk_create(rows)


def test_the_gold_scope_judges_only_the_gold_items_in_both_orders():
    campaign = gold_campaign()
    assert set(run_items(campaign=campaign, scope="gold").values_list("external_id", flat=True)) == {
        f"g{i}" for i in range(6)
    }
    without = CampaignFactory()
    ItemFactory(campaign=without)
    with pytest.raises(ValueError, match="has no gold items to score the judges on"):
        run_items(campaign=without, scope="gold")
    with pytest.raises(ValueError, match="no gold items"):
        judge_run_start(campaign=without, judges=[JudgeFactory()], scope="gold", dispatch=False)


def test_a_consistent_judge_scores_every_answer_in_both_orders():
    campaign = gold_campaign()
    with FakeOpenAIServer(answer=prefers_good) as server:
        judge = make_judge(server, campaign)
        job = run(campaign, scope="gold")
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["done"] == 12  # 6 gold items × 2 orders, and nothing else
    score = judge_gold_scores(campaign=campaign)[judge.pk]
    assert (score["answered"], score["correct"], score["accuracy"], score["items"]) == (12, 12, 1.0, 6)
    orders = score["orders"]
    assert orders["original"] == {"answered": 6, "correct": 6} and orders["swapped"] == {"answered": 6, "correct": 6}
    assert (orders["pairs"], orders["both_correct"], orders["one_correct"], orders["consistency"]) == (6, 6, 0, 1.0)


def test_a_position_biased_judge_is_right_in_one_order_only():
    """A judge that always prefers the response shown first is right exactly once per gold item: the
    swapped verdict is mapped back to the item's order before it meets the gold label."""
    campaign = gold_campaign(judge_gold_threshold=0.8)
    with FakeOpenAIServer(answer=first_shown_wins) as server:
        judge = make_judge(server, campaign)
        judge.capabilities = {}  # plain text: the fake's structured answers are not position-biased
        judge.save()
        job = run(campaign, scope="gold")
    assert job.state == Job.State.SUCCEEDED, job.error
    score = judge_gold_scores(campaign=campaign)[judge.pk]
    assert (score["answered"], score["correct"], score["accuracy"]) == (12, 6, 0.5)
    # Right on A-wins items in the original order and on B-wins items in the swapped one.
    assert score["orders"]["original"]["correct"] == 3 and score["orders"]["swapped"]["correct"] == 3
    assert (score["orders"]["both_correct"], score["orders"]["one_correct"], score["orders"]["consistency"]) == (
        0,
        6,
        0.0,
    )
    allowed, reason = llm_only_allowed(campaign=campaign, judge=judge)
    assert not allowed
    assert reason == (f"judge {judge.name} scored 50% on gold (6 of 12 answers, both orders), below the campaign's 80%")


def test_parse_failures_are_wrong_answers_and_stale_prompts_do_not_count():
    campaign = gold_campaign(judge_gold_threshold=0.5)
    judge = JudgeFactory(imported=True)
    campaign.judges.add(judge)
    judge_rows(campaign, judge, {"g0": ({"overall": -1}, None), "g1": ({"overall": 1}, {"overall": 1})})
    score = judge_gold_scores(campaign=campaign)[judge.pk]
    assert (score["answered"], score["correct"]) == (4, 3)
    assert score["orders"]["one_correct"] == 1 and score["orders"]["consistency"] == 0.5
    # A judge with an endpoint counts only the judgments of the prompt it uses now.
    live = JudgeFactory(base_url="http://127.0.0.1:9/v1")
    campaign.judges.add(live)
    judge_rows(campaign, live, {"g0": ({"overall": -1}, {"overall": -1})}, version="an-old-prompt")
    assert judge_gold_scores(campaign=campaign)[live.pk]["answered"] == 0
    allowed, reason = llm_only_allowed(campaign=campaign, judge=live)
    assert not allowed and "has no answer on this campaign's gold items" in reason


def test_the_threshold_decides_and_none_sets_no_requirement():
    campaign = gold_campaign()
    judge = JudgeFactory(imported=True)
    campaign.judges.add(judge)
    judge_rows(campaign, judge, {f"g{i}": ({"overall": -1}, {"overall": -1}) for i in range(5)})  # 3 of 5 items
    assert judge_gold_scores(campaign=campaign)[judge.pk]["accuracy"] == 0.6
    assert llm_only_allowed(campaign=campaign, judge=judge) == (True, "the campaign asks judges for no gold accuracy")
    campaign.judge_gold_threshold = 0.6
    allowed, reason = llm_only_allowed(campaign=campaign, judge=judge)
    assert allowed and reason.endswith("at or above the campaign's 60%")
    campaign.judge_gold_threshold = 0.61
    assert llm_only_allowed(campaign=campaign, judge=judge)[0] is False
    # The campaign's gate asks every judge whose labels items alone would get.
    good = JudgeFactory(imported=True)
    judge_rows(campaign, good, {f"g{i}": ({"overall": (-1, 1)[i % 2]},) * 2 for i in range(6)})
    allowed, reason = llm_only_gate(campaign=campaign)
    assert not allowed and judge.name in reason and good.name not in reason
    campaign.judge_gold_threshold = 0.5
    assert llm_only_gate(campaign=campaign)[0] is True


def test_humans_on_the_same_gold_and_side_by_side():
    campaign = gold_campaign(judge_gold_threshold=0.9)
    judge = JudgeFactory(imported=True)
    campaign.judges.add(judge)
    judge_rows(campaign, judge, {"g0": ({"overall": -1}, {"overall": 1})})
    good, bad = UserFactory(username="good-one"), UserFactory(username="bad-one")
    gold = list(Item.objects.filter(campaign=campaign, gold_label__isnull=False).order_by("external_id"))
    for k, item in enumerate(gold[:4]):
        for person, right in ((good, True), (bad, k == 0)):
            purpose = Assignment.Purpose.QUALIFICATION if k < 2 else Assignment.Purpose.ATTENTION
            lease = Assignment.objects.create(
                campaign=campaign,
                item=item,
                annotator=person,
                purpose=purpose,
                state="submitted",
                expires_at=item.created_at,
            )
            Annotation.objects.create(
                item=item, campaign=campaign, source=Annotation.Source.HUMAN, annotator=person, assignment=lease,
                label=item.gold_label if right else {"overall": -item.gold_label["overall"]}, gold_correct=right,
            )  # fmt: skip
    AnnotatorStanding.objects.create(campaign=campaign, annotator=bad, excluded=True)
    humans = human_gold_scores(campaign=campaign)
    assert (humans["answered"], humans["correct"], humans["n_annotators"]) == (8, 5, 2)
    assert humans["counted"] == {"answered": 4, "correct": 4, "accuracy": 1.0, "n_annotators": 1}
    by_name = {p["username"]: p for p in humans["annotators"]}
    assert by_name["bad-one"]["qualification"] == {"answered": 2, "correct": 1} and by_name["bad-one"]["excluded"]
    assert by_name["good-one"]["attention"] == {"answered": 2, "correct": 2}
    card = gold_accuracy(campaign=campaign)
    assert card["threshold"] == 0.9 and card["gold_items"] == 6
    assert card["humans"]["counted"]["accuracy"] == 1.0
    assert [(j["name"], j["accuracy"], j["qualified"]) for j in card["judges"]] == [(judge.name, 0.5, False)]
    assert card["llm_only"]["allowed"] is False and "below the campaign's 90%" in card["llm_only"]["reason"]
