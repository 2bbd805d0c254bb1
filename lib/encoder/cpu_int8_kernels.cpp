// Int8 GEMM (cpu_int8_kernels.hpp): ISA choice, weight quantization and packing, the threaded
// driver (quantize the activations by rows, then column strips), and the scalar reference.
#include "encoder/cpu_int8_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "encoder/cpu_pool.hpp"
#include "routenlp/error.hpp"

namespace routenlp::detail {

const char* int8_isa_name(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::avx512vnni: return "avx512vnni";
    case Int8Isa::avx2: return "avx2";
    default: return "scalar";
  }
}

bool int8_isa_supported(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::scalar: return true;
#if defined(ROUTENLP_CPU_KERNELS_X86)
    case Int8Isa::avx2: return cpu_isa_supported(CpuIsa::avx2);
    case Int8Isa::avx512vnni:
      return cpu_isa_supported(CpuIsa::avx512) && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni");
#endif
    default: return false;
  }
}

Int8Isa int8_isa_for(CpuIsa isa) {
  if (isa == CpuIsa::avx512 && int8_isa_supported(Int8Isa::avx512vnni)) return Int8Isa::avx512vnni;
  if (isa != CpuIsa::none && int8_isa_supported(Int8Isa::avx2)) return Int8Isa::avx2;
  return Int8Isa::scalar;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Scalar reference: the same quantization and epilogue as the vector kernels, plain loops over a
// row-major [Np x Kp] s8 "pack" (strip 1, k_group 1).

void minmax_rows_scalar(const float* x, int64_t ldx, int64_t M, int64_t K, float* lo, float* hi) {
  for (int64_t m = 0; m < M; ++m) {
    float a = 0.0f, b = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      a = std::min(a, x[m * ldx + k]);
      b = std::max(b, x[m * ldx + k]);
    }
    lo[m] = a;
    hi[m] = b;
  }
}

void quantize_rows_scalar(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t Kp, const float* inv,
                          const int32_t* zp, void* xq, int64_t ldxq) {
  auto* q = static_cast<uint8_t*>(xq);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) {
      const int v = static_cast<int>(std::nearbyint(x[m * ldx + k] * inv[m])) + zp[m];
      q[m * ldxq + k] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
    for (int64_t k = K; k < Kp; ++k) q[m * ldxq + k] = 0;
  }
}

void gemm_strips_scalar(const void* xq, int64_t ldxq, const float* xs, const int32_t* zp, int64_t M,
                        const CpuInt8Weights& w, int64_t s0, int64_t s1, float* y, int64_t ldy,
                        void (*gelu)(float*, int64_t)) {
  const auto* a = static_cast<const uint8_t*>(xq);
  const auto* wq = static_cast<const int8_t*>(w.data());
  const int64_t n1 = std::min(s1 * w.strip, w.N);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = s0 * w.strip; n < n1; ++n) {
      int32_t acc = 0;
      for (int64_t k = 0; k < w.Kp; ++k) acc += int32_t{a[m * ldxq + k]} * wq[n * w.Kp + k];
      const float s = xs[m] * w.scale[n];
      y[m * ldy + n] = std::fma(static_cast<float>(acc - zp[m] * w.colsum[n]), s, w.bias[n]);
    }
    if (gelu && n1 > s0 * w.strip) gelu(y + m * ldy + s0 * w.strip, n1 - s0 * w.strip);
  }
}

void gelu_scalar(float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = 0.5f * p[i] * std::erfc(-p[i] * 0.70710678118654752f);
}

const CpuInt8Kernels& scalar_kernels() {
  static const CpuInt8Kernels k{1, 1, 1, 1, &minmax_rows_scalar, &quantize_rows_scalar, &gemm_strips_scalar};
  return k;
}

