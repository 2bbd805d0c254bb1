// Run-time ISA dispatch and the threaded drivers of the encoder's own CPU kernels
// (cpu_kernels.hpp); threads come from cpu_pool.hpp.
#include "cpu_kernels.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

#include "encoder/cpu_int8_kernels.hpp"
#include "encoder/cpu_pool.hpp"
#include "routenlp/error.hpp"


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

namespace {

void require_supported(CpuIsa isa) {
  if (!cpu_isa_supported(isa))
    throw Error(Status::not_supported, std::string("CPU kernels: this CPU or build cannot run ") + cpu_isa_name(isa));
}

}  // namespace

void cpu_isa_override(CpuIsa isa) {
  if (isa != CpuIsa::none) require_supported(isa);
  g_override.store(static_cast<int>(isa), std::memory_order_relaxed);
}

void cpu_isa_reset() { g_override.store(-1, std::memory_order_relaxed); }

const CpuKernels& cpu_kernels(CpuIsa isa) {
  require_supported(isa);
#if defined(ROUTENLP_CPU_KERNELS_X86)
  return isa == CpuIsa::avx512 ? cpu_kernels_avx512() : cpu_kernels_avx2();
#else
  throw Error(Status::internal, "CPU kernels: unreachable");
#endif
}

namespace {

// Output columns per GEMM chunk: a multiple of both ISAs' tile widths (6 and 4) and of the
// packed strip (12, cpu_pack_linear checks it divides 24), at least ~64K
// multiply-adds (below that, handing work to another thread costs more than it saves), and
// about four chunks per thread so a thread that loses its core only delays its current chunk.
int64_t gemm_chunk_cols(int64_t M, int64_t N, int64_t K, int threads) {
  const int64_t min_cols = std::max<int64_t>(24, (int64_t{1} << 16) / std::max<int64_t>(1, M * K));
  int64_t cols = std::max<int64_t>(min_cols, (N + 4 * threads - 1) / (4 * std::max(threads, 1)));
  return (cols + 23) / 24 * 24;
}

// Splits y [M x N] = x [M x K] w^T over up to `threads` pool threads and calls
// run(r0, r1, n0, n1) for each piece (rows [r0, r1), columns [n0, n1); column pieces start at
// multiples of 24).
template <class Run>
void split_gemm(int64_t M, int64_t N, int64_t K, int threads, const Run& run) {
  if (M <= 0 || N <= 0) return;
  // One thread: one call over everything (each chunk of a split re-packs its rows of x; the
  // router encoder's batch 1 on one thread: 0.380 -> 0.367 ms).
  if (threads <= 1) return run(0, M, 0, N);
  // Many rows (batch 32: 2048): chunks of 128+ rows over every column, so each chunk packs its
  // rows of x once (a column chunk packs all of x, which cost ~25% of the router encoder's
  // batch-32 GEMMs, whose 128 columns make column chunks narrow) and the weights' packing is
  // amortized over 128+ rows. Few rows (batch 1: 64): column chunks, as the weights dominate.
  const int t = std::max(threads, 1);
  if (M >= 256 * t) {
    const int64_t rows = std::max<int64_t>(128, (M + 4 * t - 1) / (4 * t) + 31) / 32 * 32;
    cpu_pool_for((M + rows - 1) / rows, threads, [&](int64_t c, int) {
      const int64_t r0 = c * rows;
      run(r0, std::min(M, r0 + rows), int64_t{0}, N);
    });
    return;
  }
  const int64_t per = gemm_chunk_cols(M, N, K, threads);
  cpu_pool_for((N + per - 1) / per, threads, [&](int64_t c, int) {
    const int64_t n0 = c * per;
    run(int64_t{0}, M, n0, std::min(N, n0 + per));
  });
}

void linear_with(const CpuKernels& k, const float* x, const float* w, const float* b, float* y,
                 int64_t M, int64_t N, int64_t K, bool gelu, int threads) {
  split_gemm(M, N, K, threads, [&](int64_t r0, int64_t r1, int64_t n0, int64_t n1) {
    k.linear_cols(x + r0 * K, K, w, K, b, y + r0 * N, N, r1 - r0, K, n0, n1, gelu);
  });
}

// One float buffer per calling thread and Tag, grown to the largest request and freed when the
// thread exits: a fresh allocation per forward was mmap'ed and page-faulted in every time above
// glibc's 32 MB mmap ceiling (batch 32 x seq 64 at distilbert-base: 56 MB; ~20% of that block's
// time in the kernel).
template <class Tag>
float* thread_buffer(size_t floats) {
  thread_local std::unique_ptr<float[]> buf;
  thread_local size_t capacity = 0;
  if (capacity < floats) {
    buf.reset();
    buf.reset(new float[floats]);
    capacity = floats;
  }
  return buf.get();
}

struct BlockWorkspace;  // cpu_blocks_forward's activations
struct GemmPack;        // a GEMM kernel's packed operand (live while the workspace is)

float* workspace(size_t floats) { return thread_buffer<BlockWorkspace>(floats); }

struct SharedXPack;  // x packed once for the column chunks of one GEMM (linear_packed_with)

void linear_packed_with(const CpuKernels& k, const CpuPackedWeights& w, const float* x, float* y, int64_t M,
                        bool gelu, int threads) {
  const int64_t N = w.N, K = w.K;
  const float* b = w.bias.data();
  const float* wp = w.data();
  // Column chunks (few rows, several threads) would each pack all of x again: at distilbert-base
  // batch 1 on two threads that was 8 packings of x per GEMM. Pack it once on the caller here.
  const float* xp = nullptr;
  if (threads > 1 && M > 0 && M <= k.packed_x_rows && k.pack_x) {
    float* buf = thread_buffer<SharedXPack>(static_cast<size_t>(CpuKernels::pack_x_floats(M, K)));
    k.pack_x(x, K, M, K, buf);
    xp = buf;
  }
  split_gemm(M, N, K, threads, [&](int64_t r0, int64_t r1, int64_t n0, int64_t n1) {
    const float* shared = r0 == 0 && r1 == M ? xp : nullptr;  // a row chunk packs its own rows
    k.linear_packed_cols(x + r0 * K, K, shared, wp, b, y + r0 * N, N, r1 - r0, K, n0, n1, gelu);
  });
}

}  // namespace

