"""Annotation: one label from one source (a human annotator or an LLM judge), with its provenance."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Annotation(models.Model):
    class Source(models.TextChoices):
        HUMAN = "human"
        JUDGE = "judge"

    item = models.ForeignKey("annotate.Item", on_delete=models.CASCADE, related_name="annotations")
    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="annotations")
    source = models.CharField(max_length=5, choices=Source.choices)
    # Indexed through (campaign, annotator) and the unique (item, annotator); see Assignment.annotator.
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="annotations",
        db_index=False,
    )
    judge = models.ForeignKey(
        "annotate.Judge", null=True, blank=True, on_delete=models.PROTECT, related_name="annotations"
    )
    assignment = models.OneToOneField(
        "annotate.Assignment", null=True, blank=True, on_delete=models.SET_NULL, related_name="annotation"
    )
    label = models.JSONField(
        null=True, blank=True, help_text="{aspect or criterion: int}, in the item's own A/B order."
    )
    justification = models.TextField(blank=True)
    rater_confidence = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="A human's own 1-5 confidence."
    )
    seconds = models.FloatField(null=True, blank=True, help_text="Active time on task.")
    position_swapped = models.BooleanField(
        null=True,
        blank=True,
        help_text="Pairwise: response B was shown first (left). Humans: null for rubric; judges: never null.",
    )
    # Judge provenance.
    raw_output = models.TextField(blank=True)
    parse_failed = models.BooleanField(default=False)
    confidence = models.FloatField(null=True, blank=True, help_text="A judge's probability for its verdict (0-1).")
    prompt_version = models.CharField(max_length=64, blank=True)
    sample_index = models.PositiveSmallIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    imported = models.BooleanField(default=False)
    # Quality control of human labels.
    too_fast = models.BooleanField(
        default=False, db_default=False, help_text="Submitted in less than the campaign's minimum time per item."
    )
    gold_correct = models.BooleanField(
        null=True, blank=True, help_text="On a gold item: whether the label matched the gold label."
    )
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator"], condition=Q(source="human"), name="annotation_one_human_label_per_item"
            ),
            models.UniqueConstraint(
                fields=["item", "judge", "prompt_version", "position_swapped", "sample_index"],
                condition=Q(source="judge"),
                name="annotation_one_judgment_per_key",
            ),
            models.CheckConstraint(
                condition=(Q(source="human", annotator__isnull=False, judge__isnull=True))
                | Q(source="judge", judge__isnull=False, annotator__isnull=True, position_swapped__isnull=False),
                name="annotation_source_matches_author",
            ),
            models.CheckConstraint(
                condition=Q(label__isnull=False) | Q(parse_failed=True), name="annotation_label_or_parse_failure"
            ),
            models.CheckConstraint(
                condition=Q(rater_confidence__isnull=True) | Q(rater_confidence__gte=1, rater_confidence__lte=5),
                name="annotation_rater_confidence_range",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="annotation_confidence_range",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "source"], name="annotation_campaign_source_idx"),
            models.Index(fields=["campaign", "created_at"], name="annotation_campaign_time_idx"),
            models.Index(fields=["campaign", "annotator"], name="annotation_campaign_annot_idx"),
        ]

    def __str__(self) -> str:
        who = self.annotator_id if self.source == self.Source.HUMAN else f"judge {self.judge_id}"
        return f"{self.item_id} by {who}"


class AnnotationRevision(models.Model):
    """The previous value of a label an annotator changed: changes are recorded, not added as labels."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    label = models.JSONField()
    justification = models.TextField(blank=True)
    rater_confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation", "revision"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "revision"], name="annotation_revision_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.annotation_id} revision {self.revision}"
