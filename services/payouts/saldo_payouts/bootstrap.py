"""Wires the payouts service."""

from saldo_payouts.api import router
from saldo_payouts.application import PayoutsApplication
from saldo_payouts.integration import to_integration
from saldo_payouts.policies import DraftPayoutForRefund
from saldo_payouts.projections import PayoutsProjection
from saldo_platform.service import ServiceDefinition


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="payouts",
        application=PayoutsApplication,
        router=router,
        to_integration=to_integration,
        projections=[(PayoutsProjection, ["payouts"])],
        policies=[(DraftPayoutForRefund, ["refunds"])],
    )
