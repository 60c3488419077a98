#!/usr/bin/env bash
# readme_check.sh: the README against the program. Checks that every command line of the README's
# "Commands" block names flags its command's --help knows, that every other `alexnet CMD ...` line
# of any section (code blocks and inline spans) does too and names built-in models that exist, that
# the Models table's parameter counts are what `alexnet info` prints, and that the built-in models
# it names exist.
# With --full it also walks the README from a fresh clone: the first command (the main job, less
# the apt-get part: install the packages first) and the test command, and checks the numbers the
# README gives for them: test accuracy "about 90%" (88-92%), "under 15 minutes", and the test
# summary "N passed, 0 failed, K skipped"; and it runs the ImageNet section's prep, train and eval
# lines as written (training cut to 1 epoch of 64 images, evaluation to 32). The other sections'
# commands are checked for their flags and models only: hours of training (Imagenette, the
# paper's experiments), a GPU, several machines, or the PyTorch peer (Speed), whose figures are
# this machine's and are recorded with their machines in docs/PERFORMANCE.md and docs/RESULTS.md.
#   usage: tools/readme_check.sh [--full]        (from anywhere; exits 1 on the first mismatch)
set -euo pipefail
cd "$(dirname "$0")/.."
readme=README.md
bin=${ALEXNET_BIN:-./build/alexnet}
fail() { echo "readme_check: $*" >&2; exit 1; }
[ -x "$bin" ] || fail "no $bin: run make first"
checked=0

# 1. the Commands block: each line's flags are in its command's --help
block=$(awk '/^## Commands/ { on = 1; next } on && /^```/ { n++; if (n == 2) exit; next } on && n == 1' "$readme")
cmd=
while IFS= read -r line; do # continuation lines (indented) belong to the command above
    case $line in alexnet\ *) cmd=$(echo "$line" | awk '{ print $2 }') ;; " "*) ;; *) continue ;; esac
    [ -n "$cmd" ] || continue
    [ "$cmd" = "--version" ] && { "$bin" --version | grep -q '^alexnet ' || fail "alexnet --version"; continue; }
    help=$("$bin" "$cmd" --help) || fail "alexnet $cmd --help failed"
    for flag in $(echo "$line" | sed 's/(.*)//' | grep -o -- '--[a-z0-9-]*' | sort -u); do
        grep -qE -- "${flag}([^a-z0-9-]|$)" <<<"$help" || fail "README: 'alexnet $cmd ... $flag': $cmd --help knows no $flag"
        checked=$((checked + 1))
    done
done <<<"$block"

