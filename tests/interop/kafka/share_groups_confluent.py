"""confluent-kafka's ShareConsumer (KIP-932) against a share group: two
consumers split one partition's records (together each record once, both
get some), a RELEASEd record comes back with delivery count 2, a REJECTed
one never comes back."""
import threading
import time

from confluent_kafka import AcknowledgeType

from common import check
from share_common import ShareTopic, polled, settle

shared = ShareTopic("rdk-share")
produce, consumer = shared.produce, shared.consumer

# A new share-partition starts at the latest offset (share.auto.offset.reset
# defaults to latest), so each consumer first proves it fetches: warm-up
# records are produced until it has received one.
alice, bob = consumer(), consumer()
ready = {}
for name, share in (("alice", alice), ("bob", bob)):
    deadline = time.monotonic() + 60
    while name not in ready and time.monotonic() < deadline:
        produce(b"warm")
        messages = polled(share, 0.5)
        if messages:
            ready[name] = True
            settle(share, messages)
    check(name in ready, f"{name} never received a record")

# Split: both consumers poll at once; together they see each record once.
expected = {f"r{index}".encode() for index in range(60)}
seen = {"alice": [], "bob": []}
stop = threading.Event()


def run(name, share):
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        messages = polled(share, 0.2)
        seen[name].extend(m.value() for m in messages if m.value() != b"warm")
        settle(share, messages)
        if set(seen["alice"]) | set(seen["bob"]) >= expected:
            stop.set()


threads = [threading.Thread(target=run, args=(name, share)) for name, share in (("alice", alice), ("bob", bob))]
for thread in threads:
    thread.start()
produce(*sorted(expected))
for thread in threads:
    thread.join(90)
together = seen["alice"] + seen["bob"]
check(sorted(together) == sorted(expected), f"each record once: alice {len(seen['alice'])}, bob {len(seen['bob'])}")
check(seen["alice"] and seen["bob"], f"both got records: alice {len(seen['alice'])}, bob {len(seen['bob'])}")
print(f"split: alice {len(seen['alice'])}, bob {len(seen['bob'])}")
bob.close()


def next_record(share, value, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in polled(share, 0.5):
            if message.value() == value:
                return message
            settle(share, [message])
    return None


# RELEASE: the record comes back, delivered a second time.
produce(b"released")
first = next_record(alice, b"released")
check(first is not None and first.delivery_count() == 1, f"first delivery: {first and first.delivery_count()}")
settle(alice, [first], AcknowledgeType.RELEASE)
again = next_record(alice, b"released")
check(again is not None and again.delivery_count() == 2, f"redelivery count: {again and again.delivery_count()}")
check(again.offset() == first.offset(), "the same record")
settle(alice, [again])

# REJECT: archived, never delivered again.
produce(b"rejected")
rejected = next_record(alice, b"rejected")
check(rejected is not None, "the record to reject arrived")
settle(alice, [rejected], AcknowledgeType.REJECT)
produce(b"after")
deadline = time.monotonic() + 30
after = None
while after is None and time.monotonic() < deadline:
    for message in polled(alice, 0.5):
        check(message.value() != b"rejected", "a rejected record came back")
        if message.value() == b"after":
            after = message
        settle(alice, [message])
check(after is not None, "the record after the rejected one arrived")
alice.close()
print("ok")
