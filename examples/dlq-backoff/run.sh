#!/usr/bin/env bash
# Retries with exponential backoff, then the dead-letter queue, with the history.
source "$(dirname "$0")/../lib.sh"
run_python "$(dirname "$0")/dlq_backoff.py"
