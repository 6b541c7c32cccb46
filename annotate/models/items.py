"""Item: one instance to label — a prompt with two responses (pairwise) or one (rubric)."""

from django.db import models


class Item(models.Model):
    class Route(models.TextChoices):
        UNROUTED = "unrouted"
        HUMAN = "human"
        LLM = "llm"
        BOTH = "both"

    class ReviewState(models.TextChoices):
        NONE = "", "settled"
        CONTESTED = "contested"  # still disputed at the campaign's overlap_max: a reviewer decides
        ADJUDICATED = "adjudicated"  # a reviewer recorded the final label

    # No index of its own: the unique (campaign, external_id) index serves campaign lookups, and
    # every index costs time on a 100,000-row import. No database constraint either: PostgreSQL
    # checks a foreign key with one trigger per inserted row at commit (0.27 s of a 50,000-row
    # import's 1.2 s of database time). Every import locks the campaign row first, the ORM's
    # cascade deletes a campaign's items, and `annotate.models.cascade` removes the items of an
    # import that committed while its campaign was being deleted.
    campaign = models.ForeignKey(
        "annotate.Campaign", on_delete=models.CASCADE, related_name="items", db_index=False, db_constraint=False
    )
    # On PostgreSQL the column is collated "C" (migration 0017): the unique index compares bytes, not
    # locale rules (a quarter of a bulk COPY's time), and ids sort the same way as on SQLite (BINARY).
    # A migration that alters this column must keep COLLATE "C".
    external_id = models.CharField(max_length=200, help_text="The id from the import; unique per campaign.")
    prompt = models.JSONField(help_text="A string, or a list of chat messages {role, content}.")
    response_a = models.TextField(blank=True)
    response_b = models.TextField(blank=True)
    model_a = models.CharField(max_length=200, blank=True)
    model_b = models.CharField(max_length=200, blank=True)
    response = models.TextField(blank=True, help_text="The single response of a rubric item.")
    reference = models.TextField(blank=True, help_text="Optional reference answer.")
    metadata = models.JSONField(default=dict, blank=True)
    gold_label = models.JSONField(
        null=True, blank=True, help_text="Set on attention-check items: the label an annotator must give."
    )
    gold_explanation = models.TextField(
        blank=True, help_text="Why the gold label is right: shown after a qualification item when feedback is on."
    )
    route = models.CharField(max_length=10, choices=Route.choices, default=Route.UNROUTED)
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the imported content; detects conflicts.")
    human_label_count = models.PositiveIntegerField(default=0)
    assigned_count = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Human labels plus live leases: what counts against the overlap."
    )
    label_target = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Human labels wanted on this item when an admin lowered it below the campaign's overlap.",
    )
    extra_labels = models.PositiveSmallIntegerField(
        default=0,
        db_default=0,
        help_text="Human labels dynamic overlap added to the target because the labels disagreed.",
    )
    review_state = models.CharField(
        max_length=12, choices=ReviewState.choices, default=ReviewState.NONE, db_default=ReviewState.NONE, blank=True
    )
    queue_rank = models.BigIntegerField(
        default=0, db_default=0, help_text="A stable per-campaign shuffle: the queue's order among equals."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "external_id"], name="item_external_id_unique_per_campaign"),
        ]
        indexes = [
            # The human queue: fullest first (finish what others started), then the shuffled order.
            models.Index(
                fields=["campaign", "-assigned_count", "queue_rank"],
                condition=models.Q(route__in=["human", "both"], gold_label__isnull=True),
                name="item_human_queue_idx",
            ),
            models.Index(
                fields=["campaign", "queue_rank"],
                condition=models.Q(gold_label__isnull=False),
                name="item_gold_queue_idx",
            ),
            models.Index(fields=["campaign"], condition=models.Q(route="unrouted"), name="item_unrouted_idx"),
            models.Index(
                fields=["campaign", "review_state"], condition=~models.Q(review_state=""), name="item_review_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.external_id}"

    @property
    def is_gold(self) -> bool:
        return self.gold_label is not None

    @property
    def prompt_is_chat(self) -> bool:
        return isinstance(self.prompt, list)
