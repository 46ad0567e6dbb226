"""A share group's state survives a broker restart: records a
ShareConsumer accepted before it are never delivered again, and every other
record (acquired but unsettled, or never fetched) is delivered after it.
The test restarts the broker between the script's two halves: the script
prints "accepted", then waits for a line on stdin."""
import sys
import time

from common import check
from share_common import ShareTopic, polled, settle, warm_up

shared = ShareTopic("rdk-share-restart")
produce, consumer = shared.produce, shared.consumer

share = consumer()
check(warm_up(shared, share), "the share consumer never received a record")

records = [f"r{index}".encode() for index in range(10)]
produce(*records)
accepted = set()
deadline = time.monotonic() + 30
while len(accepted) < 3 and time.monotonic() < deadline:
    messages = [m for m in polled(share, 0.5) if m.value() != b"warm"]
    # Accept the first three records only; the rest stay acquired, unsettled.
    to_accept = [m for m in messages if m.value() in records[:3]]
    settle(share, to_accept)
    accepted |= {m.value() for m in to_accept}
check(accepted == set(records[:3]), f"accepted before the restart: {accepted}")
print("accepted", flush=True)
sys.stdin.readline()

share = consumer()
after = []
deadline = time.monotonic() + 60
while set(after) != set(records[3:]) and time.monotonic() < deadline:
    messages = polled(share, 0.5)
    after.extend(m.value() for m in messages if m.value() != b"warm")
    check(not any(m.value() in accepted for m in messages), f"an accepted record came back: {after}")
    settle(share, messages)
check(sorted(after) == sorted(records[3:]), f"delivered after the restart: {after}")
share.close()
print("ok")
