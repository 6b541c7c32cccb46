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
    # Quality control (annotate/services/quality/): who may label, what is checked, when more labels are asked.
    qualification_items = models.PositiveSmallIntegerField(
        default=0,
        help_text="Gold items a new annotator labels before the real queue (a training phase). 0: no gate.",
    )
    qualification_threshold = models.FloatField(
        default=0.8, help_text="Share of the qualification items an annotator must get right to enter the queue."
    )
    qualification_feedback = models.BooleanField(
        default=True, help_text="After each qualification item, show the right answer and its explanation."
    )
    requalify_on_guidelines = models.BooleanField(
        default=False, help_text="A new guidelines version asks every annotator to qualify again."
    )
    attention_max_failures = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Failed attention checks (gold items in the queue) after which an annotator is paused; "
        "the first failure warns. Empty: never pause.",
    )
    min_seconds = models.FloatField(
        null=True, blank=True, help_text="Least active time per item; faster submits are flagged as too fast."
    )
    overlap_max = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Dynamic overlap: ask for more human labels on a disputed item, up to this many. Empty: off.",
    )
    agreement_threshold = models.FloatField(
        default=0.6,
        help_text="Dynamic overlap: an item whose labels agree less than this (share with the majority "
        "direction; rubric: 1 - mean distance) is disputed.",
    )
    overlap_on_judge_disagreement = models.BooleanField(
        default=True, help_text="Dynamic overlap: the human majority differing from the judges' verdict is a dispute."
    )
    judge_gold_threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="Gold accuracy a judge needs before items may be routed to it alone. Empty: no requirement.",
    )
    reviewers_see_identities = models.BooleanField(
        default=False, help_text="Reviewers see who gave each label (otherwise Annotator 1, 2, ...)."
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
            models.CheckConstraint(
                condition=models.Q(qualification_threshold__gte=0, qualification_threshold__lte=1),
                name="campaign_qualification_threshold_range",
            ),
            models.CheckConstraint(
                condition=models.Q(agreement_threshold__gte=0, agreement_threshold__lte=1),
                name="campaign_agreement_threshold_range",
            ),
            models.CheckConstraint(
                condition=models.Q(overlap_max__isnull=True) | models.Q(overlap_max__gte=models.F("overlap")),
                name="campaign_overlap_max_at_least_overlap",
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
