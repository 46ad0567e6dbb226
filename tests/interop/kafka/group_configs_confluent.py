"""Group configs (KIP-848, KIP-932) through confluent-kafka's AdminClient:
IncrementalAlterConfigs on a GROUP resource is checked as Kafka checks it
(INVALID_CONFIG with Kafka's messages), DescribeConfigs shows the group's
own values and the broker's defaults, and the values survive a broker
restart and are used: after it, the group's share.isolation.level
(read_committed) keeps an aborted transaction from its ShareConsumer.
The test restarts the broker between the script's two halves: the script
prints "set", then waits for a line on stdin."""
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, ResourceType

from common import check, in_transaction, transactional_producer, unique
from share_common import ShareTopic, consume_until, set_group_configs

shared = ShareTopic("rdk-group-configs")
admin, group = shared.admin, shared.group


def refused(key, value, message):
    try:
        set_group_configs(admin, group, {key: value})
        check(False, f"{key}={value} was accepted")
    except KafkaException as error:
        check(error.args[0].name() == "INVALID_CONFIG", f"{key}={value}: {error}")
        check(message in error.args[0].str(), f"{key}={value}: {error.args[0].str()!r}")


def described():
    resource = ConfigResource(ResourceType.GROUP, group)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: (entry.value, entry.is_default) for name, entry in entries.items()}


refused("no.such.config", "1", "Unknown group config name: no.such.config")
refused("share.record.lock.duration.ms", "1000",
        "share.record.lock.duration.ms must be greater than or equal to group.share.min.record.lock.duration.ms")
refused("consumer.heartbeat.interval.ms", "20000",
        "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms")
refused("share.session.timeout.ms", "soon", "Invalid value soon for configuration share.session.timeout.ms")
refused("share.isolation.level", "read_nothing", "Invalid value read_nothing for configuration share.isolation.level")

before = described()
check(before["share.isolation.level"] == ("read_uncommitted", True), f"default isolation: {before}")
check(before["share.record.lock.duration.ms"] == ("30000", True), f"default lock duration: {before}")
set_group_configs(admin, group, {"share.isolation.level": "read_committed", "share.auto.offset.reset": "earliest"})
set_group_configs(admin, group, {"share.record.lock.duration.ms": "15000", "consumer.session.timeout.ms": "50000"})
expected = {
    "share.isolation.level": ("read_committed", False),
    "share.auto.offset.reset": ("earliest", False),
    "share.record.lock.duration.ms": ("15000", False),
    "consumer.session.timeout.ms": ("50000", False),
    "share.session.timeout.ms": ("45000", True),
}
after = described()
for name, value in expected.items():
    check(after.get(name) == value, f"{name}: {after.get(name)} after the change")
print("set", flush=True)

check(sys.stdin.readline().strip() == "restarted", "expected 'restarted' on stdin")
restarted = described()
for name, value in expected.items():
    check(restarted.get(name) == value, f"{name}: {restarted.get(name)} after the restart")

producer = transactional_producer(unique("group-configs"), {"linger.ms": 0})
in_transaction(producer, shared.topic, [b"aborted"], "abort")
in_transaction(producer, shared.topic, [b"committed"])
share = shared.consumer()
got = consume_until(share, b"committed")
check(got == [b"committed"], f"the restarted group's read_committed share consumer got {got}")
share.close()
print("ok")
