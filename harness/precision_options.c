/* Reads the precision sections (harness/config_keys.c documents every key). */
#include "harness/ob_precision_options.h"

#include <string.h>

static ob_choice choice(const char *value, const char *on) {
    if (strcmp(value, "auto") == 0) return OB_CHOICE_AUTO;
    return strcmp(value, on) == 0 ? OB_CHOICE_ON : OB_CHOICE_OFF;
}

static ob_loss_scale_config loss_scale_settings(const ob_config *cfg) {
    return (ob_loss_scale_config){
        .scale = ob_config_get_float(cfg, "loss_scale.init"),
        .growth_factor = ob_config_get_float(cfg, "loss_scale.growth_factor"),
        .backoff_factor = ob_config_get_float(cfg, "loss_scale.backoff_factor"),
        .growth_interval = ob_config_get_int(cfg, "loss_scale.growth_interval"),
        .underflow_rate = ob_config_get_float(cfg, "loss_scale.underflow_rate"),
        .max_layer = ob_config_get_float(cfg, "loss_scale.max_layer"),
        .max_total = ob_config_get_float(cfg, "loss_scale.max_total"),
        .update_every = ob_config_get_int(cfg, "loss_scale.update_every"),
    };
}

int ob_precision_options_from_config(const ob_config *cfg, uint64_t seed, int rank, ob_precision_config *out,
                                     bool *wanted, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    out->loss_scale = loss_scale_settings(cfg);
    if (ob_loss_scale_parse(ob_config_get_str(cfg, "run.loss_scale"), &out->loss_scale, err, err_len)) return 2;
    /* The config's enum check has already vetted the name. */
    ob_precision_parse(ob_config_get_str(cfg, "run.precision"), &out->kind);
    ob_fqt_quantizer_parse(ob_config_get_str(cfg, "fqt.quantizer"), &out->fqt_quantizer);
    out->exempt = ob_config_get_str(cfg, "precision.exempt");
    out->stochastic_grads = choice(ob_config_get_str(cfg, "precision.grad_rounding"), "stochastic");
    out->fp16_master = choice(ob_config_get_str(cfg, "precision.master"), "fp16");
    out->narrow_saved_inputs = strcmp(ob_config_get_str(cfg, "precision.saved_inputs"), "format") == 0;
    out->fqt_forward_bits = (int)ob_config_get_int(cfg, "fqt.forward_bits");
    out->fqt_grad_bits = (int)ob_config_get_int(cfg, "fqt.bits");
    out->fqt_weight_grad_bits = (int)ob_config_get_int(cfg, "fqt.weight_grad_bits");
    out->seed = seed;
    out->rank = rank;
    /* Exemption patterns are checked against the model even in fp32, so a
     * typo is refused rather than ignored. */
    *wanted = out->kind != OB_PRECISION_FP32 || out->loss_scale.kind != OB_LOSS_SCALE_NONE ||
              out->fp16_master == OB_CHOICE_ON || strcmp(out->exempt, "auto") != 0;
    return 0;
}
