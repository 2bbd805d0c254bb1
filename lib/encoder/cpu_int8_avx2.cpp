// AVX2 int8 kernels (cpu_int8_kernels.hpp), for CPUs without AVX-512 VNNI. Compiled with -mavx2
// -mfma (see CMakeLists.txt); entered only after int8_isa_supported(avx2).
//
// vpmaddubsw (u8 x s8 pairs summed into s16) would saturate: 255 x 127 x 2 > 32767. Instead the
// activations are stored as u16 and the weights as s16, and vpmaddwd sums each pair of products
// into int32 exactly; the results equal the VNNI kernel's and the scalar reference's. Weights
// take twice the memory of s8; this is the fallback, not the fast path. A strip is 16 columns
// ([k / 2][16 columns][2 k], 2 ymm per k pair); a tile is 6 rows x 16 columns: 12 accumulators,
// 2 weight vectors and a broadcast of the 16 ymm registers.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "encoder/cpu_int8_kernels.hpp"

namespace routenlp::detail {
namespace {

constexpr int kStrip = 16;
constexpr int kMR = 6;
constexpr int kKGroup = 2;  // k values per packed group
using Act = uint16_t;
using Wt = int16_t;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Mask of the first n (<= 8) int32 lanes, for maskload/maskstore.
inline __m256i first(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 8 ? n : 8)), idx);
}

inline float hmin(__m256 v) {
  __m128 x = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_min_ps(x, _mm_movehl_ps(x, x));
  x = _mm_min_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

inline float hmax(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

void minmax_rows(const float* x, int64_t ldx, int64_t M, int64_t K, float* lo, float* hi) {
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x + m * ldx;
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k += 8) {  // masked-off lanes load 0, inside the range anyway
      const __m256 v = _mm256_maskload_ps(r + k, first(K - k));
      a = _mm256_min_ps(a, v);
      b = _mm256_max_ps(b, v);
    }
    lo[m] = hmin(a);
    hi[m] = hmax(b);
  }
}

void quantize_rows(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t Kp, const float* inv,
                   const int32_t* zp, void* xq, int64_t ldxq) {
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x + m * ldx;
    auto* q = static_cast<uint16_t*>(xq) + m * ldxq;
    const __m256 s = _mm256_set1_ps(inv[m]);
    const __m256i z = _mm256_set1_epi32(zp[m]);
    const __m256i lo = _mm256_setzero_si256(), hi = _mm256_set1_epi32(255);
    for (int64_t k = 0; k < K; k += 8) {
      const int64_t n = min64(8, K - k);
      // cvtps_epi32 rounds to nearest even (the MXCSR default), as nearbyint does.
      __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_maskload_ps(r + k, first(n)), s));
      v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, z), lo), hi);
      // 8 int32 -> 8 u16 in the low 128 bits (packus works per 128-bit lane: fix the order).
      const __m128i p = _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08));
      if (n == 8) _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k), p);
      else {
        alignas(16) uint16_t buf[8];
        _mm_store_si128(reinterpret_cast<__m128i*>(buf), p);
        std::memcpy(q + k, buf, static_cast<size_t>(n) * 2);
      }
    }
    for (int64_t k = K; k < Kp; ++k) q[k] = 0;
  }
}

template <int MR>
inline void tile(const uint16_t* a, int64_t lda, const int16_t* wp, int64_t pairs, const float* xs, const int32_t* zp,
                 const CpuInt8Weights& w, int64_t n0, int64_t nc, float* y, int64_t ldy) {
  __m256i acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t g = 0; g < pairs; ++g, wp += 2 * 16) {
    const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp));
    const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + 16));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t two;
      std::memcpy(&two, a + r * lda + 2 * g, 4);
      const __m256i b = _mm256_set1_epi32(two);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(b, w0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(b, w1));
    }
  }
  // Epilogue: fma(float(acc - zp * colsum), x_scale * w_scale, bias), the scalar reference's order.
#pragma GCC unroll 2
  for (int j = 0; j < 2; ++j) {
    const int64_t n = n0 + 8 * j;
    if (n - n0 >= nc) break;
    const __m256i mk = first(nc - (n - n0));
    const __m256i cs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.colsum.data() + n));
    const __m256 ws = _mm256_loadu_ps(w.scale.data() + n);
    const __m256 bias = _mm256_loadu_ps(w.bias.data() + n);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256i v = _mm256_sub_epi32(acc[r][j], _mm256_mullo_epi32(_mm256_set1_epi32(zp[r]), cs));
      const __m256 s = _mm256_mul_ps(_mm256_set1_ps(xs[r]), ws);
      _mm256_maskstore_ps(y + r * ldy + n, mk, _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), s, bias));
    }
  }
}

#include "encoder/cpu_int8_driver.inc"

}  // namespace

const CpuInt8Kernels& cpu_int8_kernels_avx2() {
  static const CpuInt8Kernels k{kStrip, kKGroup, int{sizeof(Wt)}, int{sizeof(Act)}, &minmax_rows, &quantize_rows, &gemm_strips};
  return k;
}

}  // namespace routenlp::detail
