"""The tagger's prompt and parser: versioned text, messages, structured-output schema, and robust parsing that
turns every bad answer into a failure with a reason instead of a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.judges.templates import text_version
from routing.tagger import prompt
from routing.tagger.prompt import PROMPT_VERSION, parse_tags, response_format, tagger_messages
from routing.tagger.questions import LEVELS, SUBJECTS, TAG_KEYS

GOOD = {
    "subject": "mathematics",
    "expertise_level": 4,
    "open_endedness": 1,
    "safety_concern": 1,
    "complexity_of_intents": 2,
    "format_constraints": 3,
}


def test_the_version_is_the_hash_of_the_prompt_text():
    assert PROMPT_VERSION == text_version(prompt.TEMPLATE_TEXT) and len(PROMPT_VERSION) == 12
    assert text_version(prompt.TEMPLATE_TEXT + " ") != PROMPT_VERSION


def test_messages_carry_the_prompt_and_every_question():
    messages = tagger_messages([{"role": "user", "content": "Prove that 17 is prime."}])
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "Prove that 17 is prime." in user and "$" not in user
    assert all(key in user for key in TAG_KEYS) and all(subject in user for subject in SUBJECTS)
    # a dollar sign in the prompt is the prompt's, not a placeholder
    assert "costs $5 or $$6" in tagger_messages("It costs $5 or $$6")[1]["content"]


def test_the_structured_schema_asks_for_every_tag_in_range():
    schema = response_format()["json_schema"]["schema"]
    assert schema["required"] == list(TAG_KEYS) and schema["properties"]["subject"]["enum"] == list(SUBJECTS)
    for key, (low, high) in LEVELS.items():
        assert (schema["properties"][key]["minimum"], schema["properties"][key]["maximum"]) == (low, high)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD),
        f"Here are the tags:\n```json\n{json.dumps(GOOD, indent=2)}\n```\nHope this helps.",
        f"The prompt asks for a proof. {json.dumps(GOOD)} That is my answer.",
        f'Format: {{"subject": "..."}}. Answer: {json.dumps(GOOD)}',  # the first object holds no tag values
        json.dumps({**GOOD, "subject": "  Mathematics ", "note": "extra keys are ignored"}),
    ],
)
def test_answers_in_the_usual_wrappings_parse(text):
    parsed = parse_tags(text)
    assert parsed.ok, parsed.failure
    assert parsed.tags == GOOD


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "empty"),
        ("   ", "empty"),
        ("I'm sorry, but I can't help with that.", "no JSON object"),
        ("```json\n{not json}\n```", "no JSON object"),
        ("[1, 2, 3]", "no JSON object"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "safety_concern"}), "lacks safety_concern"),
        (json.dumps({**GOOD, "expertise_level": "4"}), "expertise_level must be an integer"),
        (json.dumps({**GOOD, "expertise_level": 4.5}), "expertise_level must be an integer"),
        (json.dumps({**GOOD, "safety_concern": True}), "safety_concern must be an integer"),
        (json.dumps({**GOOD, "open_endedness": 9}), "open_endedness 9 is out of range (1 to 5)"),
        (json.dumps({**GOOD, "format_constraints": -1}), "format_constraints -1 is out of range"),
        (json.dumps({**GOOD, "subject": "astrology"}), "subject 'astrology' is not one of"),
        (json.dumps({**GOOD, "subject": 7}), "subject must be a string"),
    ],
)
def test_bad_answers_are_failures_with_a_reason(text, reason):
    parsed = parse_tags(text)
    assert not parsed.ok and parsed.tags is None
    assert reason in parsed.failure


def test_several_problems_are_all_named():
    parsed = parse_tags(json.dumps({**GOOD, "open_endedness": 0, "complexity_of_intents": "high"}))
    assert "open_endedness 0 is out of range" in parsed.failure and "complexity_of_intents must be" in parsed.failure


@given(st.text(max_size=300))
def test_the_parser_never_raises(text):
    parsed = parse_tags(text)
    assert parsed.ok or parsed.failure


@given(
    st.fixed_dictionaries(
        {
            "subject": st.sampled_from(SUBJECTS),
            **{key: st.integers(low, high) for key, (low, high) in LEVELS.items()},
        }
    ),
    st.text(alphabet=st.characters(blacklist_characters="{}`"), max_size=40),
)
def test_any_valid_answer_round_trips_through_prose(tags, prose):
    assert parse_tags(f"{prose}\n{json.dumps(tags)}\n{prose}").tags == tags
