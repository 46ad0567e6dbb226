"""A share group's member carries on across a broker restart, as Kafka keeps
share groups in __consumer_offsets (KIP-932): a ShareConsumer (confluent-
kafka) consumes and accepts what was produced; the harness stops the broker
(SIGTERM or SIGKILL) when this script prints "consumed" and starts it again
on the same data. The member keeps its member id and epoch (3: a second
member joined and left first, so a member that had to join again after the
restart would show epoch 1) and the group epoch does not move (the admin API's describe before and after), and the
same consumer goes on with what is produced after the restart, each record
once: everything before the restart was accepted, so nothing comes again."""
import json
import os
import sys
import time
import urllib.request

from common import check, wait_until
from share_common import ShareTopic, polled, settle, warm_up

HTTP = os.environ["CONVEYOR_HTTP"]
shared = ShareTopic("share-member-restart")
produce = shared.produce
share = shared.consumer()


def described():
    """The group as the admin API describes it: type, epoch and (member id, member epoch) per member."""
    with urllib.request.urlopen(f"http://{HTTP}/api/v1/groups/{shared.group}", timeout=10) as response:
        body = json.loads(response.read())
    members = sorted((member["member_id"], member["member_epoch"]) for member in body["members"])
    return body["group_type"], body["generation_id"], members


def consume(values, seconds):
    """Polls `share`, accepting everything, until every one of `values` came
    (or `seconds` pass): what came, in order, warm-up records left out."""
    got = []
    deadline = time.monotonic() + seconds
    while not set(values) <= set(got) and time.monotonic() < deadline:
        messages = polled(share, 0.5)
        got.extend(m.value() for m in messages if m.value() != b"warm")
        settle(share, messages)
    return got


check(warm_up(shared, share), "the share consumer never received a record")


def one_member_at(epoch):
    """Whether the group has one member, at `epoch` (polling `share` meanwhile)."""
    polled(share, 0.1)
    _, group_epoch, members = described()
    return group_epoch == epoch and [member_epoch for _, member_epoch in members] == [epoch]


# A second member joins and leaves: the group epoch moves to 3, and the
# first member takes it at its next heartbeat.
wait_until(lambda: one_member_at(1), "the first member at epoch 1")
other = shared.consumer()
wait_until(lambda: polled(other, 0.1) is not None and len(described()[2]) == 2, "a second member")
other.close()
wait_until(lambda: one_member_at(3), "the first member alone at epoch 3", seconds=60)

before = [f"before-{index}".encode() for index in range(5)]
produce(*before)
got = consume(before, 30)
check(sorted(got) == sorted(before), f"before the restart: {got}")
group_type, epoch, members = described()
check(group_type == "share" and len(members) == 1, f"the group before the restart: {group_type} {members}")
print("consumed", flush=True)
check(sys.stdin.readline().strip() == "restarted", "expected the harness to restart the broker")

after = [f"after-{index}".encode() for index in range(10)]
produce(*after)
got = consume(after, 60)
check(sorted(got) == sorted(after), f"after the restart, each record once and nothing from before: {got}")
check(described() == (group_type, epoch, members), f"the group after the restart {described()}, before {(group_type, epoch, members)}")
share.close()
print("ok")
