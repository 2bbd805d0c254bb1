// Run-time ISA dispatch and the threaded drivers of the encoder's own CPU kernels
// (cpu_kernels.hpp). Compiled with -fopenmp (only this file; see CMakeLists.txt).
#include "cpu_kernels.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "routenlp/error.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace routenlp::detail {

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::avx512: return "avx512";
    case CpuIsa::avx2: return "avx2";
    default: return "none";
  }
}

bool cpu_isa_supported(CpuIsa isa) {
#if defined(ROUTENLP_CPU_KERNELS_X86)
  // libgcc's checks include the OS enabling the register state (XCR0), not only CPUID bits.
  switch (isa) {
    case CpuIsa::avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    case CpuIsa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default: return false;
  }
#else
  (void)isa;
  return false;
#endif
}

namespace {

CpuIsa isa_from_environment() {
  const char* e = std::getenv("ROUTENLP_CPU_KERNELS");
  const std::string want = e ? e : "";
  if (want == "off" || want == "0" || want == "torch") return CpuIsa::none;
  if (want != "avx2" && cpu_isa_supported(CpuIsa::avx512)) return CpuIsa::avx512;
  if (cpu_isa_supported(CpuIsa::avx2)) return CpuIsa::avx2;
  return CpuIsa::none;
}

// -1: no override (use the environment's choice).
std::atomic<int> g_override{-1};

}  // namespace

CpuIsa cpu_isa_active() {
  static const CpuIsa from_env = isa_from_environment();
  const int o = g_override.load(std::memory_order_relaxed);
  return o < 0 ? from_env : static_cast<CpuIsa>(o);
}

void cpu_isa_override(CpuIsa isa) {
  if (isa != CpuIsa::none && !cpu_isa_supported(isa))
    throw Error(Status::not_supported, std::string("CPU kernels: this CPU or build cannot run ") + cpu_isa_name(isa));
  g_override.store(static_cast<int>(isa), std::memory_order_relaxed);
}

void cpu_isa_reset() { g_override.store(-1, std::memory_order_relaxed); }

const CpuKernels& cpu_kernels(CpuIsa isa) {
  if (!cpu_isa_supported(isa))
    throw Error(Status::not_supported,
                std::string("CPU kernels: this CPU or build cannot run ") + cpu_isa_name(isa));
#if defined(ROUTENLP_CPU_KERNELS_X86)
  return isa == CpuIsa::avx512 ? cpu_kernels_avx512() : cpu_kernels_avx2();
#else
  throw Error(Status::internal, "CPU kernels: unreachable");
#endif
}

namespace {

int team_size(int threads) {
#if defined(_OPENMP)
  return omp_in_parallel() ? 1 : std::max(threads, 1);
#else
  (void)threads;
  return 1;
#endif
}

// Runs body(chunk) for chunk in [0, chunks) on up to `chunks` OpenMP threads. Bodies are
// kernel calls that do not throw.
template <class Body>
void parallel_chunks(int64_t chunks, const Body& body) {
#if defined(_OPENMP)
  if (chunks > 1) {
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
    for (int64_t c = 0; c < chunks; ++c) body(c);
    return;
  }
#endif
  for (int64_t c = 0; c < chunks; ++c) body(c);
}

void linear_with(const CpuKernels& k, const float* x, const float* w, const float* b, float* y,
                 int64_t M, int64_t N, int64_t K, bool gelu, int threads) {
  if (M <= 0 || N <= 0) return;
  // At least 16 columns and ~64K multiply-adds per chunk: below that, waking a thread costs
  // more than it saves (~20 us per parallel region with OMP_WAIT_POLICY=PASSIVE here).
  const int64_t min_cols = std::max<int64_t>(16, (int64_t{1} << 16) / std::max<int64_t>(1, M * K));
  const int64_t chunks = std::min<int64_t>(team_size(threads), std::max<int64_t>(1, N / min_cols));
  const int64_t per = (N + chunks - 1) / chunks;
  parallel_chunks(chunks, [&](int64_t c) {
    const int64_t n0 = std::min(N, c * per), n1 = std::min(N, n0 + per);
    if (n0 < n1) k.linear_cols(x, K, w, K, b, y, N, M, K, n0, n1, gelu);
  });
}

void check_shape(bool ok, const char* what, const std::string& detail) {
  if (!ok) throw Error(Status::invalid_argument, std::string(what) + ": " + detail);
}

}  // namespace

