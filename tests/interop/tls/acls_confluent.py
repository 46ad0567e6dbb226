"""ACLs made with confluent-kafka's AdminClient: a user with a prefixed
WRITE grant on `orders.` produces to `orders.eu` but gets
TOPIC_AUTHORIZATION_FAILED on `payments`, and GROUP_AUTHORIZATION_FAILED for
a group it was not granted; DescribeAcls and DeleteAcls see the bindings."""
import sys

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from common import KAFKA, check, sasl_plain, unique

user, password = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": KAFKA})  # anonymous: a loopback client without SASL
orders, payments = "orders.eu", "payments"
for future in admin.create_topics([NewTopic(orders, 1), NewTopic(payments, 1)]).values():
    future.result(30)

granted_group = unique("granted")
principal = f"User:{user}"
bindings = [
    AclBinding(ResourceType.TOPIC, "orders.", ResourcePatternType.PREFIXED, principal, "*", AclOperation.WRITE, AclPermissionType.ALLOW),
    AclBinding(ResourceType.TOPIC, "orders.", ResourcePatternType.PREFIXED, principal, "*", AclOperation.READ, AclPermissionType.ALLOW),
    AclBinding(ResourceType.GROUP, granted_group, ResourcePatternType.LITERAL, principal, "*", AclOperation.READ, AclPermissionType.ALLOW),
]
for future in admin.create_acls(bindings).values():
    future.result(30)

described = admin.describe_acls(
    AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY, AclPermissionType.ANY)
).result(30)
check(sorted(map(str, described)) == sorted(map(str, bindings)), f"described {described}")
matching = admin.describe_acls(
    AclBindingFilter(ResourceType.TOPIC, orders, ResourcePatternType.MATCH, None, None, AclOperation.ANY, AclPermissionType.ANY)
).result(30)
check(len(matching) == 2, f"MATCH finds the prefixed bindings that apply to {orders}: {matching}")

sasl = sasl_plain(user, password)
reports = {}


def delivered(error, message):
    reports[message.topic()] = error


producer = Producer({**sasl, "message.send.max.retries": 0})
producer.produce(orders, b"granted", on_delivery=delivered)
producer.produce(payments, b"not granted", on_delivery=delivered)
producer.flush(30)
check(reports.get(orders) is None, f"produce to {orders}: {reports.get(orders)}")
refused = reports.get(payments)
check(refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, f"produce to {payments}: {refused}")

# A granted group consumes; another group is refused.
consumer = Consumer({**sasl, "group.id": granted_group, "auto.offset.reset": "earliest"})
consumer.subscribe([orders])
value = None
for _ in range(60):
    message = consumer.poll(1.0)
    if message is not None and message.error() is None:
        value = message.value()
        break
consumer.close()
check(value == b"granted", f"consumed {value}")

consumer = Consumer({**sasl, "group.id": unique("not-granted"), "auto.offset.reset": "earliest"})
consumer.subscribe([orders])
error = None
for _ in range(60):
    message = consumer.poll(1.0)
    if message is not None and message.error() is not None:
        error = message.error()
        if error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            break
consumer.close()
check(error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, f"consumer error: {error}")

# Metadata lists only the topics the user may describe.
listed = Producer(sasl).list_topics(timeout=10).topics
check(orders in listed and payments not in listed, f"listed {sorted(listed)}")

deleted = admin.delete_acls(
    [AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY, AclPermissionType.ANY)]
)
for future in deleted.values():
    check(len(future.result(30)) == 2, "both topic bindings deleted")
print("ACLs ok")
