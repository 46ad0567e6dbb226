"""kafka-python against a resource alarm: while free disk is below the floor
(raised through the admin API), a produce request is held — not refused, not
stored, not lost — and once the alarm clears it is stored and acknowledged,
and a consumer reads it."""
import json
import os
import urllib.request

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaTimeoutError

from common import BOOTSTRAP, check, unique

HTTP = os.environ.get("CONVEYOR_HTTP", "127.0.0.1:8080")


def api(method, path, body=None):
    request = urllib.request.Request(
        f"http://{HTTP}/api/v1{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


topic = unique("alarm")
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
admin.close()
producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, request_timeout_ms=60_000, retries=0)
producer.send(topic, b"before").get(timeout=30)

status = api("PUT", "/alarms", {"disk_free_min_bytes": 2**62})
check(status["disk_alarm"] is True, f"the disk alarm is on: {status}")
held = producer.send(topic, b"held")
try:
    held.get(timeout=1)
    check(False, "a produce was acknowledged during a disk alarm")
except KafkaTimeoutError:
    pass
end = api("GET", f"/topics/{topic}")["partitions"][0]["end_offset"]
check(end == 1, f"nothing was stored during the alarm: end offset {end}")

status = api("PUT", "/alarms", {"disk_free_min_bytes": 0})
check(status["disk_alarm"] is False, f"the alarm cleared: {status}")
metadata = held.get(timeout=30)
check(metadata.offset == 1, f"the held message was stored after the alarm: {metadata}")
producer.close()

consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", consumer_timeout_ms=10_000)
values = []
for message in consumer:
    values.append(message.value)
    if len(values) == 2:
        break
consumer.close()
check(values == [b"before", b"held"], f"both messages are there, in order: {values}")
print("ok")
