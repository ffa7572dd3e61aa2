/* Shared by the data-reader tests: pass/fail counting, a scratch
 * directory, and a writer for (possibly malformed) IDX files. */
#ifndef DATA_TEST_SUPPORT_H
#define DATA_TEST_SUPPORT_H

#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

#include "ob_check.h"

static inline bool fashion_mnist_present(void) {
    return access(FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) == 0;
}

/* dir: a buffer of at least 32 bytes; false (with a message) on failure. */
static inline bool scratch_dir_make(char *dir) {
    strcpy(dir, "/tmp/optbench_data_XXXXXX");
    if (mkdtemp(dir)) return true;
    perror("mkdtemp");
    return false;
}

/* Removes the directory and the plain files in it. */
static inline void scratch_dir_remove(const char *dir) {
    DIR *listing = opendir(dir);
    if (!listing) return;
    char path[1024];
    for (struct dirent *entry; (entry = readdir(listing));) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        unlink(path);
    }
    closedir(listing);
    rmdir(dir);
}

static inline void write_file(const char *path, bool gzip, const unsigned char *bytes, size_t len) {
    if (gzip) {
        gzFile file = gzopen(path, "wb");
        if (len) gzwrite(file, bytes, (unsigned)len);
        gzclose(file);
    } else {
        FILE *file = fopen(path, "wb");
        if (len) fwrite(bytes, 1, len, file);
        fclose(file);
    }
}

/* An IDX header (big-endian magic, then `ndim` big-endian dims) followed by
 * `data_len` bytes into buf (room for 4 * (ndim + 1) + data_len); ndim and
 * data_len may disagree with the magic to make bad files. */
static inline size_t idx_bytes(unsigned char *buf, uint32_t magic, int ndim, const uint32_t *dims,
                               const unsigned char *data, size_t data_len) {
    size_t n = 0;
    for (int word = 0; word <= ndim; word++) {
        uint32_t value = word == 0 ? magic : dims[word - 1];
        for (int shift = 24; shift >= 0; shift -= 8) buf[n++] = (unsigned char)(value >> shift);
    }
    if (data_len) memcpy(buf + n, data, data_len);
    return n + data_len;
}

static inline void write_idx(const char *path, bool gzip, uint32_t magic, int ndim, const uint32_t *dims,
                             const unsigned char *data, size_t data_len) {
    unsigned char *buf = malloc(4 * ((size_t)ndim + 1) + data_len);
    write_file(path, gzip, buf, idx_bytes(buf, magic, ndim, dims, data, data_len));
    free(buf);
}

#endif
