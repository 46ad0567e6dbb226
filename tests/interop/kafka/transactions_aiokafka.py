"""aiokafka transactions: a transactional AIOKafkaProducer commits and
aborts (the `transaction()` context manager aborts when its block raises);
a read_committed AIOKafkaConsumer sees only the committed records, a
read_uncommitted one every record, never a marker; a second producer with
the same transactional.id fences the first."""
import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ProducerFenced

from common import BOOTSTRAP, check, unique


class Abandon(Exception):
    """Raised inside a transaction block to abort it."""


async def send(producer, topic, values):
    for value in values:
        await producer.send(topic, partition=value % 2, value=str(value).encode())


async def read(topic, isolation, expected):
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level=isolation,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.seek_to_beginning()
        values = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline and len(values) < expected:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(int(record.value) for record in records)
        # Nothing more arrives after the expected count.
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            values.extend(int(record.value) for record in records)
        return sorted(values)
    finally:
        await consumer.stop()


async def main():
    topic = unique("aio-txn")
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    await admin.close()

    transactional_id = unique("aio-txn-id")
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=transactional_id)
    await producer.start()
    async with producer.transaction():
        await send(producer, topic, range(0, 6))
    try:
        async with producer.transaction():
            await send(producer, topic, range(100, 104))
            await producer.flush()  # Written to the log before the abort.
            raise Abandon()
    except Abandon:
        pass
    async with producer.transaction():
        await send(producer, topic, range(6, 8))

    # A second producer with the same id fences the first.
    successor = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=transactional_id)
    await successor.start()
    try:
        async with producer.transaction():
            await send(producer, topic, [200])
        check(False, "the fenced producer committed")
    except ProducerFenced:
        pass
    finally:
        await producer.stop()
    async with successor.transaction():
        await send(successor, topic, range(8, 10))
    await successor.stop()

    committed = await read(topic, "read_committed", 10)
    check(committed == list(range(10)), f"read_committed saw {committed}")
    everything = await read(topic, "read_uncommitted", 14)
    check(everything == list(range(10)) + list(range(100, 104)), f"read_uncommitted saw {everything}")


asyncio.run(main())
print("ok")
