#include "harness/ob_run_options.h"

#include <stdio.h>
#include <string.h>

ob_workload_options ob_run_workload_options(const ob_config *c, int rank, int world_size) {
    return (ob_workload_options){
        .preset = ob_config_get_str(c, "run.preset"),
        .data_dir = ob_config_get_str(c, "data.dir"),
        .train_limit = ob_config_get_int(c, "data.train_limit"),
        .eval_limit = ob_config_get_int(c, "data.eval_limit"),
        .train_files = ob_config_get_str(c, "data.train_files"),
        .eval_files = ob_config_get_str(c, "data.eval_files"),
        .seq_len = (int)ob_config_get_int(c, "data.seq_len"),
        .max_pred = (int)ob_config_get_int(c, "data.max_pred"),
        .augment = ob_config_get_bool(c, "data.augment"),
        .hflip = ob_config_get_bool(c, "data.hflip"),
        .crop_padding = (int)ob_config_get_int(c, "data.crop_padding"),
        .data_workers = (int)ob_config_get_int(c, "data.workers"),
        .eval_resize = (int)ob_config_get_int(c, "data.eval_resize"),
        .label_smoothing = ob_config_get_float(c, "model.label_smoothing"),
        .bn_momentum = ob_config_get_float(c, "model.bn_momentum"),
        .bn_eps = ob_config_get_float(c, "model.bn_eps"),
        .norm = ob_config_get_str(c, "model.norm"),
        .zero_init_residual = ob_config_get_bool(c, "model.zero_init_residual"),
        .global_batch = ob_config_get_int(c, "run.batch_size"),
        .rank = rank,
        .world_size = world_size,
        .seed = (uint64_t)ob_config_get_int(c, "run.seed"),
    };
}

ob_sgd_config ob_run_sgd_config(const ob_config *c) {
    return (ob_sgd_config){
        .momentum = ob_config_get_float(c, "sgd.momentum"),
        .weight_decay = ob_config_get_float(c, "sgd.weight_decay"),
        .nesterov = ob_config_get_bool(c, "sgd.nesterov"),
        .decoupled = ob_config_get_bool(c, "sgd.decoupled"),
        .decay_norm_and_bias = ob_config_get_bool(c, "sgd.decay_norm_and_bias"),
    };
}

/* <section>.<name>; every such key name is short and known. */
static double section_float(const ob_config *c, const char *section, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "%s.%s", section, name);
    return ob_config_get_float(c, key);
}

static bool section_bool(const ob_config *c, const char *section, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "%s.%s", section, name);
    return ob_config_get_bool(c, key);
}

ob_adam_config ob_run_adam_config(const ob_config *c, const char *section) {
    return (ob_adam_config){
        .beta1 = section_float(c, section, "beta1"),
        .beta2 = section_float(c, section, "beta2"),
        .eps = section_float(c, section, "eps"),
        .weight_decay = section_float(c, section, "weight_decay"),
        .decay_norm_and_bias = section_bool(c, section, "decay_norm_and_bias"),
    };
}

ob_lamb_config ob_run_lamb_config(const ob_config *c) {
    return (ob_lamb_config){
        .adam = ob_run_adam_config(c, "lamb"),
        .max_trust_ratio = ob_config_get_float(c, "lamb.max_trust_ratio"),
        .bias_correction = ob_config_get_bool(c, "lamb.bias_correction"),
    };
}

/* run.optimizer is an enum key, so it is one of these three. */
ob_optimizer *ob_run_optimizer_new(ob_ctx *ctx, ob_params *params, const ob_config *c) {
    const char *name = ob_config_get_str(c, "run.optimizer");
    if (strcmp(name, "adamw") == 0) {
        ob_adam_config adamw = ob_run_adam_config(c, "adamw");
        return ob_adamw_new(ctx, params, &adamw);
    }
    if (strcmp(name, "lamb") == 0) {
        ob_lamb_config lamb = ob_run_lamb_config(c);
        return ob_lamb_new(ctx, params, &lamb);
    }
    ob_sgd_config sgd = ob_run_sgd_config(c);
    return ob_sgd_new(ctx, params, &sgd);
}

double ob_run_base_lr(const ob_config *c) {
    return section_float(c, ob_config_get_str(c, "run.optimizer"), "lr");
}
