#!/usr/bin/env bash
# Event sourcing: two writers race on one aggregate; conditional append lets exactly one win.
source "$(dirname "$0")/../lib.sh"
run_python "$(dirname "$0")/event_sourcing.py"
