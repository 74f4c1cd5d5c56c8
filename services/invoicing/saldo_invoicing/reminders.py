"""The reminders run (rule I4): per business unit, on its business date, each unpaid invoice
past its due date gets the reminder its schedule says is due, and no more.

Run by the service's scheduled job and by hand with `saldo reminders run [--date D]`. The read
model only picks candidates; each invoice decides for itself (`Invoice.reminder_due`), so an
invoice paid a moment ago is not reminded, and running twice on one day sends nothing new.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from saldo_invoicing.application import InvoicingApplication
from saldo_platform import businessdates
from saldo_platform.context import Context, acting, new_correlation_id
from saldo_platform.jobs import Job
from saldo_platform.progress import ProgressBar
from saldo_platform.service import Command, ServiceRuntime
from saldo_platform.sql import Database

ACTOR = "job:reminders"
log = logging.getLogger(__name__)


@dataclass
class RemindersRun:
    """What one run did, per business unit: (business date, candidates looked at, reminders sent)."""

    units: dict[str, tuple[date, int, int]] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return sum(sent for _, _, sent in self.units.values())


async def run_reminders(app: InvoicingApplication, db: Database, *, on: date | None = None,
                        business_unit: str | None = None, progress: bool = False,
                        stopping: asyncio.Event | None = None) -> RemindersRun:
    """`on` is the business date to run for (default: today in each unit's time zone, M2).
    When `stopping` is set the run ends after the invoice in hand; the next run goes on."""
    run = RemindersRun()
    correlation_id = new_correlation_id()  # one per run: its reminders can be found together
    units = await db.fetch("SELECT business_unit, time_zone FROM business_entities"
                           " WHERE $1 = '' OR business_unit = $1 ORDER BY business_unit",
                           business_unit or "")
    for unit in units:
        name = unit["business_unit"]
        today = on or businessdates.today(ZoneInfo(unit["time_zone"]))
        candidates = await db.fetch(
            "SELECT invoice_id FROM invoices WHERE business_unit = $1 AND due_date < $2"
            " AND status IN ('open', 'partially_paid') ORDER BY number", name, today.isoformat())
        bar = ProgressBar(f"reminders {name} {today}", len(candidates), enabled=progress)
        sent = 0
        for row in candidates:
            if stopping is not None and stopping.is_set():
                break
            sent += await asyncio.to_thread(_remind, app, name, row["invoice_id"], today, correlation_id)
            bar.step()
        bar.finish(f"{sent} reminders sent, {len(candidates)} unpaid invoices past due")
        run.units[name] = (today, len(candidates), sent)
    return run


def _remind(app: InvoicingApplication, business_unit: str, invoice_id: str, today: date,
            correlation_id: str) -> bool:
    with acting(Context(business_unit=business_unit, actor=ACTOR, correlation_id=correlation_id)):
        return app.send_reminder(business_unit=business_unit, invoice_id=UUID(invoice_id), today=today)


# --- how the service runs it: every hour, and by hand -------------------------------------------


async def _scheduled(runtime: ServiceRuntime) -> None:
    assert isinstance(runtime.application, InvoicingApplication)
    run = await run_reminders(runtime.application, runtime.db, stopping=runtime.stopping)
    if run.sent:
        log.info("reminders sent", extra={"reminders": run.sent, "units": len(run.units)})


# Hourly, so a unit's new business date is reached within the hour after its midnight; one
# replica at a time (each invoice decides for itself anyway, so two could not double-remind).
JOB = Job(name="reminders", interval=timedelta(hours=1), run=_scheduled, exclusive=True)


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="send the reminders due now (rule I4), with a progress bar")
    run.add_argument("--date", type=date.fromisoformat, default=None,
                     help="the business date to run for, YYYY-MM-DD (default: today in each unit's "
                          "time zone)")
    run.add_argument("--business-unit", default=None, help="only this business unit")


async def _by_hand(runtime: ServiceRuntime, args: argparse.Namespace) -> int:
    assert isinstance(runtime.application, InvoicingApplication)
    run = await run_reminders(runtime.application, runtime.db, on=args.date,
                              business_unit=args.business_unit, progress=True)
    if not run.units:
        print("no business unit with a business entity" + (f" named {args.business_unit}"
              if args.business_unit else ""), file=sys.stderr)
        return 1
    print(f"{'business unit':<20} {'date':<10} {'unpaid past due':>15} {'reminded':>8}")
    for unit, (on, candidates, sent) in run.units.items():
        print(f"{unit:<20} {on.isoformat():<10} {candidates:>15} {sent:>8}")
    return 0


COMMAND = Command(name="reminders", help="invoice reminders: `saldo reminders run [--date D]`",
                  add_arguments=_arguments, run=_by_hand)
