#!/usr/bin/env bash
# Backpressure: a bounded queue pushes back on a fast publisher, which waits instead of losing messages.
source "$(dirname "$0")/../lib.sh"
run_node "$(dirname "$0")/backpressure.js"
