"""A share group's share.auto.offset.reset, set to earliest through
IncrementalAlterConfigs on the GROUP resource: a ShareConsumer then gets the
records produced before the group's first fetch; an unknown group config
or value is refused with INVALID_CONFIG."""
import time

from confluent_kafka import AcknowledgeType, KafkaException, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, check, create_topics, unique
from share_common import set_group_configs

topic = unique("rdk-share-reset")
group = unique("rdk-share-reset-group")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic])


def alter(key, value):
    set_group_configs(admin, group, {key: value})


for key, value in (("share.auto.offset.reset", "sometimes"), ("no.such.group.config", "1")):
    try:
        alter(key, value)
        check(False, f"{key}={value} was accepted")
    except KafkaException as error:
        check(error.args[0].name() == "INVALID_CONFIG", f"{key}={value}: {error}")
alter("share.auto.offset.reset", "earliest")

producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})
records = [f"early{index}".encode() for index in range(5)]
for value in records:
    producer.produce(topic, value, partition=0)
check(producer.flush(30) == 0, "produce did not finish")

share = ShareConsumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "share.acknowledgement.mode": "explicit"})
share.subscribe([topic])
got = []
deadline = time.monotonic() + 30
while len(got) < len(records) and time.monotonic() < deadline:
    messages = [m for m in share.poll(0.5) if m.error() is None]
    got.extend(m.value() for m in messages)
    for message in messages:
        share.acknowledge(message, AcknowledgeType.ACCEPT)
    if messages:
        share.commit_sync(30)
check(got == records, f"records from before the first fetch: {got}")
share.close()
print("ok")
