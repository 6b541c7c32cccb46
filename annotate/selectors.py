"""Reads whose query shape matters: who may work on what."""

from __future__ import annotations

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet

from annotate import schema as label_schema
from annotate.models import AnnotatorPool, Assignment, Campaign
from annotate.models.rawsql import instances_from_sql

CONFIDENCE_WORDS = [(1, "Guessing"), (2, "Unsure"), (3, "Fairly sure"), (4, "Sure"), (5, "Certain")]


def prompt_preview(prompt, length: int = 100) -> str:
    """One line of a prompt: the last user message of a transcript, else the text."""
    if isinstance(prompt, list):
        users = [m["content"] for m in prompt if m.get("role") == "user"] or [m["content"] for m in prompt]
        prompt = users[-1] if users else ""
    text = " ".join(str(prompt).split())
    return text if len(text) <= length else text[: length - 1] + "…"


def campaigns_for_annotator(*, user) -> QuerySet[Campaign]:
    """Open campaigns whose pool includes this person: added one by one, or as a member of one of
    the campaign's pools; a campaign with neither is open to every active account."""
    direct = Campaign.annotators.through.objects.filter(campaign=OuterRef("pk"))
    pools = Campaign.pools.through.objects.filter(campaign=OuterRef("pk"))
    member = AnnotatorPool.members.through.objects.filter(annotatorpool=OuterRef("annotatorpool"), user=user.pk)
    return (
        Campaign.objects.filter(state=Campaign.State.OPEN)
        .filter(
            Exists(direct.filter(user=user.pk))
            | Exists(pools.filter(Exists(member)))
            | (~Exists(direct) & ~Exists(pools))
        )
        .order_by("name")
    )


def _pool_condition() -> str:
    """`campaigns_for_annotator`'s pool rule in SQL over campaign alias `c`; one parameter, the user id."""
    direct = Campaign.annotators.through._meta.db_table
    pools = Campaign.pools.through._meta.db_table
    members = AnnotatorPool.members.through._meta.db_table
    return (
        f"(EXISTS (SELECT 1 FROM {direct} p WHERE p.campaign_id = c.id AND p.user_id = %(user)s) "
        f"OR EXISTS (SELECT 1 FROM {pools} cp JOIN {members} m ON m.annotatorpool_id = cp.annotatorpool_id "
        "WHERE cp.campaign_id = c.id AND m.user_id = %(user)s) "
        f"OR (NOT EXISTS (SELECT 1 FROM {direct} p WHERE p.campaign_id = c.id) "
        f"AND NOT EXISTS (SELECT 1 FROM {pools} cp WHERE cp.campaign_id = c.id)))"
    )


def in_campaign_pool(*, user, campaign: Campaign) -> bool:
    """Whether the campaign's pool includes this person, whatever the campaign's state."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Campaign._meta.db_table} c WHERE c.id = %(campaign)s AND {_pool_condition()}",
            {"campaign": campaign.pk, "user": user.pk},
        )
        return cursor.fetchone() is not None


def campaign_for_annotator(*, user, ref: str) -> Campaign | None:
    """One campaign open to this person, by slug or (for API clients) by id.

    The same condition as `campaigns_for_annotator`, written out in SQL: this runs on every
    next/submit request, and compiling the ORM expression cost six times the query itself (and
    RawQuerySet's per-query setup a tenth of the request's CPU).
    """
    table = Campaign._meta.db_table
    by_id = ref.isascii() and ref.isdigit() and len(ref) < 19  # a bigint
    key = "(c.slug = %(ref)s OR c.id = %(id)s)" if by_id else "c.slug = %(ref)s"
    rows = instances_from_sql(
        Campaign,
        f"SELECT * FROM {table} c WHERE {key} AND c.state = %(state)s AND {_pool_condition()} LIMIT 1",
        {"ref": ref, "id": int(ref) if by_id else 0, "state": Campaign.State.OPEN, "user": user.pk},
    )
    return rows[0] if rows else None


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
