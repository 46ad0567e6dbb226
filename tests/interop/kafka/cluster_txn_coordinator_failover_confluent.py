"""A transaction in flight survives the death of its coordinator, on a
three-node Conveyor cluster (issue 17).

argv: BOOTSTRAP (every node's Kafka address, comma-separated) and TOPIC.

Creates TOPIC with one partition and replication factor 3. A
confluent-kafka transactional producer commits 50 records, then begins a
second transaction and writes 30 records into it (flushed: they are in the
log, not committed). Prints `open` and waits for `killed` on stdin (the
test SIGKILLs the metadata leader, which coordinates every transactional
id). The producer then commits the open transaction through the new
coordinator, which holds its state; if the client gives up on it instead,
a new producer with the same transactional.id initialises, which aborts
it. Either way a third transaction of 20 records commits. A read_committed
consumer reads every committed record exactly once, in order, and no
record of an aborted transaction. Prints `second committed` or `second
aborted`, then `ok`."""
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from common import check, read_committed_values, replicated_topic, unique

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
FIRST, SECOND, THIRD = 50, 30, 20
WAIT_SECONDS = 60
TRANSACTIONAL_ID = unique("coordinator-failover")

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
replicated_topic(admin, TOPIC, 1, WAIT_SECONDS)


def producer():
    made = Producer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "transactional.id": TRANSACTIONAL_ID,
            "enable.idempotence": True,
            "acks": "all",
            "transaction.timeout.ms": 60000,
        }
    )
    made.init_transactions(WAIT_SECONDS)
    return made


def produce(transactional, prefix, count):
    for index in range(count):
        transactional.produce(TOPIC, value=f"{prefix}-{index}".encode(), partition=0)
    check(transactional.flush(30) == 0, f"the {prefix} records were sent")


writer = producer()
writer.begin_transaction()
produce(writer, "first", FIRST)
writer.commit_transaction(30)
writer.begin_transaction()
produce(writer, "second", SECOND)

print("open", flush=True)
check(sys.stdin.readline().strip() == "killed", "the test says the coordinator is killed")

try:
    writer.commit_transaction(WAIT_SECONDS)
    second_committed = True
except KafkaException as error:
    # The client may give the transaction up (a fatal or abortable error):
    # a new producer with the same id then aborts it as it initialises.
    print(f"the open transaction failed: {error}", file=sys.stderr, flush=True)
    second_committed = False
    writer = producer()
print("second committed" if second_committed else "second aborted", flush=True)
writer.begin_transaction()
produce(writer, "third", THIRD)
writer.commit_transaction(WAIT_SECONDS)

expected = [f"first-{index}" for index in range(FIRST)]
if second_committed:
    expected += [f"second-{index}" for index in range(SECOND)]
expected += [f"third-{index}" for index in range(THIRD)]

consumer = Consumer(
    {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": unique("coordinator-failover-reader"),
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    }
)
consumer.assign([TopicPartition(TOPIC, 0, 0)])
read_committed_values(consumer, expected, WAIT_SECONDS)
consumer.close()
print("ok", flush=True)
