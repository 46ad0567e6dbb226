"""Kafka's authorization of the transactional APIs, with confluent-kafka: a
user granted WRITE on the transactional ids `tx-…`, WRITE on the topics
`orders.…`, READ on one group and only DESCRIBE on another commits a
transaction there; a transaction touching a topic it may not write
(AddPartitionsToTxn, Produce) or committing offsets for a group it may not
read (AddOffsetsToTxn, TxnOffsetCommit) fails with
TOPIC_/GROUP_AUTHORIZATION_FAILED and aborts, and nothing of it is visible to
read_committed consumers; a transactional id it was not granted is refused
with TRANSACTIONAL_ID_AUTHORIZATION_FAILED."""
import sys

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic, ResourcePatternType, ResourceType

from common import KAFKA, check, sasl_plain, unique

user, password = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": KAFKA})  # anonymous: a loopback client without SASL
orders, payments = unique("orders.tx"), unique("payments")
for future in admin.create_topics([NewTopic(orders, 1), NewTopic(payments, 1)]).values():
    future.result(30)
granted_group, other_group = unique("granted"), unique("not-granted")
principal = f"User:{user}"
grants = [
    (ResourceType.TRANSACTIONAL_ID, "tx-", ResourcePatternType.PREFIXED, AclOperation.WRITE),
    (ResourceType.TOPIC, "orders.", ResourcePatternType.PREFIXED, AclOperation.WRITE),
    (ResourceType.TOPIC, "orders.", ResourcePatternType.PREFIXED, AclOperation.READ),
    (ResourceType.GROUP, granted_group, ResourcePatternType.LITERAL, AclOperation.READ),
    # DESCRIBE finds the group's coordinator, but committing offsets for it needs READ.
    (ResourceType.GROUP, other_group, ResourcePatternType.LITERAL, AclOperation.DESCRIBE),
]
bindings = [AclBinding(kind, name, pattern, principal, "*", operation, AclPermissionType.ALLOW) for kind, name, pattern, operation in grants]
for future in admin.create_acls(bindings).values():
    future.result(30)

sasl = sasl_plain(user, password)


def error_code(action):
    """The Kafka error code `action` raised, or None."""
    try:
        action()
    except KafkaException as exception:
        return exception.args[0].code()
    return None


# A transactional id outside the grant.
outsider = Producer({**sasl, "transactional.id": unique("other")})
code = error_code(lambda: outsider.init_transactions(30))
check(code == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, f"init_transactions of an ungranted id: {code}")

producer = Producer({**sasl, "transactional.id": unique("tx-")})
producer.init_transactions(30)

# A topic the user may not write: the transaction cannot add it (or produce to
# it), and must abort.
reports = {}
producer.begin_transaction()
producer.produce(orders, b"aborted-1")
producer.produce(payments, b"never", on_delivery=lambda error, message: reports.update({message.topic(): error}))
try:
    producer.commit_transaction(30)
    check(False, "a transaction with an ungranted topic committed")
except KafkaException as exception:
    check(exception.args[0].txn_requires_abort(), f"the commit asks for an abort: {exception.args[0]}")
refused = reports.get(payments)
check(refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, f"delivery to {payments}: {refused}")
producer.abort_transaction(30)

# A group the user may describe but not read: its offsets cannot join the transaction.
group_of = lambda group: Consumer({**sasl, "group.id": group}).consumer_group_metadata()  # noqa: E731
producer.begin_transaction()
producer.produce(orders, b"aborted-2")
code = error_code(lambda: producer.send_offsets_to_transaction([TopicPartition(orders, 0, 1)], group_of(other_group), 30))
check(code == KafkaError.GROUP_AUTHORIZATION_FAILED, f"send_offsets_to_transaction for an ungranted group: {code}")
producer.abort_transaction(30)

# Within the grants the transaction commits, offsets and all.
producer.begin_transaction()
producer.produce(orders, b"committed")
producer.send_offsets_to_transaction([TopicPartition(orders, 0, 1)], group_of(granted_group), 30)
producer.commit_transaction(30)



def read(isolation):
    """The values of `orders` up to the committed one, read at `isolation`
    (in the granted group: a consumer of a refused group waits on close)."""
    consumer = Consumer({**sasl, "group.id": granted_group, "enable.auto.commit": False, "isolation.level": isolation})
    consumer.assign([TopicPartition(orders, 0, 0)])
    values = []
    for _ in range(60):
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            values.append(message.value())
            if message.value() == b"committed":
                break
    consumer.close()
    return values


values = read("read_committed")
check(values == [b"committed"], f"read_committed sees only the committed transaction: {values}")
print("transaction ACLs ok")
