#!/usr/bin/env bash
# Exactly-once consume-transform-produce with Kafka transactions, a crashed processor fenced.
source "$(dirname "$0")/../lib.sh"
run_python "$(dirname "$0")/exactly_once.py"
