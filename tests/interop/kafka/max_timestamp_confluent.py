"""confluent-kafka (librdkafka) AdminClient.list_offsets with
OffsetSpec.max_timestamp(): the offset and timestamp of the record with the
largest timestamp, wherever it sits in the partition (ListOffsets v7+)."""
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from common import BOOTSTRAP, check, create_topics, unique

topic = unique("rdk-max-ts")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic])
partition = TopicPartition(topic, 0)


def listed(spec):
    return admin.list_offsets({partition: spec})[partition].result(timeout=30)


empty = listed(OffsetSpec.max_timestamp())
check(empty.offset == -1, f"an empty partition has no record with a largest timestamp: {empty}")

# Out of order: the largest timestamp is the third record of six.
producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})
timestamps = [1_700_000_001_000, 1_700_000_002_000, 1_700_000_009_000, 1_700_000_003_000,
              1_700_000_004_000, 1_700_000_005_000]
for index, timestamp in enumerate(timestamps):
    producer.produce(topic, f"v{index}".encode(), partition=0, timestamp=timestamp)
    # One batch per record, so the answer is the record, not a batch's base offset.
    check(producer.flush(30) == 0, "produce did not finish")

found = listed(OffsetSpec.max_timestamp())
check((found.offset, found.timestamp) == (2, 1_700_000_009_000), f"max timestamp: {found}")
check(listed(OffsetSpec.latest()).offset == 6, "latest is the high watermark")
check(listed(OffsetSpec.earliest()).offset == 0, "earliest")
by_time = listed(OffsetSpec.for_timestamp(1_700_000_003_500))
check(by_time.offset == 2, f"the first record at or after a time: {by_time}")
print("ok")