void cpu_linear(CpuIsa isa, const float* x, const float* w, const float* b, float* y, int64_t M,
                int64_t N, int64_t K, bool gelu, int threads) {
  check_shape(M >= 0 && N >= 0 && K >= 0, "cpu_linear",
              "negative shape M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K));
  linear_with(cpu_kernels(isa), x, w, b, y, M, N, K, gelu, threads);
}

void cpu_blocks_forward(CpuIsa isa, const CpuBlockWeights* blocks, int n_blocks,
                        const CpuBlockShape& sh, float* x, const uint8_t* key_valid, int threads) {
  const CpuKernels& k = cpu_kernels(isa);
  const int64_t B = sh.batch, T = sh.seq, D = sh.dim, H = sh.heads, F = sh.hidden;
  check_shape(B >= 0 && T >= 0 && D > 0 && H > 0 && D % H == 0 && F > 0, "cpu_blocks_forward",
              "bad shape batch=" + std::to_string(B) + " seq=" + std::to_string(T) + " dim=" +
                  std::to_string(D) + " heads=" + std::to_string(H) + " hidden=" + std::to_string(F));
  const int64_t BT = B * T, Dh = D / H;
  if (BT == 0 || n_blocks <= 0) return;
  const int team = team_size(threads);
  const int64_t scratch_per = T * T + Dh * T;
  // One allocation per call, uninitialised: qkv [BT x 3D], ctx [BT x D], tmp [BT x D],
  // ff [BT x F], attention scratch per thread.
  const int64_t total = BT * (3 * D + D + D + F) + scratch_per * team;
  std::unique_ptr<float[]> buf(new float[static_cast<size_t>(total)]);
  float* qkv = buf.get();
  float* ctx = qkv + BT * 3 * D;
  float* tmp = ctx + BT * D;
  float* ff = tmp + BT * D;
  float* scratch = ff + BT * F;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  // Rows per LayerNorm chunk: split only when there is real work (64+ rows of 768).
  const int64_t ln_chunks = std::min<int64_t>(team, std::max<int64_t>(1, BT * D / (64 * 768)));
  auto add_ln = [&](const float* gamma, const float* beta) {
    const int64_t per = (BT + ln_chunks - 1) / ln_chunks;
    parallel_chunks(ln_chunks, [&](int64_t c) {
      const int64_t r0 = std::min(BT, c * per), r1 = std::min(BT, r0 + per);
      if (r0 < r1) k.add_layernorm(tmp + r0 * D, x + r0 * D, gamma, beta, x + r0 * D, r1 - r0, D, sh.ln_eps);
    });
  };
  for (int l = 0; l < n_blocks; ++l) {
    const CpuBlockWeights& w = blocks[l];
    linear_with(k, x, w.qkv_w, w.qkv_b, qkv, BT, 3 * D, D, false, threads);
    // Attention: (sequence, head) pairs split across the team, each with its own scratch.
    const int64_t pairs = B * H;
    const int64_t chunks = std::min<int64_t>(team, pairs);
    parallel_chunks(chunks, [&](int64_t c) {
      float* my_scratch = scratch + c * scratch_per;
      for (int64_t p = c; p < pairs; p += chunks) {
        const int64_t b = p / H, h = p % H;
        const float* q = qkv + b * T * 3 * D + h * Dh;
        k.attention_head(q, q + D, q + 2 * D, 3 * D, key_valid ? key_valid + b * T : nullptr, T, Dh,
                         scale, ctx + b * T * D + h * Dh, D, my_scratch);
      }
    });
    linear_with(k, ctx, w.out_w, w.out_b, tmp, BT, D, D, false, threads);
    add_ln(w.sa_ln_w, w.sa_ln_b);  // x = LN(attn + x)
    linear_with(k, x, w.lin1_w, w.lin1_b, ff, BT, F, D, true, threads);
    linear_with(k, ff, w.lin2_w, w.lin2_b, tmp, BT, D, F, false, threads);
    add_ln(w.out_ln_w, w.out_ln_b);  // x = LN(ffn + x)
  }
}

}  // namespace routenlp::detail
