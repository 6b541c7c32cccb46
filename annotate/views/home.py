"""The landing page: my campaigns to label with my progress, the campaigns I run with their totals, and the
campaigns I review with their contested items."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import render

from annotate.access import campaign_roles, campaigns_administered, can_create_campaigns
from annotate.models import Annotation, CampaignMember, Item
from annotate.selectors import campaigns_for_annotator
from annotate.services.progress import annotator_progress


def _count(queryset, **filters):
    """A correlated count per campaign: one index range each, instead of a join that multiplies rows."""
    rows = queryset.filter(campaign=OuterRef("pk"), **filters).order_by().values("campaign")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0)


@login_required
def home(request):
    mine = [
        {"campaign": c, "progress": annotator_progress(annotator=request.user, campaign=c)}
        for c in campaigns_for_annotator(user=request.user)
    ]
    running = list(
        campaigns_administered(user=request.user)
        .annotate(
            n_items=_count(Item.objects),
            n_human_labels=_count(Annotation.objects, source="human"),
            n_judge_labels=_count(Annotation.objects, source="judge"),
            n_members=Count("members", filter=Q(members__role__in=("owner", "admin", "viewer")), distinct=True),
        )
        .order_by("state", "name")
    )
    roles = campaign_roles(user=request.user, campaigns=running)
    for campaign in running:
        campaign.my_role = roles[campaign.pk]
    # Reviewers hold no admin role: their campaigns are listed on their own, with what waits for them.
    reviewing = list(
        campaigns_administered(user=request.user, need="review")
        .filter(members__user=request.user, members__role=CampaignMember.Role.REVIEWER)
        .annotate(n_contested=_count(Item.objects, review_state=Item.ReviewState.CONTESTED))
        .order_by("state", "name")
    )
    return render(
        request,
        "annotate/home.html",
        {
            "mine": mine,
            "running": running,
            "reviewing": reviewing,
            "can_create": can_create_campaigns(request.user),
        },
    )
