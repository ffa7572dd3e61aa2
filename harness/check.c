/* optbench check: the band and RCP tests of runs against a reference (ob_check.h). */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include "harness/ob_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/ob_cli.h"
#include "harness/ob_fail.h"

#define ERR_LEN 1024
#define PATH_LEN 4096
#define VERDICT_LEN (PATH_LEN + 256) /* a path and a sentence */


/* ---- Student's t -------------------------------------------------------- */

/* Term d_j of the continued fraction of the regularized incomplete beta:
 *   d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),  d_{2m} = m(b-m) x / ((a+2m-1)(a+2m)) */
static double beta_fraction_term(double a, double b, double x, int j) {
    double m = j / 2;
    if (j % 2 == 1) return -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
    return m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
}

/* Lentz's recurrence divides by these; a tiny value stands in for an exact 0. */
static double nonzero(double value) { return fabs(value) < 1e-300 ? 1e-300 : value; }

/* Regularized incomplete beta function
 *   I_x(a,b) = x^a (1-x)^b / (a B(a,b)) / (1 + d_1/(1 + d_2/(1 + ...)))
 * with the fraction evaluated front to back by the modified Lentz method. It
 * converges fast for x < (a+1)/(a+b+2); I_x(a,b) = 1 - I_{1-x}(b,a) covers the rest. */
static double incomplete_beta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    if (x > (a + 1) / (a + b + 2)) return 1 - incomplete_beta(b, a, 1 - x);
    double log_front = a * log(x) + b * log1p(-x) - log(a) - (lgamma(a) + lgamma(b) - lgamma(a + b));
    double c = 1, d = 0, fraction = 1;
    for (int j = 1; j <= 10000; j++) {
        double term = beta_fraction_term(a, b, x, j);
        d = 1 / nonzero(1 + term * d);
        c = nonzero(1 + term / c);
        fraction *= c * d;
        if (fabs(c * d - 1) < 1e-15) break;
    }
    return exp(log_front) / fraction;
}

/* P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2), half of it in each tail. */
double ob_student_t_cdf(double t, double df) {
    if (isnan(t) || !(df > 0)) return NAN;
    double tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t));
    return t >= 0 ? 1 - tail : tail;
}

/* Bisection on the CDF: slow by root-finding standards, but a handful of
 * calls per check makes that irrelevant, and it cannot diverge. */
double ob_student_t_quantile(double p, double df) {
    if (!(p > 0 && p < 1) || !(df > 0)) return NAN;
    if (p == 0.5) return 0; /* the median, by symmetry; bisection would only approach it */
    if (p < 0.5) return -ob_student_t_quantile(1 - p, df);
    double low = 0, high = 1;
    while (ob_student_t_cdf(high, df) < p && high < 1e300) {
        low = high;
        high *= 2;
    }
    for (int i = 0; i < 400 && high - low > 1e-14 * high; i++) {
        double middle = 0.5 * (low + high);
        if (ob_student_t_cdf(middle, df) < p)
            low = middle;
        else
            high = middle;
    }
    return 0.5 * (low + high);
}

/* ---- olympic statistics and the RCP test --------------------------------- */

/* With n >= 3, one minimum and one maximum (two different entries) are dropped;
 *   mean = sum(kept) / k,  std = sqrt(sum((kept - mean)^2) / (k - 1)). */
ob_olympic_stats ob_olympic(const double *values, int n) {
    int lowest = -1, highest = -1;
    if (n >= 3) {
        lowest = 0;
        for (int i = 1; i < n; i++)
            if (values[i] < values[lowest]) lowest = i;
        highest = lowest == 0 ? 1 : 0;
        for (int i = 0; i < n; i++)
            if (i != lowest && values[i] > values[highest]) highest = i;
    }
    double sum = 0, squares = 0;
    int count = 0;
    for (int i = 0; i < n; i++)
        if (i != lowest && i != highest) {
            sum += values[i];
            count++;
        }
    double mean = count > 0 ? sum / count : NAN;
    for (int i = 0; i < n; i++)
        if (i != lowest && i != highest) squares += (values[i] - mean) * (values[i] - mean);
    return (ob_olympic_stats){mean, count >= 2 ? sqrt(squares / (count - 1)) : NAN, count};
}

