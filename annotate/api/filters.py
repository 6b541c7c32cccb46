"""django-filter sets of the API's list endpoints: each names the query parameters a list takes, checks them
(a bad choice is a 400 naming the parameter) and documents them in the schema."""

from __future__ import annotations

import django_filters as filters
from django.db.models import Q

from annotate.models import Annotation, DatasetExport, Item, Job, RoutingDecision

REVIEW_STATES = {"settled": Item.ReviewState.NONE, "contested": Item.ReviewState.CONTESTED,
                 "adjudicated": Item.ReviewState.ADJUDICATED}  # fmt: skip


class ItemFilter(filters.FilterSet):
    route = filters.ChoiceFilter(choices=Item.Route.choices)
    state = filters.ChoiceFilter(
        choices=[(name, name) for name in REVIEW_STATES], method="_state", help_text="Review state."
    )
    gold = filters.BooleanFilter(method="_gold", help_text="Attention-check items (with a gold label) or not.")
    labelled = filters.BooleanFilter(method="_labelled", help_text="Items with at least one human label or none.")
    search = filters.CharFilter(method="_search", max_length=200, help_text="In the prompt or the external id.")

    class Meta:
        model = Item
        fields = ["route"]

    def _state(self, queryset, name, value):
        return queryset.filter(review_state=REVIEW_STATES[value])

    def _gold(self, queryset, name, value):
        return queryset.filter(gold_label__isnull=not value)

    def _labelled(self, queryset, name, value):
        return queryset.filter(human_label_count__gt=0) if value else queryset.filter(human_label_count=0)

    def _search(self, queryset, name, value):
        return queryset.filter(Q(external_id__icontains=value) | Q(prompt__icontains=value))


class JobFilter(filters.FilterSet):
    kind = filters.CharFilter(max_length=40)
    state = filters.ChoiceFilter(choices=Job.State.choices)
    campaign = filters.CharFilter(field_name="campaign__slug", max_length=80, help_text="The campaign's slug.")

    class Meta:
        model = Job
        fields = ["kind", "state", "campaign"]


class LabelFilter(filters.FilterSet):
    source = filters.ChoiceFilter(choices=Annotation.Source.choices)
    annotator = filters.CharFilter(field_name="annotator__username", max_length=150, help_text="A username.")
    judge = filters.CharFilter(field_name="judge__name", max_length=100, help_text="A judge's name.")
    item = filters.CharFilter(field_name="item__external_id", max_length=200, help_text="An item's external id.")
    search = filters.CharFilter(method="_search", max_length=200, help_text="In the justification or the item's id.")

    class Meta:
        model = Annotation
        fields = ["source"]

    def _search(self, queryset, name, value):
        return queryset.filter(Q(justification__icontains=value) | Q(item__external_id__icontains=value))


class DecisionFilter(filters.FilterSet):
    destination = filters.ChoiceFilter(choices=RoutingDecision.Destination.choices)
    policy = filters.CharFilter(max_length=40)
    item = filters.CharFilter(field_name="item__external_id", max_length=200, help_text="An item's external id.")
    overridden = filters.BooleanFilter(field_name="overridden_by", lookup_expr="isnull", exclude=True)

    class Meta:
        model = RoutingDecision
        fields = ["destination", "policy"]


class ExportFilter(filters.FilterSet):
    complete = filters.BooleanFilter()
    state = filters.ChoiceFilter(field_name="job__state", choices=Job.State.choices)

    class Meta:
        model = DatasetExport
        fields = ["complete"]
