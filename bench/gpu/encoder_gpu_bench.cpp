// Standalone encoder benchmark + parity check for the GPU machine (bench/gpu/run.sh).
// Needs only libtorch and the standard library (no Google Benchmark, fmt, nlohmann there).
//   encoder_gpu_bench parity <fixture_dir> <device>     max |C++ - expected| per case
//   encoder_gpu_bench bench <device> <dtype> <graphs 0|1> <batch> <seq> <iters> [config]
// config: base (distilbert-base shapes, default) or small (EncoderConfig::small()).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/text_io.hpp"
#include "encoder/json_lite.hpp"
#include "routenlp/encoder/encoder.hpp"
#include "routenlp/error.hpp"

using namespace routenlp;
namespace js = routenlp::detail::json;

static EncoderDType parse_dtype(const std::string& s) {
  if (s == "fp32") return EncoderDType::fp32;
  if (s == "fp16") return EncoderDType::fp16;
  if (s == "bf16") return EncoderDType::bf16;
  throw Error(Status::invalid_argument, "dtype must be fp32|fp16|bf16");
}

static int parity(const std::string& dir, const std::string& device) {
  auto root = js::parse(routenlp::detail::read_file(dir + "/expected.json"), dir + "/expected.json");
  std::printf("parity: fixture backend=%s device=%s\n", root.find("backend")->str.c_str(), device.c_str());
  int bad = 0;
  for (const char* dt : {"fp32", "bf16"}) {
    if (device == "cpu" && std::string(dt) != "fp32") continue;
    EncoderOptions o;
    o.device = device;
    o.dtype = parse_dtype(dt);
    o.intra_op_threads = -1;
    auto enc = Encoder::load_hf_dir(dir, o);
    for (const auto& c : root.find("cases")->arr) {
      uint64_t b = 0, t = 0;
      c.find("batch")->as_uint64(b);
      c.find("seq_len")->as_uint64(t);
      std::vector<int64_t> ids, mask;
      for (const auto& v : c.find("ids")->arr) { int64_t x = 0; v.as_int64(x); ids.push_back(x); }
      for (const auto& v : c.find("attention_mask")->arr) { int64_t x = 0; v.as_int64(x); mask.push_back(x); }
      auto out = enc.forward_ids(ids, mask, b, t);
      const auto& exp = c.find("last_hidden_state")->arr;
      double m = 0;
      for (size_t i = 0; i < out.size() && i < exp.size(); ++i) m = std::max(m, std::fabs(out[i] - exp[i].as_double()));
      const double tol = std::string(dt) == "fp32" ? 1e-5 : 0.25;
      const bool ok = out.size() == exp.size() && m <= tol;
      bad += !ok;
      std::printf("parity: %-5s %-16s max_abs_diff=%.3g (tol %.0e) %s\n", dt, c.find("name")->str.c_str(), m, tol,
                  ok ? "OK" : "FAIL");
    }
  }
  return bad ? 1 : 0;
}

static int bench(const std::string& device, const std::string& dtype, bool graphs, size_t batch, size_t seq,
                 int iters, const std::string& cfg_name) {
  EncoderConfig cfg = cfg_name == "small" ? EncoderConfig::small() : EncoderConfig::distilbert_base();
  cfg.max_position_embeddings = std::max<int64_t>(cfg.max_position_embeddings, 128);  // the seq-128 shapes
  EncoderOptions o;
  o.device = device;
  o.dtype = parse_dtype(dtype);
  o.cuda_graphs = graphs;
  o.intra_op_threads = -1;
  auto enc = Encoder::random_init(cfg, 1, o);
  std::vector<int64_t> ids(batch * seq);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = 1000 + static_cast<int64_t>((i * 7919) % 20000);
  for (int i = 0; i < 10; ++i) enc.embed_ids(ids, {}, batch, seq);  // warm-up (and graph capture)
  std::vector<double> ms;
  auto t_all = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto e = enc.embed_ids(ids, {}, batch, seq);
    auto t1 = std::chrono::steady_clock::now();
    if (e.size() != batch * static_cast<size_t>(cfg.dim)) return 2;
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
  std::sort(ms.begin(), ms.end());
  const double p50 = ms[ms.size() / 2], p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  std::printf("bench: config=%s device=%s dtype=%s graphs=%d batch=%zu seq=%zu iters=%d p50_ms=%.4f p99_ms=%.4f "
              "seq_per_s=%.0f\n",
              cfg_name.c_str(), enc.device().c_str(), dtype.c_str(), graphs ? 1 : 0, batch, seq, iters, p50, p99,
              static_cast<double>(batch) * iters / total_s);
  return 0;
}

int main(int argc, char** argv) {
  try {
    std::vector<std::string> a(argv + 1, argv + argc);
    if (a.size() >= 3 && a[0] == "parity") return parity(a[1], a[2]);
    if (a.size() >= 7 && a[0] == "bench")
      return bench(a[1], a[2], a[3] == "1", std::stoul(a[4]), std::stoul(a[5]), std::stoi(a[6]),
                   a.size() > 7 ? a[7] : "base");
    std::fprintf(stderr, "usage: encoder_gpu_bench parity <dir> <device> | bench <device> <dtype> <graphs> <batch> <seq> <iters> [base|small]\n");
    return 2;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
