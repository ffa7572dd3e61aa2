/* What the end-to-end workstation benchmarks (resnet_workstation,
 * bert_workstation) share: the median of step times, `--name N` / flag
 * parsing, and running the PyTorch peer script and reading fields of its
 * last line.
 * Header-only (static inline): each benchmark is one translation unit. */
#ifndef OB_BENCH_COMMON_H
#define OB_BENCH_COMMON_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `--name N` sets *value to N (a positive integer). */
typedef struct {
    const char *name;
    int *value;
} bench_int_option;

/* `--name` sets *value to set_to. */
typedef struct {
    const char *name;
    bool *value, set_to;
} bench_flag_option;

static inline int bench_compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts values in place. The median is robust to the odd step the OS slows. */
static inline double bench_median(double *values, int n) {
    qsort(values, (size_t)n, sizeof *values, bench_compare_doubles);
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* 0, or 2 after one line on stderr naming the argument it did not take. */
static inline int bench_parse_options(int argc, char **argv, const char *program, const bench_int_option *ints,
                                      int n_ints, const bench_flag_option *flags, int n_flags) {
    for (int i = 1; i < argc; i++) {
        bool taken = false;
        for (int f = 0; f < n_flags && !taken; f++)
            if (strcmp(argv[i], flags[f].name) == 0) {
                *flags[f].value = flags[f].set_to;
                taken = true;
            }
        for (int k = 0; k < n_ints && !taken; k++)
            if (strcmp(argv[i], ints[k].name) == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0) {
                *ints[k].value = atoi(argv[++i]);
                taken = true;
            }
        if (!taken) {
            fprintf(stderr, "%s: bad argument %s (expected", program, argv[i]);
            for (int k = 0; k < n_ints; k++) fprintf(stderr, " %s N", ints[k].name);
            for (int f = 0; f < n_flags; f++) fprintf(stderr, " %s", flags[f].name);
            fprintf(stderr, ")\n");
            return 2;
        }
    }
    return 0;
}

/* The kernel benchmarks' options: `--threads N` and `--reps N`, the
 * repetitions capped at max_reps (the size of their timing arrays).
 * 0, or 2 after bench_parse_options's line. */
static inline int bench_kernel_options(int argc, char **argv, const char *program, int *threads, int *reps,
                                       int max_reps) {
    bench_int_option ints[] = {{"--threads", threads}, {"--reps", reps}};
    int status = bench_parse_options(argc, argv, program, ints, 2, NULL, 0);
    if (*reps > max_reps) *reps = max_reps;
    return status;
}

/* values[i] in [-0.5, 0.5) from a multiplicative hash of i + salt: fixed,
 * dense inputs for the kernel benchmarks, no RNG state. */
static inline void bench_fill(float *values, int64_t count, uint32_t salt) {
    for (int64_t i = 0; i < count; i++)
        values[i] = (float)(((uint64_t)i * 2654435761u + salt) % 1000) / 1000.0f - 0.5f;
}

/* max |a - b| / max |b| over a row-major [rows, cols] pair, or over its
 * upper triangle only (a SYRK leaves the lower one unwritten): how the
 * kernel benchmarks check that the two ways they time agree. */
static inline double bench_relative_error(const float *a, const float *b, int64_t rows, int64_t cols,
                                          bool upper_only) {
    double diff = 0, scale = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t col = upper_only ? r : 0; col < cols; col++) {
            diff = fmax(diff, fabs((double)a[r * cols + col] - b[r * cols + col]));
            scale = fmax(scale, fabs((double)b[r * cols + col]));
        }
    return diff / fmax(scale, 1e-30);
}

/* Runs a peer's command line, echoing its output to stderr, and keeps the
 * last line it prints (the machine-readable one) in last_line. 0, or -1
 * when it could not run or exited nonzero. */
static inline int bench_run_peer(const char *command, char *last_line, size_t last_line_len) {
    FILE *pipe = popen(command, "r");
    if (!pipe) return -1;
    char line[1024];
    last_line[0] = '\0';
    while (fgets(line, sizeof line, pipe)) {
        fputs(line, stderr);
        snprintf(last_line, last_line_len, "%s", line);
    }
    return pclose(pipe) == 0 ? 0 : -1;
}

/* The text after `key` ("torch=") in line, up to the next blank, into out
 * ("?" when line has no key). */
static inline void bench_field_text(const char *line, const char *key, char *out, size_t out_len) {
    const char *found = strstr(line, key);
    snprintf(out, out_len, "%s", found ? found + strlen(key) : "?");
    out[strcspn(out, " \n")] = '\0';
}

/* The number after `key` ("torch_img_per_s=") in line, or -1 without one. */
static inline double bench_field_number(const char *line, const char *key) {
    const char *found = strstr(line, key);
    return found ? atof(found + strlen(key)) : -1;
}

#endif
