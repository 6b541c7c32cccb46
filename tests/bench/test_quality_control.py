"""Smoke test of bench/quality_control.py: a tiny run, its result's shape, and what the gate must do."""

import argparse
import json

import pytest
from django.db import transaction

from bench import quality_control

pytestmark = pytest.mark.django_db  # also what makes pytest-django create the test database for the fixture below

TINY = [
    "--qc-items", "30", "--qc-gold", "24", "--qc-good", "4", "--qc-random", "2", "--qc-always-a", "2",
    "--qc-drifters", "1", "--qc-drift-after", "14", "--qc-qualification", "10", "--qc-threshold", "0.8",
]  # fmt: skip

SCENARIO_KEYS = {
    "settings", "final_accuracy", "final_accuracy_every_label", "label_accuracy",
    "human_labels", "work_labels", "gold_labels", "counted_work_labels", "too_fast_labels", "work_labels_per_item",
    "max_work_labels_per_item", "items_with_extra_labels", "extra_labels_asked", "items_contested",
    "bad_annotators", "bad_kept_out", "bad_paused", "bad_share_of_counted_work_labels", "by_kind", "engine_calls",
    "simulated_hours", "wall_s", "ms_per_label",
}  # fmt: skip


def tiny_args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    quality_control.add_arguments(parser)
    args = parser.parse_args([*TINY, *extra])
    args.quick = False
    return args


@pytest.fixture(scope="module")
def result(django_db_setup, django_db_blocker):
    """One tiny run for the whole module, rolled back afterwards (its accounts would join other tests' pools)."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield quality_control.run(tiny_args())
        transaction.set_rollback(True)


def test_result_shape(result):
    assert set(result) == {"parameters", "measurements", "summary"}
    assert json.loads(json.dumps(result)) == result  # what run.py writes must be plain JSON
    scenarios = result["measurements"]["scenarios"]
    assert tuple(scenarios) == quality_control.SCENARIOS
    for name, scenario in scenarios.items():
        assert set(scenario) == SCENARIO_KEYS, name
        assert set(scenario["by_kind"]) == set(quality_control.KINDS), name
        assert 0 <= scenario["final_accuracy"] <= 1
        assert scenario["human_labels"] == scenario["work_labels"] + scenario["gold_labels"]
    assert set(result["measurements"]["comparison"]) == {
        "gate_accuracy_points", "attention_accuracy_points", "overlap_accuracy_points", "controls_accuracy_points",
        "overlap_extra_labels", "overlap_extra_labels_per_accuracy_point",
    }  # fmt: skip
    assert isinstance(result["summary"], str) and result["summary"]


def test_no_controls_lets_everyone_label(result):
    scenario = result["measurements"]["scenarios"]["a_no_controls"]
    assert scenario["gold_labels"] == 0
    for kind, row in scenario["by_kind"].items():
        assert row["kept_out"] == 0 and row["work_labels"] > 0, kind
    assert scenario["work_labels"] == 30 * 3  # every item exactly at the overlap


def test_gate_keeps_random_and_always_a_out(result):
    scenarios = result["measurements"]["scenarios"]
    gate = scenarios["b_gate"]
    for kind in ("random", "always_a"):
        row = gate["by_kind"][kind]
        assert row["not_qualified"] == row["annotators"], (kind, row)
        assert row["work_labels"] == 0, (kind, row)
    assert gate["by_kind"]["good"]["kept_out"] < gate["by_kind"]["good"]["annotators"]
    # The clickers are fast: without the gate they give a large share of the labels that count.
    a_share = scenarios["a_no_controls"]["by_kind"]
    assert a_share["random"]["counted_work_labels"] + a_share["always_a"]["counted_work_labels"] > 30
    assert gate["bad_share_of_counted_work_labels"] < scenarios["a_no_controls"]["bad_share_of_counted_work_labels"]


def test_attention_checks_flag_too_fast_labels(result):
    attention = result["measurements"]["scenarios"]["c_gate_attention"]
    assert attention["too_fast_labels"] > 0  # the drifter clicks faster than the minimum once it drifts
    assert attention["counted_work_labels"] < attention["work_labels"]


def test_dynamic_overlap_stays_within_its_maximum(result):
    scenarios = result["measurements"]["scenarios"]
    overlap = scenarios["d_gate_attention_overlap"]
    assert overlap["max_work_labels_per_item"] <= 5
    assert 30 * 3 < overlap["work_labels"] <= 30 * 3 + overlap["extra_labels_asked"]
    assert overlap["items_with_extra_labels"] > 0
    for name in ("a_no_controls", "b_gate", "c_gate_attention"):
        assert scenarios[name]["max_work_labels_per_item"] == 3, name
