"""Permission rows of the flags page and API (annotate/views/flags.py, annotate/api/flags.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from annotate.models import Assignment, ItemFlag
from tests.annotate.permission_rows import Row, World


def _flag(w: World) -> int:
    """A flag the campaign's annotator raised on the world's item."""
    return ItemFlag.objects.create(
        campaign=w.campaign, item=w.item, annotator=w.users["annotator"], kind=ItemFlag.Kind.BOTH_BAD
    ).pk


def _lease(w: World) -> dict:
    """The annotator's lease of the world's item: what they flag the item by."""
    lease = Assignment.objects.create(
        campaign=w.campaign,
        item=w.item,
        annotator=w.users["annotator"],
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    return {"assignment": lease.pk, "kind": "broken_prompt", "comment": "The prompt is cut off."}


PAGE_ROWS: dict[str, list[Row]] = {
    "campaign-flags": [Row("get", "view", (200,))],
    "campaign-flags-resolve": [
        Row("post", "manage", (302,), args=lambda w: [_flag(w)], data=lambda w: {"resolution": "Fixed the prompt."})
    ],
    "campaign-flags-download": [Row("get", "view", (200,), args=lambda w: ["csv"])],
}

API_ROWS: dict[str, list[Row]] = {
    "api-flags": [Row("get", "view", (200,))],
    "api-flag-resolve": [
        Row("post", "manage", (200,), args=lambda w: [_flag(w)], data=lambda w: {"resolution": "Fixed the prompt."})
    ],
    # Annotators flag items they were given; the campaign's admins are not its annotators here (its pool is
    # another group), so for them, as for strangers, it is no campaign open to them.
    "api-flag-add": [Row("post", "view", (404,), data=_lease, overrides={"annotator": 201})],
}
