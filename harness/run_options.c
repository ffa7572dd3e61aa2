#include "harness/ob_run_options.h"

ob_workload_options ob_run_workload_options(const ob_config *c, int rank, int world_size) {
    return (ob_workload_options){
        .preset = ob_config_get_str(c, "run.preset"),
        .data_dir = ob_config_get_str(c, "data.dir"),
        .train_limit = ob_config_get_int(c, "data.train_limit"),
        .eval_limit = ob_config_get_int(c, "data.eval_limit"),
        .augment = ob_config_get_bool(c, "data.augment"),
        .hflip = ob_config_get_bool(c, "data.hflip"),
        .crop_padding = (int)ob_config_get_int(c, "data.crop_padding"),
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
