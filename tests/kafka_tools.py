"""Reading and writing topics directly, to see what the services published or to feed them junk."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from saldo_platform.bus import ensure_topics, partitions_of


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record now on `topic`, all partitions, from the beginning."""
    await ensure_topics(bootstrap, [topic])
    tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            for tp, batch in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
                records.extend(r for r in batch if r.offset < end[tp])
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str,
                  messages: list[tuple[int, bytes, list[tuple[str, bytes]]]]) -> None:
    """(partition, value, headers) each."""
    await ensure_topics(bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, value, headers in messages:
            await producer.send_and_wait(topic, value, key=b"junk", partition=partition, headers=headers)
    finally:
        await producer.stop()
