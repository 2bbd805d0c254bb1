// Encoder CPU kernels (encoder/cpu_kernels.hpp) per supported ISA against naive double references.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "encoder/cpu_kernels.hpp"
#include "encoder/cpu_pool.hpp"
#include "routenlp/error.hpp"

using routenlp::Error;
using routenlp::Status;
using namespace routenlp::detail;  // the kernels under test

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// The ISAs this CPU and build can run; the others are skipped.
std::vector<CpuIsa> supported_isas() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::avx2, CpuIsa::avx512})
    if (cpu_isa_supported(isa)) out.push_back(isa);
  return out;
}

// The status of the routenlp::Error `f` throws; ok when it throws nothing.
template <class F>
Status status_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Status::ok;
}

std::vector<float> uniform(std::mt19937& g, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = d(g);
  return v;
}

// Small integers: every product and partial sum is exact in fp32, so a correct GEMM must match
// the reference bit for bit whatever its summation order.
std::vector<float> small_ints(std::mt19937& g, size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(d(g));
  return v;
}

// Collects the elements outside tolerance (NaN counts as outside) and remembers the first.
struct Mismatch {
  int64_t bad = 0;
  int64_t index = -1;
  double got = 0, want = 0, tol = 0;
  double max_err = 0;    // largest |got - want| seen, for the failure message
  double max_ratio = 0;  // largest |got - want| / tol over elements with tol > 0
  void add(int64_t i, double g, double w, double t) {
    const double e = std::abs(g - w);
    if (e > max_err) max_err = e;
    if (t > 0 && e / t > max_ratio) max_ratio = e / t;
    if (e <= t) return;
    if (bad++ == 0) {
      index = i;
      got = g;
      want = w;
      tol = t;
    }
  }
};

std::ostream& operator<<(std::ostream& os, const Mismatch& m) {
  os.precision(9);
  os << m.bad << " element(s) out of tolerance (max |err| " << m.max_err << ", max |err|/tol "
     << m.max_ratio << ")";
  if (m.bad)
    os << "; first at " << m.index << ": got " << m.got << ", want " << m.want << ", tol " << m.tol;
  return os;
}

// Exact GELU in double (erfc keeps the negative tail accurate: 1 + erf underflows to 0).
double gelu_ref(double v) {
  return 0.5 * v * std::erfc(-v / std::sqrt(2.0));
}

// ---------------------------------------------------------------------------------------------
// Naive references.

// acc[m][n] = sum_k x[m][k] w[n][k] (no bias) and mag[m][n] = sum_k |x[m][k] w[n][k]| (the
// scale of the rounding error), all in double.
void ref_matmul(const float* x, const float* w, int64_t M, int64_t N, int64_t K,
                std::vector<double>& acc, std::vector<double>& mag) {
  acc.assign(static_cast<size_t>(M * N), 0.0);
  mag.assign(static_cast<size_t>(M * N), 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0, a = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = static_cast<double>(x[m * K + k]) * w[n * K + k];
        s += p;
        a += std::abs(p);
      }
      acc[static_cast<size_t>(m * N + n)] = s;
      mag[static_cast<size_t>(m * N + n)] = a;
    }
}

// One attention head in double: scores = scale q.k over valid keys, softmax, times v. No valid
// key: uniform weights over all keys. out is [T x Dh], contiguous.
std::vector<double> ref_attention(const float* q, const float* k, const float* v, int64_t ld,
                                  const uint8_t* valid, int64_t T, int64_t Dh, double scale) {
  std::vector<double> out(static_cast<size_t>(T * Dh), 0.0);
  bool any = valid == nullptr;
  for (int64_t j = 0; j < T && !any; ++j) any = valid[j] != 0;
  std::vector<double> p(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < T; ++j) {
      if (any && valid && !valid[j]) continue;
      double s = 0;
      for (int64_t d = 0; d < Dh; ++d) s += static_cast<double>(q[t * ld + d]) * k[j * ld + d];
      p[static_cast<size_t>(j)] = any ? scale * s : 0.0;
      mx = std::max(mx, p[static_cast<size_t>(j)]);
    }
    double z = 0;
    for (int64_t j = 0; j < T; ++j) {
      if (any && valid && !valid[j]) continue;
      p[static_cast<size_t>(j)] = std::exp(p[static_cast<size_t>(j)] - mx);
      z += p[static_cast<size_t>(j)];
    }
    for (int64_t j = 0; j < T; ++j) {
      if (any && valid && !valid[j]) continue;
      for (int64_t d = 0; d < Dh; ++d)
        out[static_cast<size_t>(t * Dh + d)] += p[static_cast<size_t>(j)] / z * v[j * ld + d];
    }
  }
  return out;
}

// LayerNorm(x + res) * gamma + beta per row, in double (biased variance, as torch).
std::vector<double> ref_add_layernorm(const double* x, const double* res, const float* gamma,
                                      const float* beta, int64_t rows, int64_t D, double eps) {
  std::vector<double> out(static_cast<size_t>(rows * D));
  std::vector<double> z(static_cast<size_t>(D));
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0;
    for (int64_t i = 0; i < D; ++i)
      mean += (z[static_cast<size_t>(i)] = x[r * D + i] + res[r * D + i]);
    mean /= static_cast<double>(D);
    double var = 0;
    for (int64_t i = 0; i < D; ++i)
      var += (z[static_cast<size_t>(i)] - mean) * (z[static_cast<size_t>(i)] - mean);
    var /= static_cast<double>(D);
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < D; ++i)
      out[static_cast<size_t>(r * D + i)] =
          (z[static_cast<size_t>(i)] - mean) * rstd * gamma[i] + beta[i];
  }
  return out;
}

std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// ---------------------------------------------------------------------------------------------
// cpu_linear on one shape, for every supported ISA: integer data must match exactly; random
// real data within a rounding bound, with and without bias, with and without GELU.
// cpu_linear, or with `packed` the same GEMM through weights packed first (cpu_pack_linear);
// false when `isa` has no packed form (nothing computed).
bool run_linear(CpuIsa isa, bool packed, const float* x, const float* w, const float* b, float* y, int64_t M,
                int64_t N, int64_t K, bool gelu, int threads) {
  if (!packed) {
    cpu_linear(isa, x, w, b, y, M, N, K, gelu, threads);
    return true;
  }
  const auto p = cpu_pack_linear(isa, w, b, N, K);
  if (p) cpu_linear_packed(*p, x, M, y, gelu, threads);
  return p != nullptr;
}

