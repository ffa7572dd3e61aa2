/* BERT shard sets: three shards (7, 12 and 5 sequences; more shards than
 * are kept open at once) read as one list. Stored order is the files'
 * sorted order; a training epoch visits every sequence once, shard by
 * shard (a permutation of the shards, each one's rows permuted), the same
 * for a seed and epoch whatever slices it is read in, and differently for
 * another epoch or seed; a limit cuts the list; a pattern that matches
 * nothing and a shard with other lengths are refused with one line naming
 * the file. Each sequence carries its list position in input_ids[0]. */
#include "tests/unit/data_test_support.h" /* first: it sets _POSIX_C_SOURCE */

#include "workloads/bert/ob_bert_shard_set.h"

#define SEQ 8
#define PRED 2
#define N_FILES 3

static const int64_t FILE_ROWS[N_FILES] = {7, 12, 5};
#define TOTAL 24

static char scratch[32];

/* Shard `name` whose row r holds `first + r` as its first token. */
static int write_shard(const char *name, int64_t first, int64_t rows, int seq_len) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    ob_bert_batch b;
    if (ob_bert_batch_alloc(&b, rows, seq_len, PRED)) return 1;
    for (int64_t r = 0; r < rows; r++) {
        for (int t = 0; t < seq_len; t++) {
            b.input_ids[r * seq_len + t] = t == 0 ? (int32_t)(first + r) : 5;
            b.input_mask[r * seq_len + t] = 1;
            b.segment_ids[r * seq_len + t] = t >= seq_len / 2;
        }
        for (int j = 0; j < PRED; j++) {
            b.masked_lm_positions[r * PRED + j] = 1 + j;
            b.masked_lm_ids[r * PRED + j] = 7;
        }
        b.next_sentence_labels[r] = (int32_t)(r % 2);
    }
    char err[512];
    ob_bert_shard_writer *writer;
    int rc = ob_bert_shard_create(path, rows, seq_len, PRED, &writer, err, sizeof err);
    if (!rc) rc = ob_bert_shard_write(writer, 0, rows, &b, err, sizeof err);
    if (!rc) rc = ob_bert_shard_finish(writer, err, sizeof err);
    if (rc) printf("cannot write %s: %s\n", path, err);
    ob_bert_batch_free(&b);
    return rc;
}

/* Reads positions [start, start + n) and returns each one's first token in ids. */
static int read_ids(ob_bert_shard_set *set, bool shuffled, uint64_t seed, int64_t epoch, int64_t start, int64_t n,
                    int32_t *ids) {
    ob_bert_batch b;
    char err[512] = "";
    if (ob_bert_batch_alloc(&b, n, SEQ, PRED)) return 1;
    int rc = ob_bert_shard_set_read(set, shuffled, seed, epoch, start, n, &b, err, sizeof err);
    if (rc) printf("read: %s\n", err);
    for (int64_t i = 0; i < n && !rc; i++) ids[i] = b.input_ids[i * SEQ];
    ob_bert_batch_free(&b);
    return rc;
}

/* Which stored shard position `id` lies in. */
static int file_of(int32_t id) {
    int64_t end = 0;
    for (int f = 0; f < N_FILES; f++)
        if (id < (end += FILE_ROWS[f])) return f;
    return -1;
}

static bool is_permutation(const int32_t *ids, int n) {
    bool seen[TOTAL] = {false};
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= n || seen[ids[i]]) return false;
        seen[ids[i]] = true;
    }
    return true;
}

/* The order runs shard by shard: the shard changes N_FILES - 1 times. */
static int shard_changes(const int32_t *ids, int n) {
    int changes = 0;
    for (int i = 1; i < n; i++) changes += file_of(ids[i]) != file_of(ids[i - 1]);
    return changes;
}

static void test_stored_order(ob_bert_shard_set *set) {
    int32_t ids[TOTAL];
    CHECK(ob_bert_shard_set_rows(set) == TOTAL);
    CHECK(ob_bert_shard_set_files(set) == N_FILES);
    CHECK(ob_bert_shard_set_seq_len(set) == SEQ && ob_bert_shard_set_max_pred(set) == PRED);
    CHECK(read_ids(set, false, 1, 0, 0, TOTAL, ids) == 0);
    bool in_order = true;
    for (int i = 0; i < TOTAL; i++) in_order &= ids[i] == i;
    check(in_order, "stored order: the files' rows one after another");
    int32_t middle[6];
    CHECK(read_ids(set, false, 1, 0, 5, 6, middle) == 0); /* across the first two shards */
    check(middle[0] == 5 && middle[5] == 10, "a stored-order slice across two shards");
}

