#!/usr/bin/env bash
# Event sourcing with optimistic concurrency: two writers race on one aggregate, exactly one wins.
source "$(dirname "$0")/../lib.sh"
run_python "$(dirname "$0")/event_sourcing.py"
