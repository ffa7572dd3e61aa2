/* `optbench suite`: the command line over ob_suite.h. */
#define _XOPEN_SOURCE 700 /* readlink, realpath */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/ob_cli.h"
#include "harness/ob_suite.h"

/* The templates of the checkout CMake built from; --templates overrides them. */
#ifdef OB_SOURCE_DIR
#define OB_SLURM_TEMPLATE_DIR OB_SOURCE_DIR "/ci/slurm"
#else
#define OB_SLURM_TEMPLATE_DIR "ci/slurm"
#endif

#define ERR_LEN 1024
#define MAX_CLUSTER_FLAGS 16

typedef enum { MODE_RUN, MODE_DRY_RUN, MODE_SUMMARY, MODE_EMIT } suite_mode;

typedef struct {
    const char *file;
    const char *only; /* --only NAMES; NULL: every run */
    suite_mode mode;
    const char *emit_dir, *template_dir;
    char cluster_keys[MAX_CLUSTER_FLAGS][32];
    const char *cluster_values[MAX_CLUSTER_FLAGS];
    int n_cluster;
} suite_args;

/* --emit-sbatch flags, each the [suite] key with - for _. */
static const char *const cluster_flags[] = {"--account",        "--partition",     "--time",     "--gpus-per-node",
                                            "--ranks-per-node", "--cpus-per-task", "--launcher", "--launcher-flags"};

static void print_suite_usage(FILE *out) {
    fprintf(out, "usage: optbench suite FILE.ini             run every run not yet final, one at a time\n"
                 "       optbench suite FILE.ini --dry-run   print each run's command (or why it is skipped)\n"
                 "       optbench suite FILE.ini --summary   print each run's status from its HDF5 file\n"
                 "       optbench suite FILE.ini --emit-sbatch DIR [--account A] [--partition P] [--time T]\n"
                 "               [--gpus-per-node G] [--ranks-per-node N] [--cpus-per-task C]\n"
                 "               [--launcher srun|mpirun] [--launcher-flags WORDS] [--templates DIR]\n"
                 "Each form takes --only NAME[,NAME...]: only the runs of those [run NAME] sections\n"
                 "(a NAME may be a pattern such as 'fp16-*').\n"
                 "Exit codes: 0 every run final, 1 a run is not, 2 bad input, 130 stopped by a signal.\n");
}

static bool is_cluster_flag(const char *arg) {
    for (size_t i = 0; i < sizeof cluster_flags / sizeof cluster_flags[0]; i++)
        if (strcmp(arg, cluster_flags[i]) == 0) return true;
    return false;
}

static int set_mode(suite_args *a, suite_mode mode, const char *flag, char *err, size_t err_len) {
    if (a->mode != MODE_RUN) {
        snprintf(err, err_len, "%s: expected only one of --dry-run, --summary and --emit-sbatch", flag);
        return 2;
    }
    a->mode = mode;
    return 0;
}

/* The value after the flag at argv[*i], or NULL with err set. */
static const char *flag_value(int argc, char **argv, int *i, char *err, size_t err_len) {
    if (*i + 1 < argc) return argv[++*i];
    snprintf(err, err_len, "%s: expected a value after the flag", argv[*i]);
    return NULL;
}

static int parse_arg(int argc, char **argv, int *i, suite_args *a, char *err, size_t err_len) {
    const char *arg = argv[*i];
    if (strcmp(arg, "--dry-run") == 0) return set_mode(a, MODE_DRY_RUN, arg, err, err_len);
    if (strcmp(arg, "--summary") == 0) return set_mode(a, MODE_SUMMARY, arg, err, err_len);
    if (strcmp(arg, "--only") == 0) {
        if (a->only) {
            snprintf(err, err_len, "--only: expected it once (names are comma-separated)");
            return 2;
        }
        a->only = flag_value(argc, argv, i, err, err_len);
        return a->only ? 0 : 2;
    }
    bool is_emit = strcmp(arg, "--emit-sbatch") == 0, is_templates = strcmp(arg, "--templates") == 0;
    if (is_emit || is_templates || is_cluster_flag(arg)) {
        const char *value = flag_value(argc, argv, i, err, err_len);
        if (!value) return 2;
        if (is_emit) {
            a->emit_dir = value;
            return set_mode(a, MODE_EMIT, arg, err, err_len);
        }
        if (is_templates) {
            a->template_dir = value;
            return 0;
        }
        char *key = a->cluster_keys[a->n_cluster];
        snprintf(key, sizeof a->cluster_keys[0], "%s", arg + 2);
        for (char *p = key; *p; p++)
            if (*p == '-') *p = '_';
        a->cluster_values[a->n_cluster++] = value;
        return 0;
    }
    if (arg[0] == '-' || a->file) {
        snprintf(err, err_len, "unexpected argument %s (see optbench suite --help)", arg);
        return 2;
    }
    a->file = arg;
    return 0;
}

