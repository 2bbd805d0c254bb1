// Encoder: safetensors I/O (valid and corrupted files), HF config, DistilBERT parity with the
// tiny fixture (tools/encoder-golden/make_fixture.py), masking, weight I/O, threads, int8.
// libtorch's headers (via distilbert.hpp) define glog's CHECK macro; including them before
// Catch lets Catch's CHECK win (otherwise every CHECK below was glog's: it aborted on failure
// but was not counted or reported as an assertion).
#include "encoder/distilbert.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <thread>

#include "common/text_io.hpp"
#include "encoder/cpu_kernels.hpp"
#include "encoder/json_lite.hpp"
#include "routenlp/encoder/encoder.hpp"
#include "routenlp/error.hpp"
#include "routenlp/encoder/safetensors.hpp"
#include "routenlp/text/tokenizer.hpp"

using namespace routenlp;
namespace fs = std::filesystem;
namespace rd = routenlp::detail;
namespace js = routenlp::detail::json;

namespace {

const std::string kTiny = std::string(RN_TEST_DATA_DIR) + "/encoder/tiny";

// Restores the environment's choice of CPU kernels when a test that overrides it ends.
struct IsaGuard {
  ~IsaGuard() { rd::cpu_isa_reset(); }
};

std::string tmp_dir(const std::string& name) {
  fs::path p = fs::path(RN_BINARY_DIR) / "encoder_tmp" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file from a raw header string and a data section.
std::string raw_file(const std::string& header, const std::string& data) { return u64le(header.size()) + header + data; }

Status parse_status(const std::string& bytes, std::string* msg = nullptr) {
  try {
    parse_safetensors(bytes, "mem.safetensors");
  } catch (const Error& e) {
    if (msg) *msg = e.what();
    return e.code();
  }
  return Status::ok;
}

std::vector<float> floats(const TensorView& v) {
  std::vector<float> out(v.nbytes / 4);
  std::memcpy(out.data(), v.data, v.nbytes);
  return out;
}

struct Case {
  std::string name;
  size_t batch, seq_len;
  std::vector<int64_t> ids, mask;
  std::vector<double> expected;
};

std::vector<Case> load_cases(js::Value* root_out = nullptr) {
  auto root = js::parse(rd::read_file(kTiny + "/expected.json"), "expected.json");
  std::vector<Case> cases;
  for (const auto& c : root.find("cases")->arr) {
    Case k;
    k.name = c.find("name")->str;
    uint64_t b = 0, t = 0;
    c.find("batch")->as_uint64(b);
    c.find("seq_len")->as_uint64(t);
    k.batch = b;
    k.seq_len = t;
    for (const auto& v : c.find("ids")->arr) {
      int64_t x = 0;
      v.as_int64(x);
      k.ids.push_back(x);
    }
    for (const auto& v : c.find("attention_mask")->arr) {
      int64_t x = 0;
      v.as_int64(x);
      k.mask.push_back(x);
    }
    for (const auto& v : c.find("last_hidden_state")->arr) k.expected.push_back(v.as_double());
    cases.push_back(std::move(k));
  }
  if (root_out) *root_out = std::move(root);
  return cases;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

EncoderOptions cpu1() {
  EncoderOptions o;
  o.intra_op_threads = -1;  // leave the process setting alone in tests
  return o;
}

}  // namespace

// =============================================================================================
TEST_CASE("safetensors: write then read round-trips dtypes, shapes, bytes and metadata", "[safetensors]") {
  std::vector<float> f = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  std::vector<int64_t> l = {1, -2, 1LL << 40};
  std::vector<uint16_t> h = {0x3c00, 0xc000};  // F16 1.0, -2.0
  std::vector<int32_t> i32 = {};
  std::vector<TensorView> ts(4);
  ts[0] = {"a.weight", DType::F32, {2, 3}, reinterpret_cast<const unsigned char*>(f.data()), f.size() * 4};
  ts[1] = {"ids", DType::I64, {3}, reinterpret_cast<const unsigned char*>(l.data()), l.size() * 8};
  ts[2] = {"half", DType::F16, {2}, reinterpret_cast<const unsigned char*>(h.data()), 4};
  ts[3] = {"empty", DType::I32, {0, 5}, nullptr, 0};
  std::string path = tmp_dir("st_roundtrip") + "/x.safetensors";
  write_safetensors(path, ts, {{"format", "pt"}, {"note", "quote\" and \\ and \n"}});
  auto file = read_safetensors(path);
  REQUIRE(file.tensors().size() == 4);
  CHECK(file.metadata().at("format") == "pt");
  CHECK(file.metadata().at("note") == "quote\" and \\ and \n");
  const TensorView* a = file.find("a.weight");
  REQUIRE(a);
  CHECK(a->dtype == DType::F32);
  CHECK((a->shape == std::vector<int64_t>{2, 3}));
  CHECK(floats(*a) == f);
  const TensorView* ids = file.find("ids");
  REQUIRE(ids);
  std::vector<int64_t> back(3);
  std::memcpy(back.data(), ids->data, 24);
  CHECK(back == l);
  CHECK(file.find("half")->dtype == DType::F16);
  CHECK(file.find("empty")->nbytes == 0);
  CHECK(file.find("nope") == nullptr);
  // Header is padded so the data section starts 8-byte aligned.
  std::string bytes = rd::read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
}

TEST_CASE("safetensors: writer rejects inconsistent tensors", "[safetensors]") {
  float x[2] = {1, 2};
  auto p = reinterpret_cast<const unsigned char*>(x);
  CHECK_THROWS_AS(serialize_safetensors({{"a", DType::F32, {3}, p, 8}}), Error);          // nbytes vs shape
  CHECK_THROWS_AS(serialize_safetensors({{"a", DType::F32, {2}, p, 8}, {"a", DType::F32, {2}, p, 8}}), Error);
  CHECK_THROWS_AS(serialize_safetensors({{"__metadata__", DType::F32, {2}, p, 8}}), Error);
  CHECK_THROWS_AS(serialize_safetensors({{"", DType::F32, {2}, p, 8}}), Error);
  CHECK_THROWS_AS(serialize_safetensors({{"a", DType::F32, {-2}, p, 8}}), Error);
  // Nothing written on failure.
  std::string dir = tmp_dir("st_fail");
  CHECK_THROWS_AS(write_safetensors(dir + "/x.safetensors", {{"a", DType::F32, {3}, p, 8}}), Error);
  CHECK(fs::is_empty(dir));
}

TEST_CASE("safetensors: corrupted files give clear parse errors", "[safetensors]") {
  const std::string data8(8, '\x01');
  const std::string ok_header = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(parse_status(raw_file(ok_header, data8)) == Status::ok);
  std::string msg;

  SECTION("non-finite weights name the tensor and the element") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    std::string d(8, '\0');
    std::memcpy(&d[4], &nan, 4);
    CHECK(parse_status(raw_file(ok_header, d), &msg) == Status::parse);
    CHECK(msg.find("tensor 't' has a non-finite value") != std::string::npos);
    CHECK(msg.find("element 1") != std::string::npos);
    std::memcpy(&d[0], &inf, 4);
    CHECK(parse_status(raw_file(ok_header, d), &msg) == Status::parse);
    CHECK(msg.find("element 0") != std::string::npos);
    // F16 +inf (0x7c00) and BF16 NaN (0x7fc0), little-endian.
    const std::string h16 = R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})";
    CHECK(parse_status(raw_file(h16, std::string("\x00\x3c\x00\x7c", 4)), &msg) == Status::parse);
    CHECK(msg.find("element 1") != std::string::npos);
    const std::string hb = R"({"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})";
    CHECK(parse_status(raw_file(hb, std::string("\xc0\x7f\x80\x3f", 4)), &msg) == Status::parse);
    CHECK(msg.find("element 0") != std::string::npos);
    // Integers are not floats: all-ones bits are a valid I32.
    const std::string hi = R"({"t":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})";
    CHECK(parse_status(raw_file(hi, std::string(4, '\xff'))) == Status::ok);
  }
  SECTION("empty and short files") {
    CHECK(parse_status("", &msg) == Status::parse);
    CHECK(msg.find("mem.safetensors") != std::string::npos);
    CHECK(parse_status("abc") == Status::parse);
  }
  SECTION("header length past the end of the file") {
    std::string f = u64le(1000) + ok_header;
    CHECK(parse_status(f, &msg) == Status::parse);
    CHECK(msg.find("exceeds the file size") != std::string::npos);
  }
  SECTION("huge header length") {
    CHECK(parse_status(u64le(~0ULL) + ok_header, &msg) == Status::parse);
    CHECK(msg.find("limit") != std::string::npos);
    CHECK(parse_status(u64le(kSafetensorsMaxHeader + 1) + ok_header) == Status::parse);
  }
  SECTION("truncated at every length") {
    std::string good = raw_file(ok_header, data8);
    for (size_t n = 0; n < good.size(); ++n) CHECK(parse_status(good.substr(0, n)) == Status::parse);
  }
  SECTION("non-JSON and non-object headers") {
    CHECK(parse_status(raw_file("{not json}", ""), &msg) == Status::parse);
    CHECK(msg.find("JSON") != std::string::npos);
    CHECK(parse_status(raw_file("[1,2]", "")) == Status::parse);
    CHECK(parse_status(raw_file("{\"t\":", "")) == Status::parse);
    CHECK(parse_status(raw_file(std::string("{\"a\xff\":1}"), "")) == Status::parse);  // bad UTF-8
    CHECK(parse_status(raw_file(std::string(200, '['), "")) == Status::parse);         // depth
  }
  SECTION("offsets out of bounds") {
    CHECK(parse_status(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"), &msg) ==
          Status::parse);
    CHECK(msg.find("'t'") != std::string::npos);
    CHECK(msg.find("past the data section") != std::string::npos);
    CHECK(parse_status(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]}})", data8)) == Status::parse);
  }
  SECTION("begin after end") {
    CHECK(parse_status(raw_file(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data8), &msg) == Status::parse);
    CHECK(msg.find("begin") != std::string::npos);
  }
  SECTION("overlapping tensors") {
    std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    CHECK(parse_status(raw_file(h, std::string(12, 'x')), &msg) == Status::parse);
    CHECK(msg.find("overlaps") != std::string::npos);
  }
  SECTION("gaps and uncovered bytes") {
    std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    CHECK(parse_status(raw_file(h, data8), &msg) == Status::parse);
    CHECK(msg.find("gap") != std::string::npos);
    CHECK(parse_status(raw_file(ok_header, data8 + "xx"), &msg) == Status::parse);
    CHECK(msg.find("not covered") != std::string::npos);
  }
  SECTION("shape does not match byte count") {
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8), &msg) == Status::parse);
    CHECK(msg.find("'w'") != std::string::npos);
    CHECK(msg.find("expected 12") != std::string::npos);
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})", data8)) == Status::parse);
  }
  SECTION("shape overflow") {
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data8), &msg) == Status::parse);
    CHECK(msg.find("overflow") != std::string::npos);
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"I64","shape":[2305843009213693952,4],"data_offsets":[0,8]}})", data8)) == Status::parse);
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", data8)) == Status::parse);
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}})", data8)) == Status::parse);
  }
  SECTION("unknown dtype and missing fields") {
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", data8), &msg) == Status::parse);
    CHECK(msg.find("unsupported dtype 'F64'") != std::string::npos);
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"F32","shape":[2]}})", data8), &msg) == Status::parse);
    CHECK(msg.find("data_offsets") != std::string::npos);
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", data8)) == Status::parse);
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data8)) == Status::parse);
    CHECK(parse_status(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", data8)) == Status::parse);
    CHECK(parse_status(raw_file(R"({"w":[1]})", data8)) == Status::parse);
  }
  SECTION("duplicate names and bad metadata") {
    std::string h = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    CHECK(parse_status(raw_file(h, data8), &msg) == Status::parse);
    CHECK(msg.find("duplicate") != std::string::npos);
    CHECK(parse_status(raw_file(R"({"__metadata__":{"a":1},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8)) == Status::parse);
    CHECK(parse_status(raw_file(R"({"__metadata__":{"a":"b"},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8)) == Status::ok);
  }
  SECTION("random header corruption never crashes") {
    std::string good = raw_file(ok_header, data8);
    std::mt19937 rng(7);
    int rejected = 0;
    for (int it = 0; it < 3000; ++it) {
      std::string b = good;
      int flips = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng() % 256);
      Status s = parse_status(b);
      CHECK((s == Status::ok || s == Status::parse));
      rejected += s == Status::parse;
    }
    CHECK(rejected > 1000);
  }
  SECTION("missing file is an io error") {
    try {
      read_safetensors("/nonexistent/x.safetensors");
      FAIL("no throw");
    } catch (const Error& e) {
      CHECK(e.code() == Status::io);
      CHECK(std::string(e.what()).find("/nonexistent/x.safetensors") != std::string::npos);
    }
  }
}

// =============================================================================================
TEST_CASE("EncoderConfig: HF config.json round trip and validation", "[encoder][config]") {
  auto c = EncoderConfig::from_hf_config_json(kTiny + "/config.json");
  CHECK(c.dim == 32);
  CHECK(c.n_layers == 2);
  CHECK(c.n_heads == 4);
  CHECK(c.hidden_dim == 64);
  CHECK(c.vocab_size == 1000);
  CHECK(c.max_position_embeddings == 64);
  auto back = EncoderConfig::from_hf_config_json_string(c.to_hf_config_json());
  CHECK(back.dim == c.dim);
  CHECK(back.hidden_dim == c.hidden_dim);
  CHECK(back.dropout == c.dropout);
  CHECK(back.initializer_range == c.initializer_range);
  CHECK(back.sinusoidal_pos_embds == c.sinusoidal_pos_embds);
  auto base = EncoderConfig::distilbert_base();
  CHECK(base.dim == 768);
  CHECK(base.n_layers == 6);
  auto s = EncoderConfig::small();
  CHECK_NOTHROW(s.validate());
  CHECK(s.max_position_embeddings == 64);  // the bundled router's encoder
  CHECK(s.dim == 128);
  CHECK(s.n_layers == 2);

  auto code = [](const std::string& j) {
    try {
      EncoderConfig::from_hf_config_json_string(j, "cfg.json");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("cfg.json") != std::string::npos);
      return e.code();
    }
    return Status::ok;
  };
  CHECK(code(R"({"dim": 30, "n_heads": 4})") == Status::model);
  CHECK(code(R"({"model_type": "bert"})") == Status::model);
  CHECK(code(R"({"activation": "relu"})") == Status::not_supported);
  CHECK(code(R"({"dim": "768"})") == Status::parse);
  CHECK(code(R"({"dim": 7.5})") == Status::parse);
  CHECK(code(R"({"n_layers": 0})") == Status::model);
  CHECK(code(R"({"dropout": 1.5})") == Status::model);
  CHECK(code("{") == Status::parse);
  CHECK(code(R"({"dim": 768.0, "future_key": [1, {"x": null}]})") == Status::ok);
}

// =============================================================================================
TEST_CASE("DistilBert: parameter names equal HF DistilBertModel's state_dict keys", "[encoder]") {
  auto c = EncoderConfig::from_hf_config_json(kTiny + "/config.json");
  rd::DistilBert m(c);
  std::vector<std::string> names;
  for (const auto& p : m->named_parameters(true)) names.push_back(p.key());
  auto expected = rd::hf_parameter_names(c);
  CHECK(names == expected);
  CHECK(names.size() == 4 + 16 * 2);
  // The fixture (written by HF or the reference) has exactly these tensors.
  auto f = read_safetensors(kTiny + "/model.safetensors");
  std::vector<std::string> file_names;
  for (const auto& t : f.tensors()) file_names.push_back(t.name);
  std::sort(file_names.begin(), file_names.end());
  std::sort(expected.begin(), expected.end());
  CHECK(file_names == expected);
}

TEST_CASE("Encoder: fp32 parity with the HF fixture (max abs diff <= 1e-5)", "[encoder][parity]") {
  js::Value root;
  auto cases = load_cases(&root);
  REQUIRE(cases.size() >= 3);
  INFO("fixture backend: " << root.find("backend")->str);
  // Every CPU fp32 path: libtorch ops, and routenlp's own kernels for each ISA this CPU has, with
  // the weights packed per call and (where the ISA packs) once at load. Packs are made for the
  // ISA active at load, so each encoder is loaded under its ISA.
  IsaGuard guard;
  for (rd::CpuIsa isa : {rd::CpuIsa::none, rd::CpuIsa::avx2, rd::CpuIsa::avx512})
    for (bool prepacked : {false, true}) {
      if (isa != rd::CpuIsa::none && !rd::cpu_isa_supported(isa)) continue;
      rd::cpu_isa_override(isa);
      EncoderOptions o = cpu1();
      o.cpu_prepacked_weights = prepacked;
      auto enc = Encoder::load_hf_dir(kTiny, o);
      CHECK(enc.dim() == 32);
      CHECK(enc.device() == "cpu");
      INFO("CPU kernels: " << rd::cpu_isa_name(isa) << " prepacked " << prepacked);
      for (const auto& c : cases) {
        INFO(c.name);
        auto out = enc.forward_ids(c.ids, c.mask, c.batch, c.seq_len);
        double d = max_abs_diff(out, c.expected);
        CHECK(d <= 1e-5);
      }
    }
  rd::cpu_isa_reset();
  auto enc = Encoder::load_hf_dir(kTiny, cpu1());
  // CLS pooling = position 0 of the hidden state.
  const auto& c0 = cases[0];
  auto pooled = enc.embed_ids(c0.ids, c0.mask, c0.batch, c0.seq_len);
  REQUIRE(pooled.size() == c0.batch * 32);
  for (size_t b = 0; b < c0.batch; ++b)
    for (size_t j = 0; j < 32; ++j)
      CHECK(std::fabs(pooled[b * 32 + j] - c0.expected[b * c0.seq_len * 32 + j]) <= 1e-5);
}

TEST_CASE("DistilBert: sinusoidal position table equals HF create_sinusoidal_embeddings", "[encoder]") {
  js::Value root;
  load_cases(&root);
  const js::Value* s = root.find("sinusoidal");
  REQUIRE(s);
  uint64_t n = 0, d = 0;
  s->find("n_pos")->as_uint64(n);
  s->find("dim")->as_uint64(d);
  auto t = torch::empty({static_cast<int64_t>(n), static_cast<int64_t>(d)});
  rd::fill_sinusoidal(t);
  const auto& table = s->find("table")->arr;
  REQUIRE(table.size() == n * d);
  double m = 0;
  auto a = t.accessor<float, 2>();
  for (uint64_t i = 0; i < n; ++i)
    for (uint64_t j = 0; j < d; ++j) m = std::max(m, std::fabs(a[i][j] - table[i * d + j].as_double()));
  CHECK(m <= 1e-6);
  // A sinusoidal config builds and runs; its table is frozen.
  auto c = EncoderConfig::from_hf_config_json(kTiny + "/config.json");
  c.sinusoidal_pos_embds = true;
  rd::DistilBert mod(c);
  CHECK_FALSE(mod->embeddings->position_embeddings->weight.requires_grad());
}

TEST_CASE("Encoder: padding does not change the outputs of real tokens", "[encoder][mask]") {
  auto cases = load_cases();
  const auto& c = cases[0];  // padded_batch: rows of length 12, 7, 3, 12 padded to 12
  auto enc = Encoder::load_hf_dir(kTiny, cpu1());
  auto padded = enc.forward_ids(c.ids, c.mask, c.batch, c.seq_len);
  for (size_t row = 0; row < c.batch; ++row) {
    size_t len = 0;
    for (size_t t = 0; t < c.seq_len; ++t) len += static_cast<size_t>(c.mask[row * c.seq_len + t]);
    std::vector<int64_t> ids(c.ids.begin() + static_cast<long>(row * c.seq_len),
                             c.ids.begin() + static_cast<long>(row * c.seq_len + len));
    auto alone = enc.forward_ids(ids, {}, 1, len);
    double m = 0;
    for (size_t t = 0; t < len; ++t)
      for (size_t j = 0; j < 32; ++j)
        m = std::max(m, static_cast<double>(std::fabs(alone[t * 32 + j] - padded[(row * c.seq_len + t) * 32 + j])));
    INFO("row " << row << " len " << len);
    CHECK(m <= 1e-5);
  }
  // Without the mask the padded rows do change (the mask is really applied).
  auto unmasked = enc.forward_ids(c.ids, {}, c.batch, c.seq_len);
  double diff = 0;
  for (size_t j = 0; j < 32; ++j) diff = std::max(diff, static_cast<double>(std::fabs(unmasked[(2 * c.seq_len) * 32 + j] - padded[(2 * c.seq_len) * 32 + j])));
  CHECK(diff > 1e-3);
  // Mean pooling averages only real tokens.
  EncoderOptions o = cpu1();
  o.pooling = Pooling::mean;
  auto mean_enc = Encoder::load_hf_dir(kTiny, o);
  auto pooled = mean_enc.embed_ids(c.ids, c.mask, c.batch, c.seq_len);
  for (size_t j = 0; j < 32; ++j) {
    double s = 0;
    for (size_t t = 0; t < 3; ++t) s += padded[(2 * c.seq_len + t) * 32 + j];
    CHECK(std::fabs(pooled[2 * 32 + j] - s / 3) <= 1e-5);
  }
}

TEST_CASE("Encoder: the own-kernel forward and pooling equal the libtorch path", "[encoder][mask]") {
  auto cases = load_cases();
  const auto& c = cases[0];  // padded rows
  IsaGuard guard;
  for (Pooling pooling : {Pooling::cls, Pooling::mean}) {
    EncoderOptions o = cpu1();
    o.pooling = pooling;
    rd::cpu_isa_override(rd::CpuIsa::none);  // every op in libtorch
    auto torch_enc = Encoder::load_hf_dir(kTiny, o);
    const auto want_hidden = torch_enc.forward_ids(c.ids, c.mask, c.batch, c.seq_len);
    const auto want_pooled = torch_enc.embed_ids(c.ids, c.mask, c.batch, c.seq_len);
    const auto want_unmasked = torch_enc.embed_ids(c.ids, {}, c.batch, c.seq_len);
    for (rd::CpuIsa isa : {rd::CpuIsa::avx2, rd::CpuIsa::avx512}) {
      if (!rd::cpu_isa_supported(isa)) continue;
      rd::cpu_isa_override(isa);
      auto enc = Encoder::load_hf_dir(kTiny, o);  // packed (where the ISA packs) for this ISA
      INFO("pooling " << (pooling == Pooling::cls ? "cls" : "mean") << " kernels " << rd::cpu_isa_name(isa));
      auto diff = [](const std::vector<float>& a, const std::vector<float>& b) {
        REQUIRE(a.size() == b.size());
        double m = 0;
        for (size_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
        return m;
      };
      CHECK(diff(enc.forward_ids(c.ids, c.mask, c.batch, c.seq_len), want_hidden) <= 1e-5);
      CHECK(diff(enc.embed_ids(c.ids, c.mask, c.batch, c.seq_len), want_pooled) <= 1e-5);
      CHECK(diff(enc.embed_ids(c.ids, {}, c.batch, c.seq_len), want_unmasked) <= 1e-5);
    }
  }
  // The module's forward directly: a mask of any dtype is read as != 0, and a token id outside
  // the vocabulary is an error naming it (the encoder checks first; the module must not read
  // past its table either).
  for (rd::CpuIsa isa : {rd::CpuIsa::none, rd::CpuIsa::avx2, rd::CpuIsa::avx512}) {
    if (isa != rd::CpuIsa::none && !rd::cpu_isa_supported(isa)) continue;
    rd::cpu_isa_override(isa);
    INFO("kernels " << rd::cpu_isa_name(isa));
    auto cfg = EncoderConfig::from_hf_config_json(kTiny + "/config.json");
    rd::DistilBert mod(cfg);
    rd::init_weights(*mod, 5);
    mod->eval();
    torch::InferenceMode im;
    auto ids = torch::tensor(std::vector<int64_t>(c.ids.begin(), c.ids.end()))
                   .view({static_cast<int64_t>(c.batch), static_cast<int64_t>(c.seq_len)});
    auto mask = torch::tensor(std::vector<int64_t>(c.mask.begin(), c.mask.end())).view_as(ids);
    const auto by_long = mod->forward(ids, mask);
    CHECK(torch::allclose(mod->forward(ids, mask.to(torch::kBool)), by_long, 0, 0));
    CHECK(torch::allclose(mod->forward(ids, mask.to(torch::kFloat) * 3), by_long, 0, 0));
    auto bad = ids.clone();
    bad[0][1] = cfg.vocab_size;
    CHECK_THROWS(mod->forward(bad, mask));
  }
}

TEST_CASE("DistilBert: prepare_for_inference packs the weights or snapshots q/k/v", "[encoder]") {
  const auto cases = load_cases();
  const auto& c = cases[0];
  auto cfg = EncoderConfig::from_hf_config_json(kTiny + "/config.json");
  auto make = [&](bool prepacked) {
    rd::DistilBert mod(cfg);
    rd::init_weights(*mod, 9);
    mod->eval();
    mod->cpu_prepacked_weights = prepacked;
    rd::prepare_for_inference(*mod);
    return mod;
  };
  torch::InferenceMode im;
  const auto ids = torch::tensor(std::vector<int64_t>(c.ids.begin(), c.ids.end()))
                       .view({static_cast<int64_t>(c.batch), static_cast<int64_t>(c.seq_len)});
  const auto mask = torch::tensor(std::vector<int64_t>(c.mask.begin(), c.mask.end())).view_as(ids);
  IsaGuard guard;
  for (rd::CpuIsa isa : {rd::CpuIsa::none, rd::CpuIsa::avx2, rd::CpuIsa::avx512}) {
    if (isa != rd::CpuIsa::none && !rd::cpu_isa_supported(isa)) continue;
    rd::cpu_isa_override(isa);
    INFO("kernels at load " << rd::cpu_isa_name(isa));
    auto packed = make(true), plain = make(false);
    const bool packs = isa != rd::CpuIsa::none && rd::cpu_kernels(isa).packed_strip > 0;
    for (const auto& layer : *packed->transformer->layer) {
      auto* blk = layer->as<rd::TransformerBlockImpl>();
      CHECK((blk->attention->qkv_packed != nullptr) == packs);
      CHECK((blk->ffn->lin2_packed != nullptr) == packs);
      CHECK(blk->attention->qkv_weight.defined() == !packs);  // one copy of q/k/v, not two
    }
    for (const auto& layer : *plain->transformer->layer) {
      auto* blk = layer->as<rd::TransformerBlockImpl>();
      CHECK(blk->attention->qkv_packed == nullptr);
      CHECK(blk->attention->qkv_weight.defined());
    }
    // Same weights (same seed), same bits, packed or not.
    const auto want = plain->forward(ids, mask);
    CHECK(torch::equal(packed->forward(ids, mask), want));
    // Under other kernels than the packs were made for (a test override; production fixes the
    // ISA per process) the forward takes the libtorch path: same result within rounding.
    for (rd::CpuIsa other : {rd::CpuIsa::none, rd::CpuIsa::avx2, rd::CpuIsa::avx512}) {
      if (other != rd::CpuIsa::none && !rd::cpu_isa_supported(other)) continue;
      rd::cpu_isa_override(other);
      INFO("kernels at forward " << rd::cpu_isa_name(other));
      CHECK(torch::allclose(packed->forward(ids, mask), want, 0, 1e-5));
    }
  }
}

TEST_CASE("Encoder: input validation", "[encoder]") {
  auto enc = Encoder::load_hf_dir(kTiny, cpu1());
  auto code = [&](const std::vector<int64_t>& ids, const std::vector<int64_t>& mask, size_t b, size_t t) {
    try {
      enc.forward_ids(ids, mask, b, t);
    } catch (const Error& e) {
      return e.code();
    }
    return Status::ok;
  };
  std::vector<int64_t> long_ids(65, 5);
  CHECK(code(long_ids, {}, 1, 65) == Status::invalid_argument);  // > max_position_embeddings (64)
  CHECK(code(std::vector<int64_t>(64, 5), {}, 1, 64) == Status::ok);
  CHECK(code({1, 2, 3}, {}, 1, 4) == Status::invalid_argument);
  CHECK(code({1, 2000}, {}, 1, 2) == Status::invalid_argument);  // id >= vocab_size
  CHECK(code({1, -1}, {}, 1, 2) == Status::invalid_argument);
  CHECK(code({1, 2}, {1}, 1, 2) == Status::invalid_argument);
  CHECK(code({1, 2}, {1, 2}, 1, 2) == Status::invalid_argument);
  CHECK(code({}, {}, 0, 0) == Status::invalid_argument);
  // No vocab in the fixture dir: text embedding is a clear error.
  CHECK_FALSE(enc.has_tokenizer());
  CHECK_THROWS_AS(enc.embed({"hello"}), Error);
  // Device / dtype requests this build cannot honour.
  EncoderOptions o = cpu1();
  o.dtype = EncoderDType::fp16;
  CHECK_THROWS_AS(Encoder::load_hf_dir(kTiny, o), Error);
  o = cpu1();
  o.device = "tpu";
  CHECK_THROWS_AS(Encoder::load_hf_dir(kTiny, o), Error);
  if (!torch::cuda::is_available()) {
    o.device = "cuda";
    try {
      Encoder::load_hf_dir(kTiny, o);
      FAIL("no throw");
    } catch (const Error& e) {
      CHECK(e.code() == Status::not_supported);
    }
    o.device = "auto";
    CHECK(Encoder::load_hf_dir(kTiny, o).device() == "cpu");
  }
}

TEST_CASE("Encoder: texts are tokenized, truncated to max_position_embeddings and pooled", "[encoder][text]") {
  EncoderConfig c = EncoderConfig::small();
  c.n_layers = 1;
  c.max_position_embeddings = 16;
  EncoderOptions o = cpu1();
  o.vocab_file = default_vocab_path();
  auto enc = Encoder::random_init(c, 3, o);
  REQUIRE(enc.has_tokenizer());
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "word ";
  auto e = enc.embed({"hello world", long_text, ""}, 512);  // 512 capped at 16 positions
  REQUIRE(e.size() == 3 * static_cast<size_t>(c.dim));
  for (float v : e) REQUIRE(std::isfinite(v));
  // Same text alone gives the same embedding as inside a padded batch.
  auto alone = enc.embed({"hello world"});
  for (size_t j = 0; j < static_cast<size_t>(c.dim); ++j) CHECK(std::fabs(alone[j] - e[j]) <= 1e-5);
  CHECK(enc.embed({}).empty());
}

TEST_CASE("Encoder: save_hf_dir / load_hf_dir round trip is exact", "[encoder][io]") {
  EncoderConfig c = EncoderConfig::from_hf_config_json(kTiny + "/config.json");
  c.sinusoidal_pos_embds = true;
  auto a = Encoder::random_init(c, 42, cpu1());
  std::string dir = tmp_dir("roundtrip");
  a.save_hf_dir(dir);
  auto b = Encoder::load_hf_dir(dir, cpu1());
  CHECK(b.config().sinusoidal_pos_embds);
  std::vector<int64_t> ids = {101, 5, 6, 7, 102, 0};
  std::vector<int64_t> mask = {1, 1, 1, 1, 1, 0};
  CHECK(a.forward_ids(ids, mask, 1, 6) == b.forward_ids(ids, mask, 1, 6));
  // Same seed, same weights; different seed, different weights.
  auto a2 = Encoder::random_init(c, 42, cpu1());
  auto a3 = Encoder::random_init(c, 43, cpu1());
  CHECK(a.forward_ids(ids, mask, 1, 6) == a2.forward_ids(ids, mask, 1, 6));
  CHECK(a.forward_ids(ids, mask, 1, 6) != a3.forward_ids(ids, mask, 1, 6));
  // HF init: LayerNorm weights 1, padding row 0, weights ~ N(0, 0.02).
  auto f = read_safetensors(dir + "/model.safetensors");
  CHECK(f.metadata().at("format") == "pt");
  auto ln = floats(*f.find("embeddings.LayerNorm.weight"));
  for (float v : ln) CHECK(v == 1.0f);
  auto emb = floats(*f.find("embeddings.word_embeddings.weight"));
  for (size_t j = 0; j < 32; ++j) CHECK(emb[j] == 0.0f);
  double ss = 0;
  for (size_t i = 32; i < emb.size(); ++i) ss += static_cast<double>(emb[i]) * emb[i];
  double sd = std::sqrt(ss / static_cast<double>(emb.size() - 32));
  CHECK(sd == Approx(0.02).epsilon(0.05));
}

namespace {
// Rewrites the fixture weights with a transformation and returns the dir.
std::string rewrite_fixture(const std::string& name,
                            const std::function<void(std::vector<TensorView>&, std::vector<std::vector<unsigned char>>&)>& fn) {
  auto f = read_safetensors(kTiny + "/model.safetensors");
  std::vector<TensorView> ts = f.tensors();
  std::vector<std::vector<unsigned char>> store;
  fn(ts, store);
  std::string dir = tmp_dir(name);
  fs::copy_file(kTiny + "/config.json", dir + "/config.json");
  write_safetensors(dir + "/model.safetensors", ts);
  return dir;
}

std::string load_error(const std::string& dir, Status* code = nullptr) {
  try {
    Encoder::load_hf_dir(dir, cpu1());
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("Encoder: missing, mis-shaped and unexpected tensors are clear errors", "[encoder][io]") {
  Status code = Status::ok;
  auto dir = rewrite_fixture("missing", [](auto& ts, auto&) {
    ts.erase(std::remove_if(ts.begin(), ts.end(), [](const TensorView& t) { return t.name == "transformer.layer.1.ffn.lin2.bias"; }), ts.end());
  });
  auto msg = load_error(dir, &code);
  CHECK(code == Status::model);
  CHECK(msg.find("missing tensors: transformer.layer.1.ffn.lin2.bias") != std::string::npos);

  dir = rewrite_fixture("shape", [](auto& ts, auto&) {
    for (auto& t : ts)
      if (t.name == "transformer.layer.0.attention.q_lin.weight") {
        t.shape = {16, 64};  // same byte count, wrong shape
      }
  });
  msg = load_error(dir, &code);
  CHECK(code == Status::model);
  CHECK(msg.find("transformer.layer.0.attention.q_lin.weight is [16, 64], expected [32, 32]") != std::string::npos);

  dir = rewrite_fixture("extra_layer", [](auto& ts, auto&) {
    TensorView extra = ts.back();
    extra.name = "transformer.layer.2.output_layer_norm.bias";
    extra.shape = {32};
    extra.nbytes = 128;
    ts.push_back(extra);
  });
  msg = load_error(dir, &code);
  CHECK(code == Status::model);
  CHECK(msg.find("unexpected encoder tensors") != std::string::npos);
  CHECK(msg.find("transformer.layer.2.output_layer_norm.bias") != std::string::npos);

  // Missing files.
  std::string empty = tmp_dir("empty_dir");
  CHECK(load_error(empty, &code).find("config.json") != std::string::npos);
  CHECK(code == Status::io);
  CHECK(load_error(empty + "/nope", &code).find("not a directory") != std::string::npos);
}

TEST_CASE("Encoder: DistilBertFor* checkpoints ('distilbert.' prefix, heads, F16/BF16) load", "[encoder][io]") {
  auto cases = load_cases();
  auto dir = rewrite_fixture("prefixed", [](auto& ts, auto& store) {
    for (auto& t : ts) t.name = "distilbert." + t.name;
    TensorView head = ts[0];
    head.name = "pre_classifier.weight";
    ts.push_back(head);
    TensorView pos;
    pos.name = "distilbert.embeddings.position_ids";
    pos.dtype = DType::I64;
    pos.shape = {1, 64};
    store.emplace_back(64 * 8, 0);
    pos.data = store.back().data();
    pos.nbytes = 64 * 8;
    ts.push_back(pos);
  });
  auto enc = Encoder::load_hf_dir(dir, cpu1());
  const auto& c = cases[1];
  CHECK(max_abs_diff(enc.forward_ids(c.ids, c.mask, c.batch, c.seq_len), c.expected) <= 1e-5);

  auto f = read_safetensors(kTiny + "/model.safetensors");
  rd::DistilBert m(EncoderConfig::from_hf_config_json(kTiny + "/config.json"));
  auto rep = rd::load_weights(*m, read_safetensors(dir + "/model.safetensors"));
  CHECK(rep.prefix == "distilbert.");
  CHECK(rep.ignored.size() == 2);

  // BF16 weights convert to the fp32 module (bf16 rounding only).
  auto dir16 = rewrite_fixture("bf16", [](auto& ts, auto& store) {
    for (auto& t : ts) {
      std::vector<unsigned char> b(t.nbytes / 2);
      for (size_t i = 0; i < t.nbytes / 4; ++i) {
        uint32_t u;
        std::memcpy(&u, t.data + 4 * i, 4);
        uint16_t h = static_cast<uint16_t>(u >> 16);
        std::memcpy(b.data() + 2 * i, &h, 2);
      }
      store.push_back(std::move(b));
      t.dtype = DType::BF16;
      t.data = store.back().data();
      t.nbytes /= 2;
    }
  });
  auto enc16 = Encoder::load_hf_dir(dir16, cpu1());
  double d = max_abs_diff(enc16.forward_ids(c.ids, c.mask, c.batch, c.seq_len), c.expected);
  CHECK(d > 0);
  CHECK(d < 0.5);
}

TEST_CASE("Encoder: cpu_kernel_threads is validated and does not change results", "[encoder][threads]") {
  EncoderOptions bad = cpu1();
  bad.cpu_kernel_threads = -1;
  try {
    (void)Encoder::load_hf_dir(kTiny, bad);
    FAIL("expected invalid_argument");
  } catch (const Error& e) {
    CHECK(e.code() == Status::invalid_argument);
    CHECK(std::string(e.what()).find("cpu_kernel_threads") != std::string::npos);
  }
  // Big enough that the kernels really split the work (the tiny fixture runs on one thread).
  EncoderConfig cfg = EncoderConfig::small();
  cfg.n_layers = 1;
  const size_t batch = 2, seq = 64;
  std::vector<int64_t> ids(batch * seq), mask(batch * seq, 1);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = 1000 + static_cast<int64_t>((i * 7919) % 20000);
  for (size_t t = 40; t < seq; ++t) mask[seq + t] = 0;  // second row padded
  std::vector<std::vector<float>> outs;
  for (int threads : {1, 3, 0}) {
    EncoderOptions o = cpu1();
    o.cpu_kernel_threads = threads;
    auto enc = Encoder::random_init(cfg, 7, o);
    outs.push_back(enc.forward_ids(ids, mask, batch, seq));
  }
  CHECK(outs[0] == outs[1]);  // bit-identical: each output element is computed the same way
  CHECK(outs[0] == outs[2]);
}

TEST_CASE("Encoder: concurrent const calls give the single-threaded results", "[encoder][threads]") {
  auto cases = load_cases();
  auto enc = Encoder::load_hf_dir(kTiny, cpu1());
  std::vector<std::vector<float>> want;
  for (const auto& c : cases) want.push_back(enc.forward_ids(c.ids, c.mask, c.batch, c.seq_len));
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      try {
        for (int it = 0; it < 6; ++it) {
          size_t k = static_cast<size_t>(t + it) % cases.size();
          const auto& c = cases[k];
          if (enc.forward_ids(c.ids, c.mask, c.batch, c.seq_len) != want[k]) ++mismatches;
        }
      } catch (...) {
        ++errors;
      }
    });
  for (auto& x : th) x.join();
  CHECK(errors == 0);
  CHECK(mismatches == 0);
}

TEST_CASE("Encoder: bf16 on CPU stays close to fp32", "[encoder][bf16]") {
  auto cases = load_cases();
  EncoderOptions o = cpu1();
  o.dtype = EncoderDType::bf16;
  auto b = Encoder::load_hf_dir(kTiny, o);
  CHECK(b.dtype() == EncoderDType::bf16);
  for (const auto& c : cases) {
    double d = max_abs_diff(b.forward_ids(c.ids, c.mask, c.batch, c.seq_len), c.expected);
    INFO(c.name);
    CHECK(d > 0);     // really bf16
    CHECK(d < 0.25);  // activations are O(1) after LayerNorm; bf16 keeps ~3 digits
  }
}

TEST_CASE("Encoder: int8 dynamic quantization stays close to fp32", "[encoder][int8]") {
  auto cases = load_cases();
  EncoderOptions o = cpu1();
  o.int8_dynamic = true;
  o.pooling = Pooling::mean;
  Encoder q = [&] {
    try {
      return Encoder::load_hf_dir(kTiny, o);
    } catch (const Error& e) {
      if (e.code() == Status::not_supported) WARN("int8 not supported here: " << e.what());
      throw;
    }
  }();
  o.int8_dynamic = false;
  auto f = Encoder::load_hf_dir(kTiny, o);
  for (const auto& c : cases) {
    auto a = q.embed_ids(c.ids, c.mask, c.batch, c.seq_len);
    auto b = f.embed_ids(c.ids, c.mask, c.batch, c.seq_len);
    for (size_t row = 0; row < c.batch; ++row) {
      double dot = 0, na = 0, nb = 0;
      for (size_t j = 0; j < 32; ++j) {
        double x = a[row * 32 + j], y = b[row * 32 + j];
        dot += x * y;
        na += x * x;
        nb += y * y;
      }
      CHECK(dot / std::sqrt(na * nb) > 0.98);
    }
    CHECK(a != b);  // really quantized
  }
}
