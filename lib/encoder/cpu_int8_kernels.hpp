// routenlp's own int8 GEMM for the encoder's Linear layers on x86 (AVX-512 VNNI, AVX2 fallback,
// a scalar reference for tests), torch-free like cpu_kernels.hpp.
//
// Quantization: weights once at load, symmetric per output channel (s8, scale = max|w_row|/127);
// activations per call, asymmetric per row (u8 with a zero point, so one-sided inputs such as
// GELU outputs keep all 8 bits). int32 accumulation; the epilogue subtracts zp * (the weight
// row's sum), scales by x_scale * w_scale, adds the bias (and applies exact GELU) in fp32:
//   y[m][n] = fma(float(sum_k xq[m][k] wq[n][k] - zp[m] colsum[n]), x_scale[m] w_scale[n], b[n]).
// Every ISA computes the same integers and the same float operations in the same order, so
// their outputs agree with the scalar reference to the last bit (GELU aside).
//
// Why our own: libtorch 1.13's quantized::linear_dynamic (fbgemm) lost to ONNX Runtime's int8 by
// 1.3-3x at batch 1 on the development machine (docs/results.md), mostly per-op overhead around
// small GEMMs; these run inside the fused block forward (cpu_blocks_forward) instead.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "encoder/cpu_kernels.hpp"

namespace routenlp::detail {

enum class Int8Isa { scalar, avx2, avx512vnni };

// "scalar", "avx2" or "avx512vnni".
const char* int8_isa_name(Int8Isa isa);

// Whether this CPU (and this build) can run `isa` (scalar: always).
bool int8_isa_supported(Int8Isa isa);

// The int8 kernels that go with the fp32 kernels `isa`: avx512vnni for avx512 on a CPU with
// AVX512-VNNI and -BW, else avx2 for avx2/avx512, scalar for none.
Int8Isa int8_isa_for(CpuIsa isa);

// Weights of one Linear, quantized and packed for one ISA's inner loop: output columns in strips
// of `strip`, each strip stored k-group by k-group ([k / k_group][strip][k_group] elements of
// `elem_bytes`, s8 or s16), K padded with zeros to Kp, N to Np (a whole number of strips).
struct CpuInt8Weights {
  Int8Isa isa = Int8Isa::scalar;
  int64_t N = 0, K = 0, Np = 0, Kp = 0;
  int strip = 1, k_group = 1, elem_bytes = 1;
  std::vector<float> scale;     // [Np] per output channel (padding: 0)
  std::vector<int32_t> colsum;  // [Np] sum over k of the quantized row, for the zero-point term
  std::vector<float> bias;      // [Np] (zeros without a bias)
  std::vector<unsigned char> storage;  // the packed weights, from data() (64-byte aligned)
  const void* data() const;
};

// Quantizes w [N x K] (a torch Linear weight, row-major) and b [N] (or null) for `isa`.
std::shared_ptr<const CpuInt8Weights> cpu_int8_pack(Int8Isa isa, const float* w, const float* b, int64_t N,
                                                    int64_t K);

// y [M x N] = act(dequant(quant(x) wq^T) + b) for x [M x K], both contiguous, act = exact GELU
// when `gelu`. Column strips run in chunks on up to `threads` threads of the kernels' pool.
void cpu_int8_linear(const CpuInt8Weights& w, const float* x, int64_t M, float* y, bool gelu, int threads);

// One ISA's int8 kernels (filled by cpu_int8_<isa>.cpp; the scalar one by cpu_int8_kernels.cpp).
struct CpuInt8Kernels {
  int strip, k_group, elem_bytes;  // weight layout (see CpuInt8Weights)
  int act_bytes;                   // quantized activation element: 1 (u8) or 2 (u8 value in u16)
  // lo[m] = min(0, min_k x[m][k]), hi[m] = max(0, max_k x[m][k]) for m in [0, M).
  void (*minmax_rows)(const float* x, int64_t ldx, int64_t M, int64_t K, float* lo, float* hi);
  // xq[m][k] = clamp(nearbyint(x[m][k] * inv_scale[m]) + zp[m], 0, 255) for k < K, 0 for
  // k in [K, Kp); xq rows at stride ldxq elements.
  void (*quantize_rows)(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t Kp, const float* inv_scale,
                        const int32_t* zp, void* xq, int64_t ldxq);
  // The output columns of strips [s0, s1) for all M rows (see the formula above); gelu(p, n)
  // applied to each finished row piece when non-null.
  void (*gemm_strips)(const void* xq, int64_t ldxq, const float* x_scale, const int32_t* x_zp, int64_t M,
                      const CpuInt8Weights& w, int64_t s0, int64_t s1, float* y, int64_t ldy,
                      void (*gelu)(float* p, int64_t n));
};

// The kernel table for a supported ISA; Error(not_supported) otherwise.
const CpuInt8Kernels& cpu_int8_kernels(Int8Isa isa);

// Per-ISA tables (cpu_int8_<isa>.cpp, compiled with that ISA's flags).
const CpuInt8Kernels& cpu_int8_kernels_avx512vnni();
const CpuInt8Kernels& cpu_int8_kernels_avx2();

}  // namespace routenlp::detail
