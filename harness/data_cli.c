/* `optbench data bert`: the command line over workloads/bert (corpus,
 * WordPiece, examples, shards). */
#define _POSIX_C_SOURCE 200809L

#include "harness/ob_data_cli.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/h5_attributes.h"
#include "harness/ob_fail.h"
#include "ob_version.h"
#include "workloads/bert/ob_bert_corpus.h"
#include "workloads/bert/ob_bert_data.h"
#include "workloads/bert/ob_bert_shard.h"
#include "workloads/bert/ob_wordpiece.h"

#define ERR_LEN 1024
#define PATH_LEN 4096
/* Rows per read when checking a shard. */
#define CHECK_ROWS 256
/* Where Debian's dict-gcide puts the dictionary (dpkg -L dict-gcide);
 * ci/setup installs it. */
#define DEFAULT_CORPUS "/usr/share/dictd/gcide.dict.dz"
/* The workstation vocabulary: 8192 WordPieces keep the embedding (2.1M
 * parameters at hidden 256) below the encoder's size. */
#define DEFAULT_VOCAB_SIZE 8192

static const char DATA_USAGE[] =
    "usage: optbench data bert [--corpus PATH ...] --out DIR [--vocab vocab.txt | --vocab-size N]\n"
    "                          [--seq N] [--max-pred N] [--dupe N] [--eval-frac F] [--seed N]\n"
    "                          [--shards K] [--max-docs N] [--force]\n"
    "       optbench data bert --check SHARD.h5 ...\n"
    "  Makes BERT pretraining shards (NVIDIA/MLPerf HDF5 layout) from plain text: DIR/vocab.txt,\n"
    "  DIR/train_000.h5 ... and DIR/eval.h5, each written under a temporary name and renamed when\n"
    "  all are complete (vocab.txt last). --corpus: text files (blank lines end documents), dictd\n"
    "  .dict.dz files (one document per entry) or directories of them; default:\n"
    "  " DEFAULT_CORPUS " (Debian's dict-gcide, installed by ci/setup).\n"
    "  The WordPiece vocabulary (default --vocab-size 8192) is trained on every document read, or\n"
    "  loaded with --vocab. --eval-frac (default 0.05) of the documents form eval.h5. Defaults:\n"
    "  --seq 128 --max-pred 20 --dupe 5 --seed 1 --shards 1; --max-docs reads only the first N\n"
    "  documents. --check validates shards made anywhere with optbench's reader.\n";

typedef struct {
    const char **corpus, **check;
    int n_corpus, n_check;
    const char *out, *vocab;
    int64_t vocab_size, seq_len, max_pred, dupe, seed, shards, max_docs;
    double eval_frac;
    bool force, vocab_size_given, help;
} data_options;

/* ---- flags ---- */

static int parse_count(const char *flag, const char *value, int64_t min, int64_t max, int64_t *out, char *err,
                       size_t err_len) {
    char *end;
    errno = 0;
    long long parsed = strtoll(value, &end, 10);
    if (end == value || *end || errno || parsed < min || parsed > max)
        return ob_fail(err, err_len, "%s: expected a whole number in [%lld, %lld], got \"%s\"", flag, (long long)min,
                       (long long)max, value);
    *out = parsed;
    return 0;
}

static int parse_eval_frac(const char *value, double *out, char *err, size_t err_len) {
    char *end;
    double parsed = strtod(value, &end);
    if (end == value || *end || !(parsed > 0 && parsed < 1))
        return ob_fail(err, err_len, "--eval-frac: expected a fraction in (0, 1), got \"%s\"", value);
    *out = parsed;
    return 0;
}

/* The values after argv[*i] up to the next flag. */
static int parse_paths(int argc, char **argv, int *i, const char **paths, int *n, char *err, size_t err_len) {
    const char *flag = argv[*i];
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) paths[(*n)++] = argv[++*i];
    return *n > 0 ? 0 : ob_fail(err, err_len, "%s: expected one or more paths after the flag", flag);
}

