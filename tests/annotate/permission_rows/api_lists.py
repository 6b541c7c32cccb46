"""Permission rows of the API's campaign lists added with v1 (annotate/api/views.py `LabelList`,
routing/api_views/routing.py `CampaignDecisions`): viewers and up read them."""

from __future__ import annotations

from tests.annotate.permission_rows import Row

API_ROWS: dict[str, list[Row]] = {
    "api-labels": [Row("get", "view", (200,))],
    "api-decisions": [Row("get", "view", (200,))],
}