/* lower = m - t_{1-alpha}(k_ref + k_run - 2) s sqrt(1/k_ref + 1/k_run), the
 * equal-variance two-sample t-test MLPerf uses, with the reference's spread
 * standing for both samples.
 *
 * MLPerf's worked example (training rules, appendix "RCP Examples"):
 * reference epochs 16 14 16 17 16 16 15 16 15 16, 5 submission runs. Olympic
 * mean 15.75 over the 8 kept values, "Stdev 0.43", 3 kept submission runs,
 * df 9, t 1.833: lower = 15.75 - 1.833 * 0.433 * sqrt(1/8 + 1/3) = 15.21.
 * Their 0.433 is the population std (ddof 0) of the kept values; the pooled
 * t-test assumes the sample std, which for the same kept values is 0.463 and
 * gives 15.18 here. MLPerf's checker code takes the population std of all 10
 * values (0.781) with the trimmed mean and counts, which gives 14.78. */
double ob_rcp_lower_bound(double ref_mean, double ref_std, int ref_count, int run_count, double alpha) {
    double t = ob_student_t_quantile(1 - alpha, ref_count + run_count - 2);
    return ref_mean - t * ref_std * sqrt(1.0 / ref_count + 1.0 / run_count);
}

/* t = (m_run - m_ref) / (s_ref sqrt(1/k_ref + 1/k_run)), p = P(T <= t): how
 * likely a mean this fast is for runs drawn like the reference seeds. */
ob_rcp_result ob_rcp_test(const double *ref_epochs, int n_ref, const double *run_epochs, int n_run, double alpha) {
    ob_rcp_result r = {.ref = ob_olympic(ref_epochs, n_ref), .run = ob_olympic(run_epochs, n_run)};
    r.df = r.ref.count + r.run.count - 2;
    r.t_quantile = ob_student_t_quantile(1 - alpha, r.df);
    r.lower_bound = ob_rcp_lower_bound(r.ref.mean, r.ref.std, r.ref.count, r.run.count, alpha);
    double standard_error = r.ref.std * sqrt(1.0 / r.ref.count + 1.0 / r.run.count);
    r.t_statistic = standard_error > 0 ? (r.run.mean - r.ref.mean) / standard_error : NAN;
    r.p_value = isnan(r.t_statistic) ? NAN : ob_student_t_cdf(r.t_statistic, r.df);
    r.pass = r.run.mean >= r.lower_bound;
    return r;
}

/* ---- the band ----------------------------------------------------------- */

/* Eval epochs are step counts over steps per epoch: equal across seeds up to
 * rounding, which must not decide whether a seed covers an epoch. */
static bool same_epoch(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(a)); }

/* A seed's metric at epoch, linear between its eval points; false where its curve does not reach. */
static bool seed_value_at(const ob_reference_seed *seed, double epoch, double *value) {
    const double *at = seed->epoch;
    int64_t n = seed->n_points;
    if (n < 1 || (epoch < at[0] && !same_epoch(epoch, at[0])) || (epoch > at[n - 1] && !same_epoch(epoch, at[n - 1])))
        return false;
    int64_t i = 0;
    while (i < n - 1 && at[i] < epoch && !same_epoch(at[i], epoch)) i++;
    if (i == 0 || same_epoch(at[i], epoch)) {
        *value = seed->metric[i];
        return true;
    }
    double weight = (epoch - at[i - 1]) / (at[i] - at[i - 1]);
    *value = seed->metric[i - 1] + weight * (seed->metric[i] - seed->metric[i - 1]);
    return true;
}

/* Mean and sample std of the covering seeds in one pass (Welford):
 *   mean += (v - mean) / n,  m2 += (v - mean_old)(v - mean_new),  std = sqrt(m2 / (n - 1)). */
ob_band_point ob_band_test_point(const ob_reference_seed *seeds, int n_seeds, double epoch, double value, double k,
                                 double abs_tol) {
    ob_band_point p = {.verdict = OB_BAND_NOT_TESTED, .mean = NAN, .std = NAN, .lower = NAN, .upper = NAN};
    double mean = 0, m2 = 0;
    for (int s = 0; s < n_seeds; s++) {
        double v;
        if (!seed_value_at(&seeds[s], epoch, &v)) continue;
        p.n_covering++;
        double delta = v - mean;
        mean += delta / p.n_covering;
        m2 += delta * (v - mean);
    }
    if (p.n_covering < OB_BAND_MIN_SEEDS) return p;
    p.mean = mean;
    p.std = sqrt(m2 / (p.n_covering - 1));
    double half_width = fmax(k * p.std, abs_tol);
    p.lower = mean - half_width;
    p.upper = mean + half_width;
    if (!isfinite(value)) {
        p.verdict = OB_BAND_NOT_FINITE;
    } else if (value < p.lower) {
        p.verdict = OB_BAND_BELOW;
        p.excess = p.lower - value;
    } else if (value > p.upper) {
        p.verdict = OB_BAND_ABOVE;
        p.excess = value - p.upper;
    } else {
        p.verdict = OB_BAND_INSIDE;
    }
    return p;
}

