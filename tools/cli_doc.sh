#!/usr/bin/env bash
# cli_doc.sh: writes docs/CLI.md, every command's flags in one place, generated from the program's
# own --help texts (issue 18). Run it after changing any --help text:
#
#     tools/cli_doc.sh [BIN]        BIN: the program (default build/alexnet; `make` first)
#
# It writes docs/CLI.md itself (through a temporary file and a rename, so a failure leaves the old
# file as it was) and may be run from any folder. For each command that `alexnet --help` lists, the
# page has a section "## alexnet CMD" with the usage lines, ONE table of flags (| flag | value |
# what it does |) parsed from `alexnet CMD --help`, and then that help text verbatim in a fenced
# block, so nothing is lost where a line does not parse. tests/test_cli_doc.c checks the page
# against the program's help (every --flag in the command's table, the help text verbatim) and
# fails, naming this script, when a help text changed and the page was not regenerated.
#
# How a help text is read (see parse_flags below):
#   - the usage lines: from the first line ("usage: ...") to the first empty line;
#   - flag lines start with two spaces and "--"; a line may hold several flags side by side,
#     separated by two or more spaces; the word after the flag is its value when it looks like
#     one (NAME, N, E1,E2, fp32|bf16; or the only word before the description);
#   - lines indented deeper continue the flag above them (the rightmost one starting at or left
#     of the line's indentation);
#   - a sentence of the running text that starts with a flag describes it ("--peak measures ..."),
#     and one made of comma-separated flags ("--out DIR (default ...), --batch N (128).") gives
#     one row each;
#   - every other --flag of the text gets a row too: from the usage lines ("named in the usage
#     lines"), or the sentence that mentions it. So every --token of the help is in the table.
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,/^set -e/s/^# \{0,1\}//p' "$0"
    exit 0
fi
if [ $# -gt 1 ]; then
    echo "usage: tools/cli_doc.sh [BIN]" >&2
    exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -eq 1 ]; then
    case "$1" in
        */*) bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;;
        *) bin=$(command -v "$1") || { echo "cli_doc.sh: no program $1" >&2; exit 1; } ;;
    esac
else
    bin="$root/build/alexnet"
fi
if [ ! -x "$bin" ]; then
    echo "cli_doc.sh: $bin is not an executable (run make first)" >&2
    exit 1
fi

out="$root/docs/CLI.md"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# help TEXTFILE ARGS...: the program's help into TEXTFILE, ending with a newline; fails loudly.
help() {
    local file=$1
    shift
    if ! "$bin" "$@" >"$file" 2>"$work/err" </dev/null; then
        echo "cli_doc.sh: \`alexnet $*\` failed: $(cat "$work/err")" >&2
        exit 1
    fi
    if [ ! -s "$file" ]; then
        echo "cli_doc.sh: \`alexnet $*\` printed nothing on its standard output" >&2
        exit 1
    fi
    if grep -q '```' "$file"; then
        echo "cli_doc.sh: \`alexnet $*\` contains \`\`\`, which would end the fenced block" >&2
        exit 1
    fi
    [ -z "$(tail -c 1 "$file")" ] || echo >>"$file"
}

# md TEXT: TEXT made safe for a markdown table cell or paragraph
md() {
    awk '{ gsub(/&/, "\\&amp;"); gsub(/</, "\\&lt;"); gsub(/>/, "\\&gt;"); gsub(/\*/, "\\*");
           gsub(/\|/, "\\|"); print }' <<<"$1"
}

