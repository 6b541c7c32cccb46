"""Routing's API routes, included under /api/ by annotate/api/urls.py (URL names as before the move)."""

from django.urls import path

from routing.api_views import judges, routing, tagger

urlpatterns = [
    path("judges/", judges.JudgeListCreate.as_view(), name="api-judges"),
    path("judges/<int:pk>/", judges.JudgeDetail.as_view(), name="api-judge"),
    path("judges/<int:pk>/probe/", judges.JudgeProbe.as_view(), name="api-judge-probe"),
    path("campaigns/<str:ref>/judge-runs/", judges.JudgeRunStart.as_view(), name="api-judge-runs"),
    path("campaigns/<str:ref>/routing/", routing.CampaignRouting.as_view(), name="api-routing"),
    path("campaigns/<str:ref>/decisions/", routing.CampaignDecisions.as_view(), name="api-decisions"),
    path("campaigns/<str:ref>/route/", routing.CampaignRoute.as_view(), name="api-route"),
    path("items/<int:pk>/routing/", routing.ItemRouting.as_view(), name="api-item-routing"),
    path("campaigns/<str:ref>/tags/", tagger.CampaignTags.as_view(), name="api-tags"),
]
