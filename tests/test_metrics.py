"""The counters DESIGN.md asks for: relay backlog and consumer lag (Observability).

Read back through the OpenTelemetry SDK's own in-memory reader, installed once for this
test process, while a real relay publishes and a real Kafka consumer reads.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.integration import to_integration
from saldo_kernel.money import Money
from saldo_platform.bus import KafkaConsumer, LocalBus
from saldo_platform.context import Context, acting
from saldo_platform.relay import Relay
from saldo_platform.sql import SQLiteDatabase
from tests.infrastructure import Servers
from tests.inprocess import register_customer, set_up_business_unit
from tests.kafka_tools import produce

READER = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def meter_provider() -> None:
    metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))


def gauge(name: str) -> list[tuple[dict[str, Any], int]]:
    data = READER.get_metrics_data()
    return [(dict(point.attributes or {}), int(point.value))
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics for metric in scope.metrics
            if metric.name == name for point in metric.data.data_points]


async def test_relay_backlog_counts_down_to_zero(tmp_path: Path) -> None:
    app = InvoicingApplication(f"sqlite:{tmp_path / 'invoicing.sqlite'}")
    set_up_business_unit(app, "bu")  # as an operator does before invoicing (rules M4, C1)
    register_customer(app, "bu", "cust")
    with acting(Context("bu", "test", "metrics")):
        for _ in range(5):
            app.issue_invoice(business_unit="bu", customer_id="cust", due_date=date(2026, 12, 1),
                              lines=[{"description": "x", "amount": Money(100, "DKK")}])
    stored = app.recorder.max_notification_id()
    db = SQLiteDatabase(f"sqlite:{tmp_path / 'invoicing.sqlite'}")
    await db.connect()
    bus = LocalBus(str(tmp_path / "bus.sqlite"))
    await bus.start()
    relay = Relay("metrics-relay", app, db, bus.producer(), "saldo.invoicing.v1", to_integration)
    relay.batch_size = 4
    await db.create_schema("CREATE TABLE IF NOT EXISTS relay_positions"
                           " (relay TEXT PRIMARY KEY, position BIGINT NOT NULL)")
    position = await relay.publish_after(0)
    assert gauge("saldo.relay.backlog") == [({"relay": "metrics-relay"}, stored - 4)]
    while (position := await relay.publish_after(position)) < stored:
        pass
    assert gauge("saldo.relay.backlog") == [({"relay": "metrics-relay"}, 0)]
    await bus.stop()
    await db.close()
    app.close()


async def test_consumer_lag_is_what_is_left_on_the_partition(infra: Servers, tag: str) -> None:
    topic = f"{tag}.lag.v1"
    await produce(infra.kafka_bootstrap, topic, [(0, f"m{n}".encode(), []) for n in range(10)])
    consumer = KafkaConsumer(infra.kafka_bootstrap, f"{tag}.lag")

    async def from_start(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {tp: 0 for tp in partitions}

    await consumer.start([topic], from_start)
    try:
        read = []
        for _ in range(100):
            read += await consumer.getmany(timeout_s=0.5)
            if len(read) == 10:
                break
        assert len(read) == 10
        lags = [value for attrs, value in gauge("saldo.consumer.lag")
                if attrs == {"group": f"{tag}.lag", "topic": topic, "partition": 0}]
        assert lags == [0]  # all read: nothing left behind
    finally:
        await consumer.stop()
