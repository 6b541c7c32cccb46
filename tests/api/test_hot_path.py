"""The annotator's next + submit made cheaper without changing an answer: rows read and written without the
ORM's per-query setup, message storage made only when used, throttles that skip a read they cannot need."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.utils import timezone
from django.utils.functional import empty

from annotate.middleware import LazyMessageMiddleware
from annotate.models import Annotation, Assignment, Campaign, Item
from annotate.models.rawsql import instance_insert, instances_from_sql
from annotate.services.imports import items_import
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

ASSIGNMENT, ITEM, CAMPAIGN = (m._meta.db_table for m in (Assignment, Item, Campaign))


def values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


@pytest.fixture
def lease(db):
    campaign = CampaignFactory(min_seconds=2.5)
    item = ItemFactory(campaign=campaign, gold_label={"overall": 1}, metadata={"k": ["v", 1]})
    now = timezone.now()
    return Assignment.objects.create(
        campaign=campaign,
        item=item,
        annotator=UserFactory(),
        state=Assignment.State.LEASED,
        purpose=Assignment.Purpose.WORK,
        leased_at=now,
        expires_at=now + timedelta(minutes=5),
        position_swapped=True,
        active_seconds=1.25,
    )


def test_rows_read_from_sql_are_the_instances_raw_gives(lease):
    """Datetimes (text on SQLite), booleans (0/1), JSON, nulls and extra columns, as RawQuerySet has them."""
    queries = [
        (Assignment, f"SELECT * FROM {ASSIGNMENT} WHERE id = %s AND expires_at > %s", [lease.pk, timezone.now()]),
        (Item, f"SELECT *, 7 AS lease_id FROM {ITEM} WHERE id = %s", [lease.item_id]),
        (Item, f"SELECT id, prompt, gold_label FROM {ITEM} WHERE id = %s", [lease.item_id]),
        (Campaign, f"SELECT c.*, 1 AS may_label FROM {CAMPAIGN} c WHERE c.id = %(id)s", {"id": lease.campaign_id}),
    ]
    for model, sql, params in queries:
        expected = list(model.objects.raw(sql, params))
        for _ in range(2):  # the second time from the plan worked out the first
            got = instances_from_sql(model, sql, params)
            assert len(got) == len(expected) == 1
            assert values(got[0]) == values(expected[0])
            assert got[0].get_deferred_fields() == expected[0].get_deferred_fields()
            assert got[0]._state.adding is False and got[0]._state.db == expected[0]._state.db
            for extra in ("lease_id", "may_label"):
                assert getattr(got[0], extra, None) == getattr(expected[0], extra, None)
    assert instances_from_sql(Assignment, f"SELECT * FROM {ASSIGNMENT} WHERE id = %s", [-1]) == []
    read = instances_from_sql(Assignment, f"SELECT * FROM {ASSIGNMENT} WHERE id = %s", [lease.pk])[0]
    assert read.expires_at.tzinfo is not None and read.position_swapped is True


def test_a_row_inserted_without_the_orm_is_the_row_the_orm_writes(lease):
    def annotation(annotator):
        return Annotation(
            item_id=lease.item_id,
            campaign=lease.campaign,
            source=Annotation.Source.HUMAN,
            annotator=annotator,
            label={"overall": -1, "nested": [1, "ü"]},
            justification="Because.",
            rater_confidence=None,
            seconds=1.25,
            position_swapped=True,
            too_fast=True,
        )

    fast, orm = annotation(lease.annotator), annotation(UserFactory())
    instance_insert(fast)
    orm.save(force_insert=True)
    assert fast.pk is not None and fast._state.adding is False
    assert fast.created_at is not None, "auto_now_add stamps the instance, as save() does"
    stored, reference = Annotation.objects.get(pk=fast.pk), Annotation.objects.get(pk=orm.pk)
    differ = {"id", "annotator_id", "created_at", "updated_at"}
    assert {k: v for k, v in values(stored).items() if k not in differ} == {
        k: v for k, v in values(reference).items() if k not in differ
    }
    assert stored.created_at == fast.created_at and abs(stored.updated_at - reference.updated_at) < timedelta(minutes=1)


def test_a_model_with_save_receivers_is_saved_by_the_orm_so_no_receiver_is_skipped(lease):
    from django.db.models.signals import post_save

    seen = []

    def receiver(sender, instance, created, **kwargs):
        seen.append((instance.pk, created))

    post_save.connect(receiver, sender=Annotation, dispatch_uid="test.hot_path_receiver")
    try:
        label = Annotation(
            item_id=lease.item_id,
            campaign=lease.campaign,
            source=Annotation.Source.HUMAN,
            annotator=lease.annotator,
            label={"overall": 1},
        )
        instance_insert(label)
    finally:
        post_save.disconnect(sender=Annotation, dispatch_uid="test.hot_path_receiver")
    assert seen == [(label.pk, True)]


def test_the_annotators_answers_still_carry_every_security_header(annotator_api):
    campaign = CampaignFactory()
    items_import(campaign=campaign, stream=jsonl(pair(0)), filename="items.jsonl")
    leased = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json")
    submitted = annotator_api.post(
        f"/api/assignments/{leased.json()['assignment']['assignment']}/submit/",
        {"label": {"overall": 1}},
        format="json",
    )
    assert (leased.status_code, submitted.status_code) == (200, 201)
    for answer in (leased, submitted):
        assert "default-src 'self'" in answer["Content-Security-Policy"]
        assert answer["X-Frame-Options"] == "DENY"
        assert answer["X-Content-Type-Options"] == "nosniff"
        assert answer["Referrer-Policy"] == "same-origin"
        assert answer["Cross-Origin-Opener-Policy"] == "same-origin"
        assert answer["Server-Timing"].startswith("app;dur=")
        assert "messages" not in answer.cookies, "no message storage was made, so none is saved"


def _through_messages(request, view):
    factory_response = LazyMessageMiddleware(view)
    request.session = {}
    return factory_response(request)


def test_messages_are_kept_and_shown_as_with_djangos_middleware():
    added = RequestFactory().get("/somewhere/")

    def add(request):
        messages.success(request, "Saved.")
        return HttpResponse("ok")

    response = _through_messages(added, add)
    assert response.cookies["messages"].value, "a message added on one page travels in the cookie"
    shown = []
    follow = RequestFactory().get("/next/")
    follow.COOKIES["messages"] = response.cookies["messages"].value

    def show(request):
        shown.extend(str(m) for m in messages.get_messages(request))
        return HttpResponse("ok")

    after = _through_messages(follow, show)
    assert shown == ["Saved."]
    assert after.cookies["messages"].value == "", "shown once: the cookie is cleared"
    untouched = RequestFactory().get("/api/anything/")
    response = _through_messages(untouched, lambda request: HttpResponse("ok"))
    assert untouched._messages._wrapped is empty and "messages" not in response.cookies


# --- throttles: the sliding window still counts the previous window whenever it can matter ---------------


@pytest.fixture
def locmem():
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        cache.clear()
        yield
        cache.clear()


def _asks(user, *, at: float, n: int, previous: int, rate: str = "10/min") -> list[int]:
    """`n` requests by `user` at `at` seconds into a minute whose predecessor counted `previous` requests."""
    from rest_framework.test import APIClient

    from annotate.api import throttles

    start = 1_000_000 * 60.0
    window = int(start // 60)
    client = APIClient()
    client.force_authenticate(user)
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": rate}
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        cache.set(f"throttle_user_{user.pk}:{window - 1}", previous, 120)
        original = throttles._LiveRateThrottle.timer
        throttles._LiveRateThrottle.timer = lambda self: start + at
        try:
            return [client.get("/api/campaigns/").status_code for _ in range(n)]
        finally:
            throttles._LiveRateThrottle.timer = original


def test_a_full_previous_window_still_holds_back_the_next(locmem):
    # 6 s into the minute, 90 % of a full previous minute still counts: room for one request.
    assert _asks(UserFactory(), at=6, n=3, previous=10) == [200, 429, 429]
    # Half-way, half of it: room for five.
    assert _asks(UserFactory(), at=30, n=7, previous=10) == [200] * 5 + [429] * 2


def test_an_empty_previous_window_leaves_the_whole_rate(locmem):
    assert _asks(UserFactory(), at=6, n=11, previous=0) == [200] * 10 + [429]


# --- content negotiation: a client that accepts anything gets JSON at once; the others still choose ------------


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_a_client_that_accepts_anything_gets_json(annotator_api, accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    answer = annotator_api.get("/api/campaigns/", **headers)
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    assert isinstance(answer.json(), dict | list)


@pytest.mark.parametrize(
    ("accept", "query", "expected"),
    [
        ("text/html,application/xhtml+xml,*/*;q=0.8", "", "text/html; charset=utf-8"),
        ("*/*", "?format=api", "text/html; charset=utf-8"),
    ],
)
def test_other_clients_still_get_what_they_ask_for(annotator_api, accept, query, expected):
    answer = annotator_api.get(f"/api/campaigns/{query}", HTTP_ACCEPT=accept)
    assert answer.status_code == 200 and answer["Content-Type"] == expected


def test_media_type_parameters_still_reach_the_renderer(annotator_api):
    answer = annotator_api.get("/api/", HTTP_ACCEPT="application/json; indent=4")
    assert answer.status_code == 200 and answer.content.startswith(b"{\n    ")


def test_a_client_accepting_nothing_we_render_is_refused(annotator_api):
    assert annotator_api.get("/api/campaigns/", HTTP_ACCEPT="image/png").status_code == 406


# --- input: validated on the declared fields, with the serializer's own answer whenever anything fails ----------

BODIES = [
    {},
    {"label": {"overall": -1}},
    {"label": {"overall": 1, "helpful": 2}, "justification": "  Clearer.  ", "rater_confidence": 3},
    {"label": {}, "justification": "", "rater_confidence": None, "active_seconds": 0},
    {"label": {"overall": 0}, "active_seconds": 12.5, "unknown": "ignored"},
    {"label": {"overall": 0}, "active_seconds": "7"},
    {"label": {"overall": 0}, "rater_confidence": "4"},
    {"label": {"overall": 0}, "active_seconds": -1},
    {"label": {"overall": 0}, "rater_confidence": True},
    {"label": {"overall": 0}, "justification": "nul\x00byte"},
    {"label": {"overall": 0}, "justification": 5},
    {"label": "overall"},
    {"label": None},
    {"exclude": [1, "2"]},
    {"exclude": "1"},
    {"exclude": [1, "x"]},
    {"reason": "   "},
    {"reason": "Broken prompt."},
    {"reason": "x" * 501},
    ["label"],
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("name", ["NextInput", "SubmitInput", "SkipInput", "HeartbeatInput"])
def test_input_is_validated_as_the_serializer_validates_it(name, body):
    from rest_framework.exceptions import ValidationError

    from annotate.api import annotating

    serializer_class = getattr(annotating, name)
    serializer = serializer_class(data=body)
    if serializer.is_valid():
        assert annotating.validated_input(serializer_class, body) == dict(serializer.validated_data)
    else:
        with pytest.raises(ValidationError) as refused:
            annotating.validated_input(serializer_class, body)
        assert refused.value.detail == serializer.errors
