"""A campaign's statistics from its stored labels: the snapshot's shape, its figures against the reference
package, the command, the API, and the debounced recomputation after new labels."""

from __future__ import annotations

import json
import random

import krippendorff
import numpy as np
import pytest
from django.core.management import call_command
from django.test.utils import override_settings

from annotate.models import Annotation, Item, Job, StatsSnapshot
from annotate.services import stats as stats_service
from annotate.services.stats import campaign_stats, stats_request
from tests.factories import AnnotationFactory, CampaignFactory, ItemFactory, JudgeFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled():
    """Multipref (four aspects, −2…2): 30 items × 4 annotators who mostly agree, a judge in both orders."""
    rng = random.Random(5)
    campaign = CampaignFactory(preset_name="multipref")
    raters = [UserFactory(username=f"rater{i}") for i in range(4)]
    judge = JudgeFactory(name="gpt-x")
    models = ["alpha", "beta", "gamma"]
    for i in range(30):
        model_a, model_b = rng.sample(models, 2)
        item = ItemFactory(campaign=campaign, model_a=model_a, model_b=model_b)
        truth = rng.choice([-2, -1, 1, 2])
        for rater in raters:
            value = truth if rng.random() < 0.8 else rng.choice([-2, -1, 0, 1, 2])
            label = {"overall": value, "helpfulness": value, "truthfulness": 0, "harmlessness": rng.choice([0, 1])}
            AnnotationFactory(
                item=item, annotator=rater, label=label, position_swapped=rng.random() < 0.5, seconds=10 + i
            )
        for swapped in (False, True):
            Annotation.objects.create(
                item=item, campaign=campaign, source="judge", judge=judge, label={"overall": truth},
                position_swapped=swapped, prompt_version="v1",
            )  # fmt: skip
    return campaign


def test_the_snapshot_has_every_figure_and_alpha_matches_the_reference(labelled):
    snapshot = campaign_stats(campaign=labelled, bootstrap=200)
    assert snapshot["n_items"] == 30 and snapshot["n_human_labels"] == 120 and snapshot["n_judge_labels"] == 60
    assert set(snapshot["criteria"]) == {"overall", "helpfulness", "truthfulness", "harmlessness"}
    overall = snapshot["criteria"]["overall"]
    matrix = np.full((4, 30), np.nan)
    items = list(labelled.items.order_by("id").values_list("id", flat=True))
    for a in Annotation.objects.filter(campaign=labelled, source="human").select_related("annotator"):
        matrix[int(a.annotator.username[-1]), items.index(a.item_id)] = a.label["overall"]
    expected = krippendorff.alpha(matrix, level_of_measurement="ordinal", value_domain=[-2, -1, 0, 1, 2])
    assert overall["krippendorff_alpha"]["ordinal"] == pytest.approx(expected)
    low, high = overall["ci95"]["krippendorff_alpha_ordinal"]
    assert low <= overall["krippendorff_alpha"]["ordinal"] <= high
    assert overall["n_items_multi"] == 30 and overall["fleiss_kappa"] is not None
    # Every label of `truthfulness` is 0: nothing to correct for chance, said rather than raised.
    assert snapshot["criteria"]["truthfulness"]["krippendorff_alpha"]["nominal"] is None
    assert snapshot["criteria"]["truthfulness"]["notes"]
    assert [a["annotator"] for a in snapshot["annotators"]] == ["rater0", "rater1", "rater2", "rater3"]
    assert all(0 <= a["position_bias"] <= 1 and a["median_seconds"] for a in snapshot["annotators"])
    (judge,) = snapshot["judges"]
    assert judge["judge"] == "gpt-x" and judge["n"] == 60 and judge["accuracy_vs_human_majority"] > 0.8
    assert judge["position_consistency"] == 1.0
    assert {row["model"] for row in snapshot["leaderboard"]} <= {"alpha", "beta", "gamma"}
    assert snapshot["leaderboards"]["human"] and snapshot["leaderboards"]["judge"] == []  # no verdicts yet
    by_criterion = snapshot["by_criterion"]
    assert set(by_criterion) == set(snapshot["criteria"]) and len(by_criterion["helpfulness"]["annotators"]) == 4
    assert by_criterion["helpfulness"]["judges"] == []  # the judge rated `overall` only
    json.dumps(snapshot)  # the snapshot is stored and served as JSON


