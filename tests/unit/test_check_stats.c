/* The statistics of `optbench check` (harness/ob_check.h) against tabulated
 * and hand-worked values: Student's t, olympic statistics, MLPerf's RCP
 * worked examples, the band test and its leave-one-out estimate. */
#include <math.h>
#include <stdio.h>

#include "harness/ob_check.h"
#include "ob_check.h"

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

static bool near(double a, double b, double tolerance) { return fabs(a - b) <= tolerance; }

/* ---- Student's t -------------------------------------------------------- */

/* One-sided 95% quantiles as printed in t tables (three decimals). */
static void test_t_quantiles_match_the_table(void) {
    const struct {
        double df, t95, t975;
    } table[] = {{1, 6.314, 12.706}, {2, 2.920, 4.303}, {4, 2.132, 2.776}, {9, 1.833, 2.262}, {30, 1.697, 2.042}};
    for (int i = 0; i < COUNT(table); i++) {
        double t95 = ob_student_t_quantile(0.95, table[i].df), t975 = ob_student_t_quantile(0.975, table[i].df);
        if (!near(t95, table[i].t95, 5e-4) || !near(t975, table[i].t975, 5e-4))
            printf("  df %g: t_0.95 %.5f (table %.3f), t_0.975 %.5f (table %.3f)\n", table[i].df, t95, table[i].t95,
                   t975, table[i].t975);
        CHECK(near(t95, table[i].t95, 5e-4));
        CHECK(near(t975, table[i].t975, 5e-4));
    }
    CHECK(ob_student_t_quantile(0.5, 7) == 0);
    CHECK(near(ob_student_t_quantile(0.05, 9), -ob_student_t_quantile(0.95, 9), 1e-12));
    CHECK(isnan(ob_student_t_quantile(1.0, 3)) && isnan(ob_student_t_quantile(0.9, 0)));
}

/* Closed forms: df 1 is Cauchy, F(t) = 1/2 + atan(t)/pi; df 2 has
 * F(t) = 1/2 + t / (2 sqrt(2 + t^2)). */
static void test_t_cdf_matches_closed_forms(void) {
    const double ts[] = {-30, -2.5, -0.3, 0, 0.7, 1.9, 6.314, 100};
    for (int i = 0; i < COUNT(ts); i++) {
        double t = ts[i];
        CHECK(near(ob_student_t_cdf(t, 1), 0.5 + atan(t) / acos(-1.0), 1e-12));
        CHECK(near(ob_student_t_cdf(t, 2), 0.5 + t / (2 * sqrt(2 + t * t)), 1e-12));
        CHECK(near(ob_student_t_cdf(t, 9) + ob_student_t_cdf(-t, 9), 1.0, 1e-12));
    }
    /* Large df approaches the normal distribution: Phi(1.959964) = 0.975. */
    CHECK(near(ob_student_t_cdf(1.959964, 1e7), 0.975, 1e-6));
}

/* ---- olympic statistics ------------------------------------------------- */

static void test_olympic_statistics_by_hand(void) {
    /* {3, 1, 2, 10}: drop 1 and 10, keep {3, 2}: mean 2.5, std sqrt(0.5). */
    const double four[] = {3, 1, 2, 10};
    ob_olympic_stats s = ob_olympic(four, 4);
    CHECK(s.count == 2 && near(s.mean, 2.5, 1e-15) && near(s.std, sqrt(0.5), 1e-15));
    /* Two values are too few to trim: {1, 3} -> mean 2, std sqrt(2). */
    const double two[] = {1, 3};
    s = ob_olympic(two, 2);
    CHECK(s.count == 2 && near(s.mean, 2, 1e-15) && near(s.std, sqrt(2), 1e-15));
    /* One value: its own mean, no spread. */
    s = ob_olympic(two, 1);
    CHECK(s.count == 1 && s.mean == 1 && isnan(s.std));
    /* Ties: exactly one minimum and one maximum go, even when all are equal. */
    const double tied[] = {5, 5, 5, 5};
    s = ob_olympic(tied, 4);
    CHECK(s.count == 2 && s.mean == 5 && s.std == 0);
    /* MLPerf's example list: kept 16 16 16 16 16 16 15 15 -> mean 15.75, squares 1.5 over 7. */
    const double mlperf[] = {16, 14, 16, 17, 16, 16, 15, 16, 15, 16};
    s = ob_olympic(mlperf, 10);
    CHECK(s.count == 8 && near(s.mean, 15.75, 1e-12) && near(s.std, sqrt(1.5 / 7), 1e-12));
}

