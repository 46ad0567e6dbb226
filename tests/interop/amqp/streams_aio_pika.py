"""aio-pika: a stream read with asyncio, as RabbitMQ's stream examples do
over AMQP 0-9-1: two consumers from `first` read the same messages, each
after the other acked; one from a numeric offset reads the tail with
matching x-stream-offset headers; a timestamp start gets only what was
stamped from then on, an interval ("30m") everything that recent; `next`
gets only later publishes; without a prefetch the consume is refused with
406. The stream is a one-partition Kafka topic at the same offsets:
aiokafka reads what aio-pika published, and aio-pika reads what aiokafka
produced."""
import asyncio
import datetime
import os
import sys
import time

import aio_pika
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique  # noqa: E402

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")
BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
WAIT_S = 10


async def read(connection, name, offset, count, attached=None):
    """The first `count` (body, x-stream-offset) a consumer of stream `name`
    from `offset` gets; `attached`, if given, runs once it consumes."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=3)
    queue = await channel.get_queue(name, ensure=False)
    got = []
    done = asyncio.Event()

    async def on_message(message):
        got.append((message.body.decode(), message.headers["x-stream-offset"]))
        await message.ack()
        if len(got) >= count:
            done.set()

    tag = await queue.consume(on_message, arguments={"x-stream-offset": offset})
    if attached is not None:
        await attached()
    await asyncio.wait_for(done.wait(), WAIT_S)
    await queue.cancel(tag)
    await channel.close()
    return got


async def main():
    connection = await aio_pika.connect(URL)
    channel = await connection.channel()
    name = unique("aio-events")
    await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "stream"})
    for index in range(6):
        await channel.default_exchange.publish(aio_pika.Message(f"m{index}".encode()), routing_key=name)

    everything = [(f"m{index}", index) for index in range(6)]
    check(await read(connection, name, "first", 6) == everything, "the first reader from first")
    check(await read(connection, name, "first", 6) == everything, "a second reader from first")
    check(await read(connection, name, 4, 2) == everything[4:], "from offset 4")

    # A timestamp start (AMQP timestamps are whole seconds): only what was
    # stamped from the next second on.
    boundary = int(time.time()) + 1
    wait_until = time.monotonic() + 2
    while time.time() < boundary and time.monotonic() < wait_until:
        await asyncio.sleep(0.01)
    for index in range(6, 8):
        await channel.default_exchange.publish(aio_pika.Message(f"m{index}".encode()), routing_key=name)
    everything = [(f"m{index}", index) for index in range(8)]
    stamp = datetime.datetime.fromtimestamp(boundary, datetime.timezone.utc)
    check(await read(connection, name, stamp, 2) == everything[6:], "from a timestamp")
    check(await read(connection, name, "30m", 8) == everything, "from 30 minutes ago")

    # The stream is a one-partition Kafka topic at the same offsets.
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    partition = TopicPartition(name, 0)
    consumer.assign([partition])
    consumer.seek(partition, 0)
    consumed = []
    deadline = time.monotonic() + 30
    while len(consumed) < len(everything) and time.monotonic() < deadline:
        batches = await consumer.getmany(partition, timeout_ms=500)
        consumed.extend((record.value.decode(), record.offset) for record in batches.get(partition, []))
    await consumer.stop()
    check(consumed == everything, f"aiokafka read {consumed}")
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    written = await producer.send_and_wait(name, b"from aiokafka")
    await producer.stop()
    check(written.offset == len(everything), f"aiokafka's record at {written.offset}")
    check(await read(connection, name, written.offset, 1) == [("from aiokafka", written.offset)],
          "aio-pika reads what aiokafka wrote")

    async def publish_later():
        await channel.default_exchange.publish(aio_pika.Message(b"later"), routing_key=name)

    # Deliveries come in offset order: an old message would arrive before this one.
    got = await read(connection, name, "next", 1, attached=publish_later)
    check([body for body, _ in got] == ["later"], f"next got {got}")

    probe = await connection.channel()
    queue = await probe.get_queue(name, ensure=False)
    try:
        await queue.consume(lambda message: None, arguments={"x-stream-offset": "first"})
        check(False, "a consumer without a prefetch was accepted")
    except aio_pika.exceptions.ChannelPreconditionFailed as error:
        check("consumer prefetch count is not set" in str(error), str(error))

    await connection.close()
    print("aio-pika streams ok")


asyncio.run(main())
