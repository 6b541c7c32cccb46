"""Routing features: text statistics, metadata tags and judge signals."""

from __future__ import annotations

import pytest

from routing.features import feature_matrix, item_features, judge_signals


def test_text_features():
    item = {
        "prompt": [{"role": "user", "content": "Name two colours"}],
        "response_a": "red and blue",
        "response_b": "Red, green and blue here",
        "metadata": {"domain": "art", "tags": ["safety", "easy"]},
    }
    features = item_features(item, None, vocabulary=["domain=art", "domain=code", "tags=safety"])
    assert features["prompt_tokens"] == 3
    assert features["response_a_tokens"] == 3 and features["response_b_tokens"] == 5
    assert features["response_a_chars"] == 12
    assert features["length_diff_tokens"] == 2
    assert features["length_ratio"] == pytest.approx(3 / 5)
    assert features["lexical_overlap"] == pytest.approx(3 / 5)  # {red, and, blue} of {red, and, blue, green, here}
    assert (features["tag:domain=art"], features["tag:domain=code"], features["tag:tags=safety"]) == (1, 0, 1)
    assert features["judge_confidence"] == 1.0 and features["judge_flipped"] == 0


def test_empty_responses_are_defined():
    features = item_features({"prompt": "", "response_a": "", "response_b": ""}, None)
    assert features["length_ratio"] == 1.0 and features["lexical_overlap"] == 1.0


def test_judge_signals():
    flip = judge_signals([{"judge": "j", "label": {"overall": -1}, "label_swapped": {"overall": 1}}])
    assert flip["flipped"] and flip["tie"] and flip["label"] == {"overall": 0}
    failed = judge_signals([{"judge": "j", "label": {"overall": 1}, "label_swapped": None}])
    assert failed["parse_failure"] and failed["label"] is None
    split = judge_signals(
        [
            {"judge": "a", "label": {"overall": 2}, "label_swapped": {"overall": 1}, "confidence": 0.7},
            {"judge": "b", "label": {"overall": 1}, "confidence": 0.9},
            {"judge": "c", "label": {"overall": -1}},
        ]
    )
    assert split["disagree"] and not split["flipped"] and not split["parse_failure"]
    assert split["label"] == {"overall": 1} and split["confidence"] == 0.7
    nothing = judge_signals([])
    assert nothing["label"] is None and nothing["parse_failure"]
    # Two judges on the same side at different strengths: that side, at the milder strength; not a failure.
    strengths = judge_signals([{"judge": "a", "label": {"overall": 2}}, {"judge": "b", "label": {"overall": 1}}])
    assert strengths["label"] == {"overall": 1} and not strengths["parse_failure"] and not strengths["disagree"]
    three = judge_signals([{"judge": j, "label": {"overall": v}} for j, v in (("a", -2), ("b", -1), ("c", 1))])
    assert three["label"] == {"overall": -1} and three["disagree"]
    even = judge_signals([{"judge": "a", "label": {"overall": 2}}, {"judge": "b", "label": {"overall": -1}}])
    assert even["label"] == {"overall": 0} and even["disagree"] and even["tie"] and not even["parse_failure"]
    leaning = judge_signals([{"judge": "a", "label": {"overall": -2}}, {"judge": "b", "label": {"overall": 0}}])
    assert leaning["label"] == {"overall": -1} and leaning["disagree"]


def test_feature_matrix_columns_follow_names():
    items = [{"prompt": "p", "response_a": "a b", "response_b": "c", "metadata": {"domain": "x"}}] * 2
    signals = [{"flipped": True}, None]
    matrix, names = feature_matrix(items, signals, vocabulary=["domain=x"])
    assert matrix.shape == (2, len(names))
    assert matrix[0, names.index("judge_flipped")] == 1 and matrix[1, names.index("judge_flipped")] == 0
    assert (matrix[:, names.index("tag:domain=x")] == 1).all()
    with pytest.raises(ValueError):
        feature_matrix(items, [None])
