// The encoder's int8 GEMM (encoder/cpu_int8_kernels.hpp): every supported ISA against the scalar
// reference (same quantization, so the same int32 sums and the same floats), against fp32 within
// the quantization error, and the int8 block forward against the fp32 one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "encoder/cpu_int8_kernels.hpp"
#include "encoder/cpu_kernels.hpp"
#include "routenlp/error.hpp"

using namespace routenlp::detail;  // the kernels under test

namespace {

std::vector<Int8Isa> vector_isas() {
  std::vector<Int8Isa> out;
  for (Int8Isa isa : {Int8Isa::avx2, Int8Isa::avx512vnni})
    if (int8_isa_supported(isa)) out.push_back(isa);
  return out;
}

std::vector<float> uniform(std::mt19937& g, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = d(g);
  return v;
}

double gelu_ref(double v) { return 0.5 * v * std::erfc(-v / std::sqrt(2.0)); }

std::vector<float> run(Int8Isa isa, const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                       int64_t M, int64_t N, int64_t K, bool gelu, int threads) {
  auto p = cpu_int8_pack(isa, w.data(), b.empty() ? nullptr : b.data(), N, K);
  std::vector<float> y(static_cast<size_t>(M * N), -7.0f);
  cpu_int8_linear(*p, x.data(), M, y.data(), gelu, threads);
  return y;
}

double cosine(const float* a, const float* b, int64_t n) {
  double d = 0, na = 0, nb = 0;
  for (int64_t i = 0; i < n; ++i) {
    d += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return d / std::sqrt(na * nb);
}

}  // namespace

TEST_CASE("cpu_int8: ISA choice follows the fp32 kernels", "[cpu_int8]") {
  CHECK(int8_isa_supported(Int8Isa::scalar));
  CHECK(int8_isa_for(CpuIsa::none) == Int8Isa::scalar);
  if (cpu_isa_supported(CpuIsa::avx2)) CHECK(int8_isa_for(CpuIsa::avx2) == Int8Isa::avx2);
  if (cpu_isa_supported(CpuIsa::avx512))
    CHECK(int8_isa_for(CpuIsa::avx512) ==
          (int8_isa_supported(Int8Isa::avx512vnni) ? Int8Isa::avx512vnni : Int8Isa::avx2));
  for (Int8Isa isa : {Int8Isa::avx2, Int8Isa::avx512vnni})
    if (!int8_isa_supported(isa)) CHECK_THROWS_AS(cpu_int8_kernels(isa), routenlp::Error);
}

TEST_CASE("cpu_int8: packing quantizes per output channel", "[cpu_int8]") {
  const std::vector<float> w = {1.0f, -0.5f, 0.25f, 0.0f, 0.0f, 0.0f, -2.0f, 2.0f, 1.0f};
  auto p = cpu_int8_pack(Int8Isa::scalar, w.data(), nullptr, 3, 3);
  REQUIRE(p->N == 3);
  CHECK(p->Kp == 4);
  CHECK(p->scale[0] == Approx(1.0 / 127));
  CHECK(p->scale[1] == 1.0f);  // an all-zero row keeps a harmless scale
  CHECK(p->scale[2] == Approx(2.0 / 127));
  const auto* q = static_cast<const int8_t*>(p->data());
  CHECK(q[0] == 127);
  CHECK(q[1] == -64);  // -63.5 rounds to even
  CHECK(q[2] == 32);   // 31.75
  CHECK(q[3] == 0);    // K padding
  CHECK(p->colsum[0] == 127 - 64 + 32);
  CHECK(p->colsum[2] == -127 + 127 + 64);  // 63.5 -> 64
  CHECK(p->bias[1] == 0.0f);
}

TEST_CASE("cpu_int8: every ISA equals the scalar reference on odd shapes", "[cpu_int8]") {
  std::mt19937 g(1234);
  struct Shape {
    int64_t M, N, K;
  };
  // M not a multiple of the 6-row tile, N not of the 16/64-column strips, K with tails of 1..3
  // past the 4-element groups and of the 16/8-float vectors; one wide enough for several strips
  // and pool chunks; one with many rows and two strips, whose chunks split rows as well.
  const std::vector<Shape> shapes = {{1, 1, 1},      {7, 17, 5},     {13, 65, 33}, {6, 64, 64},
                                     {5, 130, 771}, {64, 200, 300}, {301, 100, 64}};
  for (const auto& s : shapes) {
    for (bool gelu : {false, true}) {
      auto x = uniform(g, static_cast<size_t>(s.M * s.K), -2.0f, 3.0f);  // one-sided-ish: zero point != 128
      if (s.M > 2)
        for (int64_t k = 0; k < s.K; ++k) x[static_cast<size_t>(2 * s.K + k)] = 0.0f;  // an all-zero row
      const auto w = uniform(g, static_cast<size_t>(s.N * s.K), -0.1f, 0.1f);
      const auto b = uniform(g, static_cast<size_t>(s.N), -1.0f, 1.0f);
      const auto want = run(Int8Isa::scalar, x, w, b, s.M, s.N, s.K, false, 1);
      for (Int8Isa isa : vector_isas()) {
        for (int threads : {1, 3}) {
          INFO("isa " << int8_isa_name(isa) << " M " << s.M << " N " << s.N << " K " << s.K << " gelu " << gelu
                      << " threads " << threads);
          const auto got = run(isa, x, w, b, s.M, s.N, s.K, gelu, threads);
          int64_t bad = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            // Without GELU: the same integers and float operations, so the same bits. With it:
            // the vector GELU (erf within 1.5e-7) against the exact one of the same pre-activation.
            const double v = gelu ? gelu_ref(want[i]) : want[i];
            const double tol = gelu ? 1e-6 * (1.0 + std::abs(v)) : 0.0;
            bad += !(std::abs(got[i] - v) <= tol);
          }
          CHECK(bad == 0);
        }
      }
    }
  }
}

