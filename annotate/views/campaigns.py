"""Campaign lifecycle pages for admins: new campaign with a live preview, settings, state, copy; and
the page an annotator gets for a campaign that is not open to them."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotate import schema as label_schema
from annotate.access import admin_campaign, campaign_allows, campaign_lookup, campaign_role, can_create_campaigns
from annotate.models import Campaign, Item
from annotate.selectors import in_campaign_pool, item_display
from annotate.services.campaigns import (
    ACTION_WORDS,
    FLAGS,
    QUALITY_FIELDS,
    TRANSITIONS,
    CampaignError,
    campaign_copy,
    campaign_create,
    campaign_has_labels,
    campaign_notices,
    campaign_settings_check,
    campaign_state_set,
    campaign_update,
)

# What the preview shows before the campaign has items of its own.
SAMPLE_PROMPT = "Explain in two sentences why the sky is blue."
SAMPLE_A = (
    "Sunlight is scattered by the molecules of the air, and **blue light is scattered much more** than red "
    "because of its shorter wavelength (Rayleigh scattering). So blue light reaches our eyes from every part "
    "of the sky."
)
SAMPLE_B = "The sky reflects the colour of the oceans, which cover most of the Earth."
SAMPLE_RESPONSE = SAMPLE_A
PRESET_CHOICES = [(name, label_schema.PRESET_KINDS[name]) for name in label_schema.PRESETS]
KIND_WORDS = {
    "pairwise": "Pairwise: which of two responses is better, and by how much",
    "rubric": "Rubric: rate one response on criteria",
    "both": "Both: compare two responses and rate each",
}


# --- reading the form -------------------------------------------------------------------------


def _whole(text: str, field: str, errors: dict, *, empty_is_none: bool = False) -> int | None:
    text = (text or "").strip()
    if text == "" and empty_is_none:
        return None
    try:
        return int(text)
    except ValueError:
        errors[field] = f"{field.replace('_', ' ')}: {text!r} is not a whole number"
        return None


def _share(text: str, field: str, errors: dict, *, empty_is_none: bool = False) -> float | None:
    """A share typed as 0.8, 80 or 80 %; empty is None (optional fields) or an error."""
    raw = (text or "").strip()
    if raw == "" and empty_is_none:
        return None
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        errors[field] = f"{field.replace('_', ' ')}: {raw!r} is not a number (0–1, or a percentage)"
        return None
    return value / 100 if raw.endswith("%") or value > 1 else value


def _seconds(text: str, field: str, errors: dict) -> float | None:
    raw = (text or "").strip()
    if raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        errors[field] = f"{field.replace('_', ' ')}: {raw!r} is not a number of seconds"
        return None


def _quality_form_values(data, errors: dict) -> dict:
    """The "Quality control" fieldset. Each checkbox follows a hidden "0" of the same name, so an unticked
    box still says false (QueryDict.get reads the last value)."""
    values: dict = {}
    if "qualification_items" in data:
        text = (data.get("qualification_items") or "").strip() or "0"
        values["qualification_items"] = _whole(text, "qualification_items", errors)
    for name in ("qualification_threshold", "agreement_threshold"):
        if name in data:
            values[name] = _share(data.get(name), name, errors)
    if "judge_gold_threshold" in data:
        values["judge_gold_threshold"] = _share(
            data.get("judge_gold_threshold"), "judge_gold_threshold", errors, empty_is_none=True
        )
    for name in ("attention_max_failures", "overlap_max"):
        if name in data:
            values[name] = _whole(data.get(name), name, errors, empty_is_none=True)
    if "min_seconds" in data:
        values["min_seconds"] = _seconds(data.get("min_seconds"), "min_seconds", errors)
    for name in FLAGS:
        if name in data:
            values[name] = (data.get(name) or "").strip().lower() in ("1", "on", "true", "yes")
    return values


def campaign_form_values(data, *, creating: bool) -> tuple[dict, dict]:
    """The form's fields → (values for the services, errors by field). The schema comes from a preset
    (`schema_mode=preset`) or from the JSON editor (`schema_mode=custom`, field `label_schema`)."""
    errors: dict[str, str] = {}
    values: dict = {}
    for name in ("name", "guidelines"):
        if name in data:
            values[name] = data.get(name, "")
    if "kind" in data:
        values["kind"] = data.get("kind", "")
    if "overlap" in data:
        values["overlap"] = _whole(data.get("overlap"), "overlap", errors)
    if "lease_minutes" in data:
        minutes = _whole(data.get("lease_minutes"), "lease_minutes", errors)
        if minutes is not None:
            values["lease_seconds"] = minutes * 60
    if "gold_rate" in data:
        text = (data.get("gold_rate") or "0").strip().rstrip("%")
        try:
            rate = float(text)
            values["gold_rate"] = rate / 100 if "%" in (data.get("gold_rate") or "") or rate > 1 else rate
        except ValueError:
            errors["gold_rate"] = f"gold rate: {text!r} is not a number"
    for name in ("label_limit", "daily_label_limit"):
        if name in data:
            values[name] = _whole(data.get(name), name, errors, empty_is_none=True)
    values.update(_quality_form_values(data, errors))
    mode = data.get("schema_mode")
    if mode == "preset":
        values["preset"] = data.get("preset", "")
        values["label_schema"] = None
        if not values["preset"]:
            errors["preset"] = "preset: choose one"
    elif mode == "custom":
        text = data.get("label_schema", "")
        try:
            values["label_schema"] = json.loads(text)
        except ValueError as exc:
            errors["label_schema"] = f"label schema: not valid JSON — {exc}"
        values["preset"] = data.get("preset", "")
    if creating and "slug" in data and data.get("slug", "").strip():
        values["slug"] = data.get("slug").strip()
    return values, errors


def _field_of(exc: CampaignError) -> str:
    field = exc.field or str(exc).split(":", 1)[0]
    return {"lease_seconds": "lease_minutes", "schema": "label_schema"}.get(field, field)


def _check(values: dict, errors: dict, campaign: Campaign | None) -> dict:
    """Validate what parsed, field by field, so that every field shows its own error at once."""
    checked: dict = {}
    paired = ("overlap", "overlap_max")  # one bounds the other: checked together below
    simple = [k for k in values if k not in ("kind", "preset", "label_schema", "slug", *paired)]
    for name in simple:
        if _field_of_name(name) in errors:
            continue
        try:
            checked.update(campaign_settings_check(campaign=campaign, values={name: values[name]}))
        except CampaignError as exc:
            errors[_field_of(exc)] = str(exc)
    schema_keys = {k: values[k] for k in ("kind", "preset", "label_schema") if k in values}
    if schema_keys and "label_schema" not in errors and "preset" not in errors:
        if schema_keys.get("label_schema") is None and not schema_keys.get("preset"):
            schema_keys.pop("label_schema", None)
        try:
            checked.update(campaign_settings_check(campaign=campaign, values=schema_keys))
        except CampaignError as exc:
            errors[_field_of(exc)] = str(exc)
    pair = {k: values[k] for k in paired if k in values and k not in errors}
    if pair:
        try:
            checked.update(campaign_settings_check(campaign=campaign, values=pair))
        except CampaignError as exc:
            errors[_field_of(exc)] = str(exc)
    if "slug" in values:
        checked["slug"] = values["slug"]
    return checked


def _field_of_name(name: str) -> str:
    return "lease_minutes" if name == "lease_seconds" else name


# --- the preview ------------------------------------------------------------------------------


def _sample_item(campaign: Campaign | None, kind: str) -> Item:
    if campaign is not None:
        item = campaign.items.filter(gold_label__isnull=True).order_by("queue_rank", "id").first()
        if item is not None:
            return item
    if kind == "rubric":
        return Item(prompt=SAMPLE_PROMPT, response=SAMPLE_RESPONSE)
    return Item(prompt=SAMPLE_PROMPT, response_a=SAMPLE_A, response_b=SAMPLE_B)


def _preview_context(values: dict, errors: dict, campaign: Campaign | None) -> dict:
    """What the annotator would see with these settings: the same item partials the annotate page uses."""
    kind = values.get("kind") or (campaign.kind if campaign else "pairwise")
    schema = values.get("label_schema") or (campaign.label_schema if campaign else None)
    preview = None
    if schema and "label_schema" not in errors and "preset" not in errors and "kind" not in errors:
        draft = Campaign(kind=kind, label_schema=schema, guidelines=values.get("guidelines", ""))
        preview = item_display(item=_sample_item(campaign, kind), campaign=draft, position_swapped=False)
    return {
        "preview": preview,
        "preview_guidelines": values.get("guidelines", campaign.guidelines if campaign else ""),
        "errors": errors,
        "schema_json": json.dumps(schema, indent=2) if schema else "",
    }


@login_required
@require_POST
def campaign_preview(request):
    """htmx: validate the form as it is typed and answer the errors and the annotator's view."""
    campaign = None
    if request.POST.get("campaign"):
        campaign = admin_campaign(user=request.user, ref=request.POST["campaign"], need="view")
    elif not can_create_campaigns(request.user):
        raise PermissionDenied("Only staff accounts may create campaigns.")
    values, errors = campaign_form_values(request.POST, creating=campaign is None)
    checked = _check(values, errors, campaign)
    merged = {**values, **checked}
    return render(request, "annotate/_campaign_preview.html", _preview_context(merged, errors, campaign))


