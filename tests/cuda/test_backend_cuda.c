/* The CUDA back end against the CPU back end: every op of nn/ob_ops.h,
 * forward and backward through the op API with the tape on, every base
 * optimizer's step and a K-FAC layer's factors, decompositions and
 * preconditioning, run on a CPU ctx and a CUDA ctx from identical inputs
 * and compared (backend_compare.h). Exits 77 (ctest: skipped) without a
 * visible CUDA device, 1 naming each mismatch, 0 when all agree. */
#include <cuda_runtime_api.h>

#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"
#include "optimizers/kfac/kfac_layer.h"
#include "optimizers/ob_optimizer.h"
#include "tests/cuda/backend_compare.h"

#define SKIPPED 77
#define MAX_INPUTS 6

/* ---- ops: forward and backward from identical inputs ---- */

typedef enum {
    IN_PARAM, /* F32, requires grad; its gradient starts from random values (backward must add) */
    IN_CONST, /* F32 without a gradient (running statistics; updated in place by some ops) */
    IN_INT, /* I32 in [lo, hi] (ids, labels, masks) */
} input_kind;

typedef struct {
    input_kind kind;
    double lo, hi;
    int ndim;
    int64_t shape[OB_MAX_DIMS];
} input_spec;

static input_spec spec(input_kind kind, double lo, double hi, int ndim, const int64_t *shape) {
    input_spec s = {.kind = kind, .lo = lo, .hi = hi, .ndim = ndim};
    memcpy(s.shape, shape, (size_t)ndim * sizeof *shape);
    return s;
}

typedef struct {
    const char *name;
    int n_inputs;
    input_spec inputs[MAX_INPUTS];
    double bound;
    bool same_zeros; /* dropout: the kept elements must be the same */
} op_case;

/* Builds the op's output from the inputs on one side; `args` is the case's. */
typedef ob_tensor *(*forward_fn)(ob_ctx *ctx, ob_tensor **in, const void *args);

static ob_tensor *new_input(pair *p, int side, const input_spec *s, uint64_t salt, const char *what) {
    ob_ctx *ctx = p->side[side];
    bool is_int = s->kind == IN_INT;
    ob_tensor *t = ob_tensor_new(ctx, OB_MEM_DATA, is_int ? OB_I32 : OB_F32, s->ndim, s->shape);
    if (!t) return NULL;
    bool ok;
    if (is_int) {
        int32_t *values = malloc((size_t)t->numel * sizeof *values);
        random_ints(salt, (int)s->lo, (int)s->hi, t->numel, values);
        ok = upload(p, side, t, values, what);
        free(values);
    } else {
        ok = upload_random(p, side, t, salt, s->lo, s->hi, what);
    }
    if (ok && s->kind == IN_PARAM) {
        t->requires_grad = true;
        t->grad = ob_tensor_new(ctx, OB_MEM_GRADS, OB_F32, s->ndim, s->shape);
        ok = t->grad && upload_random(p, side, t->grad, salt + 1000, -0.5, 0.5, what);
    }
    return t;
}

static void free_input(ob_ctx *ctx, ob_tensor *t) {
    if (!t) return;
    ob_tensor_free(ctx, t->grad);
    ob_tensor_free(ctx, t);
}

/* Forward on one side, then backward from the case's fixed output gradient. */
static ob_tensor *run_side(pair *p, int side, const op_case *c, forward_fn forward, const void *args,
                           ob_tensor **in) {
    ob_ctx *ctx = p->side[side];
    ob_tensor *y = forward(ctx, in, args);
    if (!y) {
        printf("FAIL %s: forward on %s: %s\n", c->name, side ? "cuda" : "cpu", ob_ctx_error(ctx));
        p->failures++;
        return NULL;
    }
    ob_tensor *dy = ob_grad_of(ctx, y);
    if (!dy || !upload_random(p, side, dy, 99, -1, 1, c->name)) return NULL;
    if (ob_backward_run(ctx) != 0) {
        printf("FAIL %s: backward on %s: %s\n", c->name, side ? "cuda" : "cpu", ob_ctx_error(ctx));
        p->failures++;
        return NULL;
    }
    return y;
}

