"""What the share-group scripts share: a fresh one-partition topic and share
group, a producer into that partition, ShareConsumers of the group in
explicit acknowledgement mode, settling what they polled, consuming until
a value comes, and setting a group's configs."""
import time

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from common import BOOTSTRAP, check, create_topics, unique


class ShareTopic:
    """A one-partition topic and a share group over it, both new."""

    def __init__(self, prefix):
        self.topic = unique(prefix)
        self.group = unique(f"{prefix}-group")
        self.admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        create_topics(self.admin, [self.topic])
        self.producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})

    def produce(self, *values):
        for value in values:
            self.producer.produce(self.topic, value, partition=0)
        check(self.producer.flush(30) == 0, "produce did not finish")

    def consumer(self, max_poll_records=5):
        share = ShareConsumer({"bootstrap.servers": BOOTSTRAP, "group.id": self.group,
                               "share.acknowledgement.mode": "explicit", "max.poll.records": max_poll_records})
        share.subscribe([self.topic])
        return share


def warm_up(shared, share, seconds=60):
    """A new share-partition starts at the end: produces "warm" into
    `shared`'s topic until `share` receives a record (settling what it
    gets). Whether one came."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        shared.produce(b"warm")
        messages = polled(share, 0.5)
        settle(share, messages)
        if messages:
            return True
    return False


def polled(share, timeout_s):
    """The records (not errors) one poll returns."""
    return [message for message in share.poll(timeout_s) if message.error() is None]


def settle(share, messages, kind=AcknowledgeType.ACCEPT):
    """Acknowledges `messages` with `kind` and commits the acknowledgements."""
    for message in messages:
        share.acknowledge(message, kind)
    share.commit_sync(30)


def consume_until(share, value, seconds=30):
    """Everything `share` polls (and accepts) until `value` comes, or
    `seconds` pass: the values in the order they came."""
    got = []
    deadline = time.monotonic() + seconds
    while value not in got and time.monotonic() < deadline:
        messages = polled(share, 0.5)
        got.extend(message.value() for message in messages)
        settle(share, messages)
    return got


def set_group_configs(admin, group, configs):
    """Sets `configs` (name to value) on `group` with IncrementalAlterConfigs
    on its GROUP resource; raises KafkaException when the broker refuses."""
    entries = [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in configs.items()]
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
