/* safetensors.c: read and write safetensors files with a small strict JSON parser of our own.
 * Reading loads the whole file and validates every field before handing out pointers into it;
 * corrupt input gives a one-line error naming the file (byte positions count from the start of
 * the file). Writing keeps the caller's tensor order, pads the header with spaces to a multiple
 * of 8 bytes and goes through path.tmp + fsync + rename. Assumes a little-endian host. */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"
#include "../util/common.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u * 1000u * 1000u) /* as the Rust implementation: 100 MB */
#define ST_MAX_DEPTH 64                      /* nesting allowed inside skipped values */

static const struct { const char *name; size_t size; } g_dtypes[] = {
    [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8}, [ST_F16] = {"F16", 2},  [ST_BF16] = {"BF16", 2},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_U8] = {"U8", 1},    [ST_I8] = {"I8", 1},
    [ST_BOOL] = {"BOOL", 1},
};
#define ST_NDTYPES ((int)(sizeof g_dtypes / sizeof g_dtypes[0]))

size_t st_dtype_size(StDtype t) {
    return (int)t >= 0 && (int)t < ST_NDTYPES ? g_dtypes[t].size : 0;
}

const char *st_dtype_name(StDtype t) {
    return (int)t >= 0 && (int)t < ST_NDTYPES ? g_dtypes[t].name : "?";
}

/* numel(shape) * elem into *out; 0 on success, -1 on overflow or a negative dimension. */
static int shape_bytes(const int64_t *shape, int ndim, size_t elem, size_t *out) {
    size_t total = elem;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] == 0) { total = 0; }
    }
    if (total == 0) { *out = 0; return 0; }
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d > SIZE_MAX / total) return -1;
        total *= (size_t)d;
    }
    *out = total;
    return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when invalid (overlong, surrogate, > U+10FFFF). */
static size_t utf8_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* A decoded name made safe for a one-line message: control characters become '?', long names
 * are cut (at a character boundary) and end in "...". */
static const char *shown(const char *s, char buf[80]) {
    size_t n = strlen(s), k = n > 72 ? 72 : n;
    if (k < n)
        while (k > 0 && ((uint8_t)s[k] & 0xC0) == 0x80) k--;
    for (size_t i = 0; i < k; i++) buf[i] = (uint8_t)s[i] < 0x20 || s[i] == 0x7F ? '?' : s[i];
    memcpy(buf + k, k < n ? "..." : "", k < n ? 4 : 1);
    return buf;
}
#define SHOWN(s) shown((s), (char[80]){0})

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                    */

typedef struct Parser {
    const char *path;
    const uint8_t *s; /* header text */
    size_t n, pos;
} Parser;

static int perr(const Parser *p, const char *what) {
    return an_error("%s: corrupt header: %s at byte %zu", p->path, what, (size_t)8 + p->pos);
}

static void skip_ws(Parser *p) {
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                             p->s[p->pos] == '\r'))
        p->pos++;
}

/* Skips whitespace, then consumes c if it is next; returns 1 if consumed. */
static int accept(Parser *p, char c) {
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == (uint8_t)c) { p->pos++; return 1; }
    return 0;
}

static int expect(Parser *p, char c) {
    if (accept(p, c)) return 0;
    char msg[32];
    snprintf(msg, sizeof msg, "expected '%c'", c);
    return perr(p, msg);
}

static int hex4(Parser *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (p->pos >= p->n) return perr(p, "unterminated \\u escape");
        uint8_t c = p->s[p->pos];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return perr(p, "bad hex digit in \\u escape");
        v = v * 16 + (uint32_t)d;
        p->pos++;
    }
    *out = v;
    return 0;
}

/* Parses a JSON string at the current position into a fresh NUL-terminated UTF-8 string
 * (*out, malloc'd; NULL when out is NULL: the string is only checked). */
