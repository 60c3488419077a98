/* test_safetensors.c: safetensors round trips (every dtype, 0-d and empty tensors, metadata with
 * escapes), torchvision tensor names, a file written by Python's safetensors package, and the
 * error paths: missing, short, truncated and corrupt files must give -1 and a message naming the
 * file, never a crash; failed writes must leave no .tmp file behind. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/train/safetensors.h"
#include "../src/util/common.h"
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 512, "%s/%s", harness_tmpdir(), name);
    return p;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Reads a whole file into malloc'd memory (*len bytes); NULL when it cannot. */
static uint8_t *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(fp); return NULL; }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, fp);
        n += r;
    } while (r > 0);
    fclose(fp);
    *len = n;
    return buf;
}

static void spit(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { CHECK(0, "cannot create %s", path); return; }
    CHECK(fwrite(data, 1, len, fp) == len, "short write to %s", path);
    fclose(fp);
}

/* A file with the given header text (length prefix added) followed by data_len bytes of data. */
static const char *make_file(const char *name, const char *header, size_t data_len) {
    const char *path = tmp_path(name);
    size_t hl = strlen(header);
    uint8_t *buf = calloc(1, 8 + hl + data_len + 1);
    if (!buf) { CHECK(0, "out of memory"); return path; }
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) buf[8 + hl + i] = (uint8_t)(i * 7 + 1);
    spit(path, buf, 8 + hl + data_len);
    free(buf);
    return path;
}

/* st_read must fail with a message naming the file and containing `what`, leaving f zeroed. */
static void expect_fail_at(const char *path, const char *what, int line) {
    StFile f;
    memset(&f, 0xAB, sizeof f);
    int rc = st_read(path, &f);
    const char *msg = an_last_error();
    CHECK(rc == -1, "line %d: %s: st_read returned %d, expected -1", line, path, rc);
    if (rc == 0) { st_free(&f); return; }
    CHECK(strncmp(msg, path, strlen(path)) == 0, "line %d: message does not start with the path: %s", line, msg);
    CHECK(strstr(msg, what) != NULL, "line %d: message lacks \"%s\": %s", line, what, msg);
    CHECK(strchr(msg, '\n') == NULL, "line %d: message is not one line: %s", line, msg);
    CHECK(f.n == 0 && f.tensors == NULL && f.buffer == NULL && f.n_meta == 0, "line %d: f not cleared", line);
}
#define EXPECT_FAIL(path, what) expect_fail_at((path), (what), __LINE__)

static void expect_ok_at(const char *path, int n, int line) {
    StFile f;
    int rc = st_read(path, &f);
    CHECK(rc == 0, "line %d: %s: %s", line, path, an_last_error());
    if (rc == 0) { CHECK(f.n == n, "line %d: %d tensors, expected %d", line, f.n, n); st_free(&f); }
}
#define EXPECT_OK(path, n) expect_ok_at((path), (n), __LINE__)

static StTensor tensor(const char *name, StDtype dt, int ndim, const int64_t *shape, const void *data) {
    StTensor t;
    memset(&t, 0, sizeof t);
    t.name = (char *)name;
    t.dtype = dt;
    t.ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) { t.shape[i] = shape[i]; numel *= (size_t)shape[i]; }
    t.nbytes = numel * st_dtype_size(dt);
    t.data = data;
    return t;
}

