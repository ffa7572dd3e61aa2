// kernels_bench: how close optbench's convolution gets to the machine's sgemm.
//
// The CPU convolution is im2col + OpenBLAS sgemm (DESIGN.md section 2), so
// the best it can do at a given shape is the rate of the GEMMs it issues.
// This program first measures raw cblas_sgemm at the GEMM shapes of the
// ResNet-50 `workstation` preset (batch 128, NHWC), then ob_conv2d through
// the op API (tape, arena, im2col and all) at the same shapes, and reports
// each conv case's flop rate (counter `flops`) as a fraction of the sgemm rate of its GEMMs.
//
// A conv with x [B,H,W,Cin] and w [Cout,k,k,Cin] is, with M = B*H*W,
// K = k*k*Cin and N = Cout:
//   forward  y[M,N]    = cols[M,K] * w[N,K]^T
//   backward dcols[M,K] = dy[M,N] * w[N,K]          (then col2im into dx)
//            dw[N,K]   += dy[M,N]^T * cols[M,K]
// so forward costs 2MNK flops and forward+backward 6MNK.
//
// Threads: OB_THREADS (default 2) sizes the ob_ctx, which sizes the OpenMP
// and OpenBLAS pools for the raw sgemm runs too. Google Benchmark flags
// (--benchmark_filter, --benchmark_min_time, ...) work as usual. The last
// line printed is the headline ratio (DESIGN.md section 9).

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "nn/ob_ctx.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"
#include "nn/ob_tensor.h"
}

namespace {

constexpr int64_t kBatch = 128;  // the workstation preset's batch

// One stride-1 "same" convolution of the workstation network.
struct ConvShape {
    const char *name;
    int hw;  // input = output height and width
    int in_c, out_c, kernel;
    int64_t M() const { return kBatch * hw * hw; }
    int64_t K() const { return (int64_t)kernel * kernel * in_c; }
    int64_t N() const { return out_c; }
    double fwd_flops() const { return 2.0 * M() * N() * K(); }
};

// The stem, then per stage a bottleneck's 1x1 reduce, 3x3 and 1x1 expand
// (widths 16/32/64/128, expansion 4; stages at 32, 16, 8 and 4 px).
const ConvShape kShapes[] = {
    {"stem_3x3_1to16", 32, 1, 16, 3},
    {"s1_1x1_64to16", 32, 64, 16, 1},   {"s1_3x3_16to16", 32, 16, 16, 3},
    {"s1_1x1_16to64", 32, 16, 64, 1},   {"s2_1x1_128to32", 16, 128, 32, 1},
    {"s2_3x3_32to32", 16, 32, 32, 3},   {"s2_1x1_32to128", 16, 32, 128, 1},
    {"s3_1x1_256to64", 8, 256, 64, 1},  {"s3_3x3_64to64", 8, 64, 64, 3},
    {"s3_1x1_64to256", 8, 64, 256, 1},  {"s4_1x1_512to128", 4, 512, 128, 1},
    {"s4_3x3_128to128", 4, 128, 128, 3}, {"s4_1x1_128to512", 4, 128, 512, 1},
};

enum Gemm { kFwd = 0, kDgrad, kWgrad, kGemmCount };
const char *const kGemmNames[kGemmCount] = {"fwd", "dgrad", "wgrad"};

ob_ctx *g_ctx = nullptr;
// Seconds per call of each raw sgemm, by shape: the conv cases' yardstick.
std::map<std::string, double> g_sgemm_s[kGemmCount];
// Conv rate / sgemm rate, by shape, for the closing summary.
std::map<std::string, double> g_ratio_fwd, g_ratio_fwdbwd;

double now_s() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

std::vector<float> random_floats(int64_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> v((size_t)n);
    for (float &x : v) x = normal(gen);
    return v;
}

// Buffers for the three GEMMs of one shape, in the layouts the kernel uses.
struct GemmBuffers {
    int64_t M, N, K;
    std::vector<float> cols, w, y, dy, dcols, dw;
    explicit GemmBuffers(const ConvShape &s)
        : M(s.M()), N(s.N()), K(s.K()), cols(random_floats(M * K, 1)), w(random_floats(N * K, 2)),
          y((size_t)(M * N)), dy(random_floats(M * N, 3)), dcols((size_t)(M * K)), dw((size_t)(N * K)) {}
    void run(Gemm g) {
        const int m = (int)M, n = (int)N, k = (int)K;
        switch (g) {
        case kFwd:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, cols.data(), k, w.data(), k,
                        0.0f, y.data(), n);
            break;
        case kDgrad:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f, dy.data(), n, w.data(), k,
                        0.0f, dcols.data(), k);
            break;
        default:  // backward kernels accumulate, hence beta = 1
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, dy.data(), n, cols.data(), k,
                        1.0f, dw.data(), k);
            break;
        }
    }
};

