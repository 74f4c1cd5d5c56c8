"""Integration events are a contract (DESIGN.md, "Integration events"); unit tests, no I/O.

Each event type's JSON Schema is pinned by `tests/contracts/<event type>.json`. A change to an
event fails here until the snapshot is updated on purpose:

    SALDO_UPDATE_CONTRACTS=1 .venv/bin/pytest tests/test_contracts.py

and the new snapshot is reviewed with the change: within a `schema_version` only backward
compatible changes are allowed (a new optional field, a wider enum); anything else needs a new
schema version that consumers can tell apart.

The wire format is the CloudEvents Kafka binding in binary mode; `decode` refuses what no
consumer can apply (it then goes to the dead-letter topic), including money that is not an
integer (rule M1).
"""

from __future__ import annotations

import difflib
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from saldo_events import EVENT_TYPES, IntegrationEvent, UndecodableMessage, decode, encode
from saldo_events.envelope import Money
from saldo_events.invoicing import InvoiceIssued, InvoiceLine
from saldo_events.payments import AmountReleased

CONTRACTS = Path(__file__).parent / "contracts"
UPDATE = os.environ.get("SALDO_UPDATE_CONTRACTS") == "1"
HOW_TO_UPDATE = ("If the change is deliberate and backward compatible, update the snapshot with "
                 "SALDO_UPDATE_CONTRACTS=1 .venv/bin/pytest tests/test_contracts.py and commit it "
                 "with the change; otherwise add a new schema_version (DESIGN.md).")


