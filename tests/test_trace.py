"""One OpenTelemetry trace from the HTTP request to every consumer (DESIGN.md, "Observability").

The request carries a W3C `traceparent` we made up, so its trace id is known. The command's
events store that trace context; the relay restores it around its `publish` span and puts the
publish span's context into the Kafka headers; the consuming service's `process` span is its
child. A policy's new events store the consumer span's context, so the trace goes on for a
second hop (CreditNoteIssued → payments' policy → AmountReleased → refunds, and back to
invoicing's policy → InvoicePaymentReleased).

Spans come from the five OS processes through `SALDO_TRACE_FILE` (JSON lines, one file).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from saldo_invoicing.policies import FollowPayments
from saldo_payments.policies import FollowInvoices
from tests.infrastructure import Servers
from tests.scenarios import issue_invoice, pay_invoice, register_customer, set_up_business_unit
from tests.support import Saldo, distributed_env, eventually, start_distributed

Span = dict[str, Any]


@pytest.fixture(scope="module")
async def saldo(infra: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Saldo]:
    """Five services as OS processes, shared by this module's tests (each uses its own invoice)."""
    tmp = tmp_path_factory.mktemp("trace")
    tag = f"t{uuid.uuid4().hex[:10]}"
    env = distributed_env(infra.database_url, infra.kafka_bootstrap, tag,
                          {"SALDO_TRACE_FILE": str(tmp / "spans.jsonl")})
    running = await start_distributed(env, tmp)
    try:
        yield running
    finally:
        running.stop()
        await running.client.aclose()


