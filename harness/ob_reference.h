/* ob_reference: reference convergence curves (DESIGN.md section 7) and the
 * run-file records that `optbench reference build` and `optbench check` read.
 *
 * A reference holds N >= OB_REFERENCE_MIN_SEEDS converged seeds of ONE
 * configuration. Every seed must have reached the target: MLPerf's reference
 * convergence points come from converged runs only, and a seed without an
 * epochs-to-target would leave the RCP statistics undefined. Runs of one
 * reference may differ only in these config keys (ob_reference_key_may_differ)
 *   run.seed, run.out, run.force, run.threads, run.log_every,
 *   run.checkpoint_every, run.checkpoint_path, run.resume, dist.bucket_mb
 * and in where and when they ran (machine, commit, date); anything else
 * differing is exit 2 naming the key. world_size must agree too (batch-norm
 * statistics depend on the per-rank batch). Runs being checked may differ
 * from the reference in any config key: check names the differences.
 *
 * File layout, schema 1 (HDF5; strings UTF-8, fixed length like run files):
 *   root attributes
 *     reference_schema_version int64  1
 *     name                     string canonical name (ob_reference_name)
 *     workload preset optimizer precond precision loss_scale
 *     target_metric target_direction            strings, as in the runs
 *     target_value                              float64
 *     world_size global_batch_size n_seeds      int64
 *     config               string  first seed's resolved INI text; the other
 *                                  seeds equal it outside config_free_keys
 *     config_free_keys     string  the keys allowed to differ, space-separated
 *     git_commits          string  distinct commits of the seed runs
 *     created_utc hostname cpu_model optbench_version git_commit
 *                          strings of the build of the reference itself
 *     command              string  the command line that built it
 *   /seeds   compound, one row per seed in the order given:
 *            seed int64, epochs_to_target float64, threads int64,
 *            git_commit hostname cpu_model created_utc source
 *            (variable-length strings: the run's provenance and file name)
 *   /curves  compound, every eval point of every seed, grouped by seed in
 *            /seeds order, epochs ascending within a seed:
 *            seed_index int64 (row of /seeds), epoch float64, metric float64
 * A reference is written under a temporary name and renamed into place, so
 * a half-written one never has the final name.
 *
 * Canonical name: the optimizer, then "+precond" unless precond is none, then
 * "-precision-loss_scale" when loss_scale is not none, or "-precision" when
 * only the precision is not fp32: sgd, sgd+kfac, sgd-fp16, sgd-fp16-dynamic,
 * sgd+kfac-fp32-dynamic. `check` looks a run's reference up at
 * <reference-dir>/<workload>/<preset>/<name>.h5, reference-dir being
 * $OB_REFERENCE_DIR or else the source tree's results/reference.
 *
 * Functions return 0 on success, 2 on bad input (missing, corrupt or
 * mismatched files: one line in err) and 1 when memory ran out.
 */
#ifndef OB_REFERENCE_H
#define OB_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/ob_config.h"

#define OB_REFERENCE_SCHEMA_VERSION 1
#define OB_REFERENCE_MIN_SEEDS 5

/* What a run trained and towards which target: a reference and the runs
 * checked against it must agree in all of it. */
typedef struct {
    char *workload, *preset, *optimizer, *precond, *precision, *loss_scale;
    char *target_metric, *target_direction;
    double target_value;
} ob_run_identity;

/* One run file, as reference build and check read it. */
typedef struct {
    char *path;
    ob_run_identity id;
    char *status, *git_commit, *hostname, *cpu_model, *created_utc;
    ob_config *config; /* the run's resolved config */
    int64_t seed, threads, world_size, global_batch_size;
    double epochs_to_target; /* NaN when the target was not reached */
    int64_t n_eval;
    double *eval_epoch, *eval_metric;
} ob_run_record;

/* Reads and validates (schema v1) a run file; a run still "running" -> 2. */
int ob_run_record_read(const char *path, ob_run_record *out, char *err, size_t err_len);
void ob_run_record_free(ob_run_record *record);

/* 0 when equal; else 2 and "<what_name>: <field> is <x> but <ref_name> has <y>". */
int ob_run_identity_compare(const ob_run_identity *what, const char *what_name, const ob_run_identity *ref,
                            const char *ref_name, char *err, size_t err_len);

/* Keys that may differ between the seeds of one reference: the seed itself,
 * where output and checkpoints go, logging cadence, and settings that change
 * only the order of floating-point sums (threads, allreduce buckets). */
bool ob_reference_key_may_differ(const char *key);
/* Index in ob_config_keys() of the first key at or after `from` whose text
 * differs between a and b and that may not differ; -1 when there is none. */
int ob_reference_next_config_difference(const ob_config *a, const ob_config *b, int from);

/* The canonical name into out; 2 when it does not fit. */
int ob_reference_name(const ob_run_identity *id, char *out, size_t out_len);
/* $OB_REFERENCE_DIR, else <source tree>/results/reference. */
const char *ob_reference_default_dir(void);
/* <dir>/<workload>/<preset>/<name>.h5 into out; dir NULL = the default. */
int ob_reference_path(const char *dir, const ob_run_identity *id, char *out, size_t out_len);

/* One seed's curve; epoch and metric point into the reference's storage. */
typedef struct {
    int64_t seed;
    double epochs_to_target;
    int64_t n_points;
    const double *epoch, *metric; /* epochs ascending */
} ob_reference_seed;

typedef struct {
    ob_run_identity id;
    char *name, *config, *created_utc, *git_commits;
    int n_seeds;
    ob_reference_seed *seeds;
    double *curve_epoch, *curve_metric; /* storage of every seed's points */
} ob_reference;

/* Reads a reference file; a missing file, another kind of file, fewer than
 * OB_REFERENCE_MIN_SEEDS seeds or curves out of order -> 2. */
int ob_reference_read(const char *path, ob_reference *out, char *err, size_t err_len);
void ob_reference_free(ob_reference *ref);

typedef struct {
    const char *out; /* NULL = ob_reference_path(reference_dir, ...) */
    const char *reference_dir;
    bool force;
    const char *command; /* recorded as provenance */
} ob_reference_build_options;

/* Builds a reference from converged runs of one configuration. The path of
 * the written file goes to written (may be NULL). */
int ob_reference_build(const char *const *run_paths, int n_runs, const ob_reference_build_options *options,
                       char *written, size_t written_len, char *err, size_t err_len);

/* Expands arguments into run files: a directory gives its *.h5 files in name
 * order, anything else is taken as a file. An empty directory -> 2. */
int ob_run_paths_expand(char *const *args, int n_args, char ***paths, int *n_paths, char *err, size_t err_len);
void ob_run_paths_free(char **paths, int n_paths);

/* `optbench reference build [--out REF.h5] [--reference-dir DIR] [--force] RUN.h5|DIR ...` */
int ob_reference_main(int argc, char **argv);

#endif
