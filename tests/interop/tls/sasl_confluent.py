"""confluent-kafka over SASL_SSL with SCRAM-SHA-512 produces and consumes as
a configured user; a wrong password fails with an authentication error;
with anonymous = "never", a client without SASL gets nothing."""
import sys

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from common import CA_FILE, KAFKA, KAFKA_TLS, check, consume_values, unique

user, password = sys.argv[1], sys.argv[2]
sasl = {
    "bootstrap.servers": KAFKA_TLS,
    "security.protocol": "SASL_SSL",
    "ssl.ca.location": CA_FILE,
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": user,
    "sasl.password": password,
}

topic = unique("sasl-orders")
producer = Producer(sasl)
for i in range(3):
    producer.produce(topic, value=f"scram {i}".encode())
check(producer.flush(30) == 0, "every message delivered over SASL_SSL")
consumer = Consumer({**sasl, "group.id": unique("sasl-group"), "auto.offset.reset": "earliest"})
values = consume_values(consumer, topic, 3)
check(values == [f"scram {i}".encode() for i in range(3)], f"consumed {values}")

# A wrong password: librdkafka reports an authentication error.
errors = []
admin = AdminClient({**sasl, "sasl.password": password + "-wrong", "error_cb": errors.append})
try:
    admin.list_topics(timeout=10)
    raise AssertionError("listed topics with a wrong password")
except KafkaException:
    pass
for _ in range(50):
    if any(error.code() == KafkaError._AUTHENTICATION for error in errors):
        break
    admin.poll(0.2)
check(any(error.code() == KafkaError._AUTHENTICATION for error in errors), f"errors: {errors}")
check(any("invalid credentials" in error.str() for error in errors), f"Kafka's wording: {errors}")

# Without SASL, where anonymous access is off, nothing but the handshake is served.
plain = AdminClient({"bootstrap.servers": KAFKA, "socket.timeout.ms": 3000})
try:
    plain.list_topics(timeout=5)
    raise AssertionError("a client without SASL listed topics with anonymous = never")
except KafkaException:
    pass
print("confluent-kafka SASL_SSL SCRAM-SHA-512 ok")
