"""kafka-python KafkaAdminClient.describe_log_dirs: the data directory, each
partition with its size on disk (growing with what is produced), offset lag
0, and the file system's total and usable bytes (DescribeLogDirs v4)."""
import os
import sys

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from common import BOOTSTRAP, check, unique

topic = unique("kp-log-dirs")
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])


def directory(topic_partitions):
    brokers = admin.describe_log_dirs(topic_partitions)
    check(len(brokers) == 1, f"one broker answers: {brokers}")
    log_dirs = brokers[0]["log_dirs"]
    check(len(log_dirs) == 1, f"one log directory: {log_dirs}")
    return log_dirs[0]


def sizes(log_dir):
    return {(entry["name"], partition["partition_index"]): partition
            for entry in log_dir["topics"] for partition in entry["partitions"]}


before = sizes(directory({topic: [0, 1]}))
check(set(before) == {(topic, 0), (topic, 1)}, f"both partitions listed: {before}")
check(all(p["partition_size"] == 0 for p in before.values()), f"empty partitions: {before}")

producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
for index in range(20):
    producer.send(topic, value=b"x" * 1000, partition=1)
producer.flush(timeout=30)
producer.close()

log_dir = directory({topic: [0, 1]})
check(log_dir["error_code"] == 0, f"error: {log_dir}")
check(os.path.realpath(log_dir["log_dir"]) == os.path.realpath(sys.argv[1]),
      f"the data directory {sys.argv[1]}: {log_dir['log_dir']}")
after = sizes(log_dir)
check(after[(topic, 0)]["partition_size"] == 0, f"partition 0 untouched: {after}")
check(after[(topic, 1)]["partition_size"] >= 20_000, f"partition 1 holds 20 KB: {after}")
check(all(p["offset_lag"] == 0 and not p["is_future_key"] for p in after.values()), f"lag: {after}")
check(0 < log_dir["usable_bytes"] <= log_dir["total_bytes"], f"space: {log_dir}")

everything = sizes(directory(None))
check((topic, 1) in everything and everything[(topic, 1)]["partition_size"] >= 20_000,
      f"a request for every topic lists it too: {everything}")
admin.close()
print("ok")
