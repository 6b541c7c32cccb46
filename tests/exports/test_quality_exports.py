"""Quality control in exports, end to end from the database: adjudicated items export with the reviewer's label,
the labels that do not count stay out (and are counted), undecided items are left out exactly as the hybrid
leaderboard leaves them out, and the card sets humans' and judges' gold accuracy side by side."""

from __future__ import annotations

import json

import pytest

from annotate.models import Adjudication, Annotation, AnnotatorStanding, Assignment, DatasetExport, Job
from annotate.services import exports as exports_service
from annotate.services.exports import export_start, pseudonym
from annotate.services.quality.labels import countable_human_annotations, excluded_annotator_ids
from annotate.services.stats import campaign_stats
from jobs.runner import job_run
from tests.factories import AnnotationFactory, CampaignFactory, ItemFactory, JudgeFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)  # jobs report progress on a connection of their own

REASON = "B quotes the paper; A invents a citation."


@pytest.fixture
def campaign(settings, tmp_path):
    """Items: `clear` (three say A), `split` (A against B: no majority), `contested` (A, B, tie; adjudicated
    B), `gold` (an attention check the annotators got right), `qual` (a gold item answered in qualification).
    On `clear`, an excluded annotator and a too-fast label both say B and must not count."""
    settings.TANDEM_EXPORT_DIR = tmp_path / "exports"
    campaign = CampaignFactory(preset_name="simple-pairwise")
    good = [UserFactory(username=f"good-{n}") for n in range(3)]
    excluded, fast, trainee = UserFactory(username="clicker-x9"), UserFactory(username="speeder-x9"), UserFactory()
    AnnotatorStanding.objects.create(campaign=campaign, annotator=excluded, excluded=True, note="random clicker")
    items = {
        name: ItemFactory(campaign=campaign, external_id=name, model_a="m1", model_b="m2")
        for name in ("clear", "split", "contested")
    }
    for name in ("gold", "qual"):
        items[name] = ItemFactory(
            campaign=campaign, external_id=name, model_a="m1", model_b="m2", gold_label={"overall": 1}
        )
    votes = {"clear": (-1, -1, -1), "split": (-1, 1), "contested": (-1, 1, 0), "gold": (1, 1)}
    for name, values in votes.items():
        for user, value in zip(good, values, strict=False):
            AnnotationFactory(item=items[name], annotator=user, label={"overall": value},
                              gold_correct=True if name == "gold" else None)  # fmt: skip
    AnnotationFactory(item=items["clear"], annotator=excluded, label={"overall": 1})
    AnnotationFactory(item=items["clear"], annotator=fast, label={"overall": 1}, too_fast=True)
    lease = Assignment.objects.create(
        campaign=campaign, item=items["qual"], annotator=trainee, state=Assignment.State.SUBMITTED,
        purpose=Assignment.Purpose.QUALIFICATION, expires_at="2030-01-01T00:00:00Z",
    )  # fmt: skip
    AnnotationFactory(
        item=items["qual"], annotator=trainee, assignment=lease, label={"overall": -1}, gold_correct=False
    )
    reviewer = UserFactory(username="reviewer-on-record")
    Adjudication.objects.create(campaign=campaign, item=items["contested"], reviewer=reviewer, label={"overall": 1},
                                reason=REASON)  # fmt: skip
    judge = JudgeFactory(name="gold-judge", imported=True)
    for swapped, value in ((False, 1), (True, -1)):  # right in one order only: half its gold answers
        Annotation.objects.create(item=items["gold"], campaign=campaign, source="judge", judge=judge,
                                  label={"overall": value}, position_swapped=swapped, prompt_version="v1")  # fmt: skip
    return campaign


def exported(campaign, **options) -> tuple[DatasetExport, dict[str, list[dict]], str]:
    export = export_start(campaign=campaign, options={"file_type": "jsonl", **options}, dispatch=False)
    job = job_run(job_id=export.job.pk)
    assert job.state == Job.State.SUCCEEDED, job.error
    export.refresh_from_db()
    directory = exports_service.export_directory(export)
    files = {f["split"]: [json.loads(line) for line in (directory / f["name"]).read_text().splitlines()]
             for f in export.files}  # fmt: skip
    return export, files, (directory / "README.md").read_text()


