"""Wires the payments service."""

from saldo_payments.api import router
from saldo_payments.application import PaymentsApplication
from saldo_payments.integration import to_integration
from saldo_payments.policies import FollowInvoices, FollowRefunds
from saldo_payments.projections import PaymentsProjection
from saldo_platform.service import ServiceDefinition


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="payments",
        application=PaymentsApplication,
        router=router,
        to_integration=to_integration,
        projections=[(PaymentsProjection, ["payments", "invoicing"])],
        policies=[(FollowInvoices, ["invoicing"]), (FollowRefunds, ["refunds"])],
    )
