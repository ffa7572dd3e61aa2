#include "harness/ob_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/ob_check.h"
#include "harness/ob_checkpoint.h"
#include "harness/ob_config.h"
#include "harness/ob_data_cli.h"
#include "harness/ob_plan.h"
#include "harness/ob_report.h"
#include "harness/ob_run.h"
#include "harness/ob_suite.h"
#include "nn/ob_ctx.h"
#include "ob_version.h"
#include "workloads/ob_workload.h"

#define ERR_LEN 1024

/* Each `optbench run` flag is a spelling of one config key. */
typedef struct {
    const char *flag, *key;
    bool takes_value;
} flag_spec;

static const flag_spec run_flags[] = {
    {"--workload", "run.workload", true},     {"--preset", "run.preset", true},
    {"--optimizer", "run.optimizer", true},   {"--precond", "run.precond", true},
    {"--precision", "run.precision", true},   {"--loss-scale", "run.loss_scale", true},
    {"--seed", "run.seed", true},             {"--epochs", "run.epochs", true},
    {"--max-steps", "run.max_steps", true},   {"--target", "run.target", true},
    {"--data", "data.dir", true},             {"--threads", "run.threads", true},
    {"--out", "run.out", true},               {"--force", "run.force", false},
    {"--batch-size", "run.batch_size", true}, {"--checkpoint-every", "run.checkpoint_every", true},
    {"--checkpoint", "run.checkpoint_path", true}, {"--resume", "run.resume", true},
};

/* What the command line said, in order: config files and assignments are
 * replayed over the preset, so later ones win as the user expects. */
typedef struct {
    bool is_file;
    const char *text; /* file path, or "key=value" */
    char owned[512];
} action;

typedef struct {
    action *items;
    int count;
    const char *resume;
    int other_flags;
} run_args;

static void print_usage(FILE *out) {
    fprintf(out,
            "optbench %s - a benchmark suite for deep-learning training optimizers\n\n"
            "usage:\n"
            "  optbench run --workload W --preset P --optimizer O [--seed N] [--epochs N|--max-steps N]\n"
            "               [--target V] [--data DIR|synthetic] [--threads N] [--out FILE.h5] [--force]\n"
            "               [--checkpoint-every N] [--resume CKPT] [--config FILE.ini] [--set sec.key=value]\n"
            "  optbench plan --workload W --preset P --ranks 1,8,64,128 [--precond kfac|dp-kfac]\n"
            "               [--strategies comm-opt,hybrid-opt,mem-opt,dp-kfac] [--steps N] [--per-rank]\n"
            "               [--format md|csv] [run flags, --config, --set]\n"
            "  optbench suite FILE.ini [--dry-run | --summary | --emit-sbatch DIR [cluster flags]] [--only NAMES]\n"
            "               (optbench suite --help)\n"
            "  optbench check RUN.h5|DIR ... [--reference REF.h5] [--reference-dir DIR] [--band-k K] [--abs-tol T]\n"
            "               (exit 0 pass, 1 fail, 2 bad input; optbench check --help)\n"
            "  optbench reference build [--out REF.h5] [--reference-dir DIR] [--force] RUN.h5|DIR ...\n"
            "  optbench reference loo REF.h5 [--band-k K] [--abs-tol T] (each seed against the others)\n"
            "  optbench report RUN.h5|DIR ... [--format md|csv] [--out FILE] [--plot PREFIX] [--baseline NAME]\n"
            "               [--reference-dir DIR] [--papers-dir DIR] (optbench report --help)\n"
            "  optbench data bert [--corpus PATH ...] --out DIR [--vocab-size N | --vocab vocab.txt] [--seed N]\n"
            "               (BERT pretraining shards from plain text; optbench data bert --help)\n"
            "  optbench list [workloads|optimizers|presets|keys]\n"
            "  optbench --version\n\n"
            "Every flag is also a config key (optbench list keys); --set and [section] key = value in\n"
            "a --config file say the same things. Exit codes: 0 done, 1 internal error, 2 bad input,\n"
            "130 aborted by a signal.\n",
            OB_VERSION);
}

