#!/usr/bin/env bash
# Work queue: competing workers, fair dispatch, a crashed worker's task redelivered.
source "$(dirname "$0")/../lib.sh"
run_node "$(dirname "$0")/work_queue.js"
