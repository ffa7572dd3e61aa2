#include "optimizers/precision/ob_fqt.h"
#include "optimizers/precision/ob_name_table.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizers/precision/ob_format.h"

static const char *const quantizer_names[OB_FQT_QUANTIZER_COUNT] = {"ptq", "psq", "bhq"};

#define FQT_MIN_BITS 1
#define FQT_MAX_BITS 16

const char *ob_fqt_quantizer_name(ob_fqt_quantizer q) {
    return q >= 0 && q < OB_FQT_QUANTIZER_COUNT ? quantizer_names[q] : "unknown";
}

int ob_fqt_quantizer_parse(const char *name, ob_fqt_quantizer *out) {
    int q = ob_name_table_find(quantizer_names, OB_FQT_QUANTIZER_COUNT, name);
    if (q < 0) return 2;
    *out = (ob_fqt_quantizer)q;
    return 0;
}

int ob_fqt_check_bits(int bits, char *err, size_t err_len) {
    if (bits >= FQT_MIN_BITS && bits <= FQT_MAX_BITS) return 0;
    snprintf(err, err_len, "fqt: %d bits, expected %d..%d", bits, FQT_MIN_BITS, FQT_MAX_BITS);
    return 2;
}

/* ---- grids over a range ---- */

typedef struct {
    float lo, hi;
    bool finite; /* every value it was taken over was finite */
} value_range;

/* isfinite, in the form GCC vectorises. */
static inline bool finite_value(float x) { return fabsf(x) <= FLT_MAX; }

static value_range range_of(const float *x, int64_t n) {
    float lo = INFINITY, hi = -INFINITY;
    int nonfinite = 0; /* an int, not a bool: GCC vectorises the | reduction only then */
    /* min/max leave NaN unspecified; any NaN or infinity sets nonfinite,
     * and then the range is not used. */
#pragma omp simd reduction(min : lo) reduction(max : hi) reduction(| : nonfinite)
    for (int64_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        nonfinite |= !finite_value(x[i]);
    }
    return (value_range){lo, hi, !nonfinite};
}

/* The grid of 2^bits levels from lo to hi: step (hi - lo) / (2^bits - 1).
 * Its step is 0 when the range is a single value, or too narrow for a
 * nonzero fp32 step; callers leave such values exact. */
static ob_int_grid grid_over(value_range range, int bits) {
    double step = ((double)range.hi - range.lo) / (ldexp(1.0, bits) - 1.0);
    return (ob_int_grid){bits, (float)step, range.lo};
}

/* Stochastic rounding of n values, all inside `range`, onto its grid; value
 * j draws ob_rng_word(stream, first_index + j), fetched in chunks. A range
 * over non-finite values gives NaN. */
#define RANDOM_CHUNK 1024
static void round_into_range(const float *in, float *out, int64_t n, value_range range, int bits,
                             const ob_rng_stream *stream, uint64_t first_index) {
    ob_int_grid grid = grid_over(range, bits);
    if (!range.finite || grid.scale == 0.0f) {
        for (int64_t j = 0; j < n; j++) out[j] = range.finite ? in[j] : NAN;
        return;
    }
    for (int64_t start = 0; start < n; start += RANDOM_CHUNK) {
        uint32_t random[RANDOM_CHUNK];
        int64_t length = n - start < RANDOM_CHUNK ? n - start : RANDOM_CHUNK;
        ob_rng_words(stream, first_index + (uint64_t)start, length, random);
        ob_int_grid_round_array(in + start, out + start, length, &grid, OB_ROUND_STOCHASTIC, random);
    }
}

/* ---- forward ---- */

#define FORWARD_CHUNK 4096
/* Below this many values a parallel region costs more than the pass (the
 * biases and batch-norm vectors); min, max and rounding are exact, so the
 * result does not depend on it. */
