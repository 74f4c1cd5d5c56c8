"""Wires the invoicing service: the one place its parts meet the platform."""

from saldo_invoicing import mails, reminders
from saldo_invoicing.api import router
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.integration import to_integration
from saldo_invoicing.overview import OverviewProjection
from saldo_invoicing.policies import FollowPayments
from saldo_invoicing.projections import InvoicesProjection, PartiesProjection
from saldo_platform import mail_commands
from saldo_platform.mail import outbox_job
from saldo_platform.service import ServiceDefinition


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="invoicing",
        application=InvoicingApplication,
        router=router,
        to_integration=to_integration,
        projections=[(InvoicesProjection, ["invoicing"]), (PartiesProjection, ["invoicing"]),
                     (OverviewProjection, ["payments", "refunds"]),
                     (mails.DocumentMailsProjection, ["invoicing"])],
        policies=[(FollowPayments, ["payments"])],
        jobs=[reminders.JOB, mails.JOB, outbox_job()],
        commands=[reminders.COMMAND, mail_commands.COMMAND],
    )
