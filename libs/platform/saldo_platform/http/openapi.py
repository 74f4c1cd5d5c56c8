"""What a client must send and can get back, written into every service's OpenAPI once.

Routes declare their own bodies, response models and `If-Match` (a header dependency); this
adds what every route shares: the bearer scheme, the `Idempotency-Key` header on each POST and
the problem responses (`application/problem+json`) each kind of route can answer with.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from saldo_platform.http.problems import PROBLEM, Problem

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": True,
    "description": "a new unique value (e.g. a UUID) per command; resend it unchanged to retry "
                   "safely: the command runs once and the retry gets the first answer (48 h)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

WHY = {
    400: "the request is malformed (e.g. no Idempotency-Key, a cursor that was not ours)",
    401: "no valid API key (send `Authorization: Bearer sk_…`)",
    403: "the API key's roles do not allow this",
    404: "no such resource in the caller's business unit",
    409: "the resource is in a state that does not allow this, or changed meanwhile",
    412: "If-Match names a version that is no longer current",
    413: "the body is larger than 1 MiB",
    422: "the request breaks a rule or a field is invalid; `detail` says which",
}


def _problems(statuses: list[int]) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Problem"}
    return {str(s): {"description": WHY[s], "content": {PROBLEM: {"schema": ref}}} for s in statuses}


def install(api: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if api.openapi_schema:
            return api.openapi_schema
        schema = get_openapi(title=api.title, version=api.version, description=api.description,
                             routes=api.routes)
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        components["securitySchemes"] = {"bearer": {
            "type": "http", "scheme": "bearer", "bearerFormat": "sk_<key id>_<secret>",
            "description": "an API key from `saldo keys create`; it fixes the business unit"}}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for method, operation in operations.items():
                statuses = [401, 403, 404, 413, 422]
                params = operation.setdefault("parameters", [])
                if method == "post":
                    params.insert(0, IDEMPOTENCY_KEY)
                    statuses += [400, 409]
                elif any(p.get("name") == "after" for p in params):
                    statuses += [400]  # lists: a cursor that was not ours
                if any(p.get("in") == "header" and p.get("name", "").lower() == "if-match"
                       for p in params):
                    statuses += [412]
                operation["security"] = [{"bearer": []}]
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)  # FastAPI's own HTTPValidationError: we answer a Problem
                responses.update(_problems(sorted(set(statuses))))
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        api.openapi_schema = schema
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
