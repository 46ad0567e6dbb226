"""Event sourcing with optimistic concurrency (kafka-python).

An account is an aggregate: its state is the replay of its events, stored as
records keyed by the account id in one partition of a topic. A writer loads
the account (replays its events, remembering the offset of the last one, its
version), decides, and appends the new event with the record header
conveyor.expected-key-offset = that version. Two writers race to withdraw
from one account whose balance covers only one withdrawal: exactly one
append wins; the other is refused (INVALID_RECORD, naming the offsets),
reloads, sees the new balance, and does not overdraw. Exits non-zero if the
guarantee did not hold."""
import json
import os
import sys
import threading
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import InvalidRecordError

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
TOPIC = f"accounts-{uuid.uuid4().hex[:8]}"
ACCOUNT = b"account-42"
PARTITION = TopicPartition(TOPIC, 0)


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def load(account):
    """Replays the account's events: (balance, version); version -1 if it has none."""
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    consumer.assign([PARTITION])
    consumer.seek_to_beginning(PARTITION)
    end = consumer.end_offsets([PARTITION])[PARTITION]
    balance, version = 0, -1
    for _ in range(100):  # bounded: each poll waits at most 1 s
        if consumer.position(PARTITION) >= end:
            break
        for record in consumer.poll(timeout_ms=1000).get(PARTITION, []):
            if record.key == account:
                event = json.loads(record.value)
                balance += event["amount"]
                version = record.offset
    consumer.close()
    return balance, version


def append(producer, account, event, version):
    """Appends `event` only if the account's latest event is still at `version`."""
    future = producer.send(TOPIC, key=account, value=json.dumps(event).encode(), partition=0,
                           headers=[("conveyor.expected-key-offset", str(version).encode())])
    return future.get(timeout=30).offset


admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
admin.close()

opener = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", retries=0)
append(opener, ACCOUNT, {"type": "opened", "amount": 0}, -1)
append(opener, ACCOUNT, {"type": "deposited", "amount": 100}, 0)
try:
    append(opener, ACCOUNT, {"type": "opened", "amount": 0}, -1)
    fail("opening the account twice was accepted")
except InvalidRecordError as refused:
    print(f"opening it again is refused: {refused}")
opener.close()

both_loaded = threading.Barrier(2, timeout=30)
outcome = {}


def withdraw(writer, amount):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", retries=0)
    balance, version = load(ACCOUNT)
    both_loaded.wait()  # both decide on the same version: a real race
    attempts = []
    for _ in range(5):
        if balance < amount:
            attempts.append(f"declined: balance {balance} < {amount}")
            break
        try:
            offset = append(producer, ACCOUNT, {"type": "withdrawn", "amount": -amount, "by": writer}, version)
            attempts.append(f"withdrew {amount} at offset {offset}")
            break
        except InvalidRecordError as refused:
            attempts.append(f"refused at version {version}: {refused}")
            balance, version = load(ACCOUNT)  # re-read, decide again
    producer.close()
    outcome[writer] = attempts


threads = [threading.Thread(target=withdraw, args=(writer, 70)) for writer in ("alice", "bob")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(60)
for writer, attempts in sorted(outcome.items()):
    print(f"{writer}: " + "; ".join(attempts))

if len(outcome) != 2:
    fail(f"a writer did not finish: {outcome}")
winners = [w for w, attempts in outcome.items() if attempts[0].startswith("withdrew")]
losers = [w for w, attempts in outcome.items() if attempts[0].startswith("refused")]
if len(winners) != 1 or len(losers) != 1:
    fail(f"exactly one writer must win the race: {outcome}")
if not outcome[losers[0]][-1].startswith("declined"):
    fail(f"the loser must re-read and see the balance no longer covers it: {outcome[losers[0]]}")
balance, version = load(ACCOUNT)
if balance != 30:
    fail(f"the account holds {balance}, not 30: an overdraft or a lost withdrawal")
print(f"ok: one withdrawal, balance {balance} at version {version}")
