"""API serializers; input and output are separate where they differ."""

from django.db import models
from rest_framework import serializers

from annotate import schema as label_schema
from annotate.models import Campaign, Item, Job
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


class JobSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(slug_field="slug", read_only=True)

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