void check_linear_shape(const std::vector<CpuIsa>& isas, int64_t M, int64_t N, int64_t K,
                        std::mt19937& g) {
  const size_t xs = static_cast<size_t>(M * K), ws = static_cast<size_t>(N * K),
               ys = static_cast<size_t>(M * N);
  std::vector<double> acc, mag;
  std::vector<float> y(ys);

  // Exact: entries in [-2, 2] keep |sum| <= 4 K <= 2^24.
  {
    const auto x = small_ints(g, xs, -2, 2), w = small_ints(g, ws, -2, 2),
               b = small_ints(g, static_cast<size_t>(N), -3, 3);
    ref_matmul(x.data(), w.data(), M, N, K, acc, mag);
    for (CpuIsa isa : isas)
      for (bool packed : {false, true})
        for (bool bias : {false, true}) {
          std::fill(y.begin(), y.end(), kNaN);  // every output must be written
          if (!run_linear(isa, packed, x.data(), w.data(), bias ? b.data() : nullptr, y.data(), M,
                          N, K, false, 1))
            continue;
          Mismatch mm;
          for (int64_t i = 0; i < M * N; ++i)
            mm.add(i, y[static_cast<size_t>(i)],
                   acc[static_cast<size_t>(i)] + (bias ? b[static_cast<size_t>(i % N)] : 0.0f),
                   0.0);
          INFO("integer data, isa " << cpu_isa_name(isa) << " packed=" << packed << " M=" << M
                                    << " N=" << N << " K=" << K << " bias=" << bias);
          INFO(mm);
          CHECK(mm.bad == 0);
        }
  }

  // Real data in [-1, 1]. fp32 rounding errors of a K-term dot product are bounded by ~n u
  // sum|x w| (u = 2^-24, n the longest addition chain: K / lanes + log2(lanes) + K / 1024) and in
  // practice grow like sqrt(n) u; 1e-5 is ~70x the largest observed error, while a dropped,
  // repeated or misplaced product (~0.25 on average) breaks it at these K.
  {
    const auto x = uniform(g, xs, -1, 1), w = uniform(g, ws, -1, 1),
               b = uniform(g, static_cast<size_t>(N), -1, 1);
    ref_matmul(x.data(), w.data(), M, N, K, acc, mag);
    for (CpuIsa isa : isas)
      for (bool packed : {false, true})
        for (bool bias : {false, true})
          for (bool gelu : {false, true}) {
            std::fill(y.begin(), y.end(), kNaN);
            if (!run_linear(isa, packed, x.data(), w.data(), bias ? b.data() : nullptr, y.data(), M,
                            N, K, gelu, 1))
              continue;
            Mismatch mm;
            for (int64_t i = 0; i < M * N; ++i) {
              const double bn = bias ? b[static_cast<size_t>(i % N)] : 0.0;
              const double pre = acc[static_cast<size_t>(i)] + bn;
              const double tol_pre = 1e-5 * (1 + mag[static_cast<size_t>(i)] + std::abs(bn));
              if (gelu)  // |gelu'| <= 1.13 carries the pre-activation error; + the kernel's erf
                         // error
                mm.add(i, y[static_cast<size_t>(i)], gelu_ref(pre),
                       1.13 * tol_pre + 2e-7 * std::abs(pre) + 1e-7);
              else
                mm.add(i, y[static_cast<size_t>(i)], pre, tol_pre);
            }
            INFO("real data, isa " << cpu_isa_name(isa) << " packed=" << packed << " M=" << M
                                   << " N=" << N << " K=" << K << " bias=" << bias
                                   << " gelu=" << gelu);
            INFO(mm);
            CHECK(mm.bad == 0);
          }
  }
}

// Restores the environment's choice of CPU kernels when a test that overrides it ends.
struct IsaGuard {
  ~IsaGuard() { cpu_isa_reset(); }
};

// ---------------------------------------------------------------------------------------------
// cpu_blocks_forward's reference.

// One block's weights, owned.
struct BlockData {
  std::vector<float> qkv_w, qkv_b, out_w, out_b, sa_ln_w, sa_ln_b, lin1_w, lin1_b, lin2_w, lin2_b,
      out_ln_w, out_ln_b;
  CpuBlockWeights view() const {
    return {qkv_w.data(),   qkv_b.data(),   out_w.data(),    out_b.data(),
            sa_ln_w.data(), sa_ln_b.data(), lin1_w.data(),   lin1_b.data(),
            lin2_w.data(),  lin2_b.data(),  out_ln_w.data(), out_ln_b.data()};
  }
};

BlockData random_block(std::mt19937& g, int64_t D, int64_t F) {
  // Weights ~ U(-1, 1) / sqrt(fan_in) keep activations O(1).
  const float sd = 1.0f / std::sqrt(static_cast<float>(D)),
              sf = 1.0f / std::sqrt(static_cast<float>(F));
  BlockData b;
  b.qkv_w = uniform(g, static_cast<size_t>(3 * D * D), -sd, sd);
  b.qkv_b = uniform(g, static_cast<size_t>(3 * D), -0.1f, 0.1f);
  b.out_w = uniform(g, static_cast<size_t>(D * D), -sd, sd);
  b.out_b = uniform(g, static_cast<size_t>(D), -0.1f, 0.1f);
  b.sa_ln_w = uniform(g, static_cast<size_t>(D), 0.8f, 1.2f);
  b.sa_ln_b = uniform(g, static_cast<size_t>(D), -0.1f, 0.1f);
  b.lin1_w = uniform(g, static_cast<size_t>(F * D), -sd, sd);
  b.lin1_b = uniform(g, static_cast<size_t>(F), -0.1f, 0.1f);
  b.lin2_w = uniform(g, static_cast<size_t>(D * F), -sf, sf);
  b.lin2_b = uniform(g, static_cast<size_t>(D), -0.1f, 0.1f);
  b.out_ln_w = uniform(g, static_cast<size_t>(D), 0.8f, 1.2f);
  b.out_ln_b = uniform(g, static_cast<size_t>(D), -0.1f, 0.1f);
  return b;
}

// y [R x N] = x [R x K] w^T + b, double activations, fp32 weights.
std::vector<double> ref_dense(const std::vector<double>& x, const std::vector<float>& w,
                              const std::vector<float>& b, int64_t R, int64_t N, int64_t K) {
  std::vector<double> y(static_cast<size_t>(R * N));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t n = 0; n < N; ++n) {
      double s = b[static_cast<size_t>(n)];
      for (int64_t k = 0; k < K; ++k)
        s += x[static_cast<size_t>(r * K + k)] * w[static_cast<size_t>(n * K + k)];
      y[static_cast<size_t>(r * N + n)] = s;
    }
  return y;
}

// HF DistilBERT TransformerBlock (post-LN) in double, written out from the model's definition.
std::vector<double> ref_blocks(const std::vector<BlockData>& blocks, const CpuBlockShape& sh,
                               std::vector<double> x, const uint8_t* key_valid) {
  const int64_t B = sh.batch, T = sh.seq, D = sh.dim, H = sh.heads, F = sh.hidden, BT = B * T,
                Dh = D / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(Dh));
  for (const BlockData& w : blocks) {
    // q, k, v = x Wq^T + bq, ... (the stacked [3D x D] weight gives all three at once).
    const auto qkv = ref_dense(x, w.qkv_w, w.qkv_b, BT, 3 * D, D);
    std::vector<double> ctx(static_cast<size_t>(BT * D), 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t t = 0; t < T; ++t) {
          // HF: scores = (q / sqrt(dh)) k^T, masked_fill(mask == 0, finfo.min), softmax, @ v.
          std::vector<double> p(static_cast<size_t>(T));
          double mx = -INFINITY;
          for (int64_t j = 0; j < T; ++j) {
            if (key_valid && !key_valid[b * T + j]) continue;
            double s = 0;
            for (int64_t d = 0; d < Dh; ++d)
              s += qkv[static_cast<size_t>((b * T + t) * 3 * D + h * Dh + d)] *
                   qkv[static_cast<size_t>((b * T + j) * 3 * D + D + h * Dh + d)];
            p[static_cast<size_t>(j)] = s * scale;
            mx = std::max(mx, p[static_cast<size_t>(j)]);
          }
          double z = 0;
          for (int64_t j = 0; j < T; ++j) {
            if (key_valid && !key_valid[b * T + j]) {
              p[static_cast<size_t>(j)] = 0;
              continue;
            }
            z += (p[static_cast<size_t>(j)] = std::exp(p[static_cast<size_t>(j)] - mx));
          }
          for (int64_t j = 0; j < T; ++j)
            for (int64_t d = 0; d < Dh; ++d)
              ctx[static_cast<size_t>((b * T + t) * D + h * Dh + d)] +=
                  p[static_cast<size_t>(j)] / z *
                  qkv[static_cast<size_t>((b * T + j) * 3 * D + 2 * D + h * Dh + d)];
        }
    const auto attn = ref_dense(ctx, w.out_w, w.out_b, BT, D, D);
    x = ref_add_layernorm(attn.data(), x.data(), w.sa_ln_w.data(), w.sa_ln_b.data(), BT, D,
                          sh.ln_eps);
    auto ff = ref_dense(x, w.lin1_w, w.lin1_b, BT, F, D);
    for (double& f : ff) f = gelu_ref(f);
    const auto ff2 = ref_dense(ff, w.lin2_w, w.lin2_b, BT, D, F);
    x = ref_add_layernorm(ff2.data(), x.data(), w.out_ln_w.data(), w.out_ln_b.data(), BT, D,
                          sh.ln_eps);
  }
  return x;
}

