#!/bin/sh
# fuzz/run_long.sh MINUTES [RESULTS_DIR]
# Builds the harnesses (make fuzz), then runs every one for MINUTES minutes at nice $NICE (default
# 19), $PARALLEL at a time (default 2), each from a fresh copy of its seed corpus (fuzz/run_one.sh). For each harness NAME it
# leaves in RESULTS_DIR (default fuzz/results, ignored by git):
#   NAME.log         the final libFuzzer stats (executions, coverage, time) and the verdict
#   NAME/log         libFuzzer's whole output     NAME/corpus   the grown corpus
#   NAME/crash-*     (leak-*, timeout-*, oom-*) inputs that found something
# and RESULTS_DIR/summary.md, a table of all of them (written when the last pair ends).
# Exit status 1 when any harness found something. Survives logout when started with nohup.
set -u
minutes=${1:?usage: fuzz/run_long.sh MINUTES [RESULTS_DIR]}
cd "$(dirname "$0")/.."
results=${2:-fuzz/results}
mkdir -p "$results"
seconds=$((minutes * 60))
parallel=${PARALLEL:-2}
nice=${NICE:-19}
names=$(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_\(.*\)\.c|\1|')
echo "run_long: $(date '+%F %T'): building"
nice -n 19 make --no-print-directory fuzz > "$results/build.log" 2>&1 || { echo "run_long: make fuzz failed (see $results/build.log)"; exit 1; }
echo "run_long: $(date '+%F %T'): $minutes min per harness, $parallel at a time, nice $nice: $(echo $names | tr '\n' ' ')"

one() {
    n=$1
    nice -n "$nice" fuzz/run_one.sh "$n" "$seconds" "$results/$n" > "$results/$n.verdict" 2>&1
    {
        grep -E '^#[0-9]+[[:space:]]+DONE' "$results/$n/log" | tail -n 1
        grep -E '^Done [0-9]+ runs' "$results/$n/log" | tail -n 1
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$results/$n/log"
        cat "$results/$n.verdict"
    } > "$results/$n.log"
}

set -- $names
while [ $# -gt 0 ]; do
    k=0
    while [ $# -gt 0 ] && [ $k -lt "$parallel" ]; do one "$1" & shift; k=$((k + 1)); done
    wait
done

fail=0
{
    echo "# fuzz/run_long.sh $minutes ($parallel at a time, nice $nice, on $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores): ended $(date '+%F %T')"
    echo
    echo "| harness | executions | exec/s | cov | ft | corpus | seconds | peak RSS MB | result |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for n in $names; do
        log=$results/$n/log
        done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" 2>/dev/null | tail -n 1)
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null | tail -n 1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" 2>/dev/null | tail -n 1)
        rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" 2>/dev/null | tail -n 1)
        secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" 2>/dev/null | tail -n 1)
        cov=$(echo "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
        ft=$(echo "$done_line" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
        corp=$(echo "$done_line" | sed -n 's/.*corp: \([^ ]*\).*/\1/p')
        if grep -q ': OK$' "$results/$n.verdict" 2>/dev/null; then verdict=OK; else verdict="FOUND SOMETHING: see $results/$n/"; fail=1; fi
        echo "| $n | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${secs:-?} | ${rss:-?} | $verdict |"
    done
} > "$results/summary.md"
cat "$results/summary.md"
echo "run_long: $(date '+%F %T'): done"
exit $fail