# parse_flags < HELP: the markdown table of the flags of one command's help text
parse_flags() {
    awk '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
    # a word that reads as a flag value: NAME, N, E1,E2, 1|10, fp32|bf16, 10 (no lower case, or a |)
    function isval(t) { return t != "" && t !~ /^[-(\[]/ && (t !~ /[a-z]/ || t ~ /\|/) }
    function cell(s) {
        gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s)
        gsub(/\*/, "\\*", s); gsub(/\|/, "\\|", s); return s
    }
    function code(s) { if (s == "") return ""; gsub(/\|/, "\\|", s); return "`" s "`" }
    function addrow(f, v, d, pos) {
        nr++; rf[nr] = f; rv[nr] = v; rd[nr] = d; rp[nr] = pos; known[f] = 1
        return nr
    }
    # the words of s from the k-th on
    function words_from(s, k,    w, nw, i, r) {
        nw = split(s, w, " "); r = ""
        for (i = k; i <= nw; i++) r = r (r == "" ? "" : " ") w[i]
        return r
    }
    # the flags of a usage line, in order, with the value written after each (if any)
    function scan_usage(s,    t, f, rest, v) {
        while (match(s, /--[a-z0-9-]+/)) {
            f = substr(s, RSTART, RLENGTH); rest = substr(s, RSTART + RLENGTH); s = rest; v = ""
            if (rest ~ /^ [^ \[-]/) {
                t = substr(rest, 2); sub(/ .*/, "", t); sub(/\]+$/, "", t); sub(/\.\.\.$/, "", t)
                if (t !~ /^[-\[]/) v = t
            }
            if (!(f in upos)) { upos[f] = ++nu; uval[f] = v } else if (uval[f] == "") uval[f] = v
        }
    }
    # one flag of a flag line: "--flag [VALUE] [description]"
    function flag_segment(seg, line, col,    nw, w, f, v, d, r) {
        nw = split(seg, w, " "); f = w[1]; v = ""; d = ""
        if (f ~ /=/) { v = f; sub(/^[^=]*=/, "", v); sub(/=.*/, "", f) }
        else if (nw == 2) v = w[2]
        else if (nw > 2 && isval(w[2])) { v = w[2]; d = words_from(seg, 3) }
        else d = words_from(seg, 2)
        if (v == "" && d == "") d = words_from(seg, 2)
        r = addrow(f, v, d, line * 1000 + col)
        nlr++; lrow[nlr] = r; lcol[nlr] = col
    }
    function flag_line(i,    s, col, seg, adv) {
        s = L[i]; col = 0; nlr = 0
        while (s != "") {
            if (match(s, /^ +/)) { col += RLENGTH; s = substr(s, RLENGTH + 1) }
            if (s == "") break
            if (match(s, /  +/)) { seg = substr(s, 1, RSTART - 1); adv = RSTART - 1 }
            else { seg = s; adv = length(s) }
            if (seg ~ /^--[a-z0-9]/) flag_segment(seg, i, col)
            else if (nlr > 0) rd[lrow[nlr]] = trim(rd[lrow[nlr]] " " seg)
            col += adv; s = substr(s, adv + 1)
        }
    }
    function continuation(i,    ind, k, r) {
        match(L[i], /^ +/); ind = RLENGTH; r = lrow[1]
        for (k = 1; k <= nlr; k++) if (lcol[k] <= ind) r = lrow[k]
        rd[r] = trim(rd[r] " " trim(L[i]))
    }
    # one sentence of running text that starts with a flag
    function flag_sentence(s, pos,    n, p, c, depth, k, piece, all) {
        sub(/\.$/, "", s)
        n = 0; depth = 0; p = ""
        for (k = 1; k <= length(s); k++) {
            c = substr(s, k, 1)
            if (c == "(") depth++
            else if (c == ")" && depth > 0) depth--
            if (c == "," && depth == 0) { piece[++n] = trim(p); p = "" } else p = p c
        }
        piece[++n] = trim(p)
        all = n >= 2
        for (k = 1; k <= n; k++) { sub(/^(and|or) /, "", piece[k]); if (piece[k] !~ /^--[a-z0-9]/) all = 0 }
        if (all) { for (k = 1; k <= n; k++) flag_phrase(piece[k], pos + k) }
        else flag_phrase(s, pos)
    }
    function flag_phrase(s, pos,    f, rest, w, v) {
        match(s, /^--[a-z0-9-]+/); f = substr(s, 1, RLENGTH); rest = trim(substr(s, RLENGTH + 1))
        if (f in known) return
        w = rest; sub(/ .*/, "", w); v = ""
        if (isval(w)) { v = w; rest = trim(substr(rest, length(w) + 1)) }
        if (v == "" && (f in uval)) v = uval[f]
        addrow(f, v, rest, pos)
    }
    # a paragraph of running text: its sentences (ending with ". " outside parentheses)
    function paragraph(P, line,    k, c, depth, s) {
        depth = 0; s = ""
        for (k = 1; k <= length(P); k++) {
            c = substr(P, k, 1); s = s c
            if (c == "(") depth++
            else if (c == ")" && depth > 0) depth--
            else if (c == "." && depth == 0 && (k == length(P) || substr(P, k + 1, 1) == " ")) {
                sentence(trim(s), line); s = ""
            }
        }
        if (trim(s) != "") sentence(trim(s), line)
    }
    function sentence(s, line) {
        ns++; sent[ns] = s; sline[ns] = line
        if (s ~ /^--[a-z0-9]/) flag_sentence(s, line * 1000 + ns)
    }
    # the first sentence of the running text that names flag f, or ""
    function mention(f,    k, s, p) {
        for (k = 1; k <= ns; k++) {
            s = sent[k]
            while ((p = index(s, f)) > 0) {
                if (substr(s, p + length(f), 1) !~ /[a-z0-9-]/) return sent[k]
                s = substr(s, p + length(f))
            }
        }
        return ""
    }
    # row a before row b? Flags of the usage lines first, in their order; then by place in the text
    function before(a, b,    ka, kb) {
        ka = (rf[a] in upos) ? upos[rf[a]] : 1e6 + rp[a]
        kb = (rf[b] in upos) ? upos[rf[b]] : 1e6 + rp[b]
        return ka < kb || (ka == kb && a < b)
    }
    { L[++n] = $0 }
    END {
        i = 1
        if (n >= 1 && L[1] ~ /^usage:/) while (i <= n && L[i] != "") scan_usage(L[i++])
        first = i
        inflag = 0
        for (; i <= n; i++) {
            if (L[i] ~ /^  --/) { kind[i] = "flag"; flag_line(i); inflag = 1 }
            else if (inflag && L[i] ~ /^   +[^ ]/) { kind[i] = "cont"; continuation(i) }
            else { inflag = 0; kind[i] = L[i] == "" ? "blank" : "text" }
        }
        P = ""
        for (i = first; i <= n + 1; i++) {
            if (i <= n && kind[i] == "text") { if (P == "") pl = i; P = P (P == "" ? "" : " ") trim(L[i]) }
            else if (P != "") { paragraph(P, pl); P = "" }
        }
        for (f in upos) if (!(f in known)) addrow(f, uval[f], "named in the usage lines", 0)
        for (i = 1; i <= n; i++) {
            s = L[i]; col = 0
            while (match(s, /--[a-z0-9-]+/)) {
                f = substr(s, RSTART, RLENGTH); col += RSTART + RLENGTH - 1
                rest = substr(s, RSTART + RLENGTH); s = rest
                if (f in known) continue
                w = rest; sub(/^ /, "", w); sub(/[ ,;:)].*/, "", w)
                m = mention(f)
                addrow(f, rest ~ /^ / && isval(w) ? w : "", m != "" ? "mentioned in: " m : "named in the text", i * 1000 + col)
            }
        }
        for (i = 1; i <= nr; i++) order[i] = i
        for (i = 2; i <= nr; i++) {
            k = order[i]
            for (j = i - 1; j >= 1 && before(k, order[j]); j--) order[j + 1] = order[j]
            order[j + 1] = k
        }
        print "| flag | value | what it does |"
        print "|---|---|---|"
        for (i = 1; i <= nr; i++) {
            r = order[i]
            print "| " code(rf[r]) " | " code(rv[r]) " | " cell(rd[r]) " |"
        }
    }'
}

help "$work/top" --help
# the commands: the lines "  NAME  what it does" after "commands:" in the top-level help (lines
# indented deeper continue the one above), one "NAME what it does" a line
awk '/^commands:/ { on = 1; next }
     on && /^  [a-z]/ { if (cur != "") print cur; cur = $0; sub(/^ +/, "", cur); next }
     on && /^   +[^ ]/ && cur != "" { line = $0; sub(/^ +/, "", line); cur = cur " " line; next }
     on && /^$/ { on = 0 }
     END { if (cur != "") print cur }' "$work/top" >"$work/commands"
if [ ! -s "$work/commands" ]; then
    echo "cli_doc.sh: found no commands in \`alexnet --help\` (a \"commands:\" list)" >&2
    exit 1
fi

{
    echo "# alexnet's commands and flags"
    echo
    echo "Generated by \`tools/cli_doc.sh\` from \`alexnet --help\` and \`alexnet CMD --help\`;"
    echo "do not edit by hand: after changing a help text, run \`tools/cli_doc.sh\` (after \`make\`)."
    echo "\`tests/test_cli_doc.c\` fails while this page and the help texts differ. Each command has a"
    echo "table of its flags parsed from its help, then the help itself, verbatim, which is the"
    echo "reference where the two disagree."
    echo
    echo "| command | what it does |"
    echo "|---|---|"
    while read -r name what; do
        echo "| [$name](#alexnet-$name) | $(md "$what") |"
    done <"$work/commands"
    echo
    echo "\`alexnet --help\`:"
    echo
    echo '```text'
    cat "$work/top"
    echo '```'
    while read -r name what; do
        help "$work/cmd" "$name" --help
        echo
        echo "## alexnet $name"
        echo
        md "$what"
        echo
        if head -n 1 "$work/cmd" | grep -q '^usage:'; then
            echo '```'
            awk '$0 == "" { exit } { print }' "$work/cmd"
            echo '```'
            echo
        fi
        parse_flags <"$work/cmd"
        echo
        echo "\`alexnet $name --help\`:"
        echo
        echo '```text'
        cat "$work/cmd"
        echo '```'
    done <"$work/commands"
} >"$work/CLI.md"

mkdir -p "$(dirname "$out")"
cp "$work/CLI.md" "$out.tmp"
mv "$out.tmp" "$out"
echo "cli_doc.sh: wrote $out ($(grep -c '^## alexnet ' "$out") commands)" >&2
