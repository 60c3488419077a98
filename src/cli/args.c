/* args.c: strict flag parsing for the commands (see args.h). */
#include "args.h"
#include "../util/common.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Why v is not a whole number: "not a number" when nothing numeric is there at all, else "not a
 * whole number" (1.5), or a hint when the value is whole but not written in digits (1e3, 2.0). */
static const char *not_whole(const char *v) {
    char *end = NULL;
    double x = strtod(v, &end);
    if (!*v || *end) return "not a number";
    if (isfinite(x) && x == floor(x)) return "whole numbers are written in digits only";
    return "not a whole number";
}

static int bad(const char *command, const ArgSpec *s, const char *v, const char *why) {
    return an_error("%s: bad value '%s' for %s (%s)", command, v, s->flag, why);
}

/* A signed whole number in [lo, hi] (base 10, the whole string) into *out, else -1 with an error
 * naming the flag and the value. */
static int parse_whole(const char *command, const ArgSpec *s, const char *v, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || end == v || *end) return bad(command, s, v, not_whole(v));
    if (errno == ERANGE || x < lo || x > hi) return bad(command, s, v, "out of range");
    *out = x;
    return 0;
}

static int parse_value(const char *command, const ArgSpec *s, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (s->type) {
    case ARG_STR: *(const char **)s->dest = v; return 0;
    case ARG_INT: {
        long x;
        if (parse_whole(command, s, v, -2147483647L, 2147483647L, &x)) return -1;
        *(int *)s->dest = (int)x;
        return 0;
    }
    case ARG_LONG: {
        long x;
        if (parse_whole(command, s, v, LONG_MIN, LONG_MAX, &x)) return -1;
        *(long *)s->dest = x;
        return 0;
    }
    case ARG_U64: {
        const char *p = v;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '-') {
            (void)strtod(v, &end);
            return bad(command, s, v, *v && !*end ? "negative: a whole number >= 0 is needed" : "not a number");
        }
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || end == v || *end) return bad(command, s, v, not_whole(v));
        if (errno == ERANGE) return bad(command, s, v, "out of range");
        *(unsigned long long *)s->dest = x;
        return 0;
    }
    case ARG_FLOAT: { /* finite numbers only: "nan", "inf" and overflow are refused here */
        float x = strtof(v, &end);
        if (!*v || end == v || *end) return bad(command, s, v, "not a number");
        if (!isfinite(x) || (errno == ERANGE && fabsf(x) > 1)) return bad(command, s, v, "not a finite number");
        if (errno == ERANGE) return bad(command, s, v, "too close to 0 for a 32-bit float");
        *(float *)s->dest = x;
        return 0;
    }
    case ARG_INTLIST: {
        ArgIntList *l = s->dest;
        *l->count = 0;
        const char *p = v;
        if (!*v) return bad(command, s, v, "not a comma-separated list of whole numbers");
        while (*p) {
            errno = 0;
            long x = strtol(p, &end, 10);
            if (end == p || (*end && *end != ',')) return bad(command, s, v, "not a comma-separated list of whole numbers");
            if (x < 0) return bad(command, s, v, "negative numbers are not allowed");
            if (errno == ERANGE || x > 2147483647L) return bad(command, s, v, "out of range");
            if (*l->count >= l->max) {
                char why[64];
                snprintf(why, sizeof why, "more than %d values", l->max);
                return bad(command, s, v, why);
            }
            l->values[(*l->count)++] = (int)x;
            p = *end == ',' ? end + 1 : end;
        }
        return 0;
    }
    case ARG_STRLIST: {
        ArgStrList *l = s->dest;
        if (*l->count >= l->max) return an_error("%s: %s given more than %d times", command, s->flag, l->max);
        l->values[(*l->count)++] = v;
        return 0;
    }
    case ARG_FLAG: return 0;
    }
    return bad(command, s, v, "unknown flag type");
}

/* Optimal-string-alignment (Damerau) distance between a and b: insertions, deletions,
 * substitutions and swaps of two neighbours each count 1. Strings over 63 bytes count as far. */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

