"""aio-pika: a stream read with asyncio, as RabbitMQ's stream examples do
over AMQP 0-9-1: two consumers from `first` read the same messages, each
after the other acked; one from a numeric offset reads the tail with
matching x-stream-offset headers; `next` gets only later publishes; without
a prefetch the consume is refused with 406."""
import asyncio
import os
import sys

import aio_pika

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique  # noqa: E402

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")
WAIT_S = 10


async def read(connection, name, offset, count):
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

    later = await connection.channel()
    await later.set_qos(prefetch_count=3)
    queue = await later.get_queue(name, ensure=False)
    got = []
    arrived = asyncio.Event()

    async def on_later(message):
        got.append(message.body)
        await message.ack()
        arrived.set()

    await queue.consume(on_later, arguments={"x-stream-offset": "next"})
    # Deliveries come in offset order: an old message would arrive before this one.
    await channel.default_exchange.publish(aio_pika.Message(b"later"), routing_key=name)
    await asyncio.wait_for(arrived.wait(), WAIT_S)
    check(got == [b"later"], f"next got {got}")
    await later.close()

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