// Two random blocks (dim 32, 4 heads, hidden 64) for a batch x seq input, with their views.
struct TwoBlocks {
  CpuBlockShape sh;
  std::vector<BlockData> blocks;
  std::vector<CpuBlockWeights> views;
};

TwoBlocks two_blocks(std::mt19937& g, int64_t batch, int64_t seq) {
  TwoBlocks t;
  t.sh.batch = batch;
  t.sh.seq = seq;
  t.sh.dim = 32;
  t.sh.heads = 4;
  t.sh.hidden = 64;
  t.sh.ln_eps = 1e-12f;
  for (int l = 0; l < 2; ++l) t.blocks.push_back(random_block(g, t.sh.dim, t.sh.hidden));
  for (const auto& b : t.blocks) t.views.push_back(b.view());
  return t;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
TEST_CASE("cpu_kernels: ISA dispatch, support and override", "[cpu_kernels]") {
  SECTION("names, support and the kernel table") {
    CHECK(std::string(cpu_isa_name(CpuIsa::none)) == "none");
    CHECK(std::string(cpu_isa_name(CpuIsa::avx2)) == "avx2");
    CHECK(std::string(cpu_isa_name(CpuIsa::avx512)) == "avx512");

    // `none` is never runnable: asking for its kernels is not_supported.
    CHECK_FALSE(cpu_isa_supported(CpuIsa::none));
    CHECK(status_of([] { cpu_kernels(CpuIsa::none); }) == Status::not_supported);
    std::vector<float> x(4, 1.0f), y(4, 0.0f);
    CHECK(status_of([&] {
            cpu_linear(CpuIsa::none, x.data(), x.data(), nullptr, y.data(), 2, 2, 1, false, 1);
          }) == Status::not_supported);

    // Every AVX-512 CPU also has AVX2 (ROUTENLP_CPU_KERNELS=avx2 relies on it).
    if (cpu_isa_supported(CpuIsa::avx512)) CHECK(cpu_isa_supported(CpuIsa::avx2));

    for (CpuIsa isa : supported_isas()) {
      INFO("isa " << cpu_isa_name(isa));
      const CpuKernels& k = cpu_kernels(isa);
      CHECK(k.linear_cols != nullptr);
      CHECK(k.attention_head != nullptr);
      CHECK(k.add_layernorm != nullptr);
      CHECK(&k == &cpu_kernels(isa));  // one static table per ISA
    }
    const auto isas = supported_isas();
    if (isas.size() == 2) CHECK(&cpu_kernels(CpuIsa::avx2) != &cpu_kernels(CpuIsa::avx512));
  }
  SECTION("cpu_isa_override and cpu_isa_reset") {
    IsaGuard guard;
    cpu_isa_reset();
    const CpuIsa from_env = cpu_isa_active();
    CHECK((from_env == CpuIsa::none || cpu_isa_supported(from_env)));
    // Without ROUTENLP_CPU_KERNELS the best supported ISA is active.
    if (std::getenv("ROUTENLP_CPU_KERNELS") == nullptr) {
      const CpuIsa best = cpu_isa_supported(CpuIsa::avx512) ? CpuIsa::avx512
                          : cpu_isa_supported(CpuIsa::avx2) ? CpuIsa::avx2
                                                            : CpuIsa::none;
      CHECK(from_env == best);
    }

    cpu_isa_override(CpuIsa::none);
    CHECK(cpu_isa_active() == CpuIsa::none);
    for (CpuIsa isa : supported_isas()) {
      cpu_isa_override(isa);
      CHECK(cpu_isa_active() == isa);
    }
    cpu_isa_reset();
    CHECK(cpu_isa_active() == from_env);

    // An ISA this CPU cannot run is refused and leaves the current choice alone.
    cpu_isa_override(CpuIsa::none);
    for (CpuIsa isa : {CpuIsa::avx2, CpuIsa::avx512}) {
      if (cpu_isa_supported(isa)) continue;
      CHECK(status_of([&] { cpu_isa_override(isa); }) == Status::not_supported);
      CHECK(cpu_isa_active() == CpuIsa::none);
    }
    cpu_isa_reset();
    CHECK(cpu_isa_active() == from_env);
  }
}

TEST_CASE("cpu_kernels: cpu_linear and linear_cols", "[cpu_kernels]") {
  SECTION("matches a double reference on edge shapes") {
    const auto isas = supported_isas();
    if (isas.empty()) return;
    std::mt19937 g(1234);
    // AVX2 tiles are 3 x 4 (dot-product kernel, 64-row and 1024-wide K blocks); AVX-512 tiles 16
    // or 32 rows x 12 columns (outer-product kernel, 256-row and 3072-wide K blocks). M covers
    // every M % 3, one- and two-panel tiles with partial panels (17, 31, 33) and M past both row
    // blocks (130, 257); N every N % 4, N % 6 and N % 12 class that matters; K every kind of
    // K % 16 and K % 8 tail (the vector widths), below and above both K blocks.
    const int64_t Ms[] = {1, 3, 4, 5, 17, 31, 33, 63, 64, 65, 130};
    const int64_t Ns[] = {1, 3, 5, 6, 7, 11, 12, 13, 14, 25, 48, 100};
    const int64_t small_Ks[] = {1, 7, 15, 16, 17, 33, 64};
    for (int64_t M : Ms)
      for (int64_t N : Ns)
        for (int64_t K : small_Ks) check_linear_shape(isas, M, N, K, g);
    // K blocking (K > 1024, K > 3072) and row blocking (M > 256) with a representative subset.
    for (int64_t M : {1, 5, 65, 130})
      for (int64_t N : {7, 14, 100})
        for (int64_t K : {1023, 1024, 1025, 2500, 3073}) check_linear_shape(isas, M, N, K, g);
    for (int64_t M : {257, 300})
      for (int64_t N : {13, 24})
        for (int64_t K : {17, 3072, 3100}) check_linear_shape(isas, M, N, K, g);
  }
  SECTION("threads split rows or columns without changing a bit") {
    std::mt19937 g(4321);
    // 64 rows: column chunks; 800 rows: row chunks (at 1, 2 and 3 threads).
    for (int64_t M : {64, 800})
      for (CpuIsa isa : supported_isas()) {
        const int64_t N = 37, K = 45;
        const auto x = uniform(g, static_cast<size_t>(M * K), -1, 1), w = uniform(g, static_cast<size_t>(N * K), -1, 1),
                   b = uniform(g, static_cast<size_t>(N), -1, 1);
        std::vector<float> one(static_cast<size_t>(M * N), kNaN);
        cpu_linear(isa, x.data(), w.data(), b.data(), one.data(), M, N, K, true, 1);
        std::vector<double> acc, mag;
        ref_matmul(x.data(), w.data(), M, N, K, acc, mag);
        CHECK(std::abs(one[static_cast<size_t>(M * N - 1)] -
                       gelu_ref(acc[static_cast<size_t>(M * N - 1)] + b[static_cast<size_t>(N - 1)])) < 1e-4);
        for (int threads : {2, 3}) {
          std::vector<float> many(static_cast<size_t>(M * N), kNaN);
          cpu_linear(isa, x.data(), w.data(), b.data(), many.data(), M, N, K, true, threads);
          int64_t differ = 0;
          for (size_t i = 0; i < many.size(); ++i) differ += !(many[i] == one[i]);
          INFO("isa " << cpu_isa_name(isa) << " M=" << M << " threads=" << threads);
          CHECK(differ == 0);
        }
      }
  }
  SECTION("empty and invalid shapes") {
    for (CpuIsa isa : supported_isas()) {
      INFO("isa " << cpu_isa_name(isa));
      std::vector<float> x(8, 1.0f), w(8, 1.0f), y(8, 7.0f);
      // M or N zero: nothing to compute, nothing written.
      cpu_linear(isa, x.data(), w.data(), nullptr, y.data(), 0, 2, 4, false, 1);
      cpu_linear(isa, x.data(), w.data(), nullptr, y.data(), 2, 0, 4, true, 2);
      for (float f : y) CHECK(f == 7.0f);
      CHECK(status_of([&] {
              cpu_linear(isa, x.data(), w.data(), nullptr, y.data(), -1, 2, 4, false, 1);
            }) == Status::invalid_argument);
      CHECK(status_of([&] {
              cpu_linear(isa, x.data(), w.data(), nullptr, y.data(), 2, -1, 4, false, 1);
            }) == Status::invalid_argument);
      CHECK(status_of([&] {
              cpu_linear(isa, x.data(), w.data(), nullptr, y.data(), 2, 2, -4, false, 1);
            }) == Status::invalid_argument);
    }
  }
  SECTION("linear_cols honours strides and writes only columns n0 to n1 - 1") {
    std::mt19937 g(99);
    const int64_t M = 11, N = 29, K = 37, ldx = 45, ldw = 41, ldy = 33;
    // Padding past K in x and w rows is NaN: reading it would poison the result.
    std::vector<float> x(static_cast<size_t>(M * ldx), kNaN), w(static_cast<size_t>(N * ldw), kNaN);
    const auto xv = uniform(g, static_cast<size_t>(M * K), -1, 1),
               wv = uniform(g, static_cast<size_t>(N * K), -1, 1);
    const auto b = uniform(g, static_cast<size_t>(N), -1, 1);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k)
        x[static_cast<size_t>(m * ldx + k)] = xv[static_cast<size_t>(m * K + k)];
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        w[static_cast<size_t>(n * ldw + k)] = wv[static_cast<size_t>(n * K + k)];
    std::vector<double> acc, mag;
    ref_matmul(xv.data(), wv.data(), M, N, K, acc, mag);

    const float sentinel = -12345.5f;
    for (CpuIsa isa : supported_isas())
      for (const std::pair<int64_t, int64_t>& range :
           std::vector<std::pair<int64_t, int64_t>>{{0, N}, {3, 17}, {5, 6}, {28, 29}, {7, 7}})
        for (bool gelu : {false, true}) {
          const int64_t n0 = range.first, n1 = range.second;
          std::vector<float> y(static_cast<size_t>(M * ldy), sentinel);
          cpu_kernels(isa).linear_cols(x.data(), ldx, w.data(), ldw, b.data(), y.data(), ldy, M, K,
                                       n0, n1, gelu);
          Mismatch mm;
          int64_t touched = 0;
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < ldy; ++n) {
              const float got = y[static_cast<size_t>(m * ldy + n)];
              if (n < n0 || n >= n1) {
                touched += got != sentinel;
                continue;
              }
              const double pre = acc[static_cast<size_t>(m * N + n)] + b[static_cast<size_t>(n)];
              const double tol = 1e-5 * (1 + mag[static_cast<size_t>(m * N + n)] + 1);
              mm.add(m * N + n, got, gelu ? gelu_ref(pre) : pre,
                     gelu ? 1.13 * tol + 2e-7 * std::abs(pre) + 1e-7 : tol);
            }
          INFO("isa " << cpu_isa_name(isa) << " n0=" << n0 << " n1=" << n1 << " gelu=" << gelu);
          INFO(mm);
          CHECK(mm.bad == 0);
          CHECK(touched == 0);
        }
  }
  SECTION("threads give bit-identical results") {
    std::mt19937 g(7);
    // Shapes big enough (M K >= 2^16, N >= 48) that 2 and 3 threads really split the columns, at
    // boundaries (N / chunks) that are not multiples of the tile width.
    struct Shape {
      int64_t M, N, K;
    };
    for (const Shape s : {Shape{65, 100, 1025}, Shape{130, 48, 2500}, Shape{64, 77, 1024}}) {
      const auto x = uniform(g, static_cast<size_t>(s.M * s.K), -1, 1);
      const auto w = uniform(g, static_cast<size_t>(s.N * s.K), -1, 1);
      const auto b = uniform(g, static_cast<size_t>(s.N), -1, 1);
      for (CpuIsa isa : supported_isas())
        for (bool gelu : {false, true}) {
          std::vector<float> y1(static_cast<size_t>(s.M * s.N), kNaN);
          cpu_linear(isa, x.data(), w.data(), b.data(), y1.data(), s.M, s.N, s.K, gelu, 1);
          for (int threads : {2, 3}) {
            std::vector<float> yt(y1.size(), kNaN);
            cpu_linear(isa, x.data(), w.data(), b.data(), yt.data(), s.M, s.N, s.K, gelu, threads);
            int64_t differ = 0;
            for (size_t i = 0; i < y1.size(); ++i) differ += !(yt[i] == y1[i]);  // NaN differs
            INFO("isa " << cpu_isa_name(isa) << " M=" << s.M << " N=" << s.N << " K=" << s.K
                        << " gelu=" << gelu << " threads=" << threads);
            CHECK(differ == 0);
          }
        }
    }
  }
  SECTION("several callers at once") {
    // The library is embedded in servers: concurrent callers, each with its own OpenMP team, must
    // not share state (the pack buffer is per call, the tables are immutable).
    std::mt19937 g(11);
    const int64_t M = 65, N = 100, K = 1025;
    const auto x = uniform(g, static_cast<size_t>(M * K), -1, 1);
    const auto w = uniform(g, static_cast<size_t>(N * K), -1, 1);
    const auto b = uniform(g, static_cast<size_t>(N), -1, 1);
    for (CpuIsa isa : supported_isas()) {
      INFO("isa " << cpu_isa_name(isa));
      std::vector<float> want(static_cast<size_t>(M * N), kNaN);
      cpu_linear(isa, x.data(), w.data(), b.data(), want.data(), M, N, K, true, 1);
      constexpr int kCallers = 3, kRounds = 4;
      std::vector<std::vector<float>> got(kCallers * kRounds,
                                          std::vector<float>(want.size(), kNaN));
      std::vector<std::thread> callers;
      for (int c = 0; c < kCallers; ++c)
        callers.emplace_back([&, c] {
          for (int r = 0; r < kRounds; ++r)
            cpu_linear(isa, x.data(), w.data(), b.data(),
                       got[static_cast<size_t>(c * kRounds + r)].data(), M, N, K, true, 2);
        });
      for (auto& t : callers) t.join();
      int64_t differ = 0;
      for (const auto& y : got)
        for (size_t i = 0; i < y.size(); ++i) differ += !(y[i] == want[i]);
      CHECK(differ == 0);
    }
  }
}

