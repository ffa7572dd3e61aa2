/* The BERT pretraining workload: presets, shards or synthetic batches, and
 * masked-LM accuracy (MLPerf's BERT metric). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/ob_ops.h"
#include "nn/ob_rng.h"
#include "workloads/bert/ob_bert_model.h"
#include "workloads/bert/ob_bert_shard_set.h"
#include "workloads/bert/ob_wordpiece.h"
#include "workloads/ob_workload.h"

#define WORKSTATION_DIR "data/bert-workstation"
/* Phase 1 of BERT pretraining; phase 2 is 512 and 80 (data.seq_len, data.max_pred). */
#define SYNTHETIC_SEQ 128
#define SYNTHETIC_MAX_PRED 20
#define SPECIAL_TOKENS 5 /* [PAD] [UNK] [CLS] [SEP] [MASK]: synthetic ids start after them */

/* BERT-Large. Exactly 336,226,108 trainable scalars, which break down as
 *   embeddings  (30522 + 512 + 2) x 1024 + LayerNorm 2 x 1024   =  31,782,912
 *   24 layers x (4 x (1024^2 + 1024) + 2 x (1024 x 4096) + 4096
 *                + 1024 + 2 x 2 x 1024)  = 24 x 12,596,224     = 302,309,376
 *   pooler 1024^2 + 1024                                        =   1,049,600
 *   MLM transform 1024^2 + 1024 + LayerNorm 2048 + output bias 30522
 *     (the decoder weight is the word embedding table, tied)    =   1,082,170
 *   NSP classifier 1024 x 2 + 2                                 =       2,050
 * The first three sum to 335,141,888, the public "335M"/"340M" BERT-Large
 * count (Hugging Face's BertModel with its pooler, bert-large-uncased); with
 * the two pretraining heads it is BertForPreTraining's 336,226,108. */
static const ob_bert_config full_config = {.layers = 24, .hidden = 1024, .heads = 16, .ffn = 4096,
                                           .vocab = 30522, .max_positions = 512, .type_vocab = 2, .dropout = 0.1};
/* vocab: the data's vocab.txt; 8192 (optbench data bert's default) without one. */
static const ob_bert_config workstation_config = {.layers = 4, .hidden = 256, .heads = 4, .ffn = 1024,
                                                  .vocab = 8192, .max_positions = 128, .type_vocab = 2,
                                                  .dropout = 0.1};
/* vocab: the data's vocab.txt; 512 without one. */
static const ob_bert_config smoke_config = {.layers = 2, .hidden = 64, .heads = 2, .ffn = 256, .vocab = 512,
                                            .max_positions = 128, .type_vocab = 2, .dropout = 0.1};

/* Phase 1 (sequence 128) of NVIDIA's LAMB recipe for BERT-Large, which the
 * KAISA BERT runs start from: global batch 65536, 7038 steps, lr 6e-3
 * with polynomial decay of power 0.5, weight decay 0.01, MLPerf's target
 * 0.720. Our schedules run in epochs, which depend on the shards' size:
 * for the recipe set run.epochs to 7038 x 65536 / (training sequences) and
 * schedule.warmup_epochs to 0.2843 of that (the recipe warms up over
 * 28.43% of its steps); as written, a run is one pass capped at 7038
 * steps, without warm-up. K-FAC skips the embeddings and the heads, as
 * KAISA did. */
static const char *const full_settings[] = {
    "run.batch_size=65536", "run.max_steps=7038", "run.epochs=1", "run.eval_every=0.1", "run.target=0.720",
    "run.optimizer=lamb", "schedule.kind=polynomial", "schedule.power=0.5", "lamb.lr=6e-3",
    "lamb.weight_decay=0.01", "kfac.skip_layers=embeddings.*,cls.*,pooler.*", NULL};

