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

    def __str__(self) -> str:
        return self.name
