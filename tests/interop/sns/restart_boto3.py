"""Subscriptions survive a restart: `setup` creates a topic with a raw and a
filtered SQS subscriber and changes attributes of both the topic and a
subscription; after the broker restarts on the same data directory,
`verify` finds them listed as they were and delivering as before."""
import json
import sys

from common import check, client, receive_all

sns = client("sns")
sqs = client("sqs")
TOPIC, RAW, FILTERED = "restart-topic", "restart-raw", "restart-filtered"
POLICY = {"kind": ["wanted"]}


def queue_arn(name):
    return f"arn:aws:sqs:us-east-1:000000000000:{name}"


if sys.argv[1] == "setup":
    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="DisplayName", AttributeValue="Survivor")
    for name in (RAW, FILTERED):
        sqs.create_queue(QueueName=name)
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(RAW), Attributes={"RawMessageDelivery": "true"})
    filtered = sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(FILTERED), Attributes={"FilterPolicy": '{"kind": ["other"]}'}
    )["SubscriptionArn"]
    # Replaced after subscribing: the replacement is what must survive.
    sns.set_subscription_attributes(SubscriptionArn=filtered, AttributeName="FilterPolicy", AttributeValue=json.dumps(POLICY))
    print("ok")
else:
    topic_arn = f"arn:aws:sns:us-east-1:000000000000:{TOPIC}"
    check(topic_arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]], "the topic is still listed")
    check(sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["DisplayName"] == "Survivor", "its attributes too")
    subscriptions = {s["Endpoint"]: s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]}
    check(sorted(subscriptions) == sorted([queue_arn(RAW), queue_arn(FILTERED)]), f"both subscriptions are listed: {subscriptions}")
    raw = sns.get_subscription_attributes(SubscriptionArn=subscriptions[queue_arn(RAW)])["Attributes"]
    check(raw["RawMessageDelivery"] == "true", f"raw delivery survived: {raw}")
    filtered = sns.get_subscription_attributes(SubscriptionArn=subscriptions[queue_arn(FILTERED)])["Attributes"]
    check(json.loads(filtered["FilterPolicy"]) == POLICY, f"the replaced filter policy survived: {filtered}")
    for kind in ("wanted", "other"):
        sns.publish(TopicArn=topic_arn, Message=kind, MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}})
    raw_url = sqs.get_queue_url(QueueName=RAW)["QueueUrl"]
    filtered_url = sqs.get_queue_url(QueueName=FILTERED)["QueueUrl"]
    check(sorted(m["Body"] for m in receive_all(sqs, raw_url, 2)) == ["other", "wanted"], "the raw subscriber gets both")
    got = [json.loads(m["Body"])["Message"] for m in receive_all(sqs, filtered_url, 1)]
    check(got == ["wanted"], f"the filtered subscriber gets what its policy passes: {got}")
    print("ok")
