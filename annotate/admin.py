"""Django admin for every model: the admin's back office until the dedicated pages cover it."""

from django.contrib import admin

from annotate.models import (
    Annotation,
    AnnotationRevision,
    Assignment,
    Campaign,
    Item,
    Job,
    Judge,
    RoutingDecision,
)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "preset", "state", "overlap", "routing_policy", "created_at")
    list_filter = ("kind", "state", "routing_policy")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("judges",)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "campaign", "route", "human_label_count", "model_a", "model_b", "created_at")
    list_filter = ("campaign", "route")
    search_fields = ("external_id",)
    list_select_related = ("campaign",)
    raw_id_fields = ("campaign",)
    readonly_fields = ("content_hash", "created_at")


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "item",
        "source",
        "annotator",
        "judge",
        "label",
        "parse_failed",
        "position_swapped",
        "created_at",
    )
    list_filter = ("source", "parse_failed", "imported", "campaign")
    list_select_related = ("item", "annotator", "judge")
    raw_id_fields = ("item", "campaign", "annotator", "judge", "assignment")
    search_fields = ("item__external_id", "annotator__username", "judge__name")


@admin.register(AnnotationRevision)
class AnnotationRevisionAdmin(admin.ModelAdmin):
    list_display = ("annotation", "revision", "label", "replaced_at")
    raw_id_fields = ("annotation",)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "item", "annotator", "state", "position_swapped", "leased_at", "expires_at")
    list_filter = ("state", "campaign")
    list_select_related = ("item", "annotator")
    raw_id_fields = ("item", "campaign", "annotator")


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "model",
        "base_url",
        "api_key_env",
        "concurrency",
        "requests_per_minute",
        "imported",
        "active",
    )
    list_filter = ("imported", "active")
    search_fields = ("name", "model")


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(admin.ModelAdmin):
    list_display = ("item", "destination", "policy", "score", "created_at", "overridden_by")
    list_filter = ("destination", "policy", "campaign")
    raw_id_fields = ("item", "campaign", "overridden_by")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "campaign",
        "state",
        "progress_done",
        "progress_total",
        "attempts",
        "created_at",
        "finished_at",
    )
    list_filter = ("kind", "state")
    readonly_fields = ("created_at", "queued_at", "started_at", "heartbeat_at", "finished_at")