def schema_text(cls: type[IntegrationEvent]) -> str:
    return json.dumps(cls.model_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def snapshot(event_type: str) -> Path:
    return CONTRACTS / f"{event_type}.json"


# --- the JSON Schemas are pinned ------------------------------------------------------------


def test_the_walking_skeleton_events_are_all_registered() -> None:
    expected = {
        "dk.saldo.invoicing.InvoiceIssued", "dk.saldo.invoicing.CreditNoteIssued",
        "dk.saldo.payments.PaymentReceived", "dk.saldo.payments.PaymentAllocated",
        "dk.saldo.payments.AmountReleased", "dk.saldo.refunds.RefundRequested",
        "dk.saldo.refunds.RefundDrafted", "dk.saldo.refunds.RefundSucceeded",
        "dk.saldo.payouts.PayoutDrafted",
        "dk.saldo.payouts.PayoutMarkedPaid", "dk.saldo.accounting-sync.PostingRecorded",
    }
    assert expected <= set(EVENT_TYPES)
    for event_type, cls in EVENT_TYPES.items():
        assert cls.event_type() == event_type
        assert event_type == f"dk.saldo.{cls.SERVICE}.{cls.__name__}"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_the_json_schema_is_pinned_by_its_snapshot(event_type: str) -> None:
    current = schema_text(EVENT_TYPES[event_type])
    path = snapshot(event_type)
    if UPDATE:
        CONTRACTS.mkdir(exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != current:
            path.write_text(current, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{event_type} is a new integration event without a pinned contract "
                    f"({path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
                    f" is missing). {HOW_TO_UPDATE}")
    pinned = path.read_text(encoding="utf-8")
    if pinned != current:
        diff = "".join(difflib.unified_diff(
            pinned.splitlines(keepends=True), current.splitlines(keepends=True),
            fromfile=f"pinned {path.name}", tofile=f"current {event_type}"))
        pytest.fail(f"The JSON Schema of {event_type} changed; other services depend on it.\n"
                    f"{diff}\n{HOW_TO_UPDATE}", pytrace=False)


def test_no_snapshot_is_left_without_its_event() -> None:
    """Removing or renaming an event breaks its consumers: that must be a deliberate step too."""
    if UPDATE:
        for path in CONTRACTS.glob("*.json"):
            if path.stem not in EVENT_TYPES:
                path.unlink()
        return
    orphans = sorted(p.name for p in CONTRACTS.glob("*.json") if p.stem not in EVENT_TYPES)
    assert not orphans, (f"snapshots of event types that no longer exist: {orphans}. "
                         f"Consumers may still expect them. {HOW_TO_UPDATE}")


def _walk(node: Any, path: str = "$") -> list[tuple[str, Any]]:
    found = [(path, node)]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _walk(value, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_no_contract_has_a_float(event_type: str) -> None:
    """Rule M1: amounts are integers in minor units, in the JSON Schema too."""
    schema = EVENT_TYPES[event_type].model_json_schema()
    floats = [p for p, node in _walk(schema)
              if isinstance(node, dict) and node.get("type") == "number"]
    assert not floats, f"{event_type} has non-integer numbers at {floats}"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_carries_the_envelope(event_type: str) -> None:
    schema = EVENT_TYPES[event_type].model_json_schema()
    envelope = {"event_id", "business_unit", "aggregate_id", "aggregate_version", "occurred_at",
                "actor", "correlation_id", "causation_id", "traceparent", "schema_version"}
    assert envelope <= set(schema["properties"])
    assert {"event_id", "business_unit", "aggregate_id", "aggregate_version", "occurred_at",
            "actor", "correlation_id"} <= set(schema["required"])
    assert schema.get("additionalProperties") is False


# --- the wire format: CloudEvents Kafka binding, binary mode ---------------------------------

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def invoice_issued(**changes: Any) -> InvoiceIssued:
    fields: dict[str, Any] = {
        "event_id": uuid4(), "business_unit": "bu_a", "aggregate_id": uuid4(),
        "aggregate_version": 1, "occurred_at": datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC),
        "actor": "api-key:k1", "correlation_id": "corr-1", "causation_id": None,
        "traceparent": TRACEPARENT, "invoice_id": uuid4(), "number": 1001, "customer_id": "cust-1",
        "total": Money(amount=49900, currency="DKK"), "due_date": date(2026, 12, 31),
        "lines": [InvoiceLine(description="Magazine, 12 months", amount=49900)],
    }
    return InvoiceIssued(**{**fields, **changes})


def headers_of(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    names = [k for k, _ in headers]
    assert len(names) == len(set(names)), f"a header is repeated: {names}"
    return {k: v.decode() for k, v in headers}


def test_encode_then_decode_gives_the_same_event() -> None:
    event = invoice_issued()
    key, value, headers = encode(event)

    assert key == str(event.aggregate_id).encode()  # one aggregate's events stay in order
    h = headers_of(headers)
    assert h == {
        "ce_specversion": "1.0",
        "ce_id": str(event.event_id),
        "ce_type": "dk.saldo.invoicing.InvoiceIssued",
        "ce_source": "/saldo/invoicing",
        "ce_time": "2026-11-20T10:00:00.123456+00:00",
        "ce_subject": str(event.aggregate_id),
        "content-type": "application/json",
        "traceparent": TRACEPARENT,
    }
    body = json.loads(value)
    assert body["total"] == {"amount": 49900, "currency": "DKK"}
    assert body["schema_version"] == 1

    decoded = decode(headers, value)
    assert type(decoded) is InvoiceIssued
    assert decoded == event


def test_ce_time_is_rfc3339_even_for_a_naive_instant() -> None:
    naive = invoice_issued(occurred_at=datetime(2026, 11, 20, 10, 0, 0))
    assert headers_of(encode(naive)[2])["ce_time"] == "2026-11-20T10:00:00+00:00"
    copenhagen = invoice_issued(occurred_at=datetime.fromisoformat("2026-11-20T11:00:00+01:00"))
    assert headers_of(encode(copenhagen)[2])["ce_time"] == "2026-11-20T11:00:00+01:00"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_survives_the_wire(event_type: str) -> None:
    """Built from its JSON Schema's required fields, each event round-trips through Kafka."""
    cls = EVENT_TYPES[event_type]
    event = cls.model_validate(_example(cls.model_json_schema()))
    key, value, headers = encode(event)
    assert headers_of(headers)["ce_type"] == event_type
    assert "traceparent" not in headers_of(headers)  # only sent when the event has one
    assert decode(headers, value) == event


def _example(schema: dict[str, Any], node: dict[str, Any] | None = None) -> Any:
    """A minimal valid instance of a JSON Schema node (enough for our contracts)."""
    node = schema if node is None else node
    if "$ref" in node:
        return _example(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[-1]])
    if "anyOf" in node:
        return _example(schema, node["anyOf"][0])
    if "enum" in node:
        return node["enum"][0]
    if "const" in node:
        return node["const"]
    kind, fmt = node.get("type"), node.get("format")
    if kind == "object":
        return {name: _example(schema, sub) for name, sub in node.get("properties", {}).items()
                if name in node.get("required", [])}
    if kind == "array":
        return [_example(schema, node["items"])]
    if kind == "integer":
        return 1 if node.get("default") is None else node["default"]
    if kind == "null":
        return None
    if kind == "string":
        if fmt == "uuid":
            return str(uuid4())
        if fmt == "date-time":
            return "2026-11-20T10:00:00+00:00"
        if fmt == "date":
            return "2026-12-31"
        if "pattern" in node and "A-Z" in node["pattern"]:
            return "DKK"
        return "x"
    raise AssertionError(f"no example for schema node {node}")


# --- what decode refuses (the message then goes to the dead-letter topic) -----------------------


def _wire(event: IntegrationEvent | None = None) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
    _, value, headers = encode(event or invoice_issued())
    return headers, json.loads(value)


Headers = list[tuple[str, bytes]]


def _with_header(headers: Headers, name: str, value: bytes | None) -> Headers:
    kept = [(k, v) for k, v in headers if k != name]
    return kept if value is None else [*kept, (name, value)]


def test_decode_refuses_an_unknown_event_type() -> None:
    headers, body = _wire()
    with pytest.raises(UndecodableMessage, match="unknown event type"):
        decode(_with_header(headers, "ce_type", b"dk.saldo.invoicing.InvoiceEaten"),
               json.dumps(body).encode())


def test_decode_refuses_a_message_without_ce_type() -> None:
    headers, body = _wire()
    with pytest.raises(UndecodableMessage, match="missing ce_type"):
        decode(_with_header(headers, "ce_type", None), json.dumps(body).encode())


@pytest.mark.parametrize("value", [b"not json", b'{"event_id": ', b"\xff\xfe\x00", b"[1, 2]",
                                   b"null"])
def test_decode_refuses_a_body_that_is_not_a_json_object(value: bytes) -> None:
    headers, _ = _wire()
    with pytest.raises(UndecodableMessage, match="JSON"):
        decode(headers, value)


@pytest.mark.parametrize("amount", [1.5, 1.0, 49900.0, "49900", True])
def test_decode_refuses_money_that_is_not_an_integer(amount: Any) -> None:
    """Rule M1: integer minor units; 1.0 is refused too, and so are strings and booleans."""
    headers, body = _wire()
    body["total"]["amount"] = amount
    with pytest.raises(UndecodableMessage, match="amount"):
        decode(headers, json.dumps(body).encode())


def test_decode_refuses_a_float_amount_anywhere_in_the_event() -> None:
    headers, body = _wire()
    body["lines"][0]["amount"] = 49900.0
    with pytest.raises(UndecodableMessage, match="amount"):
        decode(headers, json.dumps(body).encode())
    released = AmountReleased(
        event_id=uuid4(), business_unit="bu_a", aggregate_id=uuid4(), aggregate_version=3,
        occurred_at=datetime.now(UTC), actor="policy:x", correlation_id="c", payment_id=uuid4(),
        invoice_id=uuid4(), credit_note_id=None, customer_id="cust-1",
        amount=Money(amount=100, currency="DKK"))
    headers, body = _wire(released)
    body["amount"] = {"amount": 1.5, "currency": "DKK"}
    with pytest.raises(UndecodableMessage, match="amount"):
        decode(headers, json.dumps(body).encode())


def test_decode_refuses_a_version_that_is_not_an_integer() -> None:
    headers, body = _wire()
    body["aggregate_version"] = 1.0  # rule M1: no floats anywhere
    with pytest.raises(UndecodableMessage, match="aggregate_version"):
        decode(headers, json.dumps(body).encode())


@pytest.mark.parametrize("version", [2, 0, None, "1", 1.0, True])
def test_decode_refuses_an_unsupported_schema_version(version: Any) -> None:
    headers, body = _wire()
    if version is None:
        del body["schema_version"]
    else:
        body["schema_version"] = version
    with pytest.raises(UndecodableMessage, match="schema_version"):
        decode(headers, json.dumps(body).encode())


def test_decode_refuses_an_event_without_a_required_field() -> None:
    headers, body = _wire()
    del body["invoice_id"]
    with pytest.raises(UndecodableMessage, match="invalid"):
        decode(headers, json.dumps(body).encode())


def test_decode_ignores_fields_a_newer_producer_added() -> None:
    """A tolerant reader: an additive, backward-compatible change must not dead-letter events
    at consumers that were not redeployed yet (producers still may not send unknown fields)."""
    event = invoice_issued()
    headers, body = _wire(event)
    body["delivered_by"] = "e-invoice"
    body["total"]["vat"] = 9980
    body["lines"][0]["sku"] = "MAG-12"
    assert decode(headers, json.dumps(body).encode()) == event
    with pytest.raises(ValueError):  # ... but building one with an unknown field fails at once
        InvoiceIssued(**{**event.model_dump(), "delivered_by": "e-invoice"})


def test_decode_uses_the_type_header_not_the_body() -> None:
    """The body of one type under another type's header is refused, not misread."""
    headers, body = _wire()
    with pytest.raises(UndecodableMessage):
        decode(_with_header(headers, "ce_type", b"dk.saldo.payments.AmountReleased"),
               json.dumps(body).encode())
