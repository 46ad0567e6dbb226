"""confluent-kafka transactions on a three-node Conveyor cluster (issue 17).

argv: BOOTSTRAP (every node's Kafka address, comma-separated) and TOPIC.

Creates TOPIC with one partition and replication factor 3, waits until
Metadata lists a leader and three in-sync replicas, then a transactional
producer commits 50 records, aborts 20 and commits 30 more (the markers go
through the partition's Raft group, whichever node coordinates the
transaction). Prints `leader N` (the partition's leader) and waits for
`killed` on stdin (the test SIGKILLs that node). A read_committed consumer
on the survivors then reads exactly the 80 committed records, in order,
none of the aborted ones, and the last stable offset (the high watermark a
read_committed consumer is told) is past the last marker: 103 (100 records
and three markers). Prints `ok`."""
import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from common import check, read_committed_values, replicated_topic, unique, wait_for

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
WAIT_SECONDS = 60
COMMITTED_FIRST, ABORTED, COMMITTED_LAST = 50, 20, 30
LOG_END = COMMITTED_FIRST + ABORTED + COMMITTED_LAST + 3


admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
replicated_topic(admin, TOPIC, 1, WAIT_SECONDS)


def leader():
    """The partition's leader, once it has three in-sync replicas."""
    partition = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0]
    return partition.leader if partition.leader >= 0 and len(partition.isrs) == 3 else None

producer = Producer(
    {
        "bootstrap.servers": BOOTSTRAP,
        "transactional.id": unique("cluster-txn"),
        "enable.idempotence": True,
        "acks": "all",
    }
)
producer.init_transactions(30)


def transaction(prefix, count, commit):
    producer.begin_transaction()
    for index in range(count):
        producer.produce(TOPIC, value=f"{prefix}-{index}".encode(), partition=0)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.flush(30)
        producer.abort_transaction(30)


transaction("first", COMMITTED_FIRST, True)
transaction("aborted", ABORTED, False)
transaction("last", COMMITTED_LAST, True)

print(f"leader {wait_for(leader, 'the partition led with three in-sync replicas')}", flush=True)
check(sys.stdin.readline().strip() == "killed", "the test says the leader is killed")

consumer = Consumer(
    {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": unique("cluster-txn-reader"),
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
)
partition = TopicPartition(TOPIC, 0, 0)
consumer.assign([partition])
expected = [f"first-{index}" for index in range(COMMITTED_FIRST)] + [f"last-{index}" for index in range(COMMITTED_LAST)]
read_committed_values(consumer, expected, WAIT_SECONDS)


def stable_end():
    """The high watermark a read_committed consumer is told is the LSO."""
    consumer.poll(0.2)
    _, high = consumer.get_watermark_offsets(partition, cached=True)
    return high if high == LOG_END else None


wait_for(stable_end, f"the last stable offset at {LOG_END} on the new leader")
consumer.close()
print("ok", flush=True)
