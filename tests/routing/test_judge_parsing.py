"""Judge-output parsing: last verdict wins, out-of-schema verdicts fail, refusals fail, and LLMBar's record."""

import json
from collections import Counter
from pathlib import Path

import pytest

from annotate.schema import preset, schema_validate
from routing.judges.parsing import arena_value, parse_output, refusal_reason
from routing.judges.templates import template_for
from routing.judges.verdicts import verdict_to_item

LLMBAR_DATA = Path(__file__).resolve().parent.parent / "data" / "llmbar"

SIMPLE = schema_validate(preset("simple-pairwise"), "pairwise")  # overall, scale 1, ties allowed
MULTIPREF = schema_validate(preset("multipref"), "pairwise")  # four aspects, scale 2
HELPSTEER2 = schema_validate(preset("helpsteer2"), "rubric")  # five criteria, 0-4
PROMETHEUS = schema_validate(preset("prometheus"), "rubric")  # one criterion "score", 1-5
NO_TIE = schema_validate({"pairwise": {"aspects": [{"name": "overall", "scale": 2, "allow_tie": False}]}}, "pairwise")


def arena(text, schema=SIMPLE):
    return parse_output(text, campaign_schema=schema, verdict_format="arena")


def prometheus(text, schema=PROMETHEUS):
    return parse_output(text, campaign_schema=schema, verdict_format="prometheus")


def llmbar(text, schema=SIMPLE):
    return parse_output(text, campaign_schema=schema, verdict_format="llmbar")


# Arena-style verdicts


def test_the_last_verdict_wins_over_restated_options():
    text = "The options are [[A>B]], [[A=B]] and [[B>A]]. Response B is more accurate.\n\nMy verdict: [[B>A]]"
    result = arena(text)
    assert result.label == {"overall": 1} and result.failure is None
    assert result.verdicts == {"overall": "B>A"}
    start, end = result.spans["overall"]
    assert text[start:end] == "B>A" and start == text.rindex("B>A")


@pytest.mark.parametrize(
    ("token", "value"),
    [("A>B", -1), ("A>>B", -2), ("A>>>B", -3), ("A=B", 0), ("B=A", 0), ("B>A", 1), ("B>>>A", 3), ("B<A", -1)],
)
def test_arena_tokens_have_their_values(token, value):
    assert arena_value(token) == value
    assert arena_value(f"[[ {token.replace('>', ' > ', 1)} ]]") == value


@pytest.mark.parametrize("token", ["A>>>>B", "A>A", "AB", "A>=B", "C>A", ""])
def test_malformed_arena_tokens_have_no_value(token):
    assert arena_value(token) is None


def test_a_verdict_beyond_the_scale_fails_rather_than_being_clamped():
    result = arena("Response A is far better. [[A>>B]]")
    assert result.label is None
    assert "outside" in result.failure and "A>>B" in result.failure
    assert result.verdicts == {"overall": "A>>B"}  # what was found is kept, for the record


def test_a_tie_fails_where_the_aspect_allows_none():
    assert arena("[[A=B]]", NO_TIE).label is None
    assert "tie" in arena("[[A=B]]", NO_TIE).failure
    assert arena("[[B>>A]]", NO_TIE).label == {"overall": 2}


def test_a_malformed_last_verdict_fails_instead_of_falling_back_to_an_earlier_one():
    result = arena("[[A>B]] at first, but on reflection [[A>>>>B]]")
    assert result.label is None and "malformed" in result.failure


def test_bracketed_text_that_is_not_a_verdict_is_ignored():
    assert arena("See [[1]] and [[wiki link]]. Verdict: [[A>B]]").label == {"overall": -1}
    assert arena("See [[1]].").failure.startswith("no verdict found")


def test_every_aspect_gets_its_own_line_and_its_own_last_verdict():
    text = (
        "Options per aspect: [[A>>B]] ... [[B>>A]].\n"
        "overall: [[A>B]]\n"
        "**Helpfulness**: [[A>>B]]\n"
        "- truthfulness: [[A=B]]\n"
        "harmlessness - [[B>A]]\n"
        "On second thought, overall: [[A>>B]]\n"
    )
    result = arena(text, MULTIPREF)
    assert result.label == {"overall": -2, "helpfulness": -2, "truthfulness": 0, "harmlessness": 1}
    assert result.reasoning.startswith("Options per aspect:") and "second thought" not in result.reasoning


def test_a_missing_aspect_fails_and_is_named():
    result = arena("overall: [[A>B]]\nhelpfulness: [[A>B]]\nharmlessness: [[A=B]]", MULTIPREF)
    assert result.label is None
    assert result.failure == "no verdict for 'truthfulness'"


