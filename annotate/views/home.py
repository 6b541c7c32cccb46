"""The landing page: my campaigns with my progress; for admins also every campaign's totals."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import render

from annotate.models import Campaign
from annotate.selectors import campaigns_for_annotator
from annotate.services.assignments import annotator_progress


@login_required
def home(request):
    mine = [
        {"campaign": c, "progress": annotator_progress(annotator=request.user, campaign=c)}
        for c in campaigns_for_annotator(user=request.user)
    ]
    overview = None
    if request.user.is_staff:
        overview = Campaign.objects.annotate(
            n_items=Count("items", distinct=True),
            n_human_labels=Count("annotations", filter=Q(annotations__source="human"), distinct=True),
            n_judge_labels=Count("annotations", filter=Q(annotations__source="judge"), distinct=True),
        ).order_by("name")
    return render(request, "annotate/home.html", {"mine": mine, "overview": overview})