/* ---- the report --------------------------------------------------------- */

static const char *target_relation(const ob_run_identity *id) {
    return strcmp(id->target_direction, "min") == 0 ? "<=" : ">=";
}

static void print_reference(FILE *out, const char *path, const ob_reference *ref) {
    fprintf(out, "reference %s: %s, %d seeds (", path, ref->name, ref->n_seeds);
    for (int s = 0; s < ref->n_seeds; s++) fprintf(out, "%s%lld", s ? " " : "", (long long)ref->seeds[s].seed);
    fprintf(out, "), target %s %s %g, built %s from %s\n", ref->id.target_metric, target_relation(&ref->id),
            ref->id.target_value, ref->created_utc, ref->git_commits);
}

/* Differences in settings are what a check is for; they are named, not refused. */
static void print_config_notes(FILE *out, const ob_run_record *run, const ob_config *ref_config) {
    const ob_config_key *keys = ob_config_keys(NULL);
    for (int key = ob_reference_next_config_difference(run->config, ref_config, 0); key >= 0;
         key = ob_reference_next_config_difference(run->config, ref_config, key + 1))
        fprintf(out, "note: %s differs from the reference config in %s: %s (reference %s)\n", run->path,
                keys[key].key, ob_config_get_str(run->config, keys[key].key),
                ob_config_get_str(ref_config, keys[key].key));
}

static void print_band_point(FILE *out, const ob_run_identity *id, double epoch, double value, const ob_band_point *p,
                             bool transient) {
    if (p->verdict == OB_BAND_NOT_TESTED) {
        fprintf(out, "  epoch %g: not tested, covered by %d reference seed%s (%d needed)\n", epoch, p->n_covering,
                p->n_covering == 1 ? "" : "s", OB_BAND_MIN_SEEDS);
        return;
    }
    const char *where = p->verdict == OB_BAND_BELOW   ? "below"
                        : p->verdict == OB_BAND_ABOVE ? "above"
                                                      : "outside";
    fprintf(out, "  epoch %g: %s %.6g %s the band [%.6g, %.6g]", epoch, id->target_metric, value, where, p->lower,
            p->upper);
    if (p->verdict == OB_BAND_NOT_FINITE)
        fprintf(out, " (not a number)");
    else
        fprintf(out, " by %.4g", p->excess);
    fprintf(out, " (mean %.6g of %d seeds)%s\n", p->mean, p->n_covering,
            transient ? ": an isolated transient, tolerated" : "");
}

/* An outside point's neighbours among the tested points: inside on both
 * sides (none before counts as inside, none after does not) makes it an
 * isolated transient. A non-finite value is never one. */
static bool is_transient(const ob_band_point *points, int64_t n, int64_t i) {
    if (points[i].verdict != OB_BAND_BELOW && points[i].verdict != OB_BAND_ABOVE) return false;
    int64_t before = i - 1, after = i + 1;
    while (before >= 0 && points[before].verdict == OB_BAND_NOT_TESTED) before--;
    while (after < n && points[after].verdict == OB_BAND_NOT_TESTED) after++;
    return (before < 0 || points[before].verdict == OB_BAND_INSIDE) && after < n &&
           points[after].verdict == OB_BAND_INSIDE;
}

static void tally_curve(const ob_band_point *points, const ob_run_identity *id, const double *epoch,
                        const double *metric, int64_t n, bool tolerate_transients, FILE *out, ob_band_summary *s) {
    for (int64_t i = 0; i < n; i++) {
        const ob_band_point *p = &points[i];
        if (p->verdict == OB_BAND_INSIDE) {
            s->tested++;
            continue;
        }
        bool transient = tolerate_transients && is_transient(points, n, i);
        s->not_tested += p->verdict == OB_BAND_NOT_TESTED;
        s->tested += p->verdict != OB_BAND_NOT_TESTED;
        s->transients += transient;
        s->outside += p->verdict != OB_BAND_NOT_TESTED && !transient;
        if (out) print_band_point(out, id, epoch[i], metric[i], p, transient);
    }
}