static int parse_string(Parser *p, char **out) {
    if (out) *out = NULL;
    skip_ws(p);
    if (p->pos >= p->n || p->s[p->pos] != '"') return perr(p, "expected a string");
    p->pos++;
    /* the decoded string is never longer than the raw text */
    size_t end = p->pos;
    while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    size_t cap = (end < p->n ? end : p->n) - p->pos + 1;
    char *buf = NULL;
    if (out) {
        buf = malloc(cap);
        if (!buf) return an_error("%s: out of memory reading the header", p->path);
    }
    size_t len = 0;
    for (;;) {
        if (p->pos >= p->n) { free(buf); return perr(p, "unterminated string"); }
        uint8_t c = p->s[p->pos];
        if (c == '"') { p->pos++; break; }
        if (c < 0x20) { free(buf); return perr(p, "control character in string"); }
        if (c != '\\') {
            size_t l = utf8_len(p->s + p->pos, p->n - p->pos);
            if (!l) { free(buf); return perr(p, "invalid UTF-8 in string"); }
            if (buf && len + l < cap) memcpy(buf + len, p->s + p->pos, l);
            len += l;
            p->pos += l;
            continue;
        }
        p->pos++;
        if (p->pos >= p->n) { free(buf); return perr(p, "unterminated string"); }
        c = p->s[p->pos++];
        char e;
        switch (c) {
        case '"': e = '"'; break;
        case '\\': e = '\\'; break;
        case '/': e = '/'; break;
        case 'b': e = '\b'; break;
        case 'f': e = '\f'; break;
        case 'n': e = '\n'; break;
        case 'r': e = '\r'; break;
        case 't': e = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (hex4(p, &cp)) { free(buf); return -1; }
            if (cp >= 0xDC00 && cp <= 0xDFFF) { free(buf); return perr(p, "lone low surrogate in \\u escape"); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->pos + 1 >= p->n || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    free(buf);
                    return perr(p, "lone high surrogate in \\u escape");
                }
                p->pos += 2;
                if (hex4(p, &lo)) { free(buf); return -1; }
                if (lo < 0xDC00 || lo > 0xDFFF) { free(buf); return perr(p, "bad low surrogate in \\u escape"); }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) { free(buf); return perr(p, "\\u0000 in string"); }
            /* UTF-8 is never longer than the escape it came from (6 or 12 bytes) */
            uint8_t u[4];
            size_t l;
            if (cp < 0x80) { u[0] = (uint8_t)cp; l = 1; }
            else if (cp < 0x800) { u[0] = (uint8_t)(0xC0 | (cp >> 6)); u[1] = (uint8_t)(0x80 | (cp & 0x3F)); l = 2; }
            else if (cp < 0x10000) {
                u[0] = (uint8_t)(0xE0 | (cp >> 12)); u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (uint8_t)(0x80 | (cp & 0x3F)); l = 3;
            } else {
                u[0] = (uint8_t)(0xF0 | (cp >> 18)); u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (uint8_t)(0x80 | (cp & 0x3F)); l = 4;
            }
            if (buf && len + l < cap) memcpy(buf + len, u, l);
            len += l;
            continue;
        }
        default: p->pos--; free(buf); return perr(p, "bad escape in string");
        }
        if (buf && len + 1 < cap) buf[len] = e;
        len++;
    }
    if (buf) { buf[len < cap ? len : cap - 1] = 0; *out = buf; }
    return 0;
}

/* Parses a non-negative JSON integer that fits in int64_t. */
static int parse_uint(Parser *p, int64_t *out) {
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == '-') return perr(p, "negative number");
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') return perr(p, "expected an integer");
    if (p->s[p->pos] == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return perr(p, "leading zero in number");
    int64_t v = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        int d = p->s[p->pos] - '0';
        if (v > (INT64_MAX - d) / 10) return perr(p, "number too large");
        v = v * 10 + d;
        p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
        return perr(p, "expected an integer, not a fraction");
    *out = v;
    return 0;
}

