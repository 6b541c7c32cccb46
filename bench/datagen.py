"""Deterministic synthetic pairwise data: English-looking prompts and responses, about 1 KB a row.

`write_pairwise_jsonl(path, rows, seed)` always writes the same bytes for the same arguments (on
CPython 3.11+: `random.Random` with a fixed seed), so results from two machines import the same
file; the benchmark records the file's SHA-256 to prove it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from pathlib import Path

GENERATOR_VERSION = 1

_WORDS = """
the of and to a in is that for it as was with be by on not he this are or his from at which but have
an they you were her she there been one all we their has would when if so no will can more other
what about some them into only its time could these may first then do any like my now over such our
man me even most made after also did many before must through back years where much your way well
down should because each just those people how too little state good very make world still own see
men work long get here between both life being under never day same another know while last might
us great old year off come since against go came right used take three states himself few house use
during without again place around however home small found thought went say part once general high
upon school every don does got united left number course war until always away something fact though
water less public put think almost hand enough far took head yet government system better set told
nothing night end why called didn eyes find going look asked later knew point next program city business
give group toward young days let room president side social given present several order national possible
rather second face per among form important often things looking early white case large need big four
within felt children along best seemed today development problem toward data model answer question
response function value error result example method approach reason evidence analysis explain describe
consider compare improve design process step simple clear detail specific general common useful memory
performance network database query server client request user file code test library version release
language python function variable loop array string integer list dictionary class object module package
recipe flour butter oven minutes temperature salt garden soil water plants season travel city museum train
budget savings interest loan market price history century empire treaty river mountain climate energy
cell protein gene patient doctor symptoms treatment exercise sleep diet contract court law policy tenant
café naïve résumé façade coöperate déjà vu piñata jalapeño über Zürich São Paulo Kraków Malmö Ångström
""".split()

_OPENERS = (
    "How do I",
    "Can you explain how to",
    "What is the best way to",
    "Write a short guide on how to",
    "Explain why people",
    "Give me three tips to",
    "Is it possible to",
    "Describe the steps to",
    "Why does it matter to",
    "Help me",
)
_TRANSITIONS = (
    "First,",
    "Second,",
    "Then",
    "However,",
    "In short,",
    "For example,",
    "Note that",
    "Finally,",
    "In practice,",
    "As a rule,",
)
_CODE = (
    "```python\ndef {a}({b}):\n    return [{b} for {b} in {c} if {b}]\n```",
    "```sql\nSELECT {a}, count(*) FROM {b} GROUP BY {a} ORDER BY 2 DESC;\n```",
    "```bash\n{a} --{b} ./{c} | sort | uniq -c\n```",
)
DOMAINS = (
    "coding",
    "math",
    "writing",
    "science",
    "history",
    "health",
    "finance",
    "travel",
    "cooking",
    "law",
)
SOURCES = ("synthetic-chat", "forum-scrape", "red-team", "user-logs", "benchmark-v2")
TAGS = ("multi-step", "factual", "creative", "safety", "long-form", "short-answer", "reasoning", "advice")
MODELS = (
    "llama-3.1-8b-instruct",
    "llama-3.1-70b-instruct",
    "qwen2.5-7b-instruct",
    "qwen2.5-72b-instruct",
    "mistral-7b-instruct-v0.3",
    "mixtral-8x7b-instruct",
    "gemma-2-9b-it",
    "phi-3.5-mini-instruct",
    "gpt-4o-mini",
    "claude-3-haiku",
)
# Zipf-like: the common words come first in _WORDS and are drawn far more often.
_CUM_WEIGHTS = list(itertools.accumulate(1.0 / (rank + 1) ** 0.8 for rank in range(len(_WORDS))))


class _Text:
    """Sentences are drawn from a seeded pool (fast); paragraphs, lists and code vary per row."""

    POOL = 40_000

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.random = rng.random
        self.long = [self._make_sentence(6, 20) for _ in range(self.POOL)]
        self.short = [self._make_sentence(4, 12) for _ in range(self.POOL // 4)]

    # random.randint and random.choice are slow; these draw from the same seeded stream.
    def int(self, lo: int, hi: int) -> int:
        return lo + int(self.random() * (hi - lo + 1))

    def pick(self, seq):
        return seq[int(self.random() * len(seq))]

    def words(self, n: int) -> list[str]:
        return self.rng.choices(_WORDS, cum_weights=_CUM_WEIGHTS, k=n)

    def _make_sentence(self, lo: int, hi: int) -> str:
        words = self.words(self.int(lo, hi))
        if len(words) > 8 and self.random() < 0.4:
            words[self.int(3, len(words) - 3)] += ","
        text = " ".join(words)
        end = "." if self.random() < 0.85 else self.pick("?!")
        return text[0].upper() + text[1:] + end

    def sentence(self, short: bool = False) -> str:
        return self.pick(self.short if short else self.long)

    def prose(self, min_chars: int) -> str:
        paragraphs, paragraph, size = [], [], 0
        length = self.int(2, 5)
        while size < min_chars:
            s = self.pick(self.long)
            if paragraph and self.random() < 0.25:
                s = f"{self.pick(_TRANSITIONS)} {s[0].lower()}{s[1:]}"
            paragraph.append(s)
            size += len(s) + 1
            if len(paragraph) >= length:
                paragraphs.append(" ".join(paragraph))
                paragraph, length = [], self.int(2, 5)
        if paragraph:
            paragraphs.append(" ".join(paragraph))
        return "\n\n".join(paragraphs)

    def response(self, domain: str) -> str:
        target = self.int(130, 430)
        shape = self.random()
        if shape < 0.25:  # an intro and a numbered list
            items = [f"{i}. {self.sentence(short=True)}" for i in range(1, self.int(3, 6))]
            return self.sentence() + "\n\n" + "\n".join(items) + "\n\n" + self.prose(max(0, target - 220))
        if shape < 0.35 and domain in ("coding", "math", "science"):
            a, b, c = (w.lower() for w in self.words(3))
            code = self.pick(_CODE).format(a=a, b=b, c=c)
            return self.prose(target // 2) + "\n\n" + code + "\n\n" + self.sentence()
        return self.prose(target)

    def prompt(self) -> str:
        text = f"{self.pick(_OPENERS)} {' '.join(self.words(self.int(4, 12)))}?"
        if self.random() < 0.6:
            text += " " + self.prose(self.int(20, 160))
        return text


def pairwise_row(n: int, t: _Text, chat_fraction: float = 0.1) -> dict:
    domain = t.pick(DOMAINS)
    if t.random() < chat_fraction:
        prompt: str | list = [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": t.prompt()},
            {"role": "assistant", "content": t.sentence()},
            {"role": "user", "content": t.sentence(short=True)},
        ]
    else:
        prompt = t.prompt()
    i = t.int(0, len(MODELS) - 1)
    j = (i + t.int(1, len(MODELS) - 1)) % len(MODELS)
    return {
        "id": f"bench-{n:07d}",
        "prompt": prompt,
        "response_a": t.response(domain),
        "response_b": t.response(domain),
        "model_a": MODELS[i],
        "model_b": MODELS[j],
        "metadata": {
            "domain": domain,
            "source": t.pick(SOURCES),
            "tags": sorted({t.pick(TAGS) for _ in range(t.int(1, 3))}),
            "difficulty": t.int(1, 5),
            "turns": len(prompt) // 2 if isinstance(prompt, list) else 1,
        },
    }


def write_pairwise_jsonl(path: Path, rows: int, seed: int, chat_fraction: float = 0.1) -> dict:
    """Write `rows` JSONL rows; return size, SHA-256 and row-size statistics."""
    text = _Text(random.Random(seed))
    digest = hashlib.sha256()
    total = 0
    smallest, largest = None, 0
    with open(path, "wb", buffering=1 << 20) as f:
        for n in range(1, rows + 1):
            line = (json.dumps(pairwise_row(n, text, chat_fraction), ensure_ascii=False) + "\n").encode("utf-8")
            f.write(line)
            digest.update(line)
            total += len(line)
            largest = max(largest, len(line))
            smallest = len(line) if smallest is None else min(smallest, len(line))
    return {
        "bytes": total,
        "sha256": digest.hexdigest(),
        "row_bytes_mean": round(total / rows, 1) if rows else 0,
        "row_bytes_min": smallest,
        "row_bytes_max": largest,
    }
