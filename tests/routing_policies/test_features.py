"""Routing features: text statistics, metadata tags, the tagger's prompt tags, precomputed similarities and judge
signals."""

from __future__ import annotations

import numpy as np
import pytest

from routing.features import TAG_FEATURES, feature_matrix, feature_names, item_features, judge_signals, tag_features
from routing.tagger.questions import LEVELS, SUBJECTS


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


TAGS = {
    "subject": "mathematics",
    "expertise_level": 4,
    "open_endedness": 1,
    "safety_concern": 2,
    "complexity_of_intents": 3,
    "format_constraints": 2,
}


def _pair(**extra) -> dict:
    return {"prompt": "p", "response_a": "a b", "response_b": "c", "metadata": {"domain": "x"}, **extra}


def test_tag_columns_of_tagged_and_untagged_rows():
    items = [_pair(tags=TAGS), _pair(), _pair(tags=None)]
    matrix, names = feature_matrix(items, vocabulary=["domain=x"])
    assert names == feature_names(["domain=x"], tags=True)
    assert set(TAG_FEATURES) <= set(names) and len(TAG_FEATURES) == 1 + len(LEVELS) + len(SUBJECTS)
    tagged, untagged, failed = (dict(zip(names, row, strict=True)) for row in matrix)
    assert tagged["tags_missing"] == 0 and tagged["tagged:expertise_level"] == 4
    assert tagged["tagged:format_constraints"] == 2 and tagged["tagged:subject=mathematics"] == 1
    assert sum(tagged[f"tagged:subject={s}"] for s in SUBJECTS) == 1
    # an untagged row (no tags, or a failed answer) is neutral and says so
    for row in (untagged, failed):
        assert row["tags_missing"] == 1 and sum(row[f"tagged:subject={s}"] for s in SUBJECTS) == 0
        assert row["tagged:expertise_level"] == 3 and row["tagged:format_constraints"] == 0
    # the other features do not move
    plain, plain_names = feature_matrix(items, vocabulary=["domain=x"], tags=False)
    np.testing.assert_array_equal(matrix[:, [names.index(n) for n in plain_names]], plain)


def test_without_tags_the_features_are_what_they_were():
    items = [_pair(), _pair(response_b="c d e")]
    matrix, names = feature_matrix(items, vocabulary=["domain=x"])
    assert names == feature_names(["domain=x"]) and not set(TAG_FEATURES) & set(names)
    forced, forced_names = feature_matrix(items, vocabulary=["domain=x"], tags=True)  # a live pass block
    assert (
        forced_names == feature_names(["domain=x"], tags=True)
        and (forced[:, forced_names.index("tags_missing")] == 1).all()
    )


def test_yes_no_answers_unknown_subjects_and_bad_values():
    row = tag_features({"subject": "Astrology", "safety_concern": True, "format_constraints": False})
    assert row["tagged:safety_concern"] == 1 and row["tagged:format_constraints"] == 0
    assert sum(row[f"tagged:subject={s}"] for s in SUBJECTS) == 0 and row["tags_missing"] == 0
    assert row["tagged:expertise_level"] == 3  # a level the tags lack is neutral
    with pytest.raises(ValueError, match="expertise_level"):
        tag_features({"expertise_level": "high"})
    with pytest.raises(ValueError, match="tags must be an object"):
        tag_features(["mathematics"])


def test_precomputed_similarities_are_the_embedding_column():
    items = [_pair(), _pair(), _pair()]
    matrix, names = feature_matrix(items, similarities=np.array([0.1, 0.5, 0.9]))
    assert names == feature_names(embeddings=True)
    np.testing.assert_allclose(matrix[:, names.index("embedding_similarity")], [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="3 items but 2 similarities"):
        feature_matrix(items, similarities=[0.1, 0.2])
