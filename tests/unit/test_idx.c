/* IDX reader: good files (gzip and plain) read back exactly; each kind of
 * bad file gives status 2 and one message naming the file; the installed
 * Fashion-MNIST (when present) has the documented shapes. */
#include "tests/unit/data_test_support.h" /* first: it sets _POSIX_C_SOURCE */

#include "workloads/data/ob_idx.h"

static char scratch[32];
static unsigned char pattern[24];

static void scratch_path(char *path, size_t len, const char *name) {
    snprintf(path, len, "%s/%s", scratch, name);
}

static void write_scratch_idx(const char *name, bool gzip, uint32_t magic, int ndim, const uint32_t *dims,
                              const unsigned char *data, size_t data_len) {
    char path[512];
    scratch_path(path, sizeof path, name);
    write_idx(path, gzip, magic, ndim, dims, data, data_len);
}

static void test_good_images(const char *name, bool gzip) {
    const uint32_t dims[3] = {2, 3, 4};
    write_scratch_idx(name, gzip, 0x803, 3, dims, pattern, sizeof pattern);
    char path[512], err[512] = "";
    scratch_path(path, sizeof path, name);
    ob_idx_array a;
    CHECK(ob_idx_read(path, 3, &a, err, sizeof err) == 0);
    CHECK(a.ndim == 3 && a.dims[0] == 2 && a.dims[1] == 3 && a.dims[2] == 4);
    CHECK(a.numel == 24);
    CHECK(a.data && memcmp(a.data, pattern, sizeof pattern) == 0);
    ob_idx_free(&a);
    CHECK(a.data == NULL && a.numel == 0);
}

static void test_good_labels_with_trailing_bytes(void) {
    const uint32_t dims[1] = {20};
    write_scratch_idx("labels.gz", true, 0x801, 1, dims, pattern, sizeof pattern);
    char path[512], err[512] = "";
    scratch_path(path, sizeof path, "labels.gz");
    ob_idx_array a;
    CHECK(ob_idx_read(path, 1, &a, err, sizeof err) == 0);
    CHECK(a.ndim == 1 && a.dims[0] == 20 && a.numel == 20);
    CHECK(a.data && memcmp(a.data, pattern, 20) == 0);
    ob_idx_free(&a);
}

/* Reading `name` as expected_ndim fails with 2, an empty array, and one
 * line naming the file and containing `phrase`. */
static void expect_error(const char *name, int expected_ndim, const char *phrase) {
    char path[512], err[512] = "";
    scratch_path(path, sizeof path, name);
    ob_idx_array a;
    int status = ob_idx_read(path, expected_ndim, &a, err, sizeof err);
    CHECK(status == 2);
    CHECK(a.data == NULL);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, phrase) != NULL);
    CHECK(strchr(err, '\n') == NULL);
    if (status != 2 || !strstr(err, phrase)) fprintf(stderr, "  %s gave %d: %s\n", name, status, err);
}

