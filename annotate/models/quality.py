"""Quality control records: an annotator's standing in a campaign, reviewers' final labels, annotators' flags."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class AnnotatorStanding(models.Model):
    """Where one annotator stands in one campaign: qualification, attention checks, pauses, exclusion.

    Created when the annotator first asks for work in a campaign with quality controls; counters move in
    the same transaction as the label that changes them (annotate/services/quality/).
    """

    class Qualification(models.TextChoices):
        NOT_REQUIRED = "not_required"
        IN_PROGRESS = "in_progress"
        PASSED = "passed"
        FAILED = "failed"

    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="standings")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="standings")
    qualification = models.CharField(max_length=12, choices=Qualification.choices, default=Qualification.NOT_REQUIRED)
    qualification_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The guidelines version the qualification was taken under."
    )
    qualification_answered = models.PositiveSmallIntegerField(default=0)
    qualification_correct = models.PositiveSmallIntegerField(default=0)
    attention_checks = models.PositiveIntegerField(default=0)
    attention_failures = models.PositiveIntegerField(default=0)
    too_fast = models.PositiveIntegerField(default=0, help_text="Submits faster than the campaign's minimum time.")
    warned_at = models.DateTimeField(null=True, blank=True, help_text="Told that a check failed.")
    warning = models.CharField(max_length=300, blank=True, help_text="The warning not yet seen by the annotator.")
    paused_at = models.DateTimeField(null=True, blank=True, help_text="Stopped from labelling until an admin resumes.")
    pause_reason = models.CharField(max_length=300, blank=True)
    excluded = models.BooleanField(
        default=False, help_text="An admin excluded this annotator's labels from statistics and exports."
    )
    note = models.CharField(max_length=500, blank=True, help_text="The admin's note (why paused, excluded, ...).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "annotator"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator"], name="standing_unique"),
        ]
        indexes = [
            models.Index(fields=["campaign"], condition=Q(excluded=True), name="standing_excluded_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} in {self.campaign_id}: {self.qualification}"


class Adjudication(models.Model):
    """A reviewer's final label on a contested item, with the reason: exports use it as the final label."""

    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="adjudications")
    item = models.OneToOneField("annotate.Item", on_delete=models.CASCADE, related_name="adjudication")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications")
    label = models.JSONField(help_text="{aspect or criterion: int}, in the item's own A/B order.")
    reason = models.TextField()
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="adjudication_reason_required"),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} adjudicated by {self.reviewer_id}"


class ItemFlag(models.Model):
    """An annotator's comment or flag on an item ("broken prompt", "both are bad", ...), for admins."""

    class Kind(models.TextChoices):
        BROKEN_PROMPT = "broken_prompt", "broken prompt"
        BOTH_BAD = "both_bad", "both are bad"
        NEEDS_EXPERT = "needs_expert", "needs an expert"
        COMMENT = "comment", "comment"

    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="flags")
    item = models.ForeignKey("annotate.Item", on_delete=models.CASCADE, related_name="flags")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="item_flags")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Flagging the same item the same way twice (a double click, a retry) is one flag.
            models.UniqueConstraint(fields=["item", "annotator", "kind"], name="item_flag_unique"),
        ]
        indexes = [
            models.Index(fields=["campaign", "kind", "created_at"], name="item_flag_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.item_id} by {self.annotator_id}"
