"""confluent-kafka (librdkafka): every compression codec, headers, a 900 KB
message, and reading back byte-identical values."""
from confluent_kafka import Consumer, Producer, TopicPartition

from common import BOOTSTRAP, check, unique

for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
    topic = unique(f"codec-{codec}")
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "compression.type": codec, "enable.idempotence": False, "linger.ms": 5})
    values = [f"{codec}-{i}-".encode() * 50 for i in range(200)]
    errors = []
    for i, value in enumerate(values):
        producer.produce(topic, key=str(i).encode(), value=value, headers=[("codec", codec.encode()), ("n", str(i).encode()), ("n", b"dup")],
                         on_delivery=lambda err, msg: err and errors.append(err))
    check(producer.flush(20) == 0, f"{codec}: messages left unflushed")
    check(not errors, f"{codec}: delivery errors {errors}")
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("unused"), "enable.auto.commit": False, "check.crcs": True})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    for _ in range(400):
        message = consumer.poll(5)
        if message is None:
            break
        check(message.error() is None, f"{codec}: consumer error {message.error()}")
        headers = message.headers()
        check(headers == [("codec", codec.encode()), ("n", message.key()), ("n", b"dup")], f"{codec}: headers {headers}")
        got.append(message.value())
        if len(got) == len(values):
            break
    consumer.close()
    check(got == values, f"{codec}: got {len(got)} of {len(values)} values back intact")

topic = unique("large")
producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": False, "message.max.bytes": 1_000_000})
large = bytes(range(256)) * (900_000 // 256)
producer.produce(topic, value=large)
check(producer.flush(20) == 0, "900 KB message unflushed")
consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("unused"), "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
message = consumer.poll(10)
check(message is not None and message.error() is None, f"900 KB message not fetched: {message and message.error()}")
check(message.value() == large, "900 KB message came back different")
consumer.close()
print("ok")
