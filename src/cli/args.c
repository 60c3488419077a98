/* args.c: strict flag parsing for the commands (see args.h). */
#include "args.h"
#include "../util/common.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse_value(const char *command, const ArgSpec *s, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (s->type) {
    case ARG_STR: *(const char **)s->dest = v; return 0;
    case ARG_INT: {
        long x = strtol(v, &end, 10);
        if (*v && !*end && !errno && x >= -2147483647L && x <= 2147483647L) { *(int *)s->dest = (int)x; return 0; }
        break;
    }
    case ARG_LONG: {
        long x = strtol(v, &end, 10);
        if (*v && !*end && !errno) { *(long *)s->dest = x; return 0; }
        break;
    }
    case ARG_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (*v && *v != '-' && !*end && !errno) { *(unsigned long long *)s->dest = x; return 0; }
        break;
    }
    case ARG_FLOAT: { /* finite numbers only: "nan", "inf" and overflow are refused here */
        float x = strtof(v, &end);
        if (*v && !*end && !errno && isfinite(x)) { *(float *)s->dest = x; return 0; }
        if (*v && !*end) return an_error("%s: bad value '%s' for %s (not a finite number)", command, v, s->flag);
        break;
    }
    case ARG_INTLIST: {
        ArgIntList *l = s->dest;
        *l->count = 0;
        const char *p = v;
        while (*p) {
            errno = 0;
            long x = strtol(p, &end, 10);
            if (end == p || *l->count >= l->max || x < 0 || x > 2147483647L || errno) goto bad;
            l->values[(*l->count)++] = (int)x;
            p = *end == ',' ? end + 1 : end;
            if (*end && *end != ',') goto bad;
        }
        if (*l->count) return 0;
        break;
    }
    case ARG_STRLIST: {
        ArgStrList *l = s->dest;
        if (*l->count >= l->max) return an_error("%s: %s given more than %d times", command, s->flag, l->max);
        l->values[(*l->count)++] = v;
        return 0;
    }
    case ARG_FLAG: return 0;
    }
bad:
    return an_error("%s: bad value '%s' for %s", command, v, s->flag);
}

int args_parse(const char *command, int argc, char **argv, int first, const ArgSpec *specs, int nspecs,
               const char **positional, int max_pos, int *help) {
    int npos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { *help = 1; continue; }
        if (a[0] != '-' || a[1] == 0) {
            if (npos >= max_pos)
                return an_error("%s: unexpected argument '%s' (see alexnet %s --help)", command, a, command);
            positional[npos++] = a;
            continue;
        }
        const ArgSpec *s = NULL;
        for (int k = 0; k < nspecs; k++)
            if (strcmp(specs[k].flag, a) == 0) s = &specs[k];
        if (!s) return an_error("%s: unknown flag '%s' (see alexnet %s --help)", command, a, command);
        if (s->seen) *s->seen = 1;
        if (s->type == ARG_FLAG) { *(int *)s->dest = 1; continue; }
        if (i + 1 >= argc) return an_error("%s: %s needs a value", command, a);
        if (parse_value(command, s, argv[++i])) return -1;
    }
    return npos;
}