static void test_bad_files(void) {
    const uint32_t dims[3] = {2, 3, 4};
    const uint32_t huge_dims[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t just_over[3] = {3, 1024, 1 << 20}; /* 1.5 * 2^31 */
    write_scratch_idx("magic.gz", true, 0x12345678, 3, dims, pattern, sizeof pattern);
    expect_error("magic.gz", 3, "not an IDX file (magic 0x12345678, expected 0x00000803 or 0x00000801)");
    write_scratch_idx("short_data.gz", true, 0x803, 3, dims, pattern, 10);
    expect_error("short_data.gz", 3, "truncated: expected 24 bytes of data, got 10");
    write_scratch_idx("short_data.raw", false, 0x803, 3, dims, pattern, 10);
    expect_error("short_data.raw", 3, "truncated: expected 24 bytes of data, got 10");
    write_scratch_idx("short_header.gz", true, 0x803, 1, dims, NULL, 0);
    expect_error("short_header.gz", 3, "truncated header: expected 12 bytes of dimensions, got 4");
    char path[512];
    scratch_path(path, sizeof path, "empty.raw");
    write_file(path, false, NULL, 0);
    expect_error("empty.raw", 3, "truncated header: expected a 4-byte magic number, got 0 bytes");
    expect_error("missing.gz", 3, "cannot open: No such file or directory");
    write_scratch_idx("labels_as_images.gz", true, 0x801, 1, dims, pattern, 2);
    expect_error("labels_as_images.gz", 3,
                 "1-dimensional IDX (magic 0x00000801), expected 3-dimensional (magic 0x00000803)");
    write_scratch_idx("images_as_labels.gz", true, 0x803, 3, dims, pattern, sizeof pattern);
    expect_error("images_as_labels.gz", 1, "expected 1-dimensional (magic 0x00000801)");
    write_scratch_idx("huge.gz", true, 0x803, 3, huge_dims, NULL, 0);
    expect_error("huge.gz", 3, "too large");
    write_scratch_idx("just_over.gz", true, 0x803, 3, just_over, NULL, 0);
    expect_error("just_over.gz", 3, "too large");
}

/* A gzip stream cut in the middle reads as truncated data; one whose
 * checksum is wrong is a read error. */
static void test_damaged_gzip_streams(void) {
    enum { DATA = 4096 };
    static unsigned char data[DATA], packed[2 * DATA + 64];
    uint32_t lcg = 12345;
    for (int i = 0; i < DATA; i++) data[i] = (unsigned char)((lcg = lcg * 1664525u + 1013904223u) >> 24);
    const uint32_t dims[1] = {DATA};
    char path[512];
    scratch_path(path, sizeof path, "full.gz");
    write_idx(path, true, 0x801, 1, dims, data, DATA);
    FILE *file = fopen(path, "rb");
    size_t packed_len = fread(packed, 1, sizeof packed, file);
    fclose(file);
    CHECK(packed_len > DATA / 2); /* random bytes barely compress */
    scratch_path(path, sizeof path, "cut.gz");
    write_file(path, false, packed, packed_len / 2);
    expect_error("cut.gz", 1, "truncated: expected 4096 bytes of data");
    memset(packed + packed_len - 8, 0, 8); /* the CRC-32 and length trailer */
    scratch_path(path, sizeof path, "bad_crc.gz");
    write_file(path, false, packed, packed_len);
    expect_error("bad_crc.gz", 1, "read error: incorrect data check");
}

static void test_fashion_mnist(void) {
    if (!fashion_mnist_present()) {
        printf("note: %s absent, skipping the real-data checks\n", FASHION_MNIST_DIR);
        return;
    }
    char err[512] = "";
    ob_idx_array images, labels;
    CHECK(ob_idx_read(FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", 3, &images, err, sizeof err) == 0);
    CHECK(images.dims[0] == 60000 && images.dims[1] == 28 && images.dims[2] == 28);
    CHECK(images.numel == 60000 * 28 * 28);
    CHECK(ob_idx_read(FASHION_MNIST_DIR "/train-labels-idx1-ubyte.gz", 1, &labels, err, sizeof err) == 0);
    CHECK(labels.ndim == 1 && labels.dims[0] == 60000);
    int max_label = -1;
    for (int64_t i = 0; i < labels.numel; i++)
        if (labels.data[i] > max_label) max_label = labels.data[i];
    CHECK(max_label == 9);
    if (err[0]) fprintf(stderr, "  %s\n", err);
    ob_idx_free(&images);
    ob_idx_free(&labels);
}

int main(void) {
    if (!scratch_dir_make(scratch)) return 1;
    for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (unsigned char)(200 + i);
    test_good_images("images.gz", true);
    test_good_images("images.raw", false);
    test_good_labels_with_trailing_bytes();
    test_bad_files();
    test_damaged_gzip_streams();
    test_fashion_mnist();
    scratch_dir_remove(scratch);
    return report_checks();
}