TEST_CASE("cpu_int8: close to the fp32 product within the quantization error", "[cpu_int8]") {
  std::mt19937 g(99);
  const int64_t M = 9, N = 70, K = 257;
  const auto x = uniform(g, static_cast<size_t>(M * K), -1.0f, 1.0f);
  const auto w = uniform(g, static_cast<size_t>(N * K), -0.05f, 0.05f);
  std::vector<Int8Isa> isas = vector_isas();
  isas.push_back(Int8Isa::scalar);
  for (Int8Isa isa : isas) {
    INFO("isa " << int8_isa_name(isa));
    const auto y = run(isa, x, w, {}, M, N, K, false, 2);
    int64_t bad = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double ref = 0;
        float xmax = 0, wmax = 0;
        for (int64_t k = 0; k < K; ++k) {
          ref += static_cast<double>(x[m * K + k]) * w[n * K + k];
          xmax = std::max(xmax, std::abs(x[m * K + k]));
          wmax = std::max(wmax, std::abs(w[n * K + k]));
        }
        // Each product is off by at most |x| dw + |w| dx + dx dw with rounding steps dx (range
        // / 255) and dw (max|w| / 127): bound the sum by K times half steps of the largest terms.
        const double dx = 2.0 * xmax / 255.0, dw = wmax / 127.0;
        const double tol = K * 0.5 * (xmax * dw + wmax * dx + 0.5 * dx * dw) + 1e-6;
        bad += !(std::abs(y[static_cast<size_t>(m * N + n)] - ref) <= tol);
      }
    CHECK(bad == 0);
    // And far better than that bound in aggregate: cosine with fp32 over the whole output.
    std::vector<float> ref(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += static_cast<double>(x[m * K + k]) * w[n * K + k];
        ref[static_cast<size_t>(m * N + n)] = static_cast<float>(s);
      }
    CHECK(cosine(y.data(), ref.data(), M * N) > 0.999);
  }
}

