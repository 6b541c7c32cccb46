"""What a routing pass reads: a campaign's routable items with their latest decisions, their human and judge
labels in routing_eval's row shape, and the texts features are computed from. Reads only: no decision here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from annotate.models import Annotation, Campaign, Item, JudgeVerdict, RoutingDecision
from routing.judges.templates import template_for

CHUNK = 2000


@dataclass
class RoutableItem:
    id: int
    route: str
    human_labels: int
    leased: int
    last_policy: str | None = None
    overridden: bool = False

    @property
    def labelled_or_leased(self) -> bool:
        return self.human_labels > 0 or self.leased > 0


def routable_items(campaign: Campaign) -> list[RoutableItem]:
    """The campaign's routable items (not gold checks), with each one's latest decision."""
    rows = Item.objects.filter(campaign=campaign, gold_label__isnull=True).order_by("id")
    items = [
        RoutableItem(id=pk, route=route, human_labels=labelled, leased=max(assigned - labelled, 0))
        for pk, route, labelled, assigned in rows.values_list("id", "route", "human_label_count", "assigned_count")
    ]
    latest = latest_decisions(campaign.pk)
    for item in items:
        policy, overridden = latest.get(item.id, (None, False))
        item.last_policy, item.overridden = policy, overridden
    return items


def latest_decisions(campaign_id: int) -> dict[int, tuple[str, bool]]:
    """Per item, the policy of its latest decision and whether an admin made it (one window query)."""
    table = RoutingDecision._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT item_id, policy, overridden_by_id IS NOT NULL FROM ("
            f" SELECT item_id, policy, overridden_by_id,"
            f"  ROW_NUMBER() OVER (PARTITION BY item_id ORDER BY created_at DESC, id DESC) AS n"
            f" FROM {table} WHERE campaign_id = %s) latest WHERE n = 1",
            [campaign_id],
        )
        return {item_id: (policy, bool(overridden)) for item_id, policy, overridden in cursor.fetchall()}


def chunks(values: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def stale_judgments(campaign: Campaign) -> Q:
    """Judgments routing ignores: those of a judge with an endpoint that is inactive, no longer the
    campaign's, or made with a prompt other than the one the judge uses now (edited prompts never mix with
    old judgments). Imported judges' labels always count."""
    current = Q()
    for judge in campaign.judges.filter(active=True, imported=False):
        try:
            version = template_for(name=judge.prompt_template, override=judge.prompt_override, kind=campaign.kind)
        except ValueError:
            continue
        current |= Q(judge=judge, prompt_version=version.version)
    return Q(judge__imported=False) & ~current


def judge_labels(item_ids: Sequence[int], *, exclude: Q | None = None) -> dict[int, list[dict]]:
    """Per item, its judgments in routing_eval's `judge_labels` shape: one entry per (judge, prompt version,
    sample) with the original order's label and, when judged in both orders, the swapped one (both in the
    item's own order; None when the output did not parse) and the lower of their logprob confidences.
    `exclude`: judgments to leave out (`stale_judgments`)."""
    out: dict[int, dict[tuple, dict]] = defaultdict(dict)
    for chunk in chunks(item_ids):
        rows = Annotation.objects.filter(item_id__in=chunk, source=Annotation.Source.JUDGE)
        if exclude is not None:
            rows = rows.exclude(exclude)
        rows = rows.values_list(
            "item_id", "judge_id", "prompt_version", "sample_index", "position_swapped", "label", "parse_failed",
            "confidence",
        )  # fmt: skip
        for item_id, judge_id, version, sample, swapped, label, failed, confidence in rows:
            entry = out[item_id].setdefault((judge_id, version, sample), {"judge": f"{judge_id}/{version}/{sample}"})
            entry["label_swapped" if swapped else "label"] = None if failed else label
            if confidence is not None:
                entry["confidence"] = min(confidence, entry.get("confidence", 1.0))
    result = {}
    for item_id, entries in out.items():
        # A judgment stored only in the swapped order stands in for the original.
        result[item_id] = [e if "label" in e else {**e, "label": e.pop("label_swapped")} for e in entries.values()]
    return result


def human_labels(item_ids: Sequence[int]) -> dict[int, list[dict]]:
    """Per item, its human labels (routing_eval's `human_labels` shape)."""
    out: dict[int, list[dict]] = defaultdict(list)
    for chunk in chunks(item_ids):
        rows = Annotation.objects.filter(item_id__in=chunk, source=Annotation.Source.HUMAN).values_list(
            "item_id", "annotator_id", "label"
        )
        for item_id, annotator_id, label in rows:
            if label:
                out[item_id].append({"annotator": str(annotator_id), "label": label})
    return out


def text_fields(campaign: Campaign, item_ids: Sequence[int]) -> dict[int, dict]:
    """The item fields features read. Rubric items: the response as A and the reference as B (items of a
    campaign of both kinds are pairs)."""
    out = {}
    for chunk in chunks(item_ids):
        for row in Item.objects.filter(pk__in=chunk).values(
            "id", "prompt", "response_a", "response_b", "response", "reference", "metadata"
        ):
            if campaign.kind == Campaign.Kind.RUBRIC:
                row = {**row, "response_a": row["response"], "response_b": row["reference"]}
            out[row["id"]] = row
    return out


def training_ids(campaign: Campaign) -> list[int]:
    """The campaign's routable items that humans have labelled: the learned policy's training candidates."""
    rows = Item.objects.filter(campaign=campaign, human_label_count__gt=0, gold_label__isnull=True)
    return list(rows.order_by("id").values_list("id", flat=True))


def unusable_verdicts(campaign: Campaign, item_ids: Sequence[int]) -> set[int]:
    """Of these items, those the judges ran on and gave no usable verdict (every judgment failed to parse)."""
    out: set[int] = set()
    for chunk in chunks(item_ids):
        rows = JudgeVerdict.objects.filter(campaign=campaign, label__isnull=True, n_parse_failures__gt=0)
        out.update(rows.filter(item_id__in=chunk).values_list("item_id", flat=True))
    return out


def has_judges(campaign: Campaign) -> bool:
    """Whether the campaign has judges to label its items: an active judge with an endpoint, or judge labels."""
    return (
        campaign.judges.filter(active=True, imported=False).exists()
        or Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE).exists()
    )
