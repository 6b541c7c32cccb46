"""Judge: a named LLM judge behind an OpenAI-compatible chat-completions endpoint."""

from django.db import models


class Judge(models.Model):
    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(blank=True, help_text="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    model = models.CharField(max_length=200, blank=True)
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="Name of the environment variable holding the API key (never the key)."
    )
    sampling = models.JSONField(default=dict, blank=True, help_text="temperature, max_tokens, top_p, seed, ...")
    prompt_template = models.CharField(
        max_length=100, blank=True, help_text="Built-in template name, or empty for the default."
    )
    prompt_override = models.TextField(blank=True, help_text="A custom template text, versioned by its hash.")
    concurrency = models.PositiveIntegerField(default=4)
    requests_per_minute = models.PositiveIntegerField(default=60)
    price_in_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    price_out_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    capabilities = models.JSONField(default=dict, blank=True, help_text="Probed once: logprobs, json_schema.")
    imported = models.BooleanField(default=False, help_text="Created by an import of existing judge labels.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        # Judges hold endpoints and key names and are shared by campaigns: creating or changing one
        # needs this permission (granted per account or group), not only a staff flag.
        permissions = [("manage_judges", "Can create, change and probe LLM judges")]

    def __str__(self) -> str:
        return self.name


class JudgeVerdict(models.Model):
    """The judges' combined label for one item: every order, sample and judge of the campaign's runs.

    Recomputed after each judge run from the stored judgments (which stay the record); routing reads
    it to decide where humans are needed. `label` is in the item's own A/B order, None when no
    judgment gave a usable verdict.
    """

    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="judge_verdicts")
    item = models.OneToOneField("annotate.Item", on_delete=models.CASCADE, related_name="judge_verdict")
    label = models.JSONField(null=True, blank=True)
    confidence = models.FloatField(
        null=True, blank=True, help_text="Agreement across samples and judges × position consistency × logprobs."
    )
    position_consistency = models.FloatField(
        null=True, blank=True, help_text="Pairwise: share of (judge, sample) pairs whose two orders agree."
    )
    logprob_confidence = models.FloatField(null=True, blank=True)
    n_judgments = models.PositiveIntegerField(default=0)
    n_parse_failures = models.PositiveIntegerField(default=0)
    judges = models.JSONField(default=list, blank=True, help_text="[{judge, prompt_version}] that contributed.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item"]
        indexes = [models.Index(fields=["campaign", "confidence"], name="judge_verdict_confidence_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True) | models.Q(confidence__gte=0, confidence__lte=1),
                name="judge_verdict_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return f"judges on item {self.item_id}: {self.label}"