ob_band_summary ob_band_test_curve(const ob_reference_seed *seeds, int n_seeds, const ob_run_identity *id,
                                   const double *epoch, const double *metric, int64_t n, const ob_check_options *o,
                                   FILE *out) {
    ob_band_summary summary = {0};
    ob_band_point *points = malloc((size_t)(n > 0 ? n : 1) * sizeof *points);
    if (!points) {
        summary.out_of_memory = true;
        return summary;
    }
    for (int64_t i = 0; i < n; i++)
        points[i] = ob_band_test_point(seeds, n_seeds, epoch[i], metric[i], o->band_k, o->abs_tol);
    tally_curve(points, id, epoch, metric, n, o->tolerate_transients, out, &summary);
    free(points);
    return summary;
}

static ob_band_summary band_test_run(FILE *out, const ob_run_record *run, const ob_reference *ref,
                                     const ob_check_options *o) {
    fprintf(out, "band test of %s: mean +- max(%g * std, %g) of the reference seeds at each eval epoch%s\n",
            run->path, o->band_k, o->abs_tol, o->tolerate_transients ? ", isolated transients tolerated" : "");
    return ob_band_test_curve(ref->seeds, ref->n_seeds, &run->id, run->eval_epoch, run->eval_metric, run->n_eval, o,
                              out);
}

static bool band_verdict(const char *path, ob_band_summary s, char *verdict, size_t len) {
    bool pass = s.tested > 0 && s.outside == 0 && !s.out_of_memory;
    char transients[64] = "";
    if (s.transients > 0)
        snprintf(transients, sizeof transients, ", %d isolated transient%s tolerated", s.transients,
                 s.transients == 1 ? "" : "s");
    int inside = s.tested - s.outside - s.transients;
    if (s.out_of_memory)
        snprintf(verdict, len, "band %s: FAIL (out of memory)", path);
    else if (s.tested == 0)
        snprintf(verdict, len, "band %s: FAIL (no eval point is covered by %d reference seeds; %d not tested)", path,
                 OB_BAND_MIN_SEEDS, s.not_tested);
    else if (pass)
        snprintf(verdict, len, "band %s: PASS (%d eval point%s inside the band%s, %d not tested)", path, inside,
                 inside == 1 ? "" : "s", transients, s.not_tested);
    else
        snprintf(verdict, len, "band %s: FAIL (%d of %d tested eval points left the band%s, %d not tested)", path,
                 s.outside, s.tested, transients, s.not_tested);
    return pass;
}

/* ---- leave one out ------------------------------------------------------ */

/* The k a point needs: 0 inside abs_tol, |v - m| / s beyond it. */
static double point_k_needed(const ob_band_point *at_zero_k, double value) {
    if (at_zero_k->verdict == OB_BAND_INSIDE) return 0;
    if (at_zero_k->verdict == OB_BAND_NOT_FINITE || !(at_zero_k->std > 0)) return INFINITY;
    return fabs(value - at_zero_k->mean) / at_zero_k->std;
}

/* The largest k any of the held-out seed's tested points needs, and where. */
static void find_k_needed(const ob_reference_seed *held, const ob_reference_seed *others, int n_others,
                          double abs_tol, ob_loo_seed *r) {
    for (int64_t i = 0; i < held->n_points; i++) {
        ob_band_point bare = ob_band_test_point(others, n_others, held->epoch[i], held->metric[i], 0, abs_tol);
        if (bare.verdict == OB_BAND_NOT_TESTED) continue;
        double needed = point_k_needed(&bare, held->metric[i]);
        if (needed > r->k_needed) {
            r->k_needed = needed;
            r->k_needed_epoch = held->epoch[i];
        }
    }
}

/* One held-out seed's points against the band of `others`. */
static ob_loo_seed leave_out(const ob_reference *ref, const ob_reference_seed *held, const ob_reference_seed *others,
                             const ob_check_options *o, FILE *out) {
    ob_loo_seed r = {.seed = held->seed, .k_needed_epoch = NAN};
    r.band = ob_band_test_curve(others, ref->n_seeds - 1, &ref->id, held->epoch, held->metric, held->n_points, o, out);
    find_k_needed(held, others, ref->n_seeds - 1, o->abs_tol, &r);
    return r;
}