def test_aspect_names_match_with_spaces_or_hyphens_for_underscores():
    schema = schema_validate(
        {
            "pairwise": {
                "aspects": [
                    {"name": "overall", "scale": 1},
                    {"name": "instruction_following", "scale": 1},
                ]
            }
        },
        "pairwise",
    )
    result = arena("Overall: [[B>A]]\nInstruction-following: [[A>B]]", schema)
    assert result.label == {"overall": 1, "instruction_following": -1}


# Refusals and empty output


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that.",
        "I\u2019m sorry, but I cannot evaluate these responses.",
        "Sorry, I won't assist with this request.",
        "I'm sorry, but I cannot comply. [[A=B]]",  # a verdict after a refusal is not a judgment
        "As an AI language model, I cannot judge this content.",
    ],
)
def test_refusals_fail_with_a_reason(text):
    for fmt in ("arena", "llmbar"):
        result = parse_output(text, campaign_schema=SIMPLE, verdict_format=fmt)
        assert result.label is None and "refused" in result.failure


@pytest.mark.parametrize("text", ["", "   \n", None])
def test_empty_output_fails(text):
    assert arena(text).failure == "empty output"
    assert prometheus(text).failure == "empty output"


def test_a_quoted_refusal_inside_the_reasoning_is_evidence_not_a_refusal():
    text = "Response A answers. Response B says \"I'm sorry, but I can't help with that.\" so A wins. [[A>B]]"
    assert arena(text).label == {"overall": -1}


def test_a_refusal_without_a_verdict_is_reported_as_such():
    result = arena("Both are fine. However, I'm sorry, but I won't pick one.")
    assert result.label is None and "refusal" in result.failure
    assert refusal_reason("I cannot see any difference between them.") is None  # hedging, not refusing


# Prometheus-style scores


def test_the_last_result_wins_and_is_range_checked():
    assert prometheus("Feedback: good. [RESULT] 4").label == {"score": 4}
    assert prometheus("A 5 would need [RESULT] 5 quality; this is [RESULT] 3").label == {"score": 3}
    assert "outside 1..5" in prometheus("[RESULT] 6").failure
    assert "outside 1..5" in prometheus("[RESULT] 0").failure
    assert "not an integer" in prometheus("[RESULT] 3.5").failure
    assert "no score" in prometheus("Feedback: fine. [RESULT] excellent").failure
    assert prometheus("Feedback: fine, 4 out of 5.").failure.startswith("no verdict found")


def test_every_criterion_gets_its_own_result_line():
    text = (
        "Feedback: accurate but long.\n\n"
        "helpfulness: [RESULT] 3\ncorrectness: [RESULT] 4\n**coherence**: [RESULT] 4\n"
        "complexity: [RESULT] 1\nverbosity: [RESULT] (4)\n"
    )
    result = prometheus(text, HELPSTEER2)
    assert result.label == {"helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 4}
    start, end = result.spans["complexity"]
    assert text[start:end] == "1"
    missing = prometheus("helpfulness: [RESULT] 3\ncorrectness: [RESULT] 4", HELPSTEER2)
    assert missing.label is None and "'coherence', 'complexity', 'verbosity'" in missing.failure


# LLMBar-style choices


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Output (b)", 1),
        ("Output (a)", -1),
        ("output (B)", 1),
        ("Output (a) is concise; Output (b) repeats the text. Therefore, Output (a) is better.", -1),
        ("Output (a) misses the point.\n\nOutput (b) does what was asked. Therefore, Output (b) is better.", 1),
        ("Having read both, I choose Output (b).", 1),
    ],
)
def test_llmbar_choices(text, value):
    result = llmbar(text)
    assert result.label == {"overall": value}
    start, end = result.spans["overall"]
    assert text[start:end].lower() == result.verdicts["overall"].lower() == f"output ({'a' if value < 0 else 'b'})"


def test_llmbar_rates_only_overall_and_needs_a_choice():
    assert llmbar("Output (b)", MULTIPREF).label == {"overall": 1}
    assert llmbar("Both outputs have merits.").failure.startswith("no verdict found")


# Structured (JSON) output


@pytest.mark.parametrize(
    "text",
    [
        '{"reasoning": "B is right.", "verdicts": {"overall": "B>A"}}',
        '```json\n{"reasoning": "B is right.", "verdicts": {"overall": "B>A"}}\n```',
        'Here you go:\n```\n{"verdicts": {"overall": "[[B>A]]"}}\n```',
        '{"overall": "B>A"}',
    ],
)
def test_structured_output_parses_bare_or_fenced(text):
    result = arena(text)
    assert result.label == {"overall": 1}
    start, end = result.spans["overall"]
    assert "B>A" in text[start:end]


