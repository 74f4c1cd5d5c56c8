"""The invoices read model: what the operators' invoice overview shows (rules I2, I3, I4).

Everything comes from this service's own topic: what is paid too, as each invoice recorded
payments' allocations and releases (policies.py). What is paid is kept in its own table and
joined when read (queries.py, which also derives the status).
"""

from __future__ import annotations

import json
from uuid import UUID

from pydantic import BaseModel

from saldo_events import invoicing
from saldo_events.envelope import BankAccount, IntegrationEvent
from saldo_invoicing.domain import invoice_status
from saldo_kernel.money import Money
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
            version BIGINT NOT NULL, channel TEXT, channel_reason TEXT, payment_reference TEXT,
            subscription_id TEXT, reminders BIGINT NOT NULL DEFAULT 0, last_reminder_on TEXT,
            status TEXT NOT NULL DEFAULT 'open')""",
        "reminders": """(
            invoice_id TEXT NOT NULL, number BIGINT NOT NULL, business_unit TEXT NOT NULL,
            customer_id TEXT NOT NULL, business_date TEXT NOT NULL, sent_at TEXT NOT NULL,
            PRIMARY KEY (invoice_id, number))""",
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
                " total, credited, due_date, issued_at, version, channel, channel_reason,"
                " payment_reference, subscription_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10, $11, $12, $13)"
                " ON CONFLICT DO NOTHING"),
                str(event.invoice_id), event.business_unit, event.number, event.customer_id,
                event.total.currency, event.total.amount, event.due_date.isoformat(),
                sortable_time(event.occurred_at), event.aggregate_version, event.channel,
                event.channel_reason, event.payment_reference,
                str(event.subscription_id) if event.subscription_id else None,
            )
        elif isinstance(event, invoicing.CreditNoteIssued):
            await tx.execute(self.sql(
                "UPDATE {invoices} SET credited = credited + $2, version = $3 WHERE invoice_id = $1"),
                str(event.invoice_id), event.amount.amount, event.aggregate_version,
            )
            await self._status(tx, event.invoice_id)
            await tx.execute(self.sql(
                "INSERT INTO {credit_notes} (credit_note_id, invoice_id, business_unit, customer_id,"
                " amount, currency, reason, issued_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"),
                str(event.credit_note_id), str(event.invoice_id), event.business_unit,
                event.customer_id, event.amount.amount, event.amount.currency, event.reason,
                sortable_time(event.occurred_at), event.aggregate_version,
            )
        elif isinstance(event, invoicing.ReminderSent):
            inserted = await tx.fetchval(self.sql(
                "INSERT INTO {reminders} (invoice_id, number, business_unit, customer_id,"
                " business_date, sent_at) VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT DO NOTHING RETURNING number"),
                str(event.invoice_id), event.number, event.business_unit, event.customer_id,
                event.business_date.isoformat(), sortable_time(event.occurred_at))
            if inserted is not None:
                await tx.execute(self.sql(
                    "UPDATE {invoices} SET reminders = reminders + 1, last_reminder_on = $2,"
                    " version = $3 WHERE invoice_id = $1"),
                    str(event.invoice_id), event.business_date.isoformat(), event.aggregate_version)
        elif isinstance(event, invoicing.InvoicePaymentApplied):
            await self._paid(tx, event, event.amount.amount)
        elif isinstance(event, invoicing.InvoicePaymentReleased | invoicing.InvoiceReopened):
            await self._paid(tx, event, -event.amount.amount)

    async def _paid(self, tx: Executor, event: invoicing.InvoicePaymentApplied
                    | invoicing.InvoicePaymentReleased | invoicing.InvoiceReopened, amount: int) -> None:
        """What is paid, as the invoice itself recorded payments' allocations and releases
        (policies.py): its own events, in its own order, move its version with them."""
        await tx.execute(self.sql(
            "INSERT INTO {invoice_payments} (invoice_id, paid) VALUES ($1, $2)"
            " ON CONFLICT (invoice_id) DO UPDATE SET paid = {invoice_payments}.paid + excluded.paid"),
            str(event.invoice_id), amount,
        )
        await tx.execute(self.sql("UPDATE {invoices} SET version = $2 WHERE invoice_id = $1"),
                         str(event.invoice_id), event.aggregate_version)
        await self._status(tx, event.invoice_id)

    async def _status(self, tx: Executor, invoice_id: UUID) -> None:
        """The status column, by the domain's rule (I2), so lists can filter on it."""
        row = await tx.fetchrow(self.sql(
            "SELECT i.currency, i.total, i.credited, coalesce(p.paid, 0) AS paid FROM {invoices} i"
            " LEFT JOIN {invoice_payments} p ON p.invoice_id = i.invoice_id WHERE i.invoice_id = $1"),
            str(invoice_id))
        if row is not None:
            currency = row["currency"]
            status = invoice_status(total=Money(row["total"], currency),
                                    credited=Money(row["credited"], currency),
                                    paid=Money(row["paid"], currency))
            await tx.execute(self.sql("UPDATE {invoices} SET status = $2 WHERE invoice_id = $1"),
                             str(invoice_id), status)


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
            started_at TEXT NOT NULL, version BIGINT NOT NULL, stop_reason TEXT)""",
        "subscription_periods": """(
            subscription_id TEXT NOT NULL, invoice_id TEXT NOT NULL, business_unit TEXT NOT NULL,
            period_start TEXT NOT NULL, period_end TEXT, issues BIGINT,
            PRIMARY KEY (subscription_id, invoice_id))""",
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
        elif isinstance(event, invoicing.SubscriptionPeriodInvoiced):
            await tx.execute(self.sql(
                "INSERT INTO {subscription_periods} (subscription_id, invoice_id, business_unit,"
                " period_start, period_end, issues) VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT DO NOTHING"),
                str(event.subscription_id), str(event.invoice_id), event.business_unit,
                event.period.start.isoformat(),
                event.period.end.isoformat() if event.period.end else None, event.period.issues)
            await tx.execute(self.sql(
                "UPDATE {subscriptions} SET version = $2 WHERE subscription_id = $1 AND version < $2"),
                str(event.subscription_id), event.aggregate_version)
        elif isinstance(event, invoicing.SubscriptionStopped):
            await tx.execute(self.sql(
                "UPDATE {subscriptions} SET stopped_on = $2, stop_reason = $4, version = $3"
                " WHERE subscription_id = $1 AND version < $3"),
                str(event.subscription_id), event.stopped_on.isoformat(), event.aggregate_version,
                event.reason,
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