static int parse_suite_args(int argc, char **argv, suite_args *a, char *err, size_t err_len) {
    for (int i = 2; i < argc; i++) {
        if (a->n_cluster == MAX_CLUSTER_FLAGS) {
            snprintf(err, err_len, "too many cluster flags");
            return 2;
        }
        int rc = parse_arg(argc, argv, &i, a, err, err_len);
        if (rc) return rc;
    }
    if (!a->file) {
        snprintf(err, err_len, "expected a suite file (see optbench suite --help)");
        return 2;
    }
    if (a->mode != MODE_EMIT && (a->n_cluster > 0 || a->template_dir)) {
        snprintf(err, err_len, "cluster flags and --templates only apply to --emit-sbatch");
        return 2;
    }
    return 0;
}

/* The launcher of the MPI this binary was built with while it is there,
 * else mpirun from PATH. */
static const char *mpi_launcher(void) {
#ifdef OB_MPIEXEC
    if (access(OB_MPIEXEC, X_OK) == 0) return OB_MPIEXEC;
#endif
    return "mpirun";
}

/* The runs that are not final yet, by index. */
static int *pending_runs(const ob_suite *suite, int *count) {
    int *runs = malloc((size_t)suite->n_runs * sizeof *runs);
    *count = 0;
    for (int i = 0; runs && i < suite->n_runs; i++)
        if (ob_suite_read_outcome(suite->runs[i].out_path).state != OB_SUITE_FINAL) runs[(*count)++] = i;
    return runs;
}

static int emit_pending(const ob_suite *suite, const suite_args *a, const ob_suite_programs *programs,
                        const int *pending, int n_pending, char *err, size_t err_len) {
    char dir[PATH_MAX], workdir[PATH_MAX];
    int rc = ob_suite_make_dirs(a->emit_dir, false, err, err_len);
    if (rc) return rc;
    if (!realpath(a->emit_dir, dir) || !getcwd(workdir, sizeof workdir)) {
        snprintf(err, err_len, "%s: cannot resolve the directory", a->emit_dir);
        return 2;
    }
    ob_suite_sbatch_options options = {.dir = dir,
                                       .template_dir = a->template_dir ? a->template_dir : OB_SLURM_TEMPLATE_DIR,
                                       .workdir = workdir,
                                       .suite_file = a->file,
                                       .programs = *programs,
                                       .runs = pending,
                                       .n_runs = n_pending,
                                       .only = a->only};
    rc = ob_suite_emit_sbatch(suite, &options, err, err_len);
    if (!rc)
        printf("%d of %d runs as Slurm job arrays in %s; submit with %s/submit.sh\n", n_pending, suite->n_runs, dir,
               dir);
    return rc;
}

/* Arrays for the runs that are not final yet, as a local suite would run. */
static int emit(ob_suite *suite, const suite_args *a, const ob_suite_programs *programs, char *err, size_t err_len) {
    for (int i = 0; i < a->n_cluster; i++) {
        int rc = ob_suite_set_cluster(suite, a->cluster_keys[i], a->cluster_values[i], err, err_len);
        if (rc) return rc;
    }
    int n_pending = 0;
    int *pending = pending_runs(suite, &n_pending);
    if (!pending) {
        snprintf(err, err_len, "out of memory");
        return 1;
    }
    int rc = 0;
    if (n_pending > 0)
        rc = emit_pending(suite, a, programs, pending, n_pending, err, err_len);
    else
        printf("every run of %s is final: nothing to submit\n", suite->name);
    free(pending);
    return rc;
}

static int execute(ob_suite *suite, const suite_args *a, char *err, size_t err_len) {
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length < 0) {
        snprintf(err, err_len, "cannot find this program's path in /proc/self/exe");
        return 1;
    }
    self[length] = '\0';
    ob_suite_programs programs = {.optbench = self, .mpirun = mpi_launcher()};
    switch (a->mode) {
    case MODE_DRY_RUN:
        return ob_suite_print_plan(suite, &programs, stdout);
    case MODE_SUMMARY:
        return ob_suite_print_summary(suite, stdout) ? 0 : 1;
    case MODE_EMIT:
        return emit(suite, a, &programs, err, err_len);
    case MODE_RUN:
        break;
    }
    return ob_suite_run_local(suite, &programs, err, err_len);
}

int ob_suite_main(int argc, char **argv) {
    if (ob_cli_asks_help(argc, argv, 2)) {
        print_suite_usage(stdout);
        return 0;
    }
    char err[ERR_LEN] = "";
    suite_args args = {0};
    ob_suite *suite = NULL;
    int rc = parse_suite_args(argc, argv, &args, err, sizeof err);
    if (!rc) rc = ob_suite_load(args.file, &suite, err, sizeof err);
    if (!rc && args.only) rc = ob_suite_select(suite, args.only, err, sizeof err);
    if (!rc) rc = execute(suite, &args, err, sizeof err);
    if (rc && err[0]) fprintf(stderr, "optbench: suite: %s\n", err);
    ob_suite_free(suite);
    return rc;
}