def test_the_judges_leaderboard_comes_from_their_verdicts_and_fills_the_final_one(labelled):
    from annotate.models import JudgeVerdict

    judged_only = [ItemFactory(campaign=labelled, model_a="delta", model_b="alpha") for _ in range(12)]
    for item in [*labelled.items.all()]:
        truth = 1 if item in judged_only else -1
        JudgeVerdict.objects.create(campaign=labelled, item=item, label={"overall": truth}, confidence=0.9)
    snapshot = campaign_stats(campaign=labelled, bootstrap=20)
    judge_models = {row["model"] for row in snapshot["leaderboards"]["judge"]}
    assert "delta" in judge_models
    # Items nobody labelled take the judges' verdict in the final labels; humans' items keep theirs.
    assert "delta" in {row["model"] for row in snapshot["leaderboard"]}
    assert "delta" not in {row["model"] for row in snapshot["leaderboards"]["human"]}
    rates = snapshot["leaderboards"]["win_rates"]
    delta, alpha = rates["models"].index("delta"), rates["models"].index("alpha")
    assert rates["rates"][alpha][delta] == 1.0 and rates["rates"][delta][alpha] == 0.0  # +1: B (alpha) won


def test_a_campaign_without_labels_gives_notes_not_errors():
    campaign = CampaignFactory(preset_name="helpsteer2")
    ItemFactory(campaign=campaign, response="r", response_a="", response_b="")
    snapshot = campaign_stats(campaign=campaign, bootstrap=10)
    assert snapshot["n_human_labels"] == 0 and snapshot["annotators"] == [] and snapshot["leaderboard"] == []
    assert all(c["krippendorff_alpha"]["ordinal"] is None and c["notes"] for c in snapshot["criteria"].values())


def test_compute_stats_command_prints_the_snapshot_as_json(labelled, capsys):
    call_command("compute_stats", labelled.slug, "--json", "--bootstrap", "50")
    printed = json.loads(capsys.readouterr().out)
    assert printed["campaign"] == labelled.slug and "overall" in printed["criteria"]
    assert StatsSnapshot.objects.filter(campaign=labelled).count() == 1


def test_the_api_serves_the_latest_snapshot_and_its_history(labelled, admin_api, annotator_api):
    url = f"/api/campaigns/{labelled.slug}/stats/"
    assert annotator_api.get(url).status_code == 403
    assert admin_api.get(url).status_code == 404
    created = admin_api.post(url, {"sync": True, "bootstrap": 20}, format="json")
    assert created.status_code == 201 and created.json()["n_human_labels"] == 120
    assert admin_api.get(url).json()["computed_at"] == created.json()["computed_at"]
    queued = admin_api.post(url, {}, format="json")
    assert queued.status_code == 202 and queued.json()["kind"] == "compute_stats"
    history = admin_api.get(url + "history/").json()
    assert len(history) == 1 and "overall" in history[0]["krippendorff_alpha_ordinal"]


@override_settings(TANDEM_STATS_DEBOUNCE_SECONDS=30)
def test_new_labels_ask_for_statistics_at_most_once_per_window(labelled, monkeypatch):
    monkeypatch.setattr(stats_service, "_requested", {})
    first = stats_request(campaign_id=labelled.pk)
    assert first is not None and first.kind == "compute_stats"
    assert stats_request(campaign_id=labelled.pk) is None  # this process asked a moment ago
    monkeypatch.setattr(stats_service, "_requested", {})  # as another process would
    assert stats_request(campaign_id=labelled.pk) is None  # the first is still queued: it will see the labels
    Job.objects.filter(pk=first.pk).update(state=Job.State.SUCCEEDED)
    monkeypatch.setattr(stats_service, "_requested", {})
    later = stats_request(campaign_id=labelled.pk)  # within the window: queued to start when it ends
    assert later is not None and Job.objects.filter(campaign=labelled, kind="compute_stats").count() == 2


