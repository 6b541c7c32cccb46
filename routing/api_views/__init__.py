"""Routing's REST API: judges and judge runs (`judges`), a campaign's routing and each item's decisions
(`routing`), the HyPER tag cache (`tagger`), mounted under /api/ by annotate/api/urls.py through
`include("routing.api_views.urls")`."""