static void test_epochs(ob_bert_shard_set *set) {
    int32_t epoch0[TOTAL], again[TOTAL], epoch1[TOTAL], seed2[TOTAL];
    CHECK(read_ids(set, true, 1, 0, 0, TOTAL, epoch0) == 0);
    check(is_permutation(epoch0, TOTAL), "an epoch visits every sequence once");
    check(shard_changes(epoch0, TOTAL) == N_FILES - 1, "an epoch reads shard by shard");
    bool stored = true;
    for (int i = 0; i < TOTAL; i++) stored &= epoch0[i] == i;
    check(!stored, "an epoch is shuffled");
    /* The same epoch in slices of 5 (as ranks and batches read it), after another epoch was read. */
    CHECK(read_ids(set, true, 1, 1, 0, TOTAL, epoch1) == 0);
    for (int start = 0; start < TOTAL; start += 5)
        CHECK(read_ids(set, true, 1, 0, start, start + 5 <= TOTAL ? 5 : TOTAL - start, again + start) == 0);
    check(memcmp(epoch0, again, sizeof epoch0) == 0, "the same seed and epoch: the same order, in any slices");
    check(is_permutation(epoch1, TOTAL) && memcmp(epoch0, epoch1, sizeof epoch0) != 0,
          "another epoch: another permutation");
    CHECK(read_ids(set, true, 2, 0, 0, TOTAL, seed2) == 0);
    check(is_permutation(seed2, TOTAL) && memcmp(epoch0, seed2, sizeof epoch0) != 0,
          "another seed: another permutation");
}

static void test_limit(void) {
    char err[512] = "";
    ob_bert_shard_set *set = NULL;
    CHECK(ob_bert_shard_set_open(scratch, "train_*.h5", 10, &set, err, sizeof err) == 0);
    if (!set) return;
    check(ob_bert_shard_set_rows(set) == 10 && ob_bert_shard_set_files(set) == 2,
          "limit 10: the first shard and 3 rows of the second");
    int32_t ids[10];
    CHECK(read_ids(set, true, 1, 0, 0, 10, ids) == 0);
    check(is_permutation(ids, 10), "limit 10: an epoch visits the first 10 sequences once");
    CHECK(ob_bert_shard_set_read(set, true, 1, 0, 8, 3, &(ob_bert_batch){0}, err, sizeof err) == 2);
    check(strstr(err, "positions [8, 11) requested, expected within [0, 10)") != NULL,
          "positions past the end are refused before anything is read");
    ob_bert_shard_set_close(set);
}

static void test_refusals(void) {
    char err[512] = "";
    ob_bert_shard_set *set = NULL;
    CHECK(ob_bert_shard_set_open(scratch, "part_*.hdf5", 0, &set, err, sizeof err) == 2 && set == NULL);
    check(strstr(err, "part_*.hdf5: no shard matches") != NULL, "no match: named");
    CHECK(write_shard("other_0.h5", 0, 4, SEQ) == 0 && write_shard("other_1.h5", 4, 4, 2 * SEQ) == 0);
    CHECK(ob_bert_shard_set_open(scratch, "other_*.h5", 0, &set, err, sizeof err) == 2 && set == NULL);
    check(strstr(err, "other_1.h5: sequences of 16 tokens with 2 predictions, where") != NULL &&
              strchr(err, '\n') == NULL,
          "shards of other lengths: one line naming the file");
    char absolute[256];
    snprintf(absolute, sizeof absolute, "%s/other_0.h5", scratch);
    CHECK(ob_bert_shard_set_open("/nowhere", absolute, 0, &set, err, sizeof err) == 0);
    check(set && ob_bert_shard_set_rows(set) == 4, "an absolute pattern stands alone");
    ob_bert_shard_set_close(set);
}

int main(void) {
    if (!scratch_dir_make(scratch)) return 1;
    int64_t first = 0;
    char name[32];
    for (int f = 0; f < N_FILES; f++) {
        snprintf(name, sizeof name, "train_%03d.h5", f);
        CHECK(write_shard(name, first, FILE_ROWS[f], SEQ) == 0);
        first += FILE_ROWS[f];
    }
    char err[512] = "";
    ob_bert_shard_set *set = NULL;
    CHECK(ob_bert_shard_set_open(scratch, "train_*.h5", 0, &set, err, sizeof err) == 0);
    if (set) {
        test_stored_order(set);
        test_epochs(set);
        ob_bert_shard_set_close(set);
    } else {
        printf("open: %s\n", err);
    }
    test_limit();
    test_refusals();
    scratch_dir_remove(scratch);
    return report_checks();
}
