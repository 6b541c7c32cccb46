"""Judges as configuration: creating one (command, API, admin) and probing what its endpoint supports."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from annotate.models import Judge
from routing.judges import client as judge_client
from routing.judges import egress
from routing.judges.templates import BUILTIN_TEMPLATES, TEMPLATE_KINDS, check_template_text

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROBE_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "probe",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": False,
        },
    },
}
_PROBE_MESSAGES = [{"role": "user", "content": "Answer with the single word OK."}]


def judge_validate(
    *,
    name: str,
    base_url: str,
    model: str,
    api_key_env: str = "",
    concurrency: int = 4,
    requests_per_minute: int = 60,
    price_in_per_1k: object = 0,
    price_out_per_1k: object = 0,
    sampling: dict | None = None,
    prompt_template: str = "",
    prompt_override: str = "",
    imported: bool = False,
) -> dict:
    """The judge's fields, checked; ValueError names the field that is wrong and why.

    An imported judge (its labels came from a file; it has no endpoint) is held only to the rules on what it
    could send: its key variable and, when it has one, its URL.
    """
    if not name.strip():
        raise ValueError("name: a judge needs a name")
    if imported:
        _check_destination(base_url=base_url, api_key_env=api_key_env, url_required=False)
        return {"name": name.strip(), "base_url": base_url, "api_key_env": api_key_env}
    _check_destination(base_url=base_url, api_key_env=api_key_env, url_required=True)
    if not model.strip():
        raise ValueError("model: the model name the endpoint serves is required")
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 1024:
        raise ValueError("concurrency: an integer from 1 to 1024")
    if not isinstance(requests_per_minute, int) or not 1 <= requests_per_minute <= 1_000_000:
        raise ValueError("requests_per_minute: an integer from 1 to 1,000,000")
    prices = {}
    for field, value in (("price_in_per_1k", price_in_per_1k), ("price_out_per_1k", price_out_per_1k)):
        try:
            prices[field] = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"{field}: {value!r} is not a number") from None
        if prices[field] < 0:
            raise ValueError(f"{field}: a price cannot be negative")
    sampling = dict(sampling or {})
    unknown = set(sampling) - set(judge_client.SAMPLING_KEYS) - {"samples", "timeout"}
    if unknown:
        allowed = ", ".join((*judge_client.SAMPLING_KEYS, "samples", "timeout"))
        raise ValueError(f"sampling: unknown setting(s) {', '.join(sorted(unknown))}; known: {allowed}")
    if prompt_template and prompt_template not in BUILTIN_TEMPLATES:
        raise ValueError(
            f"prompt_template: unknown template {prompt_template!r}; built-in: {', '.join(sorted(BUILTIN_TEMPLATES))}"
        )
    if prompt_override.strip():
        kinds = [BUILTIN_TEMPLATES[prompt_template].kind] if prompt_template else list(TEMPLATE_KINDS)
        errors = []
        for kind in kinds:
            try:
                check_template_text(prompt_override, kind)
                break
            except ValueError as exc:
                errors.append(str(exc))
        else:
            raise ValueError(f"prompt_override: {'; '.join(errors)}")
    return {
        "name": name.strip(),
        "base_url": base_url,
        "model": model.strip(),
        "api_key_env": api_key_env,
        "concurrency": concurrency,
        "requests_per_minute": requests_per_minute,
        "sampling": sampling,
        "prompt_template": prompt_template,
        "prompt_override": prompt_override,
        **prices,
    }


def _check_destination(*, base_url: str, api_key_env: str, url_required: bool) -> None:
    """Where the judge would send requests and which key: the URL policy (egress.py) and the key rule."""
    if base_url or url_required:
        try:
            URLValidator(schemes=["http", "https"])(base_url)
        except ValidationError:
            raise ValueError(f"base_url: {base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:8001/v1)") from None
        try:
            egress.url_check(base_url)
        except egress.EgressRefused as exc:
            raise ValueError(f"base_url: {exc}") from None
    if api_key_env and not ENV_NAME.match(api_key_env):
        raise ValueError(
            f"api_key_env: {api_key_env!r} is not an environment variable name; give the variable's name, "
            "never the key itself"
        )
    refusal = judge_client.key_env_refusal(api_key_env)
    if refusal:
        raise ValueError(f"api_key_env: {refusal}")


def judge_create(*, probe: bool = True, **fields) -> Judge:
    """Create a judge (fields as `judge_validate` takes them) and probe its endpoint's capabilities."""
    values = judge_validate(**fields)
    if Judge.objects.filter(name=values["name"]).exists():
        raise ValueError(f"name: a judge named {values['name']!r} already exists")
    with transaction.atomic():
        judge = Judge.objects.create(**values)
    if probe:
        judge_probe(judge=judge)
    return judge


async def _probe(judge: Judge) -> dict:
    import openai  # here, not at the top: a web process that never probes a judge does not load the SDK

    client = judge_client.judge_client(judge)
    found: dict = {}
    try:
        refusal = judge_client.judge_refusal(judge, str(client.base_url))
        if refusal:
            raise ProbeRefused(refusal)
        try:
            response = await client.chat.completions.create(
                model=judge.model, messages=_PROBE_MESSAGES, max_tokens=5, logprobs=True, top_logprobs=2
            )
            choice = response.choices[0]
            found["logprobs"] = bool(choice.logprobs and choice.logprobs.content)
        except openai.BadRequestError:
            found["logprobs"] = False
        try:
            response = await client.chat.completions.create(
                model=judge.model, messages=_PROBE_MESSAGES, max_tokens=20, response_format=_PROBE_SCHEMA
            )
            answer = json.loads(response.choices[0].message.content or "")
            found["json_schema"] = isinstance(answer, dict) and isinstance(answer.get("ok"), bool)
        except (openai.BadRequestError, json.JSONDecodeError):
            found["json_schema"] = False
    finally:
        await client.close()
    return found


class ProbeRefused(Exception):
    """The judge's key variable or URL breaks the rules: the probe sends nothing."""


def judge_probe(*, judge: Judge) -> dict:
    """Ask the endpoint once whether it offers token logprobs and JSON-schema output; store the answer.

    An unreachable endpoint, or a judge the key and URL rules refuse (nothing is sent then), leaves the
    stored capabilities as they were (a run then uses plain text and no logprobs) and the error is kept
    in `capabilities["probe_error"]`.
    """
    import openai

    try:
        # On a thread of its own: the caller may itself be inside an event loop (an async view, a test
        # driving a browser), where asyncio.run() refuses to start.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
            found = thread.submit(asyncio.run, _probe(judge)).result()
    except (ProbeRefused, openai.OpenAIError) as exc:
        message = str(exc) if isinstance(exc, ProbeRefused) else judge_client.describe_error(exc, judge)[0]
        judge.capabilities = {**judge.capabilities, "probe_error": message, "probed_at": timezone.now().isoformat()}
    else:
        judge.capabilities = {**found, "probed_at": timezone.now().isoformat()}
    judge.save(update_fields=["capabilities"])
    return judge.capabilities
