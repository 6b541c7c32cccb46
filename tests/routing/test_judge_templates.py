"""Judge prompt templates: what they show the judge, their versions, custom texts, schemas, and round trips."""

import json
import re

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate.schema import PRESET_KINDS, PRESETS, label_keys, label_validate, preset, schema_validate
from routing.judges import templates as t
from routing.judges.parsing import allowed_verdicts
from routing.judges.templates import BUILTIN_TEMPLATES, render_prompt, template_for, text_version

PAIRWISE_PRESETS = sorted(name for name in PRESETS if PRESET_KINDS[name] == "pairwise")
RUBRIC_PRESETS = sorted(name for name in PRESETS if PRESET_KINDS[name] == "rubric")
COMBINATIONS = [("pairwise-arena", p) for p in PAIRWISE_PRESETS]
COMBINATIONS += [("llmbar", p) for p in PAIRWISE_PRESETS]
COMBINATIONS += [("rubric-prometheus", p) for p in RUBRIC_PRESETS]
# Campaigns of both kinds: a pairwise preset's aspects with a rubric preset's criteria (names must not clash).
BOTH_SCHEMAS = ["simple-pairwise+prometheus", "multipref+prometheus", "helpsteer2-preference+helpsteer2"]
COMBINATIONS += [("both-arena-prometheus", f"both:{name}") for name in BOTH_SCHEMAS]


def schema_of(name):
    if name.startswith("both:"):
        pairwise, rubric = name.removeprefix("both:").split("+")
        return schema_validate({"pairwise": preset(pairwise)["pairwise"], "rubric": preset(rubric)["rubric"]}, "both")
    return schema_validate(preset(name), PRESET_KINDS[name])


def render(template, schema, **overrides):
    kwargs = {"campaign_schema": schema, "kind": template.kind, "guidelines": "", "prompt": "What is 2+2?"}
    if template.kind == "rubric":
        kwargs["response"] = "It is four."
    else:
        kwargs["responses"] = ["It is four.", "It is five."]
    return template.render(**(kwargs | overrides))


def user_text(messages):
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


# What the built-in templates show


@pytest.mark.parametrize(("name", "preset_name"), COMBINATIONS)
def test_every_builtin_renders_a_system_and_a_user_message(name, preset_name):
    template = BUILTIN_TEMPLATES[name]
    messages = render(template, schema_of(preset_name), guidelines="Prefer **short** answers.")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert all(m["content"].strip() and "$" not in m["content"] for m in messages)
    text = user_text(messages)
    assert "What is 2+2?" in text and "Prefer **short** answers." in text


def test_the_arena_prompt_shows_responses_in_the_order_given_with_aspects_and_guidelines():
    schema = schema_of("multipref")
    messages = render(BUILTIN_TEMPLATES["pairwise-arena"], schema, responses=["FIRST SHOWN", "SECOND SHOWN"])
    text = user_text(messages)
    assert text.index("Response A") < text.index("FIRST SHOWN") < text.index("Response B") < text.index("SECOND SHOWN")
    for aspect in schema["pairwise"]["aspects"]:
        assert f"- {aspect['name']}: {aspect['description']}" in text
        assert f"\n{aspect['name']}: [[verdict]]" in text  # one answer line per aspect
    assert t.NO_GUIDELINES in text


@pytest.mark.parametrize(
    ("scale", "allow_tie", "expected"),
    [
        (1, True, ["A>B", "A=B", "B>A"]),
        (1, False, ["A>B", "B>A"]),
        (2, True, ["A>>B", "A>B", "A=B", "B>A", "B>>A"]),
        (3, True, ["A>>>B", "A>>B", "A>B", "A=B", "B>A", "B>>A", "B>>>A"]),
        (3, False, ["A>>>B", "A>>B", "A>B", "B>A", "B>>A", "B>>>A"]),
    ],
)
def test_the_arena_prompt_lists_only_the_points_the_schema_allows(scale, allow_tie, expected):
    schema = schema_validate(
        {"pairwise": {"aspects": [{"name": "overall", "scale": scale, "allow_tie": allow_tie}]}}, "pairwise"
    )
    text = user_text(render(BUILTIN_TEMPLATES["pairwise-arena"], schema))
    assert re.findall(r"^\[\[([AB<>=]+)\]\]: ", text, re.MULTILINE) == expected
    if scale == 3:
        assert "[[A>B]]: Response A is slightly better" in text and "[[B>>>A]]: Response B is much better" in text
    if allow_tie:
        assert "[[A=B]]: Tie" in text