/* The target, 0.15, comes from three reference runs of this preset with
 * its optimizer (LAMB, seeds 1-3, 1 thread, commit f3e7098, README): their
 * final masked-LM accuracies were 0.160, 0.160 and 0.154, so 0.15 is the
 * largest 0.01 step every reference seed reaches within the budget (at
 * epoch 0.75, 0.75 and 1.00), as MLPerf sets targets its references meet.
 * 16384 training sequences (512 steps, about 2.5 s each on 2 loaded cores)
 * keep a run in minutes on dict-gcide's 1.2 million; 1024 evaluation
 * sequences, about 25 s. */
static const char *const workstation_settings[] = {
    "run.batch_size=32", "run.epochs=1", "run.eval_every=0.25", "run.target=0.15", "run.optimizer=lamb",
    "data.train_limit=16384", "data.eval_limit=1024",
    "schedule.kind=polynomial", "schedule.power=1", "schedule.warmup_epochs=0.05", "lamb.lr=2e-3",
    "adamw.lr=5e-4", "kfac.skip_layers=embeddings.*,cls.*,pooler.*", NULL};

static const char *const smoke_settings[] = {
    "run.batch_size=8", "run.epochs=3", "run.eval_every=1", "run.target=0.9", "run.optimizer=lamb",
    "schedule.kind=constant", "lamb.lr=5e-3", "adamw.lr=2e-3", "data.eval_limit=64",
    "kfac.skip_layers=embeddings.*,cls.*,pooler.*", NULL};

static const ob_preset presets[] = {
    {"full", "BERT-Large, sequence 128 (phase 1), NVIDIA/MLPerf shards in --data (GPU cluster)", full_settings},
    {"workstation", "4 layers, hidden 256, sequence 128, shards of optbench data bert in " WORKSTATION_DIR
                    " (parameters with the default 8192-token vocabulary)",
     workstation_settings},
    {"smoke", "2 layers, hidden 64, tiny shards in --data, for ctest (parameters with a 512-token vocabulary)",
     smoke_settings},
};

static const char *const secondary_names[] = {"nsp_accuracy"};

/* One batch as persistent I32 tensors, and the shard reader's view of them. */
typedef struct {
    ob_tensor *input_ids, *input_mask, *segment_ids, *positions, *labels, *next_sentence;
} batch_tensors;

/* Where rows come from: shards, or (shards NULL) the synthetic generator. */
typedef struct {
    ob_bert_shard_set *shards;
    int64_t rows;
    bool shuffled; /* training: every epoch in its own order */
    uint64_t salt; /* synthetic: tells the training rows from the evaluation ones */
} row_source;

struct ob_workload_run {
    ob_workload_options options;
    ob_bert_config config;
    int seq_len, max_pred;
    ob_params *params;
    ob_bert_model *model;
    row_source train, eval;
    batch_tensors batch, eval_batch;
    ob_tensor batch_views[6]; /* the model's inputs for batch: the backward reads them */
    uint64_t step; /* of the loaded batch: its dropout masks */
};

static const ob_bert_config *config_for(const char *preset) {
    if (strcmp(preset, "full") == 0) return &full_config;
    return strcmp(preset, "smoke") == 0 ? &smoke_config : &workstation_config;
}

static int64_t bert_count_params(ob_ctx *ctx, const char *preset) {
    (void)ctx;
    return ob_bert_param_count(config_for(preset));
}

static ob_bert_batch batch_view(const batch_tensors *t) {
    return (ob_bert_batch){.input_ids = t->input_ids->data, .input_mask = t->input_mask->data,
                           .segment_ids = t->segment_ids->data, .masked_lm_positions = t->positions->data,
                           .masked_lm_ids = t->labels->data, .next_sentence_labels = t->next_sentence->data};
}

static int alloc_batch(ob_ctx *ctx, batch_tensors *t, int64_t rows, int seq, int max_pred) {
    t->input_ids = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(rows, seq));
    t->input_mask = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(rows, seq));
    t->segment_ids = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(rows, seq));
    t->positions = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(rows, max_pred));
    t->labels = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(rows, max_pred));
    t->next_sentence = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(rows));
    return !(t->input_ids && t->input_mask && t->segment_ids && t->positions && t->labels && t->next_sentence);
}

