"""KIP-848 consumer groups (group.protocol=consumer) with confluent-kafka
(librdkafka): two members of one group on a 4-partition topic get two
partitions each from the broker's assignor and together consume every
message once, committing with their member epochs; the AdminClient lists
and describes the group as a consumer-protocol group (ConsumerGroupDescribe:
assignor, members, their assignments and targets); when one closes, the
other is given all four and consumes what is produced next, from the
offsets its peer committed."""

from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, KafkaException
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, assigned_partitions, check, consume_committing, create_topics, produce_numbers, unique, wait_until

topic = unique("kip848")
group = unique("kip848-group")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic], partitions=4)


def member():
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "group.protocol": "consumer",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    return consumer


first, second = member(), member()
wait_until(lambda: (first.poll(0.1), second.poll(0.1)) and len(first.assignment()) == 2 and len(second.assignment()) == 2,
           "both members to hold two partitions")
check(not set(assigned_partitions(first)) & set(assigned_partitions(second)), f"members share a partition: {assigned_partitions(first)} {assigned_partitions(second)}")
check(sorted(assigned_partitions(first) + assigned_partitions(second)) == [0, 1, 2, 3], "every partition is assigned")

# ListGroups v5 names the group's type.
listed = {g.group_id: g for g in admin.list_consumer_groups().result(timeout=30).valid}
check(group in listed and listed[group].type == ConsumerGroupType.CONSUMER, f"listed: {listed.get(group)}")

# ConsumerGroupDescribe: the group's type, assignor and state, and each member's assignment (by topic name) and target.
def describe():
    return admin.describe_consumer_groups([group])[group].result(timeout=30)
def settled():
    for consumer in (first, second):
        consumer.poll(0.1)
    return describe().state == ConsumerGroupState.STABLE
wait_until(settled, "the described group to be Stable")
description = describe()
check(description.type == ConsumerGroupType.CONSUMER, f"described type {description.type}")
check(description.partition_assignor == "uniform", f"assignor {description.partition_assignor}")
check(not description.is_simple_consumer_group, "a consumer-protocol group is not simple")
check(len(description.members) == 2, f"members {[m.member_id for m in description.members]}")
held = {first.memberid(), second.memberid()}
check({m.member_id for m in description.members} == held, f"member ids {[m.member_id for m in description.members]} vs {held}")
for described in description.members:
    current = sorted((tp.topic, tp.partition) for tp in described.assignment.topic_partitions)
    target = sorted((tp.topic, tp.partition) for tp in described.target_assignment.topic_partitions)
    check(len(current) == 2 and {t for t, _ in current} == {topic}, f"{described.member_id} holds {current}")
    check(current == target, f"{described.member_id}: stable, so its assignment {current} is its target {target}")
    check(described.client_id and described.host.startswith("/127.0.0.1"), f"client {described.client_id} at {described.host}")
check(sorted(p for m in description.members for _, p in ((tp.topic, tp.partition) for tp in m.assignment.topic_partitions))
      == [0, 1, 2, 3], "the described assignments cover every partition once")

# A classic-protocol member is refused while the group has KIP-848 members (INCONSISTENT_GROUP_PROTOCOL).
classic = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "auto.offset.reset": "earliest"})
classic.subscribe([topic])
refusal = []
def classic_refused():
    try:
        message = classic.poll(0.1)
        if message is not None and message.error() is not None:
            refusal.append(message.error().name())
    except KafkaException as error:
        refusal.append(error.args[0].name())
    return "INCONSISTENT_GROUP_PROTOCOL" in refusal
wait_until(classic_refused, "the classic member's INCONSISTENT_GROUP_PROTOCOL")
classic.close()

produce_numbers(topic, range(200))
values = []
wait_until(consume_committing([first, second], values, 200), "200 messages")
check(sorted(values) == list(range(200)), f"duplicates or gaps: {len(values)} values, {len(set(values))} distinct")

second.close()
after = []
def takes_over():
    message = first.poll(0.1)
    if message is not None and message.error() is None:
        after.append(int(message.value()))  # a redelivery: caught by the check below
    return assigned_partitions(first) == [0, 1, 2, 3]
wait_until(takes_over, "the remaining member to hold all four partitions")
produce_numbers(topic, range(200, 300))
wait_until(consume_committing([first], after, 100), "100 messages after the close")
check(sorted(after) == list(range(200, 300)), f"after the close: {len(after)} values, {sorted(set(after))[:5]}...")
first.close()
print("ok")
