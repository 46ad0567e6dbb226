"""kafka-python consumer groups: two members split a topic's partitions with
nothing duplicated or missed; a second group gets everything; a restarted
consumer resumes right after its commit; a new group replays from earliest;
seek; the admin client describes the group and its lag."""
import threading

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from common import BOOTSTRAP, check, unique, wait_until

topic = unique("groups")
group = unique("workers")
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])


def consumer(group_id, **options):
    settings = dict(bootstrap_servers=BOOTSTRAP, group_id=group_id, auto_offset_reset="earliest",
                    enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
    settings.update(options)
    member = KafkaConsumer(**settings)
    member.subscribe([topic])
    return member



# Two members, each polling in its own thread as applications do; produce only
# once both hold their share, so no rebalance overlaps consumption.
class Member(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.consumer = consumer(group)
        self.values = []
        self.assigned = set()
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        while not self.stop.is_set():
            batches = self.consumer.poll(timeout_ms=200)
            with self.lock:
                self.assigned = set(self.consumer.assignment())
                for records in batches.values():
                    self.values.extend(int(record.value) for record in records)
            if batches:
                # Manual commit after processing, while the group is stable.
                self.consumer.commit()
        self.consumer.close()


first, second = Member(), Member()
first.start()
second.start()
def both_assigned():
    with first.lock, second.lock:
        return len(first.assigned) == 2 and len(second.assigned) == 2
wait_until(both_assigned, "both members to get two partitions each")
check(first.assigned.isdisjoint(second.assigned), "members share a partition")

producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=False)
for i in range(400):
    producer.send(topic, key=f"k{i % 37}".encode(), value=str(i).encode())
producer.flush()

def received():
    with first.lock, second.lock:
        return len(first.values) + len(second.values)
wait_until(lambda: received() >= 400, "400 messages across both members")
for member in (first, second):
    member.stop.set()
    member.join(timeout=30)
    check(not member.is_alive(), "a member did not stop")
values = first.values + second.values
check(sorted(values) == list(range(400)), f"duplicates or gaps: got {len(values)} values, {len(set(values))} distinct")
check(first.values and second.values, "one member got nothing")

# A second group receives everything.
other = consumer(unique("audit"))
got = []
wait_until(lambda: got.extend(int(r.value) for rs in other.poll(timeout_ms=200).values() for r in rs) or len(got) >= 400, "the second group")
check(sorted(got) == list(range(400)), "the second group missed or duplicated messages")
other.close()

# Commit part way, restart, resume exactly after the commit.
resumer_group = unique("resume")
member = consumer(resumer_group, max_poll_records=50)
seen = []
wait_until(lambda: seen.extend(member.poll(timeout_ms=200, max_records=50).get(TopicPartition(topic, 0), [])) or len(seen) >= 50, "50 records of partition 0")
partition0 = TopicPartition(topic, 0)
member.commit({partition0: __import__("kafka").OffsetAndMetadata(seen[49].offset + 1, "halfway", -1)})
member.close()
restarted = consumer(resumer_group)
resumed = []
wait_until(lambda: resumed.extend(restarted.poll(timeout_ms=200).get(partition0, [])) or len(resumed) > 0, "records after the restart")
check(resumed[0].offset == seen[49].offset + 1, f"resumed at {resumed[0].offset}, committed {seen[49].offset + 1}")
committed = restarted.committed(partition0, metadata=True)
check(committed.offset == seen[49].offset + 1 and committed.metadata == "halfway", f"committed {committed}")
restarted.close()

# A new group replays from earliest; seek moves a consumer to an offset.
replay = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, consumer_timeout_ms=5000)
replay.assign([partition0])
replay.seek(partition0, 3)
first_record = next(iter(replay))
check(first_record.offset == 3, f"seek to 3 read offset {first_record.offset}")
replay.close()

# Admin: the first group is Empty now, with committed offsets and zero lag.
described = admin.describe_groups([group])[group]
check(described["group_state"] == "Empty" and described["protocol_type"] == "consumer" and described["error"] is None,
      f"describe_groups: {described}")
offsets = admin.list_group_offsets({group: None})[group]
check(len(offsets) == 4, f"committed offsets {offsets}")
end = KafkaConsumer(bootstrap_servers=BOOTSTRAP).end_offsets(list(offsets))
lag = sum(end[tp] - offsets[tp].offset for tp in offsets)
check(lag == 0 and sum(end.values()) == 400, f"lag {lag}, end offsets {end}")
listed = {entry["group_id"]: entry for entry in admin.list_groups()}
check(group in listed and resumer_group in listed and listed[group]["group_state"] == "Empty", f"list_groups: {listed}")
check(admin.delete_groups([resumer_group]) == {resumer_group: "OK"}, "delete_groups failed")
check(resumer_group not in {entry["group_id"] for entry in admin.list_groups()}, "deleted group still listed")
print("ok")
