"""Routing's pages, included under c/<slug>/ by annotate/urls.py: the judges page and judge runs, the routing
page, a routing pass, the settings form, and each item's decisions with an override."""

from django.urls import path

from routing import views

urlpatterns = [
    path("judges/", views.judges_page, name="campaign-judges"),
    path("judges/runs/", views.runs_fragment, name="campaign-judges-runs"),
    path("judges/run/", views.run_start, name="campaign-judges-run"),
    path("judges/runs/<int:job_id>/cancel/", views.run_cancel, name="campaign-judges-cancel"),
    path("routing/", views.routing_page, name="campaign-routing"),
    path("routing/pass/", views.routing_pass_fragment, name="campaign-routing-pass"),
    path("routing/route/", views.routing_route, name="campaign-routing-route"),
    path("routing/settings/", views.routing_settings, name="campaign-routing-settings"),
    path("routing/items/<int:item_id>/", views.routing_item, name="campaign-routing-item"),
    path("routing/items/<int:item_id>/override/", views.routing_item_override, name="campaign-routing-override"),
]
