"""KIP-848 consumer groups (group.protocol=consumer, confluent-kafka) across
a broker restart: two members hold two partitions each and have consumed
what was produced; the harness stops the broker (SIGTERM or SIGKILL) when
this script prints "settled" and starts it again on the same data. The
group was kept: both members keep their member ids, member epochs (as the
admin API shows them) and partitions, nobody
is told to revoke or that its partitions were lost, the group epoch (the
admin API's generation) does not move, and what is produced after the
restart is consumed, each message once."""
import json
import os
import sys
import urllib.request

from confluent_kafka import Consumer, ConsumerGroupState
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, assigned_partitions, check, consume_committing, create_topics, produce_numbers, unique, wait_until

HTTP = os.environ["CONVEYOR_HTTP"]
topic = unique("kip848-restart")
group = unique("kip848-restart-group")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic], partitions=4)
revocations = []


def member(name):
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "group.protocol": "consumer",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})

    def revoked(_, partitions):
        revocations.append((name, "revoked", sorted(tp.partition for tp in partitions)))

    def lost(_, partitions):
        revocations.append((name, "lost", sorted(tp.partition for tp in partitions)))

    consumer.subscribe([topic], on_revoke=revoked, on_lost=lost)
    return consumer


def described():
    """The group as the admin API describes it: generation (the group epoch)
    and each member's id and member epoch."""
    with urllib.request.urlopen(f"http://{HTTP}/api/v1/groups/{group}", timeout=10) as response:
        body = json.loads(response.read())
    return body["generation_id"], sorted((m["member_id"], m["member_epoch"]) for m in body["members"])


first, second = member("first"), member("second")


def settled():
    for consumer in (first, second):
        consumer.poll(0.1)
    if len(first.assignment()) != 2 or len(second.assignment()) != 2:
        return False
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return description.state == ConsumerGroupState.STABLE


wait_until(settled, "both members to hold two partitions in a Stable group")
held = {"first": assigned_partitions(first), "second": assigned_partitions(second)}
check(sorted(held["first"] + held["second"]) == [0, 1, 2, 3], f"every partition is assigned once: {held}")
member_ids = sorted([first.memberid(), second.memberid()])
produce_numbers(topic, range(100))
values = []
wait_until(consume_committing([first, second], values, 100), "100 messages before the restart")
check(sorted(values) == list(range(100)), f"before the restart: {len(values)} values, {len(set(values))} distinct")
generation, described_members = described()
check([member for member, _ in described_members] == member_ids, f"described members {described_members}, the consumers are {member_ids}")
check(all(isinstance(epoch, int) and epoch > 0 for _, epoch in described_members), f"member epochs: {described_members}")
revocations_before = list(revocations)
print("settled", flush=True)
check(sys.stdin.readline().strip() == "restarted", "expected the harness to restart the broker")

produce_numbers(topic, range(100, 200))
after = []
wait_until(consume_committing([first, second], after, 100), "100 messages after the restart")
check(sorted(after) == list(range(100, 200)), f"after the restart: {len(after)} values, {len(set(after))} distinct")
# A few more heartbeats, so a rebalance the restart caused would show.
for _ in range(20):
    for consumer in (first, second):
        message = consumer.poll(0.1)
        check(message is None or message.error() is not None, f"a redelivery after the restart: {message and message.value()}")
check(revocations == revocations_before, f"partitions were revoked or lost across the restart: {revocations[len(revocations_before):]}")
check({"first": assigned_partitions(first), "second": assigned_partitions(second)} == held,
      f"assignments moved: {held} before, {assigned_partitions(first)} {assigned_partitions(second)} after")
check(sorted([first.memberid(), second.memberid()]) == member_ids, "the consumers' member ids changed")
check(described() == (generation, described_members), f"the group after the restart {described()}, before {(generation, described_members)}")
first.close()
second.close()
print("ok")
