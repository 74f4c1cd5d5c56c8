"""Failpoints: crash the process at a named instant, for the fault tests.

`SALDO_FAILPOINTS=point@consumer@EventType,…` makes the process exit at once (as a kill -9
would) when `point` is reached while `consumer` handles an `EventType`. Unset, it costs one
dictionary lookup. Points: before-commit (effect applied, transaction open) and after-commit
(transaction committed, nothing acknowledged to the bus).
"""

from __future__ import annotations

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
