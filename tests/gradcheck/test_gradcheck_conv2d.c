/* Conv2d against finite differences: the gradients of x, w and bias over
 * kernel sizes 1/3/7, strides 1/2, padding 0/1/3, dilation 1/2, rectangular
 * kernels, non-square images and in_c != out_c, with and without bias, and
 * with an input that needs no gradient (the dx-free path). */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

typedef struct {
    const char *name;
    int batch, in_h, in_w, in_c, out_c, kernel_h, kernel_w;
    int stride, pad, dilation;
    bool bias, x_needs_grad;
} conv_case;

static const conv_case cases[] = {
    {"3x3 s1 p1 bias", 2, 5, 4, 3, 4, 3, 3, 1, 1, 1, true, true},
    {"3x3 s1 p0", 2, 6, 5, 4, 3, 3, 3, 1, 0, 1, false, true},
    {"3x3 s2 p1", 3, 7, 6, 3, 5, 3, 3, 2, 1, 1, false, true},
    {"3x3 s2 p0 bias", 2, 8, 7, 2, 3, 3, 3, 2, 0, 1, true, true},
    {"3x3 s1 p1 dilation 2", 2, 7, 6, 3, 2, 3, 3, 1, 1, 2, true, true},
    {"3x3 s2 p3 dilation 2", 2, 6, 9, 2, 3, 3, 3, 2, 3, 2, false, true},
    {"1x1 pointwise", 2, 4, 5, 6, 3, 1, 1, 1, 0, 1, false, true},
    {"1x1 pointwise bias", 2, 3, 5, 3, 7, 1, 1, 1, 0, 1, true, true},
    {"1x1 s2 downsample", 2, 7, 6, 4, 6, 1, 1, 2, 0, 1, false, true},
    {"1x1 s1 p1", 2, 3, 4, 2, 3, 1, 1, 1, 1, 1, true, true},
    {"7x7 s2 p3 stem bias", 2, 11, 9, 3, 4, 7, 7, 2, 3, 1, true, true},
    {"7x7 s1 p3 dilation 2", 2, 9, 10, 2, 2, 7, 7, 1, 3, 2, false, true},
    {"1x3 s1 p1 rectangular", 2, 4, 6, 3, 2, 1, 3, 1, 1, 1, true, true},
    {"3x1 s2 p1 rectangular", 2, 7, 5, 2, 3, 3, 1, 2, 1, 1, false, true},
    {"3x3 s1 p1 input without grad", 2, 5, 6, 3, 4, 3, 3, 1, 1, 1, true, false},
    {"1x1 pointwise input without grad", 2, 4, 3, 3, 5, 1, 1, 1, 0, 1, true, false},
};

static ob_tensor *conv_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const conv_case *c = user;
    return ob_conv2d(ctx, in[0], in[1], in[2], c->stride, c->pad, c->dilation, NULL);
}

static int check_case(ob_ctx *ctx, const conv_case *c) {
    ob_tensor *x = gc_input(ctx, OB_SHAPE(c->batch, c->in_h, c->in_w, c->in_c), 1, -1, 1);
    ob_tensor *w = gc_input(ctx, OB_SHAPE(c->out_c, c->kernel_h, c->kernel_w, c->in_c), 2, -1, 1);
    ob_tensor *b = c->bias ? gc_input(ctx, OB_SHAPE(c->out_c), 3, -1, 1) : NULL;
    x->requires_grad = c->x_needs_grad;
    ob_tensor *inputs[3] = {x, w, b};
    int failures = gc_check(c->name, ctx, conv_forward, inputs, c->bias ? 3 : 2, (void *)c, 300);
    gc_free_input(ctx, x);
    gc_free_input(ctx, w);
    if (b) gc_free_input(ctx, b);
    return failures;
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(ctx, &cases[i]) ? failed++ : passed++;
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
