"""Whether a label matches an item's gold label: the one rule for humans (qualification, attention
checks, gold accuracy) and judges (gold scores that decide `llm`-only routing).

A gold label may name some keys only (`partial` in the import); every key it names must match.
Pairwise aspects match on the side they favour (A, tie, B: "A is much better" matches "A is better"),
rubric criteria on the exact score — the same `sign`/`exact` modes as annotate/stats/raters.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from annotate import schema as label_schema


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def gold_match(*, label: Mapping | None, gold: Mapping | None, schema: dict, kind: str) -> bool | None:
    """True/False when `gold` names at least one key; None when there is no gold to compare with.

    A label missing a key the gold names (or none at all: a judge's parse failure) does not match.
    """
    if not gold:
        return None
    pairwise = {key.name: key.pairwise for key in label_schema.label_keys(schema, kind)}
    label = label or {}
    for name, wanted in gold.items():
        given = label.get(name)
        if given is None:
            return False
        if pairwise.get(name, False):
            if _sign(given) != _sign(wanted):
                return False
        elif given != wanted:
            return False
    return True
