"""The invoices read model: what the operators' invoice overview shows (rules I2, I3).

Invoices come from this service's topic and money from the payments topic, with no order
between the two: a payment may be read before its invoice. So what is paid is kept apart,
added up per invoice, and joined when read (queries.py, which also derives the status).
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from saldo_events import invoicing, payments
from saldo_events.envelope import BankAccount, IntegrationEvent
from saldo_platform.http.pages import sortable_time
from saldo_platform.projection import Projection
from saldo_platform.sql import Executor


class InvoicesProjection(Projection):
    name = "invoicing.invoices"
    schema = {
        "invoices": """(
            invoice_id TEXT PRIMARY KEY, business_unit TEXT NOT NULL, number BIGINT NOT NULL,
            customer_id TEXT NOT NULL, currency TEXT NOT NULL, total BIGINT NOT NULL,
            credited BIGINT NOT NULL, due_date TEXT NOT NULL, issued_at TEXT NOT NULL,
            version BIGINT NOT NULL)""",
        "invoice_payments": """(
            invoice_id TEXT PRIMARY KEY, paid BIGINT NOT NULL)""",
        "credit_notes": """(
            credit_note_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, business_unit TEXT NOT NULL,
            customer_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
            reason TEXT NOT NULL, issued_at TEXT NOT NULL, version BIGINT NOT NULL)""",
    }

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        if isinstance(event, invoicing.InvoiceIssued):
            await tx.execute(self.sql(
                "INSERT INTO {invoices} (invoice_id, business_unit, number, customer_id, currency,"
                " total, credited, due_date, issued_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9) ON CONFLICT DO NOTHING"),
                str(event.invoice_id), event.business_unit, event.number, event.customer_id,
                event.total.currency, event.total.amount, event.due_date.isoformat(),
                sortable_time(event.occurred_at), event.aggregate_version,
            )
        elif isinstance(event, invoicing.CreditNoteIssued):
            await tx.execute(self.sql(
                "UPDATE {invoices} SET credited = credited + $2, version = $3 WHERE invoice_id = $1"),
                str(event.invoice_id), event.amount.amount, event.aggregate_version,
            )
            await tx.execute(self.sql(
                "INSERT INTO {credit_notes} (credit_note_id, invoice_id, business_unit, customer_id,"
                " amount, currency, reason, issued_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"),
                str(event.credit_note_id), str(event.invoice_id), event.business_unit,
                event.customer_id, event.amount.amount, event.amount.currency, event.reason,
                sortable_time(event.occurred_at), event.aggregate_version,
            )
        elif isinstance(event, payments.PaymentReceived):
            for allocation in event.allocations:
                await self._paid(tx, str(allocation.invoice_id), allocation.amount)
        elif isinstance(event, payments.PaymentAllocated):
            await self._paid(tx, str(event.invoice_id), event.amount.amount)
        elif isinstance(event, payments.AmountReleased):
            await self._paid(tx, str(event.invoice_id), -event.amount.amount)

    async def _paid(self, tx: Executor, invoice_id: str, amount: int) -> None:
        await tx.execute(self.sql(
            "INSERT INTO {invoice_payments} (invoice_id, paid) VALUES ($1, $2)"
            " ON CONFLICT (invoice_id) DO UPDATE SET paid = {invoice_payments}.paid + excluded.paid"),
            invoice_id, amount,
        )


ENTITY_COLUMNS = ("legal_name", "registration_number", "postal_address", "bank_account",
                  "invoicing_method", "payment_message_prefix", "currency", "time_zone",
                  "reminder_schedule_days", "fik_creditor_number", "updated_at", "version")
CUSTOMER_COLUMNS = ("name", "email", "postal_address", "ean", "bank_account", "betalingsservice_mandate",
                    "e_invoice_to_online_banking", "card_agreement", "mobilepay_agreement",
                    "updated_at", "version")


def _json(value: BaseModel | list[int] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump_json(exclude_none=isinstance(value, BankAccount))
    return json.dumps(value)


class PartiesProjection(Projection):
    """The business entity, customers and subscriptions as operators look them up (rules M4,
    C1, C2). Every row carries its business unit (rule M3); the entity and customers arrive
    whole with each change, so a row is replaced by any newer version."""

    name = "invoicing.parties"
    schema = {
        "business_entities": """(
            business_unit TEXT PRIMARY KEY, legal_name TEXT NOT NULL,
            registration_number TEXT NOT NULL, postal_address TEXT, bank_account TEXT NOT NULL,
            invoicing_method TEXT NOT NULL, payment_message_prefix TEXT NOT NULL,
            currency TEXT NOT NULL, time_zone TEXT NOT NULL, reminder_schedule_days TEXT NOT NULL,
            fik_creditor_number TEXT NOT NULL, updated_at TEXT NOT NULL, version BIGINT NOT NULL)""",
        "customers": """(
            business_unit TEXT NOT NULL, customer_id TEXT NOT NULL, name TEXT NOT NULL,
            email TEXT NOT NULL, postal_address TEXT NOT NULL, ean TEXT, bank_account TEXT,
            betalingsservice_mandate TEXT, e_invoice_to_online_banking BOOLEAN NOT NULL,
            card_agreement TEXT, mobilepay_agreement TEXT, registered_at TEXT NOT NULL,
            updated_at TEXT NOT NULL, version BIGINT NOT NULL,
            PRIMARY KEY (business_unit, customer_id))""",
        "subscriptions": """(
            subscription_id TEXT PRIMARY KEY, business_unit TEXT NOT NULL,
            customer_id TEXT NOT NULL, product TEXT NOT NULL, price BIGINT NOT NULL,
            currency TEXT NOT NULL, period_unit TEXT NOT NULL, period_length BIGINT NOT NULL,
            invoicing_method TEXT, started_on TEXT NOT NULL, stopped_on TEXT,
            started_at TEXT NOT NULL, version BIGINT NOT NULL)""",
    }

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        if isinstance(event, invoicing.BusinessEntityUpdated):
            await tx.execute(self.sql(_upsert("business_entities", ("business_unit",), ENTITY_COLUMNS)),
                event.business_unit, event.legal_name, event.registration_number,
                _json(event.postal_address), _json(event.bank_account), event.invoicing_method,
                event.payment_message_prefix, event.currency, event.time_zone,
                _json(event.reminder_schedule_days), event.fik_creditor_number,
                sortable_time(event.occurred_at), event.aggregate_version,
            )
        elif isinstance(event, invoicing.CustomerUpdated):
            # registered_at is written once, by the first version.
            await tx.execute(self.sql(_upsert("customers", ("business_unit", "customer_id"),
                                              CUSTOMER_COLUMNS, insert_only=("registered_at",))),
                event.business_unit, event.customer_id, event.name, event.email,
                _json(event.postal_address), event.ean, _json(event.bank_account),
                _json(event.betalingsservice_mandate), event.e_invoice_to_online_banking,
                _json(event.card_agreement), _json(event.mobilepay_agreement),
                sortable_time(event.occurred_at), event.aggregate_version,
                sortable_time(event.occurred_at),
            )
        elif isinstance(event, invoicing.SubscriptionStarted):
            await tx.execute(self.sql(
                "INSERT INTO {subscriptions} (subscription_id, business_unit, customer_id, product,"
                " price, currency, period_unit, period_length, invoicing_method, started_on,"
                " started_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                " ON CONFLICT DO NOTHING"),
                str(event.subscription_id), event.business_unit, event.customer_id, event.product,
                event.price.amount, event.price.currency, event.period.unit, event.period.length,
                event.invoicing_method, event.started_on.isoformat(),
                sortable_time(event.occurred_at), event.aggregate_version,
            )
        elif isinstance(event, invoicing.SubscriptionStopped):
            await tx.execute(self.sql(
                "UPDATE {subscriptions} SET stopped_on = $2, version = $3"
                " WHERE subscription_id = $1 AND version < $3"),
                str(event.subscription_id), event.stopped_on.isoformat(), event.aggregate_version,
            )


def _upsert(table: str, key: tuple[str, ...], columns: tuple[str, ...],
            insert_only: tuple[str, ...] = ()) -> str:
    """Insert the row, or replace its columns with a newer version's (never an older one's)."""
    names = (*key, *columns, *insert_only)
    values = ", ".join(f"${n}" for n in range(1, len(names) + 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
    return (f"INSERT INTO {{{table}}} ({', '.join(names)}) VALUES ({values})"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
            f" WHERE {{{table}}}.version < excluded.version")
