/* test_cli_doc.c: docs/CLI.md (every command's flags in one place, issue 18) against the program's
 * own --help texts, so that the page cannot fall behind them: every command that `alexnet --help`
 * lists has a section "## alexnet CMD" (and no section is left of a command that is gone); that
 * section's table names every --flag of `alexnet CMD --help` (each --[a-z0-9-]+ token, as `--flag`
 * in the part before the verbatim help) and holds the help text verbatim in a ```text block; the
 * top-level help is on the page verbatim too. On a mismatch the message says to rerun
 * tools/cli_doc.sh, which writes the page from the help texts. */
#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOC "docs/CLI.md"
#define REGEN "run tools/cli_doc.sh (after make) to regenerate " DOC
#define MAX_COMMANDS 64
#define MAX_FLAGS 256

static char *copy(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c) memcpy(c, s, n), c[n] = 0;
    return c;
}

/* "```text\n" HELP "```\n" (a newline added where the help lacks its last one), as cli_doc.sh writes */
static char *fence(const char *help) {
    size_t n = strlen(help);
    int nl = n > 0 && help[n - 1] == '\n';
    char *f = malloc(n + 16);
    if (f) snprintf(f, n + 16, "```text\n%s%s```\n", help, nl ? "" : "\n");
    return f;
}

/* the section "## alexnet NAME" of doc, to the next "## " heading (malloc'd), or NULL */
static char *section(const char *doc, const char *name) {
    char head[128];
    snprintf(head, sizeof head, "\n## alexnet %.100s\n", name);
    const char *s = strstr(doc, head);
    if (!s) return NULL;
    s++;
    const char *e = strstr(s + 1, "\n## ");
    return copy(s, e ? (size_t)(e + 1 - s) : strlen(s));
}

/* the last occurrence of pat in s, or NULL */
static char *last(char *s, const char *pat) {
    char *found = NULL;
    for (char *p = strstr(s, pat); p; p = strstr(p + 1, pat)) found = p;
    return found;
}

/* the first line where the page's block (from `have`, the line after "```text") differs from help */
static void first_difference(const char *help, const char *have, char *msg, size_t size) {
    if (!have) {
        snprintf(msg, size, "no ```text block");
        return;
    }
    for (int line = 1;; line++) {
        int a = (int)strcspn(help, "\n"), b = (int)strcspn(have, "\n");
        int help_end = !*help, have_end = !*have || (strncmp(have, "```", 3) == 0 && b == 3);
        if (help_end && have_end) snprintf(msg, size, "line %d: a difference in line ends", line);
        else if (help_end) snprintf(msg, size, "line %d: the help ends, the page has \"%.*s\"", line, b > 120 ? 120 : b, have);
        else if (have_end) snprintf(msg, size, "line %d: the page's block ends, the help has \"%.*s\"", line,
                                    a > 120 ? 120 : a, help);
        else if (a != b || memcmp(help, have, (size_t)a) != 0)
            snprintf(msg, size, "line %d: the help has \"%.*s\", the page \"%.*s\"", line, a > 120 ? 120 : a, help,
                     b > 120 ? 120 : b, have);
        else {
            help += a + (help[a] != 0);
            have += b + (have[b] != 0);
            continue;
        }
        return;
    }
}

static int flag_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

/* every --[a-z0-9-]+ token of help is in table as `--token` */
static void check_flags(const char *name, const char *help, const char *table) {
    static char seen[MAX_FLAGS][80];
    int nseen = 0;
    for (const char *p = strstr(help, "--"); p; p = strstr(p, "--")) {
        size_t n = 2;
        while (flag_char(p[n])) n++;
        if (n == 2) {
            p += 2;
            continue;
        }
        char pat[80];
        snprintf(pat, sizeof pat, "`%.*s`", (int)(n > 70 ? 70 : n), p);
        p += n;
        int dup = 0;
        for (int i = 0; i < nseen && !dup; i++) dup = strcmp(seen[i], pat) == 0;
        if (dup) continue;
        if (nseen < MAX_FLAGS) snprintf(seen[nseen++], sizeof seen[0], "%s", pat);
        CHECK(strstr(table, pat) != NULL, DOC ": the table of `alexnet %s` lacks %s, which `alexnet %s --help` names: "
              REGEN, name, pat, name);
    }
    CHECK(strstr(table, "| flag | value | what it does |") != NULL, DOC ": `alexnet %s` has no table of flags: " REGEN,
          name);
}