/* ---- MLPerf's worked example -------------------------------------------- */

/* The population std (ddof 0) of values, the spread MLPerf's example reports. */
static double population_std(const double *values, int n) {
    double mean = 0, squares = 0;
    for (int i = 0; i < n; i++) mean += values[i] / n;
    for (int i = 0; i < n; i++) squares += (values[i] - mean) * (values[i] - mean);
    return sqrt(squares / n);
}

/* MLPerf training rules, appendix "RCP Examples": batch 128, reference epochs
 * 16 14 16 17 16 16 15 16 15 16 ("Mean = 15.75, Stdev = 0.43", max speedup
 * 3.53%, lower bound 15.21), batch 256, 20 21 21 20 22 22 21 21 20 20
 * ("Mean = 20.75, Stdev = 0.66", 4.12%, 19.93); 5 submission runs, 3 kept. */
static void test_mlperf_worked_example(void) {
    const double ref128[] = {16, 14, 16, 17, 16, 16, 15, 16, 15, 16};
    const double kept128[] = {16, 16, 16, 16, 16, 16, 15, 15};
    const double ref256[] = {20, 21, 21, 20, 22, 22, 21, 21, 20, 20};
    const double kept256[] = {20, 20, 20, 21, 21, 21, 21, 22};

    /* Their formula: the population std of the kept values. */
    double theirs128 = ob_rcp_lower_bound(15.75, population_std(kept128, 8), 8, 3, 0.05);
    double theirs256 = ob_rcp_lower_bound(20.75, population_std(kept256, 8), 8, 3, 0.05);
    printf("MLPerf example, their std: batch 128 std %.4f bound %.4f (published 15.21, speedup %.2f%%), "
           "batch 256 std %.4f bound %.4f (published 19.93, %.2f%%)\n",
           population_std(kept128, 8), theirs128, 100 * (15.75 / theirs128 - 1), population_std(kept256, 8),
           theirs256, 100 * (20.75 / theirs256 - 1));
    CHECK(near(population_std(kept128, 8), 0.43, 0.005) && near(population_std(kept256, 8), 0.66, 0.005));
    CHECK(near(theirs128, 15.21, 0.005) && near(100 * (15.75 / theirs128 - 1), 3.53, 0.005));
    CHECK(near(theirs256, 19.93, 0.005) && near(100 * (20.75 / theirs256 - 1), 4.12, 0.005));

    /* Ours: the sample std of the same kept values: 0.463 -> 15.18, 0.707 -> 19.87. */
    ob_olympic_stats ours128 = ob_olympic(ref128, 10), ours256 = ob_olympic(ref256, 10);
    double bound128 = ob_rcp_lower_bound(ours128.mean, ours128.std, ours128.count, 3, 0.05);
    double bound256 = ob_rcp_lower_bound(ours256.mean, ours256.std, ours256.count, 3, 0.05);
    printf("consistent trimmed std: batch 128 std %.4f bound %.4f, batch 256 std %.4f bound %.4f\n", ours128.std,
           bound128, ours256.std, bound256);
    CHECK(near(ours128.std, 0.4629, 5e-5) && near(bound128, 15.18, 0.005));
    CHECK(near(ours256.std, 0.7071, 5e-5) && near(bound256, 19.87, 0.005));

    /* MLPerf's checker code: population std of all 10 values with the trimmed mean and counts. */
    double checker128 = ob_rcp_lower_bound(15.75, population_std(ref128, 10), 8, 3, 0.05);
    printf("checker's untrimmed std: batch 128 std %.4f bound %.4f\n", population_std(ref128, 10), checker128);
    CHECK(near(checker128, 14.78, 0.005));

    /* Their submissions S1 (passes at 128) and S2 (fails at 256) keep their verdicts. */
    const double s1[] = {15, 15, 15, 16, 16}, s2[] = {19, 19, 19, 20, 21};
    ob_rcp_result r1 = ob_rcp_test(ref128, 10, s1, 5, 0.05), r2 = ob_rcp_test(ref256, 10, s2, 5, 0.05);
    CHECK(r1.pass && near(r1.run.mean, 15 + 1.0 / 3, 1e-12) && r1.df == 9);
    CHECK(!r2.pass && near(r2.run.mean, 19 + 1.0 / 3, 1e-12));
}

