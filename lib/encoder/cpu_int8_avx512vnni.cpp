// AVX-512 VNNI int8 kernels (cpu_int8_kernels.hpp). Compiled with -mavx512f -mavx512bw
// -mavx512vnni (see CMakeLists.txt); entered only after int8_isa_supported(avx512vnni).
//
// Inner loop: vpdpbusd multiplies 4 u8 activations by 4 s8 weights and adds the four products
// to one int32 lane. A strip of 64 output columns is packed [k / 4][64 columns][4 k] (4 zmm per
// k group), so one broadcast of a row's 4 activations feeds 4 vpdpbusd and every lane is one
// output column: no horizontal sums. A tile is 6 rows x 64 columns: 24 accumulators, 4 weight
// vectors and a broadcast of the 32 zmm registers. u8 x s8 products (<= 255 x 127) and their
// sums over K <= 65K stay within int32.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "encoder/cpu_int8_kernels.hpp"

namespace routenlp::detail {
namespace {

constexpr int kStrip = 64;  // columns per packed strip (4 zmm of 16 int32)
constexpr int kMR = 6;      // rows per tile
constexpr int kKGroup = 4;  // k values per packed group
using Act = uint8_t;
using Wt = int8_t;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline __mmask16 first(int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u); }

void minmax_rows(const float* x, int64_t ldx, int64_t M, int64_t K, float* lo, float* hi) {
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x + m * ldx;
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m512 v = _mm512_loadu_ps(r + k);
      a = _mm512_min_ps(a, v);
      b = _mm512_max_ps(b, v);
    }
    if (k < K) {  // masked-off lanes load 0, which the range includes anyway
      const __m512 v = _mm512_maskz_loadu_ps(first(K - k), r + k);
      a = _mm512_min_ps(a, v);
      b = _mm512_max_ps(b, v);
    }
    lo[m] = _mm512_reduce_min_ps(a);
    hi[m] = _mm512_reduce_max_ps(b);
  }
}

void quantize_rows(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t Kp, const float* inv,
                   const int32_t* zp, void* xq, int64_t ldxq) {
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x + m * ldx;
    auto* q = static_cast<uint8_t*>(xq) + m * ldxq;
    const __m512 s = _mm512_set1_ps(inv[m]);
    const __m512i z = _mm512_set1_epi32(zp[m]);
    const __m512i lo = _mm512_setzero_si512(), hi = _mm512_set1_epi32(255);
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 mk = first(K - k);
      // cvtps_epi32 rounds to nearest even (the MXCSR default), as nearbyint does.
      __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, r + k), s));
      v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, z), lo), hi);
      _mm512_mask_cvtusepi32_storeu_epi8(q + k, mk, v);
    }
    if (Kp > K) std::memset(q + K, 0, static_cast<size_t>(Kp - K));
  }
}

// Rows [0, MR) of x (MR <= kMR) times one packed strip; writes columns [n0, n0 + nc) of y.
template <int MR>
inline void tile(const uint8_t* a, int64_t lda, const int8_t* wp, int64_t groups, const float* xs, const int32_t* zp,
                 const CpuInt8Weights& w, int64_t n0, int64_t nc, float* y, int64_t ldy) {
  __m512i acc[MR][4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; ++g, wp += 4 * 64) {
    const __m512i w0 = _mm512_load_si512(wp), w1 = _mm512_load_si512(wp + 64);
    const __m512i w2 = _mm512_load_si512(wp + 128), w3 = _mm512_load_si512(wp + 192);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t four;
      std::memcpy(&four, a + r * lda + 4 * g, 4);
      const __m512i b = _mm512_set1_epi32(four);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b, w0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b, w1);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], b, w2);
      acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], b, w3);
    }
  }
  // Epilogue: fma(float(acc - zp * colsum), x_scale * w_scale, bias), the scalar reference's order.
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const int64_t n = n0 + 16 * j;
    if (n - n0 >= nc) break;
    const __mmask16 mk = first(nc - (n - n0));
    const __m512i cs = _mm512_loadu_si512(w.colsum.data() + n);
    const __m512 ws = _mm512_loadu_ps(w.scale.data() + n);
    const __m512 bias = _mm512_loadu_ps(w.bias.data() + n);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i v = _mm512_sub_epi32(acc[r][j], _mm512_mullo_epi32(_mm512_set1_epi32(zp[r]), cs));
      const __m512 s = _mm512_mul_ps(_mm512_set1_ps(xs[r]), ws);
      _mm512_mask_storeu_ps(y + r * ldy + n, mk, _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), s, bias));
    }
  }
}

#include "encoder/cpu_int8_driver.inc"

}  // namespace

const CpuInt8Kernels& cpu_int8_kernels_avx512vnni() {
  static const CpuInt8Kernels k{kStrip, kKGroup, int{sizeof(Wt)}, int{sizeof(Act)}, &minmax_rows, &quantize_rows, &gemm_strips};
  return k;
}

}  // namespace routenlp::detail
