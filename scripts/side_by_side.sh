#!/usr/bin/env bash
# Run make targets side by side, each into its own log (build/logs/<target>.log), then print each log whole, in the
# order given, and each target's outcome and wall time, once all have ended. Fails if any failed.
#
#   bash scripts/side_by_side.sh test-airflow3 test-airflow2 PYTEST_ARGS="-p no:cacheprovider"
#
# An argument with "=" is a variable given to every target's make; the others are the targets.
# SIDE_BY_SIDE_LOGS: where the logs go (default build/logs, beside the Makefile).
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${SIDE_BY_SIDE_LOGS:-build/logs}
targets=()
variables=()
for arg in "$@"; do
    if [[ $arg == *=* ]]; then variables+=("$arg"); else targets+=("$arg"); fi
done
mkdir -p "$logs"
pids=()
for target in "${targets[@]}"; do
    (
        start=$(date +%s)
        ${MAKE:-make} --no-print-directory "$target" "${variables[@]}" > "$logs/$target.log" 2>&1
        code=$?
        echo "make $target: $([ $code = 0 ] && echo passed || echo "FAILED (exit $code)") in $(($(date +%s) - start)) s" \
            > "$logs/$target.outcome"
        exit $code
    ) &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do
    wait "$pid" || rc=1
done
for target in "${targets[@]}"; do
    cat "$logs/$target.log"
done
# The outcomes again, together at the end: the logs above can be long.
for target in "${targets[@]}"; do
    echo "== $(cat "$logs/$target.outcome") =="
done
exit $rc