static void free_batch(ob_ctx *ctx, batch_tensors *t) {
    ob_tensor_free(ctx, t->input_ids);
    ob_tensor_free(ctx, t->input_mask);
    ob_tensor_free(ctx, t->segment_ids);
    ob_tensor_free(ctx, t->positions);
    ob_tensor_free(ctx, t->labels);
    ob_tensor_free(ctx, t->next_sentence);
}

/* Synthetic row r: random ids after the special tokens in a full-length
 * pair of halves, predictions at every sixth position from 1. */
static void synthetic_row(const ob_workload_run *run, uint64_t salt, int64_t r, ob_bert_batch *b, int64_t slot) {
    int seq = run->seq_len, max_pred = run->max_pred;
    ob_rng_stream stream = ob_rng_stream_make(run->options.seed, OB_RNG_SYNTHETIC_DATA, 0, salt);
    uint64_t draw = (uint64_t)r * (uint64_t)(seq + max_pred + 1);
    uint32_t spread = (uint32_t)(run->config.vocab - SPECIAL_TOKENS);
    for (int s = 0; s < seq; s++) {
        b->input_ids[slot * seq + s] = SPECIAL_TOKENS + (int32_t)(ob_rng_u32(&stream, draw++) % spread);
        b->input_mask[slot * seq + s] = 1;
        b->segment_ids[slot * seq + s] = s >= seq / 2;
    }
    for (int j = 0; j < max_pred; j++) {
        int position = 1 + 6 * j;
        bool real = position < seq;
        b->masked_lm_positions[slot * max_pred + j] = real ? position : 0;
        b->masked_lm_ids[slot * max_pred + j] =
            real ? SPECIAL_TOKENS + (int32_t)(ob_rng_u32(&stream, draw + (uint64_t)j) % spread) : -1;
    }
    b->next_sentence_labels[slot] = (int32_t)(ob_rng_u32(&stream, draw + (uint64_t)max_pred) & 1);
}

/* Positions [start, start + n) of the source's order in `epoch`. */
static int read_rows(const ob_workload_run *run, const row_source *source, int64_t epoch, int64_t start, int64_t n,
                     batch_tensors *t, char *err, size_t err_len) {
    ob_bert_batch b = batch_view(t);
    if (source->shards)
        return ob_bert_shard_set_read(source->shards, source->shuffled, run->options.seed, epoch, start, n, &b, err,
                                      err_len);
    for (int64_t i = 0; i < n; i++) synthetic_row(run, source->salt, start + i, &b, i);
    return 0;
}

static int open_shards(const char *dir, const char *pattern, int64_t limit, row_source *source, char *err,
                       size_t err_len) {
    int rc = ob_bert_shard_set_open(dir, pattern, limit, &source->shards, err, err_len);
    if (rc == 0) source->rows = ob_bert_shard_set_rows(source->shards);
    return rc;
}

/* A shard set's lengths against data.seq_len / data.max_pred when set. */
static int check_lengths(const ob_workload_options *o, const char *what, const ob_bert_shard_set *set, char *err,
                         size_t err_len) {
    int seq_len = ob_bert_shard_set_seq_len(set), max_pred = ob_bert_shard_set_max_pred(set);
    if ((o->seq_len && seq_len != o->seq_len) || (o->max_pred && max_pred != o->max_pred)) {
        snprintf(err, err_len,
                 "data.dir: the %s shards hold sequences of %d tokens with %d predictions; data.seq_len and "
                 "data.max_pred ask for %d and %d (0 = any)",
                 what, seq_len, max_pred, o->seq_len, o->max_pred);
        return 2;
    }
    return 0;
}

/* The shards' sizes must agree with each other, with data.seq_len and
 * data.max_pred, and fit the model. */