def test_submitting_a_label_requests_statistics(labelled, annotator, monkeypatch, django_capture_on_commit_callbacks):
    from annotate.services.assignments import annotation_submit, next_assignment_for

    monkeypatch.setattr(stats_service, "_requested", {})
    item = Item.objects.filter(campaign=labelled).first()
    Item.objects.filter(campaign=labelled).update(route="human")
    assignment = next_assignment_for(annotator=annotator, campaign=labelled)
    assert assignment.item_id is not None and item is not None
    with django_capture_on_commit_callbacks(execute=True):
        annotation_submit(
            assignment_id=assignment.pk,
            annotator=annotator,
            label={"overall": 1, "helpfulness": 1, "truthfulness": 0, "harmlessness": 0},
            rater_confidence=3,
        )
    assert Job.objects.filter(campaign=labelled, kind="compute_stats").exists()


def test_the_dashboard_shows_the_snapshot_to_admins_only(labelled, client, admin_user, annotator):
    from django.urls import reverse

    from annotate.services.stats import stats_snapshot_create

    url = reverse("campaign-stats", args=[labelled.slug])
    client.force_login(admin_user)
    empty = client.get(url).content.decode()
    assert "No statistics yet" in empty
    client.post(reverse("campaign-stats-recompute", args=[labelled.slug]))
    assert Job.objects.filter(campaign=labelled, kind="compute_stats", state="queued").count() == 1
    stats_snapshot_create(campaign=labelled, bootstrap=20)
    page = client.get(url).content.decode()
    assert "rater0" in page and "gpt-x" in page and "human majority (rows)" in page
    overall = StatsSnapshot.objects.get(campaign=labelled).payload["criteria"]["overall"]
    for name in ("fleiss_kappa", "cohen_kappa_mean", "gwet_ac1"):  # each interval under its figure
        low, high = overall["ci95"][name]
        assert f"{low:.3f} – {high:.3f}" in page, name
    assert "Only the human labels that count" in page
    assert 'id="stats-history"' in page and "chart.umd.min.js" in page
    client.force_login(annotator)
    assert client.get(url).status_code == 403


def test_agreement_per_value_of_a_metadata_tag(labelled):
    for n, item in enumerate(labelled.items.order_by("id")):
        item.metadata = {"domain": "code" if n % 2 else "chat", "note": f"free text {n}", "tags": ["x"]}
        item.save(update_fields=["metadata"])
    segments = campaign_stats(campaign=labelled, bootstrap=0)["segments"]
    assert set(segments) == {"domain"}  # a free-text tag (30 values) and a list are not segments
    assert set(segments["domain"]) == {"chat", "code"}
    chat = segments["domain"]["chat"]
    assert chat["n_items"] == 15 and chat["overall"]["n_items_multi"] == 15
    assert chat["overall"]["krippendorff_alpha"]["ordinal"] is not None


def test_an_excluded_annotators_labels_leave_the_statistics(labelled):
    from annotate.models import AnnotatorStanding

    AnnotatorStanding.objects.create(campaign=labelled, annotator=UserFactory(username="rater3"), excluded=True)
    Annotation.objects.filter(
        campaign=labelled, annotator__username="rater2", item__in=labelled.items.all()[:5]
    ).update(too_fast=True)
    snapshot = campaign_stats(campaign=labelled, bootstrap=0)
    assert snapshot["n_human_labels"] == 120 - 30 - 5
    assert snapshot["dropped_labels"] == {"excluded_annotator": 30, "too_fast": 5, "qualification": 0}
    assert [a["annotator"] for a in snapshot["annotators"]] == ["rater0", "rater1", "rater2"]
    assert next(a for a in snapshot["annotators"] if a["annotator"] == "rater2")["n"] == 25