static void print_loo_seed(FILE *out, const ob_loo_seed *r, bool fails) {
    fprintf(out, "  %s: %d of %d tested points outside", fails ? "FAIL" : "PASS", r->band.outside, r->band.tested);
    if (r->band.transients > 0)
        fprintf(out, " (%d isolated transient%s tolerated)", r->band.transients, r->band.transients == 1 ? "" : "s");
    fprintf(out, "; k needed %.3g", r->k_needed);
    if (!isnan(r->k_needed_epoch)) fprintf(out, " (epoch %g)", r->k_needed_epoch);
    fputc('\n', out);
}

/* others = every seed but s, in order: the ones after it move up a slot. */
int ob_band_leave_one_out(const ob_reference *ref, const ob_check_options *o, FILE *out, ob_loo_seed *results) {
    int n = ref->n_seeds, failing = 0;
    ob_reference_seed *others = malloc((size_t)n * sizeof *others);
    if (!others) return -1;
    for (int s = 0; s < n; s++) {
        memcpy(others, ref->seeds, (size_t)n * sizeof *others);
        memmove(others + s, others + s + 1, (size_t)(n - 1 - s) * sizeof *others);
        if (out) fprintf(out, "seed %lld against the other %d:\n", (long long)ref->seeds[s].seed, n - 1);
        results[s] = leave_out(ref, &ref->seeds[s], others, o, out);
        if (results[s].band.out_of_memory) {
            failing = -1;
            break;
        }
        bool fails = results[s].band.tested == 0 || results[s].band.outside > 0;
        failing += fails;
        if (out) print_loo_seed(out, &results[s], fails);
    }
    free(others);
    return failing;
}

/* A run that did not reach its target fails the RCP test whatever the others did. */
static const ob_run_record *first_unconverged(const ob_run_record *runs, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(runs[i].status, "converged") != 0 || !isfinite(runs[i].epochs_to_target)) return &runs[i];
    return NULL;
}

static void print_epochs(FILE *out, const char *what, const double *epochs, int n) {
    fprintf(out, "  %s epochs to target:", what);
    for (int i = 0; i < n; i++) fprintf(out, " %g", epochs[i]);
    fprintf(out, "\n");
}

static void print_rcp(FILE *out, const ob_rcp_result *r) {
    fprintf(out, "  reference olympic mean %.6g, trimmed std %.6g (over %d seeds); runs olympic mean %.6g (over %d)\n",
            r->ref.mean, r->ref.std, r->ref.count, r->run.mean, r->run.count);
    fprintf(out, "  lower bound %.6g = %.6g - t(%.2f, df %d) %.4f * %.6g * sqrt(1/%d + 1/%d)", r->lower_bound,
            r->ref.mean, 1 - OB_RCP_ALPHA, r->df, r->t_quantile, r->ref.std, r->ref.count, r->run.count);
    if (isnan(r->p_value))
        fprintf(out, "; the reference seeds do not spread, the bound is their mean\n");
    else
        fprintf(out, "; t = %.4g, one-sided p = %.4g\n", r->t_statistic, r->p_value);
}

/* The failing verdict of a set with a run that did not reach its target. */
static void print_unconverged(FILE *out, const ob_run_record *run, char *verdict, size_t len) {
    char reason[PATH_LEN + 64];
    if (strcmp(run->status, "diverged") == 0)
        snprintf(reason, sizeof reason, "%s diverged", run->path);
    else
        snprintf(reason, sizeof reason, "%s did not reach the target: status %s", run->path, run->status);
    fprintf(out, "  %s\n", reason);
    snprintf(verdict, len, "rcp: FAIL (%s)", reason);
}

static bool rcp_on_epochs(FILE *out, const double *ref_epochs, int n_ref, const double *run_epochs, int n_run,
                          char *verdict, size_t len) {
    print_epochs(out, "reference", ref_epochs, n_ref);
    print_epochs(out, n_run == 1 ? "run" : "runs", run_epochs, n_run);
    ob_rcp_result r = ob_rcp_test(ref_epochs, n_ref, run_epochs, n_run, OB_RCP_ALPHA);
    print_rcp(out, &r);
    snprintf(verdict, len, "rcp: %s (olympic mean %.6g %s lower bound %.6g epochs to target%s)",
             r.pass ? "PASS" : "FAIL", r.run.mean, r.pass ? ">=" : "<", r.lower_bound,
             r.pass ? "" : ": implausibly fast");
    return r.pass;
}

