"""Reading and writing topics directly, to see what the services published or to feed them junk."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from saldo_platform.bus import Message, ensure_topics
from saldo_platform.rebuild import kafka_messages


async def read_topic(bootstrap: str, topic: str) -> list[Message]:
    """Every message now on `topic`, all partitions, from the beginning."""
    await ensure_topics(bootstrap, [topic])
    return [message async for message, _ in kafka_messages(bootstrap, [topic])]


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
