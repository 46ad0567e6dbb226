"""kafka-python with SCRAM-SHA-256 on SASL_PLAINTEXT produces and consumes;
a wrong password is refused."""
import sys

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from common import KAFKA, check, unique

user, password = sys.argv[1], sys.argv[2]
sasl = {
    "bootstrap_servers": KAFKA,
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-256",
    "sasl_plain_username": user,
    "sasl_plain_password": password,
}

topic = unique("sasl-plaintext")
producer = KafkaProducer(**sasl)
for i in range(3):
    producer.send(topic, f"scram-256 {i}".encode()).get(timeout=30)
producer.close()
consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **sasl)
values = []
for message in consumer:
    values.append(message.value)
    if len(values) == 3:
        break
consumer.close()
check(values == [f"scram-256 {i}".encode() for i in range(3)], f"consumed {values}")

try:
    KafkaProducer(**{**sasl, "sasl_plain_password": "wrong"}, request_timeout_ms=5000, max_block_ms=5000).close()
    raise AssertionError("a wrong password was accepted")
except KafkaError as error:
    print(f"refused as expected: {error!r}")
print("kafka-python SASL_PLAINTEXT SCRAM-SHA-256 ok")