/* The output, every float input afterwards (in-place updates) and every
 * input gradient, CUDA against CPU. */
static void run_op_case(pair *p, const op_case *c, forward_fn forward, const void *args) {
    ob_tensor *in[2][MAX_INPUTS] = {{0}}, *y[2] = {0};
    for (int side = 0; side < 2; side++) {
        for (int i = 0; i < c->n_inputs; i++)
            in[side][i] = new_input(p, side, &c->inputs[i], 10 * i + 1, c->name);
        y[side] = run_side(p, side, c, forward, args, in[side]);
    }
    char what[160];
    if (y[0] && y[1]) {
        snprintf(what, sizeof what, "%s: output", c->name);
        compare_tensors(p, what, y[0], y[1], c->bound, c->same_zeros);
        for (int i = 0; i < c->n_inputs; i++) {
            if (c->inputs[i].kind == IN_INT) continue;
            snprintf(what, sizeof what, "%s: input %d after the op", c->name, i);
            compare_tensors(p, what, in[0][i], in[1][i], c->bound, false);
            if (c->inputs[i].kind != IN_PARAM) continue;
            snprintf(what, sizeof what, "%s: gradient of input %d", c->name, i);
            compare_tensors(p, what, in[0][i]->grad, in[1][i]->grad, c->bound, false);
        }
    }
    for (int side = 0; side < 2; side++) {
        ob_ctx_step_reset(p->side[side]);
        for (int i = 0; i < c->n_inputs; i++) free_input(p->side[side], in[side][i]);
    }
}

/* ---- the ops ---- */

typedef struct {
    int stride, pad, dilation;
    bool bias;
} conv_args;
static ob_tensor *conv_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    const conv_args *a = args;
    return ob_conv2d(ctx, in[0], in[1], a->bias ? in[2] : NULL, a->stride, a->pad, a->dilation, NULL);
}

static void test_conv2d(pair *p) {
    struct {
        int64_t batch, size, in_c, out_c, kernel;
        conv_args args;
    } geometries[] = {
        {2, 8, 5, 7, 3, {1, 1, 1, true}},    {2, 9, 4, 6, 3, {2, 1, 1, false}}, {3, 6, 8, 4, 1, {1, 0, 1, true}},
        {2, 7, 6, 5, 1, {2, 0, 1, false}},   {2, 12, 3, 8, 7, {2, 3, 1, true}}, {1, 9, 4, 4, 3, {1, 2, 2, true}},
        {2, 6, 16, 16, 3, {1, 1, 1, false}},
    };
    for (size_t i = 0; i < sizeof geometries / sizeof geometries[0]; i++) {
        char name[96];
        const conv_args *a = &geometries[i].args;
        snprintf(name, sizeof name, "conv2d %lldx%lld stride %d pad %d dilation %d%s",
                 (long long)geometries[i].kernel, (long long)geometries[i].kernel, a->stride, a->pad, a->dilation,
                 a->bias ? " +bias" : "");
        int64_t b = geometries[i].batch, s = geometries[i].size, k = geometries[i].kernel;
        op_case c = {name,
                     3,
                     {spec(IN_PARAM, -1, 1, OB_SHAPE(b, s, s, geometries[i].in_c)),
                      spec(IN_PARAM, -0.5, 0.5, OB_SHAPE(geometries[i].out_c, k, k, geometries[i].in_c)),
                      spec(IN_PARAM, -0.5, 0.5, OB_SHAPE(geometries[i].out_c))},
                     NMSE_REDUCE,
                     false};
        run_op_case(p, &c, conv_forward, a);
    }
}