// The header allows K >= 0 and defines y = act(b) for an empty sum (a K loop that never runs
// must still write y: this once left y untouched and ran GELU over stale data).
TEST_CASE("cpu_kernels: cpu_linear with K == 0 yields act(bias)", "[cpu_kernels]") {
  for (CpuIsa isa : supported_isas()) {
    INFO("isa " << cpu_isa_name(isa));
    const float dummy = 0.0f;
    const std::vector<float> b = {0.5f, -1.0f, 2.0f};
    std::vector<float> y(6, kNaN);
    cpu_linear(isa, &dummy, &dummy, b.data(), y.data(), 2, 3, 0, false, 1);
    for (int i = 0; i < 6; ++i) CHECK(y[static_cast<size_t>(i)] == b[static_cast<size_t>(i % 3)]);
    std::fill(y.begin(), y.end(), kNaN);
    cpu_linear(isa, &dummy, &dummy, nullptr, y.data(), 2, 3, 0, false, 1);
    for (float f : y) CHECK(f == 0.0f);
    std::fill(y.begin(), y.end(), kNaN);
    cpu_linear(isa, &dummy, &dummy, b.data(), y.data(), 2, 3, 0, true, 1);
    for (int i = 0; i < 6; ++i)
      CHECK(y[static_cast<size_t>(i)] ==
            Approx(gelu_ref(b[static_cast<size_t>(i % 3)])).margin(1e-6));
  }
}