static int same_tensor(const StTensor *a, const StTensor *b) {
    if (strcmp(a->name, b->name) != 0 || a->dtype != b->dtype || a->ndim != b->ndim || a->nbytes != b->nbytes)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

TEST(st_dtypes) {
    CHECK(st_dtype_size(ST_F32) == 4 && st_dtype_size(ST_F64) == 8 && st_dtype_size(ST_F16) == 2, "sizes");
    CHECK(st_dtype_size(ST_BF16) == 2 && st_dtype_size(ST_I64) == 8 && st_dtype_size(ST_I32) == 4, "sizes");
    CHECK(st_dtype_size(ST_U8) == 1 && st_dtype_size(ST_I8) == 1 && st_dtype_size(ST_BOOL) == 1, "sizes");
    CHECK(strcmp(st_dtype_name(ST_BF16), "BF16") == 0 && strcmp(st_dtype_name(ST_BOOL), "BOOL") == 0, "names");
    CHECK(st_dtype_size((StDtype)99) == 0 && strcmp(st_dtype_name((StDtype)99), "?") == 0, "out of range");
}

TEST(st_roundtrip) {
    float w[6] = {0.5f, -1.25f, 3.0f, 1e-30f, -0.0f, 65504.0f};
    double d[3] = {1.0 / 3.0, -2.5, 1e300};
    int64_t l[4] = {-1, 0, INT64_MAX, INT64_MIN};
    float scalar = 7.5f;
    uint16_t bf[3] = {0x3F80, 0xC000, 0x7FC0};
    uint16_t hf[2] = {0x3C00, 0xC000};
    int32_t i32[2] = {-7, 123456789};
    uint8_t u8[3] = {0, 127, 255};
    int8_t i8[3] = {-128, 0, 127};
    uint8_t bo[5] = {1, 0, 1, 1, 0};
    const int64_t s23[] = {2, 3}, s3[] = {3}, s22[] = {2, 2}, s04[] = {0, 4}, s2[] = {2}, s5[] = {5};
    const int64_t s113[] = {1, 1, 3};
    StTensor ts[] = {
        tensor("w", ST_F32, 2, s23, w),          tensor("d", ST_F64, 1, s3, d),
        tensor("l", ST_I64, 2, s22, l),          tensor("scalar", ST_F32, 0, NULL, &scalar),
        tensor("empty", ST_F32, 2, s04, NULL),   tensor("bf", ST_BF16, 1, s3, bf),
        tensor("hf", ST_F16, 1, s2, hf),         tensor("i32", ST_I32, 1, s2, i32),
        tensor("u8", ST_U8, 1, s3, u8),          tensor("i8", ST_I8, 3, s113, i8),
        tensor("bool \"q\" \\ caf\xc3\xa9\n", ST_BOOL, 1, s5, bo),
    };
    int n = (int)(sizeof ts / sizeof ts[0]);
    const char *meta[] = {"model", "alexnet", "quote\"back\\slash", "tab\there\nnewline \x01 \xe2\x98\x83",
                          "empty", "", NULL};
    const char *p1 = tmp_path("rt1.safetensors"), *p2 = tmp_path("rt2.safetensors");
    CHECK(st_write(p1, ts, n, meta) == 0, "%s", an_last_error());
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", p1);
    CHECK(!file_exists(tmp), "%s left behind", tmp);

    StFile f;
    int rc = st_read(p1, &f);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(f.n == n, "%d tensors", f.n);
    for (int i = 0; i < n && i < f.n; i++) {
        CHECK(same_tensor(&f.tensors[i], &ts[i]), "tensor %d (%s) differs", i, ts[i].name);
        CHECK(st_find(&f, ts[i].name) == &f.tensors[i], "st_find %s", ts[i].name);
    }
    /* data area keeps the given order, contiguous from the start of the data */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | f.buffer[i];
    CHECK((8 + hl) % 8 == 0, "header length %llu not padded to 8", (unsigned long long)hl);
    CHECK(f.tensors[0].data == f.buffer + 8 + hl, "first tensor not at the start of the data");
    for (int i = 1; i < f.n; i++)
        CHECK((const uint8_t *)f.tensors[i].data == (const uint8_t *)f.tensors[i - 1].data + f.tensors[i - 1].nbytes,
              "tensor %d not contiguous", i);
    CHECK(f.tensors[4].nbytes == 0 && f.tensors[4].ndim == 2 && f.tensors[4].shape[0] == 0, "empty tensor");
    CHECK(f.tensors[3].ndim == 0 && f.tensors[3].nbytes == 4, "scalar");
    CHECK(f.n_meta == 3, "%d metadata entries", f.n_meta);
    for (int j = 0; meta[2 * j]; j++) {
        const char *v = st_meta(&f, meta[2 * j]);
        CHECK(v && strcmp(v, meta[2 * j + 1]) == 0, "metadata %s = %s", meta[2 * j], v ? v : "(null)");
    }
    CHECK(st_meta(&f, "absent") == NULL && st_find(&f, "absent") == NULL, "absent lookups");

    /* writing what was read gives the same bytes */
    CHECK(st_write(p2, f.tensors, f.n, meta) == 0, "%s", an_last_error());
    size_t l1 = 0, l2 = 0;
    uint8_t *b1 = slurp(p1, &l1), *b2 = slurp(p2, &l2);
    CHECK(b1 && b2 && l1 == l2 && memcmp(b1, b2, l1) == 0, "rewrite is not byte-identical");
    CHECK(l1 == f.size, "size %zu vs %zu", l1, f.size);
    free(b1);
    free(b2);
    st_free(&f);
    st_free(&f); /* twice is harmless */

    /* overwriting an existing file works; no tensors and no metadata is a valid file too */
    CHECK(st_write(p1, NULL, 0, NULL) == 0, "%s", an_last_error());
    EXPECT_OK(p1, 0);
    size_t l0 = 0;
    uint8_t *b0 = slurp(p1, &l0);
    CHECK(b0 && l0 == 16 && memcmp(b0 + 8, "{}      ", 8) == 0, "empty file layout (%zu bytes)", l0);
    free(b0);
}

TEST(st_torchvision_names) {
    static const struct { const char *name; int ndim; int64_t shape[4]; } spec[] = {
        {"features.0.weight", 4, {64, 3, 11, 11}}, {"features.0.bias", 1, {64}},
        {"features.3.weight", 4, {8, 64, 5, 5}},   {"features.3.bias", 1, {8}},
        {"classifier.1.weight", 2, {16, 92}},      {"classifier.1.bias", 1, {16}},
        {"classifier.6.weight", 2, {1000, 16}},    {"classifier.6.bias", 1, {1000}},
    };
    enum { N = sizeof spec / sizeof spec[0] };
    StTensor ts[N];
    float *bufs[N];
    for (int i = 0; i < N; i++) {
        ts[i] = tensor(spec[i].name, ST_F32, spec[i].ndim, spec[i].shape, NULL);
        bufs[i] = malloc(ts[i].nbytes);
        if (!bufs[i]) { CHECK(0, "out of memory"); for (int j = 0; j < i; j++) free(bufs[j]); return; }
        for (size_t k = 0; k < ts[i].nbytes / 4; k++) bufs[i][k] = an_normal((uint64_t)i, k);
        ts[i].data = bufs[i];
    }
    const char *meta[] = {"model", "alexnet-owt", "source", "alexnet-owt-7be5be79.pth", NULL};
    const char *path = tmp_path("owt.safetensors");
    CHECK(st_write(path, ts, N, meta) == 0, "%s", an_last_error());
    StFile f;
    if (st_read(path, &f) == 0) {
        for (int i = 0; i < N; i++) {
            const StTensor *t = st_find(&f, spec[i].name);
            CHECK(t && same_tensor(t, &ts[i]), "%s differs", spec[i].name);
        }
        const char *m = st_meta(&f, "model");
        CHECK(m && strcmp(m, "alexnet-owt") == 0, "model metadata");
        st_free(&f);
    } else {
        CHECK(0, "%s", an_last_error());
    }
    for (int i = 0; i < N; i++) free(bufs[i]);
}

/* tests/vectors/st_python.safetensors was written by Python's safetensors 0.8.0 (numpy 1.24):
 *   from safetensors.numpy import save_file
 *   t = {"features.0.weight": np.array([[0.5, -1.25, 3.0], [1024.0, -0.0078125, 65504.0]],
 *                                      dtype=np.float32).reshape(2, 3, 1, 1),
 *        "classifier.6.bias": np.array([1/3, -2.5], dtype=np.float64),
 *        "steps": np.array([-1, 0, 9007199254740993], dtype=np.int64),
 *        "ints": np.array([[1, -2], [3, -4]], dtype=np.int32),
 *        "half": np.array([1.0, -2.0, 0.5], dtype=np.float16),
 *        "bytes": np.array([0, 127, 255], dtype=np.uint8), "i8": np.array([-128, 127], dtype=np.int8),
 *        "mask": np.array([True, False, True, True]), "scalar": np.array(7.5, dtype=np.float32),
 *        "empty": np.zeros((0, 3), dtype=np.float32)}
 *   save_file(t, "st_python.safetensors", metadata={"format": "np", "note": "caf\u00e9 \"q\" \\ \u2603"}) */
TEST(st_python_fixture) {
    const char *path = "tests/vectors/st_python.safetensors";
    StFile f;
    if (st_read(path, &f) != 0) { CHECK(0, "%s", an_last_error()); return; }
    CHECK(f.n == 10, "%d tensors", f.n);
    const StTensor *t;
    t = st_find(&f, "features.0.weight");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 4 && t->shape[0] == 2 && t->shape[1] == 3 && t->shape[2] == 1 &&
              t->shape[3] == 1 && t->nbytes == 24, "features.0.weight header");
    if (t && t->nbytes == 24) {
        const float want[6] = {0.5f, -1.25f, 3.0f, 1024.0f, -0.0078125f, 65504.0f};
        float got[6];
        memcpy(got, t->data, sizeof got);
        for (int i = 0; i < 6; i++) CHECK(got[i] == want[i], "features.0.weight[%d] = %g", i, got[i]);
    }
    t = st_find(&f, "classifier.6.bias");
    CHECK(t && t->dtype == ST_F64 && t->ndim == 1 && t->shape[0] == 2 && t->nbytes == 16, "classifier.6.bias");
    if (t && t->nbytes == 16) {
        double got[2];
        memcpy(got, t->data, sizeof got);
        CHECK(got[0] == 1.0 / 3.0 && got[1] == -2.5, "classifier.6.bias = %.17g %.17g", got[0], got[1]);
    }
    t = st_find(&f, "steps");
    CHECK(t && t->dtype == ST_I64 && t->nbytes == 24, "steps");
    if (t && t->nbytes == 24) {
        int64_t got[3];
        memcpy(got, t->data, sizeof got);
        CHECK(got[0] == -1 && got[1] == 0 && got[2] == 9007199254740993LL, "steps = %lld %lld %lld",
              (long long)got[0], (long long)got[1], (long long)got[2]);
    }
    t = st_find(&f, "ints");
    CHECK(t && t->dtype == ST_I32 && t->ndim == 2 && t->nbytes == 16, "ints");
    if (t && t->nbytes == 16) {
        int32_t got[4];
        memcpy(got, t->data, sizeof got);
        CHECK(got[0] == 1 && got[1] == -2 && got[2] == 3 && got[3] == -4, "ints values");
    }
    t = st_find(&f, "half");
    CHECK(t && t->dtype == ST_F16 && t->nbytes == 6, "half");
    if (t && t->nbytes == 6) {
        uint16_t got[3];
        memcpy(got, t->data, sizeof got);
        CHECK(got[0] == 0x3C00 && got[1] == 0xC000 && got[2] == 0x3800, "half bits %04x %04x %04x", got[0], got[1],
              got[2]);
    }
    t = st_find(&f, "bytes");
    CHECK(t && t->dtype == ST_U8 && t->nbytes == 3 && memcmp(t->data, "\x00\x7f\xff", 3) == 0, "bytes");
    t = st_find(&f, "i8");
    CHECK(t && t->dtype == ST_I8 && t->nbytes == 2 && ((const int8_t *)t->data)[0] == -128 &&
              ((const int8_t *)t->data)[1] == 127, "i8");
    t = st_find(&f, "mask");
    CHECK(t && t->dtype == ST_BOOL && t->nbytes == 4 && memcmp(t->data, "\x01\x00\x01\x01", 4) == 0, "mask");
    t = st_find(&f, "scalar");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 0 && t->nbytes == 4, "scalar");
    if (t && t->nbytes == 4) {
        float v;
        memcpy(&v, t->data, 4);
        CHECK(v == 7.5f, "scalar = %g", v);
    }
    t = st_find(&f, "empty");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 3 && t->nbytes == 0, "empty");
    const char *m = st_meta(&f, "format");
    CHECK(m && strcmp(m, "np") == 0, "format metadata");
    m = st_meta(&f, "note");
    CHECK(m && strcmp(m, "caf\xc3\xa9 \"q\" \\ \xe2\x98\x83") == 0, "note metadata: %s", m ? m : "(null)");
    st_free(&f);
}

