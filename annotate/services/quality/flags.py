"""Annotators' flags and comments on items ("broken prompt", "both are bad", ...): adding, listing, resolving.

Who may flag an item: an annotator in the campaign's pool who was given that item (any lease of it, any
state or purpose: they saw it). Nobody else has seen the item as an annotator, so nobody else flags it;
admins read flags, they do not write them. A flag is one row per (item, annotator, kind): a repeat is the
same flag, with the newer comment if one is given.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from annotate.models import Assignment, Campaign, Item, ItemFlag
from annotate.selectors import in_campaign_pool

MAX_COMMENT = 2000
MAX_RESOLUTION = ItemFlag._meta.get_field("resolution").max_length
KINDS = tuple(ItemFlag.Kind.values)


def _checked_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"flag kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def flag_add(*, item: Item, annotator, kind: str, comment: str = "") -> ItemFlag:
    """Flag an item the annotator was given; a repeat of the same kind returns the same flag.

    A repeat with a comment replaces the comment and, if an admin had resolved the flag, opens it again
    (the annotator says something new). ValueError when the kind is unknown, the comment is too long (or
    missing on a comment flag), the annotator is not in the campaign's pool or was never given this item.
    """
    _checked_kind(kind)
    comment = (comment or "").strip()
    if kind == ItemFlag.Kind.COMMENT and not comment:
        raise ValueError("a comment flag needs its comment: write what is wrong")
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"a flag's comment is at most {MAX_COMMENT} characters, not {len(comment)}")
    campaign = item.campaign
    if not in_campaign_pool(user=annotator, campaign=campaign):
        raise ValueError(f"{annotator.get_username()} does not annotate campaign {campaign.slug!r}")
    if not Assignment.objects.filter(item=item, annotator=annotator).exists():
        raise ValueError(f"item {item.external_id!r} was never given to {annotator.get_username()}: flag items you see")
    with transaction.atomic():
        # get_or_create takes a savepoint for the insert: a double click racing this one finds its row.
        flag, created = ItemFlag.objects.select_for_update().get_or_create(
            item=item, annotator=annotator, kind=kind, defaults={"campaign": campaign, "comment": comment}
        )
        if not created and comment and comment != flag.comment:
            flag.comment = comment
            flag.resolved_at, flag.resolved_by, flag.resolution = None, None, ""
            flag.save(update_fields=["comment", "resolved_at", "resolved_by", "resolution"])
    return flag


def flags_list(*, campaign: Campaign, kind: str | None = None, resolved: bool | None = None) -> QuerySet[ItemFlag]:
    """The campaign's flags, newest first; `kind` one of ItemFlag.Kind, `resolved` True/False (None: all)."""
    flags = ItemFlag.objects.filter(campaign=campaign).select_related("item", "annotator", "resolved_by")
    if kind:
        flags = flags.filter(kind=_checked_kind(kind))
    if resolved is not None:
        flags = flags.filter(resolved_at__isnull=not resolved)
    return flags.order_by("-created_at", "-id")


STATES = {"open": False, "resolved": True, "all": None}


def flag_filters(*, kind: str | None, state: str | None) -> tuple[str | None, bool | None]:
    """The page's and the API's filters (`kind`, `state` open / resolved / all; empty: any) as
    `flags_list` takes them; ValueError names a value that is not one of them."""
    kind = (kind or "").strip() or None
    if kind is not None:
        _checked_kind(kind)
    state = (state or "").strip() or "all"
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    return kind, STATES[state]


def flag_counts(*, campaign: Campaign) -> dict[str, dict[str, int]]:
    """Per kind, the campaign's open flags and all of them: `{kind: {"open", "all"}}`, every kind present."""
    counts = {kind: {"open": 0, "all": 0} for kind in KINDS}
    rows = (
        ItemFlag.objects.filter(campaign=campaign)
        .values("kind")
        .annotate(n=Count("id"), open=Count("id", filter=Q(resolved_at__isnull=True)))
    )
    for row in rows:
        counts[row["kind"]] = {"open": row["open"], "all": row["n"]}
    return counts


def flag_resolve(*, flag: ItemFlag, by, resolution: str = "") -> ItemFlag:
    """Mark a flag resolved by an admin, with a note; resolving again replaces the note."""
    resolution = (resolution or "").strip()
    if len(resolution) > MAX_RESOLUTION:
        raise ValueError(f"a resolution note is at most {MAX_RESOLUTION} characters, not {len(resolution)}")
    with transaction.atomic():
        flag = ItemFlag.objects.select_for_update().select_related("item", "annotator").get(pk=flag.pk)
        flag.resolved_at = flag.resolved_at or timezone.now()
        flag.resolved_by, flag.resolution = by, resolution
        flag.save(update_fields=["resolved_at", "resolved_by", "resolution"])
    return flag


FLAG_COLUMNS = (
    "id", "item", "external_id", "kind", "comment", "annotator", "created_at", "resolved", "resolved_at",
    "resolved_by", "resolution",
)  # fmt: skip


def flag_row(flag: ItemFlag) -> dict:
    """A flag as the downloads and the API give it to admins (the annotator by username): FLAG_COLUMNS."""
    return {
        "id": flag.pk,
        "item": flag.item_id,
        "external_id": flag.item.external_id,
        "kind": flag.kind,
        "comment": flag.comment,
        "annotator": flag.annotator.get_username(),
        "created_at": flag.created_at.isoformat(),
        "resolved": flag.resolved_at is not None,
        "resolved_at": flag.resolved_at.isoformat() if flag.resolved_at else None,
        "resolved_by": flag.resolved_by.get_username() if flag.resolved_by else None,
        "resolution": flag.resolution,
    }
