#!/usr/bin/env bash
# SNS + SQS fan-out: one publish, a copy in every subscribed queue, filtered per subscriber.
source "$(dirname "$0")/../lib.sh"
run_node "$(dirname "$0")/sns_sqs_fanout.js"