typedef struct {
    bool training;
} bn_args;
static ob_tensor *bn_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    return ob_batchnorm(ctx, in[0], in[1], in[2], in[3], in[4], ((const bn_args *)args)->training, 0.1, 1e-5);
}

/* A stand-in for a data-parallel reduction: as if a second rank held
 * exactly the same rows, every sum (and the row count) doubles. */
static int twin_rank_sum(double *values, int64_t n, void *user) {
    (void)user;
    for (int64_t i = 0; i < n; i++) values[i] *= 2;
    return 0;
}

static void test_batchnorm(pair *p) {
    for (int mode = 0; mode < 3; mode++) {
        bn_args args = {mode != 2};
        const char *names[] = {"batchnorm train", "batchnorm train, synchronized (fake reduce)",
                               "batchnorm eval"};
        op_case c = {names[mode],
                     5,
                     {spec(IN_PARAM, 1, 4, OB_SHAPE(4, 5, 5, 12)), spec(IN_PARAM, 0.5, 1.5, OB_SHAPE(12)),
                      spec(IN_PARAM, -1, 1, OB_SHAPE(12)), spec(IN_CONST, 2, 3, OB_SHAPE(12)),
                      spec(IN_CONST, 0.5, 2, OB_SHAPE(12))},
                     NMSE_REDUCE,
                     false};
        ob_batchnorm_reduce reduce = {twin_rank_sum, NULL};
        for (int side = 0; side < 2; side++)
            ob_ctx_set_batchnorm_reduce(p->side[side], mode == 1 ? &reduce : NULL);
        run_op_case(p, &c, bn_forward, &args);
    }
    for (int side = 0; side < 2; side++) ob_ctx_set_batchnorm_reduce(p->side[side], NULL);
}

static ob_tensor *relu_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_relu(ctx, in[0]);
}
static ob_tensor *add_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_add(ctx, in[0], in[1]);
}
static ob_tensor *maxpool_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_maxpool2d(ctx, in[0], 3, 2, 1);
}
static ob_tensor *avgpool_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_global_avgpool(ctx, in[0]);
}
static ob_tensor *linear_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    return ob_linear(ctx, in[0], in[1], args ? in[2] : NULL, NULL);
}
static ob_tensor *xent_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_softmax_cross_entropy(ctx, in[0], in[1], 0.1);
}
static ob_tensor *embedding_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_embedding(ctx, in[0], in[1]);
}
static ob_tensor *layernorm_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_layernorm(ctx, in[0], in[1], in[2], 1e-5);
}
static ob_tensor *gelu_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_gelu(ctx, in[0]);
}
static ob_tensor *tanh_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_tanh(ctx, in[0]);
}
static const ob_dropout_spec dropout_spec = {.p = 0.3, .training = true, .step = 5, .site = 2};
static ob_tensor *dropout_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_dropout(ctx, in[0], &dropout_spec);
}
typedef struct {
    bool trans_a, trans_b;
} matmul_args;
static ob_tensor *matmul_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    const matmul_args *a = args;
    return ob_batched_matmul(ctx, in[0], in[1], a->trans_a, a->trans_b, 0.5);
}
static ob_tensor *masked_softmax_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    return ob_masked_softmax(ctx, in[0], in[1]);
}
static ob_tensor *attention_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    return ob_attention(ctx, in[0], in[1], in[2], in[3], args ? &dropout_spec : NULL);
}
/* [batch*seq, heads*d] -> heads -> gelu -> back, so both directions run */
static ob_tensor *heads_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    ob_tensor *split = ob_split_heads(ctx, in[0], 3, 4);
    return split ? ob_merge_heads(ctx, ob_gelu(ctx, split)) : NULL;
}
/* the masked-LM head's path: selected rows, then the loss on their labels */
static ob_tensor *masked_lm_forward(ob_ctx *ctx, ob_tensor **in, const void *args) {
    (void)args;
    ob_tensor *selected_labels = NULL;
    ob_tensor *rows = ob_masked_lm_gather(ctx, in[0], in[1], in[2], &selected_labels);
    return rows ? ob_softmax_cross_entropy(ctx, rows, selected_labels, 0.0) : NULL;
}