/* ---- the RCP test ------------------------------------------------------- */

static void test_rcp_pass_and_fail_by_hand(void) {
    /* Reference {8, 9, 10, 11, 12}: kept {9, 10, 11}, mean 10, std 1. Five
     * runs keep 3: df 4, lower = 10 - 2.132 sqrt(2/3) = 8.259. */
    const double ref[] = {8, 9, 10, 11, 12};
    const double fine[] = {9, 9.5, 10, 10.5, 11}, fast[] = {7, 7, 7, 7, 7};
    ob_rcp_result r = ob_rcp_test(ref, 5, fine, 5, 0.05);
    CHECK(r.pass && r.df == 4 && near(r.t_quantile, 2.132, 5e-4) && near(r.lower_bound, 8.259, 5e-4));
    CHECK(near(r.t_statistic, 0, 1e-12) && near(r.p_value, 0.5, 1e-12));
    r = ob_rcp_test(ref, 5, fast, 5, 0.05);
    /* t = (7 - 10) / sqrt(2/3) = -3.674; P(T4 <= -3.674) = 0.0107. */
    CHECK(!r.pass && near(r.t_statistic, -3.674, 5e-4) && near(r.p_value, 0.0107, 5e-4));
    /* One run: k_run 1, df 2, lower = 10 - 2.920 sqrt(4/3) = 6.628. */
    const double one_slow[] = {6.7}, one_fast[] = {6.5};
    r = ob_rcp_test(ref, 5, one_slow, 1, 0.05);
    CHECK(r.pass && r.df == 2 && near(r.lower_bound, 6.628, 5e-4));
    CHECK(!ob_rcp_test(ref, 5, one_fast, 1, 0.05).pass);
    /* No spread: the bound is the mean, and the mean itself passes. */
    const double flat[] = {10, 10.5, 10, 9.5, 10, 10}, at_mean[] = {10}, below[] = {9.75};
    r = ob_rcp_test(flat, 6, at_mean, 1, 0.05);
    CHECK(r.pass && r.lower_bound == 10 && isnan(r.p_value));
    CHECK(!ob_rcp_test(flat, 6, below, 1, 0.05).pass);
}

/* ---- the band test ------------------------------------------------------ */

/* Four seeds; D converged at 0.5 and A at 1.0, so later epochs have fewer seeds. */
static const double A_EPOCH[] = {0.5, 1.0}, A_METRIC[] = {0.2, 0.4};
static const double B_EPOCH[] = {0.5, 1.0, 1.5}, B_METRIC[] = {0.3, 0.5, 0.7};
static const double C_EPOCH[] = {0.5, 1.0, 1.5}, C_METRIC[] = {0.1, 0.3, 0.5};
static const double D_EPOCH[] = {0.5}, D_METRIC[] = {0.2};
static const ob_reference_seed SEEDS[] = {
    {1, 1.0, 2, A_EPOCH, A_METRIC}, {2, 1.5, 3, B_EPOCH, B_METRIC},
    {3, 1.5, 3, C_EPOCH, C_METRIC}, {4, 0.5, 1, D_EPOCH, D_METRIC},
};