/* Checks and skips any JSON value (used for unknown keys inside a tensor entry). */
static int skip_value(Parser *p, int depth) {
    if (depth > ST_MAX_DEPTH) return perr(p, "nesting too deep");
    skip_ws(p);
    if (p->pos >= p->n) return perr(p, "unexpected end of header");
    uint8_t c = p->s[p->pos];
    if (c == '"') return parse_string(p, NULL);
    if (c == '{') {
        p->pos++;
        if (accept(p, '}')) return 0;
        do {
            if (parse_string(p, NULL) || expect(p, ':') || skip_value(p, depth + 1)) return -1;
        } while (accept(p, ','));
        return accept(p, '}') ? 0 : perr(p, "expected ',' or '}'");
    }
    if (c == '[') {
        p->pos++;
        if (accept(p, ']')) return 0;
        do {
            if (skip_value(p, depth + 1)) return -1;
        } while (accept(p, ','));
        return accept(p, ']') ? 0 : perr(p, "expected ',' or ']'");
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lits[i]);
        if (p->n - p->pos >= l && memcmp(p->s + p->pos, lits[i], l) == 0) { p->pos += l; return 0; }
    }
    if (c == '-' || (c >= '0' && c <= '9')) { /* full JSON number grammar */
        if (c == '-') p->pos++;
        if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') return perr(p, "bad number");
        if (p->s[p->pos] == '0') p->pos++;
        else while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos < p->n && p->s[p->pos] == '.') {
            p->pos++;
            if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') return perr(p, "bad number");
            while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        }
        if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
            p->pos++;
            if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
            if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') return perr(p, "bad number");
            while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        }
        return 0;
    }
    return perr(p, "unexpected character");
}

/* "__metadata__": {"key": "value", ...} */
static int parse_metadata(Parser *p, StFile *f) {
    skip_ws(p);
    if (!accept(p, '{')) return perr(p, "expected '{' for __metadata__");
    if (accept(p, '}')) return 0;
    int cap = 0;
    do {
        char *k = NULL, *v = NULL;
        if (parse_string(p, &k)) return -1;
        if (expect(p, ':') || parse_string(p, &v)) { free(k); return -1; }
        if (f->n_meta == cap) {
            cap = cap ? 2 * cap : 8;
            char **nk = realloc(f->meta_keys, (size_t)cap * sizeof *nk);
            if (nk) f->meta_keys = nk;
            char **nv = nk ? realloc(f->meta_values, (size_t)cap * sizeof *nv) : NULL;
            if (nv) f->meta_values = nv;
            if (!nk || !nv) { free(k); free(v); return an_error("%s: out of memory reading the header", p->path); }
        }
        f->meta_keys[f->n_meta] = k;
        f->meta_values[f->n_meta] = v;
        f->n_meta++;
    } while (accept(p, ','));
    return accept(p, '}') ? 0 : perr(p, "expected ',' or '}'");
}

/* One tensor entry {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}; unknown keys are
 * skipped (as the Rust implementation does). t->name is already set. */
