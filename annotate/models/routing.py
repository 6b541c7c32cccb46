"""RoutingDecision: every decision about who labels an item is kept, so routing is auditable."""

from django.conf import settings
from django.db import models


class RoutingDecision(models.Model):
    class Destination(models.TextChoices):
        HUMAN = "human"
        LLM = "llm"
        BOTH = "both"

    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="routing_decisions")
    item = models.ForeignKey("annotate.Item", on_delete=models.CASCADE, related_name="routing_decisions")
    destination = models.CharField(max_length=5, choices=Destination.choices)
    policy = models.CharField(max_length=40)
    score = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["item", "-created_at"], name="routing_item_time_idx")]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.destination} ({self.policy})"
