/* Loss-scaling rules (optimizers/precision/ob_loss_scale.h): parsing, the
 * dynamic schedule on a scripted sequence of finite and non-finite steps,
 * static and none, erfinv, value statistics, and adaptive layer scales
 * against hand-worked numbers. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optimizers/precision/ob_loss_scale.h"

#include "ob_check.h"

static void test_parse(void) {
    ob_loss_scale_config c = {0};
    char err[256] = "";
    CHECK(ob_loss_scale_parse("none", &c, err, sizeof err) == 0 && c.kind == OB_LOSS_SCALE_NONE);
    CHECK(ob_loss_scale_parse("dynamic", &c, err, sizeof err) == 0 && c.kind == OB_LOSS_SCALE_DYNAMIC);
    CHECK(ob_loss_scale_parse("adaptive", &c, err, sizeof err) == 0 && c.kind == OB_LOSS_SCALE_ADAPTIVE);
    CHECK(ob_loss_scale_parse("static:1024", &c, err, sizeof err) == 0 && c.kind == OB_LOSS_SCALE_STATIC &&
          c.scale == 1024);
    CHECK(ob_loss_scale_parse("static:0.5", &c, err, sizeof err) == 0 && c.scale == 0.5);
    const char *bad[] = {"static:", "static:-4", "static:0", "static:12x", "static:inf", "dyn", "", "Dynamic"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK(ob_loss_scale_parse(bad[i], &c, err, sizeof err) == 2);
        CHECK(strstr(err, "run.loss_scale") != NULL && strchr(err, '\n') == NULL);
    }
}

/* GradScaler: x growth after `interval` clean steps, x backoff and skip on inf/NaN. */
static void test_dynamic_schedule(void) {
    ob_loss_scale_config c = {.kind = OB_LOSS_SCALE_DYNAMIC, .scale = 65536, .growth_factor = 2,
                              .backoff_factor = 0.5, .growth_interval = 3};
    ob_loss_scaler s;
    ob_loss_scaler_init(&s, &c);
    CHECK(s.scale == 65536 && s.clean_steps == 0 && s.skipped_steps == 0);
    /* finite? and the scale expected after the step */
    static const struct {
        bool finite;
        double scale_after;
    } script[] = {{true, 65536},  {true, 65536},  {true, 131072}, {false, 65536}, {true, 65536},
                  {true, 65536},  {false, 32768}, {false, 16384}, {true, 16384},  {true, 16384},
                  {true, 32768},  {true, 32768}};
    int skipped = 0;
    for (size_t i = 0; i < sizeof script / sizeof script[0]; i++) {
        bool applied = ob_loss_scaler_update(&s, &c, script[i].finite);
        skipped += !script[i].finite;
        char what[96];
        snprintf(what, sizeof what, "dynamic step %zu: applied %d, scale %g (expected %g)", i + 1, applied,
                 s.scale, script[i].scale_after);
        check(applied == script[i].finite && s.scale == script[i].scale_after, what);
    }
    CHECK(s.skipped_steps == skipped && s.skipped_steps == 3);
    CHECK(s.clean_steps == 1);
}

static void test_static_and_none(void) {
    ob_loss_scale_config c = {.kind = OB_LOSS_SCALE_STATIC, .scale = 128};
    ob_loss_scaler s;
    ob_loss_scaler_init(&s, &c);
    CHECK(s.scale == 128);
    CHECK(!ob_loss_scaler_update(&s, &c, false) && s.scale == 128 && s.skipped_steps == 1);
    for (int i = 0; i < 5000; i++) ob_loss_scaler_update(&s, &c, true);
    CHECK(s.scale == 128); /* never grows */
    c = (ob_loss_scale_config){.kind = OB_LOSS_SCALE_NONE, .scale = 128};
    ob_loss_scaler_init(&s, &c);
    CHECK(s.scale == 1.0); /* the loss is not scaled */
    CHECK(ob_loss_scaler_update(&s, &c, false) && s.skipped_steps == 0);
    c.kind = OB_LOSS_SCALE_ADAPTIVE;
    ob_loss_scaler_init(&s, &c);
    CHECK(s.scale == 1.0 && !ob_loss_scaler_update(&s, &c, false) && s.skipped_steps == 1);
}