// Weights packed once at load (CpuPackedWeights) must give what the per-call GEMM gives, bit for
// bit: the encoder switches between them by option, and calibrated thresholds must not move.
TEST_CASE("cpu_kernels: packed weights", "[cpu_kernels]") {
  SECTION("layout alignment and which ISAs pack") {
    std::mt19937 g(5);
    const int64_t N = 13, K = 5;
    const auto w = uniform(g, static_cast<size_t>(N * K), -1, 1), b = uniform(g, static_cast<size_t>(N), -1, 1);
    for (CpuIsa isa : supported_isas()) {
      INFO("isa " << cpu_isa_name(isa));
      const auto p = cpu_pack_linear(isa, w.data(), b.data(), N, K);
      CHECK((p != nullptr) == (cpu_kernels(isa).packed_strip > 0));
      if (!p) continue;
      const int64_t S = p->strip;
      REQUIRE(S > 0);
      CHECK(24 % S == 0);  // column chunks (multiples of 24) start on a strip
      CHECK(reinterpret_cast<uintptr_t>(p->data()) % 64 == 0);
      CHECK(p->N == N);
      CHECK(p->K == K);
      CHECK(p->bias == b);
      // Strip s, k step k, column c holds w[s * S + c][k]; columns past N are zeros.
      int64_t wrong = 0;
      for (int64_t s = 0; s < (N + S - 1) / S; ++s)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t c = 0; c < S; ++c) {
            const int64_t n = s * S + c;
            const float want = n < N ? w[static_cast<size_t>(n * K + k)] : 0.0f;
            wrong += !(p->data()[(s * K + k) * S + c] == want);
          }
      CHECK(wrong == 0);
      const auto nb = cpu_pack_linear(isa, w.data(), nullptr, N, K);
      CHECK(nb->bias == std::vector<float>(static_cast<size_t>(N), 0.0f));
      CHECK(status_of([&] { cpu_pack_linear(isa, w.data(), b.data(), 0, K); }) == Status::invalid_argument);
      CHECK(status_of([&] { cpu_pack_linear(isa, w.data(), b.data(), N, 0); }) == Status::invalid_argument);
      std::vector<float> y(4, kNaN);
      CHECK(status_of([&] { cpu_linear_packed(*p, w.data(), -1, y.data(), false, 1); }) == Status::invalid_argument);
    }
    CHECK(status_of([&] { cpu_pack_linear(CpuIsa::none, w.data(), b.data(), N, K); }) == Status::not_supported);
  }
  SECTION("bit-identical to cpu_linear at every thread count") {
    std::mt19937 g(77);
    struct Shape {
      int64_t M, N, K;
    };
    // Batch-1 and batch-32-like row counts (column and row splits), N off the strip width, K
    // past the 3072 k block.
    for (const Shape s : {Shape{64, 100, 768}, Shape{65, 77, 3100}, Shape{600, 37, 45}, Shape{1, 13, 1}})
      for (CpuIsa isa : supported_isas()) {
        const auto x = uniform(g, static_cast<size_t>(s.M * s.K), -1, 1);
        const auto w = uniform(g, static_cast<size_t>(s.N * s.K), -1, 1);
        const auto b = uniform(g, static_cast<size_t>(s.N), -1, 1);
        const auto p = cpu_pack_linear(isa, w.data(), b.data(), s.N, s.K);
        if (!p) continue;
        for (bool gelu : {false, true}) {
          std::vector<float> want(static_cast<size_t>(s.M * s.N), kNaN);
          cpu_linear(isa, x.data(), w.data(), b.data(), want.data(), s.M, s.N, s.K, gelu, 1);
          for (int threads : {1, 2, 3}) {
            std::vector<float> got(want.size(), kNaN);
            cpu_linear_packed(*p, x.data(), s.M, got.data(), gelu, threads);
            int64_t differ = 0;
            for (size_t i = 0; i < got.size(); ++i) differ += !(got[i] == want[i]);
            INFO("isa " << cpu_isa_name(isa) << " M=" << s.M << " N=" << s.N << " K=" << s.K << " gelu=" << gelu
                        << " threads=" << threads);
            CHECK(differ == 0);
          }
        }
      }
  }
}

TEST_CASE("cpu_kernels: GELU and exp accuracy", "[cpu_kernels]") {
  SECTION("GELU (erf, exp) over a wide range") {
    // K = 1, w = 1, b = 0: y[m] = gelu(x[m]) exactly (x * 1 + 0 is exact).
    std::vector<float> xs;
    for (int i = -12000; i <= 12000; ++i) xs.push_back(static_cast<float>(i) * 0.001f);
    const int64_t n_sweep = static_cast<int64_t>(xs.size());
    const std::vector<float> extremes = {-100.0f, 100.0f, 0.0f,   -0.0f,
                                         -1e30f,  1e30f,  -30.0f, 30.0f};
    const std::vector<float> tiny = {1e-20f, -1e-20f, 1e-30f, -1e-30f, 1e-37f, 1e-39f, -1e-39f};
    xs.insert(xs.end(), extremes.begin(), extremes.end());
    const int64_t n_tiny_start = static_cast<int64_t>(xs.size());
    xs.insert(xs.end(), tiny.begin(), tiny.end());
    const int64_t M = static_cast<int64_t>(xs.size());
    const float one = 1.0f, zero = 0.0f;

    for (CpuIsa isa : supported_isas()) {
      INFO("isa " << cpu_isa_name(isa));
      std::vector<float> y(static_cast<size_t>(M), kNaN);
      cpu_linear(isa, xs.data(), &one, &zero, y.data(), M, 1, 1, true, 1);
      // A&S 7.1.26 erf is within 1.5e-7, so x/2 (1 + erf) is within 7.5e-8 |x|; fp32 rounding of
      // x / sqrt 2, exp(-x^2) and the final fma adds a few ulp.
      Mismatch mm;
      for (int64_t i = 0; i < n_tiny_start; ++i) {
        const double v = xs[static_cast<size_t>(i)];
        mm.add(i, y[static_cast<size_t>(i)], gelu_ref(v), 2e-7 * std::abs(v) + 1e-7);
      }
      INFO(mm);
      CHECK(mm.bad == 0);

      // Tiny inputs: gelu(x) ~ x / 2, relative accuracy must hold (absolute slack of one
      // subnormal ulp for the halving of a subnormal).
      Mismatch mt;
      for (int64_t i = n_tiny_start; i < M; ++i) {
        const double v = xs[static_cast<size_t>(i)];
        mt.add(i, y[static_cast<size_t>(i)], gelu_ref(v), 1e-6 * std::abs(v) + 1.5e-45);
      }
      INFO(mt);
      CHECK(mt.bad == 0);

      // Saturation: exactly 0 and x far out (exp underflows to an exact 0 below -87.3).
      auto at = [&](float v) {
        for (size_t i = static_cast<size_t>(n_sweep); i < xs.size(); ++i)
          if (xs[i] == v && std::signbit(xs[i]) == std::signbit(v)) return y[i];
        return kNaN;
      };
      CHECK(at(-100.0f) == 0.0f);
      CHECK(at(100.0f) == 100.0f);
      CHECK(at(-30.0f) == 0.0f);
      CHECK(at(30.0f) == 30.0f);
      CHECK(at(-1e30f) == 0.0f);
      CHECK(at(1e30f) == 1e30f);
      CHECK(at(0.0f) == 0.0f);
      CHECK(at(-0.0f) == 0.0f);
    }
  }
  SECTION("softmax exp from -87 to 30") {
    // T = 2 keys, Dh = 1: k = {0, s}, v = {0, 1}, q = {1, -1}. Query 0's output is
    // e^s / (1 + e^s), query 1's is e^-s / (1 + e^-s): both go through the kernel's exp at
    // arguments down to -87 (and its max subtraction), then one exact fma.
    for (CpuIsa isa : supported_isas()) {
      INFO("isa " << cpu_isa_name(isa));
      const CpuKernels& k = cpu_kernels(isa);
      Mismatch mm;
      std::vector<float> scratch(2 * 2 + 1 * 2);
      int64_t i = 0;
      for (int step = -8700; step <= 3000; step += 7, ++i) {
        const float s = static_cast<float>(step) * 0.01f;
        const float q[2] = {1.0f, -1.0f}, kk[2] = {0.0f, s}, v[2] = {0.0f, 1.0f};
        float out[2] = {kNaN, kNaN};
        std::fill(scratch.begin(), scratch.end(), kNaN);
        k.attention_head(q, kk, v, 1, nullptr, 2, 1, 1.0f, out, 1, scratch.data());
        const double sd = s;
        // exp to a few ulp, one reciprocal and two products: relative 1e-6 (+ the smallest normal).
        const double want0 = 1.0 / (1.0 + std::exp(-sd)), want1 = 1.0 / (1.0 + std::exp(sd));
        mm.add(2 * i, out[0], want0, 1e-6 * want0 + 1.2e-38);
        mm.add(2 * i + 1, out[1], want1, 1e-6 * want1 + 1.2e-38);
      }
      INFO(mm);
      CHECK(mm.bad == 0);
    }
  }
}