/* A flag taking a number; 1 when consumed, 0 when not one, -2 on bad input. */
static int parse_count_flag(int argc, char **argv, int *i, data_options *o, char *err, size_t err_len) {
    const struct {
        const char *flag;
        int64_t *value, min, max;
    } counts[] = {
        {"--vocab-size", &o->vocab_size, 1, INT32_MAX},
        {"--seq", &o->seq_len, 5, 65536},
        {"--max-pred", &o->max_pred, 1, 65536},
        {"--dupe", &o->dupe, 1, 1000},
        {"--seed", &o->seed, 0, INT64_MAX},
        {"--shards", &o->shards, 1, 100000},
        {"--max-docs", &o->max_docs, 1, INT64_MAX},
    };
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        if (strcmp(argv[*i], counts[k].flag) != 0) continue;
        if (*i + 1 >= argc) {
            ob_fail(err, err_len, "%s: expected a value after the flag", argv[*i]);
            return -2;
        }
        if (k == 0) o->vocab_size_given = true;
        const char *value = argv[++*i];
        int rc = parse_count(counts[k].flag, value, counts[k].min, counts[k].max, counts[k].value, err, err_len);
        return rc ? -2 : 1;
    }
    return 0;
}

static int parse_flag(int argc, char **argv, int *i, data_options *o, char *err, size_t err_len) {
    const char *flag = argv[*i];
    int counted = parse_count_flag(argc, argv, i, o, err, err_len);
    if (counted) return counted < 0 ? 2 : 0;
    if (strcmp(flag, "--corpus") == 0) return parse_paths(argc, argv, i, o->corpus, &o->n_corpus, err, err_len);
    if (strcmp(flag, "--check") == 0) return parse_paths(argc, argv, i, o->check, &o->n_check, err, err_len);
    bool is_force = strcmp(flag, "--force") == 0, is_help = strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0;
    o->force |= is_force;
    o->help |= is_help;
    if (is_force || is_help) return 0;
    const char **slot = strcmp(flag, "--out") == 0 ? &o->out : strcmp(flag, "--vocab") == 0 ? &o->vocab : NULL;
    bool is_eval_frac = strcmp(flag, "--eval-frac") == 0;
    if (!slot && !is_eval_frac)
        return ob_fail(err, err_len, "data bert: unknown flag %s (see optbench data bert --help)", flag);
    if (*i + 1 >= argc) return ob_fail(err, err_len, "%s: expected a value after the flag", flag);
    if (is_eval_frac) return parse_eval_frac(argv[++*i], &o->eval_frac, err, err_len);
    *slot = argv[++*i];
    return 0;
}

static int check_combination(const data_options *o, char *err, size_t err_len) {
    if (o->n_check > 0 && (o->out || o->n_corpus > 0 || o->vocab))
        return ob_fail(err, err_len, "--check takes shard files only, not --out, --corpus or --vocab");
    if (o->n_check > 0) return 0;
    if (!o->out) return ob_fail(err, err_len, "data bert: expected --out DIR (or --check SHARD.h5 ...)");
    if (o->vocab && o->vocab_size_given)
        return ob_fail(err, err_len, "--vocab and --vocab-size: give one (a loaded vocabulary has its own size)");
    if (o->max_pred > o->seq_len)
        return ob_fail(err, err_len, "--max-pred %lld: expected at most --seq (%lld)", (long long)o->max_pred,
                       (long long)o->seq_len);
    return 0;
}

/* ---- the output directory ---- */

static bool directory_is_empty(const char *dir) {
    DIR *listing = opendir(dir);
    if (!listing) return false;
    struct dirent *entry;
    bool empty = true;
    while (empty && (entry = readdir(listing)))
        empty = strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0;
    closedir(listing);
    return empty;
}

/* *created: whether the directory is new (and so is removed on failure). */
static int prepare_out_dir(const char *dir, bool force, bool *created, char *err, size_t err_len) {
    struct stat info;
    *created = false;
    if (stat(dir, &info) != 0) {
        if (mkdir(dir, 0777) != 0)
            return ob_fail(err, err_len, "--out %s: cannot create the directory: %s", dir, strerror(errno));
        *created = true;
        return 0;
    }
    if (!S_ISDIR(info.st_mode)) return ob_fail(err, err_len, "--out %s: exists and is not a directory", dir);
    if (access(dir, W_OK) != 0) return ob_fail(err, err_len, "--out %s: not writable", dir);
    if (!force && !directory_is_empty(dir))
        return ob_fail(err, err_len, "--out %s: exists and is not empty (use --force to write into it)", dir);
    return 0;
}

/* The outputs: vocab.txt, train_000.h5 ..., eval.h5, each with the
 * temporary name it is written under. */
typedef struct {
    char final[PATH_LEN], partial[PATH_LEN];
} output_file;

static int name_output(const char *dir, const char *name, output_file *file, char *err, size_t err_len) {
    if (snprintf(file->final, PATH_LEN, "%s/%s", dir, name) >= PATH_LEN ||
        snprintf(file->partial, PATH_LEN, "%s/.%s.partial", dir, name) >= PATH_LEN)
        return ob_fail(err, err_len, "--out %s: path too long", dir);
    return 0;
}