static int check_shapes(ob_workload_run *run, char *err, size_t err_len) {
    int rc = check_lengths(&run->options, "training", run->train.shards, err, err_len);
    if (!rc) rc = check_lengths(&run->options, "evaluation", run->eval.shards, err, err_len);
    if (rc) return rc;
    run->seq_len = ob_bert_shard_set_seq_len(run->train.shards);
    run->max_pred = ob_bert_shard_set_max_pred(run->train.shards);
    if (ob_bert_shard_set_seq_len(run->eval.shards) != run->seq_len ||
        ob_bert_shard_set_max_pred(run->eval.shards) != run->max_pred) {
        snprintf(err, err_len,
                 "data.dir: the evaluation shards (%s) hold other sequence or prediction lengths than the "
                 "training shards (%s)",
                 run->options.eval_files, run->options.train_files);
        return 2;
    }
    if (run->seq_len > run->config.max_positions) {
        snprintf(err, err_len, "data.dir: sequences of %d tokens, more than the preset's %d positions",
                 run->seq_len, run->config.max_positions);
        return 2;
    }
    return 0;
}

/* vocab.txt sets the vocabulary size of the scaled-down presets. */
static int read_vocab_size(const char *dir, ob_bert_config *config, char *err, size_t err_len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    ob_wordpiece *vocab = NULL;
    int rc = ob_wordpiece_load(path, &vocab, err, err_len);
    if (rc == 0) config->vocab = ob_wordpiece_size(vocab);
    ob_wordpiece_free(vocab);
    return rc;
}

static int load_data(ob_workload_run *run, char *err, size_t err_len) {
    const ob_workload_options *o = &run->options;
    bool full = strcmp(o->preset, "full") == 0;
    if (strcmp(o->data_dir, "synthetic") == 0) {
        run->seq_len = o->seq_len ? o->seq_len : SYNTHETIC_SEQ;
        run->max_pred = o->max_pred ? o->max_pred : SYNTHETIC_MAX_PRED;
        if (run->seq_len > run->config.max_positions) {
            snprintf(err, err_len, "data.seq_len: %d tokens, more than the preset's %d positions", run->seq_len,
                     run->config.max_positions);
            return 2;
        }
        run->train = (row_source){.rows = o->train_limit ? o->train_limit : 8 * o->global_batch, .salt = 0};
        run->eval = (row_source){.rows = o->eval_limit ? o->eval_limit : 2 * o->global_batch, .salt = 1};
        return 0;
    }
    if (full && !o->data_dir[0]) {
        snprintf(err, err_len, "data.dir: the full preset has no default location; pass --data DIR with "
                               "the shards data.train_files and data.eval_files name (or --data synthetic)");
        return 2;
    }
    if (!o->data_dir[0] && access(WORKSTATION_DIR "/vocab.txt", R_OK) != 0) {
        snprintf(err, err_len, "data.dir: no shards in " WORKSTATION_DIR "; make them with optbench data bert "
                               "--out " WORKSTATION_DIR ", or pass --data DIR");
        return 2;
    }
    const char *dir = o->data_dir[0] ? o->data_dir : WORKSTATION_DIR;
    int rc = full ? 0 : read_vocab_size(dir, &run->config, err, err_len);
    if (rc == 0) rc = open_shards(dir, o->train_files, o->train_limit, &run->train, err, err_len);
    if (rc == 0) rc = open_shards(dir, o->eval_files, o->eval_limit, &run->eval, err, err_len);
    run->train.shuffled = true;
    return rc ? rc : check_shapes(run, err, err_len);
}

static void bert_destroy(ob_ctx *ctx, ob_workload_run *run) {
    if (!run) return;
    free_batch(ctx, &run->batch);
    free_batch(ctx, &run->eval_batch);
    ob_bert_shard_set_close(run->train.shards);
    ob_bert_shard_set_close(run->eval.shards);
    ob_bert_model_free(run->model);
    ob_params_free(ctx, run->params);
    free(run);
}

