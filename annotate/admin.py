"""Django admin for every model: the admin's back office until the dedicated pages cover it."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from annotate.models import (
    Annotation,
    AnnotationRevision,
    Assignment,
    Campaign,
    Item,
    Job,
    Judge,
    JudgeVerdict,
    RoutingDecision,
)
from routing import api as routing_api


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "preset", "state", "overlap", "routing_policy", "created_at")
    list_filter = ("kind", "state", "routing_policy")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("judges",)

    ROUTING_FIELDS = {"routing_policy", "human_budget", "calibration_fraction", "routing_params", "judges"}

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # judges are saved here, after the campaign
        if change and self.ROUTING_FIELDS & set(form.changed_data):
            routing_api.routing_changed(campaign=form.instance)  # a new budget or policy routes again


class RoutingDecisionInline(admin.TabularInline):
    """The item's routing decisions, newest first; overrides go through the routing page (they are recorded)."""

    model = RoutingDecision
    fields = ("created_at", "destination", "policy", "score", "reason", "features", "overridden_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "campaign", "route", "human_label_count", "model_a", "model_b", "created_at")
    list_filter = ("campaign", "route")
    search_fields = ("external_id",)
    list_select_related = ("campaign",)
    raw_id_fields = ("campaign",)
    readonly_fields = ("route", "routing_link", "content_hash", "created_at")
    inlines = [RoutingDecisionInline]

    @admin.display(description="Routing")
    def routing_link(self, item: Item) -> str:
        if not item.pk:
            return "-"
        url = reverse("campaign-routing-item", args=[item.campaign.slug, item.pk])
        return format_html('<a href="{}">decisions and override</a>', url)


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
    readonly_fields = ("capabilities",)
    actions = ["probe"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.base_fields[
            "api_key_env"
        ].help_text = (
            "The NAME of the environment variable holding the key, e.g. OPENAI_API_KEY — never the key itself."
        )
        return form

    def save_model(self, request, obj, form, change):
        fields = {
            f: getattr(obj, f)
            for f in (
                "name", "base_url", "model", "api_key_env", "concurrency", "requests_per_minute", "price_in_per_1k",
                "price_out_per_1k", "sampling", "prompt_template", "prompt_override",
            )
        }  # fmt: skip
        if not obj.imported:
            try:
                routing_api.judge_validate(**fields)
            except ValueError as exc:
                from django.contrib import messages

                messages.error(request, f"Saved, but this judge cannot run: {exc}")
        super().save_model(request, obj, form, change)

    @admin.action(description="Probe the endpoint (logprobs, JSON schema)")
    def probe(self, request, queryset):
        for judge in queryset.filter(imported=False):
            capabilities = routing_api.judge_probe(judge=judge)
            self.message_user(request, f"{judge.name}: {capabilities}")


@admin.register(JudgeVerdict)
class JudgeVerdictAdmin(admin.ModelAdmin):
    list_display = ("item", "campaign", "label", "confidence", "position_consistency", "n_judgments", "updated_at")
    list_filter = ("campaign",)
    raw_id_fields = ("item",)
    readonly_fields = [f.name for f in JudgeVerdict._meta.fields]


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
