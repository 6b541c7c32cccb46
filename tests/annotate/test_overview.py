"""The campaign home's reads (annotate/overview.py) against hand-built campaigns, its pure arithmetic on
its own, and the page and its live fragment over HTTP."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate import overview
from annotate.models import Annotation, Assignment, CampaignMember, Item, Job, JudgeVerdict
from annotate.overview import Criterion
from annotate.services.stats import stats_snapshot_create
from tests.factories import CampaignFactory, ItemFactory, JudgeFactory, UserFactory

NOW = datetime(2026, 3, 4, 15, 40, tzinfo=UTC)
PAIRWISE = Criterion(name="overall", pairwise=True, domain=(-1.0, 0.0, 1.0))
RUBRIC = Criterion(name="helpfulness", pairwise=False, domain=(0.0, 1.0, 2.0, 3.0, 4.0))


def human(item, user, value=1, *, at=None, seconds=None, swapped=None):
    """A human label with the item's counter moved as annotation_submit moves it."""
    annotation = Annotation.objects.create(
        item=item, campaign=item.campaign, source="human", annotator=user, label={"overall": value},
        seconds=seconds, position_swapped=swapped,
    )  # fmt: skip
    Item.objects.filter(pk=item.pk).update(human_label_count=F("human_label_count") + 1)
    if at is not None:
        Annotation.objects.filter(pk=annotation.pk).update(created_at=at)
    return annotation


def judged(item, judge, *, value=1, swapped=False, cost=None, failed=False, at=None):
    annotation = Annotation.objects.create(
        item=item, campaign=item.campaign, source="judge", judge=judge, label=None if failed else {"overall": value},
        parse_failed=failed, position_swapped=swapped, cost=cost,
    )  # fmt: skip
    if at is not None:
        Annotation.objects.filter(pk=annotation.pk).update(created_at=at)
    return annotation


# --- pure ----------------------------------------------------------------------------------------


def test_hourly_series_has_every_hour_of_the_window_with_zeros_where_nothing_happened():
    counts = {
        (datetime(2026, 3, 4, 15, tzinfo=UTC), "human"): 4,
        (datetime(2026, 3, 4, 15, tzinfo=UTC), "judge"): 7,
        (datetime(2026, 3, 4, 12, tzinfo=UTC), "human"): 2,
        (datetime(2026, 3, 1, 9, tzinfo=UTC), "human"): 99,  # before the window: left out
    }
    series = overview.hourly_series(counts, now=NOW, hours=48)
    assert len(series["hours"]) == len(series["human"]) == len(series["judge"]) == 48
    assert series["hours"][-1] == "2026-03-04T15:00:00+00:00"
    assert series["hours"][0] == "2026-03-02T16:00:00+00:00"
    assert series["human"][-1] == 4 and series["judge"][-1] == 7
    assert series["human"][-4] == 2
    assert series["human_total"] == 6 and series["judge_total"] == 7


def test_rate_and_projected_finish():
    assert overview.rate_per_hour(30, timedelta(minutes=30)) == 60
    with pytest.raises(ValueError):
        overview.rate_per_hour(3, timedelta(0))
    assert overview.projected_finish(remaining=10, rate=5, now=NOW) == NOW + timedelta(hours=2)
    assert overview.projected_finish(remaining=0, rate=0, now=NOW) == NOW
    assert overview.projected_finish(remaining=10, rate=0, now=NOW) is None


def test_the_budget_projection_adds_what_the_routing_budget_still_gives_humans():
    assert overview.pending_human_items(target_items=None, human_items=3, waiting=50) == 0
    assert overview.pending_human_items(target_items=20, human_items=5, waiting=50) == 15
    assert overview.pending_human_items(target_items=20, human_items=5, waiting=4) == 4
    assert overview.pending_human_items(target_items=5, human_items=8, waiting=4) == 0
    got = overview.budget_projection(
        done=30, wanted=40, pending_items=5, overlap=2, recent=10, window=timedelta(hours=1), now=NOW
    )
    assert got["plan"] == 50 and got["remaining"] == 20 and got["fraction"] == pytest.approx(0.6)
    assert got["rate_per_hour"] == 10 and got["finish"] == NOW + timedelta(hours=2)
    assert got["hours_left"] == pytest.approx(2)
    empty = overview.budget_projection(
        done=0, wanted=0, pending_items=0, overlap=1, recent=0, window=timedelta(hours=1), now=NOW
    )
    assert empty["fraction"] is None and empty["finish"] == NOW