static const flag_spec *find_flag(const char *name, size_t name_len) {
    for (size_t i = 0; i < sizeof run_flags / sizeof run_flags[0]; i++)
        if (strlen(run_flags[i].flag) == name_len && strncmp(run_flags[i].flag, name, name_len) == 0)
            return &run_flags[i];
    return NULL;
}

/* Parses one flag at argv[*i] (advancing past its value); 0 or 2. */
static int parse_flag(int argc, char **argv, int *i, run_args *args, char *err, size_t err_len) {
    const char *arg = argv[*i];
    const char *equals = strchr(arg, '=');
    size_t name_len = equals ? (size_t)(equals - arg) : strlen(arg);
    bool is_config = strncmp(arg, "--config", name_len) == 0 && name_len == 8;
    bool is_set = strncmp(arg, "--set", name_len) == 0 && name_len == 5;
    const flag_spec *spec = find_flag(arg, name_len);
    if (!spec && !is_config && !is_set) {
        snprintf(err, err_len, "unknown flag %.*s (see optbench --help)", (int)name_len, arg);
        return 2;
    }
    const char *value = equals ? equals + 1 : NULL;
    if (!value && (is_config || is_set || spec->takes_value)) {
        if (*i + 1 >= argc) {
            snprintf(err, err_len, "%s: expected a value after the flag", arg);
            return 2;
        }
        value = argv[++*i];
    }
    action *a = &args->items[args->count++];
    a->is_file = is_config;
    if (is_config || is_set) {
        a->text = value;
        return 0;
    }
    if (strcmp(spec->key, "run.resume") == 0)
        args->resume = value;
    else
        args->other_flags++;
    snprintf(a->owned, sizeof a->owned, "%s=%s", spec->key, value ? value : "true");
    a->text = a->owned;
    return 0;
}

static int apply_actions(ob_config *config, const run_args *args, char *err, size_t err_len) {
    for (int i = 0; i < args->count; i++) {
        const action *a = &args->items[i];
        int rc = a->is_file ? ob_config_load_ini(config, a->text, err, err_len)
                            : ob_config_set_assignment(config, a->text, err, err_len);
        if (rc) return rc;
    }
    return 0;
}

/* defaults < preset < --config files and flags, in command-line order. */
static int resolve_config(const run_args *args, ob_config **out, char *err, size_t err_len) {
    ob_config *user = ob_config_new(), *config = ob_config_new();
    int rc = (user && config) ? apply_actions(user, args, err, err_len) : 1;
    const ob_workload *workload = rc ? NULL : ob_workload_find(ob_config_get_str(user, "run.workload"));
    const ob_preset *preset = workload ? ob_workload_preset(workload, ob_config_get_str(user, "run.preset")) : NULL;
    if (!rc && !preset) {
        snprintf(err, err_len, "run.preset: workload %s has no preset %s", ob_config_get_str(user, "run.workload"),
                 ob_config_get_str(user, "run.preset"));
        rc = 2;
    }
    for (int i = 0; !rc && preset->settings[i]; i++)
        rc = ob_config_set_assignment(config, preset->settings[i], err, err_len);
    if (!rc) rc = apply_actions(config, args, err, err_len);
    ob_config_free(user);
    if (rc) {
        ob_config_free(config);
        return rc;
    }
    *out = config;
    return 0;
}

/* --resume takes the whole config from the checkpoint, so a resumed run
 * cannot silently differ from the one it continues. */
static int resume_config(const char *path, ob_config **out, char *err, size_t err_len) {
    char *ini = NULL;
    int rc = ob_checkpoint_read_config(path, &ini, err, err_len);
    ob_config *config = rc ? NULL : ob_config_new();
    if (!rc) rc = config ? ob_config_load_ini_text(config, ini, path, err, err_len) : 1;
    if (!rc) rc = ob_config_set(config, "run.resume", path, err, err_len);
    if (!rc) rc = ob_config_set(config, "debug.kill_at_step", "0", err, err_len);
    free(ini);
    if (rc) {
        ob_config_free(config);
        return rc;
    }
    *out = config;
    return 0;
}

