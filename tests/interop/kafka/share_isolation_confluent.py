"""share.isolation.level (KIP-932) with confluent-kafka's ShareConsumer
over a partition a transactional producer writes: a read_committed share
group gets the committed records only, nothing of an open transaction until
its commit, never an aborted record; a read_uncommitted group (the default)
gets every data record once, aborted ones too. Neither ever gets a marker."""
import time

from confluent_kafka import KafkaException

from common import check, in_transaction, transactional_producer, unique
from share_common import ShareTopic, polled, set_group_configs, settle

shared = ShareTopic("rdk-share-txn")
committed_group, uncommitted_group = shared.group, unique("rdk-share-txn-uncommitted")


def alter(group, key, value):
    set_group_configs(shared.admin, group, {key: value})


try:
    alter(committed_group, "share.isolation.level", "read_nothing")
    check(False, "share.isolation.level=read_nothing was accepted")
except KafkaException as error:
    check(error.args[0].name() == "INVALID_CONFIG", f"read_nothing: {error}")
for group in (committed_group, uncommitted_group):
    alter(group, "share.auto.offset.reset", "earliest")
alter(committed_group, "share.isolation.level", "read_committed")

producer = transactional_producer(unique("share-txn"), {"linger.ms": 0})
in_transaction(producer, shared.topic, [b"c1", b"c2"])
in_transaction(producer, shared.topic, [b"a1", b"a2"], "abort")
in_transaction(producer, shared.topic, [b"c3"])
in_transaction(producer, shared.topic, [b"o1"], None)  # left open


def consume(share, wanted, settle_s):
    """Records polled until `wanted` are all in, then for `settle_s` more."""
    got, done_at = [], None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (done_at is None or time.monotonic() < done_at + settle_s):
        messages = polled(share, 0.3)
        got.extend(message.value() for message in messages)
        settle(share, messages)
        if done_at is None and set(wanted) <= set(got):
            done_at = time.monotonic()
    return got


committed = shared.consumer(max_poll_records=10)
got = consume(committed, [b"c1", b"c2", b"c3"], 2.0)
check(got == [b"c1", b"c2", b"c3"], f"read_committed before the commit: {got}")
producer.commit_transaction(30)
got = consume(committed, [b"o1"], 1.0)
check(got == [b"o1"], f"read_committed after the commit: {got}")
committed.close()

shared.group = uncommitted_group
uncommitted = shared.consumer(max_poll_records=10)
got = consume(uncommitted, [b"c1", b"c2", b"a1", b"a2", b"c3", b"o1"], 2.0)
check(got == [b"c1", b"c2", b"a1", b"a2", b"c3", b"o1"], f"read_uncommitted: {got}")
uncommitted.close()
print("ok")
