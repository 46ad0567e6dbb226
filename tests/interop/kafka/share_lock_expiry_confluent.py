"""A record a ShareConsumer acquired and never acknowledged is delivered
again, to another consumer of the share group, once its acquisition lock
(group.share.record.lock.duration.ms, 30 s by default) has run out."""
import time

from common import check
from share_common import ShareTopic, settle

shared = ShareTopic("rdk-share-lock")
produce = shared.produce


def consumer():
    return shared.consumer(max_poll_records=1)


alice, bob = consumer(), consumer()
# Both consumers first prove they fetch (the share-partition starts at the end).
for share in (alice, bob):
    deadline = time.monotonic() + 60
    warmed = False
    while not warmed and time.monotonic() < deadline:
        produce(b"warm")
        messages = [m for m in share.poll(0.5) if m.error() is None]
        warmed = bool(messages)
        settle(share, messages)
    check(warmed, "a share consumer never received a record")

produce(b"held")
held = None
deadline = time.monotonic() + 30
while held is None and time.monotonic() < deadline:
    for message in alice.poll(0.5):
        if message.error() is None and message.value() == b"held":
            held = message
        elif message.error() is None:
            settle(alice, [message])
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
            settle(bob, [message])
waited_s = time.monotonic() - acquired_at
check(again is not None, "the unacknowledged record was never redelivered")
check(again.offset() == held.offset() and again.delivery_count() == 2,
      f"redelivery: offset {again.offset()} count {again.delivery_count()}")
check(waited_s >= 25, f"redelivered after {waited_s:.1f} s, before the 30 s lock ran out")
settle(bob, [again])
bob.close()
alice.close()
print("ok")
