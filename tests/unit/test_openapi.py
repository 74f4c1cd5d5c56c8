"""Each service's OpenAPI tells a client what to send and what comes back.

Built in process from the same `create_api` the services serve; nothing is started.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from saldo_platform.http.app import create_api
from saldo_platform.service import definitions
from saldo_platform.sql import open_database

SERVICES = list(definitions())
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def openapi(service: str, tmp_path: Path) -> dict[str, Any]:
    definition = definitions()[service]
    db = open_database(f"sqlite:{tmp_path / 'unused.sqlite'}")  # never connected
    api = create_api(service, definition.router, {"application": None, "api_keys": None}, db)
    return api.openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in schema["paths"].items() if path.startswith("/v1/")
            for method, op in ops.items()]


# Documents are answered as themselves (a PDF, a UBL XML file), not as JSON.
DOCUMENT_TYPES = {"application/pdf", "application/xml"}


def success_ref(op: dict[str, Any]) -> str:
    (status, answer), = [(s, a) for s, a in op["responses"].items() if s.startswith("2")]
    if "application/json" not in answer["content"] and set(answer["content"]) <= DOCUMENT_TYPES:
        return "document:" + ",".join(sorted(answer["content"]))
    return str(answer["content"]["application/json"]["schema"].get("$ref", ""))


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_says_how_to_authenticate_and_which_problems_it_answers(
        service: str, tmp_path: Path) -> None:
    schema = openapi(service, tmp_path)
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for method, path, op in operations(schema):
        assert op["security"] == [{"bearer": []}], (method, path)
        for status in ("401", "403", "404", "413", "422"):
            problem = op["responses"][status]["content"]["application/problem+json"]["schema"]
            assert problem == PROBLEM_REF, (method, path, status)
        headers = {p["name"].lower(): p for p in op.get("parameters", []) if p["in"] == "header"}
        if method == "post":
            assert headers["idempotency-key"]["required"] is True, path
            assert {"400", "409"} <= set(op["responses"]), path
        if "if-match" in headers:
            assert "412" in op["responses"], path


@pytest.mark.parametrize("service", SERVICES)
def test_every_answer_has_a_precise_schema(service: str, tmp_path: Path) -> None:
    schema = openapi(service, tmp_path)
    models = schema["components"]["schemas"]
    for method, path, op in operations(schema):
        ref = success_ref(op)
        assert ref, f"{method.upper()} {path} answers an untyped body"
        if ref.startswith("document:"):
            assert method == "get" and path.endswith(("/pdf", "/ubl")), (method, path, ref)
            continue
        model = models[ref.rsplit("/", 1)[1]]
        assert model.get("properties") and model.get("required"), (method, path, model)
        for name, prop in model["properties"].items():
            assert prop not in ({}, {"type": "object"}, {"additionalProperties": True, "type": "object"}), (
                f"{method.upper()} {path}: field {name} is untyped")


@pytest.mark.parametrize("service", SERVICES)
def test_lists_page_by_cursor(service: str, tmp_path: Path) -> None:
    schema = openapi(service, tmp_path)
    for method, path, op in operations(schema):
        if method == "get" and success_ref(op).split("/")[-1].startswith("Page"):
            names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
            assert {"limit", "after"} <= names, path


@pytest.mark.parametrize("service", SERVICES)
def test_a_command_answers_with_the_representation_a_get_of_its_resource_returns(
        service: str, tmp_path: Path) -> None:
    schema = openapi(service, tmp_path)
    gets = {path: success_ref(op) for method, path, op in operations(schema) if method == "get"}
    for method, path, op in operations(schema):
        if method != "post":
            continue
        # POST /v1/things creates what GET /v1/things/{id} shows; POST /v1/things/{id}/verb
        # changes what GET /v1/things/{id} (or a GET under it) shows.
        related = [ref for get, ref in gets.items()
                   if re.fullmatch(re.escape(path) + r"/\{[a-z_]+\}", get)
                   or (get.endswith("}") and path.startswith(get + "/"))]
        assert related, f"POST {path} has no GET of the resource it changes"
        assert success_ref(op) in related, f"POST {path} answers {success_ref(op)}, GETs show {related}"