float* cpu_gemm_pack_buffer(size_t floats) { return thread_buffer<GemmPack>(floats); }

namespace {

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

const float* CpuPackedWeights::data() const {
  const auto p = reinterpret_cast<uintptr_t>(storage.data());
  return storage.data() + ((64 - p % 64) % 64) / sizeof(float);
}

std::shared_ptr<const CpuPackedWeights> cpu_pack_linear(CpuIsa isa, const float* w, const float* b, int64_t N,
                                                        int64_t K) {
  check_shape(N > 0 && K > 0, "cpu_pack_linear", "empty weight " + std::to_string(N) + " x " + std::to_string(K));
  const CpuKernels& k = cpu_kernels(isa);
  const int64_t S = k.packed_strip;
  if (S <= 0 || !k.linear_packed_cols) return nullptr;
  if (24 % S != 0) throw Error(Status::internal, "cpu_pack_linear: strip " + std::to_string(S) + " does not divide 24");
  auto p = std::make_shared<CpuPackedWeights>();
  p->isa = isa;
  p->N = N;
  p->K = K;
  p->strip = static_cast<int>(S);
  p->bias.assign(static_cast<size_t>(N), 0.0f);
  if (b) std::copy(b, b + N, p->bias.begin());
  const int64_t strips = (N + S - 1) / S;
  p->storage.assign(static_cast<size_t>(strips * K * S + 64 / sizeof(float)), 0.0f);
  auto* out = const_cast<float*>(p->data());
  for (int64_t s = 0; s < strips; ++s)  // written in order; read as S row streams
    for (int64_t kk = 0; kk < K; ++kk)
      for (int64_t c = 0, n = s * S; c < S && n < N; ++c, ++n) out[(s * K + kk) * S + c] = w[n * K + kk];
  return p;
}

void cpu_linear_packed(const CpuPackedWeights& w, const float* x, int64_t M, float* y, bool gelu, int threads) {
  check_shape(M >= 0, "cpu_linear_packed", "negative rows M=" + std::to_string(M));
  linear_packed_with(cpu_kernels(w.isa), w, x, y, M, gelu, threads);
}

void cpu_embeddings_forward(CpuIsa isa, const float* word, const float* pos, const float* gamma,
                            const float* beta, const int64_t* ids, int64_t B, int64_t T, int64_t D,
                            float eps, float* out, int threads) {
  const CpuKernels& k = cpu_kernels(isa);
  check_shape(B >= 0 && T >= 0 && D > 0, "cpu_embeddings_forward",
              "bad shape batch=" + std::to_string(B) + " seq=" + std::to_string(T) + " dim=" + std::to_string(D));
  const int64_t BT = B * T;
  // Chunks of 64+ rows (of 768), as the blocks' LayerNorm: a batch-1 call stays on the caller.
  const int64_t per = std::max<int64_t>(1, 64 * 768 / D);
  cpu_pool_for((BT + per - 1) / per, std::clamp(threads, 1, kCpuPoolMaxThreads), [&](int64_t c, int) {
    for (int64_t r = c * per, r1 = std::min(BT, r + per); r < r1; ++r)
      k.add_layernorm(word + ids[r] * D, pos + (r % T) * D, gamma, beta, out + r * D, 1, D, eps);
  });
}

namespace {

// ROUTENLP_CPU_BATCH_SPLIT=off: batches split every operation over the threads instead
// (A/B benchmarks of the batch split itself).
bool batch_split_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("ROUTENLP_CPU_BATCH_SPLIT");
    return !(e && std::string(e) == "off");
  }();
  return on;
}