def test_structured_output_is_checked_like_text():
    assert "outside" in arena('{"verdicts": {"overall": "A>>B"}}').failure
    assert arena('{"verdicts": {"overall": "A>B"}', MULTIPREF).failure.startswith("output is not valid JSON")
    assert arena('{"verdicts": {"overall": "A>B"}}', MULTIPREF).failure.startswith("no verdict for 'helpfulness'")
    assert "not a string or number" in arena('{"verdicts": {"overall": ["A>B"]}}').failure
    assert arena('{"verdicts": "B>A"}').failure == "'verdicts' is not an object"


def test_structured_scores():
    assert prometheus('{"feedback": "ok", "scores": {"score": 4}}').label == {"score": 4}
    assert prometheus('{"feedback": "ok", "scores": {"score": "4"}}').label == {"score": 4}
    assert prometheus('{"feedback": "ok", "scores": {"score": 4.0}}').label == {"score": 4}
    assert "not an integer" in prometheus('{"scores": {"score": 4.5}}').failure
    assert "not a string or number" in prometheus('{"scores": {"score": true}}').failure
    assert "outside" in prometheus('{"scores": {"score": 9}}').failure
    assert prometheus('{"feedback": "ok", "scores": {"score": 4}}').reasoning == "ok"


def test_structured_llmbar():
    assert llmbar('{"verdicts": {"overall": "Output (b)"}}').label == {"overall": 1}
    assert "not Output (a) or (b)" in llmbar('{"verdicts": {"overall": "Output (c)"}}').failure


def test_an_unknown_format_is_an_error():
    with pytest.raises(ValueError, match="unknown verdict format"):
        parse_output("[[A>B]]", campaign_schema=SIMPLE, verdict_format="stars")


# LLMBar's recorded GPT-4 judgments, parsed by our llmbar template


def load_llmbar(subset, strategy):
    folder = LLMBAR_DATA / subset
    results = folder / f"gpt4-{strategy}-result.json"
    if not results.exists():
        pytest.skip(f"LLMBar test data missing: {results} (see tests/data/llmbar/SOURCE.md)")
    statistics = json.loads((folder / f"gpt4-{strategy}-statistics.json").read_text())
    return json.loads(results.read_text()), statistics


def cohen_kappa(first, second):
    """Cohen's kappa, computed as scikit-learn's cohen_kappa_score does (unweighted): 1 - observed/expected
    disagreement over the union of the categories."""
    categories = sorted(set(first) | set(second))
    index = {c: i for i, c in enumerate(categories)}
    size = len(categories)
    confusion = [[0] * size for _ in range(size)]
    for a, b in zip(first, second, strict=True):
        confusion[index[a]][index[b]] += 1
    columns = [sum(confusion[i][j] for i in range(size)) for j in range(size)]
    rows = [sum(confusion[i]) for i in range(size)]
    total = sum(columns)
    expected = [[columns[i] * rows[j] / total for j in range(size)] for i in range(size)]
    observed = sum(confusion[i][j] for i in range(size) for j in range(size) if i != j)
    chance = sum(expected[i][j] for i in range(size) for j in range(size) if i != j)
    return 1 - observed / chance


def ratio(count, total):
    return f"{count} / {total} = {count / total * 100}%"