# 2. every other command line of the README, in any section: the lines of its code blocks (a line
# ending in \ continues) and its `inline` spans that run `alexnet CMD` or `./build/alexnet CMD`
# (after mpirun/srun too): each --flag after the command is in CMD --help, and each built-in model
# given to --model exists (`alexnet info` knows it)
known=$("$bin" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
lines=$( {
    awk '/^```/ { on = !on; next } on { if (sub(/\\$/, "")) { acc = acc $0; next } print acc $0; acc = "" }' "$readme"
    grep -o '`[^`]*alexnet [^`]*`' "$readme" | tr -d '`'
} | grep -E '(^|[ /])alexnet [a-z]')
while IFS= read -r line; do
    rest=$(echo "$line" | sed -E 's/^.*(^|[ /])alexnet ([a-z])/\2/') # from the command on
    cmd=${rest%% *}
    grep -qx -- "$cmd" <<<"$known" || continue
    rest=$(echo "$rest" | sed -e 's/(.*)//' -e 's/&&.*//' -e 's/|[^a-z].*//' -e 's/\.\.\..*//')
    help=$("$bin" "$cmd" --help) || fail "alexnet $cmd --help failed"
    for flag in $(echo "$rest" | grep -o -- '--[a-z0-9-]*' | sort -u); do
        grep -qE -- "${flag}([^a-z0-9-]|$)" <<<"$help" || fail "README: 'alexnet $cmd ... $flag': $cmd --help knows no $flag"
        checked=$((checked + 1))
    done
    for m in $(echo "$rest" | grep -o -- '--model [a-z0-9-]*\b' | awk '{ print $2 }'); do
        [[ "$m" =~ ^[a-z] ]] || continue
        "$bin" info --model "$m" >/dev/null 2>&1 || fail "README: 'alexnet $cmd --model $m': no built-in model $m"
        checked=$((checked + 1))
    done
done <<<"$lines"

# 3. the Models table: "| `NAME` | ... | COUNT (N classes) |" and "COUNT on HxWxC" against info
params() { # params MODEL CLASSES [SIZE CHANNELS]
    local extra=()
    [ $# -gt 2 ] && extra=(--size "$3" --channels "$4")
    "$bin" info --model "$1" --classes "$2" "${extra[@]}" | sed -n 's/^total parameters: //p'
}
while IFS= read -r row; do
    name=$(echo "$row" | sed -n 's/^| `\([a-z0-9-]*\)` |.*/\1/p')
    [ -n "$name" ] || continue
    last=$(echo "$row" | awk -F'|' '{ print $(NF - 1) }')
    classes=$(echo "$last" | sed -n 's/.*(\([0-9]*\) classes).*/\1/p')
    [ -n "$classes" ] || continue
    for claim in $(echo "$last" | grep -o '[0-9][0-9,]* on [0-9]*x[0-9]*x[0-9]' | tr ' ' '_'); do
        count=${claim%%_on_*}; shape=${claim##*_on_}
        size=${shape%%x*}; ch=${shape##*x}
        got=$(params "$name" "$classes" "$size" "$ch")
        [ "$got" = "$count" ] || fail "README: $name on ${size}x${size}x$ch: $count parameters, info says $got"
        checked=$((checked + 1))
    done
    if ! grep -q ' on ' <<<"$last"; then
        count=$(echo "$last" | grep -o '[0-9][0-9,]*[0-9]' | head -1)
        got=$(params "$name" "$classes")
        [ "$got" = "$count" ] || fail "README: $name: $count parameters, info says $got"
        checked=$((checked + 1))
    fi
done < <(awk '/^## Models/ { on = 1; next } on && /^## / { exit } on' "$readme")
echo "readme_check: $checked claims of the Commands block, the other command lines and the Models table hold"

[ "${1:-}" = "--full" ] || exit 0

# 4. the walk from a fresh clone: the main job and the tests, timed
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q . "$tmp/alexnet"
main=$(awk '/^```sh/ { getline; print; exit }' "$readme" | sed 's/^.*&& make -j/make -j/')
echo "readme_check: running the main job in a fresh clone: $main"
start=$(date +%s)
(cd "$tmp/alexnet" && bash -c "$main") >"$tmp/main.log" 2>&1 || { tail -5 "$tmp/main.log"; fail "the main job failed"; }
minutes=$(( ($(date +%s) - start + 59) / 60 ))
acc=$(sed -n 's/.*best validation top-1 error [0-9.]*% (accuracy \([0-9.]*\)%).*/\1/p' "$tmp/main.log" | tail -1)
[ -n "$acc" ] || fail "the main job printed no accuracy"
awk -v a="$acc" 'BEGIN { exit !(a >= 88 && a <= 92) }' || fail "README says about 90%; the main job reached $acc%"
[ "$minutes" -le 15 ] || fail "README says under 15 minutes; the main job took $minutes (on $(nproc) cores)"
echo "readme_check: main job: accuracy $acc% in at most $minutes minutes on $(nproc) cores (README: about 90%, under 15)"
# the ImageNet section's commands as written (from ../shared/data, where this clone can reach it),
# training and evaluation cut to a small budget: each must run and print its summary
sec=$(awk '/^## ImageNet-style data/ { on = 1; next } on && /^## / { exit } on' "$readme" |
      awk '/^```sh/ { on = 1; next } /^```/ { on = 0 } on' | sed 's/ *#.*//')
if [ -d "$tmp/shared/data/imagenette" ] || [ -d ../shared/data/imagenette ]; then
    mkdir -p "$tmp/shared" && ln -sfn "$(realpath ../shared/data)" "$tmp/shared/data"
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        case $line in
        *" train "*) line="$line --epochs 1 --limit-train 64 --limit-val 32 --batch 32" ;;
        *" eval "*) line="$line --limit 32" ;;
        esac
        (cd "$tmp/alexnet" && bash -c "$line") >"$tmp/section.log" 2>&1 ||
            { tail -3 "$tmp/section.log"; fail "ImageNet section: '$line' failed"; }
        echo "readme_check: ImageNet section ran: $line"
    done <<<"$sec"
else
    echo "readme_check: ImageNet section skipped: no ../shared/data/imagenette"
fi
rm -f "$tmp/alexnet/imagenette.shard"
(cd "$tmp/alexnet" && make test) >"$tmp/test.log" 2>&1 || { tail -5 "$tmp/test.log"; fail "make test failed"; }
grep -Eq '^[0-9]+ passed, 0 failed, [0-9]+ skipped' "$tmp/test.log" || fail "make test's summary is not 'N passed, 0 failed, K skipped'"
echo "readme_check: make test: $(grep -E '^[0-9]+ passed' "$tmp/test.log" | tail -1)"
