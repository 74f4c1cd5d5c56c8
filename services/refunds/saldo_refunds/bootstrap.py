"""Wires the refunds service."""

from saldo_platform.service import ServiceDefinition
from saldo_refunds.api import router
from saldo_refunds.application import RefundsApplication
from saldo_refunds.integration import to_integration
from saldo_refunds.policies import FollowPayments, FollowPayouts
from saldo_refunds.projections import RefundsProjection


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="refunds",
        application=RefundsApplication,
        router=router,
        to_integration=to_integration,
        projections=[(RefundsProjection, ["refunds"])],
        policies=[(FollowPayments, ["payments"]), (FollowPayouts, ["payouts"])],
    )
