/* LR schedules at hand-computed steps: warm-up ends, decay boundaries,
 * milestones, cosine and polynomial points, and onecycle against numbers
 * from PyTorch 1.13's OneCycleLR (derived once, asserted here as literals
 * beside the formula they come from). Then validation errors. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "optimizers/ob_schedule.h"

#include "ob_check.h"

static void check_lr(const char *what, const ob_schedule *s, int64_t step, double want) {
    double got = ob_schedule_lr(s, step);
    bool ok = fabs(got - want) <= 1e-12 * fabs(want);
    if (!ok) printf("  %s: lr(%lld) = %.17g, want %.17g\n", what, (long long)step, got, want);
    check(ok, what);
}

static const double pi = 3.14159265358979323846;

/* 10 steps per epoch, 10 epochs (100 steps), 2 warm-up epochs (20 steps). */
static ob_schedule base_schedule(ob_schedule_kind kind) {
    return (ob_schedule){.kind = kind, .base_lr = 0.1, .steps_per_epoch = 10, .total_epochs = 10,
                         .warmup_epochs = 2, .gamma = 0.1, .power = 1, .min_lr = 0.001};
}

static void test_constant_and_warmup(void) {
    ob_schedule s = base_schedule(OB_SCHEDULE_CONSTANT);
    check_lr("warm-up first step is base/warmup_steps", &s, 0, 0.1 / 20);
    check_lr("warm-up step 10 is 11/20 of base", &s, 10, 0.1 * 11 / 20);
    check_lr("warm-up last step reaches base", &s, 19, 0.1);
    check_lr("constant after warm-up", &s, 20, 0.1);
    check_lr("constant past the end", &s, 500, 0.1);
    check_lr("negative step is step 0", &s, -3, 0.1 / 20);
    s.warmup_epochs = 0;
    check_lr("no warm-up: first step is base", &s, 0, 0.1);
    s.warmup_epochs = 0.25; /* round(2.5) = 3 steps */
    check_lr("fractional warm-up rounds to 3 steps", &s, 0, 0.1 / 3);
    check_lr("fractional warm-up ends at step 2", &s, 2, 0.1);
}

static void test_step(void) {
    ob_schedule s = base_schedule(OB_SCHEDULE_STEP);
    s.step_size = 3;
    check_lr("step: warm-up last step", &s, 19, 0.1);
    check_lr("step: epoch 2 after warm-up is undecayed", &s, 20, 0.1);
    check_lr("step: last step before epoch 3", &s, 29, 0.1);
    check_lr("step: epoch 3 decays once", &s, 30, 0.01);
    check_lr("step: epoch 5.9", &s, 59, 0.01);
    check_lr("step: epoch 6 decays twice", &s, 60, 0.001);
    check_lr("step: epoch 9 decays three times", &s, 90, 1e-4);

    /* step_size 0.25 epochs = 2.5 steps: boundaries round(2.5k) = 3, 5, 8. */
    s.warmup_epochs = 0;
    s.step_size = 0.25;
    check_lr("fractional step: step 2 undecayed", &s, 2, 0.1);
    check_lr("fractional step: boundary 1 at step 3", &s, 3, 0.01);
    check_lr("fractional step: boundary 2 at step 5", &s, 5, 0.001);
    check_lr("fractional step: step 7 still 2 decays", &s, 7, 0.001);
    check_lr("fractional step: boundary 3 at step 8", &s, 8, 1e-4);

    /* 1.1 * 50 is 55.00000000000001 in binary: the decay must still start
     * at step 55, where epoch 1.1 begins. */
    s.steps_per_epoch = 50;
    s.step_size = 1.1;
    check_lr("step_size 1.1 x 50 steps: step 54 undecayed", &s, 54, 0.1);
    check_lr("step_size 1.1 x 50 steps: decay at step 55", &s, 55, 0.01);
    check_lr("step_size 1.1 x 50 steps: second decay at step 110", &s, 110, 0.001);
}

