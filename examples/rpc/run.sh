#!/usr/bin/env bash
# RPC over AMQP: requests on a queue, replies to the caller's own queue, matched by correlation id.
source "$(dirname "$0")/../lib.sh"
run_python "$(dirname "$0")/rpc.py"
