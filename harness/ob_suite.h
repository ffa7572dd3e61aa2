/* ob_suite: suite files, the grids of runs they expand into, and the three
 * ways of running a grid (DESIGN.md section 8): locally with resume, as a
 * dry run, and as Slurm job arrays.
 *
 * A suite file is INI (read by ob_ini.h, as config files are):
 *
 *   [suite]
 *   name = workstation          ; default: the file name without .ini
 *   out_dir = runs/workstation  ; default: runs/<name>, relative to the working directory
 *   threads = 2                 ; --threads of every run; default: none given (all cores)
 *   seeds = 1, 2, 3             ; grid keys and settings here are defaults for every run
 *   ; cluster settings, used by --emit-sbatch only (flags of the same name override them):
 *   account = proj42
 *   partition = gpu
 *   time = 02:00:00
 *   gpus_per_node = 4           ; one GPU per rank, at most this many per node
 *   ranks_per_node = 4          ; default: gpus_per_node, else every rank on one node
 *   cpus_per_task = 8           ; per rank, = OMP threads; default: threads, else 1
 *   launcher = srun             ; srun (default) or mpirun
 *   launcher_flags = --mpi=pmix ; extra words after the launcher
 *   modules = gcc, openmpi      ; module load ... in every job
 *   env = NCCL_IB_HCA=mlx5_0    ; export ... in every job, comma-separated
 *
 *   [run kfac]                  ; one [run NAME] per family of runs
 *   optimizer = sgd
 *   precond = none, kfac        ; grid keys take comma-separated lists
 *   ranks = 1, 2
 *   kfac.damping = 0.003 | 0.001          ; any config key; alternatives split by |
 *   schedule.milestones = 10,20 | 15,25   ; (config values may hold commas)
 *
 * Grid keys: workload, preset, optimizer, precond, precision, loss_scale,
 * seeds, ranks (each an `optbench run` flag; ranks > 1 run under MPI). Any
 * other `section.key` is a config setting (optbench list keys), passed as
 * --set section.key=value; its alternatives are separated by `|`, so a value
 * cannot contain `|`. A run section's keys replace the [suite] defaults of the
 * same key. The run.* keys the suite sets itself (the grid keys, out, force,
 * threads, resume) cannot be settings. Values are plain: no quotes.
 *
 * Expansion: sections in file order; within a section the cartesian product
 * of workload, preset, optimizer, precond, precision, loss_scale, the
 * settings (suite's, then the section's, in file order), ranks and seeds, the
 * last varying fastest. seeds defaults to 1 and ranks to 1.
 *
 * Run ids name what varies within the section, then the seed and the rank
 * count: `kfac-damping0.003-s1-r2` in the [run kfac] above (a setting's
 * alternative: the key's last part and the value), `s1-r1` when nothing but
 * the seed varies. Characters
 * other than letters, digits and . + _ - become _. The result file is
 * <out_dir>/<run name>/<id>.h5, so adding a seed or a rank count keeps the
 * ids of the runs already done.
 *
 * Every check is done at load: unknown keys and sections, empty lists or
 * items, bad values (validated as the config validates them), duplicate keys
 * or run names, ids that collide. One line "FILE:LINE: what was expected",
 * status 2.
 *
 * A run is final when its HDF5 file's status is converged, budget_exhausted
 * or diverged; a missing file, or one that says running or aborted (or cannot
 * be read), is run again (with --force when the file exists).
 */
#ifndef OB_SUITE_H
#define OB_SUITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define OB_SUITE_NAME_MAX 64
#define OB_SUITE_VALUE_MAX 200 /* libinih's longest line */
#define OB_SUITE_PATH_MAX 1024
#define OB_SUITE_MAX_RANKS (1 << 20)

typedef enum { OB_SUITE_SRUN, OB_SUITE_MPIRUN } ob_suite_launcher;

/* The [suite] keys that only job scripts use; 0 / "" = not given. */
typedef struct {
    char account[OB_SUITE_VALUE_MAX], partition[OB_SUITE_VALUE_MAX], time[OB_SUITE_VALUE_MAX];
    int gpus_per_node;  /* one GPU per rank, at most this many on a node */
    int ranks_per_node; /* 0: gpus_per_node when > 0, else all ranks on one node */
    int cpus_per_task;  /* 0: threads when given, else 1 */
    ob_suite_launcher launcher;
    char launcher_flags[OB_SUITE_VALUE_MAX], modules[OB_SUITE_VALUE_MAX], env[OB_SUITE_VALUE_MAX];
} ob_suite_cluster;

typedef struct {
    char run_name[OB_SUITE_NAME_MAX]; /* the section's NAME */
    char id[OB_SUITE_PATH_MAX];
    char out_path[OB_SUITE_PATH_MAX];
    int ranks;
    /* The `optbench run` flags that make this run, without --out, --threads
     * and --force (how those are given depends on where it runs). */
    char **args;
    int n_args;
} ob_suite_run;