static void test_ops(pair *p) {
    const op_case relu = {"relu", 1, {spec(IN_PARAM, -1, 1, OB_SHAPE(6, 7, 9))}, NMSE_EXACT, false};
    run_op_case(p, &relu, relu_forward, NULL);
    const op_case add = {"add",
                         2,
                         {spec(IN_PARAM, -1, 1, OB_SHAPE(5, 33)), spec(IN_PARAM, -1, 1, OB_SHAPE(5, 33))},
                         NMSE_EXACT,
                         false};
    run_op_case(p, &add, add_forward, NULL);
    const op_case maxpool = {
        "maxpool2d 3x3 stride 2 pad 1", 1, {spec(IN_PARAM, -1, 1, OB_SHAPE(2, 9, 8, 5))}, NMSE_EXACT, false};
    run_op_case(p, &maxpool, maxpool_forward, NULL);
    const op_case avgpool = {
        "global_avgpool", 1, {spec(IN_PARAM, -1, 1, OB_SHAPE(3, 4, 5, 6))}, NMSE_EXACT, false};
    run_op_case(p, &avgpool, avgpool_forward, NULL);
    const op_case linear = {"linear",
                            3,
                            {spec(IN_PARAM, -1, 1, OB_SHAPE(9, 17)), spec(IN_PARAM, -0.5, 0.5, OB_SHAPE(13, 17)),
                             spec(IN_PARAM, -0.5, 0.5, OB_SHAPE(13))},
                            NMSE_REDUCE,
                            false};
    run_op_case(p, &linear, linear_forward, &linear);
    const op_case linear_no_bias = {
        "linear without bias",
        2,
        {spec(IN_PARAM, -1, 1, OB_SHAPE(4, 6)), spec(IN_PARAM, -1, 1, OB_SHAPE(3, 6))},
        NMSE_REDUCE,
        false};
    run_op_case(p, &linear_no_bias, linear_forward, NULL);
    const op_case xent = {"softmax_cross_entropy (smoothing 0.1)",
                          2,
                          {spec(IN_PARAM, -3, 3, OB_SHAPE(7, 300)), spec(IN_INT, 0, 299, OB_SHAPE(7))},
                          NMSE_REDUCE,
                          false};
    run_op_case(p, &xent, xent_forward, NULL);
    const op_case embedding = {"embedding (repeated ids)",
                               2,
                               {spec(IN_PARAM, -1, 1, OB_SHAPE(11, 16)), spec(IN_INT, 0, 10, OB_SHAPE(4, 9))},
                               NMSE_REDUCE,
                               false};
    run_op_case(p, &embedding, embedding_forward, NULL);
    const op_case layernorm = {"layernorm",
                               3,
                               {spec(IN_PARAM, -2, 3, OB_SHAPE(10, 48)), spec(IN_PARAM, 0.5, 1.5, OB_SHAPE(48)),
                                spec(IN_PARAM, -1, 1, OB_SHAPE(48))},
                               NMSE_REDUCE,
                               false};
    run_op_case(p, &layernorm, layernorm_forward, NULL);
    const op_case gelu = {"gelu", 1, {spec(IN_PARAM, -4, 4, OB_SHAPE(8, 65))}, NMSE_EXACT, false};
    run_op_case(p, &gelu, gelu_forward, NULL);
    const op_case tanh_case = {"tanh", 1, {spec(IN_PARAM, -3, 3, OB_SHAPE(8, 65))}, NMSE_EXACT, false};
    run_op_case(p, &tanh_case, tanh_forward, NULL);
    const op_case dropout = {"dropout p 0.3", 1, {spec(IN_PARAM, 0.1, 1, OB_SHAPE(16, 70))}, NMSE_EXACT, true};
    run_op_case(p, &dropout, dropout_forward, NULL);
    for (int t = 0; t < 4; t++) {
        matmul_args args = {t & 1, t & 2};
        int64_t m = 5, n = 6, k = 7;
        char name[64];
        snprintf(name, sizeof name, "batched_matmul trans_a %d trans_b %d", args.trans_a, args.trans_b);
        op_case c = {name,
                     2,
                     {spec(IN_PARAM, -1, 1, 4, args.trans_a ? (int64_t[]){2, 3, k, m} : (int64_t[]){2, 3, m, k}),
                      spec(IN_PARAM, -1, 1, 4, args.trans_b ? (int64_t[]){2, 3, n, k} : (int64_t[]){2, 3, k, n})},
                     NMSE_REDUCE,
                     false};
        run_op_case(p, &c, matmul_forward, &args);
    }
    const op_case masked_softmax = {
        "masked_softmax",
        2,
        {spec(IN_PARAM, -3, 3, OB_SHAPE(3, 2, 5, 9)), spec(IN_INT, 0, 1, OB_SHAPE(3, 9))},
        NMSE_REDUCE,
        false};
    run_op_case(p, &masked_softmax, masked_softmax_forward, NULL);
    for (int with_dropout = 0; with_dropout < 2; with_dropout++) {
        op_case c = {with_dropout ? "attention with dropout" : "attention",
                     4,
                     {spec(IN_PARAM, -1, 1, OB_SHAPE(2, 3, 6, 8)), spec(IN_PARAM, -1, 1, OB_SHAPE(2, 3, 7, 8)),
                      spec(IN_PARAM, -1, 1, OB_SHAPE(2, 3, 7, 5)), spec(IN_INT, 0, 1, OB_SHAPE(2, 7))},
                     NMSE_REDUCE,
                     false};
        run_op_case(p, &c, attention_forward, with_dropout ? &c : NULL);
    }
    const op_case heads = {
        "split_heads + merge_heads", 1, {spec(IN_PARAM, -2, 2, OB_SHAPE(3 * 5, 4 * 6))}, NMSE_EXACT, false};
    run_op_case(p, &heads, heads_forward, NULL);
    const op_case masked_lm = {"masked_lm_gather + softmax_cross_entropy",
                               3,
                               {spec(IN_PARAM, -2, 2, OB_SHAPE(4 * 6, 40)), spec(IN_INT, 0, 5, OB_SHAPE(4, 3)),
                                spec(IN_INT, -1, 39, OB_SHAPE(4, 3))},
                               NMSE_REDUCE,
                               false};
    run_op_case(p, &masked_lm, masked_lm_forward, NULL);
}