// The yardstick when --benchmark_filter skipped the sgemm runs: time the
// GEMM here for about 0.2 s.
double sgemm_seconds(const ConvShape &s, Gemm g) {
    auto it = g_sgemm_s[g].find(s.name);
    if (it != g_sgemm_s[g].end()) return it->second;
    GemmBuffers buf(s);
    buf.run(g);  // warm-up: page faults, thread pool start
    int calls = 0;
    double t0 = now_s(), elapsed = 0;
    do {
        buf.run(g);
        calls++;
        elapsed = now_s() - t0;
    } while (elapsed < 0.2);
    return g_sgemm_s[g][s.name] = elapsed / calls;
}

void set_shape_label(benchmark::State &state, const ConvShape &s) {
    char label[64];
    std::snprintf(label, sizeof label, "M=%lld K=%lld N=%lld", (long long)s.M(), (long long)s.K(),
                  (long long)s.N());
    state.SetLabel(label);
}

void BM_sgemm(benchmark::State &state, const ConvShape &s, Gemm g) {
    GemmBuffers buf(s);
    double t0 = now_s();
    for (auto _ : state) buf.run(g);
    g_sgemm_s[g][s.name] = (now_s() - t0) / (double)state.iterations();
    // Shown with an SI prefix per second of wall time, e.g. "flops=27.7G/s".
    state.counters["flops"] = benchmark::Counter(s.fwd_flops(), benchmark::Counter::kIsIterationInvariantRate);
    set_shape_label(state, s);
}

// One conv layer's worth of engine state: the layer (weights with
// persistent gradients, as the models create them), an input that needs a
// gradient (as every activation inside the network does) and a fixed
// output gradient standing in for the rest of the network's backward.
struct ConvCase {
    ob_params *params = nullptr;
    ob_conv2d_layer *layer = nullptr;
    ob_tensor *x = nullptr, *dy = nullptr;
    explicit ConvCase(const ConvShape &s) {
        params = ob_params_new(OB_F32);
        layer = params ? ob_conv2d_layer_new(g_ctx, params, "conv", s.in_c, s.out_c, s.kernel, 1, s.kernel / 2, 1,
                                             false)
                       : nullptr;
        const int64_t x_shape[4] = {kBatch, s.hw, s.hw, s.in_c};
        const int64_t y_shape[4] = {kBatch, s.hw, s.hw, s.out_c};
        x = ob_tensor_new(g_ctx, OB_MEM_DATA, OB_F32, 4, x_shape);
        dy = ob_tensor_new(g_ctx, OB_MEM_ACTIVATIONS, OB_F32, 4, y_shape);
        if (!ok()) return;
        std::vector<float> xs = random_floats(x->numel, 4), dys = random_floats(dy->numel, 5);
        std::copy(xs.begin(), xs.end(), ob_f32(x));
        std::copy(dys.begin(), dys.end(), ob_f32(dy));
        x->requires_grad = true;
    }
    ~ConvCase() {
        ob_tensor_free(g_ctx, x);
        ob_tensor_free(g_ctx, dy);
        ob_params_free(g_ctx, params);
    }
    bool ok() const { return layer && x && dy; }
};

