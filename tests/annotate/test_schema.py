"""Label schemas: presets, schema validation and the one label validator (pure, no database)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotate import schema as s


@pytest.mark.parametrize("name", sorted(s.PRESETS))
def test_every_preset_is_a_valid_schema_of_its_kind(name):
    kind = s.PRESET_KINDS[name]
    validated = s.schema_validate(s.preset(name), kind)
    if kind == "pairwise":
        assert "overall" in [a["name"] for a in validated["pairwise"]["aspects"]]


def test_presets_have_the_documented_shapes():
    multipref = s.schema_validate(s.preset("multipref"), "pairwise")
    assert [a["name"] for a in multipref["pairwise"]["aspects"]] == [
        "overall",
        "helpfulness",
        "truthfulness",
        "harmlessness",
    ]
    assert {a["scale"] for a in multipref["pairwise"]["aspects"]} == {2}
    assert multipref["confidence"] is True
    hs2 = s.schema_validate(s.preset("helpsteer2"), "rubric")
    assert [(c["name"], c["min"], c["max"]) for c in hs2["rubric"]["criteria"]] == [
        ("helpfulness", 0, 4),
        ("correctness", 0, 4),
        ("coherence", 0, 4),
        ("complexity", 0, 4),
        ("verbosity", 0, 4),
    ]
    hs2p = s.schema_validate(s.preset("helpsteer2-preference"), "pairwise")
    assert hs2p["pairwise"]["aspects"][0]["scale"] == 3 and hs2p["justification"] == "required"
    prometheus = s.schema_validate(s.preset("prometheus"), "rubric")
    criterion = prometheus["rubric"]["criteria"][0]
    assert (criterion["min"], criterion["max"]) == (1, 5) and sorted(criterion["scores"]) == ["1", "2", "3", "4", "5"]
    simple = s.schema_validate(s.preset("simple-pairwise"), "pairwise")
    assert simple["pairwise"]["aspects"] == [
        {"name": "overall", "scale": 1, "allow_tie": True, "description": "Which response is better overall?"}
    ]


@pytest.mark.parametrize(
    "schema, kind, message",
    [
        ({"pairwise": {"aspects": [{"name": "quality", "scale": 2}]}}, "pairwise", "needs an 'overall' aspect"),
        ({"pairwise": {"aspects": [{"name": "overall", "scale": 4}]}}, "pairwise", "aspects[0].scale"),
        ({"pairwise": {"aspects": []}}, "pairwise", "non-empty list of aspects"),
        ({"rubric": {"criteria": [{"name": "x", "min": 3, "max": 1}]}}, "rubric", "min < max"),
        (
            {"rubric": {"criteria": [{"name": "x", "min": 1, "max": 3, "scores": {"7": "?"}}]}},
            "rubric",
            "7 outside 1..3",
        ),
        ({"pairwise": {"aspects": [{"name": "Overall!", "scale": 1}]}}, "pairwise", "aspects[0].name"),
        (
            {"pairwise": {"aspects": [{"name": "overall", "scale": 1}, {"name": "overall", "scale": 2}]}},
            "pairwise",
            "used twice",
        ),
        (
            {"pairwise": {"aspects": [{"name": "overall", "scale": 1}]}, "justification": "maybe"},
            "pairwise",
            "justification",
        ),
        ({}, "nonsense", "kind"),
    ],
)
def test_bad_schemas_name_the_field(schema, kind, message):
    with pytest.raises(s.SchemaError, match=message.replace("[", r"\[").replace("]", r"\]").replace("'", ".")):
        s.schema_validate(schema, kind)


MULTIPREF = s.schema_validate(s.preset("multipref"), "pairwise")
HS2P = s.schema_validate(s.preset("helpsteer2-preference"), "pairwise")
HS2 = s.schema_validate(s.preset("helpsteer2"), "rubric")


def full(value=1):
    return {"overall": value, "helpfulness": value, "truthfulness": value, "harmlessness": value}


def test_a_complete_label_passes():
    assert s.label_validate(schema=MULTIPREF, kind="pairwise", label=full(-2), confidence=4) == full(-2)


@pytest.mark.parametrize(
    "label, field, message",
    [
        ({**full(), "overall": 3}, "label.overall", "3 is outside -2..2"),
        ({**full(), "overall": "1"}, "label.overall", "not an integer"),
        ({**full(), "overall": True}, "label.overall", "not an integer"),
        ({**full(), "style": 1}, "label.style", "unknown key"),
        ({"overall": 1}, "label.helpfulness", "missing"),
        ([1, 2], "label", "must be an object"),
    ],
)
def test_bad_labels_name_the_key(label, field, message):
    with pytest.raises(s.LabelError, match=message) as info:
        s.label_validate(schema=MULTIPREF, kind="pairwise", label=label)
    assert info.value.field == field


def test_required_justification_and_confidence_rules():
    with pytest.raises(s.LabelError, match="justification: required"):
        s.label_validate(schema=HS2P, kind="pairwise", label={"overall": 2}, justification="  ")
    assert s.label_validate(schema=HS2P, kind="pairwise", label={"overall": 2}, justification="B cites sources")
    with pytest.raises(s.LabelError, match="does not ask for confidence"):
        s.label_validate(schema=HS2P, kind="pairwise", label={"overall": 2}, justification="x", confidence=3)
    with pytest.raises(s.LabelError, match="must be one of 1..5"):
        s.label_validate(schema=MULTIPREF, kind="pairwise", label=full(), confidence=9)
    # Judges may rate a subset and need no justification.
    assert s.label_validate(schema=HS2P, kind="pairwise", label={"overall": -3}, partial=True, source="judge")


def test_ties_can_be_disallowed():
    schema = s.schema_validate(
        {"pairwise": {"aspects": [{"name": "overall", "scale": 2, "allow_tie": False}]}}, "pairwise"
    )
    with pytest.raises(s.LabelError, match="ties are not allowed"):
        s.label_validate(schema=schema, kind="pairwise", label={"overall": 0})


def test_both_kind_rates_each_criterion_for_each_response():
    schema = s.schema_validate({**s.preset("simple-pairwise"), **s.preset("prometheus")}, "both")
    keys = [k.name for k in s.label_keys(schema, "both")]
    assert keys == ["overall", "score_a", "score_b"]
    assert s.label_validate(schema=schema, kind="both", label={"overall": 0, "score_a": 5, "score_b": 1})


@given(
    st.dictionaries(st.sampled_from([c["name"] for c in HS2["rubric"]["criteria"]]), st.integers(-10, 10), min_size=5)
)
def test_rubric_values_pass_exactly_when_in_range(label):
    in_range = all(0 <= v <= 4 for v in label.values())
    try:
        s.label_validate(schema=HS2, kind="rubric", label=label)
        assert in_range
    except s.LabelError:
        assert not in_range


@given(st.integers(1, 3), st.integers(-5, 5))
def test_pairwise_scale_is_symmetric(scale, value):
    schema = s.schema_validate({"pairwise": {"aspects": [{"name": "overall", "scale": scale}]}}, "pairwise")
    ok = -scale <= value <= scale
    mirrored_ok = -scale <= -value <= scale
    assert ok == mirrored_ok
    if ok:
        assert s.label_validate(schema=schema, kind="pairwise", label={"overall": value}) == {"overall": value}
    assert len(s.pairwise_words(scale)) == 2 * scale + 1