static int parse_tensor(Parser *p, StTensor *t, int64_t *begin, int64_t *end) {
    size_t entry = p->pos;
    skip_ws(p);
    if (!accept(p, '{')) return perr(p, "expected '{' for a tensor entry");
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (!accept(p, '}')) {
        do {
            size_t at = p->pos;
            char *key = NULL;
            if (parse_string(p, &key)) return -1;
            if (expect(p, ':')) { free(key); return -1; }
            int *seen = strcmp(key, "dtype") == 0 ? &have_dtype : strcmp(key, "shape") == 0 ? &have_shape
                      : strcmp(key, "data_offsets") == 0 ? &have_offsets : NULL;
            if (seen && *seen) {
                int rc = an_error("%s: corrupt header: duplicate key \"%s\" in tensor \"%s\" at byte %zu",
                                  p->path, SHOWN(key), SHOWN(t->name), (size_t)8 + at);
                free(key);
                return rc;
            }
            if (seen) *seen = 1;
            int rc = 0;
            if (seen == &have_dtype) {
                char *d = NULL;
                size_t dat = p->pos;
                rc = parse_string(p, &d);
                if (!rc) {
                    int k = 0;
                    while (k < ST_NDTYPES && strcmp(d, g_dtypes[k].name) != 0) k++;
                    if (k == ST_NDTYPES) {
                        rc = an_error("%s: unknown dtype \"%s\" for tensor \"%s\" (byte %zu)", p->path, SHOWN(d),
                                      SHOWN(t->name), (size_t)8 + dat);
                    } else t->dtype = (StDtype)k;
                }
                free(d);
            } else if (seen == &have_shape) {
                if (!accept(p, '[')) rc = perr(p, "expected '[' for shape");
                else if (!accept(p, ']')) {
                    do {
                        if (t->ndim == ST_MAX_DIMS) {
                            rc = an_error("%s: tensor \"%s\" has more than %d dimensions", p->path, SHOWN(t->name),
                                          ST_MAX_DIMS);
                            break;
                        }
                        if ((rc = parse_uint(p, &t->shape[t->ndim]))) break;
                        t->ndim++;
                    } while (accept(p, ','));
                    if (!rc && !accept(p, ']')) rc = perr(p, "expected ',' or ']'");
                }
            } else if (seen == &have_offsets) {
                if (!accept(p, '[')) rc = perr(p, "expected '[' for data_offsets");
                else if (!(rc = parse_uint(p, begin)) && !(rc = expect(p, ',')) && !(rc = parse_uint(p, end)) &&
                         !accept(p, ']'))
                    rc = perr(p, "expected ']' after the two data_offsets");
            } else {
                rc = skip_value(p, 0);
            }
            free(key);
            if (rc) return -1;
        } while (accept(p, ','));
        if (!accept(p, '}')) return perr(p, "expected ',' or '}'");
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return an_error("%s: corrupt header: tensor \"%s\" (byte %zu) lacks \"%s\"", p->path, SHOWN(t->name),
                        (size_t)8 + entry, !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts names[0..n) (a scratch array) and returns a name that occurs twice, or NULL. */
static const char *find_dup(const char **names, int n) {
    if (n < 2) return NULL;
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

static int read_whole(const char *path, StFile *f) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return an_error("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) { int e = errno; close(fd); return an_error("%s: cannot stat: %s", path, strerror(e)); }
    if (!S_ISREG(sb.st_mode)) { close(fd); return an_error("%s: not a regular file", path); }
    if ((uint64_t)sb.st_size > SIZE_MAX - 64) { close(fd); return an_error("%s: file too large", path); }
    size_t size = (size_t)sb.st_size;
    f->buffer = an_alloc(size, "safetensors file");
    if (!f->buffer) { close(fd); return an_error("%s: out of memory (%zu bytes)", path, size); }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, f->buffer + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { int e = errno; close(fd); return an_error("%s: read failed: %s", path, strerror(e)); }
        if (r == 0) { close(fd); return an_error("%s: file shrank while reading (%zu of %zu bytes)", path, got, size); }
        got += (size_t)r;
    }
    close(fd);
    f->size = size;
    return 0;
}

/* The 8-byte length and the JSON header only (st_read_header). */
static int read_header(const char *path, StFile *f) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return an_error("%s: cannot open: %s", path, strerror(errno));
    uint8_t len[8];
    size_t got = fread(len, 1, 8, fp);
    uint64_t hlen = 0;
    for (int i = 7; got == 8 && i >= 0; i--) hlen = (hlen << 8) | len[i];
    if (got != 8 || hlen > ST_MAX_HEADER) {
        fclose(fp);
        return got != 8 ? an_error("%s: truncated: file has %zu bytes, need at least 8", path, got)
                        : an_error("%s: corrupt header: header length %llu exceeds the 100 MB limit", path,
                                   (unsigned long long)hlen);
    }
    f->buffer = an_alloc((size_t)hlen + 8, "safetensors header");
    if (!f->buffer) { fclose(fp); return an_error("%s: out of memory", path); }
    memcpy(f->buffer, len, 8);
    got = fread(f->buffer + 8, 1, (size_t)hlen, fp);
    fclose(fp);
    if (got != hlen)
        return an_error("%s: truncated: header says %llu bytes, file has %zu", path, (unsigned long long)hlen, got + 8);
    f->size = (size_t)hlen + 8;
    return 0;
}

static int parse_file(const char *path, StFile *f, int header_only) {
    if (f->size < 8) return an_error("%s: truncated: file has %zu bytes, need at least 8", path, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->buffer[i];
    if (hlen > ST_MAX_HEADER)
        return an_error("%s: corrupt header: header length %llu exceeds the 100 MB limit", path,
                        (unsigned long long)hlen);
    if (hlen > f->size - 8)
        return an_error("%s: truncated: header says %llu bytes, file has %zu", path, (unsigned long long)hlen,
                        f->size);
    Parser p = {path, f->buffer + 8, (size_t)hlen, 0};
    const uint8_t *data = f->buffer + 8 + hlen;
    size_t data_size = f->size - 8 - (size_t)hlen;

    skip_ws(&p);
    if (!accept(&p, '{')) return perr(&p, "expected '{' (header is not a JSON object)");
    int cap = 0, have_meta = 0;
    if (!accept(&p, '}')) {
        do {
            size_t at = p.pos;
            char *name = NULL;
            if (parse_string(&p, &name)) return -1;
            if (expect(&p, ':')) { free(name); return -1; }
            if (strcmp(name, "__metadata__") == 0) {
                free(name);
                if (have_meta) {
                    p.pos = at;
                    return perr(&p, "duplicate __metadata__");
                }
                have_meta = 1;
                if (parse_metadata(&p, f)) return -1;
                continue;
            }
            if (f->n == cap) {
                int ncap = cap ? 2 * cap : 16;
                StTensor *nt = realloc(f->tensors, (size_t)ncap * sizeof *nt);
                if (!nt) { free(name); return an_error("%s: out of memory reading the header", path); }
                f->tensors = nt;
                cap = ncap;
            }
            StTensor *t = &f->tensors[f->n++];
            memset(t, 0, sizeof *t);
            t->name = name;
            int64_t begin = 0, end = 0;
            if (parse_tensor(&p, t, &begin, &end)) return -1;
            size_t want;
            if (shape_bytes(t->shape, t->ndim, st_dtype_size(t->dtype), &want))
                return an_error("%s: tensor \"%s\": shape too large", path, SHOWN(t->name));
            if (end < begin)
                return an_error("%s: tensor \"%s\": data_offsets [%lld, %lld] end before begin", path, SHOWN(t->name),
                                (long long)begin, (long long)end);
            if (!header_only && (uint64_t)end > data_size)
                return an_error("%s: truncated: tensor \"%s\" data_offsets [%lld, %lld] past the data area "
                                "(%zu bytes)", path, SHOWN(t->name), (long long)begin, (long long)end, data_size);
            if ((uint64_t)(end - begin) != want)
                return an_error("%s: tensor \"%s\": data_offsets [%lld, %lld] hold %lld bytes, shape and %s "
                                "need %zu", path, SHOWN(t->name), (long long)begin, (long long)end,
                                (long long)(end - begin), st_dtype_name(t->dtype), want);
            t->nbytes = want;
            t->data = header_only ? NULL : data + begin;
        } while (accept(&p, ','));
        if (!accept(&p, '}')) return perr(&p, "expected ',' or '}'");
    }
    skip_ws(&p);
    if (p.pos != p.n) return perr(&p, "trailing characters after the JSON object");

    /* names are unique: sort copies of the pointers and compare neighbours */
    int most = f->n > f->n_meta ? f->n : f->n_meta;
    const char **names = malloc((size_t)(most ? most : 1) * sizeof *names);
    if (!names) return an_error("%s: out of memory reading the header", path);
    for (int i = 0; i < f->n; i++) names[i] = f->tensors[i].name;
    const char *dup = find_dup(names, f->n);
    int rc = dup ? an_error("%s: corrupt header: duplicate tensor name \"%s\"", path, SHOWN(dup)) : 0;
    if (!rc) {
        for (int i = 0; i < f->n_meta; i++) names[i] = f->meta_keys[i];
        dup = find_dup(names, f->n_meta);
        if (dup) rc = an_error("%s: corrupt header: duplicate metadata key \"%s\"", path, SHOWN(dup));
    }
    free(names);
    return rc;
}

int st_read(const char *path, StFile *f) {
    memset(f, 0, sizeof *f);
    if (read_whole(path, f) || parse_file(path, f, 0)) {
        st_free(f);
        return -1;
    }
    return 0;
}

int st_read_header(const char *path, StFile *f) {
    memset(f, 0, sizeof *f);
    if (read_header(path, f) || parse_file(path, f, 1)) {
        st_free(f);
        return -1;
    }
    return 0;
}

void st_free(StFile *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    an_free(f->buffer);
    memset(f, 0, sizeof *f);
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                    */

typedef struct Buf { char *p; size_t len, cap; int oom; } Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

/* Appends s as a JSON string; -1 when s is not valid UTF-8. */
static int buf_json(Buf *b, const char *s) {
    buf_put(b, "\"", 1);
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; buf_put(b, esc, 2); i++; }
        else if (c == '\n') { buf_put(b, "\\n", 2); i++; }
        else if (c == '\t') { buf_put(b, "\\t", 2); i++; }
        else if (c == '\r') { buf_put(b, "\\r", 2); i++; }
        else if (c < 0x20 || c == 0x7F) { snprintf(esc, sizeof esc, "\\u%04x", c); buf_put(b, esc, 6); i++; }
        else {
            size_t l = utf8_len((const uint8_t *)s + i, n - i);
            if (!l) return -1;
            buf_put(b, s + i, l);
            i += l;
        }
    }
    buf_put(b, "\"", 1);
    return 0;
}

static int write_all(int fd, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) { errno = ENOSPC; return -1; }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Builds the header (padded with spaces so that 8 + length is a multiple of 8). */
static int build_header(const char *path, const StTensor *tensors, int n, const char *const *meta_kv, Buf *b) {
    int n_meta = 0;
    if (meta_kv)
        while (meta_kv[2 * n_meta]) {
            if (!meta_kv[2 * n_meta + 1])
                return an_error("%s: metadata key \"%s\" has no value", path, meta_kv[2 * n_meta]);
            for (int j = 0; j < n_meta; j++)
                if (strcmp(meta_kv[2 * j], meta_kv[2 * n_meta]) == 0)
                    return an_error("%s: duplicate metadata key \"%s\"", path, meta_kv[2 * n_meta]);
            n_meta++;
        }
    buf_str(b, "{");
    int first = 1;
    if (n_meta > 0) {
        buf_str(b, "\"__metadata__\":{");
        for (int j = 0; j < n_meta; j++) {
            if (j) buf_str(b, ",");
            if (buf_json(b, meta_kv[2 * j]))
                return an_error("%s: metadata key is not valid UTF-8", path);
            buf_str(b, ":");
            if (buf_json(b, meta_kv[2 * j + 1]))
                return an_error("%s: metadata value for \"%s\" is not valid UTF-8", path, meta_kv[2 * j]);
        }
        buf_str(b, "}");
        first = 0;
    }
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        const StTensor *t = &tensors[i];
        if (!first) buf_str(b, ",");
        first = 0;
        if (buf_json(b, t->name)) return an_error("%s: tensor name is not valid UTF-8", path);
        buf_str(b, ":{\"dtype\":");
        buf_json(b, st_dtype_name(t->dtype));
        buf_str(b, ",\"shape\":[");
        char num[48];
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            buf_str(b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,", offset);
        buf_str(b, num);
        offset += t->nbytes;
        snprintf(num, sizeof num, "%zu]}", offset);
        buf_str(b, num);
    }
    buf_str(b, "}");
    while ((b->len & 7) != 0) buf_str(b, " ");
    if (b->oom) return an_error("%s: out of memory building the header", path);
    if (b->len > ST_MAX_HEADER) return an_error("%s: header of %zu bytes exceeds the 100 MB limit", path, b->len);
    return 0;
}

static int check_tensors(const char *path, const StTensor *tensors, int n) {
    if (n < 0 || (n > 0 && !tensors)) return an_error("%s: bad tensor list (n=%d)", path, n);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const StTensor *t = &tensors[i];
        if (!t->name) return an_error("%s: tensor %d has no name", path, i);
        if (strcmp(t->name, "__metadata__") == 0) return an_error("%s: \"__metadata__\" is not a tensor name", path);
        if (st_dtype_size(t->dtype) == 0)
            return an_error("%s: tensor \"%s\": bad dtype %d", path, t->name, (int)t->dtype);
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
            return an_error("%s: tensor \"%s\": %d dimensions (0 to %d allowed)", path, t->name, t->ndim, ST_MAX_DIMS);
        size_t want;
        if (shape_bytes(t->shape, t->ndim, st_dtype_size(t->dtype), &want))
            return an_error("%s: tensor \"%s\": negative or too large shape", path, t->name);
        if (want != t->nbytes)
            return an_error("%s: tensor \"%s\": nbytes %zu but shape and %s need %zu", path, t->name, t->nbytes,
                            st_dtype_name(t->dtype), want);
        if (want > 0 && !t->data) return an_error("%s: tensor \"%s\" has no data", path, t->name);
        if (want > SIZE_MAX - total) return an_error("%s: tensors too large", path);
        total += want;
    }
    const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (!names) return an_error("%s: out of memory", path);
    for (int i = 0; i < n; i++) names[i] = tensors[i].name;
    const char *dup = find_dup(names, n);
    int rc = dup ? an_error("%s: duplicate tensor name \"%s\"", path, dup) : 0;
    free(names);
    return rc;
}

int st_write(const char *path, const StTensor *tensors, int n, const char *const *meta_kv) {
    if (!path) return an_error("safetensors.c: st_write: no path");
    if (check_tensors(path, tensors, n)) return -1;
    Buf b = {0};
    if (build_header(path, tensors, n, meta_kv, &b)) { free(b.p); return -1; }

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) { free(b.p); return an_error("%s: out of memory", path); }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int rc = an_error("%s: cannot create: %s", tmp, strerror(errno));
        free(tmp); free(b.p);
        return rc;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
    const char *what = "write";
    int ok = write_all(fd, len8, 8) == 0 && write_all(fd, b.p, b.len) == 0;
    for (int i = 0; ok && i < n; i++)
        if (tensors[i].nbytes) ok = write_all(fd, tensors[i].data, tensors[i].nbytes) == 0;
    if (ok && fsync(fd) != 0) { ok = 0; what = "fsync"; }
    int err = errno;
    if (close(fd) != 0 && ok) { ok = 0; what = "close"; err = errno; }
    if (ok && rename(tmp, path) != 0) { ok = 0; what = "rename"; err = errno; }
    free(b.p);
    if (!ok) {
        unlink(tmp);
        int rc = strcmp(what, "rename") == 0 ? an_error("%s: cannot rename %s over it: %s", path, tmp, strerror(err))
                                             : an_error("%s: %s failed: %s", tmp, what, strerror(err));
        free(tmp);
        return rc;
    }
    free(tmp);
    /* make the rename itself durable; some file systems refuse fsync on a directory, so ignore errors */
    char *dir = strdup(path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
        int dfd = open(d, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
        free(dir);
    }
    return 0;
}
