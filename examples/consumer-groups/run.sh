#!/usr/bin/env bash
# Consumer groups: partitions shared by the group's members, per-key order kept.
source "$(dirname "$0")/../lib.sh"
run_python "$(dirname "$0")/consumer_groups.py"