/* ---- optimizers: the same model, the same gradients, two steps ---- */

/* Every parameter kind: weights, conv weights, biases, norm scales, an embedding. */
static ob_params *small_model(ob_ctx *ctx) {
    ob_params *params = ob_params_new(OB_F32);
    bool ok = params && ob_linear_layer_new(ctx, params, "fc", 12, 10, true) &&
              ob_conv2d_layer_new(ctx, params, "conv", 4, 6, 3, 1, 1, 1, true) &&
              ob_batchnorm_layer_new(ctx, params, "bn", 6, 0.1, 1e-5, 1.0) &&
              ob_layernorm_layer_new(ctx, params, "ln", 10, 1e-5) &&
              ob_embedding_layer_new(ctx, params, "emb", 20, 8, 0.02);
    if (ok) return params;
    ob_params_free(ctx, params);
    return NULL;
}

/* Compares every parameter of the two registries (and its gradient). */
static void compare_params(pair *p, const char *stage, ob_params *const *params, double bound) {
    for (int i = 0; i < ob_params_count(params[0]); i++) {
        const ob_param *a = ob_params_at(params[0], i), *b = ob_params_at(params[1], i);
        char what[160];
        snprintf(what, sizeof what, "%s: %s", stage, a->name);
        compare_tensors(p, what, a->value, b->value, bound, false);
    }
}