def test_an_adjudicated_item_exports_with_the_adjudicated_label(campaign):
    export, files, card = exported(campaign, format="trl", ties="drop")
    rows = {row["id"]: row for row in files["train"]}
    contested = rows["contested"]
    assert contested["chosen"] == "Second response." and contested["preference_strength"] == 1.0
    assert contested["final_source"] == "adjudicated" and contested["adjudication_reason"] == REASON
    assert rows["clear"]["final_source"] == "majority" and rows["clear"]["adjudication_reason"] == ""
    assert export.counts["final_sources"]["adjudicated"] == 1
    # The reviewer is provenance the card and files never name.
    _, raw, _ = exported(campaign, format="raw")
    reviewer_rows = [row for row in raw["train"] if row["source"] == "reviewer"]
    assert [(r["id"], r["label"]["overall"], r["justification"]) for r in reviewer_rows] == [("contested", 1, REASON)]
    texts = json.dumps(files) + json.dumps(raw) + card
    assert "reviewer-on-record" not in texts and REASON in card + json.dumps(files)


def test_labels_that_do_not_count_stay_out_of_exports_and_are_counted(campaign):
    export, files, card = exported(campaign, format="raw")
    annotators = {row["annotator"] for row in files["train"] if row["source"] == "human"}
    names = {"clicker-x9", "speeder-x9"}
    left_out = {pseudonym(Annotation.objects.filter(annotator__username=n).first().annotator_id) for n in names}
    assert annotators and not annotators & left_out
    assert not any(row["id"] == "qual" and row["source"] == "human" for row in files["train"])
    dropped = export.counts["dropped"]
    assert (dropped["excluded_annotator"], dropped["too_fast"], dropped["qualification"]) == (1, 1, 1)
    assert "1 from annotators an admin excluded, 1 submitted faster than the campaign's minimum time, 1" in card


def test_undecided_items_are_left_out_of_exports_and_the_leaderboard_alike(campaign):
    export, files, card = exported(campaign, format="helpsteer2-preference", ties="split")
    exported_ids = {row["id"] for rows in files.values() for row in rows}
    assert "split" not in exported_ids and {"clear", "contested", "gold"} <= exported_ids
    snapshot = campaign_stats(campaign=campaign, bootstrap=0)
    board = snapshot["leaderboards"]
    assert export.counts["dropped"]["no_majority"] == board["dropped"]["no_majority"] == 1
    assert board["adjudicated"] == 1
    # The hybrid board rates the items the export kept: clear, contested, gold (qual's only label does not count).
    assert {row["n"] for row in snapshot["leaderboard"]} == {3}
    assert "Items without a strict majority (undecided) are left out: 1." in card


def test_statistics_count_only_the_labels_that_count(campaign):
    snapshot = campaign_stats(campaign=campaign, bootstrap=50)
    assert snapshot["n_human_labels"] == 10  # 3 + 2 + 3 + 2 by the good annotators
    assert snapshot["dropped_labels"] == {"excluded_annotator": 1, "too_fast": 1, "qualification": 1}
    shown = {row["annotator"] for row in snapshot["annotators"]}
    assert shown == {"good-0", "good-1", "good-2"}
    excluded = AnnotatorStanding.objects.get(campaign=campaign, excluded=True).annotator_id
    assert excluded_annotator_ids(campaign=campaign) == {excluded}
    assert countable_human_annotations(campaign=campaign).count() == 10
    assert set(snapshot["criteria"]["overall"]["ci95"]) == {
        "krippendorff_alpha_ordinal", "fleiss_kappa", "cohen_kappa_mean", "gwet_ac1",
    }  # fmt: skip


def test_the_card_sets_humans_and_judges_gold_accuracy_side_by_side(campaign):
    campaign.judge_gold_threshold = 0.8
    campaign.save(update_fields=["judge_gold_threshold"])
    _, _, card = exported(campaign, format="trl")
    section = card.split("## Gold accuracy: humans and judges", 1)[1].split("\n## ", 1)[0]
    lines = {line.split(" | ")[0].lstrip("| "): line for line in section.splitlines() if line.startswith("| ")}
    # good-0 and good-1 right on the attention check, the trainee wrong in qualification: 2 of 3.
    assert "| 3 | 3 | 66.7% |" in lines["humans (all)"]
    assert "| 3 | 3 | 66.7% |" in lines["humans whose labels count"]  # nobody excluded answered gold
    assert "50.0%" in lines["judge gold-judge (qualified: no)"]
    assert "may not be routed to the judges alone" in section
    for name in ("good-0", "good-1", "clicker-x9", "speeder-x9"):
        assert name not in card
