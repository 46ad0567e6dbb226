"""confluent-kafka (librdkafka) AdminClient: describe and incrementally alter
topic configs, add partitions, delete records, list offsets, describe the
cluster and topics; LogAppendTime topics stamp the broker's time."""
import time

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, OffsetSpec, ResourceType)
from confluent_kafka import TopicCollection

from common import BOOTSTRAP, check, unique

topic = unique("rdk-admin")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                            config={"retention.bytes": "1048576"})]).values():
    future.result(timeout=30)

resource = ConfigResource(ResourceType.TOPIC, topic)


def described():
    return admin.describe_configs([resource])[resource].result(timeout=30)


configs = described()
check(configs["retention.bytes"].value == "1048576", f"retention.bytes: {configs['retention.bytes']}")
check(configs["retention.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
      f"source: {configs['retention.bytes'].source}")
check(configs["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value, "cleanup.policy is a default")

change = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("durability", "interval:50", incremental_operation=AlterConfigOpType.SET),
    ConfigEntry("retention.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
])
admin.incremental_alter_configs([change])[change].result(timeout=30)
configs = described()
check(configs["durability"].value == "interval:50", f"durability: {configs['durability']}")
check(configs["retention.bytes"].value == "-1" and configs["retention.bytes"].is_default,
      f"retention.bytes after DELETE: {configs['retention.bytes']}")

bad = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("no.such.key", "1", incremental_operation=AlterConfigOpType.SET)])
try:
    admin.incremental_alter_configs([bad])[bad].result(timeout=30)
    check(False, "an unknown config key was accepted")
except KafkaException as error:
    check(error.args[0].name() == "INVALID_CONFIG", f"unknown key: {error}")

admin.create_partitions([NewPartitions(topic, 2)])[topic].result(timeout=30)
described_topic = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=30)
check(len(described_topic.partitions) == 2, f"partitions: {described_topic.partitions}")

producer = Producer({"bootstrap.servers": BOOTSTRAP})
for index in range(6):
    producer.produce(topic, f"v{index}".encode(), partition=1)
check(producer.flush(30) == 0, "produce did not finish")

partition = TopicPartition(topic, 1, 2)
deleted = admin.delete_records([partition])
check(deleted[partition].result(timeout=30).low_watermark == 2, "low watermark after delete_records")

earliest = admin.list_offsets({TopicPartition(topic, 1): OffsetSpec.earliest()})
latest = admin.list_offsets({TopicPartition(topic, 1): OffsetSpec.latest()})
check(list(earliest.values())[0].result(timeout=30).offset == 2, "earliest offset after delete_records")
check(list(latest.values())[0].result(timeout=30).offset == 6, "latest offset")

consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("rdk-admin-reader"),
                     "auto.offset.reset": "earliest"})
consumer.assign([TopicPartition(topic, 1)])
values = []
for _ in range(100):
    if len(values) == 4:
        break
    message = consumer.poll(1.0)
    if message is not None and message.error() is None:
        values.append(message.value())
consumer.close()
check(values == [b"v2", b"v3", b"v4", b"v5"], f"read after delete_records: {values}")

# LogAppendTime: the broker's clock replaces the producer's timestamp.
change = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET)])
admin.incremental_alter_configs([change])[change].result(timeout=30)
before_ms = int(time.time() * 1000)
producer.produce(topic, b"stamped", partition=0, timestamp=1000)
check(producer.flush(30) == 0, "produce did not finish")
consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("rdk-admin-stamps"),
                     "auto.offset.reset": "earliest"})
consumer.assign([TopicPartition(topic, 0)])
stamped = None
for _ in range(100):
    message = consumer.poll(1.0)
    if message is not None and message.error() is None:
        stamped = message
        break
consumer.close()
check(stamped is not None and stamped.value() == b"stamped", "the LogAppendTime record was not read")
kind, timestamp = stamped.timestamp()
check(kind == TIMESTAMP_LOG_APPEND_TIME and timestamp >= before_ms - 1000,
      f"timestamp {(kind, timestamp)}, produced at {before_ms}")

cluster = admin.describe_cluster().result(timeout=30)
check([node.id for node in cluster.nodes] == [1] and cluster.controller.id == 1, f"cluster: {cluster}")

for future in admin.delete_topics([topic]).values():
    future.result(timeout=30)
print("ok")