TEST_CASE("cpu_int8: int8 block forward stays close to fp32", "[cpu_int8]") {
  std::mt19937 g(7);
  CpuBlockShape sh;
  sh.batch = 5;  // 2 threads split it by sequences, 3 split every operation
  sh.seq = 9;
  sh.dim = 48;
  sh.heads = 4;
  sh.hidden = 96;
  const int64_t D = sh.dim, F = sh.hidden, BT = sh.batch * sh.seq;
  struct Block {
    std::vector<float> qkv_w, qkv_b, out_w, out_b, ln1_w, ln1_b, lin1_w, lin1_b, lin2_w, lin2_b, ln2_w, ln2_b;
  };
  std::vector<Block> blocks(3);
  // Weights ~5x BERT's init std (0.02), so attention is not uniform and GELU sees both signs.
  const float s = 0.02f * std::sqrt(3.0f);
  for (auto& b : blocks) {
    b.qkv_w = uniform(g, static_cast<size_t>(3 * D * D), -5 * s, 5 * s);
    b.qkv_b = uniform(g, static_cast<size_t>(3 * D), -0.1f, 0.1f);
    b.out_w = uniform(g, static_cast<size_t>(D * D), -5 * s, 5 * s);
    b.out_b = uniform(g, static_cast<size_t>(D), -0.1f, 0.1f);
    b.ln1_w = uniform(g, static_cast<size_t>(D), 0.8f, 1.2f);
    b.ln1_b = uniform(g, static_cast<size_t>(D), -0.1f, 0.1f);
    b.lin1_w = uniform(g, static_cast<size_t>(F * D), -5 * s, 5 * s);
    b.lin1_b = uniform(g, static_cast<size_t>(F), -0.1f, 0.1f);
    b.lin2_w = uniform(g, static_cast<size_t>(D * F), -5 * s, 5 * s);
    b.lin2_b = uniform(g, static_cast<size_t>(D), -0.1f, 0.1f);
    b.ln2_w = uniform(g, static_cast<size_t>(D), 0.8f, 1.2f);
    b.ln2_b = uniform(g, static_cast<size_t>(D), -0.1f, 0.1f);
  }
  const auto x0 = uniform(g, static_cast<size_t>(BT * D), -1.0f, 1.0f);
  std::vector<uint8_t> valid(static_cast<size_t>(BT), 1);
  valid.back() = 0;
  for (CpuIsa isa : {CpuIsa::avx2, CpuIsa::avx512}) {
    if (!cpu_isa_supported(isa)) continue;
    const Int8Isa qi = int8_isa_for(isa);
    INFO("isa " << cpu_isa_name(isa) << " int8 " << int8_isa_name(qi));
    std::vector<std::shared_ptr<const CpuInt8Weights>> keep;
    std::vector<CpuBlockWeights> f32, i8;
    for (const auto& b : blocks) {
      CpuBlockWeights w{b.qkv_w.data(), b.qkv_b.data(), b.out_w.data(), b.out_b.data(), b.ln1_w.data(), b.ln1_b.data(),
                        b.lin1_w.data(), b.lin1_b.data(), b.lin2_w.data(), b.lin2_b.data(), b.ln2_w.data(),
                        b.ln2_b.data()};
      f32.push_back(w);
      keep.push_back(cpu_int8_pack(qi, b.qkv_w.data(), b.qkv_b.data(), 3 * D, D));
      w.qkv_q = keep.back().get();
      keep.push_back(cpu_int8_pack(qi, b.out_w.data(), b.out_b.data(), D, D));
      w.out_q = keep.back().get();
      keep.push_back(cpu_int8_pack(qi, b.lin1_w.data(), b.lin1_b.data(), F, D));
      w.lin1_q = keep.back().get();
      keep.push_back(cpu_int8_pack(qi, b.lin2_w.data(), b.lin2_b.data(), D, F));
      w.lin2_q = keep.back().get();
      w.qkv_w = w.out_w = w.lin1_w = w.lin2_w = nullptr;  // must not be read
      i8.push_back(w);
    }
    auto xf = x0, xi = x0, xt = x0, xs = x0;
    cpu_blocks_forward(isa, f32.data(), 3, sh, xf.data(), valid.data(), 1);
    cpu_blocks_forward(isa, i8.data(), 3, sh, xi.data(), valid.data(), 1);
    cpu_blocks_forward(isa, i8.data(), 3, sh, xt.data(), valid.data(), 3);
    CHECK(xt == xi);  // threads split columns and rows, never a sum
    cpu_blocks_forward(isa, i8.data(), 3, sh, xs.data(), valid.data(), 2);
    CHECK(xs == xi);  // nor does a split by sequences
    CHECK(xi != xf);  // really quantized
    for (int64_t r = 0; r + 1 < BT; ++r) {  // every real token (the last is padding)
      INFO("row " << r);
      CHECK(cosine(xi.data() + r * D, xf.data() + r * D, D) > 0.99);
    }
  }
}