# --- new campaign -----------------------------------------------------------------------------


def _form_context(*, campaign: Campaign | None, data: dict, errors: dict, values: dict) -> dict:
    return {
        "campaign": campaign,
        "data": data,
        "errors": errors,
        "presets": PRESET_CHOICES,
        "preset_schemas": {name: label_schema.PRESETS[name] for name in label_schema.PRESETS},
        "kinds": [(k, KIND_WORDS[k]) for k in label_schema.KINDS],
        **_preview_context(values, errors, campaign),
    }


NEW_DEFAULTS = {
    "kind": "pairwise",
    "schema_mode": "preset",
    "preset": "simple-pairwise",
    "overlap": "3",
    "lease_minutes": "10",
    "gold_rate": "0",
    "label_limit": "",
    "daily_label_limit": "",
    "guidelines": "",
    "name": "",
    "slug": "",
    # quality control: the model's defaults (no gate, no pause, no dynamic overlap)
    "qualification_items": "0",
    "qualification_threshold": "0.8",
    "qualification_feedback": "1",
    "requalify_on_guidelines": "0",
    "attention_max_failures": "",
    "min_seconds": "",
    "overlap_max": "",
    "agreement_threshold": "0.6",
    "overlap_on_judge_disagreement": "1",
    "judge_gold_threshold": "",
    "reviewers_see_identities": "0",
}