// Sequence groups for a batch split over `threads` (0: split each operation instead). Every
// thread needs two groups or more, so one that loses its core delays at most its current group
// while the others take the rest. Two sequences per group (up to 8 groups per thread): the
// router encoder's batch 32 on two threads took 3.16 / 3.16 / 3.44 ms idle with 1 / 2 / 4
// sequences per group and 7.56 / 5.80 / 7.82 ms with busy loops in our group (int8; fp32 and
// distilbert-base int8 alike within noise); fewer rows per GEMM would stream the weights more
// often on many-core hosts.
int64_t batch_split_groups(int64_t batch, int threads) {
  if (threads <= 1 || batch < 2 * static_cast<int64_t>(threads) || !batch_split_enabled()) return 0;
  return std::min<int64_t>(batch, std::clamp<int64_t>(batch / 2, 2 * threads, 8 * threads));
}

void check_block_packs(CpuIsa isa, const CpuBlockWeights* blocks, int n_blocks, int64_t D, int64_t F) {
  auto check = [&](const CpuPackedWeights* p, int64_t N, int64_t K) {
    if (!p) return;
    check_shape(p->isa == isa && p->N == N && p->K == K, "cpu_blocks_forward",
                std::string("packed weight ") + std::to_string(p->N) + " x " + std::to_string(p->K) + " for " +
                    cpu_isa_name(p->isa) + ", expected " + std::to_string(N) + " x " + std::to_string(K) +
                    " for " + cpu_isa_name(isa));
  };
  for (int l = 0; l < n_blocks; ++l) {
    const CpuBlockWeights& w = blocks[l];
    if (!w.qkv_q) check(w.qkv_p, 3 * D, D);
    if (!w.out_q) check(w.out_p, D, D);
    if (!w.lin1_q) check(w.lin1_p, F, D);
    if (!w.lin2_q) check(w.lin2_p, D, F);
  }
}

}  // namespace

