#include "workloads/bert/ob_bert_shard_set.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_rng.h"
#include "workloads/data/ob_batch_plan.h"

/* One shard's rows in one epoch's order: row_at[offset] = shard row. */
typedef struct {
    int file; /* -1: empty */
    uint64_t seed;
    int64_t epoch;
    int64_t *row_at;
} row_order;

struct ob_bert_shard_set {
    char **paths;
    int64_t *file_rows;  /* used rows of each shard: the limit may cut the last one */
    int64_t *stored_at;  /* [n_files] the list position of each shard's first row */
    int n_files;
    int64_t rows, largest_file;
    int seq_len, max_pred;
    /* the shards' order in (order_seed, order_epoch): the k-th shard read
     * is file_at[k], starting at list position start_at[k] */
    bool order_valid;
    uint64_t order_seed;
    int64_t order_epoch;
    int64_t *file_at, *start_at;
    /* small caches, each entry replaced when least recently used */
    row_order row_orders[OB_BERT_SET_OPEN];
    ob_bert_shard *open[OB_BERT_SET_OPEN];
    int open_file[OB_BERT_SET_OPEN]; /* -1: empty */
    uint64_t order_use[OB_BERT_SET_OPEN], open_use[OB_BERT_SET_OPEN], clock;
};

/* Takes file `path`'s sizes (and checks they agree with the first file's). */
static int measure(ob_bert_shard_set *set, const char *path, int64_t *rows, char *err, size_t err_len) {
    ob_bert_shard *shard;
    int rc = ob_bert_shard_open(path, &shard, err, err_len);
    if (rc) return rc;
    *rows = ob_bert_shard_rows(shard);
    int seq_len = ob_bert_shard_seq_len(shard), max_pred = ob_bert_shard_max_pred(shard);
    ob_bert_shard_close(shard);
    if (set->n_files == 0) {
        set->seq_len = seq_len;
        set->max_pred = max_pred;
    } else if (seq_len != set->seq_len || max_pred != set->max_pred) {
        snprintf(err, err_len, "%s: sequences of %d tokens with %d predictions, where %s has %d and %d", path, seq_len,
                 max_pred, set->paths[0], set->seq_len, set->max_pred);
        return 2;
    }
    return 0;
}

static int add_files(ob_bert_shard_set *set, const glob_t *matches, int64_t limit, char *err, size_t err_len) {
    set->paths = calloc(matches->gl_pathc, sizeof *set->paths);
    set->file_rows = calloc(matches->gl_pathc, sizeof *set->file_rows);
    set->stored_at = calloc(matches->gl_pathc, sizeof *set->stored_at);
    if (!set->paths || !set->file_rows || !set->stored_at) return 1;
    for (size_t i = 0; i < matches->gl_pathc && (limit == 0 || set->rows < limit); i++) {
        int64_t rows;
        int rc = measure(set, matches->gl_pathv[i], &rows, err, err_len);
        if (rc) return rc;
        if (limit > 0 && rows > limit - set->rows) rows = limit - set->rows;
        set->paths[set->n_files] = strdup(matches->gl_pathv[i]);
        if (!set->paths[set->n_files]) return 1;
        set->file_rows[set->n_files] = rows;
        set->stored_at[set->n_files] = set->rows;
        set->n_files++;
        set->rows += rows;
        if (rows > set->largest_file) set->largest_file = rows;
    }
    return 0;
}

static int allocate_orders(ob_bert_shard_set *set) {
    set->file_at = malloc((size_t)set->n_files * sizeof *set->file_at);
    set->start_at = malloc(((size_t)set->n_files + 1) * sizeof *set->start_at);
    if (!set->file_at || !set->start_at) return 1;
    for (int i = 0; i < OB_BERT_SET_OPEN; i++) {
        set->open_file[i] = set->row_orders[i].file = -1;
        set->row_orders[i].row_at = malloc((size_t)set->largest_file * sizeof *set->row_orders[i].row_at);
        if (!set->row_orders[i].row_at) return 1;
    }
    return 0;
}