static void test_erfinv(void) {
    const double xs[] = {-2.0, -0.5, 1e-3, 0.3, 0.7, 1.5, 2.5};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) CHECK(fabs(ob_erfinv(erf(xs[i])) - xs[i]) < 1e-12);
    CHECK(fabs(ob_erfinv(0.5) - 0.47693627620446987) < 1e-14);
    CHECK(ob_erfinv(0.0) == 0.0);
}

static void test_value_stats(void) {
    const float values[] = {1, -3, 2, 4};
    ob_value_stats s = ob_value_stats_of(values, 4);
    /* mean 1, deviations 0 -4 1 3: variance 26/4 */
    CHECK(s.mean == 1.0 && fabs(s.std - sqrt(6.5)) < 1e-15 && s.max_abs == 4.0);
}

/* Hand-worked: grad mean 0, weight mean 0, std_W 0.05, terms 64, fp16 bounds
 * (u_min 2^-24, u_max 65504), underflow rate 1e-3 (z = sqrt(2) erfinv(1e-3)
 * = 1.25331e-3), sigma_o = std_g · 0.05 · sqrt(32) = std_g · 0.282843:
 *   std_g 1e-6: u_min/(z sigma_o) = 168.1 -> capped by max_layer 16 -> 16
 *   std_g 2e-5: 8.41 -> 8;  std_g 1e-4: 1.68 -> 1
 *   std_g 1e-6 arriving at scale 512: max_total 1024 / 512 -> 2
 *   std_g 1e-6, max|g| 10, max|W| 1, max_layer 1e30: overflow bound
 *     65504 / 64 / 10 = 102.35 -> 64 */
static void test_adaptive_hand_worked(void) {
    ob_loss_scale_config c = {.kind = OB_LOSS_SCALE_ADAPTIVE, .underflow_rate = 1e-3, .max_layer = 16,
                              .max_total = 1024};
    const double u_min = 0x1p-24, u_max = 65504;
    ob_value_stats weight = {.mean = 0, .std = 0.05, .max_abs = 0.2};
    ob_value_stats grad = {.mean = 0, .std = 1e-6, .max_abs = 1e-5};
    CHECK(ob_adaptive_layer_scale(&c, grad, weight, 64, 1, u_min, u_max) == 16);
    grad.std = 2e-5;
    CHECK(ob_adaptive_layer_scale(&c, grad, weight, 64, 1, u_min, u_max) == 8);
    grad.std = 1e-4;
    CHECK(ob_adaptive_layer_scale(&c, grad, weight, 64, 1, u_min, u_max) == 1);
    grad.std = 1e-6;
    CHECK(ob_adaptive_layer_scale(&c, grad, weight, 64, 512, u_min, u_max) == 2);
    CHECK(ob_adaptive_layer_scale(&c, grad, weight, 64, 1024, u_min, u_max) == 1);
    c.max_layer = 1e30;
    grad.max_abs = 10;
    weight.max_abs = 1;
    CHECK(ob_adaptive_layer_scale(&c, grad, weight, 64, 1, u_min, u_max) == 64);
    /* The mean counts like the spread: mean 2e-5 with no spread is std 2e-5's case. */
    c.max_layer = 16;
    ob_value_stats shifted = {.mean = 2e-5, .std = 0, .max_abs = 2e-5};
    weight = (ob_value_stats){.mean = 0, .std = 0.05, .max_abs = 0.2};
    CHECK(ob_adaptive_layer_scale(&c, shifted, weight, 64, 1, u_min, u_max) == 8);
    /* All-zero gradients: only the bounds speak. NaN statistics: 1. */
    ob_value_stats zero = {0};
    CHECK(ob_adaptive_layer_scale(&c, zero, weight, 64, 1, u_min, u_max) == 16);
    ob_value_stats nan_stats = {.mean = NAN, .std = NAN, .max_abs = NAN};
    CHECK(ob_adaptive_layer_scale(&c, nan_stats, weight, 64, 1, u_min, u_max) == 1);
}

int main(void) {
    test_parse();
    test_dynamic_schedule();
    test_static_and_none();
    test_erfinv();
    test_value_stats();
    test_adaptive_hand_worked();
    return report_checks();
}