TEST(cli_doc_matches_help) {
    size_t n;
    char *doc = (char *)harness_read_file(DOC, &n);
    CHECK(doc != NULL, "cannot read " DOC " (the tests run from the repository root): " REGEN);
    if (!doc) return;

    /* the top-level help: verbatim, and its list of commands */
    int rc = harness_run("--help");
    CHECK(rc == 0 && harness_out[0], "`alexnet --help` exited %d: %s", rc, harness_err);
    char *top = copy(harness_out, strlen(harness_out)), *f = fence(top);
    CHECK(top && f && strstr(doc, f), DOC " does not hold `alexnet --help` verbatim: " REGEN);
    free(f);
    static char names[MAX_COMMANDS][64];
    int ncmd = 0;
    const char *p = top ? strstr(top, "\ncommands:\n") : NULL;
    for (p = p ? p + 11 : NULL; p && *p && *p != '\n'; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] != 0)) {
        if (p[0] != ' ' || p[1] != ' ' || p[2] < 'a' || p[2] > 'z') continue; /* a continuation line */
        size_t k = 2;
        while (flag_char(p[k])) k++;
        if (ncmd < MAX_COMMANDS) snprintf(names[ncmd++], sizeof names[0], "%.*s", (int)(k - 2 > 60 ? 60 : k - 2), p + 2);
    }
    CHECK(ncmd >= 5, "`alexnet --help` lists %d commands (a \"commands:\" list expected):\n%s", ncmd, top ? top : "");

    for (int c = 0; c < ncmd; c++) {
        const char *name = names[c];
        char args[96];
        snprintf(args, sizeof args, "%.60s --help", name);
        rc = harness_run(args);
        CHECK(rc == 0 && harness_out[0], "`alexnet %s` exited %d: %s", args, rc, harness_err);
        char *help = copy(harness_out, strlen(harness_out));
        char *sec = section(doc, name);
        CHECK(sec != NULL, DOC " has no section \"## alexnet %s\" (a command of `alexnet --help`): " REGEN, name);
        if (help && sec) {
            char *block = fence(help), *at = block ? strstr(sec, block) : NULL;
            char diff[400];
            if (!at) first_difference(help, last(sec, "```text\n") ? last(sec, "```text\n") + 8 : NULL, diff, sizeof diff);
            CHECK(at != NULL, DOC ": the section of `alexnet %s` does not hold its --help text verbatim (%s): " REGEN,
                  name, diff);
            /* the table: the section before the verbatim block */
            char *end = at ? at : last(sec, "```text\n");
            if (end) *end = 0;
            check_flags(name, help, sec);
            free(block);
        }
        free(help);
        free(sec);
    }

    /* no section of a command that alexnet --help no longer lists */
    for (p = strstr(doc, "\n## alexnet "); p; p = strstr(p + 1, "\n## alexnet ")) {
        const char *s = p + 12;
        size_t k = strcspn(s, "\n");
        int known = 0;
        for (int c = 0; c < ncmd && !known; c++) known = strlen(names[c]) == k && strncmp(names[c], s, k) == 0;
        CHECK(known, DOC " has a section \"## alexnet %.*s\", a command `alexnet --help` does not list: " REGEN,
              (int)(k > 60 ? 60 : k), s);
    }
    free(top);
    free(doc);
}
