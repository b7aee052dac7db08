#!/usr/bin/env bash
# Re-record fixtures/trace.jsonl: a real capture of `linnix demo all` (needs root).
#
# The recording runs while every demo scenario trips its rule, and stops a few
# seconds after the last one ends.  Afterwards, refresh the golden replay
# output with `.venv/bin/pytest tests/test_replay_golden.py --update-golden`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fixtures/trace.jsonl}
bin=${VENV:-.venv}/bin
"$bin/linnix" record "$out" --duration 30m &
recorder=$!
trap 'kill -INT "$recorder" 2>/dev/null || true' EXIT
sleep 3
"$bin/linnix" demo all
sleep 5
kill -INT "$recorder"
wait "$recorder"
trap - EXIT
echo "recorded $(wc -l < "$out") lines to $out"