def test_disagreement_ranks_split_votes_first_and_compares_pairwise_labels_by_side():
    labels = [
        (1, -1), (1, 1), (1, 0),          # three ways: 2/3 outside the majority
        (2, -2), (2, -1), (2, 1), (2, 1),  # A, A, B, B: half
        (3, -2), (3, -1),                  # "A much better" and "A better" agree by side
        (4, 1),                            # one label cannot disagree
        (5, 1), (5, -1),                   # half, fewer labels than item 2
        (6, None), (6, 1),                 # a label without the criterion does not count
    ]  # fmt: skip
    ranked = overview.disagreement_ranking(labels, criterion=PAIRWISE, limit=10)
    assert [row["item"] for row in ranked] == [1, 2, 5]
    assert ranked[0]["disagreement"] == pytest.approx(2 / 3)
    assert ranked[1] == {"item": 2, "n": 4, "disagreement": 0.5, "votes": {-1.0: 2, 1.0: 2}}
    assert 3 not in [row["item"] for row in ranked] and 6 not in [row["item"] for row in ranked]
    assert overview.votes_text(ranked[0]["votes"], pairwise=True) == "A 1 · tie 1 · B 1"
    assert [row["item"] for row in overview.disagreement_ranking(labels, criterion=PAIRWISE, limit=2)] == [1, 2]
    assert overview.disagreement_ranking([], criterion=PAIRWISE, limit=10) == []


def test_disagreement_on_rubric_scores_compares_exact_values():
    ranked = overview.disagreement_ranking([(7, 3), (7, 4), (7, 4), (8, 2), (8, 2)], criterion=RUBRIC, limit=10)
    assert [(row["item"], row["n"]) for row in ranked] == [(7, 3)]
    assert overview.votes_text(ranked[0]["votes"], pairwise=False) == "3: 1 · 4: 2"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 8), st.integers(-3, 3)), max_size=60))
def test_disagreement_is_the_share_outside_the_most_given_side(labels):
    """Against a Counter per item: 1 − (the top side's count) / (labels), for every item with two labels or more."""
    ranked = overview.disagreement_ranking(labels, criterion=PAIRWISE, limit=100)
    by_item: dict[int, Counter] = {}
    for item, value in labels:
        by_item.setdefault(item, Counter())[(value > 0) - (value < 0)] += 1
    expected = {
        item: 1 - max(c.values()) / sum(c.values())
        for item, c in by_item.items()
        if sum(c.values()) >= 2 and len(c) > 1
    }
    assert {row["item"]: row["disagreement"] for row in ranked} == pytest.approx(expected)
    shares = [row["disagreement"] for row in ranked]
    assert shares == sorted(shares, reverse=True)


def test_working_rows_keep_live_leases_and_recent_labels_only():
    recent = {
        1: {"n": 3, "last": NOW - timedelta(minutes=5)},
        2: {"n": 1, "last": NOW - timedelta(minutes=40)},  # too long ago, no lease
        3: {"n": 2, "last": NOW - timedelta(minutes=40)},  # too long ago, but holds a lease
    }
    rows = overview.working_rows(leases={3: 1, 4: 2}, recent=recent, names={1: "ann", 3: "cy", 4: "dee"}, now=NOW)
    assert [(r["annotator"], r["leases"], r["last_hour"]) for r in rows] == [("ann", 0, 3), ("cy", 1, 2), ("dee", 2, 0)]


