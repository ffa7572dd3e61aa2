/* End-to-end training throughput of the ResNet-50 workstation network:
 * optbench's training step (data, forward, backward, SGD update) and, in the
 * same run on the same machine, PyTorch-CPU (torch_resnet_workstation.py)
 * with the same threads and batch. Both train on synthetic inputs, so the
 * comparison is of the engines, not of data loaders. Prints a table and ends
 * with the img/s ratio.
 *
 *   resnet_workstation [--threads 2] [--batch 128] [--warmup 3] [--steps 10] [--no-torch]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/ob_clock.h"
#include "nn/ob_tape.h"
#include "optimizers/ob_optimizer.h"
#include "tests/bench/bench_common.h"
#include "workloads/ob_workload.h"

#ifndef OB_SOURCE_DIR
#define OB_SOURCE_DIR "."
#endif

typedef struct {
    int threads, batch, warmup, steps;
    bool torch;
} bench_options;

/* Median seconds per optbench training step, or a negative value on error. */
static double optbench_step_seconds(const bench_options *o, int64_t *peak_bytes) {
    ob_ctx_config ctx_config = {.threads = o->threads, .seed = 1, .rank = 0, .world_size = 1};
    ob_ctx *ctx = ob_ctx_new(&ctx_config);
    const ob_workload *workload = ob_workload_find("resnet50");
    ob_workload_options options = {.preset = "workstation", .data_dir = "synthetic",
                                   .train_limit = 4 * (int64_t)o->batch, .eval_limit = o->batch,
                                   .augment = false, .label_smoothing = 0.0, .bn_momentum = 0.1,
                                   .bn_eps = 1e-5, .global_batch = o->batch, .world_size = 1, .seed = 1};
    ob_workload_run *run = NULL;
    char err[512];
    if (workload->create(ctx, &options, &run, err, sizeof err)) {
        fprintf(stderr, "resnet_workstation: %s\n", err);
        return -1;
    }
    ob_sgd_config sgd = {.momentum = 0.9, .weight_decay = 5e-5};
    ob_optimizer *optimizer = ob_sgd_new(ctx, workload->params(run), &sgd);
    double *times = calloc((size_t)o->steps, sizeof *times);
    int64_t batches = workload->batches_per_epoch(run);
    for (int step = 0; step < o->warmup + o->steps; step++) {
        double started = ob_now();
        workload->load_batch(run, 0, step % batches, err, sizeof err);
        ob_params_zero_grad(workload->params(run));
        ob_tensor *loss = workload->forward_loss(ctx, run);
        ob_backward(ctx, loss);
        ob_optimizer_step(optimizer, 0.1);
        ob_ctx_step_reset(ctx);
        if (step >= o->warmup) times[step - o->warmup] = ob_now() - started;
    }
    double seconds = bench_median(times, o->steps);
    *peak_bytes = ob_mem_peak_total(ctx);
    free(times);
    ob_optimizer_free(ctx, optimizer);
    workload->destroy(ctx, run);
    ob_ctx_free(ctx);
    return seconds;
}

/* Runs the PyTorch peer and returns its img/s (from its last line), or -1. */
static double torch_images_per_second(const bench_options *o, char *version, size_t version_len) {
    char command[1024];
    snprintf(command, sizeof command,
             "/usr/bin/python3 %s/tests/bench/torch_resnet_workstation.py --threads %d --batch %d "
             "--warmup %d --steps %d",
             OB_SOURCE_DIR, o->threads, o->batch, o->warmup, o->steps);
    char last_line[1024];
    if (bench_run_peer(command, last_line, sizeof last_line)) return -1;
    bench_field_text(last_line, "torch=", version, version_len);
    return bench_field_number(last_line, "torch_img_per_s=");
}

static int parse_options(int argc, char **argv, bench_options *o) {
    const bench_int_option ints[] = {
        {"--threads", &o->threads}, {"--batch", &o->batch}, {"--warmup", &o->warmup}, {"--steps", &o->steps}};
    const bench_flag_option flags[] = {{"--no-torch", &o->torch, false}};
    return bench_parse_options(argc, argv, "resnet_workstation", ints, 4, flags, 1);
}

int main(int argc, char **argv) {
    bench_options o = {.threads = 2, .batch = 128, .warmup = 3, .steps = 10, .torch = true};
    if (parse_options(argc, argv, &o)) return 2;
    int64_t peak_bytes = 0;
    double step_s = optbench_step_seconds(&o, &peak_bytes);
    if (step_s < 0) return 1;
    double ours = o.batch / step_s;
    printf("ResNet-50 workstation training step (synthetic 1x32x32, batch %d, %d threads, median of %d steps)\n\n",
           o.batch, o.threads, o.steps);
    printf("| engine | median step (s) | img/s | peak accounted memory (MiB) |\n|---|---|---|---|\n");
    printf("| optbench | %.4f | %.1f | %.0f |\n", step_s, ours, (double)peak_bytes / 1048576.0);
    if (!o.torch) return 0;
    char version[64] = "?";
    double theirs = torch_images_per_second(&o, version, sizeof version);
    if (theirs <= 0) {
        fprintf(stderr, "resnet_workstation: the PyTorch peer failed (is python3-torch installed?)\n");
        return 1;
    }
    printf("| pytorch %s | %.4f | %.1f | - |\n\n", version, o.batch / theirs, theirs);
    printf("optbench / pytorch img/s: %.2fx\n", ours / theirs);
    return 0;
}
