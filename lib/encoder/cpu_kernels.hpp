// routenlp's own fp32 CPU kernels for DistilBERT inference on x86 (AVX-512 or AVX2+FMA, chosen
// at run time from CPUID): the Linear GEMM (with bias and optional exact GELU fused), masked
// softmax attention per head, and residual + LayerNorm, plus a whole-block forward built on
// them. Torch-free, so it compiles fast and is tested on its own against naive references.
//
// Why our own: at batch-1 shapes (64 x 768 x 2304 ...) libtorch 1.13 hands Linear to the BLAS
// sgemm, which on the development machine ran at ~30-40% of the CPU's fp32 peak (half of that
// with OPENBLAS_CORETYPE pinning its AVX2 kernels), and the ~15 small ops around the GEMMs of a
// block each cost a dispatch, an allocation and often a copy. See docs/encoder.md "CPU kernels".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace routenlp::detail {

enum class CpuIsa { none, avx2, avx512 };

// "none", "avx2" or "avx512".
const char* cpu_isa_name(CpuIsa isa);

// Whether this CPU (and this build) can run `isa`.
bool cpu_isa_supported(CpuIsa isa);

// The kernels the encoder uses: the best supported ISA, unless the environment variable
// ROUTENLP_CPU_KERNELS is "off" (use libtorch ops), "avx2" or "avx512" (capped at what is
// supported). Read once per process.
CpuIsa cpu_isa_active();

// Tests only: makes cpu_isa_active() return `isa` (must be none or supported) until reset with
// cpu_isa_reset(). Not for use while encoders run on other threads.
void cpu_isa_override(CpuIsa isa);
void cpu_isa_reset();

// One ISA's kernels (function pointers filled by cpu_kernels_<isa>.cpp). Row-major, row strides
// given as ld*; no aliasing between inputs and outputs unless stated.
struct CpuKernels {
  // y[m][n] = act(sum_k x[m][k] * w[n][k] + b[n]) for m in [0, M), n in [n0, n1): x [M x K],
  // w [N x K] (a torch Linear weight), b [N] or null, act = exact GELU when `gelu`, else identity.
  // Columns outside [n0, n1) are not touched, so disjoint ranges may run on different threads.
  void (*linear_cols)(const float* x, int64_t ldx, const float* w, int64_t ldw, const float* b,
                      float* y, int64_t ldy, int64_t M, int64_t K, int64_t n0, int64_t n1, bool gelu);
  // One attention head over T positions: out[t] = sum_j softmax_j(scale * q[t].k[j] + mask) v[j]
  // with q, k, v rows of Dh floats at stride ld_qkv, keys with key_valid[j] == 0 excluded
  // (all excluded: uniform weights, as HF's finfo.min masking gives). out rows at stride ld_out.
  // scratch: at least T * T + Dh * T floats.
  void (*attention_head)(const float* q, const float* k, const float* v, int64_t ld_qkv,
                         const uint8_t* key_valid, int64_t T, int64_t Dh, float scale,
                         float* out, int64_t ld_out, float* scratch);
  // out[r] = LayerNorm(x[r] + res[r]) * gamma + beta over D features, for `rows` rows at
  // stride D. out may equal x or res.
  void (*add_layernorm)(const float* x, const float* res, const float* gamma, const float* beta,
                        float* out, int64_t rows, int64_t D, float eps);
  // p[i] = exact GELU(p[i]) for i in [0, n) (the int8 GEMM's epilogue uses it).
  void (*gelu)(float* p, int64_t n);
  // The Linear GEMM on weights packed once (CpuPackedWeights) instead of per call: columns
  // [n0, n1) of y = act(x w^T + b), n0 a multiple of packed_strip, wp = CpuPackedWeights::data()
  // of a weight with K columns. packed_strip == 0 (and null): this ISA has no packed form.
  // xp: null, or x already packed by pack_x (M <= packed_x_rows; x is then not read), so column
  // chunks of one GEMM share one packing of x.
  int packed_strip = 0;
  void (*linear_packed_cols)(const float* x, int64_t ldx, const float* xp, const float* wp, const float* b,
                             float* y, int64_t ldy, int64_t M, int64_t K, int64_t n0, int64_t n1,
                             bool gelu) = nullptr;
  // Packs rows [0, M) of x (M <= packed_x_rows) into xp (pack_x_floats(M, K) floats).
  int64_t packed_x_rows = 0;
  void (*pack_x)(const float* x, int64_t ldx, int64_t M, int64_t K, float* xp) = nullptr;
  static int64_t pack_x_floats(int64_t M, int64_t K) { return (M + 15) / 16 * 16 * K; }
};

// The kernel table for a supported ISA; Error(not_supported) otherwise.
const CpuKernels& cpu_kernels(CpuIsa isa);

// y = act(x w^T + b) over all N columns: [M x K] x [N x K]^T -> [M x N], contiguous, in column
// chunks run by up to `threads` threads of the kernels' pool (cpu_pool.hpp). threads <= 1, tiny
// products, or a pool busy with another caller run on the calling thread.
void cpu_linear(CpuIsa isa, const float* x, const float* w, const float* b, float* y, int64_t M,
                int64_t N, int64_t K, bool gelu, int threads);

