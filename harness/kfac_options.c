/* Reads the kfac section (harness/config_keys.c documents every key). */
#include "harness/ob_kfac_options.h"
#include "harness/ob_run_options.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* key holds n+1 values, key_epochs n increasing epochs. */
static int read_piecewise(const ob_config *cfg, const char *key, bool whole, ob_kfac_piecewise *out, char *err,
                          size_t err_len) {
    char epochs_key[64];
    snprintf(epochs_key, sizeof epochs_key, "%s_epochs", key);
    int values = ob_config_get_float_list(cfg, key, out->value, OB_KFAC_MAX_PIECES + 1);
    int epochs = ob_config_get_float_list(cfg, epochs_key, out->epochs, OB_KFAC_MAX_PIECES);
    if (values < 1 || values > OB_KFAC_MAX_PIECES + 1 || epochs != values - 1) {
        snprintf(err, err_len, "%s: expected one value, or n+1 values for the n epochs in %s (at most %d), got "
                 "%d values and %d epochs", key, epochs_key, OB_KFAC_MAX_PIECES, values, epochs);
        return 2;
    }
    for (int i = 1; i < epochs; i++)
        if (!(out->epochs[i] > out->epochs[i - 1])) {
            snprintf(err, err_len, "%s: expected increasing epochs, got %g after %g", epochs_key, out->epochs[i],
                     out->epochs[i - 1]);
            return 2;
        }
    for (int i = 0; whole && i < values; i++)
        if (out->value[i] != floor(out->value[i])) {
            snprintf(err, err_len, "%s: expected whole numbers of steps, got %g", key, out->value[i]);
            return 2;
        }
    out->n_epochs = epochs;
    return 0;
}

/* fp16 / bf16: kept narrow; fp32 (the only other choice): the parameters' dtype. */
static ob_dtype storage_dtype(const char *name) {
    return strcmp(name, "fp16") == 0 ? OB_F16 : strcmp(name, "bf16") == 0 ? OB_BF16 : OB_F32;
}

int ob_kfac_options_from_config(const ob_config *cfg, ob_kfac_config *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    out->variant = strcmp(ob_config_get_str(cfg, "run.precond"), "dp-kfac") == 0 ? OB_KFAC_DP : OB_KFAC_KAISA;
    out->method = strcmp(ob_config_get_str(cfg, "kfac.method"), "inverse") == 0 ? OB_KFAC_INVERSE : OB_KFAC_EIGEN;
    out->kl_clip = ob_config_get_float(cfg, "kfac.kl_clip");
    if (strcmp(ob_config_get_str(cfg, "kfac.kl_clip_lr"), "peak") == 0) out->kl_clip_lr = ob_run_base_lr(cfg);
    out->grad_worker_frac = ob_config_get_float(cfg, "kfac.grad_worker_frac");
    out->cost = strcmp(ob_config_get_str(cfg, "kfac.assignment"), "memory") == 0 ? OB_KFAC_COST_MEMORY
                                                                                 : OB_KFAC_COST_COMPUTE;
    out->colocate_factors = ob_config_get_bool(cfg, "kfac.colocate_factors");
    out->eigen_outer = ob_config_get_bool(cfg, "kfac.eigen_outer");
    out->batch_averaged = ob_config_get_bool(cfg, "kfac.batch_averaged");
    out->decay_warmup = ob_config_get_bool(cfg, "kfac.decay_warmup");
    out->symmetric_comm = ob_config_get_bool(cfg, "kfac.symmetric_comm");
    out->skip_layers = ob_config_get_str(cfg, "kfac.skip_layers");
    out->factor_dtype = storage_dtype(ob_config_get_str(cfg, "kfac.factor_dtype"));
    out->inverse_dtype = storage_dtype(ob_config_get_str(cfg, "kfac.inv_dtype"));
    int rc = read_piecewise(cfg, "kfac.damping", false, &out->damping, err, err_len);
    if (!rc) rc = read_piecewise(cfg, "kfac.factor_decay", false, &out->factor_decay, err, err_len);
    if (!rc) rc = read_piecewise(cfg, "kfac.factor_update_steps", true, &out->factor_update_steps, err, err_len);
    if (!rc) rc = read_piecewise(cfg, "kfac.inv_update_steps", true, &out->inv_update_steps, err, err_len);
    return rc;
}
