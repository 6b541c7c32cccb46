"""What the database no longer enforces for bulk-written rows, kept by the ORM.

Items and routing decisions carry no foreign-key constraint (a trigger per inserted row at commit:
half a second of a 50,000-row import). The ORM's cascade deletes a campaign's items and their
decisions; what it cannot see is an import that committed between the moment the cascade listed
the campaign's items and the moment it deleted the campaign row (which waits for the import's lock
on that row). Those rows are removed here, in the deleting transaction, once the campaign row is gone.
"""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from annotate.models import Campaign, Item, RoutingDecision


@receiver(post_delete, sender=Campaign, dispatch_uid="annotate.campaign_leftovers")
def campaign_leftovers(sender, instance: Campaign, **kwargs) -> None:
    # Usually nothing: one probe of the (campaign, external_id) index and of (campaign, -created_at, -id).
    Item.objects.filter(campaign_id=instance.pk).delete()
    RoutingDecision.objects.filter(campaign_id=instance.pk).delete()
