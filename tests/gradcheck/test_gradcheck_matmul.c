/* Batched matmul against finite differences: both operands' gradients for
 * every combination of transposes, over two batch dims, with alpha != 1
 * and non-square matrices (so a wrong transpose cannot pass by shape).
 * Batches of 6 and of 1 matrices: at gc_ctx's 2 threads the CPU kernel
 * hands whole matrices to threads in the first and calls the GEMMs
 * serially in the second. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

#define M 3
#define K 4
#define N 5

typedef struct {
    bool trans_a, trans_b;
} matmul_case;

static ob_tensor *matmul_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const matmul_case *c = user;
    return ob_batched_matmul(ctx, in[0], in[1], c->trans_a, c->trans_b, 0.7);
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    static const int64_t batch_dims[][2] = {{2, 3}, {1, 1}};
    for (int shape = 0; shape < 2; shape++)
        for (int flags = 0; flags < 4; flags++) {
            matmul_case c = {flags & 1, flags & 2};
            int64_t b0 = batch_dims[shape][0], b1 = batch_dims[shape][1];
            ob_tensor *a = c.trans_a ? gc_input(ctx, OB_SHAPE(b0, b1, K, M), 1, -1, 1)
                                     : gc_input(ctx, OB_SHAPE(b0, b1, M, K), 1, -1, 1);
            ob_tensor *b = c.trans_b ? gc_input(ctx, OB_SHAPE(b0, b1, N, K), 2, -1, 1)
                                     : gc_input(ctx, OB_SHAPE(b0, b1, K, N), 2, -1, 1);
            ob_tensor *inputs[2] = {a, b};
            char name[80];
            snprintf(name, sizeof name, "batched_matmul batch %lldx%lld trans_a %d trans_b %d", (long long)b0,
                     (long long)b1, c.trans_a, c.trans_b);
            gc_check(name, ctx, matmul_forward, inputs, 2, &c, 1000) ? failed++ : passed++;
            gc_free_input(ctx, a);
            gc_free_input(ctx, b);
        }
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