static int check_options(const ob_workload_options *o, char *err, size_t err_len) {
    if (o->global_batch % o->world_size != 0) {
        snprintf(err, err_len, "run.batch_size: %lld is not divisible by the %d ranks", (long long)o->global_batch,
                 o->world_size);
        return 2;
    }
    return 0;
}

static int build(ob_ctx *ctx, ob_workload_run *run, char *err, size_t err_len) {
    int64_t local_batch = run->options.global_batch / run->options.world_size;
    run->params = ob_params_new(OB_F32);
    run->model = run->params ? ob_bert_model_new(ctx, run->params, &run->config) : NULL;
    if (!run->model || alloc_batch(ctx, &run->batch, local_batch, run->seq_len, run->max_pred) ||
        alloc_batch(ctx, &run->eval_batch, local_batch, run->seq_len, run->max_pred)) {
        snprintf(err, err_len, "cannot build the model: %s", ob_ctx_error(ctx));
        return 1;
    }
    if (run->train.rows < run->options.global_batch) {
        snprintf(err, err_len, "run.batch_size: %lld is larger than the %lld training sequences",
                 (long long)run->options.global_batch, (long long)run->train.rows);
        return 2;
    }
    return 0;
}

static int bert_create(ob_ctx *ctx, const ob_workload_options *options, ob_workload_run **out, char *err,
                       size_t err_len) {
    int rc = check_options(options, err, err_len);
    if (rc) return rc;
    ob_workload_run *run = calloc(1, sizeof *run);
    if (!run) {
        snprintf(err, err_len, "out of memory");
        return 1;
    }
    run->options = *options;
    run->config = *config_for(options->preset);
    rc = load_data(run, err, err_len);
    if (rc == 0) rc = build(ctx, run, err, err_len);
    if (rc) {
        bert_destroy(ctx, run);
        return rc;
    }
    *out = run;
    return 0;
}

static ob_params *bert_params(ob_workload_run *run) { return run->params; }

static int64_t bert_batches_per_epoch(const ob_workload_run *run) {
    return run->train.rows / run->options.global_batch;
}

/* Global batch b is positions [b B, (b + 1) B) of the epoch's order of the
 * training shards (ob_bert_shard_set); this rank reads its B / ranks of them. */
static int bert_load_batch(ob_workload_run *run, int64_t epoch, int64_t batch_index, char *err, size_t err_len) {
    const ob_workload_options *o = &run->options;
    int64_t local = o->global_batch / o->world_size;
    run->step = (uint64_t)(epoch * bert_batches_per_epoch(run) + batch_index);
    return read_rows(run, &run->train, epoch, batch_index * o->global_batch + o->rank * local, local, &run->batch,
                     err, err_len);
}

/* Model inputs over the first `rows` rows of t; views live in *views. */
static ob_bert_inputs inputs_of(const batch_tensors *t, int64_t rows, ob_tensor views[6]) {
    const ob_tensor *all[6] = {t->input_ids, t->input_mask, t->segment_ids, t->positions, t->labels,
                               t->next_sentence};
    for (int i = 0; i < 6; i++) {
        views[i] = *all[i];
        views[i].numel = all[i]->numel / all[i]->shape[0] * rows;
        views[i].shape[0] = rows;
    }
    return (ob_bert_inputs){.input_ids = &views[0], .input_mask = &views[1], .segment_ids = &views[2],
                            .masked_lm_positions = &views[3], .masked_lm_ids = &views[4],
                            .next_sentence_labels = &views[5]};
}

static ob_tensor *bert_forward_loss(ob_ctx *ctx, ob_workload_run *run) {
    ob_bert_inputs in = inputs_of(&run->batch, run->batch.input_ids->shape[0], run->batch_views);
    ob_bert_pass pass = {.training = true, .step = run->step};
    ob_bert_outputs out;
    return ob_bert_forward(ctx, run->model, &in, &pass, &out) ? NULL
                                                              : ob_bert_loss(ctx, &out, in.next_sentence_labels);
}

