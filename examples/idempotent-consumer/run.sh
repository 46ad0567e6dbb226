#!/usr/bin/env bash
# Idempotent consumer: at-least-once delivery, duplicates skipped by a deduplication table.
source "$(dirname "$0")/../lib.sh"
run_python "$(dirname "$0")/idempotent_consumer.py"
