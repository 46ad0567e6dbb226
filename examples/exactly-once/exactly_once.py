"""Exactly-once processing with Kafka transactions, in kafka-python.

A processor reads payments and writes one ledger entry per payment. Each
batch is one transaction: the ledger entries and the consumer offsets of
the payments they came from commit together, or not at all. The first
processor instance writes a batch and then hangs mid-transaction (a
zombie); a new instance with the same `transactional.id` fences it: the
zombie's open transaction is aborted and it can no longer commit, and the
new instance resumes from the committed offsets. Exits non-zero unless a
`read_committed` reader sees exactly one ledger entry per payment, in order,
while the aborted entries are in the log (a `read_uncommitted` reader sees
them)."""
import os
import sys
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
run = uuid.uuid4().hex[:8]
PAYMENTS, LEDGER, GROUP, TXN_ID = f"payments-{run}", f"ledger-{run}", f"ledger-builder-{run}", f"ledger-writer-{run}"
COUNT, BATCH = 20, 5
DEADLINE_S = 60

admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(PAYMENTS, 1, 1), NewTopic(LEDGER, 1, 1)])
source = TopicPartition(PAYMENTS, 0)

producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
for n in range(COUNT):
    producer.send(PAYMENTS, f"payment-{n}".encode())
producer.flush()
producer.close()


def processor():
    """One processor instance: a transactional producer and a consumer of payments from the group's committed offset."""
    consumer = KafkaConsumer(
        bootstrap_servers=BOOTSTRAP, group_id=GROUP, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed",
    )
    consumer.assign([source])
    txn = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=TXN_ID, acks="all")
    txn.init_transactions()  # fences any older instance with the same transactional.id
    return consumer, txn


def process_batch(consumer, txn, commit=True):
    """Reads up to BATCH payments and writes their ledger entries in one transaction."""
    deadline = time.monotonic() + DEADLINE_S
    records = []
    while len(records) < BATCH and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200, max_records=BATCH - len(records)).values():
            records.extend(batch)
    txn.begin_transaction()
    for record in records:
        txn.send(LEDGER, b"ledger entry for " + record.value)
    txn.send_offsets_to_transaction({source: OffsetAndMetadata(records[-1].offset + 1, "", -1)}, GROUP)
    if commit:
        txn.commit_transaction()
    else:
        txn.flush()  # the entries are in the log, uncommitted; then the instance hangs
    return len(records)


try:
    zombie_consumer, zombie = processor()
except KafkaError as error:
    sys.exit(f"FAILED: the broker refused a transactional producer: {error!r}")
done = process_batch(zombie_consumer, zombie) + process_batch(zombie_consumer, zombie)
process_batch(zombie_consumer, zombie, commit=False)
print(f"instance 1 committed {done} payments, then hung with {BATCH} uncommitted ledger entries")

consumer, txn = processor()  # the replacement instance
print(f"instance 2 resumes at offset {consumer.position(source)}")
zombie_fenced = False
try:
    zombie.commit_transaction()
except KafkaError as error:
    zombie_fenced = True
    print(f"instance 1 tried to commit and was fenced: {type(error).__name__}")
while done < COUNT:
    done += process_batch(consumer, txn)


def read_ledger(isolation_level):
    """Every ledger entry a reader with this isolation level sees, up to the end of the log."""
    reader = KafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level=isolation_level, enable_auto_commit=False)
    ledger = TopicPartition(LEDGER, 0)
    reader.assign([ledger])
    reader.seek_to_beginning(ledger)
    end = reader.end_offsets([ledger])[ledger]  # for read_committed: the last stable offset
    values = []
    deadline = time.monotonic() + DEADLINE_S
    while reader.position(ledger) < end and time.monotonic() < deadline:
        values.extend(record.value.decode() for record in reader.poll(timeout_ms=200).get(ledger, []))
    reader.close()
    return values


committed, everything = read_ledger("read_committed"), read_ledger("read_uncommitted")
print(f"read_committed sees {len(committed)} ledger entries; read_uncommitted sees {len(everything)}")
for client in (consumer, zombie_consumer):
    client.close()
txn.close()
admin.delete_topics([PAYMENTS, LEDGER])
admin.close()

failures = []
if committed != [f"ledger entry for payment-{n}" for n in range(COUNT)]:
    failures.append(f"read_committed saw {committed}")
if len(everything) != COUNT + BATCH:
    failures.append(f"read_uncommitted saw {len(everything)} entries, expected {COUNT + BATCH} with the aborted ones")
if not zombie_fenced:
    failures.append("the zombie instance could still commit")
if failures:
    sys.exit("FAILED: " + "; ".join(failures))
print("ok: every payment is in the ledger exactly once although a processor died mid-transaction")
