"""Wires the accounting-sync service."""

from saldo_accounting.api import router
from saldo_accounting.application import AccountingApplication
from saldo_accounting.integration import to_integration
from saldo_accounting.policies import RecordPostings
from saldo_accounting.projections import LedgerProjection
from saldo_platform.service import ServiceDefinition


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="accounting-sync",
        application=AccountingApplication,
        router=router,
        to_integration=to_integration,
        projections=[(LedgerProjection, ["accounting-sync"])],
        policies=[(RecordPostings, ["invoicing", "payments", "payouts"])],
    )
