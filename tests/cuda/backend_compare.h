/* Running the same computation on a CPU ctx and a CUDA ctx and comparing
 * the results (tests/cuda/test_backend_cuda.c).
 *
 * Inputs are generated once on the host from fixed seeds and uploaded to
 * both sides, so both start from identical bits; results are downloaded
 * and compared by normalised mean squared error,
 *   nmse = sum (gpu - cpu)^2 / sum cpu^2,
 * with the CPU as the reference. Bounds: NMSE_EXACT for element-wise work
 * that rounds once per element, NMSE_REDUCE for reductions and GEMMs (TF32
 * stays off, the back end's default). */
#ifndef OB_TESTS_CUDA_BACKEND_COMPARE_H
#define OB_TESTS_CUDA_BACKEND_COMPARE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_ctx.h"
#include "nn/ob_rng.h"

#define NMSE_EXACT 1e-10
#define NMSE_REDUCE 1e-8

typedef struct {
    ob_ctx *side[2]; /* [0] CPU, the reference; [1] CUDA */
    int checks, failures;
} pair;

/* The values of t as doubles, downloaded (F32, F64 and I32); NULL when the
 * download failed, which is reported. */
static inline double *host_values(pair *p, int side, const ob_tensor *t, const char *what) {
    size_t bytes = ob_tensor_bytes(t);
    void *raw = malloc(bytes ? bytes : 1);
    double *values = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *values);
    if (!raw || !values || ob_tensor_copy_to_host(p->side[side], t, raw)) {
        printf("FAIL %s: download from %s failed: %s\n", what, side ? "cuda" : "cpu",
               ob_ctx_error(p->side[side]));
        p->failures++;
        free(raw);
        free(values);
        return NULL;
    }
    for (int64_t i = 0; i < t->numel; i++)
        values[i] = t->dtype == OB_F32   ? ((const float *)raw)[i]
                    : t->dtype == OB_F64 ? ((const double *)raw)[i]
                                         : ((const int32_t *)raw)[i];
    free(raw);
    return values;
}

/* Records one comparison of n values; same_zeros also requires the zeros
 * to sit at the same places (dropout masks). */
static inline void compare_values(pair *p, const char *what, int64_t n, const double *cpu, const double *gpu,
                                  double bound, bool same_zeros) {
    double err = 0, ref = 0;
    int64_t zero_mismatches = 0;
    for (int64_t i = 0; i < n; i++) {
        err += (gpu[i] - cpu[i]) * (gpu[i] - cpu[i]);
        ref += cpu[i] * cpu[i];
        zero_mismatches += (cpu[i] == 0) != (gpu[i] == 0);
    }
    double nmse = ref > 0 ? err / ref : err;
    p->checks++;
    if (!(nmse <= bound) || (same_zeros && zero_mismatches)) {
        printf("FAIL %s: nmse %.3g (bound %.0e) over %lld values%s\n", what, nmse, bound, (long long)n,
               same_zeros && zero_mismatches ? ", zeros in different places" : "");
        p->failures++;
    }
}

/* Compares tensor `cpu` of the CPU side with `gpu` of the CUDA side. */
static inline void compare_tensors(pair *p, const char *what, const ob_tensor *cpu, const ob_tensor *gpu,
                                   double bound, bool same_zeros) {
    if (!cpu || !gpu || cpu->numel != gpu->numel) {
        printf("FAIL %s: missing or differently sized results\n", what);
        p->failures++;
        return;
    }
    double *a = host_values(p, 0, cpu, what), *b = a ? host_values(p, 1, gpu, what) : NULL;
    if (b) compare_values(p, what, cpu->numel, a, b, bound, same_zeros);
    free(a);
    free(b);
}

static inline void compare_scalars(pair *p, const char *what, double cpu, double gpu, double bound) {
    compare_values(p, what, 1, &cpu, &gpu, bound, false);
}

/* Uniform values in [lo, hi) from a fixed stream: the same on every run. */
static inline void random_floats(uint64_t salt, double lo, double hi, int64_t n, float *out) {
    ob_rng_stream stream = ob_rng_stream_make(7, OB_RNG_TEST, 0, salt);
    for (int64_t i = 0; i < n; i++) out[i] = (float)(lo + (hi - lo) * ob_rng_uniform(&stream, (uint64_t)i));
}
/* Integers in [lo, hi] from a fixed stream. */
static inline void random_ints(uint64_t salt, int lo, int hi, int64_t n, int32_t *out) {
    ob_rng_stream stream = ob_rng_stream_make(7, OB_RNG_TEST, 0, salt);
    for (int64_t i = 0; i < n; i++) {
        int v = lo + (int)(ob_rng_uniform(&stream, (uint64_t)i) * (hi - lo + 1));
        out[i] = v > hi ? hi : v;
    }
}

/* Uploads host values into t; reports a failure. */
static inline bool upload(pair *p, int side, ob_tensor *t, const void *values, const char *what) {
    if (t && ob_tensor_copy_from_host(p->side[side], t, values) == 0) return true;
    printf("FAIL %s: upload to %s failed: %s\n", what, side ? "cuda" : "cpu", ob_ctx_error(p->side[side]));
    p->failures++;
    return false;
}

/* Fills t (F32) with uniform [lo, hi) values of stream `salt`. */
static inline bool upload_random(pair *p, int side, ob_tensor *t, uint64_t salt, double lo, double hi,
                                 const char *what) {
    float *values = malloc((size_t)t->numel * sizeof *values);
    if (!values) return false;
    random_floats(salt, lo, hi, t->numel, values);
    bool ok = upload(p, side, t, values, what);
    free(values);
    return ok;
}

#endif
