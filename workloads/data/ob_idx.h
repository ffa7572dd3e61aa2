/* ob_idx: reader for the IDX format of MNIST and Fashion-MNIST.
 *
 * An IDX file is a big-endian magic number (0x00000803 for uint8 images
 * with 3 dimensions, 0x00000801 for uint8 labels with 1 dimension), one
 * big-endian uint32 per dimension, then the uint8 data in row-major order.
 * Files may be gzip-compressed or plain: zlib's gzread reads both.
 */
#ifndef OB_IDX_H
#define OB_IDX_H

#include <stddef.h>
#include <stdint.h>

/* Files declaring more elements than this are rejected before any
 * allocation: far beyond any IDX dataset in use, so most likely corrupt. */
#define OB_IDX_MAX_ELEMENTS ((int64_t)1 << 31)

typedef struct {
    int ndim;
    int64_t dims[4];
    uint8_t *data; /* numel bytes, owned; release with ob_idx_free */
    int64_t numel;
} ob_idx_array;

/* Reads the whole array at `path`. expected_ndim (1 or 3) is what the
 * caller wants; a file of the other kind is an error naming both.
 * Returns 0, or 2 with one line in err naming the file and what was
 * expected; on error *out is left empty (safe to ob_idx_free). Trailing
 * bytes after the data are ignored. */
int ob_idx_read(const char *path, int expected_ndim, ob_idx_array *out, char *err, size_t err_len);
void ob_idx_free(ob_idx_array *array);

#endif
