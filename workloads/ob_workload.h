/* ob_workload: what the harness needs from a workload.
 *
 * A workload is a table of functions (build model and data, load a batch,
 * forward + loss, evaluate) plus its presets. The training loop, clocks,
 * optimizers and logging live in the harness and are the same for every
 * workload; a workload never sees them. */
#ifndef OB_WORKLOAD_H
#define OB_WORKLOAD_H

#include "nn/ob_ctx.h"
#include "nn/ob_layers.h"

#define OB_MAX_SECONDARY_METRICS 4

/* A preset is a recipe: config assignments ("section.key=value") applied
 * over the defaults and under the user's config file and flags. */
typedef struct {
    const char *name;
    const char *description;
    const char *const *settings; /* NULL-terminated */
} ob_preset;

typedef struct {
    const char *preset;
    const char *data_dir; /* "" = the preset's location; "synthetic" = random inputs */
    int64_t train_limit, eval_limit; /* 0 = whole set */
    /* BERT shards: glob patterns in data_dir (absolute: alone) */
    const char *train_files, *eval_files;
    /* BERT: tokens and masked predictions per sequence; synthetic data
     * uses them, shards must match them; 0 = synthetic 128 and 20, shards
     * any */
    int seq_len, max_pred;
    bool augment, hflip;
    int crop_padding;
    int data_workers; /* decode threads of streaming readers (ImageNet folders) */
    int eval_resize;  /* ImageNet evaluation: shorter side before the centre crop; 0 = side * 256 / 224 */
    double label_smoothing, bn_momentum, bn_eps;
    /* model.norm: "batch" (also NULL or "") or "none" (no normalisation
     * layers; convolutions get biases instead) */
    const char *norm;
    bool zero_init_residual;
    int64_t global_batch;
    int rank, world_size;
    uint64_t seed;
} ob_workload_options;

typedef struct {
    double metric, loss;
    double secondary[OB_MAX_SECONDARY_METRICS];
    int64_t samples;
    /* What secondary[i] is divided by when it counts something else than
     * samples (BERT: NSP accuracy over sequences, where samples counts the
     * masked predictions); 0 = samples. */
    double secondary_samples[OB_MAX_SECONDARY_METRICS];
} ob_eval_result;

typedef struct ob_workload_run ob_workload_run; /* one run's model and data */

typedef struct ob_workload {
    const char *name;
    const char *description;
    const char *metric_name;      /* e.g. "top1" */
    const char *target_direction; /* "max" or "min" */
    int n_secondary;
    const char *const *secondary_names;
    const ob_preset *presets;
    int n_presets;

    /* Builds only the preset's model and counts its trainable scalars. */
    int64_t (*count_params)(ob_ctx *ctx, const char *preset);
    int (*create)(ob_ctx *ctx, const ob_workload_options *options, ob_workload_run **out, char *err,
                  size_t err_len);
    void (*destroy)(ob_ctx *ctx, ob_workload_run *run);
    ob_params *(*params)(ob_workload_run *run);
    int64_t (*batches_per_epoch)(const ob_workload_run *run);
    /* Fills the run's input batch for (epoch, batch_index); this rank's shard. */
    int (*load_batch)(ob_workload_run *run, int64_t epoch, int64_t batch_index, char *err, size_t err_len);
    /* Forward pass and loss on the loaded batch, recorded on the tape. */
    ob_tensor *(*forward_loss)(ob_ctx *ctx, ob_workload_run *run);
    /* This rank's shard of the evaluation set; sums, not means, in
     * metric/loss/secondary (the harness reduces over ranks and divides by
     * samples), so sharded evaluation is exact. */
    int (*evaluate)(ob_ctx *ctx, ob_workload_run *run, ob_eval_result *out, char *err, size_t err_len);
} ob_workload;

const ob_workload *ob_workload_find(const char *name);
int ob_workload_count(void);
const ob_workload *ob_workload_at(int i);
const ob_preset *ob_workload_preset(const ob_workload *workload, const char *preset_name);

#endif
