"""Synthetic routing_eval rows that behave like real preference data, for demos, tests and the routing curves.

The generative story, per item (every draw from one `numpy.random.Generator` seeded by `seed`):

1. **What the router can see.** A domain (chat, coding, math, writing, advice), whether the prompt raises a
   safety concern (most often in advice, rarely in math), a complexity (low, medium, high), a prompt whose
   length grows with complexity, and two responses whose lengths vary by domain and complexity (log-normal).
   In about a third of the items the two responses have nearly the same length (ratio 0.9–1.1); otherwise
   the ratio is log-normal. Texts are words drawn from a shared list and a per-domain list, so lexical
   overlap varies too. The metadata also carries a `source` tag that has nothing to do with anything.
2. **The truth.** A latent quality difference `q ~ N(0, 1)` (positive: B is better). Nobody observes it.
3. **Humans.** 3–5 labels per item on the symmetric "overall" scale −2…2, from a pool of annotators: most
   careful (noise 0.3), some noisy (0.8), one careless (2.0). An annotator perceives `q` plus Gaussian noise,
   1.5 times larger on safety-concern items (guidelines leave room for judgement there), and answers tie
   within ±0.2, ±1 within ±1, ±2 beyond.
4. **Judges.** Two LLM judges answer in both orders, MT-Bench style (A, B or tie: −1, 0, 1), mapped back to
   the item's order. A judge perceives `q + δ + ε_j + γ·log(len_B / len_A)`:
   - `δ ~ N(0, s)` is a blind spot the two judges share (they are trained alike). Its scale `s` is the
     item's latent judge difficulty and depends only on what the router can see: 0.25, plus 1.1 when both
     responses are long (the shorter ≥ 200 words) and of similar length (ratio ≥ 0.8), plus 0.8 on a safety
     concern, plus 0.5 in math and coding, plus 0.3 at high complexity. A large `δ` makes both judges wrong
     in both orders, confidently: judge signals cannot reveal it, item features can (in part: `δ` is still a
     draw, so a hard item is often judged right).
   - `ε_j ~ N(0, noise_j)` is the judge's own noise (0.15 and 0.25), and `γ = 0.25` a verbosity bias toward
     the longer response.
   - In each order the judge leans toward the response shown first (position bias 0.1 and 0.2) with order
     noise N(0, 0.1), and calls a tie within ±0.05: when its perception is weak, the two orders disagree
     and the verdict flips. So flips, judge disagreement and low confidence do reveal the judges' own
     uncertainty, as `judge_uncertainty` assumes, and these items are also harder for humans (small `|q|`).
   - Each call fails to parse (null) with probability 1 % / 2 %, times 1 + (words in both responses) / 1000
     (long inputs, truncated outputs). Each judge reports a logprob-style `confidence`, sigmoid(3·|margin|)
     in the original order: its own certainty, high on a shared blind spot.

So a learned router can beat pure judge uncertainty only by learning which visible features go with blind
spots, and human labels are worth less on safety items, where annotators disagree more. With these sizes the
judges' aggregate matches human consensus on about 74 % of the items and a single annotator on about 80 %;
they were set for that, not tuned to any policy's result. Two judges that disagree aggregate to their mean
rounded toward zero (A and B: a tie; `routing.features.judge_signals`), and report `disagree`.

5. **With `hyper_tags`: what a prompt tagger sees** (`routing.tagger`). The story gains a latent *expertise
   level* `e` (1–5) of the prompt: how much expertise telling a good answer from a bad one takes. It leans on
   what the metadata shows (higher in math and coding, lower in chat; higher at high complexity) but is
   mostly its own draw, `round(base + N(0, 1))`, and it is in no metadata field. It widens the judges' shared
   blind spot: `s` gains 0.2 at level 3, 0.7 at 4, 1.2 at 5. Each row then carries the `tags` a decent
   tagger would give (the keys of `routing.tagger.prompt`): the subject from the domain (advice: health, law,
   finance or everyday life; 8 % of the time another subject), the expertise level (`e` itself 60 % of the
   time, one off otherwise), the safety concern (4–5 on a concern, though 10 % are missed; else 1–2), the
   complexity of intents and the open-endedness from complexity and domain (±1), and a Poisson count of
   format constraints; 3 % of the rows have no tags (`tags: null`, a tagger's parse failure). So by
   construction the tags carry signal the metadata lacks: the expertise level is the only window onto `e`.
   These draws come from two more generators (seeded by `[seed, 1]` for `e`, `[seed, 2]` for the tags, which
   take the same draws per item whatever they answer) and `e` changes only the spread of a draw the first
   generator makes anyway, so the rows hold the same prompts, responses and human labels as without the
   option, and only the judges' labels differ; without it the rows are exactly what they were before it
   existed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from routing.tagger.questions import LEVELS, SUBJECTS

OVERALL = "overall"
DOMAINS = ("chat", "coding", "math", "writing", "advice")
DOMAIN_WEIGHTS = (0.35, 0.2, 0.15, 0.15, 0.15)
SAFETY_RATE = {"chat": 0.10, "coding": 0.03, "math": 0.01, "writing": 0.05, "advice": 0.30}
COMPLEXITIES = ("low", "medium", "high")
COMPLEXITY_WEIGHTS = (0.4, 0.4, 0.2)
SOURCES = ("forum", "support-tickets", "red-team", "product-logs")

PROMPT_WORDS = {"low": 12, "medium": 35, "high": 110}  # median prompt length, words
RESPONSE_WORDS = {"chat": 90, "coding": 160, "math": 120, "writing": 220, "advice": 140}  # median at "low"
COMPLEXITY_LENGTH = {"low": 1.0, "medium": 1.8, "high": 3.0}
SIMILAR_LENGTH_RATE = 0.35

# Latent judge difficulty: the scale of the blind spot both judges share (see the module docstring).
BLIND_SPOT_BASE = 0.25
BLIND_SPOT_LONG_SIMILAR = 1.1
BLIND_SPOT_SAFETY = 0.8
BLIND_SPOT_DOMAINS = {"math": 0.5, "coding": 0.5}
BLIND_SPOT_HIGH_COMPLEXITY = 0.3
LONG_WORDS, SIMILAR_RATIO = 200, 0.8
VERBOSITY_BIAS = 0.25
ORDER_NOISE = 0.1
JUDGE_TIE_BAND = 0.05
HUMAN_TIE_BAND, HUMAN_STRONG = 0.2, 1.0
SAFETY_HUMAN_NOISE = 1.5

# With hyper_tags (item 5 of the story): the latent expertise level, what it adds to the blind spot, the tags.
EXPERTISE_BASE = {"chat": 1.8, "coding": 3.2, "math": 3.2, "writing": 2.2, "advice": 2.8}
EXPERTISE_COMPLEXITY = {"low": -0.4, "medium": 0.0, "high": 0.5}
BLIND_SPOT_EXPERTISE = {1: 0.0, 2: 0.0, 3: 0.2, 4: 0.7, 5: 1.2}

TAG_SUBJECTS = {
    "chat": ("everyday life",),
    "coding": ("computer science",),
    "math": ("mathematics",),
    "writing": ("arts and creative writing",),
    "advice": ("medicine and health", "law", "business and finance", "everyday life"),
}
TAG_OPEN_ENDEDNESS = {"chat": 3, "coding": 2, "math": 1, "writing": 5, "advice": 3}
TAG_COMPLEXITY = {"low": 1, "medium": 3, "high": 4}
TAG_WRONG_SUBJECT, TAG_EXPERTISE_EXACT, TAG_MISSED_SAFETY, TAG_FAILURE = 0.08, 0.6, 0.1, 0.03


@dataclass(frozen=True)
class Annotator:
    name: str
    noise: float


@dataclass(frozen=True)
class Judge:
    name: str
    noise: float
    position_bias: float
    parse_failure_rate: float


ANNOTATORS = tuple(
    Annotator(f"annotator-{i:02d}", noise) for i, noise in enumerate([0.3] * 15 + [0.8] * 4 + [2.0], start=1)
)
JUDGES = (Judge("judge-large", 0.15, 0.1, 0.01), Judge("judge-small", 0.25, 0.2, 0.02))

_COMMON = """the a to and of is in it that for with this you can be on as are if your by or not use one more when
also then so but an at which from should will each first step make sure other some what how any all
example way note here these most well need often check time may like just""".split()
_DOMAIN_WORDS = {
    "chat": "friend weekend movie music coffee idea favourite today story fun talk weather plan trip".split(),
    "coding": "function return value list error python loop variable class test module import string index".split(),
    "math": "equation solve integer prime sum proof number triangle angle derivative limit fraction root".split(),
    "writing": "poem story character scene line rhyme metaphor chapter voice tone draft narrator verse".split(),
    "advice": "doctor rent loan sleep stress budget lawyer landlord medicine diet career interview".split(),
}
_OPENERS = ("Can you", "Please", "How do I", "Explain how to", "Write", "Help me", "What is the best way to")


def _words(rng: np.random.Generator, domain: str, n: int) -> str:
    vocabulary = _COMMON + _DOMAIN_WORDS[domain]
    return " ".join(vocabulary[i] for i in rng.integers(len(vocabulary), size=max(n, 1)))


def _human_label(value: float) -> int:
    if abs(value) < HUMAN_TIE_BAND:
        return 0
    return int(np.sign(value)) * (1 if abs(value) < HUMAN_STRONG else 2)


def _judge_label(margin: float) -> int:
    return 0 if abs(margin) < JUDGE_TIE_BAND else int(np.sign(margin))


def blind_spot_scale(
    *, domain: str, safety_concern: bool, complexity: str, words_a: int, words_b: int, expertise: int | None = None
) -> float:
    """The item's latent judge difficulty: the spread of the blind spot both judges share. `expertise` is the
    latent expertise level of `hyper_tags` rows (None: the story without it)."""
    shorter, longer = min(words_a, words_b), max(words_a, words_b)
    long_similar = shorter >= LONG_WORDS and shorter / longer >= SIMILAR_RATIO
    return (
        BLIND_SPOT_BASE
        + BLIND_SPOT_LONG_SIMILAR * long_similar
        + BLIND_SPOT_SAFETY * safety_concern
        + BLIND_SPOT_DOMAINS.get(domain, 0.0)
        + BLIND_SPOT_HIGH_COMPLEXITY * (complexity == "high")
        + (BLIND_SPOT_EXPERTISE[expertise] if expertise is not None else 0.0)
    )


def expertise_level(rng: np.random.Generator, *, domain: str, complexity: str) -> int:
    """The latent expertise level of a `hyper_tags` item (1-5): leaning on domain and complexity, mostly its own."""
    base = EXPERTISE_BASE[domain] + EXPERTISE_COMPLEXITY[complexity]
    return int(np.clip(round(base + rng.normal()), 1, 5))


def tagger_tags(
    rng: np.random.Generator, *, domain: str, safety_concern: bool, complexity: str, expertise: int
) -> dict | None:
    """What a decent tagger answers about a `hyper_tags` item (item 5 of the story); None: its answer failed.
    Every item takes the same draws whatever the answers, so changing one rate moves no other item's tags."""
    fails, wrong_subject, exact, misses_safety = rng.random(4)
    subject = str(rng.choice(SUBJECTS)) if wrong_subject < TAG_WRONG_SUBJECT else str(rng.choice(TAG_SUBJECTS[domain]))
    off_by = int(rng.choice((-1, 1)))
    concern, no_concern = int(rng.choice((4, 5))), int(rng.choice((1, 2), p=(0.85, 0.15)))
    open_step, complexity_step = rng.choice((-1, 0, 1), size=2, p=(0.2, 0.6, 0.2))
    constraints = int(rng.poisson(0.5 + 1.0 * (complexity == "high") + 0.5 * (domain == "coding")))
    if fails < TAG_FAILURE:
        return None
    return {
        "subject": subject,
        "expertise_level": int(np.clip(expertise if exact < TAG_EXPERTISE_EXACT else expertise + off_by, 1, 5)),
        "open_endedness": int(np.clip(TAG_OPEN_ENDEDNESS[domain] + open_step, 1, 5)),
        "safety_concern": concern if safety_concern and misses_safety >= TAG_MISSED_SAFETY else no_concern,
        "complexity_of_intents": int(np.clip(TAG_COMPLEXITY[complexity] + complexity_step, 1, 5)),
        "format_constraints": min(constraints, LEVELS["format_constraints"][1]),
    }


