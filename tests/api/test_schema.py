"""The published OpenAPI schema: generated with zero drf-spectacular warnings, v1 paths only, every operation
with a request (where it takes a body) and a response schema, and the one error body documented."""

import json
import re

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db


def test_spectacular_validates_with_no_warning(tmp_path):
    out = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(out))
    schema = json.loads(out.read_text())
    assert schema["openapi"].startswith("3.")


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def test_only_v1_paths_are_published(schema):
    assert schema["paths"] and all(path.startswith("/api/v1/") for path in schema["paths"])


def _api_routes() -> set[str]:
    """Every v1 route of the URL conf as an OpenAPI path, so a new view cannot be left out of the schema."""

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern)

    routes = set()
    for route in walk(get_resolver().url_patterns):
        if route.startswith("api/v1/") and not route.startswith("api/v1/schema"):
            routes.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return routes


def test_every_v1_route_is_in_the_schema(schema):
    published = {re.sub(r"\{\w+\}", "{}", path) for path in schema["paths"]}
    missing = {route for route in _api_routes() if re.sub(r"\{\w+\}", "{}", route) not in published}
    assert not missing, f"routes missing from the schema: {sorted(missing)}"


def test_every_operation_has_a_response_schema_and_the_error_body(schema):
    problems = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            success = {code: r for code, r in responses.items() if code.startswith("2")}
            if not success:
                problems.append(f"{method.upper()} {path}: no success response")
            for code, response in success.items():
                if code != "204" and "content" not in response:
                    problems.append(f"{method.upper()} {path} {code}: no response body schema")
            for code in ("400", "401", "403", "404", "503"):
                body = responses.get(code, {}).get("content", {}).get("application/json", {}).get("schema", {})
                if body.get("$ref") != "#/components/schemas/Error":
                    problems.append(f"{method.upper()} {path} {code}: not the one error body")
            if method in ("post", "put", "patch") and "requestBody" not in operation:
                takes_none = path.endswith(("/probe/", "/route/", "/cancel/", "/revoke/"))
                if not takes_none:
                    problems.append(f"{method.upper()} {path}: no request body schema")
    assert not problems, "\n".join(problems)


def test_operation_ids_are_unique(schema):
    ids = [op["operationId"] for methods in schema["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))


def test_the_schema_is_served_at_v1_and_at_the_alias(admin_api):
    for url in ("/api/v1/schema/", "/api/schema/"):
        response = admin_api.get(url, HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert response.status_code == 200, url
        paths = json.loads(response.content)["paths"]
        assert "/api/v1/campaigns/{ref}/items/import/" in paths and "/api/campaigns/{ref}/" not in paths