/* ---- making the shards ---- */

static int read_corpus(const data_options *o, ob_bert_corpus *corpus, char *err, size_t err_len) {
    corpus->max_docs = o->max_docs;
    if (o->n_corpus == 0 && access(DEFAULT_CORPUS, R_OK) != 0)
        return ob_fail(err, err_len,
                       "no --corpus given and the default corpus " DEFAULT_CORPUS
                       " is missing: install dict-gcide (ci/setup does)");
    const char *const default_corpus[] = {DEFAULT_CORPUS};
    const char *const *paths = o->n_corpus ? o->corpus : default_corpus;
    int n = o->n_corpus ? o->n_corpus : 1;
    for (int i = 0; i < n; i++) {
        int rc = ob_bert_corpus_add(corpus, paths[i], err, err_len);
        if (rc) return rc;
    }
    if (corpus->docs.count < 2)
        return ob_fail(err, err_len,
                       "the corpus (%s%s) holds %lld document%s with text; at least 2 are needed "
                       "to hold some out for evaluation",
                       paths[0], n > 1 ? ", ..." : "", (long long)corpus->docs.count,
                       corpus->docs.count == 1 ? "" : "s");
    return 0;
}

static int train_vocabulary(const ob_bert_corpus *corpus, int32_t vocab_size, ob_wordpiece **vocab, char *err,
                            size_t err_len) {
    ob_wordpiece_trainer *trainer;
    int rc = ob_wordpiece_trainer_new(&trainer);
    for (int64_t s = 0; !rc && s < corpus->sentences.count; s++) {
        const char *text = ob_bert_corpus_sentence(corpus, s);
        rc = ob_wordpiece_trainer_add_text(trainer, text, strlen(text));
    }
    if (!rc) rc = ob_wordpiece_train(trainer, vocab_size, vocab, err, err_len);
    ob_wordpiece_trainer_free(trainer);
    return rc;
}

/* The examples of both splits. */
typedef struct {
    ob_bert_split split;
    ob_bert_examples *train, *eval;
} split_examples;

static int make_split_examples(const data_options *o, const ob_bert_documents *docs, const ob_wordpiece *vocab,
                               split_examples *out, char *err, size_t err_len) {
    ob_bert_example_options options =
        ob_bert_example_defaults(ob_wordpiece_size(vocab), ob_wordpiece_special_ids(vocab));
    options.seq_len = (int)o->seq_len;
    options.max_pred = (int)o->max_pred;
    options.dupe_factor = (int)o->dupe;
    options.seed = (uint64_t)o->seed;
    int rc = ob_bert_split_documents(docs->docs.count, o->eval_frac, options.seed, &out->split);
    if (!rc)
        rc = ob_bert_examples_make(docs, out->split.train, out->split.n_train, OB_BERT_SPLIT_TRAIN, &options,
                                   &out->train, err, err_len);
    if (!rc)
        rc = ob_bert_examples_make(docs, out->split.eval, out->split.n_eval, OB_BERT_SPLIT_EVAL, &options, &out->eval,
                                   err, err_len);
    if (!rc && ob_bert_examples_count(out->train) < o->shards)
        rc = ob_fail(err, err_len, "%lld training sequences cannot fill %lld shards (--shards, or a larger corpus)",
                     (long long)ob_bert_examples_count(out->train), (long long)o->shards);
    if (!rc && ob_bert_examples_count(out->eval) == 0)
        rc = ob_fail(err, err_len, "the %lld evaluation documents make no sequence (--eval-frac, or a larger corpus)",
                     (long long)out->split.n_eval);
    return rc;
}

/* Where the shard came from, as root attributes (no time: the same
 * command gives the same bytes). */
static int stamp_shard(const char *path, const data_options *o, const char *split, int32_t vocab_size, char *err,
                       size_t err_len) {
    hid_t file;
    H5E_BEGIN_TRY { file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT); }
    H5E_END_TRY
    int failed = file < 0;
    if (!failed)
        failed = ob_h5_write_string_attribute(file, "optbench_version", OB_VERSION) ||
                 ob_h5_write_string_attribute(file, "git_commit", OB_GIT_COMMIT) ||
                 ob_h5_write_string_attribute(file, "split", split) ||
                 ob_h5_write_int_attribute(file, "seed", o->seed) ||
                 ob_h5_write_int_attribute(file, "dupe_factor", o->dupe) ||
                 ob_h5_write_int_attribute(file, "vocab_size", vocab_size);
    if (file >= 0 && H5Fclose(file) < 0) failed = 1;
    return failed ? ob_fail(err, err_len, "%s: cannot write its provenance attributes", path) : 0;
}

