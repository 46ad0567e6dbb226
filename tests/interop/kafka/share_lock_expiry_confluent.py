"""A record a ShareConsumer acquired and never acknowledged is delivered
again, to another consumer of the share group, once its acquisition lock
(group.share.record.lock.duration.ms, 30 s by default) has run out."""
import time

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic

from common import BOOTSTRAP, check, unique

topic = unique("rdk-share-lock")
group = unique("rdk-share-lock-group")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
    future.result(timeout=30)
producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})


def produce(value):
    producer.produce(topic, value, partition=0)
    check(producer.flush(30) == 0, "produce did not finish")


def consumer():
    share = ShareConsumer({"bootstrap.servers": BOOTSTRAP, "group.id": group,
                           "share.acknowledgement.mode": "explicit", "max.poll.records": 1})
    share.subscribe([topic])
    return share


def accept(share, messages):
    for message in messages:
        share.acknowledge(message, AcknowledgeType.ACCEPT)
    share.commit_sync(30)


alice, bob = consumer(), consumer()
# Both consumers first prove they fetch (the share-partition starts at the end).
for share in (alice, bob):
    deadline = time.monotonic() + 60
    warmed = False
    while not warmed and time.monotonic() < deadline:
        produce(b"warm")
        messages = [m for m in share.poll(0.5) if m.error() is None]
        warmed = bool(messages)
        accept(share, messages)
    check(warmed, "a share consumer never received a record")

produce(b"held")
held = None
deadline = time.monotonic() + 30
while held is None and time.monotonic() < deadline:
    for message in alice.poll(0.5):
        if message.error() is None and message.value() == b"held":
            held = message
        elif message.error() is None:
            accept(alice, [message])
check(held is not None, "alice never got the record")
acquired_at = time.monotonic()
# Alice keeps the record without acknowledging it (her heartbeats go on);
# Bob gets it once the lock runs out.
again = None
deadline = time.monotonic() + 60
while again is None and time.monotonic() < deadline:
    for message in bob.poll(0.5):
        if message.error() is None and message.value() == b"held":
            again = message
        elif message.error() is None:
            accept(bob, [message])
waited_s = time.monotonic() - acquired_at
check(again is not None, "the unacknowledged record was never redelivered")
check(again.offset() == held.offset() and again.delivery_count() == 2,
      f"redelivery: offset {again.offset()} count {again.delivery_count()}")
check(waited_s >= 25, f"redelivered after {waited_s:.1f} s, before the 30 s lock ran out")
accept(bob, [again])
bob.close()
alice.close()
print("ok")
