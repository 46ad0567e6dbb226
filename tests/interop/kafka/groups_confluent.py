"""confluent-kafka (librdkafka) consumer groups: two members split the
partitions; the AdminClient describes the group and lists its committed
offsets; a consumer SIGKILLed mid-session loses its partitions to the other
member after the session timeout."""
import os
import signal
import subprocess
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, check, create_topics, unique, wait_until

CHILD = len(sys.argv) > 1 and sys.argv[1] == "child"
# The child process is told the parent's topic and group.
topic = sys.argv[2] if CHILD else unique("rdk-groups")
group = sys.argv[3] if CHILD else unique("rdk-workers")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
if not CHILD:
    create_topics(admin, [topic], partitions=4)


def member(**extra):
    settings = {"bootstrap.servers": BOOTSTRAP, "group.id": group, "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    settings.update(extra)
    consumer = Consumer(settings)
    consumer.subscribe([topic])
    return consumer



if CHILD:
    # The member that gets SIGKILLed: join and keep polling until killed.
    child = member()
    while True:
        child.poll(0.2)

first, second = member(), member()
wait_until(lambda: (first.poll(0.1), second.poll(0.1)) and len(first.assignment()) == 2 and len(second.assignment()) == 2,
           "both members to hold two partitions")
check(not set(map(str, first.assignment())) & set(map(str, second.assignment())), "members share a partition")
producer = Producer({"bootstrap.servers": BOOTSTRAP})
for i in range(200):
    producer.produce(topic, key=str(i).encode(), value=str(i).encode())
check(producer.flush(20) == 0, "unflushed messages")
values = []
def drain():
    for consumer in (first, second):
        message = consumer.poll(0.1)
        if message is not None and message.error() is None:
            values.append(int(message.value()))
            consumer.commit(message=message, asynchronous=False)
    return len(values) >= 200
wait_until(drain, "200 messages")
check(sorted(values) == list(range(200)), f"duplicates or gaps: {len(values)} values, {len(set(values))} distinct")

description = admin.describe_consumer_groups([group])[group].result(timeout=30)
check(description.group_id == group and len(description.members) == 2, f"describe: {description}")
check(str(description.state).endswith("STABLE"), f"state {description.state}")
# ConsumerGroupDescribe answers GROUP_ID_NOT_FOUND for a classic group; librdkafka then describes it with DescribeGroups.
check(str(description.type).endswith("CLASSIC"), f"type {description.type}")
assigned = sorted(tp.partition for m in description.members for tp in m.assignment.topic_partitions)
check(assigned == [0, 1, 2, 3], f"member assignments {assigned}")
from confluent_kafka import ConsumerGroupTopicPartitions
listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=30)
committed = sum(tp.offset for tp in listed.topic_partitions)
check(committed == 200, f"committed offsets add up to {committed}: {listed.topic_partitions}")
first.close()
second.close()

# A member killed with SIGKILL: the survivor takes over all partitions after the session timeout.
survivor = member()
child = subprocess.Popen([sys.executable, __file__, "child", topic, group], stdout=subprocess.DEVNULL)
try:
    wait_until(lambda: (survivor.poll(0.1), len(survivor.assignment()) == 2)[1], "a two-way split with the child")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    wait_until(lambda: (survivor.poll(0.1), len(survivor.assignment()) == 4)[1], "the survivor to own all four partitions")
finally:
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
survivor.close()
print("ok")
