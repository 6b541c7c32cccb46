"""Routing tables: every decision about who labels an item (kept, so routing is auditable), and the per-item
features routing caches (HyPER tags, embedding similarity)."""

from django.conf import settings
from django.db import models


class RoutingDecision(models.Model):
    class Destination(models.TextChoices):
        HUMAN = "human"
        LLM = "llm"
        BOTH = "both"

    # A decision is written for every imported item, so each constraint and index here is paid
    # 100,000 times per large import: no foreign-key triggers (decisions are written by set-based
    # statements from items in the same transaction, and removed with them by the ORM's cascade and
    # `annotate.models.cascade`); the campaign is served by (campaign, -created_at, -id) and the item by
    # (item, -created_at) below.
    campaign = models.ForeignKey(
        "annotate.Campaign",
        on_delete=models.CASCADE,
        related_name="routing_decisions",
        db_constraint=False,
        db_index=False,
    )
    item = models.ForeignKey(
        "annotate.Item", on_delete=models.CASCADE, related_name="routing_decisions", db_index=False, db_constraint=False
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
    # Why, per item: the features that pushed the decision, largest first — for the learned policy the item's
    # signed contributions to the log-odds ({"feature", "value", "contribution"}), for judge uncertainty the
    # signals that fired ({"signal", "weight"}). None where the policy reads no feature (static, random).
    features = models.JSONField(null=True, blank=True)
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


class ItemTags(models.Model):
    """HyPER-style tags of an item's prompt (`routing.tagger`), cached per item and tagger prompt version.

    `tags` holds the parsed answers (subject of expertise, expertise level, open-endedness, safety concern,
    complexity of intents, format constraints); None when the answer did not parse (`error` says why), so a
    run that resumes asks again only for what is missing or failed."""

    item = models.ForeignKey("annotate.Item", on_delete=models.CASCADE, related_name="prompt_tags")
    campaign = models.ForeignKey(
        "annotate.Campaign", on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    prompt_version = models.CharField(max_length=64)
    tagger = models.ForeignKey("annotate.Judge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tags = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "prompt_version"], name="item_tags_once_per_version"),
        ]
        indexes = [models.Index(fields=["campaign", "prompt_version"], name="item_tags_campaign_idx")]

    def __str__(self) -> str:
        return f"tags of {self.item_id} ({self.prompt_version})"


class ItemEmbedding(models.Model):
    """An item's embedding feature (`routing.embeddings`), computed once per item and embedding model: the
    cosine similarity of its two texts (pairwise: the responses; rubric: response and reference)."""

    item = models.ForeignKey("annotate.Item", on_delete=models.CASCADE, related_name="embeddings")
    model = models.CharField(max_length=200)
    similarity = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "model"], name="item_embedding_once_per_model")]

    def __str__(self) -> str:
        return f"embedding of {self.item_id} ({self.model})"
