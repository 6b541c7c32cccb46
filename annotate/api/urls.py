"""API routes, mounted twice by annotate/urls.py: at /api/v1/ (URL names `v1:<name>`, the published
schema) and at /api/ (the same views under the unversioned names, kept as aliases of v1)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import annotating, exports, index, stats, views

urlpatterns = [
    # -- the annotator's round trip first: Django tries the patterns in order on every request --
    path("campaigns/<str:ref>/next/", annotating.NextView.as_view(), name="api-next"),
    path("campaigns/<str:ref>/my-labels/", annotating.MyLabelsView.as_view(), name="api-my-labels"),
    path("assignments/<int:pk>/submit/", annotating.SubmitView.as_view(), name="api-submit"),
    path("assignments/<int:pk>/skip/", annotating.SkipView.as_view(), name="api-skip"),
    path("assignments/<int:pk>/flag/", annotating.FlagView.as_view(), name="api-flag"),
    path("assignments/<int:pk>/heartbeat/", annotating.HeartbeatView.as_view(), name="api-heartbeat"),
    path("", index.ApiIndex.as_view(), name="api-index"),
    # -- auth: the token endpoint, per-user API tokens (annotate/api/tokens.py) --
    path("", ("annotate.api.tokens", None, None)),  # = include(): api-token, api-tokens, ...
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("campaigns/", views.CampaignListCreate.as_view(), name="api-campaigns"),
    path("campaigns/<str:ref>/", views.CampaignDetail.as_view(), name="api-campaign"),
    path("campaigns/<str:ref>/items/", views.ItemList.as_view(), name="api-items"),
    path("campaigns/<str:ref>/labels/", views.LabelList.as_view(), name="api-labels"),
    path("campaigns/<str:ref>/items/import/", views.ItemImport.as_view(), name="api-items-import"),
    path(
        "campaigns/<str:ref>/annotations/import/",
        views.AnnotationImport.as_view(),
        name="api-annotations-import",
    ),
    path("annotations/<int:pk>/", annotating.MyLabelView.as_view(), name="api-my-label"),
    path("campaigns/<str:ref>/stats/", stats.CampaignStats.as_view(), name="api-stats"),
    path("campaigns/<str:ref>/stats/history/", stats.CampaignStatsHistory.as_view(), name="api-stats-history"),
    path("campaigns/<str:ref>/exports/", exports.CampaignExports.as_view(), name="api-exports"),
    path("exports/<int:pk>/", exports.ExportDetail.as_view(), name="api-export"),
    path("exports/<int:pk>/files/<str:name>", exports.ExportFile.as_view(), name="api-export-file"),
    path("jobs/", views.JobList.as_view(), name="api-jobs"),
    path("jobs/<int:pk>/", views.JobDetail.as_view(), name="api-job"),
    path("jobs/<int:pk>/cancel/", views.JobCancel.as_view(), name="api-job-cancel"),
    # -- judges, judge runs, routing: routing's own API views (routing/api_views/) --
    path("", ("routing.api_views.urls", None, None)),  # = include(): api-judges, api-routing, api-item-routing, ...
    # -- people: pools, members, invitations --
    path("", ("annotate.api.people", None, None)),  # = include(): api-members, api-annotators, api-pools, ...
    # -- queue: stranded items --
    path("campaigns/<str:ref>/stranded/", ("annotate.api.queue", None, None)),  # = include(): api-stranded
    # -- quality control --
    path("campaigns/<str:ref>/review/", ("annotate.api.review", None, None)),  # = include(): api-review, ...
    path("campaigns/<str:ref>/flags/", ("annotate.api.flags", None, None)),  # = include(): api-flags, ...
    path("campaigns/<str:ref>/standings/", ("annotate.api.standings", None, None)),  # = include(): api-standings
    # -- campaign lifecycle --
    path("campaigns/<str:ref>/state/", views.CampaignStateView.as_view(), name="api-campaign-state"),
    path("campaigns/<str:ref>/copy/", views.CampaignCopyView.as_view(), name="api-campaign-copy"),
]