static int write_shard(const ob_bert_examples *examples, int64_t first, int64_t n, const output_file *file,
                       const data_options *o, const char *split, int32_t vocab_size, char *err, size_t err_len) {
    int rc = ob_bert_examples_write_shard(examples, first, n, file->partial, err, err_len);
    return rc ? rc : stamp_shard(file->partial, o, split, vocab_size, err, err_len);
}

/* Every output under its temporary name: shard k of K takes an equal
 * share of the shuffled training examples. */
static int write_outputs(const data_options *o, const ob_wordpiece *vocab, const split_examples *examples,
                         const output_file *files, char *err, size_t err_len) {
    int32_t vocab_size = ob_wordpiece_size(vocab);
    int64_t n_train = ob_bert_examples_count(examples->train);
    int rc = ob_wordpiece_save(vocab, files[0].partial, err, err_len);
    for (int64_t k = 0; !rc && k < o->shards; k++) {
        int64_t first = n_train * k / o->shards, next = n_train * (k + 1) / o->shards;
        rc = write_shard(examples->train, first, next - first, &files[1 + k], o, "train", vocab_size, err, err_len);
    }
    if (!rc)
        rc = write_shard(examples->eval, 0, ob_bert_examples_count(examples->eval), &files[1 + o->shards], o, "eval",
                         vocab_size, err, err_len);
    return rc;
}

/* Shards first, vocab.txt last: a directory with vocab.txt is complete.
 * Training shards a larger --shards left behind are removed (--force). */
static int publish_outputs(const data_options *o, const output_file *files, int n_files, char *err, size_t err_len) {
    for (int i = n_files - 1; i >= 0; i--)
        if (rename(files[i].partial, files[i].final) != 0)
            return ob_fail(err, err_len, "%s: cannot rename into place: %s", files[i].final, strerror(errno));
    for (int64_t k = o->shards;; k++) {
        char stale[PATH_LEN];
        snprintf(stale, sizeof stale, "%s/train_%03lld.h5", o->out, (long long)k);
        if (unlink(stale) != 0) break;
    }
    return 0;
}

static void print_split(const char *name, int64_t n_docs, const ob_bert_examples *examples) {
    double n = (double)ob_bert_examples_count(examples);
    printf("%s: %lld documents, %lld sequences, %lld tokens (%.1f per sequence), %.2f masked per sequence\n", name,
           (long long)n_docs, (long long)n, (long long)ob_bert_examples_tokens(examples),
           (double)ob_bert_examples_tokens(examples) / n, (double)ob_bert_examples_predictions(examples) / n);
}

static int write_and_publish(const data_options *o, const ob_wordpiece *vocab, const split_examples *examples,
                             char *err, size_t err_len) {
    int n_files = (int)o->shards + 2;
    output_file *files = calloc((size_t)n_files, sizeof *files);
    if (!files) return 1;
    int rc = name_output(o->out, "vocab.txt", &files[0], err, err_len);
    for (int k = 0; !rc && k < o->shards; k++) {
        char name[32];
        snprintf(name, sizeof name, "train_%03d.h5", k);
        rc = name_output(o->out, name, &files[1 + k], err, err_len);
    }
    if (!rc) rc = name_output(o->out, "eval.h5", &files[n_files - 1], err, err_len);
    if (!rc) rc = write_outputs(o, vocab, examples, files, err, err_len);
    if (!rc) rc = publish_outputs(o, files, n_files, err, err_len);
    for (int i = 0; rc && i < n_files; i++) unlink(files[i].partial);
    free(files);
    return rc;
}