def new_traceparent() -> tuple[str, str, str]:
    """A caller's W3C trace context: (header, trace id, the caller's span id); sampled."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def spans(saldo: Saldo) -> list[Span]:
    path = Path(saldo.env["SALDO_TRACE_FILE"])
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    # Five processes append to one file: every line must still be one whole span.
    return [json.loads(line) for line in lines]


def of_trace(saldo: Saldo, trace_id: str) -> list[Span]:
    return [s for s in spans(saldo) if s["trace_id"] == trace_id]


def ancestors(span: Span, trace: list[Span]) -> list[Span]:
    """The span's parents up to the root that was recorded (the caller's span was not)."""
    by_id = {s["span_id"]: s for s in trace}
    chain, parent = [], span["parent_span_id"]
    while parent in by_id:
        chain.append(by_id[parent])
        parent = by_id[parent]["parent_span_id"]
    return chain


def only(found: list[Span], what: str) -> Span:
    assert len(found) == 1, f"expected one {what}, found {len(found)}: {found}"
    return found[0]


def describe(trace: list[Span]) -> str:
    return "\n".join(f"  {s['service']:<24} {s['name']:<48} {s['span_id']} <- {s['parent_span_id']}"
                     for s in trace)


async def consumed(saldo: Saldo, trace_id: str, service: str, topic: str) -> list[Span] | None:
    """The trace once `service` processed a message of `topic` in it (None until then)."""
    trace = of_trace(saldo, trace_id)
    found = [s for s in trace if s["service"] == service and s["name"] == f"process {topic}"]
    return trace if found else None


def server_span(trace: list[Span], service: str, caller_span_id: str, of: Span) -> Span:
    """The service's SERVER span that continued the caller's context and led to `of`."""
    chain = ancestors(of, trace)
    servers = [s for s in chain if s["service"] == service and s.get("kind") == "SERVER"
               and s["parent_span_id"] == caller_span_id]
    assert servers, (f"no {service} server span (child of the caller's span {caller_span_id}) "
                     f"above {of['name']}:\n{describe(trace)}")
    return servers[0]


async def test_one_trace_from_the_request_to_the_consuming_service(saldo: Saldo) -> None:
    await set_up_business_unit(saldo)  # before the traced request (rules M4, C1)
    await register_customer(saldo, customer_id="cust-trace")
    header, trace_id, caller = new_traceparent()
    prefix = saldo.env["SALDO_TOPIC_PREFIX"]
    response = await saldo.post("invoicing", "/v1/invoices", {
        "customer_id": "cust-trace", "currency": "DKK", "due_date": "2026-12-31",
        "lines": [{"description": "Magazine, 12 months", "amount": 49900}],
    }, headers={"traceparent": header})
    assert response.status_code == 201, response.text

    trace = await eventually(
        lambda: consumed(saldo, trace_id, "saldo-payments", f"{prefix}.invoicing.v1"),
        timeout=30, what="payments to process InvoiceIssued in the request's trace")

    process = [s for s in trace if s["service"] == "saldo-payments"
               and s["name"] == f"process {prefix}.invoicing.v1"]
    assert all(s["trace_id"] == trace_id for s in process)
    assert all(s.get("kind") == "CONSUMER" for s in process)
    publish = only([s for s in trace if s["name"] == f"publish {prefix}.invoicing.v1"],
                   "publish span of InvoiceIssued in the request's trace")
    assert publish["service"] == "saldo-invoicing"
    assert publish.get("kind") == "PRODUCER"
    assert publish["attributes"]["saldo.event_type"] == "dk.saldo.invoicing.InvoiceIssued"
    # The relay puts its own span's context into the Kafka headers: the consumer is its child.
    for span in process:
        assert span["parent_span_id"] == publish["span_id"], describe(trace)
    # The relay restored the context stored with the event: the request's server span is above.
    server = server_span(trace, "saldo-invoicing", caller, of=publish)
    assert server["attributes"].get("http.request.method") == "POST"
    assert server["attributes"]["url.path"].endswith("/v1/invoices")


async def test_the_trace_goes_on_through_a_policy_to_the_next_service(saldo: Saldo) -> None:
    invoice = await issue_invoice(saldo, customer="cust-trace-2")
    payment = await pay_invoice(saldo, invoice)
    await eventually(lambda: saldo.found("payments", f"/v1/payments/{payment['id']}"),
                     what="the payment in the payments read model")

    header, trace_id, caller = new_traceparent()
    prefix = saldo.env["SALDO_TOPIC_PREFIX"]
    credit = await saldo.post("invoicing", f"/v1/invoices/{invoice['id']}/credit-notes",
                              {"amount": 49900, "reason": "subscription stopped"},
                              headers={"traceparent": header})
    assert credit.status_code == 201, credit.text

    # Second hop: refunds processes the AmountReleased that payments' policy emitted.
    trace = await eventually(
        lambda: consumed(saldo, trace_id, "saldo-refunds", f"{prefix}.payments.v1"),
        timeout=30, what="refunds to process AmountReleased in the credit note request's trace")

    refunds_process = only([s for s in trace if s["service"] == "saldo-refunds"
                            and s["name"] == f"process {prefix}.payments.v1"],
                           "refunds process span of AmountReleased")
    released = only([s for s in trace if s["name"] == f"publish {prefix}.payments.v1"],
                    "publish span of AmountReleased")
    assert released["service"] == "saldo-payments"
    assert released["attributes"]["saldo.event_type"] == "dk.saldo.payments.AmountReleased"
    assert refunds_process["parent_span_id"] == released["span_id"], describe(trace)

    # AmountReleased was stored while payments' policy processed CreditNoteIssued ...
    policy_span = ancestors(released, trace)[0]
    assert policy_span["service"] == "saldo-payments", describe(trace)
    assert policy_span["name"] == f"process {prefix}.invoicing.v1", describe(trace)
    assert policy_span["attributes"]["saldo.consumer"] == FollowInvoices.name
    # ... which invoicing's relay published, inside the credit note request's trace.
    # (Invoicing publishes on that topic in this trace again, see below: picked by event type.)
    credit_published = only([s for s in trace if s["name"] == f"publish {prefix}.invoicing.v1"
                             and s["attributes"]["saldo.event_type"]
                             == "dk.saldo.invoicing.CreditNoteIssued"],
                            "publish span of CreditNoteIssued")
    assert policy_span["parent_span_id"] == credit_published["span_id"], describe(trace)
    server_span(trace, "saldo-invoicing", caller, of=credit_published)
    assert {s["trace_id"] for s in trace} == {trace_id}

    # The same AmountReleased goes back to invoicing too: its policy follows the release on the
    # invoice (InvoicePaymentReleased), still in the credit note request's trace.
    async def followed() -> list[Span] | None:
        trace = of_trace(saldo, trace_id)
        found = [s for s in trace if s["name"] == f"publish {prefix}.invoicing.v1"
                 and s["attributes"]["saldo.event_type"] == "dk.saldo.invoicing.InvoicePaymentReleased"]
        return trace if found else None

    trace = await eventually(followed, timeout=30,
                             what="invoicing to publish InvoicePaymentReleased in the same trace")
    release_followed = only([s for s in trace if s["name"] == f"publish {prefix}.invoicing.v1"
                             and s["attributes"]["saldo.event_type"]
                             == "dk.saldo.invoicing.InvoicePaymentReleased"],
                            "publish span of InvoicePaymentReleased")
    follow_span = ancestors(release_followed, trace)[0]
    assert follow_span["service"] == "saldo-invoicing", describe(trace)
    assert follow_span["name"] == f"process {prefix}.payments.v1", describe(trace)
    assert follow_span["attributes"]["saldo.consumer"] == FollowPayments.name
    assert follow_span["parent_span_id"] == released["span_id"], describe(trace)
    assert {s["trace_id"] for s in trace} == {trace_id}