static void test_multistep(void) {
    static const double milestones[] = {3, 6, 8};
    ob_schedule s = base_schedule(OB_SCHEDULE_MULTISTEP);
    s.milestones = milestones;
    s.n_milestones = 3;
    check_lr("multistep: warm-up first step", &s, 0, 0.1 / 20);
    check_lr("multistep: before milestone 3", &s, 29, 0.1);
    check_lr("multistep: milestone 3", &s, 30, 0.01);
    check_lr("multistep: before milestone 6", &s, 59, 0.01);
    check_lr("multistep: milestone 6", &s, 60, 0.001);
    check_lr("multistep: milestone 8", &s, 80, 1e-4);
    check_lr("multistep: past the end", &s, 1000, 1e-4);
}

static void test_cosine(void) {
    ob_schedule s = base_schedule(OB_SCHEDULE_COSINE);
    double base = 0.1, min = 0.001;
    check_lr("cosine: warm-up last step", &s, 19, base);
    check_lr("cosine: starts at base after warm-up", &s, 20, base);
    check_lr("cosine: mid-point is (base+min)/2", &s, 60, (base + min) / 2);
    check_lr("cosine: quarter point", &s, 40, min + (base - min) * (1 + sqrt(0.5)) / 2);
    check_lr("cosine: last step", &s, 99, min + (base - min) * (1 + cos(pi * 79.0 / 80.0)) / 2);
    check_lr("cosine: ends at min_lr", &s, 100, min);
    check_lr("cosine: stays at min_lr", &s, 1000, min);
}

static void test_polynomial(void) {
    ob_schedule s = base_schedule(OB_SCHEDULE_POLYNOMIAL);
    double base = 0.1, min = 0.001;
    check_lr("poly 1: starts at base", &s, 20, base);
    check_lr("poly 1: half-way is (base+min)/2", &s, 60, (base + min) / 2);
    check_lr("poly 1: quarter", &s, 40, min + (base - min) * 0.75);
    check_lr("poly 1: ends at min_lr", &s, 100, min);
    s.power = 2;
    check_lr("poly 2: half-way", &s, 60, min + (base - min) * 0.25);
    check_lr("poly 2: quarter", &s, 40, min + (base - min) * 0.5625);
    check_lr("poly 2: step 99", &s, 99, min + (base - min) * (1.0 / 80) * (1.0 / 80));
    check_lr("poly 2: past the end", &s, 150, min);
}

/* OneCycleLR(max_lr=0.4, total_steps=100, pct_start=0.25, div_factor=25,
 * final_div_factor=1e4, three_phase=False): initial 0.016, final 1.6e-6,
 * rising phase ends at step 0.25*100 - 1 = 24, falling phase at 99. */
static void test_onecycle_whole_peak(void) {
    ob_schedule s = {.kind = OB_SCHEDULE_ONECYCLE, .base_lr = 0.4, .steps_per_epoch = 10,
                     .total_epochs = 10, .pct_start = 0.25, .div_factor = 25, .final_div_factor = 1e4};
    double initial = 0.4 / 25, final = initial / 1e4;
    check_lr("onecycle: starts at max/div_factor", &s, 0, initial);
    check_lr("onecycle: step 1 (PyTorch)", &s, 1, 0.017642586616228417);
    check_lr("onecycle: step 1 (formula)", &s, 1, 0.4 + (initial - 0.4) / 2 * (1 + cos(pi / 24)));
    check_lr("onecycle: rising mid-point", &s, 12, (initial + 0.4) / 2);
    check_lr("onecycle: peak at step 24", &s, 24, 0.4);
    check_lr("onecycle: step 25 (PyTorch)", &s, 25, 0.3998245667215076);
    check_lr("onecycle: step 50 (PyTorch)", &s, 50, 0.29265963638714426);
    check_lr("onecycle: step 50 (formula)", &s, 50, final + (0.4 - final) / 2 * (1 + cos(pi * 26 / 75)));
    check_lr("onecycle: step 98 (PyTorch)", &s, 98, 0.00017703327849240245);
    check_lr("onecycle: last step is initial/final_div_factor", &s, 99, final);
    check_lr("onecycle: past the end keeps the last lr", &s, 150, final);
}