TEST(st_read_errors_file) {
    EXPECT_FAIL(tmp_path("does-not-exist.safetensors"), "cannot open");
    EXPECT_FAIL(harness_tmpdir(), "not a regular file");
    const char *p = tmp_path("short.safetensors");
    spit(p, "\x02\x00\x00\x00\x00", 5);
    EXPECT_FAIL(p, "truncated");
    spit(p, "", 0);
    EXPECT_FAIL(p, "truncated");
    /* header says 912 bytes, file has far fewer */
    uint8_t hdr[40] = {0x90, 0x03};
    memcpy(hdr + 8, "{}", 2);
    spit(p, hdr, sizeof hdr);
    EXPECT_FAIL(p, "truncated: header says 912 bytes, file has 40");
    /* absurd header length */
    uint8_t big[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    spit(p, big, sizeof big);
    EXPECT_FAIL(p, "100 MB");
    /* data area shorter than the offsets say */
    EXPECT_FAIL(make_file("trunc.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
                "truncated");
    EXPECT_OK(make_file("ok.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16), 1);
    /* extra data after the last tensor is tolerated */
    EXPECT_OK(make_file("extra.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 20),
              1);
}

TEST(st_read_errors_json) {
    static const struct { const char *header; const char *what; } cases[] = {
        {"", "expected '{'"},
        {"   ", "expected '{'"},
        {"[]", "expected '{'"},
        {"garbage", "expected '{'"},
        {"\x01\x02\xff", "expected '{'"},
        {"{", "expected a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", "expected ',' or '}'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}]", "expected ',' or '}'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", "expected a string"},
        {"{\"a\":{\"dtype\":\"F32\" \"shape\":[1],\"data_offsets\":[0,4]}}", "expected ',' or '}'"},
        {"{\"a\" {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "expected ':'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", "trailing characters"},
        {"{} {}", "trailing characters"},
        {"{a:1}", "expected a string"},
        {"{\"a", "unterminated string"},
        {"{\"a\\", "unterminated string"},
        {"{\"a\\q\":1}", "bad escape"},
        {"{\"a\\u12G4\":1}", "bad hex digit"},
        {"{\"a\\u12", "unterminated \\u escape"},
        {"{\"a\\ud800\":1}", "lone high surrogate"},
        {"{\"a\\ud800\\u0041\":1}", "bad low surrogate"},
        {"{\"a\\udc00\":1}", "lone low surrogate"},
        {"{\"a\\u0000\":1}", "\\u0000"},
        {"{\"a\tb\":1}", "control character"},
        {"{\"a\xff\":1}", "invalid UTF-8"},
        {"{\"a\xc0\xaf\":1}", "invalid UTF-8"},
        {"{\"a\xed\xa0\x80\":1}", "invalid UTF-8"},
        {"{\"a\xe2\x98\":1}", "invalid UTF-8"},
        {"{\"a\":1}", "expected '{' for a tensor entry"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "not a fraction"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e2],\"data_offsets\":[0,4]}}", "not a fraction"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "negative number"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", "leading zero"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", "too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", "expected '[' for shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,4]}}", "expected an integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1 2],\"data_offsets\":[0,4]}}", "expected ',' or ']'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "expected ','"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", "expected ']'"},
        {"{\"a\":{\"dtype\":F32,\"shape\":[1],\"data_offsets\":[0,4]}}", "expected a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "lacks \"data_offsets\""},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "lacks \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "lacks \"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "duplicate key"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":[1,}}", "unexpected character"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":tru}}", "unexpected character"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":-}}", "bad number"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1.}}", "bad number"},
        {"{\"__metadata__\":[]}", "expected '{' for __metadata__"},
        {"{\"__metadata__\":{\"k\":1}}", "expected a string"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", "duplicate __metadata__"},
        {"{\"__metadata__\":{\"k\":\"v\"}", "expected ',' or '}'"},
    };
    char name[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "json%zu.safetensors", i);
        const char *p = make_file(name, cases[i].header, 16);
        expect_fail_at(p, cases[i].what, (int)(1000 + i));
        CHECK(strstr(an_last_error(), "at byte") || strstr(an_last_error(), "lacks"), "case %zu: no byte position: %s",
              i, an_last_error());
    }
    /* the example message from the header comment: position counts from the start of the file */
    EXPECT_FAIL(make_file("pos.safetensors", "{\"__metadata__\":{} x}", 0), "expected ',' or '}' at byte 27");
    /* deep nesting in an ignored value gives an error, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 100);
    if (!deep) { CHECK(0, "out of memory"); return; }
    strcpy(deep, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":");
    size_t at = strlen(deep);
    for (size_t i = 0; i < depth; i++) deep[at++] = '[';
    for (size_t i = 0; i < depth; i++) deep[at++] = ']';
    strcpy(deep + at, "}}");
    EXPECT_FAIL(make_file("deep.safetensors", deep, 4), "nesting too deep");
    free(deep);
}

TEST(st_read_errors_schema) {
    EXPECT_FAIL(make_file("dt.safetensors", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 4),
                "unknown dtype \"F8_E4M3\"");
    EXPECT_FAIL(make_file("dt2.safetensors", "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                "unknown dtype \"f32\"");
    EXPECT_FAIL(make_file("mis.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24),
                "need 24");
    EXPECT_FAIL(make_file("mis2.safetensors", "{\"a\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]}}", 24),
                "need 8");
    EXPECT_FAIL(make_file("rng.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[30,34]}}", 32),
                "past the data area");
    EXPECT_FAIL(make_file("rng2.safetensors",
                          "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[9223372036854775807,"
                          "9223372036854775807]}}", 32), "past the data area");
    EXPECT_FAIL(make_file("rev.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,4]}}", 32),
                "end before begin");
    EXPECT_FAIL(make_file("ovf.safetensors",
                          "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 32),
                "shape too large");
    EXPECT_FAIL(make_file("dims.safetensors",
                          "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 32),
                "more than 8 dimensions");
    EXPECT_FAIL(make_file("dup.safetensors",
                          "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                          "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
                          "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}", 4),
                "duplicate tensor name \"b\"");
    EXPECT_FAIL(make_file("dupm.safetensors", "{\"__metadata__\":{\"k\":\"v\",\"j\":\"v\",\"k\":\"w\"}}", 0),
                "duplicate metadata key \"k\"");
    /* accepted: 8 dims, zero dims with huge others, overlapping and out-of-order offsets, unknown keys,
     * escapes in names, surrounding whitespace */
    EXPECT_OK(make_file("d8.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[0,2]}}", 2), 1);
    EXPECT_OK(make_file("z.safetensors",
                        "{\"a\":{\"dtype\":\"F64\",\"shape\":[0,9223372036854775807],\"data_offsets\":[3,3]}}", 3), 1);
    EXPECT_OK(make_file("ovl.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), 2);
    EXPECT_OK(make_file("unk.safetensors",
                        " \r\n{ \"a\" : { \"x\" : [1, -2.5e+3, {\"y\": null, \"z\": [true, false, \"s\"]}],"
                        " \"data_offsets\" : [ 0 , 4 ] , \"shape\" : [ 1 ] , \"dtype\" : \"I32\" } }\t  ", 4), 1);
    const char *p = make_file("esc.safetensors",
                              "{\"__metadata__\":{\"k\\\"\\\\\\/\\b\\f\\n\\r\\t\":\"\\u00e9\\u2603\\ud83d\\ude00\"},"
                              "\"a\\u0041\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    StFile f;
    if (st_read(p, &f) == 0) {
        CHECK(st_find(&f, "aA") != NULL, "escaped name");
        const char *v = st_meta(&f, "k\"\\/\b\f\n\r\t");
        CHECK(v && strcmp(v, "\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80") == 0, "escaped metadata value");
        st_free(&f);
    } else {
        CHECK(0, "%s", an_last_error());
    }
}

/* Every truncation and many single-byte corruptions of a valid file: st_read returns 0 or -1
 * (with a message naming the file), never crashes (run under the sanitizers). */
TEST(st_read_corruptions) {
    float w[6] = {1, 2, 3, 4, 5, 6};
    int64_t l[2] = {7, 8};
    const int64_t s23[] = {2, 3}, s2[] = {2};
    StTensor ts[] = {tensor("features.0.weight", ST_F32, 2, s23, w), tensor("n\xc3\xa9", ST_I64, 1, s2, l)};
    const char *meta[] = {"model", "x\ny", NULL};
    const char *good = tmp_path("good.safetensors"), *bad = tmp_path("bad.safetensors");
    CHECK(st_write(good, ts, 2, meta) == 0, "%s", an_last_error());
    size_t len = 0;
    uint8_t *orig = slurp(good, &len);
    if (!orig) { CHECK(0, "cannot read %s", good); return; }
    uint8_t *buf = malloc(len);
    if (!buf) { CHECK(0, "out of memory"); free(orig); return; }
    int ok = 0, failed = 0;
    for (size_t cut = 0; cut < len; cut++) {
        spit(bad, orig, cut);
        StFile f;
        if (st_read(bad, &f) == 0) { ok++; st_free(&f); }
        else {
            failed++;
            CHECK(strncmp(an_last_error(), bad, strlen(bad)) == 0, "message: %s", an_last_error());
        }
    }
    static const uint8_t repl[] = {0, '"', '\\', '}', ']', ',', '9', 0xff};
    for (size_t pos = 0; pos < len; pos++)
        for (size_t r = 0; r < sizeof repl; r++) {
            memcpy(buf, orig, len);
            if (buf[pos] == repl[r]) continue;
            buf[pos] = repl[r];
            spit(bad, buf, len);
            StFile f;
            if (st_read(bad, &f) == 0) {
                ok++;
                for (int i = 0; i < f.n; i++) /* touch every byte the reader hands out */
                    for (size_t k = 0; k < f.tensors[i].nbytes; k++) buf[0] ^= ((const uint8_t *)f.tensors[i].data)[k];
                st_free(&f);
            } else {
                failed++;
                CHECK(strncmp(an_last_error(), bad, strlen(bad)) == 0, "message: %s", an_last_error());
            }
        }
    CHECK(failed > 0 && ok > 0, "%d accepted, %d rejected", ok, failed);
    free(buf);
    free(orig);
}

TEST(st_write_errors) {
    float w[4] = {1, 2, 3, 4};
    const int64_t s4[] = {4}, s3[] = {3}, sneg[] = {-1};
    StTensor good = tensor("w", ST_F32, 1, s4, w);
    const char *p = tmp_path("werr.safetensors");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);

    StTensor bad = good;
    bad.nbytes = 12;
    CHECK(st_write(p, &bad, 1, NULL) == -1 && strstr(an_last_error(), "nbytes 12"), "%s", an_last_error());
    bad = tensor("w", ST_F32, 1, s3, w);
    bad.ndim = 9;
    CHECK(st_write(p, &bad, 1, NULL) == -1 && strstr(an_last_error(), "dimensions"), "%s", an_last_error());
    bad = tensor("w", ST_F32, 1, sneg, w);
    bad.nbytes = 0;
    CHECK(st_write(p, &bad, 1, NULL) == -1 && strstr(an_last_error(), "negative"), "%s", an_last_error());
    bad = good;
    bad.dtype = (StDtype)42;
    CHECK(st_write(p, &bad, 1, NULL) == -1 && strstr(an_last_error(), "bad dtype"), "%s", an_last_error());
    bad = good;
    bad.data = NULL;
    CHECK(st_write(p, &bad, 1, NULL) == -1 && strstr(an_last_error(), "no data"), "%s", an_last_error());
    bad = good;
    bad.name = "bad\xff";
    CHECK(st_write(p, &bad, 1, NULL) == -1 && strstr(an_last_error(), "UTF-8"), "%s", an_last_error());
    bad.name = "__metadata__";
    CHECK(st_write(p, &bad, 1, NULL) == -1, "__metadata__ as a tensor name");
    StTensor two[2] = {good, good};
    CHECK(st_write(p, two, 2, NULL) == -1 && strstr(an_last_error(), "duplicate tensor name"), "%s", an_last_error());
    const char *odd[] = {"k", NULL};
    CHECK(st_write(p, &good, 1, odd) == -1 && strstr(an_last_error(), "no value"), "%s", an_last_error());
    const char *dupm[] = {"k", "v", "k", "w", NULL};
    CHECK(st_write(p, &good, 1, dupm) == -1 && strstr(an_last_error(), "duplicate metadata"), "%s", an_last_error());
    CHECK(!file_exists(p) && !file_exists(tmp), "validation failures wrote files");

    /* directory that does not exist */
    const char *nodir = tmp_path("no/such/dir/x.safetensors");
    CHECK(st_write(nodir, &good, 1, NULL) == -1 && strstr(an_last_error(), nodir), "%s", an_last_error());

    /* rename fails (target is a non-empty directory): error, and no .tmp left behind */
    const char *dir = tmp_path("adir.safetensors");
    char inner[600], dtmp[600];
    snprintf(inner, sizeof inner, "%s/keep", dir);
    snprintf(dtmp, sizeof dtmp, "%s.tmp", dir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    spit(inner, "x", 1);
    CHECK(st_write(dir, &good, 1, NULL) == -1 && strstr(an_last_error(), "rename"), "%s", an_last_error());
    CHECK(!file_exists(dtmp), "%s left behind after a failed rename", dtmp);

    /* a full disk, simulated with a file size limit: write fails, the old file stays, no .tmp */
    CHECK(st_write(p, &good, 1, NULL) == 0, "%s", an_last_error());
    size_t before_len = 0;
    uint8_t *before = slurp(p, &before_len);
    size_t big_n = 1 << 16;
    float *big = calloc(big_n, sizeof(float));
    if (!big) { CHECK(0, "out of memory"); free(before); return; }
    const int64_t sbig[] = {(int64_t)big_n};
    StTensor bigt = tensor("big", ST_F32, 1, sbig, big);
    struct rlimit old_lim, lim;
    struct sigaction old_sa, sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    if (getrlimit(RLIMIT_FSIZE, &old_lim) == 0 && sigaction(SIGXFSZ, &sa, &old_sa) == 0) {
        lim = old_lim;
        lim.rlim_cur = 4096;
        if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
            int rc = st_write(p, &bigt, 1, NULL);
            setrlimit(RLIMIT_FSIZE, &old_lim);
            CHECK(rc == -1 && strstr(an_last_error(), "write failed"), "rc %d: %s", rc, an_last_error());
            CHECK(!file_exists(tmp), "%s left behind after a failed write", tmp);
            size_t after_len = 0;
            uint8_t *after = slurp(p, &after_len);
            CHECK(before && after && after_len == before_len && memcmp(before, after, after_len) == 0,
                  "the old file changed after a failed write");
            free(after);
        }
        sigaction(SIGXFSZ, &old_sa, NULL);
    }
    CHECK(st_write(p, &bigt, 1, NULL) == 0, "limit not restored: %s", an_last_error());
    EXPECT_OK(p, 1);
    free(big);
    free(before);
}

/* st_read_header: the names, shapes and metadata of st_read without the tensors' bytes; a file cut
 * inside its data area still shows its header (st_read refuses it), one cut inside the header not */
TEST(st_read_header_only) {
    float w[6] = {1, 2, 3, 4, 5, 6};
    const int64_t s23[] = {2, 3};
    StTensor ts[] = {tensor("w", ST_F32, 2, s23, w)};
    const char *meta[] = {"model", "alexnet", "class_names", "a\nb", NULL};
    const char *p = tmp_path("hdr.safetensors");
    CHECK(st_write(p, ts, 1, meta) == 0, "%s", an_last_error());
    StFile full, head;
    CHECK(st_read(p, &full) == 0 && st_read_header(p, &head) == 0, "%s", an_last_error());
    CHECK(head.n == 1 && head.tensors[0].ndim == 2 && head.tensors[0].shape[1] == 3 && head.tensors[0].data == NULL &&
              head.tensors[0].nbytes == 24 && !strcmp(st_meta(&head, "class_names"), "a\nb") &&
              head.size < full.size, "header: %d tensors, size %zu of %zu", head.n, head.size, full.size);
    size_t n = 0;
    unsigned char *bytes = harness_read_file(p, &n);
    const char *cut = tmp_path("hdr_cut.safetensors");
    CHECK(bytes && harness_write(cut, bytes, n - 8) == 0, "write");
    StFile f;
    CHECK(st_read(cut, &f) != 0 && strstr(an_last_error(), "truncated"), "st_read took a cut file");
    CHECK(st_read_header(cut, &f) == 0 && f.n == 1, "st_read_header: %s", an_last_error());
    st_free(&f);
    CHECK(bytes && harness_write(cut, bytes, 20) == 0, "write");
    CHECK(st_read_header(cut, &f) != 0 && strstr(an_last_error(), "truncated: header says"), "%s", an_last_error());
    free(bytes);
    st_free(&full), st_free(&head);
}
