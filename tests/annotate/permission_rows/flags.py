"""Permission rows of the flags page and API (annotate/views/flags.py, annotate/api/flags.py)."""

from __future__ import annotations

from annotate.models import ItemFlag
from tests.annotate.permission_rows import Row, World


def _flag(w: World) -> int:
    """A flag the campaign's annotator raised on the world's item."""
    return ItemFlag.objects.create(
        campaign=w.campaign, item=w.item, annotator=w.users["annotator"], kind=ItemFlag.Kind.BOTH_BAD
    ).pk


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
}