static int cmd_run(int argc, char **argv) {
    char err[ERR_LEN] = "";
    run_args args = {.items = calloc((size_t)argc + 1, sizeof(action))};
    if (!args.items) return 1;
    int rc = 0;
    for (int i = 2; i < argc && !rc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage(stdout);
            free(args.items);
            return 0;
        }
        rc = parse_flag(argc, argv, &i, &args, err, sizeof err);
    }
    if (!rc && args.resume && (args.other_flags > 0 || args.count > 1)) {
        snprintf(err, sizeof err, "--resume takes the run's whole config from the checkpoint; give it alone");
        rc = 2;
    }
    ob_config *config = NULL;
    if (!rc)
        rc = args.resume ? resume_config(args.resume, &config, err, sizeof err)
                         : resolve_config(&args, &config, err, sizeof err);
    if (!rc) rc = ob_run_execute(config, err, sizeof err);
    if (rc && err[0]) fprintf(stderr, "optbench: %s\n", err);
    ob_config_free(config);
    free(args.items);
    return rc;
}

/* ---- plan ---- */

/* Comma-separated positive integers into ranks. */
static int parse_ranks(const char *text, ob_plan_options *o, char *err, size_t err_len) {
    const char *p = text;
    o->n_ranks = 0;
    while (*p) {
        char *end;
        long value = strtol(p, &end, 10);
        if (end == p || value < 1 || value > 1 << 20 || (*end && *end != ',') || o->n_ranks == OB_PLAN_MAX_RANKS) {
            snprintf(err, err_len, "--ranks: expected up to %d comma-separated world sizes >= 1, got \"%s\"",
                     OB_PLAN_MAX_RANKS, text);
            return 2;
        }
        o->ranks[o->n_ranks++] = (int)value;
        p = *end ? end + 1 : end;
    }
    if (o->n_ranks == 0) {
        snprintf(err, err_len, "--ranks: expected comma-separated world sizes, got nothing");
        return 2;
    }
    return 0;
}

/* Splits a comma list in place into strategies (strings point into text). */
static int parse_strategies(char *text, ob_plan_options *o, char *err, size_t err_len) {
    o->n_strategies = 0;
    for (char *item = strtok(text, ","); item; item = strtok(NULL, ",")) {
        if (o->n_strategies == OB_PLAN_MAX_STRATEGIES) {
            snprintf(err, err_len, "--strategies: at most %d", OB_PLAN_MAX_STRATEGIES);
            return 2;
        }
        o->strategies[o->n_strategies++] = item;
    }
    return 0;
}

/* A plan-only flag at argv[*i]: 1 when consumed, 0 when not one, -2 on bad input. */
static int parse_plan_flag(int argc, char **argv, int *i, ob_plan_options *o, char *err, size_t err_len) {
    const char *arg = argv[*i];
    if (strcmp(arg, "--per-rank") == 0) {
        o->per_rank = true;
        return 1;
    }
    static const char *const valued[] = {"--ranks", "--steps", "--format", "--strategies"};
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
        if (strcmp(arg, valued[k]) != 0) continue;
        if (*i + 1 >= argc) {
            snprintf(err, err_len, "%s: expected a value after the flag", arg);
            return -2;
        }
        char *value = argv[++*i];
        int rc = 0;
        if (k == 0) rc = parse_ranks(value, o, err, err_len);
        if (k == 1) {
            char *end;
            o->steps = strtoll(value, &end, 10);
            if (*end || o->steps < 1) {
                snprintf(err, err_len, "--steps: expected a whole number of steps >= 1, got \"%s\"", value);
                rc = 2;
            }
        }
        if (k == 2) {
            o->csv = strcmp(value, "csv") == 0;
            if (!o->csv && strcmp(value, "md") != 0) {
                snprintf(err, err_len, "--format: expected md or csv, got \"%s\"", value);
                rc = 2;
            }
        }
        if (k == 3) rc = parse_strategies(value, o, err, err_len);
        return rc ? -2 : 1;
    }
    return 0;
}

static int cmd_plan(int argc, char **argv) {
    char err[ERR_LEN] = "";
    ob_plan_options options = {.ranks = {1}, .n_ranks = 1};
    run_args args = {.items = calloc((size_t)argc + 1, sizeof(action))};
    if (!args.items) return 1;
    int rc = 0;
    for (int i = 2; i < argc && !rc; i++) {
        int plan_flag = parse_plan_flag(argc, argv, &i, &options, err, sizeof err);
        if (plan_flag < 0) rc = 2;
        if (plan_flag == 0) rc = parse_flag(argc, argv, &i, &args, err, sizeof err);
    }
    ob_config *config = NULL;
    if (!rc) rc = resolve_config(&args, &config, err, sizeof err);
    if (!rc) rc = ob_plan_execute(config, &options, err, sizeof err);
    if (rc && err[0]) fprintf(stderr, "optbench: plan: %s\n", err);
    ob_config_free(config);
    free(args.items);
    return rc;
}

