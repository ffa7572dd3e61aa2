/* Synchronized batch-norm on 4 ranks against one process holding the whole
 * batch: each rank normalises its 2 of the 8 images with statistics reduced
 * over all ranks (nn/ob_ctx.h ob_batchnorm_reduce over the MPI
 * communicator), in double precision. Its output, input gradient and
 * running statistics must equal the whole-batch batch-norm's on its rows,
 * and its gamma/beta gradients summed over ranks the whole batch's. The
 * whole batch is built on every rank from the same counter-based draws.
 * Also: local statistics (no reduction) differ, so the test can fail. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness/comm/ob_comm.h"
#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_rng.h"
#include "nn/ob_tape.h"

#include "mpi/mpi_check.h"

#define RANKS 4
enum { IMAGES = 8, HEIGHT = 3, WIDTH = 2, CHANNELS = 5, LOCAL_IMAGES = IMAGES / RANKS };

static int sum_over_ranks(double *values, int64_t n, void *comm) {
    return ob_comm_allreduce_sum(comm, values, n, OB_F64, OB_COMM_BATCHNORM);
}

static void fill(ob_tensor *t, uint64_t salt, double offset) {
    ob_rng_stream stream = ob_rng_stream_make(3, OB_RNG_TEST, 0, salt);
    for (int64_t i = 0; i < t->numel; i++) ob_f64(t)[i] = offset + ob_rng_normal(&stream, i);
}

static ob_tensor *param(ob_ctx *ctx, uint64_t salt, double offset) {
    ob_tensor *t = ob_tensor_new(ctx, OB_MEM_PARAMS, OB_F64, OB_SHAPE(CHANNELS));
    t->grad = ob_tensor_new(ctx, OB_MEM_GRADS, OB_F64, OB_SHAPE(CHANNELS));
    t->requires_grad = true;
    fill(t, salt, offset);
    return t;
}

typedef struct {
    ob_ctx *ctx;
    ob_tensor *x, *gamma, *beta, *running_mean, *running_var, *y;
} bn_run;

/* Batch-norm forward and backward over `images` images starting at `first`
 * of the whole batch (x offset by 3 so that a shift-free sum would lose
 * digits), with dy the matching rows of a fixed whole-batch gradient. */
static bool bn_run_step(bn_run *b, int first, int images, const ob_batchnorm_reduce *reduce) {
    b->ctx = ob_ctx_new(&(ob_ctx_config){.threads = 1, .seed = 5});
    ob_ctx_set_batchnorm_reduce(b->ctx, reduce);
    ob_tensor *whole_x = ob_tensor_temp(b->ctx, OB_MEM_DATA, OB_F64, OB_SHAPE(IMAGES, HEIGHT, WIDTH, CHANNELS));
    ob_tensor *whole_dy = ob_tensor_temp(b->ctx, OB_MEM_DATA, OB_F64, OB_SHAPE(IMAGES, HEIGHT, WIDTH, CHANNELS));
    fill(whole_x, 1, 3.0);
    fill(whole_dy, 2, 0.0);
    int64_t per_image = HEIGHT * WIDTH * CHANNELS;
    b->x = ob_tensor_temp(b->ctx, OB_MEM_DATA, OB_F64, OB_SHAPE(images, HEIGHT, WIDTH, CHANNELS));
    memcpy(b->x->data, ob_f64(whole_x) + first * per_image, sizeof(double) * (size_t)(images * per_image));
    b->x->requires_grad = true;
    b->gamma = param(b->ctx, 7, 1.0);
    b->beta = param(b->ctx, 8, 0.0);
    b->running_mean = ob_tensor_new(b->ctx, OB_MEM_PARAMS, OB_F64, OB_SHAPE(CHANNELS));
    b->running_var = ob_tensor_new(b->ctx, OB_MEM_PARAMS, OB_F64, OB_SHAPE(CHANNELS));
    ob_backend_of(b->running_var)->fill(b->running_var, 1.0);
    b->y = ob_batchnorm(b->ctx, b->x, b->gamma, b->beta, b->running_mean, b->running_var, true, 0.1, 1e-5);
    if (!b->y) return false;
    memcpy(ob_grad_of(b->ctx, b->y)->data, ob_f64(whole_dy) + first * per_image,
           sizeof(double) * (size_t)(images * per_image));
    return ob_backward_run(b->ctx) == 0;
}

