// routenlp's own fp32 CPU kernels (lib/encoder/cpu_kernels.hpp) at DistilBERT's shapes: the four
// Linear GEMMs of a distilbert-base block at 64 rows (batch 1 x seq 64) and 2048 rows (batch 32),
// reported as GFLOP/s, and one whole block, each with the weights packed per call (packed=0) and
// packed once beforehand (packed=1, CpuPackedWeights; AVX-512 only). Torch-free; compare with the libtorch path through
// bench_encoder (ROUTENLP_CPU_KERNELS=off) and bench/peers/run_encoder_compare.sh.
//   ROUTENLP_BENCH_THREADS=N  OpenMP threads for the column split (default 1)
//   ROUTENLP_CPU_KERNELS=avx2 use the AVX2 kernels on an AVX-512 CPU
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "encoder/cpu_kernels.hpp"

namespace rd = routenlp::detail;

namespace {

int threads() {
  const char* t = std::getenv("ROUTENLP_BENCH_THREADS");
  return t ? std::atoi(t) : 1;
}

std::vector<float> randn(size_t n, float scale, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// args: M, N, K, gelu, packed
void linear(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const bool gelu = state.range(3) != 0, packed = state.range(4) != 0;
  const rd::CpuIsa isa = rd::cpu_isa_active();
  if (isa == rd::CpuIsa::none) {
    state.SkipWithError("no AVX2/AVX-512 kernels on this CPU (or ROUTENLP_CPU_KERNELS=off)");
    return;
  }
  const auto x = randn(static_cast<size_t>(M * K), 1.0f, 1), w = randn(static_cast<size_t>(N * K), 0.02f, 2),
             b = randn(static_cast<size_t>(N), 0.02f, 3);
  std::vector<float> y(static_cast<size_t>(M * N));
  const int t = threads();
  const auto wp = packed ? rd::cpu_pack_linear(isa, w.data(), b.data(), N, K) : nullptr;
  if (packed && !wp) {
    state.SkipWithError("no packed GEMM for these kernels");
    return;
  }
  for (auto _ : state) {
    if (wp) rd::cpu_linear_packed(*wp, x.data(), M, y.data(), gelu, t);
    else rd::cpu_linear(isa, x.data(), w.data(), b.data(), y.data(), M, N, K, gelu, t);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(M * N * K) * static_cast<double>(state.iterations()) / 1e9,
                         benchmark::Counter::kIsRate);
  state.SetLabel(rd::cpu_isa_name(isa));
}

// One distilbert-base block (dim 768, 12 heads, hidden 3072); args: batch, seq, packed.
void block(benchmark::State& state) {
  const int64_t B = state.range(0), T = state.range(1), D = 768, F = 3072;
  const bool packed = state.range(2) != 0;
  const rd::CpuIsa isa = rd::cpu_isa_active();
  if (isa == rd::CpuIsa::none) {
    state.SkipWithError("no AVX2/AVX-512 kernels on this CPU (or ROUTENLP_CPU_KERNELS=off)");
    return;
  }
  const auto qkv_w = randn(3 * D * D, 0.02f, 1), qkv_b = randn(3 * D, 0.02f, 2), out_w = randn(D * D, 0.02f, 3),
             out_b = randn(D, 0.02f, 4), lin1_w = randn(F * D, 0.02f, 5), lin1_b = randn(F, 0.02f, 6),
             lin2_w = randn(D * F, 0.02f, 7), lin2_b = randn(D, 0.02f, 8);
  const std::vector<float> ones(D, 1.0f), zeros(D, 0.0f);
  rd::CpuBlockWeights w{qkv_w.data(), qkv_b.data(), out_w.data(), out_b.data(), ones.data(), zeros.data(),
                        lin1_w.data(), lin1_b.data(), lin2_w.data(), lin2_b.data(), ones.data(), zeros.data()};
  std::shared_ptr<const rd::CpuPackedWeights> qkv_p, out_p, lin1_p, lin2_p;
  if (packed) {
    qkv_p = rd::cpu_pack_linear(isa, qkv_w.data(), qkv_b.data(), 3 * D, D);
    out_p = rd::cpu_pack_linear(isa, out_w.data(), out_b.data(), D, D);
    lin1_p = rd::cpu_pack_linear(isa, lin1_w.data(), lin1_b.data(), F, D);
    lin2_p = rd::cpu_pack_linear(isa, lin2_w.data(), lin2_b.data(), D, F);
    if (!qkv_p) {
      state.SkipWithError("no packed GEMM for these kernels");
      return;
    }
    w.qkv_p = qkv_p.get();
    w.out_p = out_p.get();
    w.lin1_p = lin1_p.get();
    w.lin2_p = lin2_p.get();
  }
  rd::CpuBlockShape shape;
  shape.batch = B;
  shape.seq = T;
  shape.dim = D;
  shape.heads = 12;
  shape.hidden = F;
  const auto x0 = randn(static_cast<size_t>(B * T * D), 1.0f, 9);
  std::vector<float> x = x0;
  const int t = threads();
  for (auto _ : state) {
    state.PauseTiming();
    x = x0;
    state.ResumeTiming();
    rd::cpu_blocks_forward(isa, &w, 1, shape, x.data(), nullptr, t);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetLabel(rd::cpu_isa_name(isa));
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  for (int64_t M : {64, 2048})
    for (int64_t packed : {0, 1}) {
      b->Args({M, 2304, 768, 0, packed});  // fused q/k/v
      b->Args({M, 768, 768, 0, packed});   // out_lin
      b->Args({M, 3072, 768, 1, packed});  // lin1 + GELU
      b->Args({M, 768, 3072, 0, packed});  // lin2
    }
  b->ArgNames({"M", "N", "K", "gelu", "packed"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(linear)->Apply(gemm_shapes);
BENCHMARK(block)->ArgsProduct({{1, 32}, {64}, {0, 1}})->ArgNames({"batch", "seq", "packed"})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