#define FORWARD_PARALLEL_MIN (4 * FORWARD_CHUNK)
void ob_fqt_quantize_forward(const float *in, float *out, int64_t n, int bits) {
    bits = bits < FQT_MIN_BITS ? FQT_MIN_BITS : bits > FQT_MAX_BITS ? FQT_MAX_BITS : bits;
    float lo = INFINITY, hi = -INFINITY;
#pragma omp parallel for simd schedule(static) reduction(min : lo) reduction(max : hi) if (n >= FORWARD_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        lo = finite_value(in[i]) && in[i] < lo ? in[i] : lo;
        hi = finite_value(in[i]) && in[i] > hi ? in[i] : hi;
    }
    ob_int_grid grid = grid_over((value_range){lo, hi, true}, bits);
    if (!(hi > lo) || grid.scale == 0.0f) { /* no finite values, one value, or no fp32 step: exact */
        if (out != in) memcpy(out, in, (size_t)n * sizeof *out);
        return;
    }
    int64_t chunks = (n + FORWARD_CHUNK - 1) / FORWARD_CHUNK;
#pragma omp parallel for schedule(static) if (n >= FORWARD_PARALLEL_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t start = c * FORWARD_CHUNK, length = n - start < FORWARD_CHUNK ? n - start : FORWARD_CHUNK;
        float chunk_in[FORWARD_CHUNK]; /* a copy: out may be in, and infinities pass through unclamped */
        memcpy(chunk_in, in + start, (size_t)length * sizeof *chunk_in);
        ob_int_grid_round_array(chunk_in, out + start, length, &grid, OB_ROUND_NEAREST_EVEN, NULL);
        for (int64_t i = 0; i < length; i++)
            out[start + i] = finite_value(chunk_in[i]) ? out[start + i] : chunk_in[i];
    }
}

/* ---- ptq and psq ----
 *
 * Every output of one call rounds the same rows over the same ranges; a
 * row is read and its range taken once for all of them, the first output
 * written last so that it may be the input itself. */

static void round_row_into_outputs(const float *in, int64_t row, int64_t cols, value_range range,
                                   const ob_fqt_gradient_output *outputs, int count) {
    for (int k = count - 1; k >= 0; k--)
        round_into_range(in + row * cols, outputs[k].out + row * cols, cols, range, outputs[k].bits,
                         outputs[k].stream, (uint64_t)(row * cols));
}

static void quantize_per_tensor(const float *in, int64_t rows, int64_t cols, const ob_fqt_gradient_output *outputs,
                                int count) {
    value_range range = range_of(in, rows * cols); /* serial: one pass, far cheaper than the random bits */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) round_row_into_outputs(in, r, cols, range, outputs, count);
}

static void quantize_per_row(const float *in, int64_t rows, int64_t cols, const ob_fqt_gradient_output *outputs,
                             int count) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        round_row_into_outputs(in, r, cols, range_of(in + r * cols, cols), outputs, count);
}

/* ---- bhq ----
 *
 * Block Householder quantizer (Chen et al. 2020, section 5). PSQ's
 * variance grows with sum_r R_r^2 over the rows' ranges, so one row far
 * larger than the rest costs as much as if all were that large. BHQ
 * quantizes Y = S X for an invertible S computed from X and returns
 * S^-1 Q(Y); E[S^-1 Q(Y)] = S^-1 Y = X, since S never sees the random bits.
 *
 * S is block diagonal over groups of rows: a leader x_0 of magnitude
 * M = max|x_0| and n - 1 members of magnitude at most m << M, with
 *   S = H D,  D = diag(1, mu, ..., mu)  (members scaled up),
 *             H = I - 2 v v^T / v^T v,  v = e_0 - 1/sqrt(n)
 * H reflects the leader onto the all-equal direction (H e_0 = 1/sqrt(n)),
 * and H = H^T = H^-1. Each row of Y is x_0/sqrt(n) plus mu times a mixture
 * of members: range about 2 (M/sqrt(n) + mu m). SR's error E has per-row
 * variance V ~ range^2, and D^-1 H E puts 1/n of it on the leader and the
 * rest, divided by mu^2, on the members, so a group costs about
 *   n (1/n + (1 - 1/n)/mu^2) (2 (M/sqrt(n) + mu m))^2,
 * least at mu^3 = (n - 1) M / (sqrt(n) m), and near 4 M^2 / n as m -> 0,
 * against 4 M^2 under PSQ.
 *
 * Grouping: the G largest rows lead; the other rows, in order of
 * magnitude, are shared out in proportion to the leaders' magnitudes
 * (which minimises sum_g M_g^2 / n_g for a fixed number of rows), by
 * cumulative rounding. G is the cheapest under the cost above among 1..64,
 * then powers of two up to rows/2; G = 0 (plain PSQ) whenever none is
 * cheaper than PSQ, e.g. for rows of one magnitude. The transform's fp32
 * rounding is a few ulp of the rows, 2^(24 - bits) times below the step.
 *
 * Workspace (3 * rows floats, accessed through memcpy): the rows ranked by
 * magnitude, 2 floats each, then a record of 2 floats per group.
 */

