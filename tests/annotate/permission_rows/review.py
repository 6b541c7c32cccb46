"""Permission rows of the review queue (annotate/views/review.py, annotate/api/review.py).

The review need is not on the view/manage/own ladder: reviewers, admins and owners have it, viewers do not.
The table has no reviewer caller (tests/annotate/test_review.py covers them), and for its callers "review"
answers as "manage" does — viewer 403, admin and owner the row's status — so the rows say "manage".
"""

from __future__ import annotations

from annotate.models import Item
from tests.annotate.permission_rows import Row, World


def _contested(w: World) -> int:
    Item.objects.filter(pk=w.item.pk).update(review_state=Item.ReviewState.CONTESTED)
    return w.item.pk


PAGE_ROWS = {
    "campaign-review": [Row("get", "manage", (200,))],
    "campaign-review-list": [Row("get", "manage", (200,), data=lambda w: {"state": "all"})],
    "campaign-review-item": [Row("get", "manage", (200,), args=lambda w: [_contested(w)])],
    "campaign-review-adjudicate": [
        Row(
            "post",
            "manage",
            (302,),
            args=lambda w: [_contested(w)],
            data=lambda w: {"label.overall": "1", "reason": "B answers the question."},
        )
    ],
}

API_ROWS = {
    "api-review": [Row("get", "manage", (200,))],
    "api-review-item": [
        Row("get", "manage", (200,), args=lambda w: [_contested(w)]),
        Row(
            "post",
            "manage",
            (201,),
            args=lambda w: [_contested(w)],
            data=lambda w: {"label": {"overall": 1}, "reason": "B answers the question."},
        ),
    ],
}
