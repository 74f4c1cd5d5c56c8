"""Integration events on the wire: CloudEvents Kafka binding, binary mode, JSON body."""

from __future__ import annotations

import json
from datetime import UTC, datetime

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
        ("ce_time", _rfc3339(event.occurred_at).encode()),
        ("ce_subject", str(event.aggregate_id).encode()),
        ("content-type", b"application/json"),
    ]
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    return str(event.aggregate_id).encode(), event.model_dump_json().encode(), headers


def _rfc3339(instant: datetime) -> str:
    """CloudEvents `time` is RFC 3339, with an offset; a naive instant is UTC (rule M2)."""
    return (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).isoformat()


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
    # `1.0 == 1` and `True == 1` in Python: only a JSON integer is a version (rule M1).
    if type(version) is not int or version != cls.SCHEMA_VERSION:
        raise UndecodableMessage(
            f"unsupported schema_version {version!r} for {event_type}"
            f" (supported: {cls.SCHEMA_VERSION})"
        )
    try:
        # A tolerant reader: fields a newer producer added within this schema version (the
        # backward-compatible changes DESIGN.md allows) are ignored, not a reason to dead-letter.
        return cls.model_validate(body, extra="ignore")
    except ValidationError as e:
        raise UndecodableMessage(f"invalid {event_type}: {e.errors(include_url=False)}") from None