#define BHQ_EXHAUSTIVE_GROUPS 64
#define BHQ_BLOCK_COLS 256

typedef struct {
    float magnitude;
    uint32_t row;
} ranked_row;

typedef struct {
    float scale;      /* mu */
    uint32_t members; /* n - 1 */
} bhq_group;

_Static_assert(sizeof(ranked_row) == 2 * sizeof(float), "a ranked row takes two workspace floats");
_Static_assert(sizeof(bhq_group) == 2 * sizeof(float), "a group record takes two workspace floats");

static ranked_row ranked_at(const float *ranked, int64_t i) {
    ranked_row r;
    memcpy(&r, ranked + 2 * i, sizeof r);
    return r;
}

static bhq_group group_at(const float *groups, int64_t g) {
    bhq_group group;
    memcpy(&group, groups + 2 * g, sizeof group);
    return group;
}

/* Larger magnitude first; equal magnitudes by row, so the order (and the
 * result) does not depend on qsort's algorithm. */
static int by_magnitude_descending(const void *a, const void *b) {
    ranked_row x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    if (x.magnitude != y.magnitude) return x.magnitude > y.magnitude ? -1 : 1;
    return (x.row > y.row) - (x.row < y.row);
}

/* Ranks the rows by max |x|; false if any value is not finite. */
static bool rank_rows(const float *x, int64_t rows, int64_t cols, float *ranked) {
    bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite)
    for (int64_t r = 0; r < rows; r++) {
        value_range range = range_of(x + r * cols, cols);
        ranked_row entry = {fmaxf(fabsf(range.lo), fabsf(range.hi)), (uint32_t)r};
        memcpy(ranked + 2 * r, &entry, sizeof entry);
        finite = finite && range.finite;
    }
    if (finite) qsort(ranked, (size_t)rows, sizeof(ranked_row), by_magnitude_descending);
    return finite;
}

/* The modelled variance of a group (in units of squared range) and its mu;
 * see the comment above. Members below 2^-24 of the leader are beneath fp32
 * resolution: m is floored there so that mu stays finite. */
static double group_cost(double leader, double member, int64_t n, double *mu) {
    if (n == 1) {
        *mu = 1.0;
        return 4.0 * leader * leader;
    }
    double spread = leader / sqrt((double)n);
    *mu = cbrt((double)(n - 1) * spread / fmax(member, ldexp(leader, -24)));
    double range = 2.0 * (spread + *mu * member);
    return (double)n * (1.0 / (double)n + (1.0 - 1.0 / (double)n) / (*mu * *mu)) * range * range;
}

/* How many of the `members` rows go to the leaders before one: their
 * share of the leaders' total magnitude, rounded down. Consecutive
 * differences are each leader's count, and they add up to `members`. */
static int64_t members_before(int64_t members, double leader_sum_before, double leader_total) {
    return (int64_t)floor((double)members * (leader_sum_before / leader_total));
}

/* Modelled cost of G leaders; fills the group records when groups != NULL. */
static double grouping_cost(const float *ranked, int64_t rows, int64_t leaders, float *groups) {
    double total = 0;
    for (int64_t g = 0; g < leaders; g++) total += ranked_at(ranked, g).magnitude;
    int64_t members = rows - leaders;
    double cost = 0, sum_before = 0;
    for (int64_t g = 0; g < leaders; g++) {
        double leader = ranked_at(ranked, g).magnitude;
        int64_t begin = members_before(members, sum_before, total);
        sum_before += leader;
        int64_t end = members_before(members, sum_before, total); /* the last: total / total = 1 exactly */
        double member = end > begin ? ranked_at(ranked, leaders + begin).magnitude : 0.0;
        double mu;
        cost += group_cost(leader, member, end - begin + 1, &mu);
        if (groups) {
            bhq_group group = {(float)mu, (uint32_t)(end - begin)};
            memcpy(groups + 2 * g, &group, sizeof group);
        }
    }
    return cost;
}

