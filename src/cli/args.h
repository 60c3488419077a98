/* args.h: command-line flag parsing shared by the commands: --flag VALUE or --flag=VALUE, strict
 * numbers, and a one-line error for anything unknown (with the nearest known flag when close). */
#ifndef ALEXNET_ARGS_H
#define ALEXNET_ARGS_H

/* What `alexnet --version` prints after "alexnet ". */
#define ALEXNET_VERSION "0.1.0"

typedef enum { ARG_STR, ARG_INT, ARG_LONG, ARG_FLOAT, ARG_U64, ARG_FLAG, ARG_INTLIST, ARG_STRLIST } ArgType;

typedef struct ArgSpec {
    const char *flag;  /* "--epochs" */
    ArgType type;
    void *dest;        /* const char **, int *, long *, float *, unsigned long long *, int * (flag: set to 1),
                          ArgIntList *, ArgStrList * (each use of the flag adds a value) */
    int *seen;         /* optional: set to 1 when given */
} ArgSpec;

typedef struct ArgIntList { int *values, max, *count; } ArgIntList;
typedef struct ArgStrList { const char **values; int max, *count; } ArgStrList;

/* Parse argv[first..argc). Positional arguments go to positional[] (up to max_pos; NULL if none
 * allowed). Returns the number of positional arguments, or -1 with an_error() set, naming the
 * command and the flag (and the value that does not parse). "--help" or "-h" sets *help.
 * Every flag that takes a value takes it as "--flag VALUE" or "--flag=VALUE" (split at the first
 * '='); "--flag=" (empty), "--switch=VALUE" for an ARG_FLAG, and "--flag --other-flag" (a known
 * flag where the value should be) are errors. An unknown flag's error offers the command's
 * nearest flag ("did you mean --weights?") when one is within 2 edits or the only one it begins. */
int args_parse(const char *command, int argc, char **argv, int first, const ArgSpec *specs, int nspecs,
               const char **positional, int max_pos, int *help);
/* A number given to a flag within [lo, hi] (hi LONG_MAX: no upper bound): 0, or -1 with an_error()
 * naming the command, the flag and the value ("eval: --limit must be at least 1, not -5"). */
int arg_range(const char *command, const char *flag, long value, long lo, long hi);
#endif