/* OneCycleLR(max_lr=1, total_steps=10, pct_start=0.35, div_factor=10,
 * final_div_factor=100): the peak falls between steps, at 0.35*10 - 1 = 2.5. */
static void test_onecycle_fractional_peak(void) {
    ob_schedule s = {.kind = OB_SCHEDULE_ONECYCLE, .base_lr = 1, .steps_per_epoch = 5,
                     .total_epochs = 2, .pct_start = 0.35, .div_factor = 10, .final_div_factor = 100};
    check_lr("onecycle 2.5: step 0", &s, 0, 0.1);
    check_lr("onecycle 2.5: step 1 (PyTorch)", &s, 1, 0.41094235253127365);
    check_lr("onecycle 2.5: step 1 (formula)", &s, 1, 1 + (0.1 - 1) / 2 * (1 + cos(pi * 0.4)));
    check_lr("onecycle 2.5: step 2 still rising (PyTorch)", &s, 2, 0.9140576474687263);
    check_lr("onecycle 2.5: step 3 falling (PyTorch)", &s, 3, 0.985485437804313);
    check_lr("onecycle 2.5: step 3 (formula)", &s, 3, 0.001 + (1 - 0.001) / 2 * (1 + cos(pi * 0.5 / 6.5)));
    check_lr("onecycle 2.5: step 9 is final", &s, 9, 0.001);
}

/* Validation must fail with 2 and one line that names `field`. */
static void check_invalid(const char *what, const ob_schedule *s, const char *field) {
    char err[256] = "";
    int rc = ob_schedule_validate(s, err, sizeof err);
    bool ok = rc == 2 && strstr(err, field) != NULL && strchr(err, '\n') == NULL;
    if (!ok) printf("  %s: rc %d, message \"%s\"\n", what, rc, err);
    check(ok, what);
}

static void check_valid(const char *what, const ob_schedule *s) {
    char err[256] = "";
    int rc = ob_schedule_validate(s, err, sizeof err);
    if (rc != 0) printf("  %s: rc %d, message \"%s\"\n", what, rc, err);
    check(rc == 0, what);
}

static void test_validate_common(void) {
    for (int kind = 0; kind < OB_SCHEDULE_KIND_COUNT; kind++) {
        static const double milestones[] = {3, 6};
        ob_schedule s = base_schedule((ob_schedule_kind)kind);
        s.step_size = 3;
        s.milestones = milestones;
        s.n_milestones = 2;
        s.pct_start = 0.3, s.div_factor = 25, s.final_div_factor = 1e4;
        if (kind == OB_SCHEDULE_ONECYCLE) s.warmup_epochs = 0;
        check_valid(ob_schedule_kind_name(s.kind), &s);
    }
    ob_schedule s = base_schedule(OB_SCHEDULE_CONSTANT);
    s.warmup_epochs = 10;
    check_invalid("warm-up as long as the run", &s, "warmup_epochs");
    s.warmup_epochs = 9.96; /* rounds to 100 of 100 steps */
    check_invalid("warm-up rounding to the whole run", &s, "warmup_epochs");
    s.warmup_epochs = -1;
    check_invalid("negative warm-up", &s, "warmup_epochs");
    s = base_schedule(OB_SCHEDULE_CONSTANT);
    s.base_lr = -0.1;
    check_invalid("negative base_lr", &s, "base_lr");
    s.base_lr = NAN;
    check_invalid("NaN base_lr", &s, "base_lr");
    s = base_schedule(OB_SCHEDULE_CONSTANT);
    s.steps_per_epoch = 0;
    check_invalid("zero steps_per_epoch", &s, "steps_per_epoch");
    s = base_schedule(OB_SCHEDULE_CONSTANT);
    s.total_epochs = 0;
    check_invalid("zero total_epochs", &s, "total_epochs");
    s.kind = (ob_schedule_kind)42;
    check_invalid("kind out of range", &s, "kind");
}

