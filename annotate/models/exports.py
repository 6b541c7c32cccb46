"""DatasetExport: one export of a campaign's labels as files, with its options, checksums and card."""

from django.conf import settings
from django.db import models


class DatasetExport(models.Model):
    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="exports")
    job = models.OneToOneField("annotate.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="export")
    options = models.JSONField(help_text="ExportOptions.to_dict(): format, file type, source, filters, split.")
    directory = models.CharField(max_length=500, blank=True, help_text="Where the files are, under the export root.")
    files = models.JSONField(default=list, blank=True, help_text="[{split, name, rows, bytes, sha256}]")
    counts = models.JSONField(default=dict, blank=True)
    complete = models.BooleanField(default=False, help_text="True only once every file and the card are in place.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} of campaign {self.campaign_id}"