static int make_shards(const data_options *o, char *err, size_t err_len) {
    ob_bert_corpus corpus = {0};
    ob_bert_documents docs = {0};
    ob_wordpiece *vocab = NULL;
    split_examples examples = {0};
    bool created;
    int rc = prepare_out_dir(o->out, o->force, &created, err, err_len);
    if (!rc) rc = read_corpus(o, &corpus, err, err_len);
    if (!rc)
        rc = o->vocab ? ob_wordpiece_load(o->vocab, &vocab, err, err_len)
                      : train_vocabulary(&corpus, (int32_t)o->vocab_size, &vocab, err, err_len);
    if (!rc) rc = ob_bert_documents_tokenize(&docs, &corpus, vocab);
    if (!rc) rc = make_split_examples(o, &docs, vocab, &examples, err, err_len);
    if (!rc) rc = write_and_publish(o, vocab, &examples, err, err_len);
    if (!rc) {
        printf("corpus: %lld documents, %lld sentences; vocabulary: %d tokens (%s)\n", (long long)corpus.docs.count,
               (long long)corpus.sentences.count, ob_wordpiece_size(vocab), o->vocab ? o->vocab : "trained");
        print_split("train", examples.split.n_train, examples.train);
        print_split("eval", examples.split.n_eval, examples.eval);
        printf("wrote %s/vocab.txt, %lld training shard%s and eval.h5\n", o->out, (long long)o->shards,
               o->shards == 1 ? "" : "s");
    }
    if (rc && created) rmdir(o->out);
    ob_bert_examples_free(examples.train);
    ob_bert_examples_free(examples.eval);
    ob_bert_split_free(&examples.split);
    ob_wordpiece_free(vocab);
    ob_bert_documents_free(&docs);
    ob_bert_corpus_free(&corpus);
    return rc;
}

/* ---- checking shards ---- */

/* Reads every row through the reader (which validates the layout and the
 * masked positions) and summarises the shard. */
static int check_shard(const char *path, char *err, size_t err_len) {
    ob_bert_shard *shard;
    int rc = ob_bert_shard_open(path, &shard, err, err_len);
    if (rc) return rc;
    int64_t rows = ob_bert_shard_rows(shard), seq = ob_bert_shard_seq_len(shard), pred = ob_bert_shard_max_pred(shard);
    ob_bert_batch batch;
    if (ob_bert_batch_alloc(&batch, CHECK_ROWS, (int)seq, (int)pred) != 0) {
        ob_bert_shard_close(shard);
        return 1;
    }
    int64_t tokens = 0, predictions = 0, random_next = 0;
    for (int64_t first = 0; !rc && first < rows; first += CHECK_ROWS) {
        int64_t n = rows - first < CHECK_ROWS ? rows - first : CHECK_ROWS;
        rc = ob_bert_shard_read(shard, first, n, &batch, err, err_len);
        for (int64_t i = 0; !rc && i < n * seq; i++) tokens += batch.input_mask[i] != 0;
        for (int64_t i = 0; !rc && i < n * pred; i++) predictions += batch.masked_lm_ids[i] >= 0;
        for (int64_t i = 0; !rc && i < n; i++) random_next += batch.next_sentence_labels[i] != 0;
    }
    if (!rc)
        printf("%s: %lld sequences of %lld tokens (%.1f real), %.2f of up to %lld predictions, %.1f%% random next\n",
               path, (long long)rows, (long long)seq, (double)tokens / (double)rows, (double)predictions / (double)rows,
               (long long)pred, 100.0 * (double)random_next / (double)rows);
    ob_bert_batch_free(&batch);
    ob_bert_shard_close(shard);
    return rc;
}

static int run_data_bert(int argc, char **argv, char *err, size_t err_len) {
    data_options o = {.corpus = calloc((size_t)argc, sizeof(char *)),
                      .check = calloc((size_t)argc, sizeof(char *)),
                      .vocab_size = DEFAULT_VOCAB_SIZE,
                      .seq_len = 128,
                      .max_pred = 20,
                      .dupe = 5,
                      .seed = 1,
                      .shards = 1,
                      .eval_frac = 0.05};
    int rc = o.corpus && o.check ? 0 : 1;
    for (int i = 3; i < argc && !rc; i++) rc = parse_flag(argc, argv, &i, &o, err, err_len);
    if (!rc && o.help) printf("%s", DATA_USAGE);
    if (!rc && !o.help) rc = check_combination(&o, err, err_len);
    for (int i = 0; !rc && !o.help && i < o.n_check; i++) rc = check_shard(o.check[i], err, err_len);
    if (!rc && !o.help && o.n_check == 0) rc = make_shards(&o, err, err_len);
    free(o.corpus);
    free(o.check);
    return rc;
}

int ob_data_main(int argc, char **argv) {
    char err[ERR_LEN] = "";
    int rc;
    if (argc < 3 || strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        fputs(DATA_USAGE, argc < 3 ? stderr : stdout);
        return argc < 3 ? 2 : 0;
    }
    if (strcmp(argv[2], "bert") == 0)
        rc = run_data_bert(argc, argv, err, sizeof err);
    else
        rc = ob_fail(err, sizeof err, "data: expected a dataset kind (bert), got \"%s\"", argv[2]);
    if (rc && !err[0]) snprintf(err, sizeof err, "data %s: out of memory", argv[2]);
    if (rc) fprintf(stderr, "optbench: %s\n", err);
    return rc;
}
