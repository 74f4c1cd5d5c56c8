"""Failpoints: crash the process at a named instant, for the fault tests.

`SALDO_FAILPOINTS=point@consumer@EventType,…` makes the process exit at once (as a kill -9
would) when `point` is reached while `consumer` handles an `EventType`. Unset, it costs one
dictionary lookup. Points: before-commit (effect applied, transaction open) and after-commit
(transaction committed, nothing acknowledged to the bus).
"""

from __future__ import annotations

import asyncio
import os

_armed = {
    tuple(spec.split("@"))
    for spec in os.environ.get("SALDO_FAILPOINTS", "").split(",")
    if spec.count("@") == 2
}


def reach(point: str, consumer: str, event_type: str) -> None:
    if _armed and (point, consumer, event_type) in _armed:
        print(f"failpoint {point}@{consumer}@{event_type}: exiting", flush=True)
        os._exit(86)


# `SALDO_MEETINGS=point@consumer@tag:N,…` holds each arrival at `point` until N have arrived,
# then lets them go on together: a race test makes both requests load before either saves.
# A lone arrival goes on after MEETING_TIMEOUT_S, so a mistaken test is slow, never stuck.
MEETING_TIMEOUT_S = 10.0
_meetings: dict[tuple[str, ...], _Meeting] = {}


class _Meeting:
    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.waiting: list[asyncio.Future[None]] = []

    async def arrive(self) -> None:
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(arrived)
        if len(self.waiting) >= self.parties:
            for future in self.waiting:
                if not future.done():
                    future.set_result(None)
            self.waiting = []
        try:
            await asyncio.wait_for(asyncio.shield(arrived), MEETING_TIMEOUT_S)
        except TimeoutError:
            if arrived in self.waiting:
                self.waiting.remove(arrived)


for _spec in os.environ.get("SALDO_MEETINGS", "").split(","):
    _point, _, _parties = _spec.partition(":")
    if _point.count("@") == 2 and _parties.isdigit():
        _meetings[tuple(_point.split("@"))] = _Meeting(int(_parties))


async def meet(point: str, consumer: str, tag: str) -> None:
    if _meetings and (meeting := _meetings.get((point, consumer, tag))) is not None:
        await meeting.arrive()
