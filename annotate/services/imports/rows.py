"""Turning one imported row, in any of the layouts we accept, into an item's fields (pure)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from operator import attrgetter

import orjson

from annotate import schema as label_schema

from .errors import RowProblem
from .limits import depth_refusal, json_depth_over, max_json_depth

ID_KEYS = ("id", "external_id", "uid", "question_id")
PAIR_LAYOUTS = (
    ("response_a", "response_b"),
    ("chosen", "rejected"),
    ("response_1", "response_2"),
    ("output_1", "output_2"),
)
MODEL_LAYOUTS = (("model_a", "model_b"), ("model_1", "model_2"), ("chosen_model", "rejected_model"))
RESPONSE_KEYS = ("response", "output", "completion", "orig_response")
REFERENCE_KEYS = ("reference", "reference_answer", "orig_reference_answer")
ROLES = {"system", "user", "assistant", "tool", "developer"}
MAX_ID_LENGTH = 200


@dataclass
class ItemRow:
    external_id: str
    prompt: str | list
    response_a: str = ""
    response_b: str = ""
    model_a: str = ""
    model_b: str = ""
    response: str = ""
    reference: str = ""
    metadata: dict = field(default_factory=dict)
    gold_label: dict | None = None
    gold_explanation: str = ""
    content_hash: str = ""

    CONTENT_FIELDS = (
        "prompt",
        "response_a",
        "response_b",
        "model_a",
        "model_b",
        "response",
        "reference",
        "metadata",
        "gold_label",
    )

    def content(self) -> dict:
        content = dict(zip(self.CONTENT_FIELDS, _content_of(self), strict=True))
        if self.gold_explanation:
            # Only when given, so items imported before explanations existed keep their content hash.
            content["gold_explanation"] = self.gold_explanation
        return content


_content_of = attrgetter(*ItemRow.CONTENT_FIELDS)


def content_hash(content: dict) -> str:
    """SHA-256 of the content's canonical JSON (sorted keys, compact, UTF-8)."""
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _text(row: dict, key: str, *, required: bool = True) -> str:
    value = row.get(key)
    if value is None:
        if required:
            raise RowProblem("missing", key)
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RowProblem(f"must be a string, not {type(value).__name__}", key)
    return value


def _cell_json(value: str, key: str) -> object:
    """A cell's JSON, refused when it nests deeper than TANDEM_IMPORT_MAX_JSON_DEPTH (never a RecursionError)."""
    limit = max_json_depth()
    try:
        decoded = orjson.loads(value)  # several times json's speed; json words what orjson refuses
    except orjson.JSONDecodeError:
        try:
            decoded = json.loads(value)
        except RecursionError:
            raise RowProblem(depth_refusal(limit), key) from None
    if value.count("[") + value.count("{") > limit and json_depth_over(decoded, limit):
        raise RowProblem(depth_refusal(limit), key)
    return decoded


def _maybe_json(value: object, key: str) -> object:
    """CSV cells carry messages and metadata as JSON text.

    Text that merely looks like JSON (a response that is "[1, 2]") stays text: only a list of
    objects with a "role" becomes messages, and only metadata and gold labels decode objects.
    """
    if not isinstance(value, str):
        return value
    head = value[:1]
    if head.isspace():  # (not lstrip() first: that copies every response of every row)
        head = value.lstrip()[:1]
    if head == "{" and key in ("metadata", "gold_label"):
        try:
            return _cell_json(value, key)
        except json.JSONDecodeError as exc:
            raise RowProblem(f"invalid JSON: {exc.msg}", key) from None
    if head == "[":
        try:
            decoded = _cell_json(value, key)
        except json.JSONDecodeError:
            return value
        if isinstance(decoded, list) and decoded and all(isinstance(m, dict) and "role" in m for m in decoded):
            return decoded
    return value


def messages_validate(value: list, key: str) -> list[dict]:
    if not value:
        raise RowProblem("an empty list of messages", key)
    out = []
    for i, message in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(message, dict):
            raise RowProblem("a message must be an object {role, content}", where)
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RowProblem(f"role {role!r} is not one of {', '.join(sorted(ROLES))}", f"{where}.role")
        if not isinstance(content, str):
            raise RowProblem("content must be a string", f"{where}.content")
        out.append({"role": role, "content": content})
    return out


def _prompt(row: dict) -> str | list:
    if "prompt" in row:
        value = _maybe_json(row["prompt"], "prompt")
        if isinstance(value, list):
            return messages_validate(value, "prompt")
        text = _text({"prompt": value}, "prompt")
        if not text.strip():
            raise RowProblem("empty", "prompt")
        return text
    if "instruction" in row:
        instruction = _text(row, "instruction")
        extra = _text(row, "input", required=False)
        return f"{instruction}\n\n{extra}" if extra.strip() else instruction
    for key in ("input", "question", "orig_instruction"):
        if key in row:
            text = _text(row, key)
            if not text.strip():
                raise RowProblem("empty", key)
            return text
    raise RowProblem("missing (a row needs 'prompt', or 'instruction' [+ 'input'], or 'input')", "prompt")


def _conversation_response(value: object, key: str) -> tuple[list | None, str]:
    """`chosen`/`rejected` may be whole conversations: the prompt is all but the last message."""
    value = _maybe_json(value, key)
    if isinstance(value, list):
        messages = messages_validate(value, key)
        if messages[-1]["role"] != "assistant":
            raise RowProblem("the last message of a conversation must be the assistant's response", key)
        return messages[:-1], messages[-1]["content"]
    if isinstance(value, str):
        return None, value
    raise RowProblem(f"must be a string or a list of messages, not {type(value).__name__}", key)


