"""kafka-python against a full file system (the Rust test fills the broker's
tmpfs): `refused TOPIC` produces a large record, which must fail with
KAFKA_STORAGE_ERROR (retriable: a producer with retries keeps trying) and
nothing else, while a consumer group still reads the topic and commits its
offset (consumers settle on a full disk); `accepted TOPIC` produces it again
once space is free and reads back every record of the topic."""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaStorageError

from common import BOOTSTRAP, check

mode, topic = sys.argv[1], sys.argv[2]
value = b"z" * (256 * 1024)
producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, retries=0, max_request_size=1024 * 1024)
if mode == "refused":
    try:
        producer.send(topic, value).get(timeout=30)
        check(False, "a produce on a full disk was acknowledged")
    except KafkaStorageError as error:
        check(error.retriable, f"KAFKA_STORAGE_ERROR is retriable: {error}")
        print("refused: KAFKA_STORAGE_ERROR")
    consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, group_id="drainers", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=10_000)
    records = [record for record in consumer]
    check(len(records) >= 1, "the records stored before the disk filled are read")
    consumer.commit()
    committed = consumer.committed(TopicPartition(topic, 0))
    check(committed == records[-1].offset + 1, f"the commit on a full disk is stored: {committed}")
    consumer.close()
    print("committed on a full disk")
else:
    metadata = producer.send(topic, value).get(timeout=30)
    consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000, fetch_max_bytes=4 * 1024 * 1024,
                             max_partition_fetch_bytes=4 * 1024 * 1024)
    values = [record.value for record in consumer]
    check(values[-1] == value, f"the record produced after the space was freed is read back ({len(values)} records)")
    print(f"accepted at offset {metadata.offset}")
producer.close()
