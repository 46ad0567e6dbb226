"""SNS fan-out with boto3: a topic with two SQS subscribers, one with raw
message delivery and one with a filter policy on message attributes; each
queue gets exactly what it should. Then the listings, SetSubscriptionAttributes,
PublishBatch, Unsubscribe, DeleteTopic and the modeled errors."""
import hashlib
import json

from common import check, client, receive_all, unique

sns = client("sns")
sqs = client("sqs")

topic_name = unique("orders")
topic_arn = sns.create_topic(Name=topic_name, Attributes={"DisplayName": "Orders"})["TopicArn"]
check(topic_arn == f"arn:aws:sns:us-east-1:000000000000:{topic_name}", f"topic ARN {topic_arn}")
again = sns.create_topic(Name=topic_name)["TopicArn"]
check(again == topic_arn, "CreateTopic is idempotent")
attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
check(attributes["TopicArn"] == topic_arn and attributes["DisplayName"] == "Orders", f"topic attributes {attributes}")
sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="DisplayName", AttributeValue="Orders & <Co>")
check(
    sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["DisplayName"] == "Orders & <Co>",
    "SetTopicAttributes changed the display name (XML-escaped on the way back)",
)


def queue(name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


raw_url, raw_arn = queue(unique("raw"))
filtered_url, filtered_arn = queue(unique("filtered"))
raw_sub = sns.subscribe(
    TopicArn=topic_arn, Protocol="sqs", Endpoint=raw_arn, Attributes={"RawMessageDelivery": "true"}, ReturnSubscriptionArn=True
)["SubscriptionArn"]
policy = {"color": ["red", {"prefix": "bl"}], "price": [{"numeric": [">=", 10]}]}
filtered_sub = sns.subscribe(
    TopicArn=topic_arn, Protocol="sqs", Endpoint=filtered_arn, Attributes={"FilterPolicy": json.dumps(policy)}
)["SubscriptionArn"]
check(raw_sub.startswith(topic_arn + ":") and filtered_sub.startswith(topic_arn + ":"), "subscription ARNs extend the topic's")
check(
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=raw_arn, Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
    == raw_sub,
    "subscribing the same queue again answers the same subscription",
)

listed = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
check(
    sorted((s["SubscriptionArn"], s["Endpoint"], s["Protocol"]) for s in listed)
    == sorted([(raw_sub, raw_arn, "sqs"), (filtered_sub, filtered_arn, "sqs")]),
    f"ListSubscriptionsByTopic: {listed}",
)
check(
    {s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]} >= {raw_sub, filtered_sub},
    "ListSubscriptions includes both",
)
sub_attributes = sns.get_subscription_attributes(SubscriptionArn=filtered_sub)["Attributes"]
check(json.loads(sub_attributes["FilterPolicy"]) == policy, f"filter policy round-trips: {sub_attributes}")
check(sub_attributes["RawMessageDelivery"] == "false" and sub_attributes["Endpoint"] == filtered_arn, f"{sub_attributes}")


def attrs(color, price):
    return {"color": {"DataType": "String", "StringValue": color}, "price": {"DataType": "Number", "StringValue": str(price)}}


published = [
    ("red-12", attrs("red", 12), True),
    ("blue-50", attrs("blue", 50), True),
    ("green-99", attrs("green", 99), False),
    ("red-5", attrs("red", 5), False),
    ("no-attributes", {}, False),
]
message_ids = {}
for body, message_attributes, _ in published:
    response = sns.publish(TopicArn=topic_arn, Message=body, Subject="order", MessageAttributes=message_attributes)
    message_ids[body] = response["MessageId"]

# The raw subscriber gets every message as published, attributes as SQS message attributes.
raw = receive_all(sqs, raw_url, len(published))
check(sorted(m["Body"] for m in raw) == sorted(b for b, _, _ in published), f"raw bodies: {[m['Body'] for m in raw]}")
for message in raw:
    check(hashlib.md5(message["Body"].encode()).hexdigest() == message["MD5OfBody"], "raw body MD5")
    expected = dict(next(a for b, a, _ in published if b == message["Body"]))
    got = {name: {"DataType": v["DataType"], "StringValue": v["StringValue"]} for name, v in message.get("MessageAttributes", {}).items()}
    check(got == expected, f"raw delivery carries the message attributes: {got} != {expected}")

# The filtered subscriber gets only the matching messages, each in the JSON envelope.
filtered = receive_all(sqs, filtered_url, sum(1 for _, _, wanted in published if wanted))
envelopes = [json.loads(m["Body"]) for m in filtered]
check(
    sorted(e["Message"] for e in envelopes) == sorted(b for b, _, wanted in published if wanted),
    f"filtered messages: {[e['Message'] for e in envelopes]}",
)
for envelope in envelopes:
    check(envelope["Type"] == "Notification" and envelope["TopicArn"] == topic_arn, f"envelope {envelope}")
    check(envelope["MessageId"] == message_ids[envelope["Message"]], "the envelope carries the published MessageId")
    check(envelope["Subject"] == "order" and envelope["SignatureVersion"] == "1", f"envelope {envelope}")
    check(envelope["Timestamp"].endswith("Z") and "T" in envelope["Timestamp"], f"ISO-8601 timestamp {envelope['Timestamp']}")
    check(envelope["UnsubscribeURL"] and envelope["SigningCertURL"] and envelope["Signature"], "URLs and signature present")
    color = next(a for b, a, _ in published if b == envelope["Message"])["color"]["StringValue"]
    check(envelope["MessageAttributes"]["color"] == {"Type": "String", "Value": color}, f"{envelope['MessageAttributes']}")
    check(envelope["MessageAttributes"]["price"]["Type"] == "Number", f"{envelope['MessageAttributes']}")

