#!/usr/bin/env bash
# tests/install_check.sh: the library as a user gets it (issue 16). Installs with `make install`
# into a temporary PREFIX, builds examples/classify.c and examples/train_loop.c against it with
# nothing but `pkg-config --cflags --libs alexnet`, runs them (train_loop learns its task and
# saves weights; classify gives exactly the lines `alexnet classify --top 5` prints for the same
# weights and images), checks that `nm -D` on the shared library lists exactly the functions of
# include/alexnet.h, that the soname is libalexnet.so.MAJOR, that the man page renders, and that
# a DESTDIR install is removed whole by `make uninstall`.
#   usage: tests/install_check.sh [BUILD]     (default build; run from anywhere after `make`)
# Prints one line per check and "N passed, N failed, K skipped". Skipped: no cc or pkg-config, or
# a sanitizer build (its library needs the sanitizer runtime loaded first).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
make_() { make -s --no-print-directory BUILD="$build" "$@"; }
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok    $1"; else fail=$((fail + 1)); echo "FAIL  $1"; fi; }
skip() { echo "install_check: skipped: $1"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }
command -v cc >/dev/null || skip "no C compiler (cc)"
command -v pkg-config >/dev/null || skip "no pkg-config (Debian package pkg-config)"
[ -e "$build/libalexnet.so" ] || { echo "install_check: no $build/libalexnet.so: run make first" >&2; exit 1; }
readelf -d "$build/libalexnet.so" | grep -q 'libasan\|libubsan' && skip "a sanitizer build"
tmp=$(mktemp -d /tmp/alexnet-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

# 1. install into PREFIX, build the examples with pkg-config only
make_ install PREFIX="$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; echo "FAIL  make install"; exit 1; }
for f in bin/alexnet include/alexnet.h lib/libalexnet.a lib/libalexnet.so lib/pkgconfig/alexnet.pc share/man/man1/alexnet.1; do
    check "make install PREFIX: $f" "[ -e '$prefix/$f' ]"
done
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs alexnet)
check "pkg-config names the installed prefix ($flags)" '[[ "$flags" == *"-I$prefix/include"* && "$flags" == *"-L$prefix/lib"* ]]'
check "pkg-config --modversion is the header's version" \
    '[ "$(pkg-config --modversion alexnet)" = "$(sed -n "s/^#define ALEXNET_VERSION_STRING \"\(.*\)\"/\1/p" include/alexnet.h)" ]'
for ex in classify train_loop; do
    check "examples/$ex.c builds with pkg-config alone" \
        "cc -std=c11 -Wall -Wextra -Werror examples/$ex.c $flags -o '$tmp/$ex' 2>'$tmp/$ex.cc.log' || { cat '$tmp/$ex.cc.log'; false; }"
done
export LD_LIBRARY_PATH=$prefix/lib
check "the examples link the shared library" "ldd '$tmp/classify' | grep -q '$prefix/lib/libalexnet.so'"

# 2. run them: train_loop learns, classify agrees with the installed alexnet classify
(cd "$tmp" && ./train_loop "$tmp/w.safetensors") >"$tmp/train.log" 2>&1
acc=$(sed -n 's/.*top-1 accuracy \([0-9.]*\)%.*/\1/p' "$tmp/train.log")
check "train_loop learns its task (held-out accuracy ${acc:-none}%, at least 90%)" \
    '[ -n "$acc" ] && awk -v a="$acc" "BEGIN { exit !(a >= 90) }"'
images=("$tmp/filters.png")
"$prefix/bin/alexnet" viz filters --weights "$tmp/w.safetensors" --out "$tmp/filters.png" >/dev/null 2>&1
for f in ../shared/data/demo-images/*.jpg ../shared/data/demo-images/*.png; do [ -f "$f" ] && images+=("$f"); done
"$prefix/bin/alexnet" classify --weights "$tmp/w.safetensors" --top 5 "${images[@]}" >"$tmp/cli.txt" 2>/dev/null
"$tmp/classify" "$tmp/w.safetensors" "${images[@]}" >"$tmp/ex.txt" 2>/dev/null
check "examples/classify prints alexnet classify's top 5 for ${#images[@]} images" \
    '[ -s "$tmp/cli.txt" ] && [ "$(grep -c "^5 " "$tmp/cli.txt")" = "${#images[@]}" ] && cmp -s "$tmp/cli.txt" "$tmp/ex.txt"'
"$tmp/classify" "$tmp/w.safetensors" "$tmp/missing.jpg" >/dev/null 2>"$tmp/err.txt"
check "examples/classify reports a missing image in one line naming it" \
    '[ "$(wc -l <"$tmp/err.txt")" = 1 ] && grep -q "missing.jpg" "$tmp/err.txt"'

# 3. what the shared library exports: the header's functions, nothing else
lib=$(readlink -f "$prefix/lib/libalexnet.so")
nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWwDdBbRrVvi]$/ { print $3 }' | sed 's/@.*//' | sort -u >"$tmp/exported"
grep -o '\balexnet_[a-z_0-9]*(' include/alexnet.h | tr -d '(' | sort -u >"$tmp/declared"
check "nm -D lists only alexnet_* ($(wc -l <"$tmp/exported") symbols)" '! grep -qv "^alexnet_" "$tmp/exported"'
check "nm -D lists every function of include/alexnet.h" 'cmp -s "$tmp/exported" "$tmp/declared" || { diff "$tmp/declared" "$tmp/exported"; false; }'
major=$(pkg-config --modversion alexnet | cut -d. -f1)
check "soname libalexnet.so.$major" "readelf -d '$lib' | grep -q 'SONAME.*\\[libalexnet.so.$major\\]'"
if command -v man >/dev/null; then
    rendered=$(MANWIDTH=100 man -l "$prefix/share/man/man1/alexnet.1" 2>"$tmp/man.err")
    missing=$(for c in $("$prefix/bin/alexnet" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
        grep -q "^   alexnet $c\$" <<<"$rendered" || echo "$c"; done)
    check "the man page renders without warnings and has every command's section${missing:+ (missing: $missing)}" \
        '[ -n "$rendered" ] && [ ! -s "$tmp/man.err" ] && [ -z "$missing" ]'
fi

# 4. DESTDIR install and uninstall
make_ install PREFIX=/usr/local DESTDIR="$tmp/dest" >/dev/null 2>&1
check "make install DESTDIR: under DESTDIR/usr/local" '[ -x "$tmp/dest/usr/local/bin/alexnet" ] && [ -f "$tmp/dest/usr/local/lib/pkgconfig/alexnet.pc" ]'
check "the DESTDIR install's alexnet.pc says prefix=/usr/local" 'grep -q "^prefix=/usr/local$" "$tmp/dest/usr/local/lib/pkgconfig/alexnet.pc"'
make_ uninstall PREFIX=/usr/local DESTDIR="$tmp/dest" >/dev/null 2>&1
check "make uninstall leaves no file" '[ -z "$(find "$tmp/dest" -type f -o -type l)" ]'
make_ >/dev/null 2>&1 # install rewrote BUILD/alexnet.pc for its PREFIX: back to the default
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" = 0 ]
