"""Permission rows for annotators' standings: the campaign home's actions and the API."""

from __future__ import annotations

from tests.annotate.permission_rows import Row

PAGE_ROWS = {
    "campaign-standing-act": [
        Row("post", "manage", (302,), args=lambda w: [w.users["annotator"].pk], data=lambda w: {"action": "pause"})
    ],
}

API_ROWS = {
    "api-standings": [
        Row("get", "view", (200,)),
        Row("post", "manage", (200,), data=lambda w: {"annotator": w.users["annotator"].pk, "action": "exclude"}),
    ],
}