static void bn_run_free(bn_run *b) {
    ob_tensor *owned[] = {b->gamma->grad, b->gamma, b->beta->grad, b->beta, b->running_mean, b->running_var};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) ob_tensor_free(b->ctx, owned[i]);
    ob_ctx_free(b->ctx);
}

static double worst_difference(const double *a, const double *b, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
    return worst;
}

static void test_against_whole_batch(ob_comm *world) {
    int first = my_rank * LOCAL_IMAGES;
    int64_t local_values = (int64_t)LOCAL_IMAGES * HEIGHT * WIDTH * CHANNELS;
    int64_t offset = (int64_t)first * HEIGHT * WIDTH * CHANNELS;
    ob_batchnorm_reduce reduce = {.sum = sum_over_ranks, .user = world};
    bn_run whole = {0}, synced = {0}, local = {0};
    bool ok = bn_run_step(&whole, 0, IMAGES, NULL) && bn_run_step(&synced, first, LOCAL_IMAGES, &reduce) &&
              bn_run_step(&local, first, LOCAL_IMAGES, NULL);
    checkf(ok, "forward and backward ran");
    if (!ok) return;
    double y_error = worst_difference(ob_f64(synced.y), ob_f64(whole.y) + offset, local_values);
    double dx_error = worst_difference(ob_f64(synced.x->grad), ob_f64(whole.x->grad) + offset, local_values);
    checkf(y_error < 1e-12, "synchronized output = whole batch's rows (worst %.2e)", y_error);
    checkf(dx_error < 1e-12, "synchronized input gradient = whole batch's rows (worst %.2e)", dx_error);
    checkf(worst_difference(ob_f64(synced.running_mean), ob_f64(whole.running_mean), CHANNELS) < 1e-12 &&
               worst_difference(ob_f64(synced.running_var), ob_f64(whole.running_var), CHANNELS) < 1e-12,
           "running statistics = whole batch's (unbiased variance over all rows)");
    double sums[2 * CHANNELS];
    memcpy(sums, synced.gamma->grad->data, sizeof(double) * CHANNELS);
    memcpy(sums + CHANNELS, synced.beta->grad->data, sizeof(double) * CHANNELS);
    checkf(ob_comm_allreduce_sum(world, sums, 2 * CHANNELS, OB_F64, OB_COMM_CONTROL) == 0, "gradient sum");
    checkf(worst_difference(sums, ob_f64(whole.gamma->grad), CHANNELS) < 1e-12 &&
               worst_difference(sums + CHANNELS, ob_f64(whole.beta->grad), CHANNELS) < 1e-12,
           "gamma and beta gradients summed over ranks = whole batch's");
    double local_error = worst_difference(ob_f64(local.y), ob_f64(whole.y) + offset, local_values);
    checkf(local_error > 1e-3, "local statistics differ from the whole batch's (by %.2e)", local_error);
    ob_comm_stat stat = ob_comm_stats(world, OB_COMM_ALLREDUCE, OB_COMM_BATCHNORM);
    checkf(stat.calls == 2, "one batch-norm all-reduce in forward and one in backward (got %lld)",
           (long long)stat.calls);
    bn_run_free(&whole);
    bn_run_free(&synced);
    bn_run_free(&local);
}

int main(void) {
    ob_comm *world = NULL;
    char err[512];
    if (ob_comm_world(&world, err, sizeof err)) {
        fprintf(stderr, "test_sync_batchnorm: %s\n", err);
        return 1;
    }
    my_rank = ob_comm_rank(world);
    checkf(ob_comm_size(world) == RANKS, "size %d, want %d", ob_comm_size(world), RANKS);
    if (ob_comm_size(world) == RANKS) test_against_whole_batch(world);
    int failed = report_checks_on_all_ranks(world);
    ob_comm_free(world);
    return failed;
}
