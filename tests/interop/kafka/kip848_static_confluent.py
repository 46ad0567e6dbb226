"""KIP-848 static membership (group.instance.id with group.protocol=consumer)
with confluent-kafka (librdkafka): a static member that closes leaves
temporarily (epoch -2) and stays in the group with its partitions; a new
consumer with the same group.instance.id takes them over without a
rebalance (the dynamic member's partitions never move); a third consumer
with that instance id while it is in use is refused (UNRELEASED_INSTANCE_ID)
and gets nothing."""

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, check, create_topics, unique, wait_until

topic = unique("kip848-static")
group = unique("kip848-static-group")
instance = "static-a"
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic], partitions=4)


def member(instance_id=None, errors=None):
    config = {"bootstrap.servers": BOOTSTRAP, "group.id": group, "group.protocol": "consumer",
              "auto.offset.reset": "earliest", "enable.auto.commit": False}
    if instance_id is not None:
        config["group.instance.id"] = instance_id
    if errors is not None:
        # librdkafka makes UNRELEASED_INSTANCE_ID fatal (_FATAL), naming the broker's error in the text.
        config["error_cb"] = lambda error: errors.append(f"{error.name()} {error.str()}")
    consumer = Consumer(config)
    consumer.subscribe([topic])
    return consumer



def partitions(consumer):
    return sorted(tp.partition for tp in consumer.assignment())


def described_members():
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return {m.member_id: m for m in description.members}


dynamic = member()
first = member(instance)
wait_until(lambda: (first.poll(0.1), dynamic.poll(0.1)) and len(first.assignment()) == 2 and len(dynamic.assignment()) == 2,
           "both members to hold two partitions")
static_partitions, dynamic_partitions = partitions(first), partitions(dynamic)
check(sorted(static_partitions + dynamic_partitions) == [0, 1, 2, 3], f"{static_partitions} {dynamic_partitions}")
members = described_members()
check(members[first.memberid()].group_instance_id == instance, f"described instance id {members[first.memberid()].group_instance_id}")

# Every assignment the dynamic member is seen with from here on: it must never change.
seen = set()
def poll_dynamic():
    dynamic.poll(0.1)
    seen.add(tuple(partitions(dynamic)))

old_member_id = first.memberid()
first.close()
# The static member left temporarily: still a member, with its partitions.
members = described_members()
check(old_member_id in members and members[old_member_id].group_instance_id == instance,
      f"after the close the group lists {sorted(members)}; the static member {old_member_id} should stay")
held = sorted(tp.partition for tp in members[old_member_id].assignment.topic_partitions)
check(held == static_partitions, f"the absent static member holds {held}, not {static_partitions}")
for _ in range(10):
    poll_dynamic()

second = member(instance)
wait_until(lambda: (second.poll(0.1), poll_dynamic()) and len(second.assignment()) == 2, "the new static member's partitions")
check(partitions(second) == static_partitions, f"took over {partitions(second)}, the old member had {static_partitions}")
check(second.memberid() != old_member_id, "a new process has a new member id")
members = described_members()
check(sorted(members) == sorted([second.memberid(), dynamic.memberid()]), f"members after the take-over: {sorted(members)}")
check(seen == {tuple(dynamic_partitions)}, f"the dynamic member's assignment moved: {seen}")

# The instance id is in use: a third consumer with it is refused and gets nothing.
errors = []
third = member(instance, errors)
def refused():
    try:
        message = third.poll(0.1)
        if message is not None and message.error() is not None:
            errors.append(f"{message.error().name()} {message.error().str()}")
    except KafkaException as error:
        errors.append(f"{error.args[0].name()} {error.args[0].str()}")
    second.poll(0.1)
    poll_dynamic()
    return any("UNRELEASED_INSTANCE_ID" in e or "instance ID is still used by another member" in e for e in errors)
wait_until(refused, f"UNRELEASED_INSTANCE_ID for a third consumer with the instance id in use; errors {errors}", seconds=20)
check(third.assignment() == [], f"the refused consumer holds {partitions(third)}")
check(partitions(second) == static_partitions and seen == {tuple(dynamic_partitions)}, "the refusal moved partitions")
for consumer in (third, second, dynamic):
    consumer.close()
print("ok")