def test_aspects_with_different_scales_get_their_own_option_lists():
    schema = schema_validate(
        {
            "pairwise": {
                "aspects": [
                    {"name": "overall", "scale": 2, "allow_tie": True},
                    {"name": "safety", "scale": 1, "allow_tie": False},
                ]
            }
        },
        "pairwise",
    )
    text = user_text(render(BUILTIN_TEMPLATES["pairwise-arena"], schema))
    safety = text.split("Verdict options for safety:\n")[1].split("\n\n")[0]
    assert safety.splitlines() == ["[[A>B]]: Response A is better", "[[B>A]]: Response B is better"]
    assert "Verdict options for overall:\n[[A>>B]]" in text


def test_a_chat_prompt_is_rendered_as_a_transcript():
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "And 2+2?"}, {"type": "image_url"}]},
    ]
    text = render_prompt(chat)
    assert text == "[System]\nBe brief.\n\n[User]\nHi\n\n[Assistant]\nHello!\n\n[User]\nAnd 2+2?\n[image_url]"
    assert render_prompt([{"role": "user", "content": "Just this"}]) == "Just this"
    messages = render(BUILTIN_TEMPLATES["pairwise-arena"], schema_of("simple-pairwise"), prompt=chat)
    assert "[Assistant]\nHello!" in user_text(messages)


def test_the_prometheus_prompt_shows_every_criterion_and_every_score_description():
    schema = schema_of("helpsteer2")
    text = user_text(render(BUILTIN_TEMPLATES["rubric-prometheus"], schema, reference="Four."))
    for criterion in schema["rubric"]["criteria"]:
        assert f"{criterion['name']} (score 0 to 4): {criterion['description']}" in text
        for score, description in criterion["scores"].items():
            assert f"- Score {score}: {description}" in text
        assert f"\n{criterion['name']}: [RESULT] <an integer from 0 to 4>" in text
    assert "Four." in text and t.NO_REFERENCE not in text
    assert t.NO_REFERENCE in user_text(render(BUILTIN_TEMPLATES["rubric-prometheus"], schema))


def test_a_single_criterion_answers_with_a_bare_result_line():
    text = user_text(render(BUILTIN_TEMPLATES["rubric-prometheus"], schema_of("prometheus")))
    assert text.endswith("[RESULT] <an integer from 1 to 5>")


def test_the_llmbar_prompt_shows_outputs_a_and_b_and_asks_for_one():
    text = user_text(render(BUILTIN_TEMPLATES["llmbar"], schema_of("multipref"), responses=["left", "right"]))
    assert text.index("# Output (a):\nleft") < text.index("# Output (b):\nright")
    assert 'Answer with "Output (a)" or "Output (b)" only' in text
    assert "fulfils the request" not in text  # it rates `overall` only: no other aspect is shown


def test_structured_rendering_asks_for_the_json_object():
    schema = schema_of("multipref")
    text = user_text(render(BUILTIN_TEMPLATES["pairwise-arena"], schema, structured=True))
    assert "Answer with a JSON object only" in text and '"verdicts"' in text and "[[verdict]]" not in text
    rubric = user_text(render(BUILTIN_TEMPLATES["rubric-prometheus"], schema_of("helpsteer2"), structured=True))
    assert '"scores"' in rubric and '"feedback"' in rubric


def test_render_refuses_what_the_template_cannot_judge():
    arena, rubric = BUILTIN_TEMPLATES["pairwise-arena"], BUILTIN_TEMPLATES["rubric-prometheus"]
    with pytest.raises(ValueError, match="exactly two responses"):
        render(arena, schema_of("simple-pairwise"), responses=["only one"])
    with pytest.raises(ValueError, match="needs the response"):
        render(rubric, schema_of("prometheus"), response=None)
    with pytest.raises(ValueError, match="not a pairwise campaign"):
        render(rubric, schema_of("prometheus"), kind="pairwise")


def test_a_campaign_of_both_kinds_uses_either_template():
    both = schema_validate(
        {
            "pairwise": {"aspects": [{"name": "overall", "scale": 2}]},
            "rubric": {"criteria": [{"name": "quality", "min": 1, "max": 5}]},
        },
        "both",
    )
    assert render(BUILTIN_TEMPLATES["pairwise-arena"], both, kind="both")
    assert "[RESULT] <an integer from 1 to 5>" in user_text(
        render(BUILTIN_TEMPLATES["rubric-prometheus"], both, kind="both")
    )


