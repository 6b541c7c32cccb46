"""factory_boy factories for the domain's rows."""

import factory
from django.contrib.auth import get_user_model

from annotate import schema as label_schema
from annotate.models import Annotation, Campaign, Item, Job, Judge
from annotate.services.imports.rows import content_hash


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-123")


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    class Params:
        preset_name = "simple-pairwise"

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    kind = factory.LazyAttribute(lambda o: label_schema.PRESET_KINDS[o.preset_name])
    preset = factory.LazyAttribute(lambda o: o.preset_name)
    label_schema = factory.LazyAttribute(
        lambda o: label_schema.schema_validate(
            label_schema.preset(o.preset_name), label_schema.PRESET_KINDS[o.preset_name]
        )
    )
    state = Campaign.State.OPEN


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    campaign = factory.SubFactory(CampaignFactory)
    external_id = factory.Sequence(lambda n: f"item-{n}")
    prompt = factory.Sequence(lambda n: f"Prompt number {n}?")
    response_a = "First response."
    response_b = "Second response."
    content_hash = factory.LazyAttribute(
        lambda o: content_hash({"prompt": o.prompt, "a": o.response_a, "b": o.response_b})
    )


class JudgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Judge

    name = factory.Sequence(lambda n: f"judge-{n}")
    model = "test-model"


class AnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Annotation

    item = factory.SubFactory(ItemFactory)
    campaign = factory.LazyAttribute(lambda o: o.item.campaign)
    source = Annotation.Source.HUMAN
    annotator = factory.SubFactory(UserFactory)
    label = factory.LazyFunction(lambda: {"overall": 1})


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    kind = "import_items"
    params = factory.LazyFunction(dict)
