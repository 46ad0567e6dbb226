"""confluent-kafka over SSL with a client certificate and no SASL: the
principal is User:<CN>. carol (an administrator) produces; mallory, known
to no ACL, gets TOPIC_AUTHORIZATION_FAILED."""
import sys

from confluent_kafka import KafkaError, Producer

from common import CA_FILE, KAFKA_TLS, check, unique

carol_cert, carol_key, mallory_cert, mallory_key = sys.argv[1:5]


def produce(cert, key, topic):
    reports = []
    producer = Producer(
        {
            "bootstrap.servers": KAFKA_TLS,
            "security.protocol": "SSL",
            "ssl.ca.location": CA_FILE,
            "ssl.certificate.location": cert,
            "ssl.key.location": key,
            "message.send.max.retries": 0,
        }
    )
    producer.produce(topic, b"by certificate", on_delivery=lambda error, _message: reports.append(error))
    producer.flush(30)
    return reports


topic = unique("mtls")
check(produce(carol_cert, carol_key, topic) == [None], "carol's certificate may produce")
reports = produce(mallory_cert, mallory_key, topic)
check(
    len(reports) == 1 and reports[0] is not None and reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
    f"mallory: {reports}",
)
print("Kafka mTLS principal ok")
