#!/bin/sh
# fuzz/run_one.sh NAME SECONDS WORKDIR [extra libFuzzer flags...]
# Runs build-fuzz/fuzz_NAME for SECONDS over a scratch copy of fuzz/corpus/NAME (in WORKDIR/corpus;
# the committed corpus is never written), with fuzz/NAME.dict when there is one. Crash, leak and
# timeout inputs land in WORKDIR/ (crash-*, leak-*, timeout-*), libFuzzer's output in WORKDIR/log.
# Prints one line: NAME, executions, coverage, seconds, and OK or FAILED. Exit status 1 on a find.
set -u
name=$1 seconds=$2 work=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${FUZZ_BUILD:-$root/build-fuzz}/fuzz_$name
[ -x "$bin" ] || { echo "$name: $bin is not built (make fuzz)"; exit 1; }
rm -rf "$work/corpus"
mkdir -p "$work/corpus"
cp "$root/fuzz/corpus/$name/"* "$work/corpus/" 2>/dev/null
dict=
[ -f "$root/fuzz/$name.dict" ] && dict="-dict=$root/fuzz/$name.dict"
# inputs may grow to: room for mutations beyond the seeds (each harness's layout: fuzz/fuzz_NAME.c)
case $name in
    image) maxlen=65536 ;; cifar10) maxlen=16384 ;; checkpoint|safetensors|idx) maxlen=16384 ;;
    labels|shard) maxlen=8192 ;; *) maxlen=4096 ;;
esac
# -close_fd_mask=3: the readers' messages go nowhere; libFuzzer and sanitizer reports still do.
# -malloc_limit_mb=1024: any single allocation over 1 GB is a find (the fuzz build's largest image,
# 4 megapixels, needs 12 MB); -rss_limit_mb=4096 for the whole process, whose resident size under
# AddressSanitizer grows with its quarantine and caches (to about 500 MB in 2 minutes of fuzz_image)
# and once jumped past 2 GB in a CI run on no input that could be found again (docs/RELIABILITY.md).
"$bin" $dict -max_len=$maxlen -max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb=1024 -timeout=10 -close_fd_mask=3 \
    -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus" > "$work/log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1 | sed 's/cov: //')
found=$(ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | head -n 1)
if [ $rc -ne 0 ] || [ -n "$found" ]; then
    echo "$name: FAILED (exit $rc) ${found:+input $work/$found}; last lines of $work/log:"
    grep -E 'ERROR|SUMMARY|#[0-9]' "$work/log" | tail -n 8
    exit 1
fi
echo "$name: ${execs:-?} executions, cov ${cov:-?}, ${secs:-?} s: OK"