int ob_bert_shard_set_open(const char *dir, const char *pattern, int64_t limit, ob_bert_shard_set **out, char *err,
                           size_t err_len) {
    *out = NULL;
    char full_pattern[4096];
    if (pattern[0] == '/')
        snprintf(full_pattern, sizeof full_pattern, "%s", pattern);
    else
        snprintf(full_pattern, sizeof full_pattern, "%s/%s", dir, pattern);
    glob_t matches;
    int found = glob(full_pattern, 0, NULL, &matches);
    if (found != 0) {
        snprintf(err, err_len, "%s: %s", full_pattern,
                 found == GLOB_NOMATCH ? "no shard matches (expected BERT pretraining shards)" : "cannot list");
        if (found != GLOB_NOMATCH) globfree(&matches);
        return 2;
    }
    ob_bert_shard_set *set = calloc(1, sizeof *set);
    int rc = set ? add_files(set, &matches, limit, err, err_len) : 1;
    globfree(&matches);
    if (!rc) rc = allocate_orders(set);
    if (rc == 1) snprintf(err, err_len, "%s: out of memory", full_pattern);
    if (rc) {
        ob_bert_shard_set_close(set);
        return rc;
    }
    *out = set;
    return 0;
}

int64_t ob_bert_shard_set_rows(const ob_bert_shard_set *set) { return set->rows; }
int ob_bert_shard_set_files(const ob_bert_shard_set *set) { return set->n_files; }
int ob_bert_shard_set_seq_len(const ob_bert_shard_set *set) { return set->seq_len; }
int ob_bert_shard_set_max_pred(const ob_bert_shard_set *set) { return set->max_pred; }

/* The largest k with starts[k] <= position (starts ascending, starts[0] = 0). */
static int last_start_at_or_before(const int64_t *starts, int n, int64_t position) {
    int low = 0, high = n - 1;
    while (low < high) {
        int middle = low + (high - low + 1) / 2;
        if (starts[middle] <= position)
            low = middle;
        else
            high = middle - 1;
    }
    return low;
}

static void order_files(ob_bert_shard_set *set, uint64_t seed, int64_t epoch) {
    if (set->order_valid && set->order_seed == seed && set->order_epoch == epoch) return;
    ob_rng_stream stream = ob_rng_stream_make(seed, OB_RNG_SHUFFLE, 0, (uint64_t)epoch);
    ob_shuffle_indices(set->file_at, set->n_files, &stream, 0);
    set->start_at[0] = 0;
    for (int k = 0; k < set->n_files; k++) set->start_at[k + 1] = set->start_at[k] + set->file_rows[set->file_at[k]];
    set->order_valid = true;
    set->order_seed = seed;
    set->order_epoch = epoch;
}

/* The entry to replace: an empty one (last use 0) or the least recently used. */
static int least_recent(const uint64_t last_use[OB_BERT_SET_OPEN]) {
    int chosen = 0;
    for (int i = 1; i < OB_BERT_SET_OPEN; i++)
        if (last_use[i] < last_use[chosen]) chosen = i;
    return chosen;
}

static const int64_t *rows_in_order(ob_bert_shard_set *set, int file, uint64_t seed, int64_t epoch) {
    int found = -1;
    for (int i = 0; i < OB_BERT_SET_OPEN && found < 0; i++) {
        const row_order *c = &set->row_orders[i];
        if (c->file == file && c->seed == seed && c->epoch == epoch) found = i;
    }
    if (found < 0) {
        found = least_recent(set->order_use);
        row_order *o = &set->row_orders[found];
        ob_rng_stream stream = ob_rng_stream_make(seed, OB_RNG_SHUFFLE, 1, (uint64_t)epoch);
        ob_shuffle_indices(o->row_at, set->file_rows[file], &stream, (uint64_t)set->stored_at[file]);
        *o = (row_order){.file = file, .seed = seed, .epoch = epoch, .row_at = o->row_at};
    }
    set->order_use[found] = ++set->clock;
    return set->row_orders[found].row_at;
}