void BM_conv2d(benchmark::State &state, const ConvShape &s, bool backward) {
    ConvCase c(s);
    if (!c.ok()) {
        state.SkipWithError("out of memory setting up the conv case");
        return;
    }
    double t0 = now_s();
    for (auto _ : state) {
        // The training forward: the tape is on, as in a train step.
        ob_tensor *y = ob_conv2d_layer_forward(g_ctx, c.layer, c.x);
        if (!y) {
            state.SkipWithError(ob_ctx_error(g_ctx));
            break;
        }
        if (backward) {
            y->grad = c.dy;  // y's consumer's gradient; dx and dw come from the op
            if (ob_backward_run(g_ctx) != 0) {
                state.SkipWithError(ob_ctx_error(g_ctx));
                break;
            }
        }
        benchmark::DoNotOptimize(y->data);
        c.x->grad = nullptr;  // it lived in the arena, which the reset frees
        ob_ctx_step_reset(g_ctx);
    }
    c.x->grad = nullptr;
    ob_ctx_step_reset(g_ctx);
    if (state.error_occurred()) return;
    const double conv_s = (now_s() - t0) / (double)state.iterations();

    const double flops = s.fwd_flops() * (backward ? 3 : 1);
    state.counters["flops"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
    // The same flops at raw sgemm speed would take the sum of its GEMMs' times.
    double gemm_s = sgemm_seconds(s, kFwd);
    if (backward) gemm_s += sgemm_seconds(s, kDgrad) + sgemm_seconds(s, kWgrad);
    const double ratio = gemm_s / conv_s;
    state.counters["vs_sgemm"] = ratio;
    (backward ? g_ratio_fwdbwd : g_ratio_fwd)[s.name] = ratio;
    set_shape_label(state, s);
}

double geomean(const std::map<std::string, double> &values) {
    double log_sum = 0;
    for (const auto &kv : values) log_sum += std::log(kv.second);
    return values.empty() ? NAN : std::exp(log_sum / (double)values.size());
}

}  // namespace

int main(int argc, char **argv) {
    const char *env = std::getenv("OB_THREADS");
    int threads = env ? std::atoi(env) : 2;
    if (threads < 1) {
        std::fprintf(stderr, "kernels_bench: OB_THREADS=%s: expected a positive thread count\n", env);
        return 2;
    }
    ob_ctx_config config = {};
    config.threads = threads;
    config.seed = 1;
    config.rank = 0;
    config.world_size = 1;
    g_ctx = ob_ctx_new(&config);
    if (!g_ctx) {
        std::fprintf(stderr, "kernels_bench: could not create the engine context\n");
        return 2;
    }
    benchmark::AddCustomContext("ob_threads", std::to_string(ob_ctx_threads(g_ctx)));
    benchmark::AddCustomContext("batch", std::to_string(kBatch));

    // Registration order is run order. Each shape's sgemm yardsticks run
    // just before its conv cases, so a change in machine load between them
    // (other jobs on a shared box) skews the ratio as little as possible.
    for (const ConvShape &s : kShapes) {
        for (int g = 0; g < kGemmCount; g++)
            benchmark::RegisterBenchmark((std::string("sgemm_") + kGemmNames[g] + "/" + s.name).c_str(), BM_sgemm, s,
                                         (Gemm)g)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
        for (bool backward : {false, true})
            benchmark::RegisterBenchmark((std::string(backward ? "conv2d_fwdbwd/" : "conv2d_fwd/") + s.name).c_str(),
                                         BM_conv2d, s, backward)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
    }

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();

    if (!g_ratio_fwd.empty())
        std::printf("ob_conv2d forward at %.2f of the sgemm rate (geomean over %zu shapes)\n", geomean(g_ratio_fwd),
                    g_ratio_fwd.size());
    if (!g_ratio_fwdbwd.empty())
        std::printf("headline: ob_conv2d forward+backward at %.2f of the sgemm rate (geomean over %zu shapes, "
                    "%d threads)\n",
                    geomean(g_ratio_fwdbwd), g_ratio_fwdbwd.size(), ob_ctx_threads(g_ctx));
    ob_ctx_free(g_ctx);
    return 0;
}
