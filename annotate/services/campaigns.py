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
    created_by: AbstractBaseUser | None = None,
) -> Campaign:
    """Create a campaign from a preset or an explicit schema; the schema is validated for `kind`."""
    name = (name or "").strip()
    if not name:
        raise CampaignError("name: required", "name")
    if kind not in label_schema.KINDS:
        raise CampaignError(f"kind: {kind!r} is not one of {', '.join(label_schema.KINDS)}", "kind")
    if (preset is None) == (schema is None):
        raise CampaignError("give exactly one of a preset or a schema", "preset")
    if preset is not None:
        try:
            schema = label_schema.preset(preset)
        except label_schema.SchemaError as exc:
            raise CampaignError(str(exc), "preset") from None
        preset_kind = label_schema.PRESET_KINDS[preset]
        if kind != preset_kind:
            raise CampaignError(f"preset {preset!r} is a {preset_kind} preset; kind {kind!r} does not match", "preset")
    try:
        schema = label_schema.schema_validate(schema, kind)
    except label_schema.SchemaError as exc:
        raise CampaignError(str(exc), "schema") from None
    if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 1:
        raise CampaignError("overlap: must be an integer of at least 1", "overlap")
    if human_budget is not None and human_budget < 0:
        raise CampaignError("human_budget: must not be negative", "human_budget")
    base = slugify(slug or name)[:70] or "campaign"
    for attempt in range(100):
        candidate = base if attempt == 0 else f"{base}-{attempt + 1}"
        try:
            with transaction.atomic():
                campaign = Campaign.objects.create(
                    name=name,
                    slug=candidate,
                    kind=kind,
                    preset=preset or "",
                    label_schema=schema,
                    overlap=overlap,
                    guidelines=guidelines,
                    human_budget=human_budget,
                    created_by=created_by,
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
