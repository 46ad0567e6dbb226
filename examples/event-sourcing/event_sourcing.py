"""Event sourcing with optimistic concurrency, in kafka-python, on Conveyor's
conditional append.

A bank account is an aggregate whose state (its balance) is the fold of its
events in an append-only log: a Kafka topic keyed by account id. A command
(debit 50) loads the account by replaying its events, checks the business
rule (no overdraft) and appends its event only if nobody appended to the
account since it loaded: the record carries the header
`conveyor.expected-key-offset`, the offset of the account's latest event (-1:
the account must be new), and the broker refuses the append with
INVALID_RECORD if the account moved on. The refused writer re-reads and
retries. Two tellers race on one account, twice. Exits non-zero unless each
race had exactly one winner, the loser's retry saw the winner's event, the
account never went below zero and its balance replayed from the log is the
one the successful commands imply."""
import json
import os
import sys
import threading
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import InvalidRecordError

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
TOPIC = f"accounts-{uuid.uuid4().hex[:8]}"
EXPECTED_KEY_OFFSET = "conveyor.expected-key-offset"
DEADLINE_S = 20


class ConcurrencyError(Exception):
    """The account changed between loading it and appending to it."""


class Account:
    """An aggregate rebuilt from its events; `last_offset` is its version in the log."""

    def __init__(self, account_id):
        self.account_id, self.balance, self.last_offset, self.history = account_id, 0, -1, []

    def apply(self, event, offset):
        self.balance += event["amount"] if event["type"] == "credited" else -event["amount"]
        self.last_offset = offset
        self.history.append((offset, event["type"], event["amount"], self.balance))


class EventStore:
    """One writer's connection to the log: replay an account, append to it conditionally."""

    def __init__(self):
        # Not idempotent: the conditional append guards the write, and
        # kafka-python treats a refused batch on an idempotent producer as fatal.
        self.producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=False)
        self.consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
        self.partition = TopicPartition(TOPIC, 0)
        self.consumer.assign([self.partition])

    def load(self, account_id, newer_than=None):
        """Replays the account's events. With `newer_than`, replays until an
        event after that offset is readable: the one a conflict was about may
        still be in flight (assigned its offset, not yet acknowledged)."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            account = Account(account_id)
            self.consumer.seek_to_beginning(self.partition)
            end = self.consumer.end_offsets([self.partition])[self.partition]
            while self.consumer.position(self.partition) < end and time.monotonic() < deadline:
                for record in self.consumer.poll(timeout_ms=200).get(self.partition, []):
                    if record.offset < end and record.key == account_id.encode():
                        account.apply(json.loads(record.value), record.offset)
            if newer_than is None or account.last_offset > newer_than or time.monotonic() > deadline:
                return account
            time.sleep(0.01)

    def append(self, account, event_type, amount):
        headers = [(EXPECTED_KEY_OFFSET, str(account.last_offset).encode())]
        value = json.dumps({"type": event_type, "amount": amount}).encode()
        future = self.producer.send(TOPIC, key=account.account_id.encode(), value=value, headers=headers)
        try:
            return future.get(timeout=DEADLINE_S).offset
        except InvalidRecordError as error:
            raise ConcurrencyError(str(error)) from error

    def close(self):
        self.producer.close()
        self.consumer.close()


def debit(teller, account_id, amount, both_loaded, outcomes):
    """A command handler: load, check the rule, append; on a conflict, re-read and retry."""
    store, stale = EventStore(), None
    for attempt in range(1, 6):
        account = store.load(account_id, newer_than=stale)
        if attempt == 1:
            both_loaded.wait(DEADLINE_S)  # the race: both tellers hold the same version
        if account.balance < amount:
            outcomes.append((teller, attempt, f"refused: balance {account.balance} < {amount}"))
            break
        try:
            offset = store.append(account, "debited", amount)
            outcomes.append((teller, attempt, f"debited {amount} at offset {offset}"))
            break
        except ConcurrencyError as error:
            print(f"{teller}: conflict on attempt {attempt} ({error}); re-reading")
            outcomes.append((teller, attempt, "conflict"))
            stale = account.last_offset
    store.close()


def race(account_id, amounts):
    both_loaded, outcomes = threading.Barrier(len(amounts)), []
    tellers = [
        threading.Thread(target=debit, args=(f"teller-{n}", account_id, amount, both_loaded, outcomes))
        for n, amount in enumerate(amounts, 1)
    ]
    for teller in tellers:
        teller.start()
    for teller in tellers:
        teller.join(DEADLINE_S)
    for outcome in sorted(outcomes):
        print(f"  {outcome[0]} attempt {outcome[1]}: {outcome[2]}")
    return [(attempt, result) for _, attempt, result in outcomes]


def first_attempts(outcomes):
    """What each teller's first attempt came to, sorted: one "conflict", one "debited" in a fair race."""
    return sorted(result.split()[0] for attempt, result in outcomes if attempt == 1)


admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
store, failures = EventStore(), []

alice, bob = store.load("alice"), store.load("bob")  # both new: version -1
store.append(alice, "credited", 100)
try:
    store.append(alice, "credited", 100)  # still -1: opening it again is refused
    failures.append("alice was opened twice")
except ConcurrencyError as error:
    print(f"opening alice again was refused: {error}")
try:  # each account has its own version: alice's event does not make bob's -1 stale
    store.append(bob, "credited", 10)
except ConcurrencyError as error:
    failures.append(f"bob's account was refused for alice's event: {error}")

print("race 1: two tellers debit 30 and 50 from alice's 100")
first = race("alice", [30, 50])
if first_attempts(first) != ["conflict", "debited"]:
    failures.append(f"race 1 did not have exactly one winner: {first}")
if sum(result.startswith("debited") for _, result in first) != 2:
    failures.append(f"the loser of race 1 did not succeed on its retry: {first}")

store.append(store.load("alice"), "credited", 80)
print("race 2: two tellers debit 70 each from alice's 100")
second = race("alice", [70, 70])
if first_attempts(second) != ["conflict", "debited"]:
    failures.append(f"race 2 did not have exactly one winner: {second}")
if not any(attempt == 2 and result.startswith("refused") for attempt, result in second):
    failures.append(f"the loser of race 2 should re-read and be refused for funds: {second}")

alice = store.load("alice")
print("alice's events (offset, event, amount, balance):")
for entry in alice.history:
    print(f"  {entry}")
if [balance for *_, balance in alice.history] not in ([100, 70, 20, 100, 30], [100, 50, 20, 100, 30]):
    failures.append("alice's history is not the one the successful commands imply")
if min(balance for *_, balance in alice.history) < 0:
    failures.append("alice was overdrawn")
if store.load("bob").balance != 10:
    failures.append("bob's account was disturbed")
store.close()
admin.delete_topics([TOPIC])
admin.close()
if failures:
    sys.exit("FAILED: " + "; ".join(failures))
print(f"ok: each race had one winner, the loser re-read and retried; alice's balance is {alice.balance}")
