"""Judges on campaigns of both kinds (pairwise aspects and per-response rubric scores in one label), end to end
against the fake OpenAI-compatible server: one combined prompt per order, one whole label per judgment."""

from __future__ import annotations

import json
import re

import pytest

from annotate.models import Annotation, Campaign, Item, Job, JudgeVerdict, RoutingDecision
from annotate.schema import label_keys, label_validate, preset, schema_validate
from routing.judges.templates import template_for
from routing.reads import stale_judgments
from tests.factories import CampaignFactory, ItemFactory
from tests.fakes.openai_server import FakeOpenAIServer, default_answer

from .test_judge_runs import make_judge, run

pytestmark = pytest.mark.django_db(transaction=True)

_SHOWN = re.compile(r"\[The start of Response A\]\n(.*?)\n\[The end of Response A\].*?"
                    r"\[The start of Response B\]\n(.*?)\n\[The end of Response B\]", re.S)  # fmt: skip
SCHEMA = schema_validate(
    {
        "pairwise": preset("simple-pairwise")["pairwise"],
        "rubric": {
            "criteria": [
                {"name": "correctness", "min": 1, "max": 5, "description": "Is it right?"},
                {"name": "clarity", "min": 0, "max": 3, "description": "Is it clear?"},
            ]
        },
    },
    "both",
)


def shown(request: dict) -> tuple[str, str]:
    return _SHOWN.search("\n".join(m["content"] for m in request["messages"])).groups()


def answer(request: dict, verdict: str, scores: dict[str, int]) -> str:
    """What a compliant judge writes: the template's own format, text or the JSON its schema asks for."""
    if request.get("response_format"):
        return json.dumps({"reasoning": "Read both.", "verdicts": {"overall": verdict}, "scores": scores})
    lines = [f"overall: [[{verdict}]]", *(f"{key}: [RESULT] {value}" for key, value in scores.items())]
    return "Read both.\n\n" + "\n".join(lines)


def prefers_good(request: dict) -> str:
    """A position-consistent judge: the GOOD response wins and scores high, whichever side it is shown on."""
    if not request["messages"][-1]["content"].startswith("## Guidelines"):  # the capability probe
        return default_answer(request)
    first, _ = shown(request)
    verdict = "A>B" if "GOOD" in first else "B>A"
    high, low = {"correctness": 5, "clarity": 3}, {"correctness": 2, "clarity": 1}
    good, weak = ("a", "b") if "GOOD" in first else ("b", "a")
    scores = {f"{c}_{good}": high[c] for c in high} | {f"{c}_{weak}": low[c] for c in low}
    return answer(request, verdict, {f"{c}_{side}": scores[f"{c}_{side}"] for c in high for side in "ab"})


def first_shown_wins(request: dict) -> str:
    """Pure position bias, on the comparison and the grades alike."""
    return answer(request, "A>B", {"correctness_a": 4, "correctness_b": 2, "clarity_a": 3, "clarity_b": 1})


@pytest.fixture
def both(db):
    campaign = CampaignFactory(
        kind=Campaign.Kind.BOTH, label_schema=SCHEMA, routing_policy=Campaign.RoutingPolicy.ALL_LLM
    )
    for i in range(6):
        good_first = i % 2 == 0
        ItemFactory(
            campaign=campaign,
            external_id=f"b{i}",
            route=Item.Route.LLM,
            response_a=f"GOOD answer {i}" if good_first else f"weak answer {i}",
            response_b=f"weak answer {i}" if good_first else f"GOOD answer {i}",
        )
    return campaign


def expected_label(item: Item) -> dict[str, int]:
    a_good = item.response_a.startswith("GOOD")
    high, low = {"correctness": 5, "clarity": 3}, {"correctness": 2, "clarity": 1}
    return {
        "overall": -1 if a_good else 1,
        "correctness_a": (high if a_good else low)["correctness"],
        "correctness_b": (low if a_good else high)["correctness"],
        "clarity_a": (high if a_good else low)["clarity"],
        "clarity_b": (low if a_good else high)["clarity"],
    }


@pytest.mark.parametrize("structured", [False, True])
def test_a_both_campaign_is_judged_in_both_orders_into_whole_labels(both, structured):
    with FakeOpenAIServer(answer=prefers_good) as server:
        judge = make_judge(server, both)
        if not structured:
            judge.capabilities = {}
            judge.save()
        server.reset()  # forget the probe's calls
        job = run(both)
        assert server.calls == 12  # one call per item and order
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["done"] == job.result["total"] == 12 and job.result["parse_failures"] == 0
    version = template_for(name="", override="", kind=Campaign.Kind.BOTH).version
    keys = {k.name for k in label_keys(SCHEMA, "both")}
    for item in both.items.all():
        judgments = {a.position_swapped: a for a in Annotation.objects.filter(item=item, judge=judge)}
        assert set(judgments) == {False, True}
        for a in judgments.values():
            # Stored in the item's own order: the swapped order's _a/_b scores traded places with the sides.
            assert a.label == expected_label(item) and set(a.label) == keys
            assert a.prompt_version == version
            assert a.raw_output.startswith("{") if structured else "[RESULT]" in a.raw_output
        verdict = JudgeVerdict.objects.get(item=item)
        assert label_validate(schema=SCHEMA, kind="both", label=verdict.label, source="judge") == expected_label(item)
        assert verdict.position_consistency == 1.0 and verdict.n_judgments == 2
    # Routing reads these judgments as current: the prompt version stored is the one the judge uses now.
    assert not Annotation.objects.filter(stale_judgments(both), campaign=both, source="judge").exists()


def test_position_bias_on_the_grades_shows_and_averages_out(both):
    with FakeOpenAIServer(answer=first_shown_wins) as server:
        judge = make_judge(server, both)
        judge.capabilities = {}
        judge.save()
        job = run(both)
    assert job.state == Job.State.SUCCEEDED, job.error
    item = both.items.first()
    swapped = Annotation.objects.get(item=item, position_swapped=True)
    # B was shown first: its A>B means B wins, and the first-shown grades (4, 3) are B's.
    assert swapped.label == {"overall": 1, "correctness_a": 2, "correctness_b": 4, "clarity_a": 1, "clarity_b": 3}
    for verdict in JudgeVerdict.objects.filter(campaign=both):
        assert verdict.position_consistency == 0.0 and verdict.confidence == 0.0
        assert verdict.label == {"overall": 0, "correctness_a": 3, "correctness_b": 3, "clarity_a": 2, "clarity_b": 2}
        label_validate(schema=SCHEMA, kind="both", label=verdict.label, source="judge")


def test_half_an_answer_is_a_parse_failure_and_sends_the_item_to_humans(both):
    def comparison_only(request: dict) -> str:
        if "GOOD answer 0" in shown(request)[0] or "GOOD answer 0" in shown(request)[1]:
            return "A is better.\n\noverall: [[A>B]]"  # no grades
        return prefers_good(request)

    with FakeOpenAIServer(answer=comparison_only) as server:
        judge = make_judge(server, both)
        judge.capabilities = {}
        judge.save()
        job = run(both)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["parse_failures"] == 2 and job.result["routed_to_humans"] == 1
    item = both.items.get(external_id="b0")
    failed = Annotation.objects.filter(item=item, judge=judge)
    assert all(a.parse_failed and a.label is None and a.raw_output.endswith("[[A>B]]") for a in failed)
    assert "no verdict found (expected a score such as [RESULT] 3)" in failed.first().justification
    assert Item.objects.get(pk=item.pk).route == Item.Route.HUMAN
    assert "no usable verdict" in RoutingDecision.objects.get(item=item).reason