// ---------------------------------------------------------------------------------------------
// Per-row activation quantization parameters (one place, so every ISA uses the same ones).
// The range always includes 0, so 0 (padding, ReLU-like zeros) is exact.
void act_params(float lo, float hi, float* scale, float* inv, int32_t* zp) {
  float s = (hi - lo) / 255.0f;
  if (!(s > 0.0f) || !std::isfinite(s)) s = 1.0f;  // all-zero row (or non-finite input)
  *scale = s;
  *inv = 1.0f / s;
  *zp = std::clamp(static_cast<int32_t>(std::nearbyint(-lo / s)), 0, 255);
}

// Reused per calling thread, like cpu_kernels.cpp's workspace: quantized activations plus the
// per-row scale, inverse scale and zero point.
unsigned char* int8_workspace(size_t bytes) {
  thread_local std::unique_ptr<unsigned char[]> buf;
  thread_local size_t capacity = 0;
  if (capacity < bytes) {
    buf.reset();
    buf.reset(new unsigned char[bytes + 64]);
    capacity = bytes;
  }
  const auto p = reinterpret_cast<uintptr_t>(buf.get());
  return buf.get() + ((64 - p % 64) % 64);
}

const CpuKernels* fp32_kernels_for(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::avx512vnni: return &cpu_kernels(CpuIsa::avx512);
    case Int8Isa::avx2: return &cpu_kernels(CpuIsa::avx2);
    default: return nullptr;
  }
}

}  // namespace

const void* CpuInt8Weights::data() const {
  const auto p = reinterpret_cast<uintptr_t>(storage.data());
  return storage.data() + ((64 - p % 64) % 64);
}

const CpuInt8Kernels& cpu_int8_kernels(Int8Isa isa) {
  if (!int8_isa_supported(isa))
    throw Error(Status::not_supported, std::string("int8 kernels: this CPU or build cannot run ") + int8_isa_name(isa));
#if defined(ROUTENLP_CPU_KERNELS_X86)
  if (isa == Int8Isa::avx512vnni) return cpu_int8_kernels_avx512vnni();
  if (isa == Int8Isa::avx2) return cpu_int8_kernels_avx2();
#endif
  return scalar_kernels();
}

std::shared_ptr<const CpuInt8Weights> cpu_int8_pack(Int8Isa isa, const float* w, const float* b, int64_t N,
                                                    int64_t K) {
  if (N <= 0 || K <= 0)
    throw Error(Status::invalid_argument, "cpu_int8_pack: empty weight " + std::to_string(N) + " x " + std::to_string(K));
  const CpuInt8Kernels& kern = cpu_int8_kernels(isa);
  auto p = std::make_shared<CpuInt8Weights>();
  p->isa = isa;
  p->N = N;
  p->K = K;
  p->strip = kern.strip;
  p->k_group = kern.k_group;
  p->elem_bytes = kern.elem_bytes;
  p->Np = (N + kern.strip - 1) / kern.strip * kern.strip;
  p->Kp = (K + 3) / 4 * 4;  // 4: every ISA's k group divides it
  p->scale.assign(static_cast<size_t>(p->Np), 0.0f);
  p->colsum.assign(static_cast<size_t>(p->Np), 0);
  p->bias.assign(static_cast<size_t>(p->Np), 0.0f);
  p->storage.assign(static_cast<size_t>(p->Np * p->Kp * p->elem_bytes + 64), 0);
  auto* base = static_cast<unsigned char*>(const_cast<void*>(p->data()));
  const int64_t S = p->strip, G = p->k_group;
  for (int64_t n = 0; n < N; ++n) {
    const float* row = w + n * K;
    float amax = 0.0f;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::abs(row[k]));
    const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
    const float inv = 1.0f / s;
    p->scale[static_cast<size_t>(n)] = s;
    if (b) p->bias[static_cast<size_t>(n)] = b[n];
    int32_t sum = 0;
    const int64_t strip = n / S, col = n % S;
    for (int64_t k = 0; k < K; ++k) {
      const int v = std::clamp(static_cast<int>(std::nearbyint(row[k] * inv)), -127, 127);
      sum += v;
      // [strip][k / G][col][k % G]
      const int64_t at = ((strip * (p->Kp / G) + k / G) * S + col) * G + k % G;
      if (p->elem_bytes == 1) base[at] = static_cast<unsigned char>(static_cast<int8_t>(v));
      else {
        const int16_t v16 = static_cast<int16_t>(v);
        std::memcpy(base + at * 2, &v16, 2);
      }
    }
    p->colsum[static_cast<size_t>(n)] = sum;
  }
  return p;
}

