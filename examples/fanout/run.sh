#!/usr/bin/env bash
# Pub/sub fan-out: every subscriber gets every event, in order.
source "$(dirname "$0")/../lib.sh"
run_node "$(dirname "$0")/fanout.js"
