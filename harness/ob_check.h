/* ob_check: `optbench check` (DESIGN.md section 7) - a run, or a set of runs,
 * against a reference (ob_reference.h), by two tests:
 *
 * Band test, per run: at each of the run's eval epochs, every reference seed
 * whose curve covers that epoch (its first to its last eval point; seeds stop
 * at the target, so later epochs have fewer of them) gives its metric there,
 * linearly interpolated between its eval points. With n >= OB_BAND_MIN_SEEDS
 * covering seeds, mean m and sample standard deviation s (n - 1), the band is
 *   m - h <= value <= m + h,   h = max(k s, abs_tol)
 * (the edge is inside), for either target direction; with fewer seeds the
 * point is "not tested". A run passes when at least one point was tested and
 * none left the band.
 *
 * RCP test, per run set (MLPerf's reference convergence points): the
 * epochs-to-target of the reference seeds and of the runs are each reduced
 * to olympic statistics (drop one minimum and one maximum when there are at
 * least 3 values), and a one-sided two-sample t-test at alpha with one
 * pooled spread, the reference's trimmed standard deviation, gives the
 * lowest plausible mean for the runs:
 *   lower = m_ref - t_{1-alpha}(k_ref + k_run - 2) s_ref sqrt(1/k_ref + 1/k_run)
 * The set passes when its olympic mean is >= lower. s_ref is the sample
 * standard deviation (k - 1) of the same trimmed values the mean is taken
 * over. MLPerf's checker does not do that: its published example reports the
 * population std of the trimmed values (ddof 0), and its checker code takes
 * the population std of the untrimmed list while the mean and the counts are
 * trimmed (see ob_rcp_lower_bound in check.c for the numbers). Any run of the
 * set that did not reach the target (diverged, budget exhausted, aborted)
 * fails the RCP test.
 *
 * Exit codes: 0 every test passed, 1 a test failed, 2 bad input (missing or
 * corrupt file, no reference, runs that do not match the reference).
 */
/* Not OB_CHECK_H: tests/ob_check.h, the tests' assertions, holds that guard. */
#ifndef OB_HARNESS_CHECK_H
#define OB_HARNESS_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "harness/ob_reference.h"

#define OB_BAND_MIN_SEEDS 3
#define OB_BAND_K_DEFAULT 3.0
#define OB_BAND_ABS_TOL_DEFAULT 0.02
#define OB_RCP_ALPHA 0.05

/* ---- statistics --------------------------------------------------------- */

/* P(T <= t) for Student's t distribution with df > 0 degrees of freedom. */
double ob_student_t_cdf(double t, double df);
/* The t with P(T <= t) = p, 0 < p < 1; NaN outside the domain. */
double ob_student_t_quantile(double p, double df);

typedef struct {
    double mean, std; /* std: sample std (count - 1) of the kept values; NaN when count < 2 */
    int count;        /* values kept */
} ob_olympic_stats;

/* Drops one minimum and one maximum when n >= 3, keeps all values otherwise. */
ob_olympic_stats ob_olympic(const double *values, int n);

/* The lowest mean epochs-to-target of run_count runs that the one-sided
 * pooled t-test at alpha accepts against the reference's statistics. */
double ob_rcp_lower_bound(double ref_mean, double ref_std, int ref_count, int run_count, double alpha);

typedef struct {
    ob_olympic_stats ref, run;
    int df;
    double t_quantile, lower_bound;
    double t_statistic, p_value; /* NaN when the reference spread is 0 */
    bool pass;
} ob_rcp_result;

/* The RCP test on converged epochs-to-target values (n_ref >= 3, n_run >= 1). */
ob_rcp_result ob_rcp_test(const double *ref_epochs, int n_ref, const double *run_epochs, int n_run, double alpha);

typedef enum {
    OB_BAND_INSIDE,
    OB_BAND_BELOW,
    OB_BAND_ABOVE,
    OB_BAND_NOT_FINITE, /* the run's value is NaN or infinite: outside any band */
    OB_BAND_NOT_TESTED  /* fewer than OB_BAND_MIN_SEEDS reference seeds cover the epoch */
} ob_band_verdict;

