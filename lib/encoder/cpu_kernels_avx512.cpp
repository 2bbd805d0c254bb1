// AVX-512 instance of cpu_kernels.inc. Compiled with -mavx512f -mavx2 -mfma (see CMakeLists.txt);
// entered only after cpu_isa_supported(avx512) checked CPUID.

// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves, which -Wall reports
// (GCC PR 105593, fixed in 12.3) at every inlined intrinsic; nothing in this file is affected.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "cpu_kernels.hpp"

namespace routenlp::detail {
namespace {

#include "cpu_kernels.inc"

struct V512 {
  using T = __m512;
  static constexpr int W = 16;
  static __mmask16 first(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float f) { return _mm512_set1_ps(f); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static T load_tail(const float* p, int n) { return _mm512_maskz_loadu_ps(first(n), p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static void store_tail(float* p, T v, int n) { _mm512_mask_storeu_ps(p, first(n), v); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static T round(T x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T ldexp(T p, T n) { return _mm512_scalef_ps(p, n); }
  static __m512i bits(T v) { return _mm512_castps_si512(v); }
  static T abs(T x) { return _mm512_castsi512_ps(_mm512_and_epi32(bits(x), _mm512_set1_epi32(0x7fffffff))); }
  static T copysign(T y, T x) {
    const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_andnot_epi32(sign, bits(y)), _mm512_and_epi32(sign, bits(x))));
  }
  static T select_lt(T x, T t, T a, T b) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, t, _CMP_LT_OQ), b, a); }
  // Horizontal reductions stay in zmm registers: GCC 12's 512->256 extract/cast intrinsics
  // (and so _mm512_reduce_add_ps) trip the warning above. Swap halves, 128-bit lanes, 64-bit
  // pairs, then neighbours, combining each time.
  static T swaps(T v, int step) {
    switch (step) {
      case 0: return _mm512_shuffle_f32x4(v, v, 0x4E);
      case 1: return _mm512_shuffle_f32x4(v, v, 0xB1);
      case 2: return _mm512_permute_ps(v, 0x4E);
      default: return _mm512_permute_ps(v, 0xB1);
    }
  }
  static float sum(T v) {
    RN_UNROLL
    for (int i = 0; i < 4; ++i) v = _mm512_add_ps(v, swaps(v, i));
    return _mm512_cvtss_f32(v);
  }
  static float hmax(T v) {
    RN_UNROLL
    for (int i = 0; i < 4; ++i) v = _mm512_max_ps(v, swaps(v, i));
    return _mm512_cvtss_f32(v);
  }
  // 16 vectors at a time: after the four levels lane i holds the sum of vector i.
  template <int R, int C>
  static void sums(const T (&acc)[R][C], float* out) {
    constexpr int N = R * C;
    RN_UNROLL
    for (int g = 0; g < N; g += 16) {
      T v[16];
      RN_UNROLL
      for (int i = 0; i < 16; ++i) v[i] = g + i < N ? acc[(g + i) / C][(g + i) % C] : zero();
      T l1[8], l2[4], l3[2];
      RN_UNROLL
      for (int i = 0; i < 8; ++i)  // per 128-bit lane: a b a b (pairs of vectors)
        l1[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
      RN_UNROLL
      for (int i = 0; i < 4; ++i)  // per 128-bit lane: a b c d
        l2[i] = _mm512_add_ps(_mm512_shuffle_ps(l1[2 * i], l1[2 * i + 1], 0x44),
                              _mm512_shuffle_ps(l1[2 * i], l1[2 * i + 1], 0xEE));
      RN_UNROLL
      for (int i = 0; i < 2; ++i)  // lanes: abcd(0+1) abcd(2+3) efgh(0+1) efgh(2+3)
        l3[i] = _mm512_add_ps(_mm512_shuffle_f32x4(l2[2 * i], l2[2 * i + 1], 0x88),
                              _mm512_shuffle_f32x4(l2[2 * i], l2[2 * i + 1], 0xDD));
      const T r = _mm512_add_ps(_mm512_shuffle_f32x4(l3[0], l3[1], 0x88), _mm512_shuffle_f32x4(l3[0], l3[1], 0xDD));
      if (N - g >= 16) store(out + g, r);
      else store_tail(out + g, r, N - g);
    }
  }
};

#include "cpu_gemm_avx512.inc"

}  // namespace

// The Linear GEMM and attention's two per-head products: the outer-product kernel of
// cpu_gemm_avx512.inc, on weights packed per call or once at load (CpuPackedWeights). The shared
// dot-product kernel's 4 x 6 tile (24 accumulators + 4 x vectors + 1 w vector of the 32 zmm
// registers) is instantiated for the K == 0 case only.
const CpuKernels& cpu_kernels_avx512() {
  static const CpuKernels k = [] {
    CpuKernels t = make_kernels<V512, &linear_cols_op>();
    t.packed_strip = kOpCols;
    t.linear_packed_cols = &linear_packed_cols_op;
    t.packed_x_rows = kOpMC;
    t.pack_x = &pack_x_op;
    return t;
  }();
  return k;
}

}  // namespace routenlp::detail
