"""kafka-python transactions: a transactional KafkaProducer commits and
aborts; a read_committed KafkaConsumer sees only the committed records and
a read_uncommitted one sees every record, never a marker."""
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from common import BOOTSTRAP, check, unique

topic = unique("kp-txn")
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=unique("kp-txn-id"))
producer.init_transactions()


def send(values):
    for value in values:
        producer.send(topic, partition=value % 2, value=str(value).encode())


producer.begin_transaction()
send(range(0, 6))
producer.commit_transaction()
producer.begin_transaction()
send(range(100, 104))
producer.flush()  # Written to the log before the abort, not dropped unsent.
producer.abort_transaction()
producer.begin_transaction()
send(range(6, 8))
producer.commit_transaction()
producer.close()


def read(isolation, expected):
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level=isolation, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    consumer.seek_to_beginning()
    values, deadline = [], time.monotonic() + 20
    while time.monotonic() < deadline and len(values) < expected:
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(int(record.value) for record in records)
    # Nothing more arrives after the expected count.
    for records in consumer.poll(timeout_ms=1000).values():
        values.extend(int(record.value) for record in records)
    consumer.close()
    return sorted(values)


committed = read("read_committed", 8)
check(committed == list(range(8)), f"read_committed saw {committed}")
everything = read("read_uncommitted", 12)
check(everything == list(range(8)) + list(range(100, 104)), f"read_uncommitted saw {everything}")
print("ok")