def test_the_both_prompt_shows_both_responses_compares_them_and_grades_each():
    schema = schema_of("both:multipref+prometheus")
    template = BUILTIN_TEMPLATES["both-arena-prometheus"]
    text = user_text(render(template, schema, responses=["FIRST SHOWN", "SECOND SHOWN"], reference="Four."))
    assert text.index("Response A") < text.index("FIRST SHOWN") < text.index("Response B") < text.index("SECOND SHOWN")
    assert "- truthfulness: Which response is more accurate" in text and "Four." in text
    assert "score (score 1 to 5)" in text and "- Score 5: The response fully" in text  # the rubric, with its scores
    lines = text.rsplit("brackets included, and each <...> with a score:\n", 1)[1].splitlines()
    assert lines == [
        "overall: [[verdict]]",
        "helpfulness: [[verdict]]",
        "truthfulness: [[verdict]]",
        "harmlessness: [[verdict]]",
        "score_a: [RESULT] <an integer from 1 to 5>",
        "score_b: [RESULT] <an integer from 1 to 5>",
    ]
    structured = user_text(render(template, schema, structured=True))
    assert '"verdicts"' in structured and '"score_b": "<an integer from 1 to 5>"' in structured
    assert t.NO_REFERENCE in user_text(render(template, schema))
    with pytest.raises(ValueError, match="a both judgment needs exactly two responses"):
        render(template, schema, responses=["only one"])
    with pytest.raises(ValueError, match="not a pairwise campaign"):
        render(template, schema_of("simple-pairwise"), kind="pairwise")


def test_a_both_answer_is_one_whole_label_of_the_campaigns_schema():
    schema = schema_of("both:helpsteer2-preference+helpsteer2")
    template = BUILTIN_TEMPLATES["both-arena-prometheus"]
    criteria = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    label = {"overall": 3}
    for k, criterion in enumerate(criteria):
        label |= {f"{criterion}_a": k, f"{criterion}_b": (k + 2) % 5}
    for structured in (False, True):
        answer = template.format_answer(label, campaign_schema=schema, structured=structured, reasoning="B wins.")
        result = template.parse(answer, campaign_schema=schema)
        assert result.label == label and list(result.label) == [k.name for k in label_keys(schema, "both")]
        assert label_validate(schema=schema, kind="both", label=result.label, source="judge") == label
        assert result.reasoning == "B wins."
    # Half an answer is no label: the comparison without the grades, or the grades without it.
    comparison_only = "B is better.\n\noverall: [[B>>>A]]"
    assert (
        "no verdict found (expected a score such as [RESULT] 3)"
        in template.parse(comparison_only, campaign_schema=schema).failure
    )
    one_side = template.format_answer(label, campaign_schema=schema).replace("verbosity_b: [RESULT] 1", "")
    assert template.parse(one_side, campaign_schema=schema).failure == "no verdict for 'verbosity_b'"
    out_of_range = template.format_answer(label, campaign_schema=schema).replace(
        "coherence_a: [RESULT] 2", "coherence_a: [RESULT] 7"
    )
    assert "score 7 for 'coherence_a' is outside 0..4" in template.parse(out_of_range, campaign_schema=schema).failure
    refusal = template.parse("I'm sorry, but I can't help with that.", campaign_schema=schema)
    assert refusal.failure.startswith("the judge refused") and ";" not in refusal.failure  # said once, not per part


def test_a_custom_both_text_keeps_the_combined_format():
    text = "$prompt\nFirst: $response_a\nSecond: $response_b\nRubric: $criteria\n$verdict_options"
    template = template_for(name="", override=text, kind="both")
    assert (template.kind, template.based_on, template.verdict_format) == (
        "both",
        "both-arena-prometheus",
        "arena_prometheus",
    )
    schema = schema_of("both:simple-pairwise+prometheus")
    assert "score_a: [RESULT]" in render(template, schema)[0]["content"]
    with pytest.raises(ValueError, match=r"unknown placeholder \$response in a both template"):
        template_for(name="", override="$prompt $response $response_a $response_b", kind="both")


# Versions, lookup and custom texts