# Raw delivery off, filter replaced: the raw queue now gets envelopes, the other everything blue.
sns.set_subscription_attributes(SubscriptionArn=raw_sub, AttributeName="RawMessageDelivery", AttributeValue="false")
sns.set_subscription_attributes(SubscriptionArn=filtered_sub, AttributeName="FilterPolicy", AttributeValue='{"color": ["blue"]}')
batch = sns.publish_batch(
    TopicArn=topic_arn,
    PublishBatchRequestEntries=[
        {"Id": "a", "Message": "batch-blue", "MessageAttributes": {"color": {"DataType": "String", "StringValue": "blue"}}},
        {"Id": "b", "Message": "batch-red", "MessageAttributes": {"color": {"DataType": "String", "StringValue": "red"}}},
        {"Id": "c", "Message": ""},
    ],
)
check(sorted(s["Id"] for s in batch["Successful"]) == ["a", "b"], f"batch successes {batch}")
check([(f["Id"], f["SenderFault"]) for f in batch["Failed"]] == [("c", True)], f"batch failures {batch}")
check(batch["Failed"][0]["Code"] == "InvalidParameter", f"batch failure code {batch['Failed']}")
enveloped = receive_all(sqs, raw_url, 2)
check(sorted(json.loads(m["Body"])["Message"] for m in enveloped) == ["batch-blue", "batch-red"], "raw off: envelopes")
blue = receive_all(sqs, filtered_url, 1)
check(json.loads(blue[0]["Body"])["Message"] == "batch-blue", "the replaced filter policy applies")

for entries, error in [
    ([], "EmptyBatchRequestException"),
    ([{"Id": str(i), "Message": "m"} for i in range(11)], "TooManyEntriesInBatchRequestException"),
    ([{"Id": "x", "Message": "m"}, {"Id": "x", "Message": "m"}], "BatchEntryIdsNotDistinctException"),
]:
    try:
        sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
        check(False, f"PublishBatch with {len(entries)} entries should fail with {error}")
    except getattr(sns.exceptions, error):
        pass

# Errors map to boto3's modeled exceptions.
missing = f"arn:aws:sns:us-east-1:000000000000:{unique('missing')}"
for call in [
    lambda: sns.publish(TopicArn=missing, Message="m"),
    lambda: sns.get_topic_attributes(TopicArn=missing),
    lambda: sns.subscribe(TopicArn=missing, Protocol="sqs", Endpoint=raw_arn),
    lambda: sns.get_subscription_attributes(SubscriptionArn=missing + ":00000000-0000-0000-0000-000000000000"),
]:
    try:
        call()
        check(False, "a call on a missing topic or subscription should fail")
    except sns.exceptions.NotFoundException as error:
        check(error.response["ResponseMetadata"]["HTTPStatusCode"] == 404, f"NotFound is 404: {error.response}")
for call in [
    lambda: sns.create_topic(Name="bad name!"),
    lambda: sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=filtered_arn, Attributes={"FilterPolicy": "{not json"}),
    lambda: sns.set_subscription_attributes(SubscriptionArn=raw_sub, AttributeName="FilterPolicy", AttributeValue='{"a": "b"}'),
    lambda: sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint="not-an-arn"),
    lambda: sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint="http://example.invalid/"),
    lambda: sns.create_topic(Name=topic_name, Attributes={"DisplayName": "Different"}),
]:
    try:
        call()
        check(False, "an invalid call should fail")
    except sns.exceptions.InvalidParameterException as error:
        check(error.response["ResponseMetadata"]["HTTPStatusCode"] == 400, f"InvalidParameter is 400: {error.response}")

# Unsubscribe stops deliveries; DeleteTopic removes the topic and its subscriptions.
sns.unsubscribe(SubscriptionArn=filtered_sub)
check(
    [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]] == [raw_sub],
    "Unsubscribe removed the subscription",
)
sns.publish(TopicArn=topic_arn, Message="after-unsubscribe", MessageAttributes=attrs("blue", 1))
check(len(receive_all(sqs, raw_url, 1)) == 1, "the remaining subscriber still gets messages")
check(receive_all(sqs, filtered_url, 0) == [], "the unsubscribed queue gets nothing")
try:
    sns.unsubscribe(SubscriptionArn=filtered_sub)
    check(False, "unsubscribing twice should fail")
except sns.exceptions.NotFoundException:
    pass

# ListTopics pages through every topic with NextToken.
extra = [sns.create_topic(Name=unique(f"page{i}"))["TopicArn"] for i in range(101)]
seen, token, pages = [], None, 0
while pages < 100:
    response = sns.list_topics(**({"NextToken": token} if token else {}))
    seen += [t["TopicArn"] for t in response["Topics"]]
    pages += 1
    token = response.get("NextToken")
    if not token:
        break
check(pages >= 2, f"more than one page of topics ({len(seen)} listed in {pages})")
check(set(extra + [topic_arn]) <= set(seen) and len(seen) == len(set(seen)), f"ListTopics lists each topic once: {seen}")

sns.delete_topic(TopicArn=topic_arn)
sns.delete_topic(TopicArn=topic_arn)  # idempotent, as in SNS
check(topic_arn not in [t["TopicArn"] for t in sns.list_topics()["Topics"]], "DeleteTopic removed the topic")
check(raw_sub not in [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]], "and its subscriptions")
print("ok")