/* Whether row i's largest logit is the label's; ties and NaN count as wrong. */
static bool top1(const float *row, int64_t classes, int32_t label) {
    for (int64_t c = 0; c < classes; c++)
        if (isnan(row[c]) || (c != label && row[c] >= row[label])) return false;
    return true;
}

static int64_t correct_rows(const ob_tensor *logits, const ob_tensor *labels) {
    int64_t correct = 0, classes = logits->shape[1];
    const int32_t *label = labels->data;
    for (int64_t i = 0; i < logits->shape[0]; i++) correct += top1(ob_f32(logits) + i * classes, classes, label[i]);
    return correct;
}

/* Adds one batch's sums: metric and loss over its real predictions,
 * NSP accuracy over its sequences. */
static int evaluate_batch(ob_ctx *ctx, ob_workload_run *run, int64_t rows, ob_eval_result *out) {
    ob_tensor views[6];
    ob_bert_inputs in = inputs_of(&run->eval_batch, rows, views);
    ob_bert_pass pass = {.training = false};
    ob_bert_outputs heads;
    if (ob_bert_forward(ctx, run->model, &in, &pass, &heads)) return 1;
    ob_tensor *mlm_loss = ob_softmax_cross_entropy(ctx, heads.mlm_logits, heads.mlm_labels, 0.0);
    if (!mlm_loss) return 1;
    int64_t predictions = heads.mlm_labels->numel;
    out->loss += ob_f32(mlm_loss)[0] * (double)predictions;
    out->metric += (double)correct_rows(heads.mlm_logits, heads.mlm_labels);
    out->samples += predictions;
    out->secondary[0] += (double)correct_rows(heads.nsp_logits, in.next_sentence_labels);
    out->secondary_samples[0] += (double)rows;
    return 0;
}

/* Masked-LM accuracy over every real prediction of this rank's share of
 * the evaluation rows; the loss is the masked-LM cross-entropy. */
static int bert_evaluate(ob_ctx *ctx, ob_workload_run *run, ob_eval_result *out, char *err, size_t err_len) {
    const ob_workload_options *o = &run->options;
    int64_t per_rank = (run->eval.rows + o->world_size - 1) / o->world_size;
    int64_t start = o->rank * per_rank < run->eval.rows ? o->rank * per_rank : run->eval.rows;
    int64_t end = start + per_rank < run->eval.rows ? start + per_rank : run->eval.rows;
    int64_t eval_batch = run->eval_batch.input_ids->shape[0];
    memset(out, 0, sizeof *out);
    bool grad_was_enabled = ob_grad_enabled(ctx);
    ob_set_grad_enabled(ctx, false);
    int rc = 0;
    for (int64_t first = start; first < end && rc == 0; first += eval_batch) {
        int64_t n = end - first < eval_batch ? end - first : eval_batch;
        rc = read_rows(run, &run->eval, 0, first, n, &run->eval_batch, err, err_len);
        if (rc == 0 && evaluate_batch(ctx, run, n, out)) {
            snprintf(err, err_len, "evaluation failed: %s", ob_ctx_error(ctx));
            rc = 1;
        }
        ob_ctx_step_reset(ctx);
    }
    ob_set_grad_enabled(ctx, grad_was_enabled);
    return rc;
}

const ob_workload ob_bert_workload = {
    .name = "bert",
    .description = "BERT pretraining, masked LM + next sentence (masked-LM accuracy)",
    .metric_name = "mlm_accuracy",
    .target_direction = "max",
    .n_secondary = 1,
    .secondary_names = secondary_names,
    .presets = presets,
    .n_presets = (int)(sizeof presets / sizeof presets[0]),
    .count_params = bert_count_params,
    .create = bert_create,
    .destroy = bert_destroy,
    .params = bert_params,
    .batches_per_epoch = bert_batches_per_epoch,
    .load_batch = bert_load_batch,
    .forward_loss = bert_forward_loss,
    .evaluate = bert_evaluate,
};