void cpu_int8_linear(const CpuInt8Weights& w, const float* x, int64_t M, float* y, bool gelu, int threads) {
  if (M <= 0) return;
  const CpuInt8Kernels& kern = cpu_int8_kernels(w.isa);
  const int64_t K = w.K, Kp = w.Kp;
  const int64_t ldxq = (Kp + 63) / 64 * 64;  // rows start 64-byte aligned (in elements)
  unsigned char* ws = int8_workspace(static_cast<size_t>(M * ldxq * kern.act_bytes + M * 12));
  void* xq = ws;
  auto* xs = reinterpret_cast<float*>(ws + M * ldxq * kern.act_bytes);
  float* inv = xs + M;
  auto* zp = reinterpret_cast<int32_t*>(inv + M);
  // Rows in chunks of ~32K elements: one chunk below that (handing it out costs more).
  const int64_t rows = std::max<int64_t>(1, (int64_t{1} << 15) / K);
  cpu_pool_for((M + rows - 1) / rows, threads, [&](int64_t c, int) {
    const int64_t r0 = c * rows, r1 = std::min(M, r0 + rows);
    float lo[256], hi[256];
    for (int64_t m0 = r0; m0 < r1; m0 += 256) {
      const int64_t mc = std::min<int64_t>(256, r1 - m0);
      kern.minmax_rows(x + m0 * K, K, mc, K, lo, hi);
      for (int64_t i = 0; i < mc; ++i) act_params(lo[i], hi[i], &xs[m0 + i], &inv[m0 + i], &zp[m0 + i]);
      kern.quantize_rows(x + m0 * K, K, mc, K, Kp, inv + m0, zp + m0,
                         static_cast<unsigned char*>(xq) + m0 * ldxq * kern.act_bytes, ldxq);
    }
  });
  // Chunks of strips x rows: ~4 chunks per thread, each at least ~256K multiply-adds. Strips
  // first; when a narrow layer has too few strips for that (the router encoder's 128 columns
  // are 2 strips), rows are split as well (blocks of 48+, a multiple of the 6-row tile): with
  // strips alone, batch 32 on two threads ran 1.1x faster than on one.
  const int64_t strips = w.Np / w.strip;
  const int64_t min_strips = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, M * Kp * w.strip));
  const int t = std::max(threads, 1);
  const int64_t per = std::max(min_strips, (strips + 4 * t - 1) / (4 * t));
  const int64_t col_chunks = (strips + per - 1) / per;
  const int64_t want_rows = std::max<int64_t>(1, (4 * t + col_chunks - 1) / col_chunks);
  const int64_t row_block = std::max<int64_t>(48, (M + want_rows - 1) / want_rows + 5) / 6 * 6;
  const int64_t row_chunks = (M + row_block - 1) / row_block;
  const CpuKernels* fk = fp32_kernels_for(w.isa);
  void (*act)(float*, int64_t) = gelu ? (fk ? fk->gelu : &gelu_scalar) : nullptr;
  const auto* xqb = static_cast<const unsigned char*>(xq);
  cpu_pool_for(col_chunks * row_chunks, threads, [&](int64_t c, int) {
    const int64_t cc = c % col_chunks, r0 = (c / col_chunks) * row_block, r1 = std::min(M, r0 + row_block);
    kern.gemm_strips(xqb + r0 * ldxq * kern.act_bytes, ldxq, xs + r0, zp + r0, r1 - r0, w, cc * per,
                     std::min(strips, (cc + 1) * per), y + r0 * w.N, w.N, act);
  });
}

}  // namespace routenlp::detail
