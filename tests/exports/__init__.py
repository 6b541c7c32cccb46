"""Dataset exports, without a database: plain item and label dicts built here, the way the export job passes them."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from annotate import schema as label_schema

EPOCH = datetime(2025, 3, 1, tzinfo=UTC)
DOMAINS = ("math", "code", "chat")


def item(
    external_id: str,
    *,
    prompt: object = "Say hi.",
    response_a: str = "Hi!",
    response_b: str = "Hello there.",
    model_a: str = "m-small",
    model_b: str = "m-large",
    response: str = "",
    metadata: dict | None = None,
    routing: dict | None = None,
) -> dict:
    return {
        "id": external_id,
        "prompt": prompt,
        "response_a": response_a,
        "response_b": response_b,
        "model_a": model_a,
        "model_b": model_b,
        "response": response,
        "reference": "",
        "metadata": metadata if metadata is not None else {},
        "gold_label": None,
        "routing": routing,
    }


def human(
    item_id: str, annotator: str, label: dict, *, day: int = 0, justification: str = "", swapped: bool | None = False
) -> dict:
    return {
        "item": item_id,
        "source": "human",
        "annotator": annotator,
        "judge": None,
        "label": label,
        "justification": justification,
        "position_swapped": swapped,
        "seconds": 12.5,
        "parse_failed": False,
        "confidence": None,
        "created_at": (EPOCH + timedelta(days=day)).isoformat(),
    }


def judge(
    item_id: str,
    label: dict | None,
    *,
    name: str = "judge-1",
    model: str = "qwen-7b",
    version: str = "v2",
    day: int = 0,
    swapped: bool = False,
) -> dict:
    return {
        "item": item_id,
        "source": "judge",
        "annotator": None,
        "judge": {"name": name, "model": model, "prompt_version": version},
        "label": label or {},
        "justification": "The judge's reasoning." if label else "",
        "position_swapped": swapped,
        "seconds": None,
        "parse_failed": label is None,
        "confidence": 0.75 if label else None,
        "created_at": (EPOCH + timedelta(days=day, hours=1)).isoformat(),
    }


def campaign(n_items: int, *, kind: str = "pairwise", preset: str = "multipref", seed: int = 0, chat_every: int = 3):
    """A campaign's worth of (item, labels): humans on most items, judges on all (both orders, some parse
    failures, some rating `overall` alone), prompts repeated across items, metadata, routing, a spread of dates.

    Returns (schema, pairs).
    """
    rng = random.Random(seed)
    raw_schema = label_schema.preset(preset)
    if kind == "both":  # `overall` plus HelpSteer2's criteria per response (multipref's aspects share names)
        raw_schema = {**label_schema.preset("simple-pairwise"), "rubric": label_schema.preset("helpsteer2")["rubric"]}
    schema = label_schema.schema_validate(raw_schema, kind)
    keys = label_schema.label_keys(schema, kind)
    pairs = []
    for i in range(n_items):
        text = f"Question {i % max(n_items // 2, 1)}: explain {rng.choice(['sorting', 'gravity', 'tides'])}."
        prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
        it = item(
            f"item-{i:04d}",
            prompt=prompt if chat_every and i % chat_every == 0 else text,
            response_a=f'Answer A to {i}, with a comma, a "quote" and\na newline.',
            response_b=f"Answer B to {i} — ünïcode.",
            response=f"The only answer to {i}.",
            metadata={"domain": DOMAINS[i % 3], "tags": ["x", "y"] if i % 2 else ["z"], "difficulty": i % 4},
            routing={
                "destination": ("human", "llm", "both")[i % 3],
                "policy": "judge_uncertainty",
                "reason": f"margin {i % 5 / 10}",
                "features": [{"signal": "judge_flipped", "weight": 1.0}] if i % 2 else None,
                "decided_at": (EPOCH - timedelta(days=1)).isoformat(),
            },
        )
        labels = []
        if i % 3 != 1:  # routed to llm: no human labels
            for a in range(rng.choice([1, 2, 3])):
                label = {key.name: _value(rng, key) for key in keys}
                labels.append(human(it["id"], f"ann-{a}", label, day=i % 10, justification=f"j{i}-{a}"))
        for swapped in (False, True):
            roll = rng.random()
            if roll < 0.1:
                labels.append(judge(it["id"], None, swapped=swapped, day=i % 10))
            elif roll < 0.3 and kind != "rubric":
                labels.append(judge(it["id"], {"overall": _value(rng, keys[0])}, swapped=swapped, day=i % 10))
            else:
                label = {key.name: _value(rng, key) for key in keys}
                labels.append(judge(it["id"], label, name="judge-2", model="llama-70b", swapped=swapped, day=i % 10))
        pairs.append((it, labels))
    return schema, pairs


def _value(rng: random.Random, key: label_schema.LabelKey) -> int:
    while True:
        value = rng.randint(key.low, key.high)
        if not (key.pairwise and value == 0 and not key.allow_tie):
            return value


def reference_direction(labels: list[dict], source: str) -> int | None:
    """The final pairwise direction computed the slow, obvious way: a check on the vectorised one. None without
    votes, and None when two directions share the top count (no strict majority: undecided)."""
    ok = [label for label in labels if not label["parse_failed"] and label["label"]]
    humans = [label for label in ok if label["source"] == "human"]
    if source == "human" or (source == "hybrid" and humans):
        counted = humans
    else:
        counted = [label for label in ok if label["source"] == "judge"]
    signs = [(v > 0) - (v < 0) for label in counted if (v := label["label"].get("overall")) is not None]
    if not signs:
        return None
    ranked = Counter(signs).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]