TEST_CASE("cpu_kernels: attention_head", "[cpu_kernels]") {
  SECTION("matches a double reference") {
    std::mt19937 g(42);
    const int64_t H = 3;  // heads in the layout; the kernel is called on the middle one
    const float sentinel = 777.25f;
    for (CpuIsa isa : supported_isas())
      for (int64_t T : {1, 5, 16, 17, 64, 130})  // 130: score rows > 64 (the GEMM row block)
        for (int64_t Dh : {8, 32, 64}) {
          // Encoder layout: each row holds q (H Dh), k (H Dh), v (H Dh); out rows hold H Dh + 3.
          const int64_t ld_qkv = 3 * H * Dh, ld_out = H * Dh + 3, h = 1;
          const double scale = 1.0 / std::sqrt(static_cast<double>(Dh));
          const auto qkv = uniform(g, static_cast<size_t>(T * ld_qkv), -2, 2);

          enum class Mask { none, some, all };
          for (Mask mask : {Mask::none, Mask::some, Mask::all}) {
            std::vector<uint8_t> valid(static_cast<size_t>(T), 1);
            if (mask == Mask::some)  // every third key invalid (key 0 stays valid)
              for (int64_t j = 0; j < T; ++j) valid[static_cast<size_t>(j)] = j % 3 != 2;
            if (mask == Mask::all) std::fill(valid.begin(), valid.end(), 0);
            // Invalid keys carry huge values: any weight on them shows up in the output.
            auto vdata = qkv;
            if (mask == Mask::some)
              for (int64_t j = 0; j < T; ++j)
                if (!valid[static_cast<size_t>(j)])
                  for (int64_t d = 0; d < Dh; ++d)
                    vdata[static_cast<size_t>(j * ld_qkv + 2 * H * Dh + h * Dh + d)] = 1e30f;
            const float* qd = vdata.data() + h * Dh;
            const float* kd = qd + H * Dh;
            const float* vd = qd + 2 * H * Dh;
            const uint8_t* vp = mask == Mask::none ? nullptr : valid.data();
            const auto want = ref_attention(qd, kd, vd, ld_qkv, vp, T, Dh, scale);

            std::vector<float> out(static_cast<size_t>(T * ld_out), sentinel);
            // NaN scratch: the kernel must write every element before reading it.
            std::vector<float> scratch(static_cast<size_t>(T * T + Dh * T), kNaN);
            float* o = out.data() + h * Dh;
            cpu_kernels(isa).attention_head(qd, kd, vd, ld_qkv, vp, T, Dh,
                                            static_cast<float>(scale), o, ld_out, scratch.data());
            Mismatch mm;
            int64_t touched = 0;
            for (int64_t t = 0; t < T; ++t)
              for (int64_t c = 0; c < ld_out; ++c) {
                const float got = out[static_cast<size_t>(t * ld_out + c)];
                if (c < h * Dh || c >= (h + 1) * Dh) {
                  touched += got != sentinel;
                  continue;
                }
                // Weighted means of values in [-2, 2] from fp32 scores, exp and sums: a few ulp of
                // 2 (observed < 5e-7).
                mm.add(t * Dh + c - h * Dh, got, want[static_cast<size_t>(t * Dh + c - h * Dh)],
                       4e-6);
              }
            INFO("isa " << cpu_isa_name(isa) << " T=" << T << " Dh=" << Dh
                        << " mask=" << static_cast<int>(mask));
            INFO(mm);
            CHECK(mm.bad == 0);
            CHECK(touched == 0);
            if (mask == Mask::all && T > 1) {
              // Uniform weights: every query gets the mean of all v rows, so all rows are equal.
              for (int64_t d = 0; d < Dh; ++d)
                CHECK(o[(T - 1) * ld_out + d] == Approx(o[d]).margin(1e-6));
            }
          }
        }
  }
  SECTION("survives large scores") {
    // scale 20 on |q.k| up to 8: scores up to 160, e^160 overflows fp32 without the max
    // subtraction. Score rounding (~1e-7 on q.k, times 20) becomes a relative weight error of a
    // few 1e-6: tolerance 2e-5 (observed ~2e-7).
    std::mt19937 g(5);
    const int64_t T = 17, Dh = 8, ld = 3 * Dh;
    const auto qkv = uniform(g, static_cast<size_t>(T * ld), -1, 1);
    std::vector<uint8_t> valid(static_cast<size_t>(T), 1);
    valid[3] = valid[16] = 0;
    const auto want = ref_attention(qkv.data(), qkv.data() + Dh, qkv.data() + 2 * Dh, ld,
                                    valid.data(), T, Dh, 20.0);
    for (CpuIsa isa : supported_isas()) {
      std::vector<float> out(static_cast<size_t>(T * Dh), kNaN),
          scratch(static_cast<size_t>(T * T + Dh * T), kNaN);
      cpu_kernels(isa).attention_head(qkv.data(), qkv.data() + Dh, qkv.data() + 2 * Dh, ld,
                                      valid.data(), T, Dh, 20.0f, out.data(), Dh, scratch.data());
      Mismatch mm;
      for (int64_t i = 0; i < T * Dh; ++i)
        mm.add(i, out[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 2e-5);
      INFO("isa " << cpu_isa_name(isa));
      INFO(mm);
      CHECK(mm.bad == 0);
    }
  }
}

TEST_CASE("cpu_kernels: add_layernorm", "[cpu_kernels]") {
  SECTION("matches a double reference") {
    std::mt19937 g(2024);
    const int64_t rows = 5;
    for (CpuIsa isa : supported_isas())
      for (int64_t D : {1, 7, 16, 31, 32, 768, 770})
        for (float eps : {1e-12f, 1e-5f}) {
          const size_t n = static_cast<size_t>(rows * D);
          // An offset mean (3) so that the mean subtraction matters.
          auto x = uniform(g, n, 2, 4);
          const auto res = uniform(g, n, -1, 1);
          const auto gamma = uniform(g, static_cast<size_t>(D), 0.5f, 1.5f),
                     beta = uniform(g, static_cast<size_t>(D), -0.5f, 0.5f);
          const auto xd = to_double(x), rd = to_double(res);
          const auto want =
              ref_add_layernorm(xd.data(), rd.data(), gamma.data(), beta.data(), rows, D, eps);
          const CpuKernels& k = cpu_kernels(isa);
          std::vector<float> out(n, kNaN);
          k.add_layernorm(x.data(), res.data(), gamma.data(), beta.data(), out.data(), rows, D,
                          eps);
          // fp32 x + res, mean and variance over D terms: ~1e-6 relative on normalised values
          // that reach sqrt(D).
          Mismatch mm;
          for (size_t i = 0; i < n; ++i)
            mm.add(static_cast<int64_t>(i), out[i], want[i], 1e-5 * (1 + std::abs(want[i])));
          INFO("isa " << cpu_isa_name(isa) << " D=" << D << " eps=" << eps);
          INFO(mm);
          CHECK(mm.bad == 0);
          if (D == 1)  // one feature: zero variance, the output is beta
            for (int64_t r = 0; r < rows; ++r) CHECK(out[static_cast<size_t>(r)] == beta[0]);

          // In place, both ways the header allows: the same arithmetic, so the same bits.
          auto x_alias = x;
          k.add_layernorm(x_alias.data(), res.data(), gamma.data(), beta.data(), x_alias.data(),
                          rows, D, eps);
          auto res_alias = res;
          k.add_layernorm(x.data(), res_alias.data(), gamma.data(), beta.data(), res_alias.data(),
                          rows, D, eps);
          int64_t differ_x = 0, differ_res = 0;
          for (size_t i = 0; i < n; ++i) {
            differ_x += !(x_alias[i] == out[i]);
            differ_res += !(res_alias[i] == out[i]);
          }
          CHECK(differ_x == 0);
          CHECK(differ_res == 0);
        }
  }
  SECTION("constant rows") {
    std::mt19937 g(8);
    for (CpuIsa isa : supported_isas())
      for (int64_t D : {7, 16, 31, 768, 770})
        for (float eps : {1e-12f, 1e-5f}) {
          INFO("isa " << cpu_isa_name(isa) << " D=" << D << " eps=" << eps);
          const size_t n = static_cast<size_t>(D);
          const auto gamma = uniform(g, n, 0.5f, 1.5f), beta = uniform(g, n, -0.5f, 0.5f);
          const CpuKernels& k = cpu_kernels(isa);
          // 1.25 + 0.5 = 1.75: sums of it are exact in fp32, so the mean is exactly 1.75, the
          // variance exactly 0, and the output exactly beta.
          {
            const std::vector<float> x(n, 1.25f), res(n, 0.5f);
            std::vector<float> out(n, kNaN);
            k.add_layernorm(x.data(), res.data(), gamma.data(), beta.data(), out.data(), 1, D, eps);
            int64_t differ = 0;
            for (size_t i = 0; i < n; ++i) differ += !(out[i] == beta[i]);
            CHECK(differ == 0);
          }
          // 0.1 + 0.2: the fp32 mean is off by a rounding error d and every deviation equals -d, so
          // |(z - mean) / sqrt(var + eps)| = |d| / sqrt(d^2 + eps) < 1 (the output stays finite and
          // within |gamma| of beta), and with eps = 1e-5 it is < 1e-6 / 3e-3.
          {
            const std::vector<float> x(n, 0.1f), res(n, 0.2f);
            std::vector<float> out(n, kNaN);
            k.add_layernorm(x.data(), res.data(), gamma.data(), beta.data(), out.data(), 1, D, eps);
            const double bound = eps < 1e-6f ? 1.0 + 1e-6 : 1e-3;
            Mismatch mm;
            for (size_t i = 0; i < n; ++i)
              mm.add(static_cast<int64_t>(i), out[i], beta[i], bound * gamma[i]);
            INFO(mm);
            CHECK(mm.bad == 0);
          }
        }
  }
}

TEST_CASE("cpu_kernels: cpu_embeddings_forward gathers adds and normalises", "[cpu_kernels]") {
  std::mt19937 g(77);
  const int64_t vocab = 50, n_pos = 20;
  for (CpuIsa isa : supported_isas())
    for (int64_t D : {7, 32, 770})
      for (int threads : {1, 3}) {
        // batch 40 x seq 17 = 680 rows: more than one pool chunk at every D here.
        const int64_t B = 40, T = 17;
        const auto word = uniform(g, static_cast<size_t>(vocab * D), -1, 1);
        const auto pos = uniform(g, static_cast<size_t>(n_pos * D), -1, 1);
        const auto gamma = uniform(g, static_cast<size_t>(D), 0.5f, 1.5f),
                   beta = uniform(g, static_cast<size_t>(D), -0.5f, 0.5f);
        std::vector<int64_t> ids(static_cast<size_t>(B * T));
        std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
        for (auto& id : ids) id = pick(g);
        ids[0] = 0;
        ids[1] = vocab - 1;  // both ends of the table
        std::vector<float> out(static_cast<size_t>(B * T * D), kNaN);
        cpu_embeddings_forward(isa, word.data(), pos.data(), gamma.data(), beta.data(), ids.data(), B, T, D,
                               1e-12f, out.data(), threads);
        Mismatch mm;
        for (int64_t r = 0; r < B * T; ++r) {
          std::vector<double> w(static_cast<size_t>(D)), p(static_cast<size_t>(D));
          for (int64_t d = 0; d < D; ++d) {
            w[static_cast<size_t>(d)] = word[static_cast<size_t>(ids[static_cast<size_t>(r)] * D + d)];
            p[static_cast<size_t>(d)] = pos[static_cast<size_t>((r % T) * D + d)];
          }
          const auto want = ref_add_layernorm(w.data(), p.data(), gamma.data(), beta.data(), 1, D, 1e-12);
          for (int64_t d = 0; d < D; ++d)
            mm.add(r * D + d, out[static_cast<size_t>(r * D + d)], want[static_cast<size_t>(d)],
                   1e-5 * (1 + std::abs(want[static_cast<size_t>(d)])));
        }
        INFO("isa " << cpu_isa_name(isa) << " D=" << D << " threads=" << threads);
        INFO(mm);
        CHECK(mm.bad == 0);
      }
  CHECK_THROWS_AS(cpu_embeddings_forward(supported_isas().empty() ? CpuIsa::avx2 : supported_isas()[0], nullptr,
                                         nullptr, nullptr, nullptr, nullptr, 1, 1, 0, 1e-12f, nullptr, 1),
                  Error);
}

TEST_CASE("cpu_kernels: cpu_blocks_forward", "[cpu_kernels]") {
  SECTION("matches a double DistilBERT reference") {
    std::mt19937 g(31337);
    const TwoBlocks tb = two_blocks(g, 2, 5);
    const CpuBlockShape& sh = tb.sh;
    const auto& blocks = tb.blocks;
    const auto& views = tb.views;
    const int64_t BT = sh.batch * sh.seq, D = sh.dim;
    const auto x0 = uniform(g, static_cast<size_t>(BT * D), -1, 1);
    // The second sequence's last position is padding.
    const std::vector<uint8_t> valid = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    const auto want = ref_blocks(blocks, sh, to_double(x0), valid.data());
    const auto want_nomask = ref_blocks(blocks, sh, to_double(x0), nullptr);

    std::vector<std::vector<float>> results;
    for (CpuIsa isa : supported_isas()) {
      INFO("isa " << cpu_isa_name(isa));
      auto x = x0;
      cpu_blocks_forward(isa, views.data(), 2, sh, x.data(), valid.data(), 1);
      // Post-LN outputs are O(1); two blocks of fp32 GEMMs, softmax and LayerNorm stay within a
      // few 1e-7 (observed < 5e-7), so 2e-5 leaves a 40x margin.
      Mismatch mm;
      for (size_t i = 0; i < x.size(); ++i) mm.add(static_cast<int64_t>(i), x[i], want[i], 2e-5);
      INFO(mm);
      CHECK(mm.bad == 0);
      results.push_back(x);

      // No mask: every key counts (the reference differs from the masked one, so this can fail).
      auto xn = x0;
      cpu_blocks_forward(isa, views.data(), 2, sh, xn.data(), nullptr, 1);
      Mismatch mn;
      for (size_t i = 0; i < xn.size(); ++i)
        mn.add(static_cast<int64_t>(i), xn[i], want_nomask[i], 2e-5);
      INFO(mn);
      CHECK(mn.bad == 0);

      // Threads split attention by (sequence, head) and GEMMs by column: the same bits.
      auto xt = x0;
      cpu_blocks_forward(isa, views.data(), 2, sh, xt.data(), valid.data(), 3);
      int64_t differ = 0;
      for (size_t i = 0; i < x.size(); ++i) differ += !(xt[i] == x[i]);
      CHECK(differ == 0);

      // A masked position cannot influence the real tokens: changing its input leaves every other
      // row bit-identical (its keys and values get weight exactly 0) and changes its own row.
      auto xp = x0;
      for (int64_t d = 0; d < D; ++d) xp[static_cast<size_t>((BT - 1) * D + d)] += 5.0f;
      cpu_blocks_forward(isa, views.data(), 2, sh, xp.data(), valid.data(), 1);
      int64_t differ_real = 0, differ_pad = 0;
      for (int64_t i = 0; i < BT * D; ++i)
        (i / D == BT - 1 ? differ_pad : differ_real) +=
            !(xp[static_cast<size_t>(i)] == x[static_cast<size_t>(i)]);
      CHECK(differ_real == 0);
      CHECK(differ_pad > 0);

      // Weights packed at load (where this ISA packs): the same bits; a pack of the wrong shape
      // is an error naming it.
      std::vector<std::shared_ptr<const CpuPackedWeights>> packs;
      std::vector<CpuBlockWeights> packed_views = views;
      for (size_t l = 0; l < blocks.size(); ++l) {
        const BlockData& bd = blocks[l];
        CpuBlockWeights& v = packed_views[l];
        const int64_t F = sh.hidden;
        packs.push_back(cpu_pack_linear(isa, bd.qkv_w.data(), bd.qkv_b.data(), 3 * D, D));
        v.qkv_p = packs.back().get();
        packs.push_back(cpu_pack_linear(isa, bd.out_w.data(), bd.out_b.data(), D, D));
        v.out_p = packs.back().get();
        packs.push_back(cpu_pack_linear(isa, bd.lin1_w.data(), bd.lin1_b.data(), F, D));
        v.lin1_p = packs.back().get();
        packs.push_back(cpu_pack_linear(isa, bd.lin2_w.data(), bd.lin2_b.data(), D, F));
        v.lin2_p = packs.back().get();
        v.qkv_w = v.out_w = v.lin1_w = v.lin2_w = nullptr;  // must not be read
      }
      if (packs[0]) {
        for (int threads : {1, 3}) {
          auto xq = x0;
          cpu_blocks_forward(isa, packed_views.data(), 2, sh, xq.data(), valid.data(), threads);
          int64_t differ_packed = 0;
          for (size_t i = 0; i < x.size(); ++i) differ_packed += !(xq[i] == x[i]);
          INFO("packed, threads " << threads);
          CHECK(differ_packed == 0);
        }
        packed_views[1].lin2_p = packed_views[1].lin1_p;  // 64 x 32 where 32 x 64 belongs
        auto xb = x0;
        CHECK(status_of([&] {
                cpu_blocks_forward(isa, packed_views.data(), 2, sh, xb.data(), valid.data(), 1);
              }) == Status::invalid_argument);
      }

      // No blocks or no rows: x untouched.
      auto xz = x0;
      cpu_blocks_forward(isa, views.data(), 0, sh, xz.data(), valid.data(), 1);
      CpuBlockShape empty = sh;
      empty.batch = 0;
      cpu_blocks_forward(isa, views.data(), 2, empty, xz.data(), valid.data(), 1);
      CHECK(xz == x0);
    }
    // AVX2 and AVX-512 differ only in summation order.
    if (results.size() == 2) {
      Mismatch mm;
      for (size_t i = 0; i < results[0].size(); ++i)
        mm.add(static_cast<int64_t>(i), results[0][i], results[1][i], 1e-5);
      INFO("avx2 vs avx512: " << mm);
      CHECK(mm.bad == 0);
    }
  }
  SECTION("a batch of several sequences per thread splits by sequence with the same bits") {
    std::mt19937 g(4242);
    const TwoBlocks tb = two_blocks(g, 7, 6);  // 7 sequences: uneven groups on 2 and 3 threads
    const CpuBlockShape& sh = tb.sh;
    const auto& blocks = tb.blocks;
    const auto& views = tb.views;
    const int64_t BT = sh.batch * sh.seq, D = sh.dim;
    const auto x0 = uniform(g, static_cast<size_t>(BT * D), -1, 1);
    std::vector<uint8_t> valid(static_cast<size_t>(BT), 1);
    for (int64_t b = 0; b < sh.batch; ++b)  // sequence b has b % 3 padded positions at its end
      for (int64_t t = sh.seq - b % 3; t < sh.seq; ++t) valid[static_cast<size_t>(b * sh.seq + t)] = 0;
    const auto want = ref_blocks(blocks, sh, to_double(x0), valid.data());
    for (CpuIsa isa : supported_isas()) {
      INFO("isa " << cpu_isa_name(isa));
      auto x1 = x0;
      cpu_blocks_forward(isa, views.data(), 2, sh, x1.data(), valid.data(), 1);
      Mismatch mm;
      for (size_t i = 0; i < x1.size(); ++i) mm.add(static_cast<int64_t>(i), x1[i], want[i], 2e-5);
      INFO(mm);
      CHECK(mm.bad == 0);
      for (int threads : {2, 3}) {
        INFO("threads " << threads);
        auto xt = x0;
        const CpuPoolStats before = cpu_pool_stats();
        cpu_blocks_forward(isa, views.data(), 2, sh, xt.data(), valid.data(), threads);
        const CpuPoolStats after = cpu_pool_stats();
        CHECK(xt == x1);
        // One pool job for the whole forward (shared, or run alone when the pool backs off or has
        // no workers); splitting each operation instead takes one per GEMM, attention and LayerNorm.
        const uint64_t jobs = (after.shared_jobs - before.shared_jobs) + (after.solo_jobs - before.solo_jobs) +
                              (after.crowded_jobs - before.crowded_jobs);
        CHECK(jobs <= 1);
      }
      // A pack of the wrong shape is refused before any sequence group runs: x stays as it was.
      std::vector<std::shared_ptr<const CpuPackedWeights>> packs;
      std::vector<CpuBlockWeights> bad = views;
      packs.push_back(cpu_pack_linear(isa, blocks[1].lin1_w.data(), blocks[1].lin1_b.data(), sh.hidden, D));
      if (packs[0]) {
        bad[1].lin2_p = packs[0].get();  // 64 x 32 where 32 x 64 belongs
        auto xb = x0;
        CHECK(status_of([&] { cpu_blocks_forward(isa, bad.data(), 2, sh, xb.data(), valid.data(), 2); }) ==
              Status::invalid_argument);
        CHECK(xb == x0);
      }
    }
  }
  SECTION("rejects bad shapes") {
    std::mt19937 g(3);
    const BlockData blk = random_block(g, 32, 64);
    const CpuBlockWeights view = blk.view();
    std::vector<float> x(2 * 5 * 32, 0.5f);
    auto status_for = [&](CpuIsa isa, CpuBlockShape sh) {
      return status_of([&] { cpu_blocks_forward(isa, &view, 1, sh, x.data(), nullptr, 1); });
    };
    CpuBlockShape good;
    good.batch = 2;
    good.seq = 5;
    good.dim = 32;
    good.heads = 4;
    good.hidden = 64;
    CHECK(status_for(CpuIsa::none, good) == Status::not_supported);
    for (CpuIsa isa : supported_isas()) {
      INFO("isa " << cpu_isa_name(isa));
      CHECK(status_for(isa, good) == Status::ok);
      // One bad field at a time: heads not dividing dim (32 % 5), then zero/negative sizes.
      const std::vector<std::pair<int64_t CpuBlockShape::*, int64_t>> bad = {
          {&CpuBlockShape::heads, 5},  {&CpuBlockShape::heads, 0},   {&CpuBlockShape::heads, -4},
          {&CpuBlockShape::batch, -1}, {&CpuBlockShape::seq, -5},    {&CpuBlockShape::dim, 0},
          {&CpuBlockShape::dim, -32},  {&CpuBlockShape::hidden, 0}, {&CpuBlockShape::hidden, -64}};
      for (const auto& [field, value] : bad) {
        CpuBlockShape s = good;
        s.*field = value;
        INFO("heads " << s.heads << " batch " << s.batch << " seq " << s.seq << " dim " << s.dim << " hidden " << s.hidden);
        CHECK(status_for(isa, s) == Status::invalid_argument);
      }
    }
  }
}