def test_versions_are_short_hashes_of_the_text():
    versions = {template.version for template in BUILTIN_TEMPLATES.values()}
    assert len(versions) == len(BUILTIN_TEMPLATES)
    for template in BUILTIN_TEMPLATES.values():
        assert re.fullmatch(r"[0-9a-f]{12}", template.version)
        assert template.version == text_version(template.text)
    edited = t.JudgeTemplate("pairwise-arena", "pairwise", "arena", t.PAIRWISE_ARENA_TEXT + "\nBe strict.")
    assert edited.version != BUILTIN_TEMPLATES["pairwise-arena"].version


def test_template_for_picks_the_default_per_kind_and_names_unknown_templates():
    assert template_for(name="", override="", kind="pairwise").name == "pairwise-arena"
    assert template_for(name=" ", override="", kind="rubric").name == "rubric-prometheus"
    assert template_for(name="llmbar", override="", kind="pairwise") is BUILTIN_TEMPLATES["llmbar"]
    assert template_for(name="", override="", kind="both").name == "both-arena-prometheus"
    with pytest.raises(ValueError, match=r"unknown judge template 'mt-bench'; built-in templates: both-arena-prom"):
        template_for(name="mt-bench", override="", kind="pairwise")
    with pytest.raises(ValueError, match="judges pairwise labels, not rubric"):
        template_for(name="llmbar", override="", kind="rubric")
    with pytest.raises(ValueError, match="judges pairwise labels, not both"):
        template_for(name="pairwise-arena", override="", kind="both")
    with pytest.raises(ValueError, match="pairwise, rubric, both labels, not 'ranking'"):
        template_for(name="", override="", kind="ranking")


CUSTOM_PAIRWISE = """\
[system]
You grade answers for a maths tutor.
[user]
Question: $prompt
First answer: $response_a
Second answer: $response_b
Judge: $aspects
Guidelines: $guidelines
Costs $$5 per call.
$verdict_options
"""


def test_a_custom_text_is_versioned_by_its_hash_and_keeps_its_kinds_verdict_format():
    template = template_for(name="", override=CUSTOM_PAIRWISE, kind="pairwise")
    assert (template.name, template.based_on, template.verdict_format) == ("custom", "pairwise-arena", "arena")
    assert template.version == text_version(CUSTOM_PAIRWISE) != BUILTIN_TEMPLATES["pairwise-arena"].version
    schema = schema_of("simple-pairwise")
    messages = render(template, schema, guidelines="Exact answers only.")
    assert messages[0] == {"role": "system", "content": "You grade answers for a maths tutor."}
    text = messages[1]["content"]
    assert "Question: What is 2+2?\nFirst answer: It is four.\nSecond answer: It is five." in text
    assert "Costs $5 per call." in text and "overall: [[verdict]]" in text
    assert template.parse("Second is wrong.\noverall: [[A>B]]", campaign_schema=schema).label == {"overall": -1}
    llmbar_custom = template_for(name="llmbar", override="$prompt\n(a) $response_a\n(b) $response_b", kind="pairwise")
    assert llmbar_custom.verdict_format == "llmbar"
    assert render(llmbar_custom, schema) == [
        {"role": "user", "content": "What is 2+2?\n(a) It is four.\n(b) It is five."}
    ]


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("$prompt $response_a $resp_b", "pairwise", r"unknown placeholder \$resp_b"),
        ("$prompt $response", "pairwise", r"unknown placeholder \$response in a pairwise"),
        ("$prompt $response_a", "pairwise", r"must show the judge \$response_b"),
        ("$prompt $reference", "rubric", r"must show the judge \$response"),
        ("Costs $5 $response", "rubric", "stray"),
        ("   ", "rubric", "cannot be empty"),
        ("[system]\n[user]\n", "rubric", "must show the judge"),
    ],
)
def test_custom_texts_are_checked(text, kind, message):
    with pytest.raises(ValueError, match=message):
        t.check_template_text(text, kind)
    if text.strip():
        with pytest.raises(ValueError, match=message):
            template_for(name="", override=text, kind=kind)
    else:  # a blank override field means "no override"
        assert template_for(name="", override=text, kind=kind) is BUILTIN_TEMPLATES["rubric-prometheus"]


def test_every_placeholder_is_documented():
    for placeholders in t.PLACEHOLDERS.values():
        for name in placeholders:
            assert f"``${name}``" in t.__doc__


# JSON Schemas for structured output