static void test_validate_kinds(void) {
    ob_schedule s = base_schedule(OB_SCHEDULE_STEP);
    s.step_size = 0;
    check_invalid("step_size 0", &s, "step_size");
    s.step_size = 0.05; /* half a step */
    check_invalid("step_size under one step", &s, "step_size");
    s.step_size = 3, s.gamma = 0;
    check_invalid("gamma 0", &s, "gamma");

    static const double decreasing[] = {3, 6, 5};
    s = base_schedule(OB_SCHEDULE_MULTISTEP);
    s.milestones = decreasing, s.n_milestones = 3;
    check_invalid("milestones not increasing", &s, "milestones must increase");
    s.n_milestones = 0;
    check_invalid("no milestones", &s, "milestone");
    static const double negative[] = {-1, 3};
    s.milestones = negative, s.n_milestones = 2;
    check_invalid("negative milestone", &s, "milestone 1");

    s = base_schedule(OB_SCHEDULE_COSINE);
    s.min_lr = 0.2;
    check_invalid("cosine min_lr above base_lr", &s, "min_lr");
    s = base_schedule(OB_SCHEDULE_POLYNOMIAL);
    s.power = 0;
    check_invalid("polynomial power 0", &s, "power");

    s = (ob_schedule){.kind = OB_SCHEDULE_ONECYCLE, .base_lr = 0.4, .steps_per_epoch = 10, .total_epochs = 10,
                      .pct_start = 0.3, .div_factor = 25, .final_div_factor = 1e4};
    check_valid("onecycle defaults", &s);
    s.warmup_epochs = 1;
    check_invalid("onecycle with warmup_epochs", &s, "warmup_epochs");
    s.warmup_epochs = 0, s.pct_start = 1;
    check_invalid("onecycle pct_start 1", &s, "pct_start");
    s.pct_start = 0.01; /* 0.01 * 100 = 1: no rising phase */
    check_invalid("onecycle rising phase without length", &s, "pct_start");
    s.pct_start = 0.3, s.div_factor = 0;
    check_invalid("onecycle div_factor 0", &s, "div_factor");
    s.div_factor = 25, s.final_div_factor = -1;
    check_invalid("onecycle final_div_factor negative", &s, "final_div_factor");
}

static void test_kind_names(void) {
    static const char *const names[] = {"constant", "step", "multistep", "cosine", "polynomial", "onecycle"};
    for (int i = 0; i < 6; i++) {
        ob_schedule_kind kind = OB_SCHEDULE_KIND_COUNT;
        check(ob_schedule_kind_parse(names[i], &kind) == 0 && kind == (ob_schedule_kind)i, names[i]);
        check(strcmp(ob_schedule_kind_name(kind), names[i]) == 0, "kind name round-trips");
    }
    ob_schedule_kind untouched = OB_SCHEDULE_COSINE;
    check(ob_schedule_kind_parse("Cosine", &untouched) == 2, "names are case-sensitive");
    check(ob_schedule_kind_parse("linear", &untouched) == 2 && untouched == OB_SCHEDULE_COSINE,
          "unknown name: 2, output untouched");
    check(ob_schedule_kind_parse(NULL, &untouched) == 2, "NULL name is unknown");
}

int main(void) {
    test_constant_and_warmup();
    test_step();
    test_multistep();
    test_cosine();
    test_polynomial();
    test_onecycle_whole_peak();
    test_onecycle_fractional_peak();
    test_validate_common();
    test_validate_kinds();
    test_kind_names();
    return report_checks();
}
