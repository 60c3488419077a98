/* safetensors.h: reading and writing the safetensors format (8-byte little-endian header length,
 * a JSON header {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"key": "value"}}, then the raw little-endian tensor bytes), the format PyTorch's
 * safetensors package reads. */
#ifndef ALEXNET_SAFETENSORS_H
#define ALEXNET_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef enum { ST_F32, ST_F64, ST_F16, ST_BF16, ST_I64, ST_I32, ST_U8, ST_I8, ST_BOOL } StDtype;

typedef struct StTensor {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nbytes;    /* = product(shape) * dtype size, checked when reading */
    const void *data; /* points into the file buffer (reading) or caller memory (writing) */
} StTensor;

typedef struct StFile {
    int n;                 /* number of tensors */
    StTensor *tensors;
    int n_meta;
    char **meta_keys, **meta_values;
    uint8_t *buffer;       /* whole file contents (reading) */
    size_t size;
} StFile;

/* Read and validate a whole file: header length within the file, JSON well formed, known dtypes,
 * offsets inside the data area, sizes matching shapes. Returns 0, or -1 with an_error() naming the
 * file and the problem ("w.safetensors: truncated: header says 912 bytes, file has 40"). */
int st_read(const char *path, StFile *f);
/* The header alone (tensor names, shapes, metadata; every tensor's data NULL), without reading the
 * tensors: what a file holds, cheaply. The same checks as st_read except the data area's size. */
int st_read_header(const char *path, StFile *f);
void st_free(StFile *f);
const StTensor *st_find(const StFile *f, const char *name);          /* NULL when absent */
const char *st_meta(const StFile *f, const char *key);               /* NULL when absent */

/* Write tensors and string metadata (meta_kv: key, value, key, value, ..., NULL; may be NULL) to
 * path + ".tmp", fsync, then rename over path, so a crash never leaves a half-written file.
 * Returns 0 or -1 with an_error() set. */
int st_write(const char *path, const StTensor *tensors, int n, const char *const *meta_kv);

size_t st_dtype_size(StDtype t);
const char *st_dtype_name(StDtype t);
#endif