@pytest.mark.parametrize("strategy", ["vanilla", "swap"])
@pytest.mark.parametrize("subset", ["natural", "neighbor"])
def test_llmbar_gpt4_judgments_parse_to_the_recorded_winners_and_statistics(subset, strategy):
    entries, statistics = load_llmbar(subset, strategy)
    template = template_for(name="llmbar", override="", kind="pairwise")
    winners = {False: [], True: []}
    for entry in entries:
        last_round = entry["results"][-1]
        for swapped in (False, True):
            record = last_round[f"swap = {swapped}"]
            result = template.parse(record["completion"][0], campaign_schema=SIMPLE)
            assert result.ok, (entry["input"][:60], result.failure)
            # swap = True showed output_2 first: map the verdict back to the item's order (output_1 = A).
            overall = verdict_to_item(result.label, swapped)["overall"]
            winner = "1" if overall < 0 else "2"
            assert winner == record["winner"], (subset, strategy, swapped, record["completion"][0][-120:])
            winners[swapped].append(winner)

    labels = [str(entry["label"]) for entry in entries]
    n = len(entries)
    correct = {s: sum(w == g for w, g in zip(winners[s], labels, strict=True)) for s in (False, True)}
    both = sum(f == g and t == g for f, t, g in zip(winners[False], winners[True], labels, strict=True))
    equal = sum(f == t for f, t in zip(winners[False], winners[True], strict=True))
    assert statistics["correct_False"] == ratio(correct[False], n)
    assert statistics["correct_True"] == ratio(correct[True], n)
    assert statistics["correct_average"] == f"{(correct[False] + correct[True]) / 2 / n * 100}%"
    assert statistics["correct_both"] == ratio(both, n)
    assert statistics["equal"] == ratio(equal, n)

    # The authors' kappa codes a verdict "1" as 1 and anything else as 0, and compares that with the gold
    # label as written (1 or 2): a winner "2" never matches a label 2, which is why their kappa against the
    # gold sits near 0.2 beside 90%+ accuracy. We reproduce their figures as defined, to the last digit.
    coded = {s: [1 if w == "1" else 0 for w in winners[s]] for s in (False, True)}
    gold = [entry["label"] for entry in entries]
    kappa_false, kappa_true = cohen_kappa(coded[False], gold), cohen_kappa(coded[True], gold)
    assert kappa_false == statistics["kappa_False"]
    assert kappa_true == statistics["kappa_True"]
    assert (kappa_false + kappa_true) / 2 == statistics["kappa_average"]
    assert cohen_kappa(coded[False], coded[True]) == statistics["kappa_agreement"]


def test_llmbar_swap_synthesis_rounds_are_the_last_round():
    """The Swap strategy adds a second round only where the two orders disagreed; that round is what counts."""
    entries, _ = load_llmbar("natural", "swap")
    rounds = Counter(len(entry["results"]) for entry in entries)
    assert rounds == {1: 93, 2: 7}
    for entry in entries:
        if len(entry["results"]) == 2:
            first = entry["results"][0]
            assert first["swap = False"]["winner"] != first["swap = True"]["winner"]


# Campaigns of both kinds: an Arena line per aspect and a [RESULT] line per criterion and response

BOTH = schema_validate(
    {"pairwise": preset("multipref")["pairwise"], "rubric": preset("prometheus")["rubric"]}, "both"
)  # overall, helpfulness, truthfulness, harmlessness; score_a, score_b (1-5)


def both(text):
    return parse_output(text, campaign_schema=BOTH, verdict_format="arena_prometheus")


def test_a_free_form_both_answer_parses_by_name_and_the_last_verdict_wins():
    text = (
        "Response A answers the question; B does not.\n\n"
        "Scores use [RESULT] n, comparisons [[A>B]].\n"
        "- **Overall**: [[A>>B]]\n- Helpfulness: [[A>B]]\n- Truthfulness: [[A=B]]\n- Harmlessness: [[A=B]]\n"
        "**Score (Response A)** — see below\nscore_a: [RESULT] 5\nScore B: [RESULT] 2\n"
        "On reflection, score_b: [RESULT] 1"
    )
    result = both(text)
    assert result.label == {"overall": -2, "helpfulness": -1, "truthfulness": 0, "harmlessness": 0,
                            "score_a": 5, "score_b": 1}  # fmt: skip
    # The reasoning runs up to the first verdict line of either part (an unnamed restatement is no verdict).
    assert (
        result.reasoning
        == "Response A answers the question; B does not.\n\nScores use [RESULT] n, comparisons [[A>B]]."
    )
    assert text[slice(*result.spans["score_b"])] == "1" and text[slice(*result.spans["overall"])] == "A>>B"


def test_a_both_answer_fails_on_either_part_and_says_which():
    grades = "\nscore_a: [RESULT] 4\nscore_b: [RESULT] 3"
    assert both("overall: [[A>B]]" + grades).failure == ("no verdict for 'helpfulness', 'truthfulness', 'harmlessness'")
    outside = both("overall: [[A>>>B]]\nhelpfulness: [[A>B]]\ntruthfulness: [[A>B]]\nharmlessness: [[A>B]]" + grades)
    assert (
        outside.failure == "verdict 'A>>>B' for 'overall' is outside the aspect's scale (±2)" and outside.label is None
    )
    unnamed = both("overall: [[A>B]]\nhelpfulness: [[A>B]]\ntruthfulness: [[A>B]]\nharmlessness: [[A>B]]\n[RESULT] 4")
    assert unnamed.failure == "no verdict for 'score_a', 'score_b'"  # with two responses a score needs its name
    assert both("").failure == "empty output"
