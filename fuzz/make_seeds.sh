#!/bin/sh
# fuzz/make_seeds.sh: regenerate the committed seed corpora fuzz/corpus/<name>/ with
# fuzz/make_seeds.c (built with clang against the fuzz build of the library, build-fuzz/), then
# print their sizes. Run from anywhere; it replaces every fuzz/corpus/<name>/ it writes.
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory build-fuzz/libalexnet-fuzz.a >/dev/null
clang -std=c11 -Wall -Wextra -g -O1 -fopenmp -D_GNU_SOURCE -fsanitize=address,undefined,fuzzer-no-link \
    fuzz/make_seeds.c build-fuzz/libalexnet-fuzz.a -o build-fuzz/make_seeds -fopenmp -ljpeg -lpng -lz -lm
for d in idx cifar10 safetensors checkpoint shard image labels cli; do rm -rf "fuzz/corpus/$d"; done
mkdir -p fuzz/corpus
./build-fuzz/make_seeds fuzz/corpus tests/vectors
du -sh fuzz/corpus/* | sed 's/^/  /'
