#!/usr/bin/env bash
# Transactional outbox: orders and their events in one SQLite transaction, a relay that may crash.
source "$(dirname "$0")/../lib.sh"
run_python "$(dirname "$0")/outbox.py"