static bool rcp_test_runs(FILE *out, const ob_run_record *runs, int n, const ob_reference *ref, char *verdict,
                          size_t len) {
    fprintf(out, "RCP test of %d run%s: one-sided t-test at alpha %g against the reference's epochs to target\n", n,
            n == 1 ? "" : "s", OB_RCP_ALPHA);
    const ob_run_record *unconverged = first_unconverged(runs, n);
    if (unconverged) {
        print_unconverged(out, unconverged, verdict, len);
        return false;
    }
    double *ref_epochs = malloc((size_t)ref->n_seeds * sizeof(double));
    double *run_epochs = malloc((size_t)n * sizeof(double));
    bool pass = false;
    if (ref_epochs && run_epochs) {
        for (int s = 0; s < ref->n_seeds; s++) ref_epochs[s] = ref->seeds[s].epochs_to_target;
        for (int i = 0; i < n; i++) run_epochs[i] = runs[i].epochs_to_target;
        pass = rcp_on_epochs(out, ref_epochs, ref->n_seeds, run_epochs, n, verdict, len);
    } else {
        snprintf(verdict, len, "rcp: FAIL (out of memory)");
    }
    free(ref_epochs);
    free(run_epochs);
    return pass;
}

/* ---- the check ---------------------------------------------------------- */

static int read_runs(const char *const *paths, int n, ob_run_record *runs, char *err, size_t err_len) {
    for (int i = 0; i < n; i++)
        if (ob_run_record_read(paths[i], &runs[i], err, err_len)) return 2;
    return 0;
}

/* The explicit reference, or the one the first run's identity names. */
static int locate_reference(const ob_run_record *run, const ob_check_options *o, char *path, size_t path_len,
                            char *err, size_t err_len) {
    if (o->reference) {
        snprintf(path, path_len, "%s", o->reference);
        return 0;
    }
    if (ob_reference_path(o->reference_dir, &run->id, path, path_len))
        return ob_fail(err, err_len, "%s: reference path too long", run->path);
    if (access(path, F_OK) != 0)
        return ob_fail(err, err_len,
                    "no reference for %s: %s does not exist (build one with optbench reference build, or give "
                    "--reference)",
                    run->path, path);
    return 0;
}

static int check_identities(const ob_run_record *runs, int n, const ob_reference *ref, const char *ref_path,
                            char *err, size_t err_len) {
    for (int i = 0; i < n; i++)
        if (ob_run_identity_compare(&runs[i].id, runs[i].path, &ref->id, ref_path, err, err_len)) return 2;
    return 0;
}

static void print_all_config_notes(FILE *out, const ob_run_record *runs, int n, const ob_reference *ref) {
    ob_config *ref_config = ob_config_new();
    char err[ERR_LEN];
    if (ref_config && ob_config_load_ini_text(ref_config, ref->config, "the reference config", err, sizeof err) == 0)
        for (int i = 0; i < n; i++) print_config_notes(out, &runs[i], ref_config);
    else
        fprintf(out, "note: configs not compared (%s)\n", ref_config ? err : "out of memory");
    ob_config_free(ref_config);
}

/* Runs every test, then the verdict lines; 0 pass, 1 fail. */
static int judge(FILE *out, const ob_run_record *runs, int n, const ob_reference *ref, const char *ref_path,
                 const ob_check_options *o) {
    char (*verdicts)[VERDICT_LEN] = calloc((size_t)n + 1, sizeof *verdicts);
    if (!verdicts) return 1;
    print_reference(out, ref_path, ref);
    print_all_config_notes(out, runs, n, ref);
    bool pass = true;
    for (int i = 0; i < n; i++)
        pass &= band_verdict(runs[i].path, band_test_run(out, &runs[i], ref, o), verdicts[i], VERDICT_LEN);
    pass &= rcp_test_runs(out, runs, n, ref, verdicts[n], VERDICT_LEN);
    for (int i = 0; i <= n; i++) fprintf(out, "verdict %s\n", verdicts[i]);
    fprintf(out, "overall: %s\n", pass ? "PASS" : "FAIL");
    free(verdicts);
    return pass ? 0 : 1;
}