def test_annotator_rows_say_when_quality_is_not_computed_or_someone_is_new():
    live = [
        {"annotator": "ann", "n": 5, "median_seconds": 12.0, "last": NOW},
        {"annotator": "bo", "n": 9, "median_seconds": None, "last": NOW},
    ]
    assert overview.annotator_rows(live=live, snapshot=None)["computed_at"] is None
    snapshot = {"computed_at": NOW, "annotators": [{"annotator": "ann", "agreement_with_consensus": 0.8,
                                                     "gold_accuracy": 1.0, "position_bias": 0.4}]}  # fmt: skip
    table = overview.annotator_rows(live=live, snapshot=snapshot)
    assert [r["annotator"] for r in table["rows"]] == ["bo", "ann"]  # most labels first
    assert table["rows"][0]["in_snapshot"] is False and table["rows"][0]["agreement_with_consensus"] is None
    assert table["rows"][1]["agreement_with_consensus"] == 0.8 and table["rows"][1]["position_bias"] == 0.4


# --- against the database ------------------------------------------------------------------------


@pytest.fixture
def built(db):
    """A campaign with an overlap of 2 and every route and state, hand-built."""
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=2)
    ann, bo, cy = UserFactory(username="ann"), UserFactory(username="bo"), UserFactory(username="cy")
    judge_x, judge_y = JudgeFactory(name="judge-x"), JudgeFactory(name="judge-y")

    def item(name, route, **extra):
        return ItemFactory(campaign=campaign, external_id=name, route=route, **extra)

    h = {k: item(f"h{k}", "human") for k in range(3)}
    h3 = item("h3", "human", label_target=1)
    b0, b1 = item("b0", "both"), item("b1", "both")
    llm = {k: item(f"l{k}", "llm") for k in range(4)}
    u0 = item("u0", "unrouted")
    g0, g1 = item("g0", "human", gold_label={"overall": -1}), item("g1", "human", gold_label={"overall": 1})
    old = timezone.now() - timedelta(hours=3)
    human(h[1], ann, 1, at=old, seconds=10)  # h0: nothing; h1: one of two
    human(h[2], ann, -1, seconds=20)  # h2: two of two, split
    human(h[2], bo, 1, seconds=40)
    human(h3, ann, 1, at=old, seconds=30)  # h3: its lowered target of 1, then one more
    human(h3, cy, 1, at=timezone.now() - timedelta(minutes=30))
    human(b0, bo, 1, seconds=50)  # b0: two of two, agreeing
    human(b0, cy, 1)
    human(g0, ann, -1, at=old)
    JudgeVerdict.objects.create(campaign=campaign, item=llm[0], label={"overall": 1}, n_judgments=2)
    judged(llm[0], judge_x, cost=Decimal("0.0125"))
    judged(llm[0], judge_x, swapped=True, cost=Decimal("0.0100"))
    judged(llm[1], judge_y, failed=True, cost=Decimal("0.002"))  # judged, no verdict yet
    JudgeVerdict.objects.create(campaign=campaign, item=llm[2], label=None, n_parse_failures=1)
    judged(llm[2], judge_y, failed=True, at=old)
    # llm[3] and u0: nothing at all; b1 too.
    named = {"h3": h3, "b0": b0, "b1": b1, "u0": u0, "g0": g0, "g1": g1}
    named |= {f"h{k}": v for k, v in h.items()} | {f"l{k}": v for k, v in llm.items()}
    return {"campaign": campaign, "users": (ann, bo, cy), "items": named}


def test_items_by_route_and_state(built):
    table = overview.items_by_route_and_state(campaign=built["campaign"])
    rows = {row["route"]: row for row in table["routes"]}
    assert [row["route"] for row in table["routes"]] == ["unrouted", "human", "llm", "both"]
    assert {k: rows["human"][k] for k in ("no_labels", "in_progress", "complete", "total", "labels")} == {
        "no_labels": 1, "in_progress": 1, "complete": 2, "total": 4, "labels": 5
    }  # fmt: skip
    assert (rows["both"]["no_labels"], rows["both"]["in_progress"], rows["both"]["complete"]) == (1, 0, 1)
    # llm: a usable verdict is complete; judged without one (or with an unusable one) is in progress.
    assert (rows["llm"]["no_labels"], rows["llm"]["in_progress"], rows["llm"]["complete"]) == (1, 2, 1)
    assert (rows["unrouted"]["no_labels"], rows["unrouted"]["total"]) == (1, 1)
    assert table["gold"] == {"items": 2, "answered": 1, "answers": 1}
    assert table["totals"]["total"] == 11