static void list_workloads(void) {
    for (int i = 0; i < ob_workload_count(); i++)
        printf("%-10s %s\n", ob_workload_at(i)->name, ob_workload_at(i)->description);
}

static void list_optimizers(void) {
    printf("%-10s %s\n", "sgd", "SGD with momentum or Nesterov, L2 or decoupled weight decay");
    printf("%-10s %s\n", "adamw", "Adam with decoupled weight decay (Loshchilov & Hutter)");
    printf("%-10s %s\n", "lamb", "LAMB: Adam direction scaled by a trust ratio per parameter tensor (You et al.)");
    printf("\npreconditioners (--precond, wrapping the optimizer; settings in the kfac section):\n");
    printf("%-10s %s\n", "kfac", "K-FAC as KAISA distributes it (grad-worker fraction: COMM-OPT .. MEM-OPT)");
    printf("%-10s %s\n", "dp-kfac", "DP-KFAC: one owner per layer, factors from its local batch, never sent");
}

static int list_presets(void) {
    ob_ctx_config ctx_config = {.threads = 1, .seed = 1};
    ob_ctx *ctx = ob_ctx_new(&ctx_config);
    if (!ctx) return 1;
    printf("%-10s %-12s %12s  %s\n", "workload", "preset", "params", "description");
    for (int i = 0; i < ob_workload_count(); i++) {
        const ob_workload *w = ob_workload_at(i);
        for (int p = 0; p < w->n_presets; p++)
            printf("%-10s %-12s %12lld  %s\n", w->name, w->presets[p].name,
                   (long long)w->count_params(ctx, w->presets[p].name), w->presets[p].description);
    }
    ob_ctx_free(ctx);
    return 0;
}

static void list_keys(void) {
    int count;
    const ob_config_key *keys = ob_config_keys(&count);
    ob_config *defaults = ob_config_new();
    for (int i = 0; i < count; i++)
        printf("%-28s %-12s %s\n", keys[i].key, defaults ? ob_config_get_str(defaults, keys[i].key) : "",
               keys[i].help);
    ob_config_free(defaults);
}

static int cmd_list(int argc, char **argv) {
    const char *what = argc > 2 ? argv[2] : "workloads";
    if (strcmp(what, "workloads") == 0) {
        list_workloads();
        return 0;
    }
    if (strcmp(what, "optimizers") == 0) {
        list_optimizers();
        return 0;
    }
    if (strcmp(what, "presets") == 0) return list_presets();
    if (strcmp(what, "keys") == 0) {
        list_keys();
        return 0;
    }
    fprintf(stderr, "optbench: list: expected workloads, optimizers, presets or keys, got \"%s\"\n", what);
    return 2;
}

int ob_cli_main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("optbench %s (%s)\n", OB_VERSION, OB_GIT_COMMIT);
        return 0;
    }
    if (strcmp(argv[1], "run") == 0) return cmd_run(argc, argv);
    if (strcmp(argv[1], "list") == 0) return cmd_list(argc, argv);
    if (strcmp(argv[1], "plan") == 0) return cmd_plan(argc, argv);
    if (strcmp(argv[1], "check") == 0) return ob_check_main(argc, argv);
    if (strcmp(argv[1], "reference") == 0) return ob_reference_main(argc, argv);
    if (strcmp(argv[1], "suite") == 0) return ob_suite_main(argc, argv);
    if (strcmp(argv[1], "report") == 0) return ob_report_main(argc, argv);
    if (strcmp(argv[1], "data") == 0) return ob_data_main(argc, argv);
    fprintf(stderr, "optbench: unknown command \"%s\" (expected run, plan, list, check, reference, suite, report or "
                    "data; see optbench --help)\n", argv[1]);
    return 2;
}

bool ob_cli_asks_help(int argc, char **argv, int first) {
    for (int i = first; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    return false;
}