int ob_check_runs(const char *const *run_paths, int n_runs, const ob_check_options *options, FILE *out, char *err,
                  size_t err_len) {
    if (n_runs < 1) return ob_fail(err, err_len, "expected at least one run file or directory to check");
    ob_run_record *runs = calloc((size_t)n_runs, sizeof *runs);
    if (!runs) return 1;
    ob_reference ref = {0};
    char ref_path[PATH_LEN];
    int rc = read_runs(run_paths, n_runs, runs, err, err_len);
    for (int i = 1; i < n_runs && !rc; i++)
        rc = ob_run_identity_compare(&runs[i].id, runs[i].path, &runs[0].id, runs[0].path, err, err_len);
    if (!rc) rc = locate_reference(&runs[0], options, ref_path, sizeof ref_path, err, err_len);
    if (!rc) rc = ob_reference_read(ref_path, &ref, err, err_len);
    if (!rc) rc = check_identities(runs, n_runs, &ref, ref_path, err, err_len);
    if (!rc) rc = judge(out, runs, n_runs, &ref, ref_path, options);
    ob_reference_free(&ref);
    for (int i = 0; i < n_runs; i++) ob_run_record_free(&runs[i]);
    free(runs);
    return rc;
}

/* ---- optbench check ----------------------------------------------------- */

static const char CHECK_USAGE[] =
    "usage: optbench check RUN.h5|DIR ... [--reference REF.h5] [--reference-dir DIR] [--band-k K] [--abs-tol T]\n"
    "               [--tolerate-transients]\n"
    "  One run is checked alone; several runs or a directory are checked as a set (band test per run,\n"
    "  RCP test on the set's olympic mean). Without --reference the reference is\n"
    "  <reference-dir>/<workload>/<preset>/<name>.h5 (reference-dir: $OB_REFERENCE_DIR or the source\n"
    "  tree's results/reference). Band: mean +- max(K * std, T), K = 3, T = 0.02 unless given.\n"
    "  --tolerate-transients: a point outside the band between two inside it (or first, before one\n"
    "  inside) is an isolated transient and does not fail the run (DESIGN.md's band counts it).\n"
    "  Exit 0 pass, 1 fail, 2 bad input.\n";

/* A finite number >= minimum (above it when exclusive). */
static int parse_number(const char *flag, const char *text, double minimum, bool exclusive, double *value, char *err,
                        size_t err_len) {
    char *end;
    double number = strtod(text, &end);
    bool ok = end != text && *end == '\0' && isfinite(number) && (exclusive ? number > minimum : number >= minimum);
    if (!ok)
        return ob_fail(err, err_len, "%s: expected a number %s %g, got \"%s\"", flag, exclusive ? ">" : ">=", minimum,
                    text);
    *value = number;
    return 0;
}

static int parse_check_flag(int argc, char **argv, int *i, ob_check_options *o, char *err, size_t err_len) {
    const char *flag = argv[*i];
    if (strcmp(flag, "--tolerate-transients") == 0) {
        o->tolerate_transients = true;
        return 0;
    }
    if (*i + 1 >= argc) return ob_fail(err, err_len, "%s: expected a value after the flag", flag);
    const char *value = argv[++*i];
    if (strcmp(flag, "--reference") == 0) o->reference = value;
    if (strcmp(flag, "--reference-dir") == 0) o->reference_dir = value;
    if (strcmp(flag, "--band-k") == 0) return parse_number(flag, value, 0, true, &o->band_k, err, err_len);
    if (strcmp(flag, "--abs-tol") == 0) return parse_number(flag, value, 0, false, &o->abs_tol, err, err_len);
    return 0;
}

static bool is_band_flag(const char *arg) {
    return strcmp(arg, "--band-k") == 0 || strcmp(arg, "--abs-tol") == 0 || strcmp(arg, "--tolerate-transients") == 0;
}

static bool is_check_flag(const char *arg) {
    return strcmp(arg, "--reference") == 0 || strcmp(arg, "--reference-dir") == 0 || is_band_flag(arg);
}

static int parse_check_args(int argc, char **argv, ob_check_options *o, char **inputs, int *n_inputs, char *err,
                            size_t err_len) {
    for (int i = 2; i < argc; i++) {
        if (is_check_flag(argv[i])) {
            if (parse_check_flag(argc, argv, &i, o, err, err_len)) return 2;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            return ob_fail(err, err_len, "unknown flag %s (see optbench check --help)", argv[i]);
        } else {
            inputs[(*n_inputs)++] = argv[i];
        }
    }
    return *n_inputs ? 0 : ob_fail(err, err_len, "expected at least one run file or directory to check");
}