def test_an_item_waiting_for_dynamic_overlap_s_extra_label_is_in_progress(built):
    campaign = built["campaign"]
    campaign.overlap_max = 3
    campaign.save(update_fields=["overlap_max"])
    Item.objects.filter(pk=built["items"]["h2"].pk).update(extra_labels=1)  # split: another label asked for
    rows = {row["route"]: row for row in overview.items_by_route_and_state(campaign=campaign)["routes"]}
    assert (rows["human"]["in_progress"], rows["human"]["complete"]) == (2, 1)


def test_the_human_budget_against_the_plan(built):
    campaign = built["campaign"]
    budget = overview.human_budget(campaign=campaign, now=timezone.now())
    # Targets: h0-h2 2 each, h3 lowered to 1, b0 and b1 2 each = 11. Done, each item up to its target:
    # h1 1 + h2 2 + h3 1 + b0 2 = 6. Given: 7 (h3 has one past its target; the gold answer is apart).
    assert (budget["plan"], budget["done"], budget["given"], budget["remaining"]) == (11, 6, 7, 5)
    assert budget["human_items"] == 6 and budget["target_items"] is None and budget["pending_items"] == 0
    # In the last hour: h2 twice, h3 (cy), b0 twice; the two labels three hours old do not count.
    assert budget["rate_per_hour"] == 5
    assert budget["hours_left"] == pytest.approx(1, abs=1e-3)


def test_the_plan_grows_by_the_routing_budget_while_items_wait(built):
    campaign = built["campaign"]
    campaign.routing_policy, campaign.human_budget = "random", 0.8
    campaign.save()
    Job.objects.create(kind="route", campaign=campaign, state="succeeded", result={"human_items_target": 7})
    budget = overview.human_budget(campaign=campaign, now=timezone.now())
    # 6 items are with humans, the pass wanted 7: one of the waiting (unrouted) items goes to humans too.
    assert budget["target_items"] == 7 and budget["waiting_items"] == 1 and budget["pending_items"] == 1
    assert budget["plan"] == 11 + 2
    Job.objects.create(kind="route", campaign=campaign, state="running")
    assert overview.human_budget(campaign=campaign, now=timezone.now())["target_items"] is None


def test_judge_cost_per_judge(built):
    costs = overview.judge_costs(campaign=built["campaign"])
    assert costs["judges"] == [
        {"judge": "judge-x", "n": 2, "failed": 0, "cost": Decimal("0.0225")},
        {"judge": "judge-y", "n": 2, "failed": 2, "cost": Decimal("0.002")},
    ]
    assert costs["n"] == 4 and costs["cost"] == Decimal("0.0245")


def test_who_is_working_now(built):
    campaign = built["campaign"]
    ann, bo, cy = built["users"]
    dee, eve = UserFactory(username="dee"), UserFactory(username="eve")
    now = timezone.now()
    items = built["items"]
    Assignment.objects.create(campaign=campaign, item=items["h0"], annotator=dee, expires_at=now + timedelta(minutes=5))
    Assignment.objects.create(campaign=campaign, item=items["b1"], annotator=eve, expires_at=now - timedelta(minutes=1))
    Assignment.objects.create(campaign=campaign, item=items["h1"], annotator=cy, expires_at=now + timedelta(minutes=5))
    rows = overview.working_now(campaign=campaign, now=now)
    assert {r["annotator"]: (r["leases"], r["last_hour"]) for r in rows} == {
        "ann": (0, 1), "bo": (0, 2), "cy": (1, 2), "dee": (1, 0)
    }  # fmt: skip  # dee only holds a lease; eve's expired, and eve never labelled