typedef enum { OPT_SGD, OPT_SGD_NESTEROV, OPT_ADAMW, OPT_LAMB } optimizer_kind;

static ob_optimizer *new_optimizer(ob_ctx *ctx, ob_params *params, optimizer_kind kind) {
    ob_adam_config adam = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    switch (kind) {
    case OPT_SGD:
        return ob_sgd_new(ctx, params, &(ob_sgd_config){.momentum = 0.9, .weight_decay = 1e-4});
    case OPT_SGD_NESTEROV:
        return ob_sgd_new(
            ctx, params,
            &(ob_sgd_config){.momentum = 0.9, .weight_decay = 1e-4, .nesterov = true, .decoupled = true});
    case OPT_ADAMW:
        return ob_adamw_new(ctx, params, &adam);
    default:
        return ob_lamb_new(ctx, params,
                           &(ob_lamb_config){.adam = adam, .max_trust_ratio = 10, .bias_correction = true});
    }
}

static void test_optimizer(pair *p, optimizer_kind kind, const char *name, double bound) {
    ob_params *params[2] = {0};
    ob_optimizer *opt[2] = {0};
    for (int side = 0; side < 2; side++) {
        params[side] = small_model(p->side[side]);
        opt[side] = params[side] ? new_optimizer(p->side[side], params[side], kind) : NULL;
    }
    if (!opt[0] || !opt[1]) {
        printf("FAIL %s: setup: %s / %s\n", name, ob_ctx_error(p->side[0]), ob_ctx_error(p->side[1]));
        p->failures++;
    } else {
        char stage[96];
        snprintf(stage, sizeof stage, "%s: initial values", name);
        compare_params(p, stage, params, 0); /* drawn on the host: the same bits */
        for (int step = 0; step < 2; step++) {
            for (int side = 0; side < 2; side++) {
                for (int i = 0; i < ob_params_count(params[side]); i++)
                    upload_random(p, side, ob_params_at(params[side], i)->value->grad, 500 + 37 * step + i, -1, 1,
                                  name);
                if (ob_optimizer_step(opt[side], 0.05)) {
                    printf("FAIL %s: step on %s: %s\n", name, side ? "cuda" : "cpu", ob_ctx_error(p->side[side]));
                    p->failures++;
                }
            }
            snprintf(stage, sizeof stage, "%s step %d", name, step + 1);
            compare_params(p, stage, params, bound);
        }
        for (int i = 0; i < ob_optimizer_state_count(opt[0]); i++) {
            char state_name[96], what[200];
            ob_tensor *a = ob_optimizer_state_at(opt[0], i, state_name, sizeof state_name);
            snprintf(what, sizeof what, "%s state %s", name, state_name);
            compare_tensors(p, what, a, ob_optimizer_state_at(opt[1], i, NULL, 0), bound, false);
        }
    }
    for (int side = 0; side < 2; side++) {
        if (opt[side]) ob_optimizer_free(p->side[side], opt[side]);
        if (params[side]) ob_params_free(p->side[side], params[side]);
    }
}

/* ---- K-FAC: one layer's update, both methods ---- */

#define KFAC_DAMPING 0.1 /* keeps the damped systems well conditioned for F32 */

/* One K-FAC update of a layer on one side; fills out[] with its results. */
enum {
    KF_A_BATCH,
    KF_G_BATCH,
    KF_A,
    KF_G,
    KF_D_A,
    KF_D_G,
    KF_EIGEN,
    KF_A_INV,
    KF_G_INV,
    KF_INVERSE,
    KF_WEIGHT_GRAD,
    KF_COUNT
};
static const char *const kfac_names[KF_COUNT] = {"A of the batch",
                                                 "G of the batch",
                                                 "running A",
                                                 "running G",
                                                 "A's eigenvalues",
                                                 "G's eigenvalues",
                                                 "eigen-preconditioned",
                                                 "damped A inverse",
                                                 "damped G inverse",
                                                 "inverse-preconditioned",
                                                 "weight gradient after scatter"};

