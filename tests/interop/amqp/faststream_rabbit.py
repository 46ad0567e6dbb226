"""FastStream's RabbitBroker, unmodified, against Conveyor: a subscriber
gets what a publisher sends (JSON decoded into the handler's argument), and
request/response over Direct Reply-to (`broker.request`) returns the
handler's answer — what failed at start before Direct Reply-to existed."""
import asyncio
import os
import sys

from faststream.rabbit import RabbitBroker

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique  # noqa: E402

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")
WAIT_S = 10


async def main():
    orders, rpc = unique("fs-orders"), unique("fs-rpc")
    broker = RabbitBroker(URL)
    received = asyncio.get_running_loop().create_future()

    @broker.subscriber(orders)
    async def on_order(body: dict) -> None:
        if not received.done():
            received.set_result(body)

    @broker.subscriber(rpc)
    async def on_request(body: str) -> str:
        return body.upper()

    await broker.start()
    try:
        await broker.publish({"orderId": "ORD-1", "amount": 42}, orders)
        body = await asyncio.wait_for(received, WAIT_S)
        check(body == {"orderId": "ORD-1", "amount": 42}, f"the subscriber got the published order: {body}")
        for word in ("hello", "again"):
            response = await asyncio.wait_for(broker.request(word, rpc), WAIT_S)
            answer = await response.decode()
            check(answer == word.upper(), f"request {word!r} answered {answer!r}")
    finally:
        await broker.stop()
    print("faststream: ok")


asyncio.run(main())
