"""Integration events on the wire: CloudEvents Kafka binding, binary mode, JSON body."""

from __future__ import annotations

import json

from pydantic import ValidationError

from saldo_events.envelope import EVENT_TYPES, IntegrationEvent

Headers = list[tuple[str, bytes]]


class UndecodableMessage(Exception):
    """A message no consumer can apply: it goes to the dead-letter topic with this reason."""


def encode(event: IntegrationEvent) -> tuple[bytes, bytes, Headers]:
    """Key (the aggregate id, so one aggregate's events stay in order), value and headers."""
    headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(event.event_id).encode()),
        ("ce_type", event.event_type().encode()),
        ("ce_source", event.source().encode()),
        ("ce_time", event.occurred_at.isoformat().encode()),
        ("ce_subject", str(event.aggregate_id).encode()),
        ("content-type", b"application/json"),
    ]
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    return str(event.aggregate_id).encode(), event.model_dump_json().encode(), headers


def header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def decode(headers: Headers, value: bytes) -> IntegrationEvent:
    event_type = header(headers, "ce_type")
    if event_type is None:
        raise UndecodableMessage("missing ce_type header")
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UndecodableMessage(f"unknown event type {event_type!r}")
    try:
        body = json.loads(value)
    except (ValueError, UnicodeDecodeError) as e:
        raise UndecodableMessage(f"body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise UndecodableMessage("body is not a JSON object")
    version = body.get("schema_version")
    if version != cls.SCHEMA_VERSION:
        raise UndecodableMessage(
            f"unsupported schema_version {version!r} for {event_type} (supported: {cls.SCHEMA_VERSION})"
        )
    try:
        return cls.model_validate(body)
    except ValidationError as e:
        raise UndecodableMessage(f"invalid {event_type}: {e.errors(include_url=False)}") from None