def _pair(row: dict) -> tuple[str, str, str, str, str | list | None]:
    for key_a, key_b in PAIR_LAYOUTS:
        if key_a in row or key_b in row:
            if key_a not in row:
                raise RowProblem("missing", key_a)
            if key_b not in row:
                raise RowProblem("missing", key_b)
            prefix_a, text_a = _conversation_response(row[key_a], key_a)
            prefix_b, text_b = _conversation_response(row[key_b], key_b)
            derived = None
            if prefix_a is not None or prefix_b is not None:
                if prefix_a != prefix_b:
                    raise RowProblem(
                        f"'{key_a}' and '{key_b}' must share the same conversation before the response", key_b
                    )
                derived = prefix_a or None
            return key_a, key_b, text_a, text_b, derived
    raise RowProblem(
        "missing: a pairwise row needs two responses (response_a/response_b, chosen/rejected, "
        "response_1/response_2 or output_1/output_2)",
        "response_a",
    )


PROMPT_KEYS = ("prompt", "instruction", "input", "question", "orig_instruction")
_SET_ASIDE = frozenset((*PROMPT_KEYS, "metadata", "gold_label", "gold_explanation"))
_NO_METADATA = object()


def item_row_parse(row: object, *, kind: str, schema: dict) -> ItemRow:
    """One imported row → ItemRow, or RowProblem naming the field. Unknown fields go to metadata.

    Called once per imported row (a million times for a large file), so it is written for speed:
    one pass over each list of layouts, no intermediate objects beyond the item itself.
    """
    if not isinstance(row, dict):
        raise RowProblem(f"a row must be a JSON object, not {type(row).__name__}")
    id_key, raw_id = "id", None
    for key in ID_KEYS:
        if key in row:
            id_key, raw_id = key, row[key]
            break
    used = [id_key]
    if raw_id is not None:
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            raise RowProblem(f"must be a string or an integer, not {type(raw_id).__name__}", id_key)
        external_id = str(raw_id).strip()
        if not external_id:
            raise RowProblem("empty", id_key)
        if len(external_id) > MAX_ID_LENGTH:
            raise RowProblem(f"longer than {MAX_ID_LENGTH} characters", id_key)
    else:
        external_id = ""

    item = ItemRow(external_id=external_id, prompt="")
    if kind in ("pairwise", "both"):
        key_a, key_b, item.response_a, item.response_b, derived_prompt = _pair(row)
        used += (key_a, key_b)
        if derived_prompt is not None and not any(k in row for k in ("prompt", "instruction", "input", "question")):
            item.prompt = derived_prompt
        for model_a, model_b in MODEL_LAYOUTS:
            if model_a in row or model_b in row:
                item.model_a = _text(row, model_a, required=False)
                item.model_b = _text(row, model_b, required=False)
                used += (model_a, model_b)
                break
    if kind == "rubric":
        key = next((k for k in RESPONSE_KEYS if k in row), None)
        if key is None:
            raise RowProblem(f"missing: a rubric row needs one response ({', '.join(RESPONSE_KEYS)})", "response")
        item.response = _text(row, key)
        used.append(key)
    if not item.prompt:
        item.prompt = _prompt(row)
    for ref_key in REFERENCE_KEYS:
        if ref_key in row:
            item.reference = _text(row, ref_key, required=False)
            used.append(ref_key)
            break

    metadata = row.get("metadata", _NO_METADATA)
    if metadata is _NO_METADATA:
        metadata = {}
    elif not isinstance(metadata, dict):
        metadata = _maybe_json(metadata, "metadata")
        if not isinstance(metadata, dict):
            raise RowProblem("must be a JSON object", "metadata")
    if "gold_label" in row:
        gold = _maybe_json(row["gold_label"], "gold_label")
        try:
            item.gold_label = label_schema.label_validate(
                schema=schema, kind=kind, label=gold, partial=True, source="gold"
            )
        except label_schema.LabelError as exc:
            raise RowProblem(str(exc).removeprefix("label").lstrip(".: ") or str(exc), "gold_label") from None
    if "gold_explanation" in row:
        item.gold_explanation = _text(row, "gold_explanation", required=False)
        if item.gold_explanation and item.gold_label is None:
            raise RowProblem("is given without a gold_label to explain", "gold_explanation")
    extras = {k: v for k, v in row.items() if k not in _SET_ASIDE and k not in used}
    if extras:
        clash = sorted(extras.keys() & metadata.keys())
        if clash:
            raise RowProblem(f"'{clash[0]}' is both a column and a key of metadata", clash[0])
        metadata = {**metadata, **extras}
    item.metadata = metadata
    canonical = orjson.dumps(item.content(), option=orjson.OPT_SORT_KEYS)
    if b"\\u0000" in canonical:
        raise RowProblem("contains a NUL character (\\u0000), which the database cannot store")
    item.content_hash = hashlib.sha256(canonical).hexdigest()
    if not item.external_id:
        # Rows without an id (LLMBar, many public sets) get one from their content, so
        # re-importing the same file stays idempotent.
        item.external_id = "h-" + item.content_hash[:16]
    return item


def changed_fields(existing: dict, new: ItemRow) -> list[str]:
    return [name for name in ItemRow.CONTENT_FIELDS if existing.get(name) != getattr(new, name)]
