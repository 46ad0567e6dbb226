"""confluent-kafka (librdkafka) read_committed consumers across a broker
restart: an aborted transaction, then enough committed data to roll
several segments (segment.bytes at Kafka's 1 MiB minimum), then another
aborted transaction; the harness stops and restarts the broker when this
script prints "produced". From the beginning, a read_committed consumer
then sees every committed record and no aborted one (the broker finds the
aborted transactions in the segments' transaction indexes, however far
back), and a read_uncommitted consumer sees both (never a marker)."""
import sys

from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, check, create_topics, read_to_end, transactional_producer, unique

topic = unique("rc-restart")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic], partitions=1, config={"segment.bytes": str(1024 * 1024)})
producer = transactional_producer(unique("rc-restart-id"))
PADDING = b"x" * 10_000


def transaction(values, commit):
    producer.begin_transaction()
    for value in values:
        producer.produce(topic, partition=0, key=value.encode(), value=PADDING)
    check(producer.flush(30) == 0, "unflushed messages")
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)


aborted = [f"aborted-first-{i}" for i in range(20)]
transaction(aborted, commit=False)
committed = []
# About 4 MiB of committed records: several 1 MiB segments after the abort.
for round in range(8):
    values = [f"committed-{round}-{i}" for i in range(50)]
    transaction(values, commit=True)
    committed += values
last_aborted = [f"aborted-last-{i}" for i in range(5)]
transaction(last_aborted, commit=False)
aborted += last_aborted
tail = [f"committed-tail-{i}" for i in range(5)]
transaction(tail, commit=True)
committed += tail
print("produced", flush=True)
check(sys.stdin.readline().strip() == "restarted", "expected the harness to restart the broker")


def read_all(isolation):
    """Every record's key from offset 0 to the partition's end."""
    return [key for _, key, _ in read_to_end(topic, isolation, seconds=60)]


seen = read_all("read_committed")
leaked = [key for key in seen if key.startswith("aborted")]
check(leaked == [], f"read_committed after the restart saw {len(leaked)} aborted records: {leaked[:5]}")
check(seen == committed, f"read_committed saw {len(seen)} records, {len(committed)} committed")
everything = read_all("read_uncommitted")
check(sorted(everything) == sorted(committed + aborted),
      f"read_uncommitted saw {len(everything)} records, {len(committed) + len(aborted)} written")
print("ok")
