"""Reads whose query shape matters: who may work on what."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from annotate import schema as label_schema
from annotate.models import Assignment, Campaign

CONFIDENCE_WORDS = [(1, "Guessing"), (2, "Unsure"), (3, "Fairly sure"), (4, "Sure"), (5, "Certain")]


def prompt_preview(prompt, length: int = 100) -> str:
    """One line of a prompt: the last user message of a transcript, else the text."""
    if isinstance(prompt, list):
        users = [m["content"] for m in prompt if m.get("role") == "user"] or [m["content"] for m in prompt]
        prompt = users[-1] if users else ""
    text = " ".join(str(prompt).split())
    return text if len(text) <= length else text[: length - 1] + "…"


def campaigns_for_annotator(*, user) -> QuerySet[Campaign]:
    """Active campaigns whose pool includes this person (an empty pool is open to everyone)."""
    pool = Campaign.annotators.through.objects.filter(campaign=OuterRef("pk"))
    return (
        Campaign.objects.filter(state=Campaign.State.ACTIVE)
        .filter(Exists(pool.filter(user=user.pk)) | ~Exists(pool))
        .order_by("name")
    )


def campaign_for_annotator(*, user, ref: str) -> Campaign | None:
    """One campaign open to this person, by slug or (for API clients) by id.

    The same condition as `campaigns_for_annotator`, written out in SQL: this runs on every
    next/submit request, and compiling the ORM expression cost six times the query itself.
    """
    pool = Campaign.annotators.through._meta.db_table
    table = Campaign._meta.db_table
    by_id = ref.isdigit() and len(ref) < 19  # a bigint
    key, params = ("(slug = %s OR id = %s)", [ref, int(ref)]) if by_id else ("slug = %s", [ref])
    rows = Campaign.objects.raw(
        f"SELECT * FROM {table} c WHERE {key} AND state = %s "
        f"AND (EXISTS (SELECT 1 FROM {pool} p WHERE p.campaign_id = c.id AND p.user_id = %s) "
        f"OR NOT EXISTS (SELECT 1 FROM {pool} p WHERE p.campaign_id = c.id)) LIMIT 1",
        [*params, Campaign.State.ACTIVE, user.pk],
    )
    return next(iter(rows), None)


def label_rows(*, campaign: Campaign) -> list[dict]:
    """The scale rows an annotator answers, in display terms (A = left, B = right)."""
    schema, kind = campaign.label_schema, campaign.kind
    rows: list[dict] = []
    if kind in ("pairwise", "both"):
        for aspect in schema["pairwise"]["aspects"]:
            words = label_schema.pairwise_words(aspect["scale"])
            points = [
                {"value": v, "word": words[v]}
                for v in range(-aspect["scale"], aspect["scale"] + 1)
                if v != 0 or aspect["allow_tie"]
            ]
            for i, point in enumerate(points):
                point["hotkey"] = str(i + 1)
            rows.append(
                {
                    "key": aspect["name"],
                    "kind": "pairwise",
                    "title": aspect["name"].replace("_", " ").capitalize(),
                    "description": aspect["description"],
                    "points": points,
                }
            )
    if kind in ("rubric", "both"):
        for criterion in schema["rubric"]["criteria"]:
            targets = [("_a", " — response A"), ("_b", " — response B")] if kind == "both" else [("", "")]
            for suffix, which in targets:
                points = [
                    {
                        "value": v,
                        "word": str(v),
                        "hotkey": str(v) if 0 <= v <= 9 else "",
                        "description": criterion["scores"].get(str(v), ""),
                    }
                    for v in range(criterion["min"], criterion["max"] + 1)
                ]
                rows.append(
                    {
                        "key": criterion["name"] + suffix,
                        "kind": "rubric",
                        "title": criterion["name"].replace("_", " ").capitalize() + which,
                        "description": criterion["description"],
                        "points": points,
                    }
                )
    return rows


def item_display(*, item, campaign: Campaign, position_swapped: bool | None) -> dict:
    """What an annotator may see of an item — and nothing else.

    Blind by construction: no model names, metadata, gold label, other labels or judge verdicts;
    responses in the order shown to this annotator.
    """
    shown = {"prompt": item.prompt, "prompt_is_chat": isinstance(item.prompt, list)}
    if campaign.has_pairwise:
        left, right = (item.response_b, item.response_a) if position_swapped else (item.response_a, item.response_b)
        shown["responses"] = [left, right]
    else:
        shown["response"] = item.response
        shown["reference"] = item.reference
    shown["rows"] = label_rows(campaign=campaign)
    shown["confidence"] = bool(campaign.label_schema.get("confidence"))
    shown["confidence_levels"] = CONFIDENCE_WORDS if shown["confidence"] else []
    shown["justification"] = campaign.label_schema.get("justification", "optional")
    return shown


def assignment_display(*, assignment: Assignment) -> dict:
    """A leased item as the annotator sees it, with the lease's id and expiry."""
    return {
        "assignment": assignment.pk,
        "expires_at": assignment.expires_at.isoformat(),
        **item_display(
            item=assignment.item, campaign=assignment.campaign, position_swapped=assignment.position_swapped
        ),
    }
