#include "workloads/data/ob_idx.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_TYPE_UINT8 0x08u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u
/* gzread takes an unsigned count and returns an int: read in slices that fit. */
#define GZREAD_SLICE ((int64_t)1 << 30)

static uint32_t big_endian_u32(const unsigned char bytes[4]) {
    return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 | bytes[3];
}

static uint32_t magic_for_ndim(int ndim) { return IDX_TYPE_UINT8 << 8 | (uint32_t)ndim; }

/* Reads up to `want` bytes; returns how many arrived (short at end of file),
 * or -1 on a read error (corrupt gzip stream, I/O error). */
static int64_t read_fully(gzFile file, void *buffer, int64_t want) {
    int64_t got = 0;
    while (got < want) {
        int64_t slice = want - got < GZREAD_SLICE ? want - got : GZREAD_SLICE;
        int n = gzread(file, (unsigned char *)buffer + got, (unsigned)slice);
        if (n < 0) return -1;
        if (n == 0) break;
        got += n;
    }
    return got;
}

static int read_error(gzFile file, const char *path, char *err, size_t err_len) {
    int code;
    const char *message = gzerror(file, &code);
    /* zlib prefixes its message with "path: "; ours already names the file. */
    size_t path_len = strlen(path);
    if (strncmp(message, path, path_len) == 0 && strncmp(message + path_len, ": ", 2) == 0)
        message += path_len + 2;
    snprintf(err, err_len, "%s: read error: %s", path, code == Z_ERRNO ? strerror(errno) : message);
    return 2;
}

static int read_magic(gzFile file, const char *path, int expected_ndim, char *err, size_t err_len) {
    unsigned char bytes[4];
    int64_t got = read_fully(file, bytes, sizeof bytes);
    if (got < 0) return read_error(file, path, err, err_len);
    if (got < (int64_t)sizeof bytes) {
        snprintf(err, err_len, "%s: truncated header: expected a 4-byte magic number, got %" PRId64 " bytes",
                 path, got);
        return 2;
    }
    uint32_t magic = big_endian_u32(bytes);
    if (magic != IDX_MAGIC_IMAGES && magic != IDX_MAGIC_LABELS) {
        snprintf(err, err_len, "%s: not an IDX file (magic 0x%08" PRIx32 ", expected 0x%08x or 0x%08x)", path,
                 magic, IDX_MAGIC_IMAGES, IDX_MAGIC_LABELS);
        return 2;
    }
    if (magic != magic_for_ndim(expected_ndim)) {
        snprintf(err, err_len,
                 "%s: %d-dimensional IDX (magic 0x%08" PRIx32 "), expected %d-dimensional (magic 0x%08" PRIx32
                 ")",
                 path, (int)(magic & 0xffu), magic, expected_ndim, magic_for_ndim(expected_ndim));
        return 2;
    }
    return 0;
}

static int read_dims(gzFile file, const char *path, ob_idx_array *out, char *err, size_t err_len) {
    unsigned char bytes[4 * 4];
    int64_t want = 4 * (int64_t)out->ndim;
    int64_t got = read_fully(file, bytes, want);
    if (got < 0) return read_error(file, path, err, err_len);
    if (got < want) {
        snprintf(err, err_len, "%s: truncated header: expected %" PRId64 " bytes of dimensions, got %" PRId64,
                 path, want, got);
        return 2;
    }
    out->numel = 1;
    for (int d = 0; d < out->ndim; d++) {
        out->dims[d] = big_endian_u32(bytes + 4 * d);
        /* Checked before multiplying, so the product never overflows. */
        bool too_large = out->dims[d] != 0 && out->numel > OB_IDX_MAX_ELEMENTS / out->dims[d];
        if (too_large) {
            snprintf(err, err_len,
                     "%s: too large: dimensions exceed %" PRId64 " elements, expected at most that", path,
                     OB_IDX_MAX_ELEMENTS);
            return 2;
        }
        out->numel *= out->dims[d];
    }
    return 0;
}

static int read_data(gzFile file, const char *path, ob_idx_array *out, char *err, size_t err_len) {
    /* At least one byte so an empty array still owns a distinct buffer. */
    out->data = malloc(out->numel > 0 ? (size_t)out->numel : 1);
    if (!out->data) {
        snprintf(err, err_len, "%s: out of memory for %" PRId64 " bytes of data", path, out->numel);
        return 2;
    }
    int64_t got = read_fully(file, out->data, out->numel);
    if (got < 0) return read_error(file, path, err, err_len);
    if (got < out->numel) {
        snprintf(err, err_len, "%s: truncated: expected %" PRId64 " bytes of data, got %" PRId64, path,
                 out->numel, got);
        return 2;
    }
    return 0;
}

static int read_open_file(gzFile file, const char *path, int expected_ndim, ob_idx_array *out, char *err,
                          size_t err_len) {
    int status = read_magic(file, path, expected_ndim, err, err_len);
    if (status) return status;
    out->ndim = expected_ndim;
    status = read_dims(file, path, out, err, err_len);
    if (status) return status;
    return read_data(file, path, out, err, err_len);
}

int ob_idx_read(const char *path, int expected_ndim, ob_idx_array *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    if (expected_ndim != 1 && expected_ndim != 3) {
        snprintf(err, err_len, "%s: cannot read IDX with %d dimensions, expected 1 or 3", path,
                 expected_ndim);
        return 2;
    }
    errno = 0;
    gzFile file = gzopen(path, "rb");
    if (!file) {
        /* errno 0 means zlib itself ran out of memory. */
        snprintf(err, err_len, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return 2;
    }
    int status = read_open_file(file, path, expected_ndim, out, err, err_len);
    gzclose(file);
    if (status) ob_idx_free(out);
    return status;
}

void ob_idx_free(ob_idx_array *array) {
    free(array->data);
    memset(array, 0, sizeof *array);
}