static ob_tensor *square(ob_ctx *ctx, int64_t n) {
    return ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(n, n));
}

static int kfac_update(ob_ctx *ctx, ob_layer *layer, ob_tensor **out, double *scalars) {
    ob_kfac_layer l;
    if (ob_kfac_layer_describe(layer, &l)) return 1;
    int64_t a = l.a_dim, g = l.g_dim;
    const ob_backend *backend = ob_backend_of(l.weight);
    out[KF_A_BATCH] = square(ctx, a), out[KF_G_BATCH] = square(ctx, g);
    out[KF_A] = square(ctx, a), out[KF_G] = square(ctx, g);
    ob_tensor *q_a = square(ctx, a), *q_g = square(ctx, g);
    out[KF_D_A] = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(a));
    out[KF_D_G] = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(g));
    ob_tensor *grad = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(g, a));
    out[KF_EIGEN] = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(g, a));
    out[KF_INVERSE] = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(g, a));
    out[KF_A_INV] = square(ctx, a), out[KF_G_INV] = square(ctx, g);
    out[KF_WEIGHT_GRAD] = l.weight->grad;
    if (!q_a || !q_g || !grad || !out[KF_INVERSE] || !out[KF_G_INV]) return 1;
    if (ob_kfac_batch_factors(ctx, &l, out[KF_A_BATCH], out[KF_G_BATCH])) return 1;
    for (int f = KF_A; f <= KF_G; f++) {
        backend->fill(out[f], 0.0);
        backend->add_diagonal(out[f], 1.0);
        ob_kfac_running_average(0.5, out[f - KF_A + KF_A_BATCH], out[f]);
    }
    ob_kfac_gather_grad(&l, grad);
    scalars[0] = ob_kfac_dp_pi(out[KF_A], out[KF_G]);
    if (ob_kfac_eigen(ctx, out[KF_A], q_a, out[KF_D_A]) || ob_kfac_eigen(ctx, out[KF_G], q_g, out[KF_D_G]) ||
        ob_kfac_precondition_eigen(ctx, q_g, out[KF_D_G], q_a, out[KF_D_A], KFAC_DAMPING, grad, out[KF_EIGEN]) ||
        ob_kfac_damped_inverse(ctx, out[KF_A], KFAC_DAMPING, out[KF_A_INV]) ||
        ob_kfac_damped_inverse(ctx, out[KF_G], KFAC_DAMPING, out[KF_G_INV]) ||
        ob_kfac_precondition_inverse(ctx, out[KF_G_INV], out[KF_A_INV], grad, out[KF_INVERSE]))
        return 1;
    scalars[1] = ob_kfac_kl_term(grad, out[KF_INVERSE]);
    ob_kfac_scatter_grad(&l, out[KF_INVERSE]);
    return 0;
}

/* A linear and a conv layer, captures on, one forward and backward each. */
static int kfac_forward_backward(pair *p, int side, ob_params *params, ob_layer **layers) {
    ob_ctx *ctx = p->side[side];
    ob_linear_layer *fc = ob_linear_layer_new(ctx, params, "fc", 12, 10, true);
    ob_conv2d_layer *conv = ob_conv2d_layer_new(ctx, params, "conv", 4, 6, 3, 2, 1, 1, true);
    if (!fc || !conv) return 1;
    layers[0] = &fc->base, layers[1] = &conv->base;
    fc->base.capture = conv->base.capture = true;
    ob_tensor *x_fc = ob_tensor_temp(ctx, OB_MEM_DATA, OB_F32, OB_SHAPE(7, 12));
    ob_tensor *x_conv = ob_tensor_temp(ctx, OB_MEM_DATA, OB_F32, OB_SHAPE(3, 7, 7, 4));
    if (!x_fc || !x_conv || !upload_random(p, side, x_fc, 61, -1, 1, "kfac input") ||
        !upload_random(p, side, x_conv, 62, -1, 1, "kfac input"))
        return 1;
    ob_tensor *y[2] = {ob_linear_layer_forward(ctx, fc, x_fc), ob_conv2d_layer_forward(ctx, conv, x_conv)};
    for (int i = 0; i < 2; i++)
        if (!y[i] || !upload_random(p, side, ob_grad_of(ctx, y[i]), 63 + i, -1, 1, "kfac output gradient"))
            return 1;
    return ob_backward_run(ctx);
}

