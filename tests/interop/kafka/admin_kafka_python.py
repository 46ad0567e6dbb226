"""kafka-python admin client: topic configs described, changed (incremental
and whole-set) and reset, with bad values refused; broker configs read-only;
partitions added and used; records deleted below an offset and no longer
served; the cluster described."""
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from common import BOOTSTRAP, check, unique

topic = unique("admin")
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                              topic_configs={"retention.ms": "3600000"})])


def topic_configs(config_filter="all"):
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                       include_synonyms=True, config_filter=config_filter)
    return described["topic"][topic]


configs = topic_configs()
check(configs["retention.ms"]["value"] == "3600000", f"retention.ms: {configs['retention.ms']}")
check(configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG", f"source: {configs['retention.ms']}")
check(configs["segment.bytes"]["config_source"] == "DEFAULT_CONFIG", f"source: {configs['segment.bytes']}")
check(configs["durability"]["value"] == "always", f"durability: {configs['durability']}")
check(set(topic_configs("modified")) == {"retention.ms"}, f"modified: {topic_configs('modified')}")
synonyms = {synonym["name"] for synonym in configs["retention.ms"]["synonyms"]}
check(synonyms == {"retention.ms", "log.retention.ms"}, f"synonyms: {synonyms}")

# Incremental: set one key, leave the others.
result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": "2000"})])
check(result == {"topic": {topic: "OK"}}, f"incremental alter: {result}")
configs = topic_configs()
check(configs["max.message.bytes"]["value"] == "2000", f"max.message.bytes: {configs['max.message.bytes']}")
check(configs["retention.ms"]["value"] == "3600000", "an incremental change reset another key")

# A record batch over the new max.message.bytes is refused with Kafka's error.
producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, retries=0)
try:
    producer.send(topic, b"x" * 5000).get(timeout=30)
    check(False, "a batch over max.message.bytes was accepted")
except Exception as error:  # noqa: BLE001 - the error class is what is checked
    check(type(error).__name__ == "MessageSizeTooLargeError", f"oversized batch: {error!r}")
producer.close()

# Whole-set AlterConfigs: keys not named go back to their defaults.
result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"segment.ms": "600000"})],
                             incremental=False)
check(result == {"topic": {topic: "OK"}}, f"whole-set alter: {result}")
modified = topic_configs("modified")
check(set(modified) >= {"segment.ms"}, f"after whole-set alter: {modified}")
check(modified["segment.ms"]["value"] == "600000", f"segment.ms: {modified['segment.ms']}")

# Reset everything back to the defaults.
admin.reset_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={})])
check(topic_configs("modified") == {}, f"after reset: {topic_configs('modified')}")

# Bad values and unknown keys are refused and change nothing.
result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "soon"})])
error = result["topic"][topic]
check(error.startswith("[Error 40] InvalidConfigurationError"), f"bad value: {error!r}")
check(topic_configs("modified") == {}, "a refused change was applied")

# Broker configs are there, read-only.
broker = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")["broker"]["1"]
check(broker["num.partitions"]["value"] == "1", f"num.partitions: {broker.get('num.partitions')}")
check(broker["log.retention.ms"]["read_only"], "broker configs are read-only")

# More partitions, and the new one takes writes.
admin.create_partitions({topic: 3})
check(len(admin.describe_topics([topic])[0]["partitions"]) == 3, "partition count after create_partitions")
try:
    admin.create_partitions({topic: 2})
    check(False, "shrinking a topic was accepted")
except Exception as error:  # noqa: BLE001
    check(type(error).__name__ == "InvalidPartitionsError", f"shrink: {error!r}")
producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
for index in range(10):
    producer.send(topic, f"m{index}".encode(), partition=2).get(timeout=30)
producer.flush()

# Delete records below offset 4 of partition 2: the log start moves, reads start there.
partition = TopicPartition(topic, 2)
deleted = admin.delete_records({partition: 4})
check(deleted[partition]["low_watermark"] == 4, f"delete_records: {deleted}")
consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", consumer_timeout_ms=5000)
consumer.assign([partition])
consumer.seek_to_beginning(partition)
check(consumer.position(partition) == 4, f"earliest after delete_records: {consumer.position(partition)}")
values = [record.value for record in consumer]
check(values == [f"m{index}".encode() for index in range(4, 10)], f"read after delete_records: {values}")
consumer.close()
producer.close()

cluster = admin.describe_cluster()
check([broker["broker_id"] for broker in cluster["brokers"]] == [1], f"brokers: {cluster['brokers']}")
check(cluster["controller_id"] == 1 and cluster["cluster_id"], f"cluster: {cluster}")

admin.delete_topics([topic])
check(topic not in admin.list_topics(), "deleted topic still listed")
admin.close()
print("ok")
