"""drf-spectacular hooks: the published schema lists the v1 paths only (the unversioned aliases are the same
views) and documents the one error body on every operation, so a client generated from it knows both."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

V1_PREFIX = "/api/v1/"

ERROR_STATUSES = {
    "400": "Invalid input: `field` names the input at fault, `errors` lists every problem.",
    "401": "Not signed in (no session, no valid token).",
    "403": "Signed in without the role this needs.",
    "404": "No such object, or none you may see.",
    "429": "Too many requests: retry after `Retry-After` seconds.",
    "503": "The database is unavailable (`code` database_unavailable): retry after `Retry-After` seconds.",
}


def v1_endpoints_only(endpoints, **kwargs):
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(V1_PREFIX)]


def error_responses(result, generator, request, public):
    """The error body as the answer of every error status: added where an operation does not list the status,
    and put in place of what a view declared for one (v1's renderer answers every 4xx in this shape)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(
        "ErrorItem",
        {
            "type": "object",
            "properties": {
                "detail": {"type": "string"},
                "code": {"type": "string"},
                "field": {"type": "string", "nullable": True},
            },
            "required": ["detail", "code", "field"],
        },
    )
    components.setdefault(
        "Error",
        {
            "type": "object",
            "description": "The one error body of the API.",
            "properties": {
                "detail": {"type": "string"},
                "code": {"type": "string"},
                "field": {"type": "string", "nullable": True},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorItem"}},
            },
            "required": ["detail", "code", "field"],
        },
    )
    reference = {"$ref": "#/components/schemas/Error"}
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code, description in ERROR_STATUSES.items():
                responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                if code.startswith("4") or code == "503":
                    response["content"] = {"application/json": {"schema": reference}}
    return result


class TandemAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, with operationIds that cannot collide: a GET of a collection
    (`/campaigns/{ref}/review/`) is `..._list`, a GET of one thing (`.../review/{item_id}/`) `..._retrieve`,
    whatever the view's serializer says (the default names both `_retrieve` for plain APIViews)."""

    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        if self.method != "GET":
            return operation_id
        stem = operation_id.removesuffix("_list").removesuffix("_retrieve")
        return f"{stem}_retrieve" if self.path.rstrip("/").endswith("}") else f"{stem}_list"
