"""confluent-kafka (librdkafka) across a broker crash: a transaction open
when the broker is SIGKILLed is, after the restart, committed or aborted
as a whole (read_committed readers see all of it or none), and the
producer goes on to commit the next transaction. The test harness kills
and restarts the broker when this script prints "produced"."""
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, check, create_topics, transactional_producer, unique

topic = unique("txn-crash")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic], partitions=2)
producer = transactional_producer(unique("txn-crash-id"))
producer.begin_transaction()
for i in range(10):
    producer.produce(topic, partition=i % 2, value=str(i).encode())
check(producer.flush(30) == 0, "unflushed")
print("produced", flush=True)
check(sys.stdin.readline().strip() == "restarted", "expected the harness to restart the broker")

try:
    producer.commit_transaction(60)
    outcome = "committed"
except KafkaException as error:
    check(error.args[0].txn_requires_abort(), f"a fatal error after the restart: {error.args[0]}")
    producer.abort_transaction(60)
    outcome = "aborted"
print(f"first transaction {outcome}", file=sys.stderr)
producer.begin_transaction()
producer.produce(topic, partition=0, value=b"100")
producer.produce(topic, partition=1, value=b"101")
producer.commit_transaction(60)

reader = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("check"), "isolation.level": "read_committed",
                   "enable.auto.commit": False})
reader.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
values, deadline = [], time.monotonic() + 15
while time.monotonic() < deadline and not {100, 101} <= set(values):
    message = reader.poll(0.3)
    if message is not None and message.error() is None:
        values.append(int(message.value()))
reader.close()
first = sorted(v for v in values if v < 100)
expected = list(range(10)) if outcome == "committed" else []
check(first == expected, f"the {outcome} transaction shows {first}")
check(sorted(v for v in values if v >= 100) == [100, 101], f"the next transaction: {values}")
print("ok")
