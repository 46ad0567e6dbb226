"""Idempotent producers: librdkafka with enable.idempotence=true and
kafka-python's default both get producer ids and keep every message once
and in order; the admin client lists the active producers."""
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition as KTopicPartition

from common import BOOTSTRAP, check, unique

topic = unique("idempotent")
producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all", "linger.ms": 2})
errors = []
for i in range(2000):
    producer.produce(topic, key=b"same-key", value=str(i).encode(), on_delivery=lambda err, msg: err and errors.append(err))
check(producer.flush(30) == 0 and not errors, f"delivery errors: {errors}")

python_producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
for i in range(2000, 2100):
    python_producer.send(topic, key=b"same-key", value=str(i).encode())
python_producer.flush()

consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("check"), "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
values = []
for _ in range(5000):
    message = consumer.poll(5)
    if message is None:
        break
    check(message.error() is None, f"consumer error {message.error()}")
    values.append(int(message.value()))
    if len(values) == 2100:
        break
consumer.close()
check(values == list(range(2100)), f"got {len(values)} values, in order: {values == sorted(values)}")

admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
described = admin.describe_producers([KTopicPartition(topic, 0)])[KTopicPartition(topic, 0)].active_producers
sequences = sorted(producer.last_sequence for producer in described)
check(sequences == [99, 1999], f"active producers {described}")
check(len({producer.producer_id for producer in described}) == 2, "the two producers share an id")
print("ok")