static void test_band_interpolates_between_eval_points(void) {
    /* Epoch 0.75: A 0.3, B 0.4, C 0.2 (D has stopped): mean 0.3, std 0.1;
     * k = 1 gives the band [0.2, 0.4]. */
    ob_band_point p = ob_band_test_point(SEEDS, 4, 0.75, 0.3, 1.0, 0.02);
    CHECK(p.verdict == OB_BAND_INSIDE && p.n_covering == 3);
    CHECK(near(p.mean, 0.3, 1e-12) && near(p.std, 0.1, 1e-12));
    CHECK(near(p.lower, 0.2, 1e-12) && near(p.upper, 0.4, 1e-12));
    p = ob_band_test_point(SEEDS, 4, 0.75, 0.45, 1.0, 0.02);
    CHECK(p.verdict == OB_BAND_ABOVE && near(p.excess, 0.05, 1e-12));
    p = ob_band_test_point(SEEDS, 4, 0.75, 0.125, 1.0, 0.02);
    CHECK(p.verdict == OB_BAND_BELOW && near(p.excess, 0.075, 1e-12));
    /* k = 3: the band widens to [0, 0.6]. */
    CHECK(ob_band_test_point(SEEDS, 4, 0.75, 0.45, 3.0, 0.02).verdict == OB_BAND_INSIDE);
    /* On an eval point all four count: 0.2 0.3 0.1 0.2, std sqrt(0.02/3). */
    p = ob_band_test_point(SEEDS, 4, 0.5, 0.2, 3.0, 0.02);
    CHECK(p.n_covering == 4 && near(p.mean, 0.2, 1e-12) && near(p.std, sqrt(0.02 / 3), 1e-12));
    /* An epoch equal up to rounding still counts A, whose curve ends at 1.0. */
    CHECK(ob_band_test_point(SEEDS, 4, 1.0 + 1e-12, 0.4, 3.0, 0.02).n_covering == 3);
}

static void test_band_needs_three_covering_seeds(void) {
    /* Epoch 1.25: only B and C reach it; before 0.5 and after 1.5 no seed does. */
    ob_band_point p = ob_band_test_point(SEEDS, 4, 1.25, 0.0, 3.0, 0.02);
    CHECK(p.verdict == OB_BAND_NOT_TESTED && p.n_covering == 2 && isnan(p.lower));
    CHECK(ob_band_test_point(SEEDS, 4, 0.25, 0.2, 3.0, 0.02).n_covering == 0);
    CHECK(ob_band_test_point(SEEDS, 4, 1.75, 0.2, 3.0, 0.02).verdict == OB_BAND_NOT_TESTED);
}

static void test_band_edge_and_abs_tol(void) {
    /* Three identical seeds: std 0, so the band is mean +- abs_tol = [0.375, 0.625]
     * (all exact in binary). The edge itself is inside. */
    static const double epoch[] = {1.0}, metric[] = {0.5};
    const ob_reference_seed flat[] = {{1, 1, 1, epoch, metric}, {2, 1, 1, epoch, metric}, {3, 1, 1, epoch, metric}};
    CHECK(ob_band_test_point(flat, 3, 1.0, 0.625, 3.0, 0.125).verdict == OB_BAND_INSIDE);
    CHECK(ob_band_test_point(flat, 3, 1.0, 0.375, 3.0, 0.125).verdict == OB_BAND_INSIDE);
    CHECK(ob_band_test_point(flat, 3, 1.0, nextafter(0.625, 1), 3.0, 0.125).verdict == OB_BAND_ABOVE);
    CHECK(ob_band_test_point(flat, 3, 1.0, nextafter(0.375, 0), 3.0, 0.125).verdict == OB_BAND_BELOW);
    /* A run's NaN is outside any band. */
    CHECK(ob_band_test_point(flat, 3, 1.0, NAN, 3.0, 0.125).verdict == OB_BAND_NOT_FINITE);
}

