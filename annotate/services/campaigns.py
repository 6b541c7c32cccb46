"""Campaign write paths."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from annotate import schema as label_schema
from annotate.models import Campaign, CampaignMember


class CampaignError(ValueError):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def campaign_create(
    *,
    name: str,
    kind: str,
    preset: str | None = None,
    schema: dict | None = None,
    overlap: int = 1,
    guidelines: str = "",
    human_budget: float | None = None,
    slug: str | None = None,
    lease_seconds: int = 600,
    gold_rate: float = 0.0,
    label_limit: int | None = None,
    daily_label_limit: int | None = None,
    qualification_items: int = 0,
    qualification_threshold: float = 0.8,
    qualification_feedback: bool = True,
    requalify_on_guidelines: bool = False,
    attention_max_failures: int | None = None,
    min_seconds: float | None = None,
    overlap_max: int | None = None,
    agreement_threshold: float = 0.6,
    overlap_on_judge_disagreement: bool = True,
    judge_gold_threshold: float | None = None,
    reviewers_see_identities: bool = False,
    created_by: AbstractBaseUser | None = None,
) -> Campaign:
    """Create a draft campaign from a preset or an explicit schema; its creator owns it.

    The quality-control settings (qualification round, attention checks, minimum time, dynamic overlap,
    judges' gold threshold, reviewers) default to the model's: no gate, no pause, no dynamic overlap.
    """
    if kind not in label_schema.KINDS:
        raise CampaignError(f"kind: {kind!r} is not one of {', '.join(label_schema.KINDS)}", "kind")
    if (preset is None) == (schema is None):
        raise CampaignError("give exactly one of a preset or a schema", "preset")
    values = campaign_settings_check(
        campaign=None,
        values={
            "name": name,
            "kind": kind,
            "preset": preset or "",
            "label_schema": schema,
            "overlap": overlap,
            "guidelines": guidelines,
            "lease_seconds": lease_seconds,
            "gold_rate": gold_rate,
            "label_limit": label_limit,
            "daily_label_limit": daily_label_limit,
            "qualification_items": qualification_items,
            "qualification_threshold": qualification_threshold,
            "qualification_feedback": qualification_feedback,
            "requalify_on_guidelines": requalify_on_guidelines,
            "attention_max_failures": attention_max_failures,
            "min_seconds": min_seconds,
            "overlap_max": overlap_max,
            "agreement_threshold": agreement_threshold,
            "overlap_on_judge_disagreement": overlap_on_judge_disagreement,
            "judge_gold_threshold": judge_gold_threshold,
            "reviewers_see_identities": reviewers_see_identities,
        },
    )
    if preset is not None:
        values["preset"] = preset  # a preset's schema, normalised, is still that preset
    if human_budget is not None and human_budget < 0:
        raise CampaignError("human_budget: must not be negative", "human_budget")
    if slug is not None and not slugify(slug):
        raise CampaignError(f"slug: {slug!r} has no letters or digits to make a slug of", "slug")
    base = slugify(slug or values["name"])[:70] or "campaign"
    for attempt in range(100):
        candidate = base if attempt == 0 else f"{base}-{attempt + 1}"
        try:
            with transaction.atomic():
                campaign = Campaign.objects.create(
                    slug=candidate, human_budget=human_budget, created_by=created_by, **values
                )
                if created_by is not None:
                    CampaignMember.objects.create(campaign=campaign, user=created_by, role=CampaignMember.Role.OWNER)
                return campaign
        except IntegrityError:
            if slug:
                raise CampaignError(f"slug: {slug!r} is taken", "slug") from None
    raise CampaignError(f"slug: no free slug near {base!r}", "slug")


def campaign_get(ref: str | int) -> Campaign:
    """A campaign by id or slug (commands and API accept both)."""
    ref = str(ref).strip()
    if ref.isdigit():
        found = Campaign.objects.filter(pk=int(ref)).first()
        if found:
            return found
    found = Campaign.objects.filter(slug=ref).first()
    if found is None:
        raise Campaign.DoesNotExist(f"no campaign with id or slug {ref!r}")
    return found


# --- lifecycle: draft → open → paused → closed ------------------------------------------------

State = Campaign.State

# Where each state may go. A closed campaign can be opened again (more items, a late annotator);
# nothing goes back to draft once it has been open, because annotators may already hold labels.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    State.DRAFT: (State.OPEN, State.CLOSED),
    State.OPEN: (State.PAUSED, State.CLOSED),
    State.PAUSED: (State.OPEN, State.CLOSED),
    State.CLOSED: (State.OPEN,),
}
# The words people type for a state, in commands and the API.
STATE_WORDS = {
    "draft": State.DRAFT,
    "open": State.OPEN,
    "opened": State.OPEN,
    "reopen": State.OPEN,
    "resume": State.OPEN,
    "pause": State.PAUSED,
    "paused": State.PAUSED,
    "close": State.CLOSED,
    "closed": State.CLOSED,
}
ACTION_WORDS = {State.OPEN: "Open", State.PAUSED: "Pause", State.CLOSED: "Close"}


def state_from_word(word: str) -> str:
    """`open`, `pause`, `close` (and their participles) → a state; a clear error otherwise."""
    key = (word or "").strip().lower()
    if key == "active":
        raise CampaignError("state: 'active' is called 'open' now; use 'open'", "state")
    if key not in STATE_WORDS:
        raise CampaignError(f"state: {word!r} is not one of draft, open, paused, closed", "state")
    return STATE_WORDS[key]


def campaign_state_set(*, campaign: Campaign, state: str) -> Campaign:
    """Move a campaign to `state` if the lifecycle allows it; the row is locked while it changes."""
    with transaction.atomic():
        current = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if state == current.state:
            return current
        allowed = TRANSITIONS[current.state]
        if state not in allowed:
            names = " or ".join(allowed)
            raise CampaignError(f"state: a {current.state} campaign can only become {names}, not {state}", "state")
        current.state = state
        current.save(update_fields=["state", "updated_at"])
    campaign.state = current.state
    return current


def campaign_notices(*, campaign: Campaign) -> list[str]:
    """Why annotators do not see the campaign (or see nothing in it), in words for its admins."""
    notices: list[str] = []
    if campaign.state == State.DRAFT:
        notices.append("It is a draft: annotators do not see it until you open it.")
    elif campaign.state == State.PAUSED:
        notices.append("It is paused: no new items are handed out; leases already held can still be submitted.")
    elif campaign.state == State.CLOSED:
        notices.append("It is closed: annotators cannot label it or change their labels.")
    items = campaign.items.count()
    if items == 0:
        notices.append("It has no items yet: import some (Import tab), or annotators will find nothing to label.")
    elif not campaign.items.filter(route__in=("human", "both"), gold_label__isnull=True).exists():
        notices.append(
            f"None of its {items} items is routed to humans yet (policy {campaign.routing_policy}): "
            "see the Routing tab."
        )
    gold = (
        campaign.items.filter(gold_label__isnull=False).count()
        if campaign.gold_rate or campaign.qualification_items
        else 0
    )
    if campaign.gold_rate and not gold:
        notices.append(
            f"Its gold rate is {campaign.gold_rate:g} but it has no gold items: import rows with a gold_label."
        )
    rounds = campaign.qualification_items
    if rounds and gold < rounds:
        then = (
            "annotators are judged on those" if gold else "new annotators wait until you import rows with a gold_label"
        )
        notices.append(
            f"Its qualification round asks for {rounds} check items but it has {gold} gold item{'s' * (gold != 1)}: "
            f"{then}."
        )
    elif rounds and campaign.gold_rate and gold == rounds:
        notices.append(
            f"Its {gold} gold items all go to the qualification round, so none is left for attention checks: "
            "import more rows with a gold_label."
        )
    if campaign.attention_max_failures is not None and not campaign.gold_rate:
        notices.append(
            "It pauses annotators after failed attention checks, but its gold rate is 0, so no check is mixed in."
        )
    return notices


# --- settings ---------------------------------------------------------------------------------

EDITABLE = (
    "name",
    "guidelines",
    "overlap",
    "lease_seconds",
    "gold_rate",
    "label_limit",
    "daily_label_limit",
    "kind",
    "preset",
    "label_schema",
    # quality control (annotate/services/quality/)
    "qualification_items",
    "qualification_threshold",
    "qualification_feedback",
    "requalify_on_guidelines",
    "attention_max_failures",
    "min_seconds",
    "overlap_max",
    "agreement_threshold",
    "overlap_on_judge_disagreement",
    "judge_gold_threshold",
    "reviewers_see_identities",
)
QUALITY_FIELDS = EDITABLE[EDITABLE.index("qualification_items") :]
MAX_OVERLAP = 50
MAX_QUALIFICATION_ITEMS = 500
MAX_MIN_SECONDS = 3600
# Shares from 0 to 1, what each means (for the error message); None allowed for the optional ones.
SHARES = {
    "qualification_threshold": ("the share of check items to get right", False),
    "agreement_threshold": ("the agreement below which an item is disputed", False),
    "judge_gold_threshold": ("the gold accuracy a judge needs for llm-only routing", True),
}
FLAGS = (
    "qualification_feedback",
    "requalify_on_guidelines",
    "overlap_on_judge_disagreement",
    "reviewers_see_identities",
)


def campaign_has_labels(*, campaign: Campaign) -> bool:
    return campaign.annotations.exists()


def campaign_settings_check(*, campaign: Campaign | None, values: dict) -> dict:
    """Check settings for a new (campaign None) or existing campaign; returns the cleaned values.

    Raises CampaignError naming the first field at fault. The schema is frozen once the campaign has
    labels: a changed kind or schema is refused, and `campaign_copy` makes the new version.
    """
    unknown = sorted(set(values) - set(EDITABLE))
    if unknown:
        raise CampaignError(f"{unknown[0]}: not a campaign setting", unknown[0])
    out = dict(values)
    if "name" in out:
        out["name"] = (out["name"] or "").strip()
        if not out["name"]:
            raise CampaignError("name: required", "name")
        if len(out["name"]) > 200:
            raise CampaignError("name: at most 200 characters", "name")
    if "guidelines" in out:
        out["guidelines"] = out["guidelines"] or ""
    for name, low, high in (("overlap", 1, MAX_OVERLAP), ("lease_seconds", 60, 7 * 86400)):
        if name in out:
            value = out[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise CampaignError(f"{name}: must be a whole number from {low} to {high}", name)
    if "gold_rate" in out:
        value = out["gold_rate"]
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
            raise CampaignError(
                "gold_rate: must be a number from 0 to 1 (the share of items that are gold checks)", "gold_rate"
            )
        out["gold_rate"] = float(value)
    for name in ("label_limit", "daily_label_limit"):
        if name in out and out[name] is not None:
            value = out[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CampaignError(f"{name}: must be a whole number of at least 1, or empty for no limit", name)
    _quality_check(campaign, out)
    if "label_schema" in out or "kind" in out or "preset" in out:
        kind = out.get("kind", campaign.kind if campaign else None)
        if kind not in label_schema.KINDS:
            raise CampaignError(f"kind: {kind!r} is not one of {', '.join(label_schema.KINDS)}", "kind")
        preset = out.get("preset") or ""
        schema = out.get("label_schema")
        if schema is None and preset:
            try:
                schema = label_schema.preset(preset)
            except label_schema.SchemaError as exc:
                raise CampaignError(str(exc), "preset") from None
            if label_schema.PRESET_KINDS[preset] != kind:
                raise CampaignError(
                    f"preset: {preset!r} is a {label_schema.PRESET_KINDS[preset]} preset; kind {kind!r} does not match",
                    "preset",
                )
        if schema is None and campaign is not None:
            schema = campaign.label_schema
        if schema is None:
            raise CampaignError("label_schema: choose a preset or write a schema", "label_schema")
        try:
            out["label_schema"] = label_schema.schema_validate(schema, kind)
        except label_schema.SchemaError as exc:
            raise CampaignError(str(exc), "label_schema") from None
        out["kind"] = kind
        out["preset"] = (
            preset
            if preset and out["label_schema"] == label_schema.schema_validate(label_schema.preset(preset), kind)
            else ""
        )
        if campaign is not None and campaign_has_labels(campaign=campaign):
            if out["kind"] != campaign.kind or out["label_schema"] != campaign.label_schema:
                raise CampaignError(
                    "label_schema: frozen — this campaign has labels, so its task and schema cannot change; "
                    "copy it as a new version and change the copy",
                    "label_schema",
                )
            out["preset"] = campaign.preset
    return out


def _whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _quality_check(campaign: Campaign | None, out: dict) -> None:
    """The quality-control settings, with the database's check constraints said in words first."""
    if "qualification_items" in out:
        value = out["qualification_items"]
        if not _whole_number(value) or not 0 <= value <= MAX_QUALIFICATION_ITEMS:
            raise CampaignError(
                f"qualification_items: must be a whole number from 0 (no qualification round) to "
                f"{MAX_QUALIFICATION_ITEMS}",
                "qualification_items",
            )
    for name, (meaning, optional) in SHARES.items():
        if name not in out or (optional and out[name] is None):
            continue
        value = out[name]
        if not _number(value) or not 0 <= value <= 1:
            empty = ", or empty for none" if optional else ""
            raise CampaignError(f"{name}: must be a number from 0 to 1 ({meaning}){empty}", name)
        out[name] = float(value)
    for name in FLAGS:
        if name in out and not isinstance(out[name], bool):
            raise CampaignError(f"{name}: must be true or false", name)
    if out.get("attention_max_failures") is not None:
        value = out["attention_max_failures"]
        if not _whole_number(value) or not 1 <= value <= 1000:
            raise CampaignError(
                "attention_max_failures: must be a whole number from 1 to 1000 (failed checks before a pause), "
                "or empty to never pause",
                "attention_max_failures",
            )
    if out.get("min_seconds") is not None:
        value = out["min_seconds"]
        if not _number(value) or not 0 < value <= MAX_MIN_SECONDS:
            raise CampaignError(
                f"min_seconds: must be a number of seconds above 0 and at most {MAX_MIN_SECONDS}, or empty for no "
                "minimum",
                "min_seconds",
            )
        out["min_seconds"] = float(value)
    overlap = out.get("overlap", campaign.overlap if campaign else None)
    if out.get("overlap_max") is not None:
        value = out["overlap_max"]
        if not _whole_number(value) or not 1 <= value <= MAX_OVERLAP:
            raise CampaignError(
                f"overlap_max: must be a whole number up to {MAX_OVERLAP}, or empty for no dynamic overlap",
                "overlap_max",
            )
        if _whole_number(overlap) and value < overlap:
            raise CampaignError(
                f"overlap_max: {value} is below the overlap ({overlap}); dynamic overlap only adds labels, so make "
                "it at least the overlap, or empty to turn it off",
                "overlap_max",
            )
    elif "overlap" in out and "overlap_max" not in out and campaign is not None and campaign.overlap_max is not None:
        if _whole_number(overlap) and overlap > campaign.overlap_max:
            raise CampaignError(
                f"overlap: {overlap} is above overlap_max ({campaign.overlap_max}); raise overlap_max too, or empty it",
                "overlap",
            )


def campaign_update(*, campaign: Campaign, **values) -> Campaign:
    """Change a campaign's settings in one transaction; a changed guideline text bumps its version."""
    with transaction.atomic():
        current = Campaign.objects.select_for_update().get(pk=campaign.pk)
        values = campaign_settings_check(campaign=current, values=values)
        changed = [name for name, value in values.items() if getattr(current, name) != value]
        for name in changed:
            setattr(current, name, values[name])
        if "guidelines" in changed:
            current.guidelines_version += 1
            changed.append("guidelines_version")
        if changed:
            current.save(update_fields=[*changed, "updated_at"])
        if "judge_gold_threshold" in changed:
            from routing.api import routing_changed  # routing builds on annotate's services

            # The gold gate decides which items may go to the judges alone: route again under the new one.
            routing_changed(campaign=current)
    return current


def campaign_copy(
    *, campaign: Campaign, name: str, created_by: AbstractBaseUser | None = None, with_items: bool = True
) -> Campaign:
    """A new draft with the same settings, pools and roles (a new version of the schema can be made
    on it); with `with_items`, the same items, imported through the one import path."""
    from annotate.services.imports import items_import  # imports reach routing, which imports services

    copy = campaign_create(
        name=name,
        kind=campaign.kind,
        schema=campaign.label_schema,
        overlap=campaign.overlap,
        guidelines=campaign.guidelines,
        human_budget=campaign.human_budget,
        created_by=created_by,
    )
    with transaction.atomic():
        for field_name in ("preset", "lease_seconds", "gold_rate", "label_limit", "daily_label_limit",
                           "routing_policy", "routing_params", "calibration_fraction", *QUALITY_FIELDS):  # fmt: skip
            setattr(copy, field_name, getattr(campaign, field_name))
        copy.copied_from = campaign
        copy.save()
        copy.annotators.set(campaign.annotators.all())
        copy.pools.set(campaign.pools.all())
        copy.judges.set(campaign.judges.all())
        for member in campaign.members.exclude(user=created_by):
            CampaignMember.objects.get_or_create(campaign=copy, user_id=member.user_id, defaults={"role": member.role})
    if with_items and campaign.items.exists():
        items_import(campaign=copy, stream=_items_as_jsonl(campaign), filename=f"{campaign.slug}.jsonl")
    return copy


def _items_as_jsonl(campaign: Campaign):
    """The campaign's items in the canonical import layout, as a file the importer reads."""
    import io

    import orjson

    out = io.BytesIO()
    fields = ("external_id", "prompt", "response_a", "response_b", "model_a", "model_b", "response", "reference",
              "metadata", "gold_label", "gold_explanation")  # fmt: skip
    for row in campaign.items.order_by("id").values(*fields).iterator(chunk_size=2000):
        record = {"id": row.pop("external_id")}
        record.update({key: value for key, value in row.items() if value not in ("", None, {})})
        out.write(orjson.dumps(record) + b"\n")
    out.seek(0)
    return out
