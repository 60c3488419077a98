/* args.h: command-line flag parsing shared by the commands: --flag VALUE pairs, strict numbers,
 * and a one-line error for anything unknown. */
#ifndef ALEXNET_ARGS_H
#define ALEXNET_ARGS_H

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
 * allowed). Returns the number of positional arguments, or -1 with an_error() set. "--help" sets
 * *help. */
int args_parse(const char *command, int argc, char **argv, int first, const ArgSpec *specs, int nspecs,
               const char **positional, int max_pos, int *help);
#endif