/* Five seeds evaluated at epochs 1 and 2. Seed 5 dips at epoch 1: against
 * the other four (0.50 0.52 0.48 0.50: mean 0.5, std sqrt(0.0008/3)) it
 * needs k = 0.3 / sqrt(0.0008/3) = 18.37 and at k = 3 it is outside; at
 * epoch 2 the others do not spread (all 0.9) and its 0.95 is beyond abs_tol,
 * which no k covers. Seed 1 against 0.52 0.48 0.50 0.20 (mean 0.425, std
 * sqrt(0.0683/3)) needs 0.075 / sqrt(0.0683/3) = 0.497 at epoch 1; at epoch 2
 * (mean 0.9125) it lies within abs_tol, which needs no k. */
static const double LOO_EPOCH[] = {1.0, 2.0};
static const double LOO_1[] = {0.50, 0.90}, LOO_2[] = {0.52, 0.90}, LOO_3[] = {0.48, 0.90}, LOO_4[] = {0.50, 0.90},
                    LOO_5[] = {0.20, 0.95};

static ob_reference loo_reference(ob_reference_seed *seeds) {
    const double *metrics[] = {LOO_1, LOO_2, LOO_3, LOO_4, LOO_5};
    for (int s = 0; s < 5; s++) seeds[s] = (ob_reference_seed){s + 1, 2.0, 2, LOO_EPOCH, metrics[s]};
    return (ob_reference){.n_seeds = 5, .seeds = seeds};
}

static ob_check_options band_options(double k, bool tolerate_transients) {
    ob_check_options o = OB_CHECK_OPTIONS_DEFAULT;
    o.band_k = k;
    o.tolerate_transients = tolerate_transients;
    return o;
}

static void test_leave_one_out_by_hand(void) {
    ob_reference_seed seeds[5];
    ob_reference ref = loo_reference(seeds);
    ob_loo_seed r[5];
    ob_check_options k3 = band_options(3.0, false), k18_3 = band_options(18.3, false), k18_4 = band_options(18.4, false);
    CHECK(ob_band_leave_one_out(&ref, &k3, NULL, r) == 1);
    CHECK(r[4].seed == 5 && r[4].band.tested == 2 && r[4].band.outside == 2);
    CHECK(isinf(r[4].k_needed) && r[4].k_needed_epoch == 2.0);
    CHECK(r[0].seed == 1 && r[0].band.tested == 2 && r[0].band.outside == 0);
    CHECK(near(r[0].k_needed, 0.075 / sqrt(0.0683 / 3), 1e-9) && r[0].k_needed_epoch == 1.0);
    /* Seed 5's epoch-1 point alone: k 18.37 fails, 18.4 keeps it in. */
    static const double dip_only[] = {0.20, 0.90};
    seeds[4].metric = dip_only;
    CHECK(ob_band_leave_one_out(&ref, &k18_3, NULL, r) == 1);
    CHECK(near(r[4].k_needed, 0.3 / sqrt(0.0008 / 3), 1e-9) && r[4].k_needed_epoch == 1.0);
    CHECK(ob_band_leave_one_out(&ref, &k18_4, NULL, r) == 0 && r[4].band.outside == 0);
    /* Tolerating transients: the epoch-1 dip, with nothing tested before it
     * and an inside epoch-2 point after it, is isolated. */
    ob_check_options tolerant = band_options(3.0, true);
    CHECK(ob_band_leave_one_out(&ref, &tolerant, NULL, r) == 0);
    CHECK(r[4].band.outside == 0 && r[4].band.transients == 1 && r[4].band.tested == 2);
}

