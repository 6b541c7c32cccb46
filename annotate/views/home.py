"""The landing page: the campaigns a person can work on, with their size and labels so far."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import render

from annotate.models import Campaign


@login_required
def home(request):
    campaigns = (
        Campaign.objects.all() if request.user.is_staff else Campaign.objects.filter(state=Campaign.State.ACTIVE)
    )
    campaigns = campaigns.annotate(
        n_items=Count("items", distinct=True),
        n_human_labels=Count("annotations", filter=Q(annotations__source="human"), distinct=True),
        n_judge_labels=Count("annotations", filter=Q(annotations__source="judge"), distinct=True),
    ).order_by("name")
    return render(request, "annotate/home.html", {"campaigns": campaigns})