int ob_check_main(int argc, char **argv) {
    if (ob_cli_asks_help(argc, argv, 2)) {
        fputs(CHECK_USAGE, stdout);
        return 0;
    }
    char err[ERR_LEN] = "";
    ob_check_options options = OB_CHECK_OPTIONS_DEFAULT;
    char **inputs = calloc((size_t)argc, sizeof *inputs), **paths = NULL;
    int n_inputs = 0, n_paths = 0;
    int rc = inputs ? parse_check_args(argc, argv, &options, inputs, &n_inputs, err, sizeof err) : 1;
    if (!rc) rc = ob_run_paths_expand(inputs, n_inputs, &paths, &n_paths, err, sizeof err);
    if (!rc) rc = ob_check_runs((const char *const *)paths, n_paths, &options, stdout, err, sizeof err);
    if (rc == 2 && err[0]) fprintf(stderr, "optbench: check: %s\n", err);
    ob_run_paths_free(paths, n_paths);
    free(inputs);
    return rc;
}

/* ---- optbench reference loo --------------------------------------------- */

static const char LOO_USAGE[] =
    "usage: optbench reference loo REF.h5 [--band-k K] [--abs-tol T] [--tolerate-transients]\n"
    "  Band-tests each seed of the reference against the other seeds, as optbench check would test a\n"
    "  fresh seed (K = 3, T = 0.02 unless given), and prints the k each seed needs to pass: how often\n"
    "  honest runs fail the band at this K. Exit 0 every seed passes, 1 some fail, 2 bad input.\n";

static int parse_loo_args(int argc, char **argv, ob_check_options *o, const char **path, char *err,
                          size_t err_len) {
    for (int i = 3; i < argc; i++) {
        if (is_band_flag(argv[i])) {
            if (parse_check_flag(argc, argv, &i, o, err, err_len)) return 2;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            return ob_fail(err, err_len, "unknown flag %s (see optbench reference loo --help)", argv[i]);
        } else if (*path) {
            return ob_fail(err, err_len, "expected one reference file, got %s and %s", *path, argv[i]);
        } else {
            *path = argv[i];
        }
    }
    return *path ? 0 : ob_fail(err, err_len, "expected a reference file (REF.h5)");
}

/* The largest k any seed needs, and whose it is. */
static int hardest_seed(const ob_loo_seed *results, int n) {
    int hardest = 0;
    for (int s = 1; s < n; s++)
        if (results[s].k_needed > results[hardest].k_needed) hardest = s;
    return hardest;
}

static void print_loo_summary(FILE *out, const ob_loo_seed *results, int n, int failing, const ob_check_options *o) {
    const ob_loo_seed *hard = &results[hardest_seed(results, n)];
    fprintf(out,
            "summary: %d of %d seeds fail the band test against the other %d (k = %g, abs_tol %g%s); the largest k "
            "needed is %.3g (seed %lld)\n",
            failing, n, n - 1, o->band_k, o->abs_tol, o->tolerate_transients ? ", isolated transients tolerated" : "",
            hard->k_needed, (long long)hard->seed);
}

static int run_loo(const char *path, const ob_check_options *o, FILE *out, char *err, size_t err_len) {
    ob_reference ref = {0};
    if (ob_reference_read(path, &ref, err, err_len)) return 2;
    ob_loo_seed *results = calloc((size_t)ref.n_seeds, sizeof *results);
    int rc = results ? 0 : ob_fail(err, err_len, "out of memory");
    if (!rc) {
        print_reference(out, path, &ref);
        int failing = ob_band_leave_one_out(&ref, o, out, results);
        if (failing < 0) {
            rc = ob_fail(err, err_len, "out of memory");
        } else {
            print_loo_summary(out, results, ref.n_seeds, failing, o);
            rc = failing > 0;
        }
    }
    free(results);
    ob_reference_free(&ref);
    return rc;
}

int ob_check_loo_main(int argc, char **argv) {
    if (ob_cli_asks_help(argc, argv, 3)) {
        fputs(LOO_USAGE, stdout);
        return 0;
    }
    char err[ERR_LEN] = "";
    ob_check_options options = OB_CHECK_OPTIONS_DEFAULT;
    const char *path = NULL;
    int rc = parse_loo_args(argc, argv, &options, &path, err, sizeof err);
    if (!rc) rc = run_loo(path, &options, stdout, err, sizeof err);
    if (rc == 2 && err[0]) fprintf(stderr, "optbench: reference loo: %s\n", err);
    return rc;
}