def test_the_items_with_most_disagreement(built):
    campaign = built["campaign"]
    result = overview.most_disagreed_items(campaign=campaign)
    assert result["criterion"] == "overall"
    assert [(r["external_id"], r["n"], r["disagreement"], r["route"]) for r in result["items"]] == [
        ("h2", 2, 0.5, "human")
    ]
    assert result["items"][0]["votes_text"] == "A 1 · B 1"


def test_the_annotator_table_is_live_and_takes_quality_from_the_snapshot(built):
    campaign = built["campaign"]
    table = overview.annotator_table(campaign=campaign)
    assert table["computed_at"] is None
    assert {r["annotator"]: (r["n"], r["median_seconds"]) for r in table["rows"]} == {
        "ann": (4, statistics.median([10, 20, 30])), "bo": (2, 45.0), "cy": (2, None)
    }  # fmt: skip
    snapshot = stats_snapshot_create(campaign=campaign, bootstrap=0)
    snapshot.refresh_from_db()  # created with the payload's ISO string
    table = overview.annotator_table(campaign=campaign)
    assert table["computed_at"] == snapshot.computed_at
    expected = {row["annotator"]: row for row in snapshot.payload["annotators"]}
    for row in table["rows"]:
        assert row["in_snapshot"]
        assert row["agreement_with_consensus"] == expected[row["annotator"]]["agreement_with_consensus"]
        assert row["gold_accuracy"] == expected[row["annotator"]]["gold_accuracy"]
    assert next(r for r in table["rows"] if r["annotator"] == "ann")["gold_accuracy"] == 1.0


def test_an_empty_campaign_has_an_overview(db):
    campaign = CampaignFactory(preset_name="helpsteer2")
    got = overview.campaign_overview(campaign=campaign)
    assert got["items"]["totals"]["total"] == 0
    assert got["budget"]["fraction"] is None and got["working"] == [] and got["judges"]["n"] == 0
    quality = overview.campaign_quality(campaign=campaign)
    assert quality["disagreement"] == {"criterion": "helpfulness", "items": []}
    assert quality["annotators"] == {"rows": [], "computed_at": None}


# --- the page --------------------------------------------------------------------------------------


def test_the_page_is_for_the_campaigns_owners_admins_and_viewers(built, client):
    campaign = built["campaign"]
    viewer, stranger = UserFactory(username="viewer"), UserFactory(username="stranger")
    CampaignMember.objects.create(campaign=campaign, user=viewer, role="viewer")
    ann = built["users"][0]
    campaign.annotators.add(ann)  # the pool is ann alone now
    client.force_login(stranger)
    assert client.get(f"/c/{campaign.slug}/").status_code == 404
    assert client.get(f"/c/{campaign.slug}/live/").status_code == 404
    client.force_login(ann)
    assert client.get(f"/c/{campaign.slug}/").status_code == 403  # an annotator of it: told, not hidden
    client.force_login(viewer)
    page = client.get(f"/c/{campaign.slug}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'aria-current="page">Home<' in html
    assert f'hx-get="/c/{campaign.slug}/queue/stranded/"' in html and 'id="state-actions"' in html
    assert "every 5s," in html and "data-poll-visible-only" in html  # the visibility check is static/js/tandem.js's
    assert f'hx-get="/c/{campaign.slug}/quality/" hx-trigger="load"' in html
    live = client.get(f"/c/{campaign.slug}/live/").content.decode()
    assert 'id="campaign-live"' in live
    assert 'id="campaign-home-data"' in live and "<html" not in live
    quality = client.get(f"/c/{campaign.slug}/quality/").content.decode()
    assert f'href="/c/{campaign.slug}/routing/items/{built["items"]["h2"].pk}/"' in quality
    assert "every 30s," in quality and "data-poll-visible-only" in quality
    assert "not computed yet" in quality


def test_a_closed_campaign_stops_polling(built, client, admin_user):
    campaign = built["campaign"]
    campaign.state = "closed"
    campaign.save()
    client.force_login(admin_user)
    live = client.get(f"/c/{campaign.slug}/live/").content.decode()
    assert "every 5s" not in live and "campaign-state-changed from:body" in live
    assert "these figures are final" in live
    assert "every 30s" not in client.get(f"/c/{campaign.slug}/quality/").content.decode()
