"""KIP-848 regex subscriptions (SubscribedTopicRegex) with confluent-kafka
(librdkafka, group.protocol=consumer): subscribe(["^prefix.*"]) gets the
partitions of the matching topics only, then those of a matching topic
created after it subscribed, and reads what is produced there; a topic
deleted leaves its assignment."""

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, check, create_topics, unique, wait_until

prefix = unique("kip848-regex")
first, other, later = f"{prefix}-a", unique("kip848-other"), f"{prefix}-b"
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [first], partitions=2)
create_topics(admin, [other])
consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("kip848-regex-group"), "group.protocol": "consumer",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, "topic.metadata.refresh.interval.ms": 1000})
consumer.subscribe([f"^{prefix}.*"])


def held():
    return sorted((tp.topic, tp.partition) for tp in consumer.assignment())


wait_until(lambda: (consumer.poll(0.1), held())[1] == [(first, 0), (first, 1)],
           f"the partitions of {first} only, held {held()}")

create_topics(admin, [later], partitions=3)
wait_until(lambda: (consumer.poll(0.1), held())[1] == [(first, 0), (first, 1), (later, 0), (later, 1), (later, 2)],
           f"the partitions of {later}, created after the subscription")

producer = Producer({"bootstrap.servers": BOOTSTRAP})
for value in range(30):
    producer.produce(later, value=str(value).encode(), partition=value % 3)
check(producer.flush(20) == 0, "unflushed messages")
values = []
def read():
    message = consumer.poll(0.1)
    if message is not None and message.error() is None:
        check(message.topic() == later, f"a message from {message.topic()}")
        values.append(int(message.value()))
    return len(values) >= 30
wait_until(read, "30 messages from the later topic")
check(sorted(values) == list(range(30)), f"read {sorted(values)}")

for future in admin.delete_topics([first]).values():
    future.result(timeout=30)
wait_until(lambda: (consumer.poll(0.1), held())[1] == [(later, 0), (later, 1), (later, 2)],
           f"the deleted {first} to leave the assignment, held {held()}")
check(all(topic != other for topic, _ in held()), "a topic the regex does not match is never assigned")
consumer.close()
print("ok")
