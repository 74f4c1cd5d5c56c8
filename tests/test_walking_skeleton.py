"""The walking skeleton through all five services, over HTTP and the bus (issue 2).

Rules on the path: I3 (credit note releases), P3 (refundable), B1/B2 (draft, ready list),
B4 (mark paid out), A1 (balanced postings, zero trial balance).
"""

from __future__ import annotations

from tests.scenarios import walking_skeleton
from tests.support import Saldo


async def test_walking_skeleton_distributed_five_processes(distributed: Saldo) -> None:
    assert set(distributed.processes) == {"invoicing", "payments", "refunds", "payouts", "accounting-sync"}
    pids = {p.popen.pid for p in distributed.processes.values() if p.popen}
    assert len(pids) == 5  # five separate OS processes, talking through Kafka only
    await walking_skeleton(distributed)


async def test_walking_skeleton_embedded(embedded: Saldo) -> None:
    await walking_skeleton(embedded)
