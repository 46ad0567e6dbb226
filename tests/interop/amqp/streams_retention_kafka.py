"""A stream's retention changed after its declaration applies at once: pika
declares a stream of 1 MiB segments and publishes 3 MiB; confluent-kafka's
IncrementalAlterConfigs sets retention.bytes on the stream's topic, and a
pika stream consumer from `first` right after the answer starts past the
removed segments, as does a Kafka consumer's earliest offset.
DescribeConfigs says the new retention; retention.ms of whole seconds is
the stream's x-max-age, a key that is no retention's is refused with
POLICY_VIOLATION, and retention.ms of a fraction of a second with
INVALID_CONFIG."""
import os

import pika
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from common import URL, check, pump_until, unique

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
SEGMENT_BYTES = 1 << 20
RECORDS = 30
RECORD_BYTES = 100 << 10

stream = unique("retained")
connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
channel.queue_declare(stream, durable=True,
                      arguments={"x-queue-type": "stream", "x-stream-max-segment-size-bytes": SEGMENT_BYTES})
channel.confirm_delivery()
for index in range(RECORDS):
    channel.basic_publish("", stream, f"{index:04}".encode() + b"x" * RECORD_BYTES)


def first_offset():
    """The x-stream-offset of the first delivery to a new consumer from `first`."""
    reader = connection.channel()
    reader.basic_qos(prefetch_count=1)
    offsets = []
    reader.basic_consume(stream, lambda ch, method, properties, body: offsets.append(properties.headers["x-stream-offset"]),
                         arguments={"x-stream-offset": "first"})
    pump_until(connection, lambda: offsets, "a first delivery", seconds=20)
    reader.close()
    return offsets[0]


check(first_offset() == 0, "a stream keeps everything unless told otherwise")

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})


def alter(*entries):
    resource = ConfigResource(ResourceType.TOPIC, stream, incremental_configs=list(entries))
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)


def described():
    resource = ConfigResource(ResourceType.TOPIC, stream)
    return admin.describe_configs([resource])[resource].result(timeout=30)


alter(ConfigEntry("retention.bytes", "1", incremental_operation=AlterConfigOpType.SET))
start = first_offset()
check(0 < start < RECORDS, f"after retention.bytes=1 a reader from first starts at {start}, not past the sealed segments")
check(described()["retention.bytes"].value == "1", f"retention.bytes: {described()['retention.bytes']}")

consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("retained-group")})
low, high = consumer.get_watermark_offsets(TopicPartition(stream, 0), timeout=30)
consumer.close()
check((low, high) == (start, RECORDS), f"Kafka's offsets of the stream: {(low, high)}, want {(start, RECORDS)}")

alter(ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
      ConfigEntry("retention.bytes", None, incremental_operation=AlterConfigOpType.DELETE))
configs = described()
check(configs["retention.ms"].value == "3600000", f"retention.ms: {configs['retention.ms']}")
check(configs["retention.bytes"].value == "-1", f"retention.bytes after DELETE: {configs['retention.bytes']}")
passive = connection.channel()
# The stream's own arguments say the same: a redeclaration with them is equivalent.
passive.queue_declare(stream, durable=True, arguments={
    "x-queue-type": "stream", "x-stream-max-segment-size-bytes": SEGMENT_BYTES, "x-max-age": "3600s"})
passive.close()

for entry, code in [
    (ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET), KafkaError.POLICY_VIOLATION),
    (ConfigEntry("retention.ms", "1500", incremental_operation=AlterConfigOpType.SET), KafkaError.INVALID_CONFIG),
]:
    try:
        alter(entry)
        check(False, f"{entry.name}={entry.value} was accepted")
    except KafkaException as error:
        check(error.args[0].code() == code, f"{entry.name}={entry.value}: {error.args[0]}, want {code}")

connection.channel().queue_delete(stream)
connection.close()
print("a stream's retention changed by Kafka applies at once")
