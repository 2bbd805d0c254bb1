// AVX2+FMA instance of cpu_kernels.inc. Compiled with -mavx2 -mfma (see CMakeLists.txt);
// entered only after cpu_isa_supported(avx2) checked CPUID.
#include <immintrin.h>

#include "cpu_kernels.hpp"

namespace routenlp::detail {
namespace {

#include "cpu_kernels.inc"

struct V256 {
  using T = __m256;
  static constexpr int W = 8;
  static __m256i first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static T zero() { return _mm256_setzero_ps(); }
  static T set1(float f) { return _mm256_set1_ps(f); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static T load_tail(const float* p, int n) { return _mm256_maskload_ps(p, first(n)); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static void store_tail(float* p, T v, int n) { _mm256_maskstore_ps(p, first(n), v); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static T round(T x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // p * 2^n by adding n to the exponent field; vexp keeps n in [-126, 127].
  static T ldexp(T p, T n) {
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
  }
  static T abs(T x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
  static T copysign(T y, T x) {
    const T sign = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign, y), _mm256_and_ps(sign, x));
  }
  static T select_lt(T x, T t, T a, T b) { return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, t, _CMP_LT_OQ)); }
  // Swap 128-bit halves, 64-bit pairs, then neighbours, combining each time.
  static T swaps(T v, int step) {
    switch (step) {
      case 0: return _mm256_permute2f128_ps(v, v, 0x01);
      case 1: return _mm256_permute_ps(v, 0x4E);
      default: return _mm256_permute_ps(v, 0xB1);
    }
  }
  static float sum(T v) {
    RN_UNROLL
    for (int i = 0; i < 3; ++i) v = _mm256_add_ps(v, swaps(v, i));
    return _mm256_cvtss_f32(v);
  }
  static float hmax(T v) {
    RN_UNROLL
    for (int i = 0; i < 3; ++i) v = _mm256_max_ps(v, swaps(v, i));
    return _mm256_cvtss_f32(v);
  }
  // 8 vectors at a time: after the three levels lane i holds the sum of vector i.
  template <int R, int C>
  static void sums(const T (&acc)[R][C], float* out) {
    constexpr int N = R * C;
    RN_UNROLL
    for (int g = 0; g < N; g += 8) {
      T v[8];
      RN_UNROLL
      for (int i = 0; i < 8; ++i) v[i] = g + i < N ? acc[(g + i) / C][(g + i) % C] : zero();
      T l1[4], l2[2];
      RN_UNROLL
      for (int i = 0; i < 4; ++i)  // per 128-bit lane: a b a b
        l1[i] = _mm256_add_ps(_mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]));
      RN_UNROLL
      for (int i = 0; i < 2; ++i)  // per 128-bit lane: a b c d
        l2[i] = _mm256_add_ps(_mm256_shuffle_ps(l1[2 * i], l1[2 * i + 1], 0x44),
                              _mm256_shuffle_ps(l1[2 * i], l1[2 * i + 1], 0xEE));
      const T r = _mm256_add_ps(_mm256_permute2f128_ps(l2[0], l2[1], 0x20), _mm256_permute2f128_ps(l2[0], l2[1], 0x31));
      if (N - g >= 8) store(out + g, r);
      else store_tail(out + g, r, N - g);
    }
  }
};

}  // namespace

// 3 x 4 GEMM tile: 12 accumulators + 3 x vectors + 1 w vector of the 16 ymm registers.
const CpuKernels& cpu_kernels_avx2() {
  static const CpuKernels k = make_kernels<V256, &linear_cols_impl<V256, 3, 4>>();
  return k;
}

}  // namespace routenlp::detail