// The weights of one Linear packed once for an ISA's GEMM, in the order its inner loop reads
// them: output columns in strips of `strip`, each strip k-major ([N / strip][K][strip], columns
// past N zero). Made when a model becomes immutable (distilbert.hpp, prepare_for_inference): at
// batch 1 every weight comes from DRAM once per forward, and packing it per call (transposes
// into a k-major buffer) was 13% of distilbert-base's time (docs/encoder.md "CPU kernels").
// Costs a second copy of the Linear weights (the torch tensors stay for the libtorch path).
struct CpuPackedWeights {
  CpuIsa isa = CpuIsa::none;
  int64_t N = 0, K = 0;
  int strip = 0;
  std::vector<float> bias;     // [N], zeros without a bias
  std::vector<float> storage;  // the packed weights, from data() (64-byte aligned)
  const float* data() const;
};

// Packs w [N x K] (a torch Linear weight, row-major) and b [N] (or null) for `isa`'s packed GEMM;
// null when `isa` has none (CpuKernels::packed_strip == 0).
std::shared_ptr<const CpuPackedWeights> cpu_pack_linear(CpuIsa isa, const float* w, const float* b, int64_t N,
                                                        int64_t K);

// y [M x N] = act(x w^T + b) for x [M x K], both contiguous, through the packed weights (on
// w.isa's kernels); threads as cpu_linear. Bit-identical to cpu_linear on the same weights.
void cpu_linear_packed(const CpuPackedWeights& w, const float* x, int64_t M, float* y, bool gelu, int threads);

struct CpuInt8Weights;  // cpu_int8_kernels.hpp

// The weights of one DistilBERT block, as raw pointers into contiguous fp32 tensors.
struct CpuBlockWeights {
  const float* qkv_w;  // [3*dim x dim]: q_lin, k_lin, v_lin weights stacked
  const float* qkv_b;  // [3*dim]
  const float* out_w;  // [dim x dim]
  const float* out_b;
  const float* sa_ln_w;  // sa_layer_norm
  const float* sa_ln_b;
  const float* lin1_w;  // [hidden x dim]
  const float* lin1_b;
  const float* lin2_w;  // [dim x hidden]
  const float* lin2_b;
  const float* out_ln_w;  // output_layer_norm
  const float* out_ln_b;
  // When set, that GEMM runs on the int8 kernels (cpu_int8_kernels.hpp) with these packed
  // weights and their bias; the fp32 weight and bias pointers above are then not read.
  const CpuInt8Weights* qkv_q = nullptr;
  const CpuInt8Weights* out_q = nullptr;
  const CpuInt8Weights* lin1_q = nullptr;
  const CpuInt8Weights* lin2_q = nullptr;
  // Else, when set, that GEMM runs on these packed fp32 weights (with their bias).
  const CpuPackedWeights* qkv_p = nullptr;
  const CpuPackedWeights* out_p = nullptr;
  const CpuPackedWeights* lin1_p = nullptr;
  const CpuPackedWeights* lin2_p = nullptr;
};

struct CpuBlockShape {
  int64_t batch = 0, seq = 0, dim = 0, heads = 0, hidden = 0;
  float ln_eps = 1e-12f;
};

// Runs `n_blocks` post-LayerNorm DistilBERT blocks in place on x [batch*seq x dim] (HF
// TransformerBlock math: x = LN(attn(x) + x); x = LN(lin2(gelu(lin1(x))) + x)). key_valid
// [batch*seq] marks real tokens (null: all real). Threads as cpu_linear (GEMMs split by column,
// attention by (sequence, head), LayerNorm by rows).
void cpu_blocks_forward(CpuIsa isa, const CpuBlockWeights* blocks, int n_blocks,
                        const CpuBlockShape& shape, float* x, const uint8_t* key_valid, int threads);

// DistilBERT's embeddings: out[r] = LayerNorm(word[ids[r]] + pos[r % T]) * gamma + beta for the
// B*T rows r, each of D floats (word [vocab x D], pos [>= T x D], both row-major). Every id must
// be in [0, vocab): the caller checks. Rows split over up to `threads` pool threads. Together
// with cpu_blocks_forward it makes the CPU forward free of libtorch ops, whose OpenMP threads
// would otherwise spin beside the pool's (docs/encoder.md "CPU kernels").
void cpu_embeddings_forward(CpuIsa isa, const float* word, const float* pos, const float* gamma,
                            const float* beta, const int64_t* ids, int64_t B, int64_t T, int64_t D,
                            float eps, float* out, int threads);

// Per-thread buffer of at least `floats` floats for a GEMM kernel's packed operand (grown on
// demand, freed when the thread exits). Defined in cpu_kernels.cpp, not in an ISA's translation
// unit, so no standard-library code is compiled with that ISA's flags (cpu_kernels.inc).
float* cpu_gemm_pack_buffer(size_t floats);

// Per-ISA tables (defined in cpu_kernels_<isa>.cpp, compiled with that ISA's flags).
const CpuKernels& cpu_kernels_avx512();
const CpuKernels& cpu_kernels_avx2();

}  // namespace routenlp::detail
