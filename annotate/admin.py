"""Django admin for every model: the admin's back office until the dedicated pages cover it."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
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


class JudgeAdminForm(forms.ModelForm):
    """The judge's fields checked by the same rules as the API and `create_judge`: a key variable from the
    allow-list, a URL the egress policy allows. An error is shown on its field and nothing is saved."""

    CHECKED = (
        "name", "base_url", "model", "api_key_env", "concurrency", "requests_per_minute", "price_in_per_1k",
        "price_out_per_1k", "sampling", "prompt_template", "prompt_override", "imported",
    )  # fmt: skip

    class Meta:
        model = Judge
        fields = (
            "name", "base_url", "model", "api_key_env", "sampling", "prompt_template", "prompt_override",
            "concurrency", "requests_per_minute", "price_in_per_1k", "price_out_per_1k", "imported", "active",
        )  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        fields = {f: cleaned[f] for f in self.CHECKED if f in cleaned}
        if self.errors or "name" not in fields:
            return cleaned
        try:
            routing_api.judge_validate(**fields)
        except ValueError as exc:
            field, _, detail = str(exc).partition(": ")
            if field in self.fields and detail:
                self.add_error(field, detail)
            else:
                raise forms.ValidationError(str(exc)) from None
        return cleaned


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    """Judges decide where the server sends requests and with which key: adding, changing, deleting and
    probing them needs the `annotate.manage_judges` permission on top of Django's model permissions."""

    form = JudgeAdminForm
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
        if "api_key_env" in form.base_fields:
            prefix = settings.TANDEM_JUDGE_KEY_PREFIX
            form.base_fields["api_key_env"].help_text = (
                f"The NAME of the environment variable holding the key, e.g. {prefix}OPENAI — never the key "
                f"itself. Allowed: names starting with {prefix} or listed in TANDEM_JUDGE_KEY_ENVS."
            )
        return form

    def has_manage_judges_permission(self, request) -> bool:
        return request.user.has_perm("annotate.manage_judges")

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and self.has_manage_judges_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self.has_manage_judges_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self.has_manage_judges_permission(request)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_manage_judges_permission(request):
            raise PermissionDenied("Creating judges needs the annotate.manage_judges permission.")
        return super().add_view(request, form_url, extra_context)

    @admin.action(description="Probe the endpoint (logprobs, JSON schema)", permissions=["manage_judges"])
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
