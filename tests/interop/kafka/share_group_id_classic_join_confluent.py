"""A classic consumer (JoinGroup) on a group id a share group holds is
refused with INCONSISTENT_GROUP_PROTOCOL, as Kafka 4.1 answers it; the
share group goes on."""
import time

from confluent_kafka import Consumer, KafkaError

from common import BOOTSTRAP, check
from share_common import ShareTopic, consume_until, polled, settle

shared = ShareTopic("rdk-share-join")
share = shared.consumer()
deadline = time.monotonic() + 60
warmed = False
while not warmed and time.monotonic() < deadline:
    shared.produce(b"warm")
    messages = polled(share, 0.5)
    warmed = bool(messages)
    settle(share, messages)
check(warmed, "the share consumer never received a record")

classic = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": shared.group, "enable.auto.commit": False})
classic.subscribe([shared.topic])
refused = None
deadline = time.monotonic() + 30
while refused is None and time.monotonic() < deadline:
    message = classic.poll(0.5)
    if message is not None and message.error() is not None:
        refused = message.error()
    settle(share, polled(share, 0.1))
check(refused is not None and refused.code() == KafkaError.INCONSISTENT_GROUP_PROTOCOL, f"the classic join: {refused}")
classic.close()
shared.produce(b"after")
got = consume_until(share, b"after")
check(b"after" in got, f"the share group goes on: {got}")
share.close()
print("ok")