@pytest.mark.parametrize(("name", "preset_name"), COMBINATIONS)
def test_the_json_schema_allows_exactly_the_schemas_verdicts(name, preset_name):
    template, schema = BUILTIN_TEMPLATES[name], schema_of(preset_name)
    json_schema = template.json_schema(schema)
    jsonschema.Draft202012Validator.check_schema(json_schema)
    containers = [part for part in ("verdicts", "scores") if part in json_schema["properties"]]
    assert containers == {"pairwise": ["verdicts"], "rubric": ["scores"], "both": ["verdicts", "scores"]}[template.kind]
    assert json_schema["required"] == list(json_schema["properties"])
    for part in containers:
        container = json_schema["properties"][part]
        assert container["additionalProperties"] is False and container["required"] == list(container["properties"])
    covered = [key for part in containers for key in json_schema["properties"][part]["properties"]]
    assert covered == list(template.verdict_tokens(schema))
    for key, tokens in template.verdict_tokens(schema).items():
        if key in json_schema["properties"].get("scores", {}).get("properties", {}):
            prop = json_schema["properties"]["scores"]["properties"][key]
            assert prop["type"] == "integer" and prop["enum"] == [int(x) for x in tokens]
        else:
            assert json_schema["properties"]["verdicts"]["properties"][key] == {"type": "string", "enum": tokens}
    if name != "llmbar":
        reasoning = "feedback" if template.kind == "rubric" else "reasoning"
        assert json_schema["properties"][reasoning] == {"type": "string"}
    response_format = template.response_format(schema)
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"] is True


def test_the_json_schema_rejects_a_point_beyond_the_scale():
    template, schema = BUILTIN_TEMPLATES["pairwise-arena"], schema_of("simple-pairwise")
    validator = jsonschema.Draft202012Validator(template.json_schema(schema))
    assert validator.is_valid({"reasoning": "", "verdicts": {"overall": "A>B"}})
    assert not validator.is_valid({"reasoning": "", "verdicts": {"overall": "A>>B"}})
    assert not validator.is_valid({"reasoning": "", "verdicts": {"overall": "A>B", "extra": "A>B"}})


# Round trips: what a compliant judge writes parses back to the label it meant


def allowed_points(template, schema):
    return {key: list(values.values()) for key, values in allowed_verdicts(schema, template.verdict_format).items()}


@pytest.mark.parametrize(("name", "preset_name"), COMBINATIONS)
@pytest.mark.parametrize("structured", [False, True])
def test_every_allowed_point_of_every_preset_round_trips(name, preset_name, structured):
    template, schema = BUILTIN_TEMPLATES[name], schema_of(preset_name)
    points = allowed_points(template, schema)
    base = {key: values[0] for key, values in points.items()}
    for key, values in points.items():
        for value in values:
            label = base | {key: value}
            answer = template.format_answer(label, campaign_schema=schema, structured=structured)
            result = template.parse(answer, campaign_schema=schema)
            assert result.label == label, (answer, result.failure)
            label_validate(schema=schema, kind=template.kind, label=result.label, partial=True, source="judge")
            if structured:
                jsonschema.validate(json.loads(answer), template.json_schema(schema))


@st.composite
def template_schema_label(draw):
    name, preset_name = draw(st.sampled_from(COMBINATIONS))
    template, schema = BUILTIN_TEMPLATES[name], schema_of(preset_name)
    points = allowed_points(template, schema)
    label = {key: draw(st.sampled_from(values)) for key, values in points.items()}
    return template, schema, label


@settings(max_examples=150, deadline=None)
@given(case=template_schema_label(), structured=st.booleans(), reasoning=st.sampled_from(["", "A is right.", "x\ny"]))
def test_a_rendered_verdict_parses_back_to_its_label(case, structured, reasoning):
    template, schema, label = case
    answer = template.format_answer(label, campaign_schema=schema, structured=structured, reasoning=reasoning)
    result = template.parse(answer, campaign_schema=schema)
    assert result.label == label and result.failure is None
    for key, (start, end) in result.spans.items():
        assert answer[start:end] == result.verdicts[key]


def test_format_answer_refuses_labels_the_template_cannot_express():
    template, schema = BUILTIN_TEMPLATES["pairwise-arena"], schema_of("simple-pairwise")
    with pytest.raises(ValueError, match="not an allowed verdict"):
        template.format_answer({"overall": 2}, campaign_schema=schema)
    with pytest.raises(ValueError, match="not this template's keys"):
        template.format_answer({"helpfulness": 1}, campaign_schema=schema)
