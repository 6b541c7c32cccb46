"""RoutingDecision: every decision about who labels an item is kept, so routing is auditable."""

from django.conf import settings
from django.db import models


class RoutingDecision(models.Model):
    class Destination(models.TextChoices):
        HUMAN = "human"
        LLM = "llm"
        BOTH = "both"

    # A decision is written for every imported item, so each constraint and index here is paid
    # 100,000 times per large import: the campaign (a copy of the item's) is checked through the
    # item, and the item is indexed by (item, -created_at) below.
    campaign = models.ForeignKey(
        "annotate.Campaign", on_delete=models.CASCADE, related_name="routing_decisions", db_constraint=False
    )
    item = models.ForeignKey(
        "annotate.Item", on_delete=models.CASCADE, related_name="routing_decisions", db_index=False
    )
    destination = models.CharField(max_length=5, choices=Destination.choices)
    policy = models.CharField(max_length=40)
    score = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,  # an audit note, kept by the ORM; not worth a trigger per imported item
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["item", "-created_at"], name="routing_item_time_idx"),
            # The routing page's recent decisions, without sorting a campaign's whole history.
            models.Index(fields=["campaign", "-created_at", "-id"], name="routing_campaign_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.destination} ({self.policy})"
