"""API serializers; input and output are separate where they differ."""

from django.db import models
from rest_framework import serializers

from annotate import schema as label_schema
from annotate.models import Annotation, Campaign, Item, Job
from annotate.services.campaigns import QUALITY_FIELDS
from annotate.services.imports.readers import FORMATS


def _quality_fields(*, create: bool) -> dict:
    """The quality-control settings as input fields; the campaign services check their ranges. On create
    an absent field takes the model's default; on update it stays as it is."""
    fields = {}
    for name in QUALITY_FIELDS:
        model_field = Campaign._meta.get_field(name)
        kwargs = {"required": False, "help_text": str(model_field.help_text)}
        if model_field.null:
            kwargs["allow_null"] = True
        if create:
            kwargs["default"] = model_field.default if not model_field.null else None
        if isinstance(model_field, models.BooleanField):
            fields[name] = serializers.BooleanField(**kwargs)
        elif isinstance(model_field, models.FloatField):
            fields[name] = serializers.FloatField(**kwargs)
        else:
            fields[name] = serializers.IntegerField(**kwargs)
    return fields


# Bases holding the quality fields: DRF gathers a serializer's fields from its bases too.
QualityCreateFields = type("QualityCreateFields", (serializers.Serializer,), _quality_fields(create=True))
QualityUpdateFields = type("QualityUpdateFields", (serializers.Serializer,), _quality_fields(create=False))


class CampaignSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = (
            "id",
            "name",
            "slug",
            "kind",
            "preset",
            "label_schema",
            "guidelines",
            "guidelines_version",
            "overlap",
            "lease_seconds",
            "gold_rate",
            "label_limit",
            "daily_label_limit",
            "human_budget",
            "routing_policy",
            *QUALITY_FIELDS,
            "state",
            "created_at",
        )
        read_only_fields = fields


class CampaignCreateSerializer(QualityCreateFields):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=label_schema.KINDS)
    preset = serializers.ChoiceField(choices=sorted(label_schema.PRESETS), required=False)
    label_schema = serializers.JSONField(required=False)
    overlap = serializers.IntegerField(min_value=1, default=1)
    slug = serializers.SlugField(max_length=80, required=False)
    guidelines = serializers.CharField(required=False, allow_blank=True, default="")
    human_budget = serializers.FloatField(required=False, min_value=0, allow_null=True)
    lease_seconds = serializers.IntegerField(required=False, default=600)
    gold_rate = serializers.FloatField(required=False, default=0.0)
    label_limit = serializers.IntegerField(required=False, allow_null=True, default=None)
    daily_label_limit = serializers.IntegerField(required=False, allow_null=True, default=None)
    open = serializers.BooleanField(required=False, default=False, help_text="Open it at once (else a draft).")


class CampaignUpdateSerializer(QualityUpdateFields):
    """Settings an owner or admin may change; kind and schema only while the campaign has no labels."""

    name = serializers.CharField(max_length=200, required=False)
    guidelines = serializers.CharField(required=False, allow_blank=True)
    overlap = serializers.IntegerField(required=False)
    lease_seconds = serializers.IntegerField(required=False)
    gold_rate = serializers.FloatField(required=False)
    label_limit = serializers.IntegerField(required=False, allow_null=True)
    daily_label_limit = serializers.IntegerField(required=False, allow_null=True)
    kind = serializers.ChoiceField(choices=label_schema.KINDS, required=False)
    preset = serializers.ChoiceField(choices=sorted(label_schema.PRESETS), required=False)
    label_schema = serializers.JSONField(required=False)


class CampaignStateSerializer(serializers.Serializer):
    state = serializers.CharField(help_text="open, paused or closed (also: pause, close, reopen)")


class CampaignCopySerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    with_items = serializers.BooleanField(default=True)


class ItemSerializer(serializers.ModelSerializer):
    """For campaign admins only: it carries gold labels and model names."""

    id = serializers.CharField(source="external_id")

    class Meta:
        model = Item
        fields = (
            "id",
            "prompt",
            "response_a",
            "response_b",
            "model_a",
            "model_b",
            "response",
            "reference",
            "metadata",
            "gold_label",
            "route",
            "human_label_count",
            "created_at",
        )


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS, required=False)


class ItemImportUploadSerializer(ImportUploadSerializer):
    mapping = serializers.CharField(
        required=False, allow_blank=True, help_text='JSON: {"prompt": "question", "metadata": ["topic"]}.'
    )


class RowErrorSerializer(serializers.Serializer):
    """`annotate.services.imports.errors.RowError`: where in the file a problem is."""

    file = serializers.CharField(allow_null=True, allow_blank=True)
    where = serializers.CharField(allow_null=True, allow_blank=True, help_text="The line, row or record.")
    field = serializers.CharField(allow_null=True, allow_blank=True)
    message = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    """`ImportReport.as_dict`: what an import did (or, for a dry run, would do)."""

    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    conflicts = serializers.IntegerField()
    conflict_rows = serializers.ListField(child=serializers.DictField(), help_text="The first conflicting rows.")
    dry_run = serializers.BooleanField(required=False)
    valid = serializers.BooleanField(required=False)
    errors = RowErrorSerializer(many=True, required=False)


class JobSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = (
            "id",
            "kind",
            "campaign",
            "state",
            "progress_done",
            "progress_total",
            "progress_fraction",
            "error",
            "result",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        )
        read_only_fields = fields


class JobAcceptedSerializer(serializers.Serializer):
    """202 of an import run as a job (`?async=1`): poll the job."""

    job = JobSerializer()


class LabelSerializer(serializers.ModelSerializer):
    """A stored label as its campaign's admins read it: in the item's own order (a negative pairwise value
    favours `response_a`), with who gave it — an annotator's username or a judge's name."""

    item = serializers.CharField(source="item.external_id")
    annotator = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    judge = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = Annotation
        fields = (
            "id", "item", "source", "annotator", "judge", "label", "justification", "rater_confidence", "seconds",
            "confidence", "revision", "created_at", "updated_at",
        )  # fmt: skip
        read_only_fields = fields