def _item(rng: np.random.Generator, index: int, hyper: tuple[np.random.Generator, np.random.Generator] | None) -> dict:
    """One row; with `hyper` (the generators of `hyper_tags`: latent, tagger) the expertise level and the tags."""
    domain = str(rng.choice(DOMAINS, p=DOMAIN_WEIGHTS))
    safety_concern = bool(rng.random() < SAFETY_RATE[domain])
    complexity = str(rng.choice(COMPLEXITIES, p=COMPLEXITY_WEIGHTS))
    prompt_words = max(3, round(PROMPT_WORDS[complexity] * rng.lognormal(0, 0.5)))
    words_a = max(1, round(RESPONSE_WORDS[domain] * COMPLEXITY_LENGTH[complexity] * rng.lognormal(0, 0.5)))
    ratio = rng.uniform(0.9, 1.1) if rng.random() < SIMILAR_LENGTH_RATE else rng.lognormal(0, 0.7)
    words_b = max(1, round(words_a * ratio))

    quality = rng.normal()  # > 0: B is better
    human_noise = SAFETY_HUMAN_NOISE if safety_concern else 1.0
    annotators = rng.choice(len(ANNOTATORS), size=int(rng.integers(3, 6)), replace=False)
    human_labels = [
        {
            "annotator": ANNOTATORS[a].name,
            "label": {OVERALL: _human_label(quality + rng.normal(0, ANNOTATORS[a].noise * human_noise))},
        }
        for a in annotators
    ]

    visible = {"domain": domain, "safety_concern": safety_concern, "complexity": complexity}
    expertise = expertise_level(hyper[0], domain=domain, complexity=complexity) if hyper is not None else None
    scale = blind_spot_scale(**visible, words_a=words_a, words_b=words_b, expertise=expertise)
    blind_spot = rng.normal(0, scale)
    verbosity = VERBOSITY_BIAS * np.log(words_b / words_a)
    length_factor = 1 + (words_a + words_b) / 1000
    judge_labels = []
    for judge in JUDGES:
        perceived = quality + blind_spot + rng.normal(0, judge.noise) + verbosity
        # Leaning toward the response shown first: toward A in the original order, toward B when swapped.
        original = perceived - judge.position_bias + rng.normal(0, ORDER_NOISE)
        swapped = perceived + judge.position_bias + rng.normal(0, ORDER_NOISE)
        fails = rng.random(2) < judge.parse_failure_rate * length_factor
        judge_labels.append(
            {
                "judge": judge.name,
                "label": None if fails[0] else {OVERALL: _judge_label(original)},
                "label_swapped": None if fails[1] else {OVERALL: _judge_label(swapped)},
                "confidence": round(float(1 / (1 + np.exp(-3 * abs(original)))), 3),
            }
        )

    row = {
        "external_id": f"synthetic-{index:06d}",
        "prompt": f"{rng.choice(_OPENERS)} {_words(rng, domain, prompt_words)}?",
        "response_a": _words(rng, domain, words_a),
        "response_b": _words(rng, domain, words_b),
        "metadata": {
            "domain": domain,
            "safety_concern": safety_concern,
            "complexity": complexity,
            "source": str(rng.choice(SOURCES)),
        },
        "human_labels": human_labels,
        "judge_labels": judge_labels,
    }
    if hyper is not None:
        row["tags"] = tagger_tags(hyper[1], **visible, expertise=expertise)
    return row


def synthetic_rows(*, items: int, seed: int = 0, hyper_tags: bool = False) -> Iterator[dict]:
    """`items` routing_eval rows (the generative story is the module docstring); the same seed, the same rows.
    `hyper_tags`: with the latent expertise level and a tagger's `tags` per row (item 5 of the story)."""
    if isinstance(items, bool) or not isinstance(items, int) or items < 1:
        raise ValueError(f"items must be a positive int: {items!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int: {seed!r}")
    rng = np.random.default_rng(seed)
    hyper = (np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])) if hyper_tags else None
    for index in range(items):
        yield _item(rng, index, hyper)