/* The number of leaders with the smallest modelled cost; 0 = PSQ. */
static int64_t choose_leaders(const float *ranked, int64_t rows) {
    if (ranked_at(ranked, 0).magnitude == 0.0f) return 0; /* all zero */
    double best = 0;
    for (int64_t r = 0; r < rows; r++) {
        double magnitude = ranked_at(ranked, r).magnitude;
        best += 4.0 * magnitude * magnitude;
    }
    int64_t best_leaders = 0;
    for (int64_t g = 1; g <= rows / 2; g = g < BHQ_EXHAUSTIVE_GROUPS ? g + 1 : 2 * g) {
        double cost = grouping_cost(ranked, rows, g, NULL);
        if (cost < best) {
            best = cost;
            best_leaders = g;
        }
    }
    return best_leaders;
}

static float *ranked_row_at(float *matrix, int64_t cols, int64_t begin, const float *ranked, int64_t rank) {
    return matrix + (int64_t)ranked_at(ranked, rank).row * cols + begin;
}

/* Y = H D X (forward) or X = D^-1 H Y (backward) for one group, on columns
 * [begin, begin + width). With u = 1/sqrt(n), v = (1 - u, -u, ..., -u):
 * dot = v.y, leader -= dot, member += dot u / (1 - u). Each loop over a
 * row is branch-free, so that it vectorises. */
static void transform_group(float *matrix, int64_t cols, int64_t begin, int64_t width, const float *ranked,
                            int64_t leader_rank, int64_t first_member_rank, bhq_group group, bool forward) {
    double dot[BHQ_BLOCK_COLS];
    double u = 1.0 / sqrt((double)group.members + 1.0);
    float *leader = ranked_row_at(matrix, cols, begin, ranked, leader_rank);
    for (int64_t j = 0; j < width; j++) dot[j] = (1.0 - u) * leader[j];
    for (int64_t i = 0; i < group.members; i++) {
        float *member = ranked_row_at(matrix, cols, begin, ranked, first_member_rank + i);
        if (forward)
            for (int64_t j = 0; j < width; j++) member[j] *= group.scale;
        for (int64_t j = 0; j < width; j++) dot[j] -= u * member[j];
    }
    for (int64_t j = 0; j < width; j++) leader[j] = (float)(leader[j] - dot[j]);
    double member_share = u / (1.0 - u);
    for (int64_t i = 0; i < group.members; i++) {
        float *member = ranked_row_at(matrix, cols, begin, ranked, first_member_rank + i);
        if (forward)
            for (int64_t j = 0; j < width; j++) member[j] = (float)(member[j] + dot[j] * member_share);
        else
            for (int64_t j = 0; j < width; j++) member[j] = (float)(member[j] + dot[j] * member_share) / group.scale;
    }
}

/* Every group's transform, the columns in blocks across the threads. */
static void transform_groups(float *matrix, int64_t cols, const float *ranked, const float *groups, int64_t leaders,
                             bool forward) {
    int64_t blocks = (cols + BHQ_BLOCK_COLS - 1) / BHQ_BLOCK_COLS;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t begin = b * BHQ_BLOCK_COLS;
        int64_t width = cols - begin < BHQ_BLOCK_COLS ? cols - begin : BHQ_BLOCK_COLS;
        int64_t first_member = leaders;
        for (int64_t g = 0; g < leaders; g++) {
            bhq_group group = group_at(groups, g);
            if (group.members > 0)
                transform_group(matrix, cols, begin, width, ranked, g, first_member, group, forward);
            first_member += group.members;
        }
    }
}

/* The grouping and the reflected matrix Y are the same for every output:
 * Y is built once, in the first output's buffer, and each output is
 * reflected back after its rounding. */
static void quantize_block_householder(const float *in, int64_t rows, int64_t cols,
                                       const ob_fqt_gradient_output *outputs, int count, float *workspace) {
    float *ranked = workspace, *groups = workspace + 2 * rows;
    int64_t leaders = rank_rows(in, rows, cols, ranked) ? choose_leaders(ranked, rows) : 0;
    if (leaders == 0) {
        quantize_per_row(in, rows, cols, outputs, count);
        return;
    }
    grouping_cost(ranked, rows, leaders, groups);
    float *reflected = outputs[0].out;
    if (reflected != in) memcpy(reflected, in, (size_t)(rows * cols) * sizeof *reflected);
    transform_groups(reflected, cols, ranked, groups, leaders, true);
    quantize_per_row(reflected, rows, cols, outputs, count);
    for (int k = 0; k < count; k++) transform_groups(outputs[k].out, cols, ranked, groups, leaders, false);
}