typedef struct {
    ob_band_verdict verdict;
    int n_covering;
    double mean, std, lower, upper;
    double excess; /* BELOW/ABOVE: how far outside the band; otherwise 0 */
} ob_band_point;

ob_band_point ob_band_test_point(const ob_reference_seed *seeds, int n_seeds, double epoch, double value, double k,
                                 double abs_tol);

/* ---- the band test of a curve ------------------------------------------- */

typedef struct {
    const char *reference;     /* a reference file, or NULL to look it up */
    const char *reference_dir; /* where to look it up; NULL = ob_reference_default_dir() */
    double band_k, abs_tol;
    bool tolerate_transients; /* off: DESIGN.md's band, every tested point must be inside */
} ob_check_options;

#define OB_CHECK_OPTIONS_DEFAULT ((ob_check_options){NULL, NULL, OB_BAND_K_DEFAULT, OB_BAND_ABS_TOL_DEFAULT, false})

typedef struct {
    int tested, outside, not_tested;
    int transients; /* tested points outside the band but tolerated (counted in tested, not in outside) */
    bool out_of_memory;
} ob_band_summary;

/* The band test of one curve (eval epochs ascending). With
 * tolerate_transients, a point outside the band whose nearest tested
 * neighbours are inside (none before counts as inside, none after does not)
 * is an isolated transient: an evaluation dip the run recovered from by its
 * next evaluation. Two or more outside in a row, the last tested point, and
 * a non-finite value always count as outside. Every point not inside is
 * printed to out (may be NULL). */
ob_band_summary ob_band_test_curve(const ob_reference_seed *seeds, int n_seeds, const ob_run_identity *id,
                                   const double *epoch, const double *metric, int64_t n, const ob_check_options *o,
                                   FILE *out);

/* ---- leave one out ------------------------------------------------------ */

/* How often would an honest fresh seed fail the band test? Each reference
 * seed's curve is band-tested against the other n - 1 seeds, as if it were a
 * fresh run: a measurement of the band's false-failure rate that needs no new
 * runs (with one seed fewer per band than a real check, so a little harsher). */
typedef struct {
    int64_t seed;
    ob_band_summary band;  /* its points against the band of the others */
    double k_needed;       /* smallest k that keeps every tested point inside (abs_tol as given,
                              no transient tolerated): 0 when abs_tol alone covers them, INFINITY
                              for a non-finite value or a point beyond abs_tol where the others do
                              not spread */
    double k_needed_epoch; /* the eval epoch that sets k_needed; NaN when k_needed is 0 */
} ob_loo_seed;

/* Fills results[n_seeds] (seed order) and returns how many seeds fail
 * (a point outside, or no point tested); -1 when out of memory. Each point
 * not inside is printed to out (may be NULL) as optbench check prints it. */
int ob_band_leave_one_out(const ob_reference *ref, const ob_check_options *o, FILE *out, ob_loo_seed *results);

/* `optbench reference loo REF.h5 [--band-k K] [--abs-tol T] [--tolerate-transients]`: exit 0 every
 * seed passes against the others, 1 some fail, 2 bad input. */
int ob_check_loo_main(int argc, char **argv);

/* ---- the check ---------------------------------------------------------- */

/* Checks the runs (one run, or a set checked together) and writes the report
 * to out, ending with one verdict line per test and "overall: PASS|FAIL".
 * Returns 0 pass, 1 fail, 2 bad input (err says why; nothing is judged). */
int ob_check_runs(const char *const *run_paths, int n_runs, const ob_check_options *options, FILE *out, char *err,
                  size_t err_len);

/* `optbench check RUN.h5|DIR ... [--reference REF.h5] [--reference-dir DIR] [--band-k K] [--abs-tol T]
 * [--tolerate-transients]` */
int ob_check_main(int argc, char **argv);

#endif
