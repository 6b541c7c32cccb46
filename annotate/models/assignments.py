"""Assignment: a lease of an item to an annotator, with an expiry and the A/B order shown."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Assignment(models.Model):
    class State(models.TextChoices):
        LEASED = "leased"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"
        EXPIRED = "expired"

    class Purpose(models.TextChoices):
        WORK = "work"  # an item of the real queue
        ATTENTION = "attention"  # a gold item mixed into the queue (an attention check)
        QUALIFICATION = "qualification"  # a gold item of the qualification phase

    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey("annotate.Item", on_delete=models.CASCADE, related_name="assignments")
    # Indexed through (campaign, annotator, state) and the unique (item, annotator) instead: a lone
    # annotator index tempted the planner into scanning all of a person's leases per queue candidate.
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.LEASED)
    purpose = models.CharField(max_length=14, choices=Purpose.choices, default=Purpose.WORK, db_default=Purpose.WORK)
    position_swapped = models.BooleanField(
        null=True, blank=True, help_text="Pairwise: response B is shown on the left."
    )
    leased_at = models.DateTimeField(default=timezone.now)  # the engine passes its `now` (a simulated clock too)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(default=0, help_text="Client-reported active time, capped by the lease.")
    skip_reason = models.CharField(max_length=500, blank=True)
    returned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="An admin gave the item back to this annotator (it was stranded): it may be leased to them again.",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            # Never the same item twice to one person, whatever happened to the first lease, unless an
            # admin gave a stranded item back to them (the old row keeps its history).
            models.UniqueConstraint(
                fields=["item", "annotator"],
                condition=Q(returned_at__isnull=True),
                name="assignment_item_annotator_unique",
            ),
            models.CheckConstraint(
                condition=Q(state="skipped") | Q(skip_reason=""), name="assignment_skip_reason_only_when_skipped"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "annotator", "state"], name="assignment_annotator_idx"),
            models.Index(fields=["state", "expires_at"], name="assignment_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.annotator_id} ({self.state})"
