"""Campaign: one labelling project with its task kind, label schema, overlap, budget and routing."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from annotate import schema as label_schema


class Campaign(models.Model):
    class Kind(models.TextChoices):
        PAIRWISE = "pairwise"
        RUBRIC = "rubric"
        BOTH = "both"

    class State(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        PAUSED = "paused"
        CLOSED = "closed"

    class RoutingPolicy(models.TextChoices):
        ALL_HUMAN = "all_human"
        ALL_LLM = "all_llm"
        RANDOM = "random"
        JUDGE_UNCERTAINTY = "judge_uncertainty"
        LEARNED = "learned"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    preset = models.CharField(max_length=40, blank=True, help_text="The preset the schema started from, if any.")
    label_schema = models.JSONField(help_text="See annotate/schema.py for the format.")
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    guidelines_version = models.PositiveIntegerField(default=1)
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Human labels wanted per human-routed item.")
    human_budget = models.FloatField(
        null=True,
        blank=True,
        help_text="Items routed to humans: a fraction (0 < x <= 1) of the items, or a count (> 1). Empty: no limit.",
    )
    routing_policy = models.CharField(max_length=20, choices=RoutingPolicy.choices, default=RoutingPolicy.ALL_HUMAN)
    routing_params = models.JSONField(default=dict, blank=True)
    calibration_fraction = models.FloatField(default=0.05)
    gold_rate = models.FloatField(default=0.0, help_text="Share of an annotator's items that are gold checks.")
    lease_seconds = models.PositiveIntegerField(default=600)
    judges = models.ManyToManyField("annotate.Judge", blank=True, related_name="campaigns")
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="annotator_campaigns",
        help_text="Annotators added one by one. With no annotators and no pools, every active account may label.",
    )
    pools = models.ManyToManyField(
        "annotate.AnnotatorPool",
        blank=True,
        related_name="campaigns",
        help_text="Annotator pools whose members may label this campaign.",
    )
    label_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most labels one annotator may give in this campaign. Empty: no limit."
    )
    daily_label_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most labels one annotator may give in this campaign per day (UTC)."
    )
    copied_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="copies",
        help_text="The campaign this one was copied from (a new version of its schema).",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(overlap__gte=1), name="campaign_overlap_positive"),
            models.CheckConstraint(
                condition=models.Q(human_budget__isnull=True) | models.Q(human_budget__gte=0),
                name="campaign_budget_nonnegative",
            ),
            models.CheckConstraint(
                condition=models.Q(calibration_fraction__gte=0, calibration_fraction__lte=1),
                name="campaign_calibration_fraction_range",
            ),
            models.CheckConstraint(
                condition=models.Q(gold_rate__gte=0, gold_rate__lte=1), name="campaign_gold_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            self.label_schema = label_schema.schema_validate(self.label_schema, self.kind)
        except label_schema.SchemaError as exc:
            raise ValidationError({"label_schema": str(exc)}) from exc

    @property
    def has_pairwise(self) -> bool:
        return self.kind in (self.Kind.PAIRWISE, self.Kind.BOTH)

    @property
    def has_rubric(self) -> bool:
        return self.kind in (self.Kind.RUBRIC, self.Kind.BOTH)
