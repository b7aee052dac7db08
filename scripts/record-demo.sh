#!/usr/bin/env bash
# Re-record fixtures/trace.jsonl: a real capture of every `linnix demo` (needs root).
#
# Only the demos' own processes are recorded: the demos run under one
# parent, held until the recorder is up, whose pid goes to `--only-tree`; the
# header and the host samples stay.  `--redact` leaves out command lines and
# any NAME=value text, so no environment of the recording machine gets in.
# The recording stops a few seconds after the last scenario ends.  Afterwards,
# refresh the golden replay output with
# `.venv/bin/pytest tests/runtime/test_replay_golden.py --update-golden`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fixtures/trace.jsonl}
bin=${VENV:-.venv}/bin
work=$(mktemp -d)
parent= recorder=
cleanup() {
    [ -n "$recorder" ] && kill -INT "$recorder" 2>/dev/null
    [ -n "$parent" ] && kill "$parent" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkfifo "$work/go"

# The parent waits for the go, then runs every scenario: those that cannot disturb one
# another side by side (the groups of linnix.tools.demo.GROUPS), the groups in turn.
# Record on a quiet host: other work takes CPU from the workloads, and shows in the
# host samples.
groups=$("$bin/python" -c 'from linnix.tools.demo import GROUPS
print("\n".join(" ".join(g) for g in GROUPS))')
(
    read -r _ < "$work/go"
    while read -r group; do
        for name in $group; do "$bin/linnix" demo "$name" > /dev/null & done
        wait
        sleep 5
    done <<< "$groups"
) &
parent=$!
"$bin/linnix" record "$out" --duration 30m --only-tree "$parent" --redact 2> "$work/log" &
recorder=$!
for _ in $(seq 600); do  # a minute at most for the recorder to attach
    grep -q "recording for" "$work/log" && break
    kill -0 "$recorder" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
    sleep 0.1
done
grep -q "recording for" "$work/log" || { cat "$work/log" >&2; exit 1; }
# Windows such as delta(procs, 5s) have no value until the host has been watched for
# that long: let the recording run a few seconds before the first workload starts.
sleep 8
echo go > "$work/go"
wait "$parent"
parent=
sleep 5
kill -INT "$recorder"
wait "$recorder"
recorder=
cat "$work/log" >&2
echo "recorded $(wc -l < "$out") lines to $out"
