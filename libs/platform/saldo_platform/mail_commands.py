"""`saldo mails list|requeue`: what an operator does about mails the outbox could not deliver.

A service that queues mail brings this command (ServiceDefinition.commands), so it opens that
service's database: `saldo mails list --business-unit bu_a` shows what is failed or pending, and
`saldo mails requeue KEY --business-unit bu_a` sends a failed one again once the cause is fixed.
"""

from __future__ import annotations

import argparse
import sys
from typing import cast

from saldo_platform.mail import UNDELIVERED, Status, mails, requeue
from saldo_platform.service import Command, ServiceRuntime

STATUSES = ("queued", "sending", "sent", "failed")


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="a business unit's mails not yet delivered (or --status)")
    listing.add_argument("--business-unit", required=True)
    listing.add_argument("--status", default=",".join(sorted(UNDELIVERED)),
                         help=f"comma-separated, of {', '.join(STATUSES)} (default: not delivered)")
    listing.add_argument("--limit", type=int, default=100)
    again = actions.add_parser("requeue", help="send a failed mail again at the next pass")
    again.add_argument("key", help="the mail's key, as `saldo mails list` shows it")
    again.add_argument("--business-unit", required=True)


async def _run(runtime: ServiceRuntime, args: argparse.Namespace) -> int:
    if args.action == "requeue":
        if not await requeue(runtime.db, args.business_unit, args.key):
            print(f"saldo mails requeue: no failed mail {args.key!r} in business unit "
                  f"{args.business_unit}", file=sys.stderr)
            return 1
        print(f"{args.key}: queued again")
        return 0
    wanted = [s.strip() for s in args.status.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        print(f"saldo mails list: unknown status {', '.join(unknown)}; use {', '.join(STATUSES)}",
              file=sys.stderr)
        return 2
    found = await mails(runtime.db, args.business_unit, cast(list[Status], wanted), args.limit)
    print(f"{'status':<8} {'attempts':>8}  {'queued at (UTC)':<19}  {'key':<40} {'to':<30} last error")
    for m in found:
        print(f"{m.status:<8} {m.attempts:>8}  {m.enqueued_at:%Y-%m-%d %H:%M:%S}  {m.key:<40} "
              f"{m.to:<30} {m.last_error or ''}")
    return 0


COMMAND = Command(name="mails", help="mails the outbox could not deliver: `saldo mails list|requeue`",
                  add_arguments=_arguments, run=_run)
