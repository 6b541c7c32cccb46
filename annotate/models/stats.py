"""StatsSnapshot: a campaign's agreement statistics at one moment, kept so they can be drawn over time."""

from django.db import models


class StatsSnapshot(models.Model):
    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="stats_snapshots")
    computed_at = models.DateTimeField(db_index=True)
    n_items = models.PositiveIntegerField()
    n_human_labels = models.PositiveIntegerField()
    n_judge_labels = models.PositiveIntegerField()
    bootstrap = models.PositiveIntegerField(help_text="Resamples behind the intervals (0: none).")
    seconds = models.FloatField(help_text="How long the computation took.")
    payload = models.JSONField(help_text="The whole snapshot, as `compute_stats --json` prints it.")

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["campaign", "-computed_at"], name="stats_campaign_time_idx")]

    def __str__(self) -> str:
        return f"{self.campaign_id} stats at {self.computed_at:%Y-%m-%d %H:%M:%S}"
