/* End-to-end training throughput of the BERT workstation model (4 layers,
 * hidden 256, 4 heads, FFN 1024, sequence 128, vocabulary 8192): optbench's
 * training step (batch, forward, masked-LM + next-sentence loss, backward,
 * optimizer update) with AdamW and with LAMB and, in the same run on the
 * same machine, PyTorch-CPU (torch_bert_workstation.py, AdamW) with the
 * same threads, batch and architecture. Both train on synthetic full-length
 * sequences with 20 masked positions each, so the comparison is of the
 * engines, not of data loaders. Prints a table and ends with the tokens/s
 * ratio of the AdamW rows.
 *
 *   bert_workstation [--threads 2] [--batch 32] [--warmup 3] [--steps 10] [--no-torch] [--no-lamb]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness/ob_clock.h"
#include "nn/ob_tape.h"
#include "optimizers/ob_optimizer.h"
#include "tests/bench/bench_common.h"
#include "workloads/ob_workload.h"

#ifndef OB_SOURCE_DIR
#define OB_SOURCE_DIR "."
#endif

/* What --data synthetic gives (workload_bert.c): full-length sequences with
 * 20 predictions each, every key real. */
#define SEQ_LEN 128
#define MAX_PRED 20

typedef struct {
    int threads, batch, warmup, steps;
    bool torch, lamb;
} bench_options;

/* Medians of a step's wall and process CPU seconds (all threads). On a
 * machine other jobs load, CPU seconds (with OMP_WAIT_POLICY=passive, so that
 * no thread spins in a barrier) say more about the work than wall time. */
typedef struct {
    double step_s, cpu_s;
    int64_t peak_bytes;
} step_timing;

static const ob_adam_config adam_config = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
/* The workstation preset's learning rates (lamb.lr, adamw.lr). */
#define ADAMW_LR 5e-4
#define LAMB_LR 2e-3

static ob_optimizer *optimizer_new(ob_ctx *ctx, ob_params *params, bool lamb) {
    ob_lamb_config lamb_config = {.adam = adam_config, .bias_correction = true};
    return lamb ? ob_lamb_new(ctx, params, &lamb_config) : ob_adamw_new(ctx, params, &adam_config);
}

static double cpu_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* Times --steps training steps after --warmup (wall and CPU seconds); 0, or
 * 1 after one line on stderr. */
static int time_steps(ob_ctx *ctx, const ob_workload *workload, ob_workload_run *run, ob_optimizer *optimizer,
                      double lr, const bench_options *o, double *times, double *cpu_times) {
    int64_t batches = workload->batches_per_epoch(run);
    char err[512];
    for (int step = 0; step < o->warmup + o->steps; step++) {
        double started = ob_now(), cpu_started = cpu_seconds();
        if (workload->load_batch(run, 0, step % batches, err, sizeof err)) {
            fprintf(stderr, "bert_workstation: %s\n", err);
            return 1;
        }
        ob_params_zero_grad(workload->params(run));
        ob_tensor *loss = workload->forward_loss(ctx, run);
        if (!loss || ob_backward(ctx, loss) || ob_optimizer_step(optimizer, lr)) {
            fprintf(stderr, "bert_workstation: training step failed: %s\n", ob_ctx_error(ctx));
            return 1;
        }
        ob_ctx_step_reset(ctx);
        if (step >= o->warmup) {
            times[step - o->warmup] = ob_now() - started;
            cpu_times[step - o->warmup] = cpu_seconds() - cpu_started;
        }
    }
    return 0;
}

/* The median optbench step with AdamW or LAMB, and the peak accounted memory;
 * *param_count gets the model's parameter count. 0, or 1 on error. */
static int optbench_step(const bench_options *o, bool lamb, step_timing *out, int64_t *param_count) {
    ob_ctx_config ctx_config = {.threads = o->threads, .seed = 1, .rank = 0, .world_size = 1};
    ob_ctx *ctx = ob_ctx_new(&ctx_config);
    const ob_workload *workload = ob_workload_find("bert");
    ob_workload_options options = {.preset = "workstation", .data_dir = "synthetic",
                                   .train_limit = 4 * (int64_t)o->batch, .eval_limit = o->batch,
                                   .global_batch = o->batch, .world_size = 1, .seed = 1};
    ob_workload_run *run = NULL;
    char err[512];
    if (!ctx || !workload || workload->create(ctx, &options, &run, err, sizeof err)) {
        fprintf(stderr, "bert_workstation: %s\n", ctx && workload ? err : "no context or no bert workload");
        ob_ctx_free(ctx);
        return 1;
    }
    *param_count = workload->count_params(ctx, "workstation");
    ob_optimizer *optimizer = optimizer_new(ctx, workload->params(run), lamb);
    double *times = calloc(2 * (size_t)o->steps, sizeof *times), *cpu_times = times ? times + o->steps : NULL;
    int rc = optimizer && times
                 ? time_steps(ctx, workload, run, optimizer, lamb ? LAMB_LR : ADAMW_LR, o, times, cpu_times)
                 : 1;
    if (rc == 0)
        *out = (step_timing){.step_s = bench_median(times, o->steps), .cpu_s = bench_median(cpu_times, o->steps),
                             .peak_bytes = ob_mem_peak_total(ctx)};
    else if (!optimizer || !times)
        fprintf(stderr, "bert_workstation: no optimizer or out of memory: %s\n", ob_ctx_error(ctx));
    free(times);
    ob_optimizer_free(ctx, optimizer);
    workload->destroy(ctx, run);
    ob_ctx_free(ctx);
    return rc;
}