static void test_kfac(pair *p) {
    ob_params *params[2] = {ob_params_new(OB_F32), ob_params_new(OB_F32)};
    ob_layer *layers[2][2];
    for (int side = 0; side < 2; side++)
        if (!params[side] || kfac_forward_backward(p, side, params[side], layers[side])) {
            printf("FAIL kfac: forward/backward on %s: %s\n", side ? "cuda" : "cpu", ob_ctx_error(p->side[side]));
            p->failures++;
            goto done;
        }
    for (int l = 0; l < 2; l++) {
        ob_tensor *out[2][KF_COUNT];
        double scalars[2][2];
        for (int side = 0; side < 2; side++)
            if (kfac_update(p->side[side], layers[side][l], out[side], scalars[side])) {
                printf("FAIL kfac %s: update on %s: %s\n", layers[side][l]->name, side ? "cuda" : "cpu",
                       ob_ctx_error(p->side[side]));
                p->failures++;
                goto done;
            }
        char what[160];
        for (int k = 0; k < KF_COUNT; k++) {
            snprintf(what, sizeof what, "kfac %s: %s", layers[0][l]->name, kfac_names[k]);
            compare_tensors(p, what, out[0][k], out[1][k], NMSE_REDUCE, false);
        }
        snprintf(what, sizeof what, "kfac %s: DP-KFAC pi (trace)", layers[0][l]->name);
        compare_scalars(p, what, scalars[0][0], scalars[1][0], NMSE_REDUCE);
        snprintf(what, sizeof what, "kfac %s: KL term (dot)", layers[0][l]->name);
        compare_scalars(p, what, scalars[0][1], scalars[1][1], NMSE_REDUCE);
    }
done:
    for (int side = 0; side < 2; side++) {
        ob_ctx_step_reset(p->side[side]);
        ob_params_free(p->side[side], params[side]);
    }
}

int main(void) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        printf("no CUDA device visible: skipped\n");
        return SKIPPED;
    }
    pair p = {0};
    for (int side = 0; side < 2; side++) {
        p.side[side] = ob_ctx_new(
            &(ob_ctx_config){.threads = 2, .seed = 11, .world_size = 1, .device = side ? OB_CUDA : OB_CPU});
        if (!p.side[side]) {
            printf("FAIL setup: no %s ctx\n", side ? "cuda" : "cpu");
            return 1;
        }
    }
    test_ops(&p);
    test_conv2d(&p);
    test_batchnorm(&p);
    test_optimizer(&p, OPT_SGD, "sgd momentum + L2", NMSE_EXACT);
    test_optimizer(&p, OPT_SGD_NESTEROV, "sgd nesterov + decoupled decay", NMSE_EXACT);
    test_optimizer(&p, OPT_ADAMW, "adamw", NMSE_EXACT);
    test_optimizer(&p, OPT_LAMB, "lamb", NMSE_REDUCE);
    test_kfac(&p);
    printf("%d comparisons, %d failed\n", p.checks, p.failures);
    for (int side = 0; side < 2; side++) ob_ctx_free(p.side[side]);
    return p.failures ? 1 : 0;
}
