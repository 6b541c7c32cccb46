"""Per-item counters (`assigned_count`, `human_label_count`) moved in bulk, in the caller's transaction."""

from collections import Counter
from collections.abc import Iterable

from django.db.models import F

from annotate.models import Item


def item_counts_add(*, item_ids: Iterable[int], fields: tuple[str, ...], sign: int = 1) -> None:
    """Add (or with sign=-1 subtract) one per occurrence of an item id to each of `fields`.

    One UPDATE per distinct delta rather than one per item, so a batch of thousands of labels
    costs a handful of statements.
    """
    by_delta: dict[int, list[int]] = {}
    for item_id, n in Counter(item_ids).items():
        by_delta.setdefault(n, []).append(item_id)
    for n, ids in by_delta.items():
        Item.objects.filter(id__in=ids).update(**{field: F(field) + sign * n for field in fields})
