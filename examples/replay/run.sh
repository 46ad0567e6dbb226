#!/usr/bin/env bash
# Replay: a consumed log is still there; read it again from the start or from a time.
source "$(dirname "$0")/../lib.sh"
run_node "$(dirname "$0")/replay.js"
