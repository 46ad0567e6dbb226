"""A kafka-python group member for the admin API test.

`commit TOPIC GROUP N`: consume the first N records of partition 0 as a member
of GROUP, commit offset N, leave the group.
`hold TOPIC GROUP`: join GROUP, print "assigned" once it holds partitions,
then stay a member until stdin closes (bounded), and leave."""
import sys
import threading
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from common import BOOTSTRAP, check

mode, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group, client_id="admin-api-test",
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=6000, heartbeat_interval_ms=500)
consumer.subscribe([topic])
deadline = time.monotonic() + 60

if mode == "commit":
    wanted = int(sys.argv[4])
    seen = []
    while len(seen) < wanted:
        check(time.monotonic() < deadline, f"consumed only {len(seen)} of {wanted} records")
        for records in consumer.poll(timeout_ms=500).values():
            seen.extend(record for record in records if record.partition == 0)
    partition = TopicPartition(topic, 0)
    consumer.commit({partition: OffsetAndMetadata(wanted, "", -1)})
    check(consumer.committed(partition) == wanted, f"committed {consumer.committed(partition)}, not {wanted}")
    consumer.close()
    print("committed", flush=True)
elif mode == "hold":
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    announced = False
    while not closed.is_set() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=200)
        if not announced and consumer.assignment():
            print("assigned", flush=True)
            announced = True
    consumer.close()
else:
    check(False, f"unknown mode {mode}")