static void test_leave_one_out_counts_an_untested_seed_as_failing(void) {
    /* Seed 5 evaluated only at epoch 0.5, before any other seed's curve begins. */
    ob_reference_seed seeds[5];
    ob_reference ref = loo_reference(seeds);
    static const double early_epoch[] = {0.5}, early_metric[] = {0.3};
    seeds[4] = (ob_reference_seed){5, 0.5, 1, early_epoch, early_metric};
    ob_loo_seed r[5];
    ob_check_options k3 = band_options(3.0, false);
    CHECK(ob_band_leave_one_out(&ref, &k3, NULL, r) == 1);
    CHECK(r[4].band.tested == 0 && r[4].band.outside == 0 && r[4].k_needed == 0 && isnan(r[4].k_needed_epoch));
}

/* Transients against three flat seeds (0.5 at epochs 1-5, band [0.48, 0.52]
 * at abs_tol 0.02): which points outside are isolated. */
static const double FLAT_EPOCH[] = {1, 2, 3, 4, 5}, FLAT[] = {0.5, 0.5, 0.5, 0.5, 0.5};
static const ob_reference_seed FLAT_SEEDS[] = {
    {1, 5, 5, FLAT_EPOCH, FLAT}, {2, 5, 5, FLAT_EPOCH, FLAT}, {3, 5, 5, FLAT_EPOCH, FLAT}};

static ob_band_summary curve_summary(const double *epoch, const double *metric, int n, bool tolerate) {
    ob_run_identity id = {.target_metric = "top1"};
    ob_check_options o = band_options(3.0, tolerate);
    return ob_band_test_curve(FLAT_SEEDS, 3, &id, epoch, metric, n, &o, NULL);
}

static ob_band_summary flat_curve_summary(const double *metric, int n, bool tolerate) {
    return curve_summary(FLAT_EPOCH, metric, n, tolerate);
}

static void test_band_transients(void) {
    static const double dip[] = {0.5, 0.1, 0.5, 0.5, 0.5}, first[] = {0.1, 0.5, 0.5, 0.5, 0.5},
                        last[] = {0.5, 0.5, 0.5, 0.5, 0.1}, twice[] = {0.5, 0.1, 0.1, 0.5, 0.5},
                        nan_dip[] = {0.5, NAN, 0.5, 0.5, 0.5}, two_dips[] = {0.5, 0.9, 0.5, 0.1, 0.5};
    ob_band_summary s = flat_curve_summary(dip, 5, false);
    CHECK(s.tested == 5 && s.outside == 1 && s.transients == 0); /* DESIGN.md's band */
    s = flat_curve_summary(dip, 5, true);
    CHECK(s.tested == 5 && s.outside == 0 && s.transients == 1);
    s = flat_curve_summary(first, 5, true);
    CHECK(s.outside == 0 && s.transients == 1);
    s = flat_curve_summary(last, 5, true); /* nothing after it: no recovery seen */
    CHECK(s.outside == 1 && s.transients == 0);
    s = flat_curve_summary(twice, 5, true); /* two in a row: neither is isolated */
    CHECK(s.outside == 2 && s.transients == 0);
    s = flat_curve_summary(nan_dip, 5, true);
    CHECK(s.outside == 1 && s.transients == 0);
    s = flat_curve_summary(two_dips, 5, true); /* above, then below, each isolated */
    CHECK(s.outside == 0 && s.transients == 2);
    /* A curve past the seeds' last epoch: the untested point after a dip
     * does not count as a recovery. */
    static const double beyond_epoch[] = {4, 5, 6}, beyond[] = {0.5, 0.1, 0.5};
    s = curve_summary(beyond_epoch, beyond, 3, true);
    CHECK(s.tested == 2 && s.not_tested == 1 && s.outside == 1 && s.transients == 0);
}

int main(void) {
    test_t_quantiles_match_the_table();
    test_t_cdf_matches_closed_forms();
    test_olympic_statistics_by_hand();
    test_mlperf_worked_example();
    test_rcp_pass_and_fail_by_hand();
    test_band_interpolates_between_eval_points();
    test_band_needs_three_covering_seeds();
    test_band_edge_and_abs_tol();
    test_band_transients();
    test_leave_one_out_by_hand();
    test_leave_one_out_counts_an_untested_seed_as_failing();
    return report_checks();
}
