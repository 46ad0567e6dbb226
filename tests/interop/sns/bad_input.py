"""Bad SNS requests get a parseable error, never a 500: unknown actions,
SQS's query protocol (not served), missing or malformed parameters,
oversized bodies, and a few hundred randomly mutated requests."""
import random
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

from common import ENDPOINT, check

FORM = "application/x-www-form-urlencoded; charset=utf-8"
NS = "{http://sns.amazonaws.com/doc/2010-03-31/}"


def post(body, content_type=FORM):
    request = urllib.request.Request(ENDPOINT + "/", data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def error_code(body):
    root = ET.fromstring(body)
    check(root.tag == NS + "ErrorResponse", f"an ErrorResponse: {body!r}")
    return root.find(f"{NS}Error/{NS}Code").text


for body, status, code in [
    (b"Action=Nope&Version=2010-03-31", 400, "InvalidAction"),
    (b"Version=2010-03-31", 400, "InvalidAction"),
    (b"Action=SendMessage&Version=2012-11-05&QueueUrl=http://x/000000000000/q&MessageBody=m", 400, "InvalidAction"),
    (b"Action=Publish&Message=m", 400, "InvalidParameter"),
    (b"Action=Publish&TopicArn=not-an-arn&Message=m", 400, "InvalidParameter"),
    (b"Action=CreateTopic&Name=t&Attributes.entry.abc.key=DisplayName", 400, "InvalidParameter"),
    (b"Action=GetTopicAttributes&TopicArn=arn:aws:sns:us-east-1:000000000000:nope", 404, "NotFound"),
    (b"%%%&&==&Action=%ff%fe", 400, "InvalidAction"),
]:
    got_status, got_body = post(body)
    check(got_status == status, f"{body!r}: status {got_status}, expected {status}: {got_body!r}")
    check(error_code(got_body) == code, f"{body!r}: code {error_code(got_body)}, expected {code}")
sqs_status, sqs_body = post(b"Action=SendMessage&MessageBody=m")
check(b"JSON 1.0" in sqs_body, f"the SQS query-protocol error says what to use instead: {sqs_body!r}")

status, body = post(b"Action=ListTopics&" + b"x" * (5 * 1024 * 1024))
check(status == 413 and error_code(body) == "RequestEntityTooLarge", f"oversized body: {status}")

# Valid requests, then randomly mutated: every answer parses and none is a 500.
valid = [
    b"Action=CreateTopic&Name=fuzz&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=F",
    b"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Afuzz&Message=m"
    b"&MessageAttributes.entry.1.Name=a&MessageAttributes.entry.1.Value.DataType=Number&MessageAttributes.entry.1.Value.StringValue=1",
    b"Action=PublishBatch&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Afuzz"
    b"&PublishBatchRequestEntries.member.1.Id=a&PublishBatchRequestEntries.member.1.Message=m",
    b"Action=Subscribe&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Afuzz&Protocol=sqs"
    b"&Endpoint=arn%3Aaws%3Asqs%3Aus-east-1%3A000000000000%3Aq&Attributes.entry.1.key=FilterPolicy&Attributes.entry.1.value=%7B%7D",
    b"Action=ListSubscriptions&NextToken=a%3Ab",
    b"Action=SetTopicAttributes&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Afuzz&AttributeName=MaximumMessageSize&AttributeValue=9",
]
rng = random.Random(5)
alphabet = b"&=%.:1aZ\x00\xff+ "
for round_ in range(300):
    body = bytearray(rng.choice(valid))
    for _ in range(rng.randint(1, 6)):
        position = rng.randrange(len(body) + 1)
        if rng.random() < 0.5 and body:
            del body[position % len(body)]
        else:
            body.insert(position, rng.choice(alphabet))
    status, answer = post(bytes(body))
    check(status < 500, f"round {round_}: {bytes(body)!r} got {status}: {answer!r}")
    root = ET.fromstring(answer)
    check(root.tag.startswith(NS), f"round {round_}: an SNS XML answer: {answer!r}")
print("ok")