/* ---- the gradient entry point ---- */

int64_t ob_fqt_workspace_floats(int64_t rows, int64_t cols, ob_fqt_quantizer q) {
    (void)cols; /* bhq transforms in place, a block of columns at a time */
    return q == OB_FQT_BHQ && rows > 0 ? 3 * rows : 0;
}

/* One output's own arguments; a second output may not be the input or
 * an earlier output, which it would overwrite before they are read. */
static int check_output(const ob_fqt_gradient_output *outputs, int k, const float *in, char *err, size_t err_len) {
    const ob_fqt_gradient_output *output = &outputs[k];
    if (ob_fqt_check_bits(output->bits, err, err_len)) return 2;
    if (!output->out || !output->stream) {
        snprintf(err, err_len, "fqt: output %d's %s is NULL", k, !output->out ? "buffer" : "random stream");
        return 2;
    }
    for (int earlier = 0; earlier < k; earlier++)
        if (output->out == outputs[earlier].out) {
            snprintf(err, err_len, "fqt: output %d shares output %d's buffer, expected its own", k, earlier);
            return 2;
        }
    if (k > 0 && output->out == in) {
        snprintf(err, err_len, "fqt: output %d is the input, expected only output 0 to be", k);
        return 2;
    }
    return 0;
}

static int check_gradient_arguments(const float *in, int64_t rows, int64_t cols, ob_fqt_quantizer q,
                                    const ob_fqt_gradient_output *outputs, int count, const float *workspace,
                                    char *err, size_t err_len) {
    if (rows < 1 || cols < 1 || rows > INT64_MAX / cols) {
        snprintf(err, err_len, "fqt: gradient of %lld x %lld, expected rows and cols >= 1", (long long)rows,
                 (long long)cols);
        return 2;
    }
    if (q < 0 || q >= OB_FQT_QUANTIZER_COUNT) {
        snprintf(err, err_len, "fqt: unknown gradient quantizer %d, expected ptq, psq or bhq", (int)q);
        return 2;
    }
    if (q == OB_FQT_BHQ && rows > (int64_t)UINT32_MAX) {
        snprintf(err, err_len, "fqt: bhq takes at most %lu rows, got %lld", (unsigned long)UINT32_MAX,
                 (long long)rows);
        return 2;
    }
    if (!in || !outputs || (!workspace && ob_fqt_workspace_floats(rows, cols, q) > 0)) {
        snprintf(err, err_len, "fqt: %s is NULL", !in ? "the input" : !outputs ? "the outputs" : "the workspace");
        return 2;
    }
    if (count < 1) {
        snprintf(err, err_len, "fqt: %d outputs, expected at least 1", count);
        return 2;
    }
    for (int k = 0; k < count; k++)
        if (check_output(outputs, k, in, err, err_len)) return 2;
    return 0;
}

int ob_fqt_quantize_gradient_outputs(const float *in, int64_t rows, int64_t cols, ob_fqt_quantizer q,
                                     const ob_fqt_gradient_output *outputs, int count, float *workspace, char *err,
                                     size_t err_len) {
    if (check_gradient_arguments(in, rows, cols, q, outputs, count, workspace, err, err_len)) return 2;
    switch (q) {
    case OB_FQT_PTQ: quantize_per_tensor(in, rows, cols, outputs, count); break;
    case OB_FQT_PSQ: quantize_per_row(in, rows, cols, outputs, count); break;
    default: quantize_block_householder(in, rows, cols, outputs, count, workspace); break;
    }
    return 0;
}

int ob_fqt_quantize_gradient(const float *in, float *out, int64_t rows, int64_t cols, int bits, ob_fqt_quantizer q,
                             const ob_rng_stream *stream, float *workspace, char *err, size_t err_len) {
    ob_fqt_gradient_output output = {out, bits, stream};
    return ob_fqt_quantize_gradient_outputs(in, rows, cols, q, &output, 1, workspace, err, err_len);
}
