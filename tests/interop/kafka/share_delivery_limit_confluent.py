"""confluent-kafka's ShareConsumer against a share group whose own
share.delivery.count.limit (a group config, KIP-932) is 2 instead of
Kafka's default 5: a record RELEASEd after its second delivery is
archived, never delivered a third time."""
import time

from confluent_kafka import AcknowledgeType

from common import check
from share_common import ShareTopic, consume_until, polled, set_group_configs, settle

shared = ShareTopic("rdk-share-limit")
set_group_configs(shared.admin, shared.group, {"share.auto.offset.reset": "earliest", "share.delivery.count.limit": "2"})
shared.produce(b"poison")
share = shared.consumer()


def next_delivery(timeout_s=30):
    """The records of the first poll that returns any, within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = polled(share, 0.5)
        if messages:
            return messages
    return []


counts = []
for _ in range(2):
    messages = next_delivery()
    check([message.value() for message in messages] == [b"poison"], f"delivery: {[m.value() for m in messages]}")
    counts.append(messages[0].delivery_count())
    settle(share, messages, AcknowledgeType.RELEASE)
check(counts == [1, 2], f"delivery counts: {counts}")
shared.produce(b"after")
got = consume_until(share, b"after")
check(got == [b"after"], f"released after its second delivery, the record is archived: {got}")
share.close()
print("archived after 2 deliveries")