typedef struct {
    double tokens_per_s, cpu_s, peak_rss_mib;
    char version[64];
} torch_result;

/* Runs the PyTorch peer, which checks that its model has param_count
 * parameters, and reads its last line. 0, or -1 when it failed. */
static int run_torch(const bench_options *o, int64_t param_count, torch_result *out) {
    char command[1024], last_line[1024];
    snprintf(command, sizeof command,
             "/usr/bin/python3 %s/tests/bench/torch_bert_workstation.py --threads %d --batch %d --seq %d "
             "--max-pred %d --warmup %d --steps %d --expect-params %lld",
             OB_SOURCE_DIR, o->threads, o->batch, SEQ_LEN, MAX_PRED, o->warmup, o->steps, (long long)param_count);
    if (bench_run_peer(command, last_line, sizeof last_line)) return -1;
    bench_field_text(last_line, "torch=", out->version, sizeof out->version);
    out->tokens_per_s = bench_field_number(last_line, "torch_tokens_per_s=");
    out->cpu_s = bench_field_number(last_line, "median_cpu_s=");
    out->peak_rss_mib = bench_field_number(last_line, "peak_rss_mib=");
    return out->tokens_per_s > 0 ? 0 : -1;
}

static void print_row(const char *engine, double step_s, double cpu_s, int batch, const char *memory) {
    printf("| %s | %.1f | %.2f | %.0f | %.2f | %s |\n", engine, 1e3 * step_s, batch / step_s,
           (double)batch * SEQ_LEN / step_s, cpu_s, memory);
}

static int parse_options(int argc, char **argv, bench_options *o) {
    const bench_int_option ints[] = {
        {"--threads", &o->threads}, {"--batch", &o->batch}, {"--warmup", &o->warmup}, {"--steps", &o->steps}};
    const bench_flag_option flags[] = {{"--no-torch", &o->torch, false}, {"--no-lamb", &o->lamb, false}};
    return bench_parse_options(argc, argv, "bert_workstation", ints, 4, flags, 2);
}

int main(int argc, char **argv) {
    bench_options o = {.threads = 2, .batch = 32, .warmup = 3, .steps = 10, .torch = true, .lamb = true};
    if (parse_options(argc, argv, &o)) return 2;
    int64_t param_count = 0;
    step_timing adamw = {0}, lamb = {0};
    if (optbench_step(&o, false, &adamw, &param_count) || (o.lamb && optbench_step(&o, true, &lamb, &param_count)))
        return 1;
    torch_result torch = {0};
    if (o.torch && run_torch(&o, param_count, &torch)) {
        fprintf(stderr, "bert_workstation: the PyTorch peer failed (is python3-torch installed?)\n");
        return 1;
    }
    printf("BERT workstation training step (%lld parameters; synthetic, batch %d x %d tokens, %d masked each; "
           "%d threads; median of %d steps)\n\n",
           (long long)param_count, o.batch, SEQ_LEN, MAX_PRED, o.threads, o.steps);
    printf("| engine | median step (ms) | sequences/s | tokens/s | CPU s/step | peak memory (MiB) |\n"
           "|---|---|---|---|---|---|\n");
    char memory[64];
    snprintf(memory, sizeof memory, "%.0f (tensors)", (double)adamw.peak_bytes / 1048576.0);
    print_row("optbench AdamW", adamw.step_s, adamw.cpu_s, o.batch, memory);
    snprintf(memory, sizeof memory, "%.0f (tensors)", (double)lamb.peak_bytes / 1048576.0);
    if (o.lamb) print_row("optbench LAMB", lamb.step_s, lamb.cpu_s, o.batch, memory);
    if (!o.torch) return 0;
    char engine[96];
    snprintf(engine, sizeof engine, "pytorch %s AdamW", torch.version);
    snprintf(memory, sizeof memory, "%.0f (process RSS)", torch.peak_rss_mib);
    print_row(engine, o.batch * SEQ_LEN / torch.tokens_per_s, torch.cpu_s, o.batch, memory);
    printf("\ntokens/s ratio optbench/torch = %.2fx\n", (double)o.batch * SEQ_LEN / adamw.step_s / torch.tokens_per_s);
    return 0;
}