@login_required
@require_http_methods(["GET", "POST"])
def campaign_new(request):
    if not can_create_campaigns(request.user):
        raise PermissionDenied("Only staff accounts may create campaigns; ask an administrator for a role instead.")
    if request.method == "GET":
        data = dict(NEW_DEFAULTS)
        values, errors = campaign_form_values(data, creating=True)
        values = {**values, **_check(values, {}, None)}
        return render(
            request, "annotate/campaign_new.html", _form_context(campaign=None, data=data, errors={}, values=values)
        )
    data = request.POST
    values, errors = campaign_form_values(data, creating=True)
    checked = _check(values, errors, None)
    by_preset = data.get("schema_mode") == "preset"
    if not errors and (by_preset and not checked.get("preset") or not by_preset and not checked.get("label_schema")):
        # Nothing to build the labels from: say which field, rather than fail on the missing value.
        field = "preset" if by_preset else "label_schema"
        errors[field] = "Choose a preset." if by_preset else "Give the label schema (or choose a preset)."
    if not errors:
        schema_args = (
            {"preset": checked["preset"]}
            if data.get("schema_mode") == "preset"
            else {"schema": checked["label_schema"]}
        )
        try:
            campaign = campaign_create(
                name=checked["name"],
                kind=checked["kind"],
                overlap=checked["overlap"],
                guidelines=checked.get("guidelines", ""),
                slug=checked.get("slug"),
                lease_seconds=checked.get("lease_seconds", 600),
                gold_rate=checked.get("gold_rate", 0.0),
                label_limit=checked.get("label_limit"),
                daily_label_limit=checked.get("daily_label_limit"),
                **{name: checked[name] for name in QUALITY_FIELDS if name in checked},
                created_by=request.user,
                **schema_args,
            )
        except CampaignError as exc:
            errors[_field_of(exc)] = str(exc)
        else:
            if data.get("schema_mode") == "custom" and checked.get("preset"):
                Campaign.objects.filter(pk=campaign.pk).update(preset=checked["preset"])
            messages.success(
                request,
                f"Created {campaign.name!r} as a draft. Import items, add annotators, then open it.",
            )
            return redirect("campaign-home", slug=campaign.slug)
    return render(
        request,
        "annotate/campaign_new.html",
        _form_context(campaign=None, data=data, errors=errors, values={**values, **checked}),
        status=400,
    )


# --- settings, state, copy ----------------------------------------------------------------------


