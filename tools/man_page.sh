#!/usr/bin/env bash
# man_page.sh: writes the man page alexnet.1 (troff, to stdout) from the program's own --help
# texts: NAME and DESCRIPTION from `alexnet --help`, then a COMMANDS section with every command's
# --help verbatim, so the page never disagrees with the program. Called by the Makefile
# (build/alexnet.1, installed under share/man/man1).
#   usage: tools/man_page.sh BIN > alexnet.1
set -euo pipefail
bin=${1:?usage: tools/man_page.sh BIN}
version=$("$bin" --version | awk '{ print $2 }')
# troff-safe text: backslashes doubled, a leading . or ' protected
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
top=$("$bin" --help)
commands=$(awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' <<<"$top")
cat <<HEAD
.TH ALEXNET 1 "" "alexnet $version" "User Commands"
.SH NAME
alexnet \\- AlexNet (Krizhevsky, Sutskever, Hinton, NIPS 2012) in C: train, evaluate, classify
.SH SYNOPSIS
.B alexnet
.I command
.RI [ flags ]
.br
.B alexnet
.I command
.B \\-\\-help
.br
.B alexnet \\-\\-version
.SH DESCRIPTION
.nf
HEAD
esc <<<"$top"
echo ".fi"
echo ".SH COMMANDS"
for c in $commands; do
    echo ".SS alexnet $c"
    echo ".nf"
    "$bin" "$c" --help | esc
    echo ".fi"
done
cat <<'TAIL'
.SH FILES
Checkpoints and weights are safetensors files; model descriptions are text files (the built-in
models: \fBalexnet info \-\-model NAME \-\-print\-config\fR). The formats are described in
docs/FORMATS.md of the source tree.
.SH LIBRARY
The same functions are a C library: \fI#include <alexnet.h>\fR and \fBpkg\-config \-\-cflags \-\-libs alexnet\fR.
.SH SEE ALSO
.BR pkg-config (1)
TAIL