void cpu_blocks_forward(CpuIsa isa, const CpuBlockWeights* blocks, int n_blocks,
                        const CpuBlockShape& sh, float* x, const uint8_t* key_valid, int threads) {
  const CpuKernels& k = cpu_kernels(isa);
  const int64_t B = sh.batch, T = sh.seq, D = sh.dim, H = sh.heads, F = sh.hidden;
  check_shape(B >= 0 && T >= 0 && D > 0 && H > 0 && D % H == 0 && F > 0, "cpu_blocks_forward",
              "bad shape batch=" + std::to_string(B) + " seq=" + std::to_string(T) + " dim=" +
                  std::to_string(D) + " heads=" + std::to_string(H) + " hidden=" + std::to_string(F));
  const int64_t BT = B * T, Dh = D / H;
  if (BT == 0 || n_blocks <= 0) return;
  check_block_packs(isa, blocks, n_blocks, D, F);
  // A batch of several sequences per thread: each thread runs whole sequence groups through every
  // block alone, so the threads meet once per forward instead of at each of the ~7 operations of
  // every block. Under load, each meeting waits for the slowest thread, and a thread another
  // process has descheduled comes back a timeslice (milliseconds) late: the router encoder's
  // int8 batch 32 ran slower on two threads than on one that way. The bits are the same: every
  // row's GEMMs, LayerNorms and its sequence's attention are computed alike in any split.
  if (const int64_t groups = batch_split_groups(B, threads); groups > 0) {
    std::exception_ptr failed;
    std::atomic<bool> any_failed{false};
    cpu_pool_for(groups, threads, [&](int64_t g, int) {
      if (any_failed.load(std::memory_order_relaxed)) return;
      const int64_t b0 = B * g / groups, b1 = B * (g + 1) / groups;
      CpuBlockShape part = sh;
      part.batch = b1 - b0;
      try {
        cpu_blocks_forward(isa, blocks, n_blocks, part, x + b0 * T * D, key_valid ? key_valid + b0 * T : nullptr, 1);
      } catch (...) {  // a workspace allocation on a pool thread: rethrown on the caller
        if (!any_failed.exchange(true)) failed = std::current_exception();
      }
    });
    if (failed) std::rethrow_exception(failed);
    return;
  }
  const int team = std::clamp(threads, 1, kCpuPoolMaxThreads);  // thread slots for scratch
  // A small forward (the router encoder at batch 1: ~25 MFLOP) shares its jobs only with cores
  // other processes leave free; a big one always shares (cpu_pool.hpp). 2e8 multiply-adds x2 is
  // about a millisecond alone here.
  const double flops = 2.0 * static_cast<double>(n_blocks) *
                       (static_cast<double>(BT) * D * (3 * D + D + 2 * F) + 2.0 * B * H * T * T * Dh);
  const CpuPoolCrowdCheck crowd(flops < 2e8);
  const int64_t scratch_per = T * T + Dh * T;
  // Workspace, uninitialised: qkv [BT x 3D], ctx [BT x D], tmp [BT x D], ff [BT x F], attention
  // scratch per thread slot.
  float* qkv = workspace(static_cast<size_t>(BT * (3 * D + D + D + F) + scratch_per * team));
  float* ctx = qkv + BT * 3 * D;
  float* tmp = ctx + BT * D;
  float* ff = tmp + BT * D;
  float* scratch = ff + BT * F;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  // LayerNorm in chunks of 64+ rows (of 768): split only when there is real work.
  const int64_t ln_rows = std::max<int64_t>(1, 64 * 768 / D);
  auto add_ln = [&](const float* gamma, const float* beta) {
    cpu_pool_for((BT + ln_rows - 1) / ln_rows, team, [&](int64_t c, int) {
      const int64_t r0 = c * ln_rows, r1 = std::min(BT, r0 + ln_rows);
      k.add_layernorm(tmp + r0 * D, x + r0 * D, gamma, beta, x + r0 * D, r1 - r0, D, sh.ln_eps);
    });
  };
  // One GEMM of the block: int8 when the block has int8 weights for it, else fp32 on weights
  // packed at load when it has them, else on the torch weights (packed per call).
  auto gemm = [&](const CpuInt8Weights* q, const CpuPackedWeights* p, const float* in, const float* wt,
                  const float* b, float* out, int64_t N, int64_t K, bool gelu) {
    if (q) return cpu_int8_linear(*q, in, BT, out, gelu, threads);
    if (p) return linear_packed_with(k, *p, in, out, BT, gelu, threads);  // shape checked above
    linear_with(k, in, wt, b, out, BT, N, K, gelu, threads);
  };
  for (int l = 0; l < n_blocks; ++l) {
    const CpuBlockWeights& w = blocks[l];
    gemm(w.qkv_q, w.qkv_p, x, w.qkv_w, w.qkv_b, qkv, 3 * D, D, false);
    // Attention: one chunk per (sequence, head), scratch per thread slot.
    cpu_pool_for(B * H, team, [&](int64_t p, int slot) {
      const int64_t b = p / H, h = p % H;
      const float* q = qkv + b * T * 3 * D + h * Dh;
      k.attention_head(q, q + D, q + 2 * D, 3 * D, key_valid ? key_valid + b * T : nullptr, T, Dh, scale,
                       ctx + b * T * D + h * Dh, D, scratch + slot * scratch_per);
    });
    gemm(w.out_q, w.out_p, ctx, w.out_w, w.out_b, tmp, D, D, false);
    add_ln(w.sa_ln_w, w.sa_ln_b);  // x = LN(attn + x)
    gemm(w.lin1_q, w.lin1_p, x, w.lin1_w, w.lin1_b, ff, F, D, true);
    gemm(w.lin2_q, w.lin2_p, ff, w.lin2_w, w.lin2_b, tmp, D, F, false);
    add_ln(w.out_ln_w, w.out_ln_b);  // x = LN(ffn + x)
  }
}

}  // namespace routenlp::detail
