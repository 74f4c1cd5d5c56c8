"""Accounting: the reactions to other services' financial events, one method per kind.

Each builds the event's lines with the domain's function (domain.py) and collects one posting.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import JSONTranscoder, Transcoding

from saldo_accounting import domain
from saldo_accounting.domain import Account, Posting, PostingLine, Source
from saldo_kernel.money import Money
from saldo_platform.eventstore import EventStoreApplication


class PostingLineAsDict(Transcoding):
    """A posting line in a stored event: {"account": "bank", "debit": Money, "credit": Money}."""

    type = PostingLine
    name = "posting_line"

    def encode(self, obj: PostingLine) -> dict[str, Any]:
        return {"account": obj.account.value, "debit": obj.debit, "credit": obj.credit}

    def decode(self, data: dict[str, Any]) -> PostingLine:
        return PostingLine(Account(data["account"]), data["debit"], data["credit"])


class AccountingApplication(EventStoreApplication):
    name = "accounting-sync"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(PostingLineAsDict())

    def post_invoice_issued(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                            source: Source, customer_id: str, total: Money) -> None:
        self._post(processing_event, business_unit=business_unit, source=source,
                   customer_id=customer_id, lines=domain.invoice_issued(total=total))

    def post_credit_note_issued(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                                source: Source, customer_id: str, amount: Money) -> None:
        self._post(processing_event, business_unit=business_unit, source=source,
                   customer_id=customer_id, lines=domain.credit_note_issued(amount=amount))

    def post_payment_received(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                              source: Source, customer_id: str, amount: Money,
                              allocations: list[Money]) -> None:
        self._post(processing_event, business_unit=business_unit, source=source,
                   customer_id=customer_id,
                   lines=domain.payment_received(amount=amount, allocations=allocations))

    def post_payment_allocated(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                               source: Source, amount: Money) -> None:
        # PaymentAllocated names no customer; the posting carries none.
        self._post(processing_event, business_unit=business_unit, source=source, customer_id="",
                   lines=domain.payment_allocated(amount=amount))

    def post_amount_released(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                             source: Source, customer_id: str, amount: Money) -> None:
        self._post(processing_event, business_unit=business_unit, source=source,
                   customer_id=customer_id, lines=domain.amount_released(amount=amount))

    def post_payout_paid(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                         source: Source, customer_id: str, amount: Money) -> None:
        self._post(processing_event, business_unit=business_unit, source=source,
                   customer_id=customer_id, lines=domain.payout_paid(amount=amount))

    def _post(self, processing_event: ProcessingEvent[UUID], *, business_unit: str, source: Source,
              customer_id: str, lines: list[PostingLine]) -> None:
        if self.get_or_none(Posting.create_id(source.event_id)) is not None:
            return  # this event was posted already (published again): never book twice
        processing_event.collect_events(Posting.book(
            business_unit=business_unit, source=source, customer_id=customer_id, lines=lines))
