"""Integration-event contracts shared by all Saldo services (DESIGN.md, "Integration events")."""

from saldo_events import accounting, invoicing, payments, payouts, refunds
from saldo_events.codec import UndecodableMessage, decode, encode
from saldo_events.envelope import EVENT_TYPES, BankAccount, IntegrationEvent, Money

__all__ = [
    "EVENT_TYPES", "BankAccount", "IntegrationEvent", "Money", "UndecodableMessage",
    "accounting", "decode", "encode", "invoicing", "payments", "payouts", "refunds",
]