int ob_bert_shard_set_locate(ob_bert_shard_set *set, bool shuffled, uint64_t seed, int64_t epoch, int64_t position,
                             int *file, int64_t *row, char *err, size_t err_len) {
    if (position < 0 || position >= set->rows || epoch < 0 || epoch >= OB_MAX_EPOCH) {
        snprintf(err, err_len, "%s: position %lld of epoch %lld requested, expected 0 <= position < %lld",
                 set->paths[0], (long long)position, (long long)epoch, (long long)set->rows);
        return 2;
    }
    if (!shuffled) {
        *file = last_start_at_or_before(set->stored_at, set->n_files, position);
        *row = position - set->stored_at[*file];
        return 0;
    }
    order_files(set, seed, epoch);
    int k = last_start_at_or_before(set->start_at, set->n_files, position);
    *file = (int)set->file_at[k];
    *row = rows_in_order(set, *file, seed, epoch)[position - set->start_at[k]];
    return 0;
}

static ob_bert_shard *shard_of(ob_bert_shard_set *set, int file, char *err, size_t err_len) {
    int found = -1;
    for (int i = 0; i < OB_BERT_SET_OPEN && found < 0; i++)
        if (set->open_file[i] == file) found = i;
    if (found < 0) {
        found = least_recent(set->open_use);
        ob_bert_shard_close(set->open[found]);
        set->open[found] = NULL;
        set->open_file[found] = -1;
        set->open_use[found] = 0;
        if (ob_bert_shard_open(set->paths[file], &set->open[found], err, err_len)) return NULL;
        set->open_file[found] = file;
    }
    set->open_use[found] = ++set->clock;
    return set->open[found];
}

/* batch's rows from `slot` on. */
static ob_bert_batch rows_from(const ob_bert_batch *b, int64_t slot, int seq_len, int max_pred) {
    return (ob_bert_batch){.input_ids = b->input_ids + slot * seq_len,
                           .input_mask = b->input_mask + slot * seq_len,
                           .segment_ids = b->segment_ids + slot * seq_len,
                           .masked_lm_positions = b->masked_lm_positions + slot * max_pred,
                           .masked_lm_ids = b->masked_lm_ids + slot * max_pred,
                           .next_sentence_labels = b->next_sentence_labels + slot};
}

int ob_bert_shard_set_read(ob_bert_shard_set *set, bool shuffled, uint64_t seed, int64_t epoch, int64_t start,
                           int64_t n, ob_bert_batch *batch, char *err, size_t err_len) {
    if (start < 0 || n < 0 || start > set->rows - n) {
        snprintf(err, err_len, "%s: positions [%lld, %lld) requested, expected within [0, %lld)", set->paths[0],
                 (long long)start, (long long)(start + n), (long long)set->rows);
        return 2;
    }
    int64_t slot = 0;
    int file = 0, next_file = 0;
    int64_t row = 0, next_row = 0;
    int rc = n > 0 ? ob_bert_shard_set_locate(set, shuffled, seed, epoch, start, &file, &row, err, err_len) : 0;
    while (rc == 0 && slot < n) {
        int64_t run = 1;
        for (; slot + run < n; run++) {
            rc = ob_bert_shard_set_locate(set, shuffled, seed, epoch, start + slot + run, &next_file, &next_row, err,
                                          err_len);
            if (rc || next_file != file || next_row != row + run) break;
        }
        if (rc) break;
        ob_bert_shard *shard = shard_of(set, file, err, err_len);
        ob_bert_batch view = rows_from(batch, slot, set->seq_len, set->max_pred);
        rc = shard ? ob_bert_shard_read(shard, row, run, &view, err, err_len) : 2;
        slot += run;
        file = next_file;
        row = next_row;
    }
    return rc;
}

void ob_bert_shard_set_close(ob_bert_shard_set *set) {
    if (!set) return;
    for (int i = 0; i < OB_BERT_SET_OPEN; i++) {
        ob_bert_shard_close(set->open[i]);
        free(set->row_orders[i].row_at);
    }
    for (int i = 0; i < set->n_files; i++) free(set->paths[i]);
    free(set->paths);
    free(set->file_rows);
    free(set->stored_at);
    free(set->file_at);
    free(set->start_at);
    free(set);
}
