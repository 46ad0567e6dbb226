"""A produce to a partition leader cut off from its majority, with confluent-kafka (issue 17).

argv: BOOTSTRAP (the isolated node's Kafka address only), TOPIC, VALUE and
TIMEOUT_MS.

Produces VALUE to partition 0 of TOPIC with acks=all, no retry and
request.timeout.ms=TIMEOUT_MS (the Produce request's timeout_ms). The
isolated leader cannot have it committed, so it answers REQUEST_TIMED_OUT
(Kafka's error 7) once TIMEOUT_MS have passed, not NOT_LEADER_OR_FOLLOWER
and not after the client's own message timeout. Prints `timed-out SECONDS`
(from the produce to the delivery report).
"""
import sys
import time

from confluent_kafka import KafkaError, Producer

from common import check

BOOTSTRAP, TOPIC, VALUE, TIMEOUT_MS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

producer = Producer(
    {
        "bootstrap.servers": BOOTSTRAP,
        "acks": "all",
        "retries": 0,
        "enable.idempotence": False,
        "request.timeout.ms": TIMEOUT_MS,
        # Far above the broker's answer, so the error is the broker's.
        "message.timeout.ms": 60000,
    }
)
reports = []
started = time.monotonic()
producer.produce(TOPIC, value=VALUE.encode(), partition=0, on_delivery=lambda error, _: reports.append(error))
remaining = producer.flush(90)
seconds = time.monotonic() - started
check(remaining == 0 and len(reports) == 1, f"one delivery report for {VALUE}: {reports}")
error = reports[0]
check(error is not None, f"{VALUE} was acknowledged by a leader cut off from its majority")
check(error.code() == KafkaError.REQUEST_TIMED_OUT, f"REQUEST_TIMED_OUT for {VALUE}, got {error}")
print(f"timed-out {seconds:.1f}", flush=True)
