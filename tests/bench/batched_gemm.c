/* batched_gemm: the CPU back end's batched GEMM (attention's scores and
 * weighted values) against calling OpenBLAS's threaded cblas_sgemm once per
 * matrix, in one process, same data and thread count.
 *
 * The back end hands whole matrices to threads when there are at least as
 * many matrices as threads, and otherwise calls the GEMMs one after another
 * so that OpenBLAS threads each. The loop of cblas_sgemm calls is the peer
 * for both cases: with few matrices the two must tie (an OpenMP region
 * around the calls, even an inactive one, makes OpenBLAS run single-
 * threaded: 4d763d7 fixed that), with many the back end should win by
 * running small GEMMs side by side.
 * Each shape is batch x (m x k) (k x n); a GEMM does 2 m n k flops. The two
 * ways alternate (A B A B ...) and the table shows each one's median. Before
 * timing, the results must agree to a relative error <= 1e-5, else exit 1.
 * Ends with the headline: the geometric mean of the loop's time over the
 * back end's.
 *
 *   batched_gemm [--threads N] [--reps N]
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

/* batch, m, n, k: one large product (below any thread count); BERT-Large's
 * attention scores (128 tokens, head dim 64) for batches of 1 and 8 sequences
 * of 16 heads. */
static const int64_t shapes[][4] = {{1, 1024, 1024, 1024}, {16, 128, 128, 64}, {128, 128, 128, 64}};

static double time_backend(ob_ctx *ctx, const ob_tensor *a, const ob_tensor *b, ob_tensor *c) {
    double start = ob_now();
    ob_backend_of(a)->batched_gemm(ctx, false, false, 1.0, a, b, 0.0, c);
    return ob_now() - start;
}

static double time_loop(const ob_tensor *a, const ob_tensor *b, ob_tensor *c) {
    int64_t batch = a->shape[0], m = a->shape[1], k = a->shape[2], n = b->shape[2];
    const float *a_data = a->data, *b_data = b->data;
    float *c_data = c->data;
    double start = ob_now();
    for (int64_t i = 0; i < batch; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a_data + i * m * k,
                    (int)k, b_data + i * k * n, (int)n, 0.0f, c_data + i * m * n, (int)n);
    return ob_now() - start;
}

int main(int argc, char **argv) {
    int threads = 2, reps = 9;
    int status = bench_kernel_options(argc, argv, "batched_gemm", &threads, &reps, MAX_REPS);
    if (status) return status;
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = threads, .seed = 1});
    if (!ctx) return 1;
    printf("batched GEMM, f32, %d threads, median of %d alternated repetitions\n", threads, reps);
    printf("%6s %5s %5s %5s %11s %9s %10s %8s %8s\n", "batch", "m", "n", "k", "backend ms", "loop ms",
           "backend GF", "loop GF", "speedup");
    double log_speedup_sum = 0;
    int count = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < count; s++) {
        int64_t batch = shapes[s][0], m = shapes[s][1], n = shapes[s][2], k = shapes[s][3];
        ob_tensor *a = ob_tensor_new(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(batch, m, k));
        ob_tensor *b = ob_tensor_new(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(batch, k, n));
        ob_tensor *backend_c = ob_tensor_new(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(batch, m, n));
        ob_tensor *loop_c = ob_tensor_new(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(batch, m, n));
        if (!a || !b || !backend_c || !loop_c) return 1;
        bench_fill(a->data, a->numel, 1);
        bench_fill(b->data, b->numel, 2);
        double backend_s[MAX_REPS], loop_s[MAX_REPS];
        time_backend(ctx, a, b, backend_c); /* warm-up, and the agreement check */
        time_loop(a, b, loop_c);
        double error = bench_relative_error(backend_c->data, loop_c->data, batch * m, n, false);
        if (error > 1e-5) {
            fprintf(stderr, "batched_gemm: %lld x %lldx%lldx%lld results differ (relative error %.2g)\n",
                    (long long)batch, (long long)m, (long long)n, (long long)k, error);
            return 1;
        }
        for (int r = 0; r < reps; r++) {
            backend_s[r] = time_backend(ctx, a, b, backend_c);
            loop_s[r] = time_loop(a, b, loop_c);
        }
        double x = bench_median(backend_s, reps), y = bench_median(loop_s, reps);
        double gigaflops = 2.0 * (double)batch * (double)m * (double)n * (double)k / 1e9;
        printf("%6lld %5lld %5lld %5lld %11.3f %9.3f %10.1f %8.1f %7.2fx\n", (long long)batch, (long long)m,
               (long long)n, (long long)k, 1e3 * x, 1e3 * y, gigaflops / x, gigaflops / y, y / x);
        log_speedup_sum += log(y / x);
        ob_tensor_free(ctx, a);
        ob_tensor_free(ctx, b);
        ob_tensor_free(ctx, backend_c);
        ob_tensor_free(ctx, loop_c);
        ob_ctx_step_reset(ctx);
    }
    printf("back end's batched GEMM vs a loop of OpenBLAS's threaded GEMM (geomean of time ratios): %.2fx\n",
           exp(log_speedup_sum / count));
    ob_ctx_free(ctx);
    return 0;
}
