/* kfac_syrk: K-FAC's factor SYRK over tall im2col-like matrices, two ways
 * in one process, same data and thread count:
 *
 *   A  optbench: the CPU back end's syrk, which cuts a tall x into one row
 *      slice per thread (one single-threaded SYRK each, summed in order);
 *   B  OpenBLAS's own threaded cblas_ssyrk over the whole x (what the back
 *      end called before 7b5e92f).
 *
 * The shapes are rows x n with rows = batch 128 x output pixels and
 * n = k*k*C_in, the kind K-FAC's A factors take on a small-image ResNet.
 * A SYRK does rows * n * (n + 1) flops (the upper triangle's multiply-adds).
 * A and B alternate (A B A B ...) so a change in machine load hits both;
 * the table shows each one's median. Before timing, A must equal B to a
 * relative error <= 1e-4 (max |a - b| / max |b|), else exit 1.
 * Ends with the headline: the geometric mean of B's time over A's.
 *
 *   kfac_syrk [--threads N] [--reps N]
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>

#include "bench_common.h"
#include "harness/ob_clock.h"
#include "nn/ob_backend.h"
#include "nn/ob_ctx.h"
#include "nn/ob_tensor.h"

#define MAX_REPS 64

static const int64_t shapes[][2] = {{131072, 64}, {131072, 144}, {32768, 288}, {8192, 576}};

static double time_sliced(ob_ctx *ctx, const ob_tensor *x, ob_tensor *c) {
    double start = ob_now();
    if (ob_backend_of(x)->syrk(ctx, 1.0, x, 0.0, c)) return -1;
    return ob_now() - start;
}

static double time_threaded(const ob_tensor *x, ob_tensor *c) {
    int64_t n = x->shape[1];
    double start = ob_now();
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)x->shape[0], 1.0f, x->data, (int)n, 0.0f,
                c->data, (int)n);
    return ob_now() - start;
}

int main(int argc, char **argv) {
    int threads = 2, reps = 9;
    int status = bench_kernel_options(argc, argv, "kfac_syrk", &threads, &reps, MAX_REPS);
    if (status) return status;
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = threads, .seed = 1});
    if (!ctx) return 1;
    printf("K-FAC factor SYRK, f32, %d threads, median of %d alternated repetitions\n", threads, reps);
    printf("%8s %5s %12s %12s %9s %9s %8s\n", "rows", "n", "sliced ms", "threaded ms", "sliced GF", "thread GF",
           "speedup");
    double log_speedup_sum = 0;
    int count = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < count; s++) {
        int64_t rows = shapes[s][0], n = shapes[s][1];
        ob_tensor *x = ob_tensor_new(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(rows, n));
        ob_tensor *sliced = ob_tensor_new(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(n, n));
        ob_tensor *threaded = ob_tensor_new(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(n, n));
        if (!x || !sliced || !threaded) return 1;
        bench_fill(x->data, rows * n, 0);
        double sliced_s[MAX_REPS], threaded_s[MAX_REPS];
        time_sliced(ctx, x, sliced); /* warm-up, and the agreement check */
        time_threaded(x, threaded);
        double error = bench_relative_error(sliced->data, threaded->data, n, n, true);
        if (error > 1e-4) {
            fprintf(stderr, "kfac_syrk: %lldx%lld sliced and threaded SYRK differ (relative error %.2g)\n",
                    (long long)rows, (long long)n, error);
            return 1;
        }
        for (int r = 0; r < reps; r++) {
            sliced_s[r] = time_sliced(ctx, x, sliced);
            threaded_s[r] = time_threaded(x, threaded);
            if (sliced_s[r] < 0) return 1;
        }
        double a = bench_median(sliced_s, reps), b = bench_median(threaded_s, reps);
        double gigaflops = (double)rows * (double)n * (double)(n + 1) / 1e9;
        printf("%8lld %5lld %12.2f %12.2f %9.1f %9.1f %7.2fx\n", (long long)rows, (long long)n, 1e3 * a, 1e3 * b,
               gigaflops / a, gigaflops / b, b / a);
        log_speedup_sum += log(b / a);
        ob_tensor_free(ctx, x);
        ob_tensor_free(ctx, sliced);
        ob_tensor_free(ctx, threaded);
        ob_ctx_step_reset(ctx);
    }
    printf("sliced SYRK vs OpenBLAS's threaded SYRK (geomean of time ratios): %.2fx\n",
           exp(log_speedup_sum / count));
    ob_ctx_free(ctx);
    return 0;
}