typedef struct {
    char name[OB_SUITE_NAME_MAX];
    char out_dir[OB_SUITE_PATH_MAX];
    int threads; /* 0 = not given */
    ob_suite_cluster cluster;
    ob_suite_run *runs;
    int n_runs;
} ob_suite;

/* Reads and expands a suite file. 0, 2 on bad input (one line in err), 1
 * when memory ran out. */
int ob_suite_load(const char *path, ob_suite **out, char *err, size_t err_len);
void ob_suite_free(ob_suite *suite);
/* Keeps only the runs of the [run NAME] sections that a name in names
 * matches: comma-separated section names or fnmatch(3) patterns (fp16-*).
 * Every later step (dry run, local run with resume, summary, job arrays)
 * then sees only those. 0; 2 when names has an empty item or a name matches
 * no section (one line in err, naming it and listing the suite's run
 * names); 1 when memory ran out. */
int ob_suite_select(ob_suite *suite, const char *names, char *err, size_t err_len);
/* Sets a cluster key (account, partition, time, gpus_per_node,
 * ranks_per_node, cpus_per_task, launcher, launcher_flags, modules, env) with
 * the file's validation: the --emit-sbatch flags go through here. 0 or 2. */
int ob_suite_set_cluster(ob_suite *suite, const char *key, const char *value, char *err, size_t err_len);

/* ---- commands (suite_command.c) ---- */

typedef struct {
    const char *optbench; /* this binary */
    const char *mpirun;   /* the MPI launcher for runs with ranks > 1 */
} ob_suite_programs;

/* The local command of a run, NULL-terminated:
 *   [mpirun -np R --oversubscribe] optbench run ARGS --out PATH [--threads T] [--force]
 * NULL when memory ran out; free with ob_suite_command_free. */
char **ob_suite_command(const ob_suite *suite, const ob_suite_run *run, const ob_suite_programs *programs, bool force);
void ob_suite_command_free(char **argv);

/* ---- run files (suite_status.c) ---- */

typedef enum { OB_SUITE_MISSING, OB_SUITE_UNFINISHED, OB_SUITE_FINAL } ob_suite_state;

typedef struct {
    ob_suite_state state;
    char status[32];         /* the file's status, "missing" or "unreadable" */
    double epochs_to_target; /* NaN when not reached or unknown */
    double train_s;          /* last /train row's clock; NaN when none */
} ob_suite_outcome;

/* What the run file at path says; never fails (a bad file is unfinished). */
ob_suite_outcome ob_suite_read_outcome(const char *path);
/* Prints one row per run (run/id, status, epochs_to_target, train_s) and
 * returns whether every run is final. */
bool ob_suite_print_summary(const ob_suite *suite, FILE *out);

/* ---- local runs (suite_run.c) ---- */

/* Prints one line per run: "run/id: COMMAND" with the exact command a local
 * run would execute now, or "run/id: skip (STATUS)" for a final one. 0, or 1
 * when memory ran out. */
int ob_suite_print_plan(const ob_suite *suite, const ob_suite_programs *programs, FILE *out);
/* Runs every run that is not final, one at a time, as a child process, then
 * prints the summary. SIGINT/SIGTERM stop the current child and the suite.
 * Returns 0 when every run is final, 1 when one is not, 130 when stopped by a
 * signal, 2 with err set when a result directory cannot be made. */
int ob_suite_run_local(const ob_suite *suite, const ob_suite_programs *programs, char *err, size_t err_len);

/* ---- Slurm job arrays (suite_sbatch.c) ---- */

typedef struct {
    const char *dir;          /* where the scripts go; created if needed */
    const char *template_dir; /* ci/slurm */
    const char *workdir;      /* the jobs' working directory (out_dir is relative to it) */
    const char *suite_file;   /* copied into dir: the collect job reads it */
    ob_suite_programs programs;
    const int *runs; /* indices of the runs to submit, ascending (the CLI: those not final) */
    int n_runs;
    const char *only; /* the --only the suite was selected with, for the collect job; NULL: none */
} ob_suite_sbatch_options;

/* Writes into dir one array job per rank count (array-r<R>.sbatch, one task
 * per run), collect.sbatch (after all arrays, whatever their outcome: the
 * suite's summary table into summary.txt), submit.sh and a copy of the suite
 * file. 0, 2 on bad input (a template with an unknown placeholder, an
 * unwritable dir). */
int ob_suite_emit_sbatch(const ob_suite *suite, const ob_suite_sbatch_options *options, char *err, size_t err_len);

/* ---- paths (suite_paths.c) ---- */

/* mkdir -p of path's directory (with parent_only) or of path itself. 0 or 2. */
int ob_suite_make_dirs(const char *path, bool parent_only, char *err, size_t err_len);

/* `optbench suite FILE [--dry-run | --summary | --emit-sbatch DIR ...] [--only NAMES]`; the exit code. */
int ob_suite_main(int argc, char **argv);

#endif