/* The flags of this command nearest to the unknown `name`, as "--a" or "--a or --b", into out
 * ("" when none is close): those at the smallest edit distance when that is at most 2 (at most 1
 * for flags of 3 letters or fewer, and always fewer edits than the flag has letters, so that --lr
 * is not offered for any 2-letter typo); else the flags that `name` is the beginning of, when
 * there are at most 3. "--help" counts as a flag of every command. */
static void suggest(const char *name, const ArgSpec *specs, int nspecs, char *out, size_t cap) {
    enum { MAX_CANDIDATES = 128, SHOW = 3 };
    const char *flags[MAX_CANDIDATES];
    int dist[MAX_CANDIDATES], begins[MAX_CANDIDATES], n = 0, best = 99, nbegins = 0;
    size_t len = strlen(name);
    const char *typed = name;
    while (*typed == '-') typed++;
    for (int k = 0; k <= nspecs && n < MAX_CANDIDATES; k++) {
        const char *f = k < nspecs ? specs[k].flag : "--help", *core = f;
        while (*core == '-') core++;
        size_t clen = strlen(core);
        int d = edit_distance(name, f);
        if (!*typed || d > (clen <= 3 ? 1 : 2) || (size_t)d >= clen) d = 99;
        if (d < best) best = d;
        begins[n] = *typed && len > 2 && strncmp(name, f, len) == 0;
        nbegins += begins[n];
        flags[n] = f, dist[n++] = d;
    }
    out[0] = 0;
    for (int k = 0, shown = 0; k < n && shown < SHOW; k++) {
        if (best < 99 ? dist[k] != best : !begins[k] || nbegins > SHOW) continue;
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", shown++ ? " or " : "", flags[k]);
    }
}

int args_parse(const char *command, int argc, char **argv, int first, const ArgSpec *specs, int nspecs,
               const char **positional, int max_pos, int *help) {
    int npos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == 0) {
            if (npos >= max_pos)
                return an_error("%s: unexpected argument '%s' (see alexnet %s --help)", command, a, command);
            positional[npos++] = a;
            continue;
        }
        /* "--flag=value": the name is what comes before the first '=' */
        char name[128];
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof name) nlen = sizeof name - 1;
        memcpy(name, a, nlen);
        name[nlen] = 0;
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            if (eq) return an_error("%s: %s takes no value", command, name);
            *help = 1;
            continue;
        }
        const ArgSpec *s = NULL;
        for (int k = 0; k < nspecs; k++)
            if (strcmp(specs[k].flag, name) == 0) s = &specs[k];
        if (!s) {
            char near[256];
            suggest(name, specs, nspecs, near, sizeof near);
            if (near[0]) return an_error("%s: unknown flag '%s' (did you mean %s?)", command, name, near);
            return an_error("%s: unknown flag '%s' (see alexnet %s --help)", command, name, command);
        }
        if (s->type == ARG_FLAG) {
            if (eq) return an_error("%s: %s takes no value (got '%s')", command, s->flag, eq + 1);
            *(int *)s->dest = 1;
            if (s->seen) *s->seen = 1;
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
            if (!*v) return an_error("%s: %s= has an empty value (give %s=VALUE or %s VALUE)", command, s->flag,
                                     s->flag, s->flag);
        } else {
            if (i + 1 >= argc) return an_error("%s: %s needs a value", command, s->flag);
            v = argv[++i];
            /* "--out --quiet": the user left the value out; --out=--quiet still names such a file */
            int is_flag = strcmp(v, "--help") == 0 || strcmp(v, "-h") == 0;
            for (int k = 0; k < nspecs && !is_flag; k++) is_flag = strcmp(specs[k].flag, v) == 0;
            if (is_flag) return an_error("%s: %s needs a value (got the flag %s)", command, s->flag, v);
        }
        if (s->seen) *s->seen = 1;
        if (parse_value(command, s, v)) return -1;
    }
    return npos;
}

int arg_range(const char *command, const char *flag, long value, long lo, long hi) {
    if (value >= lo && value <= hi) return 0;
    if (hi == LONG_MAX) return an_error("%s: %s must be at least %ld, not %ld", command, flag, lo, value);
    return an_error("%s: %s must be %ld to %ld, not %ld", command, flag, lo, hi, value);
}