def _settings_data(campaign: Campaign) -> dict:
    return {
        "name": campaign.name,
        "kind": campaign.kind,
        "schema_mode": "custom",
        "preset": campaign.preset,
        "label_schema": json.dumps(campaign.label_schema, indent=2),
        "overlap": str(campaign.overlap),
        "lease_minutes": str(max(1, campaign.lease_seconds // 60)),
        "gold_rate": f"{campaign.gold_rate:g}",
        "label_limit": "" if campaign.label_limit is None else str(campaign.label_limit),
        "daily_label_limit": "" if campaign.daily_label_limit is None else str(campaign.daily_label_limit),
        "guidelines": campaign.guidelines,
        **_quality_data(campaign),
    }


def _quality_data(campaign: Campaign) -> dict:
    """The quality-control fields as the form shows them (strings; flags as "1"/"0")."""
    data = {}
    for name in QUALITY_FIELDS:
        value = getattr(campaign, name)
        if isinstance(value, bool):
            data[name] = "1" if value else "0"
        elif value is None:
            data[name] = ""
        else:
            data[name] = f"{value:g}" if isinstance(value, float) else str(value)
    return data


def _settings_context(request, campaign: Campaign, *, data: dict, errors: dict, values: dict) -> dict:
    context = _form_context(campaign=campaign, data=data, errors=errors, values=values)
    can_manage = campaign_allows(user=request.user, campaign=campaign, need="manage")
    context.update(
        {
            "readonly": not can_manage,
            "frozen": campaign_has_labels(campaign=campaign),
            "role": campaign_role(user=request.user, campaign=campaign),
            **_state_context(request, campaign),
        }
    )
    return context


@login_required
@require_http_methods(["GET", "POST"])
def campaign_settings(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="view" if request.method == "GET" else "manage")
    if request.method == "GET":
        data = _settings_data(campaign)
        return render(
            request,
            "annotate/campaign_settings.html",
            _settings_context(request, campaign, data=data, errors={}, values={"label_schema": campaign.label_schema}),
        )
    data = request.POST
    values, errors = campaign_form_values(data, creating=False)
    values.pop("slug", None)
    checked = _check(values, errors, campaign)
    if not errors:
        try:
            campaign = campaign_update(campaign=campaign, **checked)
        except CampaignError as exc:
            errors[_field_of(exc)] = str(exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("campaign-settings", slug=campaign.slug)
    return render(
        request,
        "annotate/campaign_settings.html",
        _settings_context(request, campaign, data=data, errors=errors, values={**values, **checked}),
        status=400,
    )


def _state_context(request, campaign: Campaign) -> dict:
    return {
        "campaign": campaign,
        "notices": campaign_notices(campaign=campaign),
        "transitions": [(state, ACTION_WORDS[state]) for state in TRANSITIONS[campaign.state]],
        "can_manage": campaign_allows(user=request.user, campaign=campaign, need="manage"),
    }


@login_required
@require_http_methods(["GET", "POST"])
def campaign_state(request, slug: str):
    """GET: the state panel (badge, why annotators do (not) see it, buttons); POST `state`: move it."""
    campaign = admin_campaign(user=request.user, ref=slug, need="view" if request.method == "GET" else "manage")
    status = 200
    error = None
    if request.method == "POST":
        try:
            campaign = campaign_state_set(campaign=campaign, state=request.POST.get("state", ""))
        except CampaignError as exc:
            error, status = str(exc), 400
        if not request.htmx:
            if error:
                messages.error(request, error)
            else:
                messages.success(request, f"{campaign.name} is {campaign.get_state_display().lower()} now.")
            return redirect(request.POST.get("next") or "campaign-settings", slug=campaign.slug)
    context = {**_state_context(request, campaign), "error": error}
    response = render(request, "annotate/_campaign_state.html", context, status=status)
    if request.method == "POST" and not error:
        response["HX-Trigger"] = "campaign-state-changed"
    return response


@login_required
@require_POST
def campaign_copy_view(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    if not can_create_campaigns(request.user):
        raise PermissionDenied("Only staff accounts may create campaigns, copies included.")
    name = (request.POST.get("name") or "").strip() or f"{campaign.name} (v2)"
    try:
        copy = campaign_copy(
            campaign=campaign, name=name, created_by=request.user, with_items=request.POST.get("with_items") == "on"
        )
    except CampaignError as exc:
        messages.error(request, str(exc))
        return redirect("campaign-settings", slug=campaign.slug)
    messages.success(request, f"Copied to {copy.name!r}, a draft: change its schema, then open it.")
    return redirect("campaign-settings", slug=copy.slug)


# --- what annotators get when a campaign is not open to them ----------------------------------------


def annotator_unavailable(request, ref: str) -> HttpResponse:
    """A clear page instead of a 404 when the campaign exists but cannot be labelled by this person now."""
    campaign = campaign_lookup(ref)
    role = campaign_role(user=request.user, campaign=campaign) if campaign else None
    if campaign is None or not (role or in_campaign_pool(user=request.user, campaign=campaign)):
        return render(
            request, "annotate/campaign_unavailable.html", {"campaign": None, "reason": "missing"}, status=404
        )
    if campaign.state == Campaign.State.OPEN:
        reason = "pool"  # open, so the pool is what keeps them out (only possible for admins)
    else:
        reason = campaign.state
    return render(
        request,
        "annotate/campaign_unavailable.html",
        {"campaign": campaign, "reason": reason, "role": role},
        status=200 if reason in ("draft", "paused", "closed") else 403,
    )
