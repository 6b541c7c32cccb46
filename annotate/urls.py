"""Top-level URL routes."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from annotate.api.errors import api_not_found, api_server_error
from annotate.views import annotate as annotate_views
from annotate.views import campaigns as campaign_views
from annotate.views import exports as export_views
from annotate.views import stats as stats_views
from annotate.views.health import healthz
from annotate.views.home import home

urlpatterns = [
    # -- the API first (every annotator's next and submit is resolved here: fewer patterns tried): v1, its
    # docs (served from drf-spectacular-sidecar's files), the unversioned aliases --
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="v1:api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="v1:api-schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
    path("api/v1/", include(("annotate.api.urls", "v1"), namespace="v1")),  # v1:api-campaigns, ...
    path("api/", include("annotate.api.urls")),  # the aliases: api-campaigns, ...
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("c/<slug:slug>/annotate/", annotate_views.annotate_page, name="annotate"),
    path("c/<slug:slug>/annotate/item/", annotate_views.item_fragment, name="annotate-item"),
    path("c/<slug:slug>/annotate/<int:assignment_id>/submit/", annotate_views.submit, name="annotate-submit"),
    path("c/<slug:slug>/annotate/<int:assignment_id>/skip/", annotate_views.skip, name="annotate-skip"),
    path("c/<slug:slug>/annotate/<int:assignment_id>/flag/", annotate_views.flag, name="annotate-flag"),
    path("c/<slug:slug>/annotate/<int:assignment_id>/heartbeat/", annotate_views.heartbeat, name="annotate-heartbeat"),
    path("c/<slug:slug>/labels/", annotate_views.recent_labels, name="annotate-recent"),
    path("c/<slug:slug>/labels/<int:annotation_id>/", annotate_views.label_edit, name="annotate-label-edit"),
    path("c/<slug:slug>/exports/", export_views.exports_page, name="campaign-exports"),
    path("c/<slug:slug>/exports/list/", export_views.exports_fragment, name="campaign-exports-list"),
    path("c/<slug:slug>/exports/new/", export_views.export_create, name="campaign-exports-create"),
    path("c/<slug:slug>/exports/<int:export_id>/delete/", export_views.export_remove, name="campaign-exports-delete"),
    path("c/<slug:slug>/stats/", stats_views.stats_page, name="campaign-stats"),
    path("c/<slug:slug>/stats/recompute/", stats_views.stats_recompute, name="campaign-stats-recompute"),
    # -- judges and routing: routing's own pages (routing/urls.py; annotate imports no routing view) --
    path("c/<slug:slug>/", include("routing.urls")),  # campaign-judges(-*), campaign-routing(-*)
    # -- import wizard (annotate/views/imports.py) --
    path("c/<slug:slug>/import/", include("annotate.views.imports")),  # campaign-import, campaign-import-*
    # -- people: accounts, pools, invitations, roles (annotate/views/people.py) --
    path("", include("annotate.views.people")),  # people, campaign-people, invitation-accept, ...
    # -- campaign lifecycle and campaign home (annotate/views/campaigns.py) --
    path("campaigns/new/", campaign_views.campaign_new, name="campaign-new"),
    path("campaigns/preview/", campaign_views.campaign_preview, name="campaign-preview"),
    path("c/<slug:slug>/settings/", campaign_views.campaign_settings, name="campaign-settings"),
    path("c/<slug:slug>/state/", campaign_views.campaign_state, name="campaign-state"),
    path("c/<slug:slug>/copy/", campaign_views.campaign_copy_view, name="campaign-copy"),
    # -- queue --
    path("c/<slug:slug>/queue/", include("annotate.views.queue")),  # campaign-queue, campaign-stranded(-act)
    # -- quality control: adjudication queue, flags, annotator standings --
    path("c/<slug:slug>/review/", include("annotate.views.review")),  # campaign-review, ...
    path("c/<slug:slug>/flags/", include("annotate.views.flags")),  # campaign-flags, ...
    path("c/<slug:slug>/standings/", include("annotate.views.standings")),  # campaign-standing-*, ...
    # -- campaign home --
    path("c/<slug:slug>/", include("annotate.views.campaign_home")),  # campaign-home, campaign-home-live, -quality
    # -- the signed-in user's account: API tokens (annotate/views/account.py) --
    path("accounts/", include("annotate.views.account")),  # account, account-token-*
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]


def _under_api(request) -> bool:
    return request.path_info.startswith("/api/")


def handler404(request, exception):
    """JSON under /api/ (a client parses the answer), Django's page elsewhere."""
    if _under_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def handler500(request):
    """JSON under /api/ — a 503 when the database is what failed — and Django's page elsewhere."""
    if _under_api(request):
        return api_server_error(request)
    return defaults.server_error(request)
