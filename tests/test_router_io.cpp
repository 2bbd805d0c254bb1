// save_router / load_router: every router kind round-trips to identical scores; routers that
// cannot be saved and corrupted directories give errors naming the router or the file.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/router/stacked.hpp"
#include "routenlp/router/io.hpp"
#include "routenlp/encoder/safetensors.hpp"

using namespace routenlp;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Synthetic routing data (as in test_router.cpp): 3 tiers, 3 tasks; acceptability is a known
// function of the task and of a level keyword in the query.
const char* kFiller[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
                         "hotel", "india", "juliet", "kilo", "lima", "mike", "november"};
const char* kLevel[] = {"easy", "medium", "hard", "impossible"};
const char* kTask[] = {"qa", "math", "chat"};

Dataset synthetic(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Dataset d;
  for (size_t i = 0; i < n; ++i) {
    Query q;
    q.id = "q" + std::to_string(i);
    q.task = kTask[rng() % 3];
    int level = static_cast<int>(rng() % 4);
    std::string text;
    int words = 3 + static_cast<int>(rng() % 6);
    int pos = static_cast<int>(rng() % static_cast<uint64_t>(words));
    for (int w = 0; w < words; ++w) {
      if (w == pos) text += std::string(kLevel[level]) + " ";
      text += std::string(kFiller[rng() % 14]) + " ";
    }
    q.query = text;
    bool easy = level == 0, medium = level == 1, imp = level == 3;
    q.outcomes["cheap"].quality = (easy && q.task != "math") ? 1.0 : 0.0;
    q.outcomes["mid"].quality = (easy || medium || q.task == "chat") ? 1.0 : 0.0;
    if (i % 17 != 5) q.outcomes["strong"].quality = imp ? 0.0 : 1.0;  // some missing
    for (auto& [tier, o] : q.outcomes) o.cost = tier == "cheap" ? 0.001 : 0.01;
    q.split = (i % 5 == 0) ? Split::calib : (i % 5 == 1 ? Split::test : Split::train);
    q.split_given = true;
    d.queries.push_back(std::move(q));
  }
  return d;
}

PortfolioConfig synthetic_portfolio() {
  return parse_portfolio(
      "tiers:\n"
      "  - {name: cheap, price_per_1m_input: 0.1, price_per_1m_output: 0.1}\n"
      "  - {name: mid, price_per_1m_input: 1, price_per_1m_output: 1}\n"
      "  - {name: strong, price_per_1m_input: 10, price_per_1m_output: 10}\n"
      "tasks:\n"
      "  default: {quality_threshold: 1.0}\n"
      "alpha: 0.1\n",
      "synthetic.yaml");
}

struct Data {
  Dataset data = synthetic(600, 7);
  PortfolioConfig pf = synthetic_portfolio();
  RoutingLabels train = make_labels(data, pf, Split::train);
  RoutingLabels calib = make_labels(data, pf, Split::calib);
  std::vector<RouteQuery> heldout;
  Data() {
    auto te = make_labels(data, pf, Split::test);
    heldout = te.queries;
    // Edge cases: an unseen task, an empty query, words never seen in training.
    heldout.push_back({"easy alpha", "unseen-task"});
    heldout.push_back({"", "qa"});
    heldout.push_back({"zulu yankee xray", "math"});
  }
};

const Data& data() {
  static Data d;
  return d;
}

std::string temp_dir(const std::string& name) {
  auto p = fs::path(RN_BINARY_DIR) / "router-io" / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p.string();
}

// Scores of both routers on the held-out queries are identical (every field).
void check_same_scores(const RouterModel& a, const RouterModel& b,
                       const std::vector<RouteQuery>& qs) {
  auto sa = a.score(qs), sb = b.score(qs);
  REQUIRE(sa.size() == qs.size());
  REQUIRE(sb.size() == qs.size());
  for (size_t i = 0; i < qs.size(); ++i) {
    INFO("query " << i << ": '" << qs[i].query << "' task " << qs[i].task);
    CHECK(sa[i].p_acceptable == sb[i].p_acceptable);
    CHECK(sa[i].difficulty == sb[i].difficulty);
    CHECK(sa[i].task_unseen == sb[i].task_unseen);
  }
}

// How many distinct p vectors a router gives the held-out queries (a constant router would
// make the equality checks weak, so trained kinds must vary).
size_t distinct_scores(const RouterModel& r, const std::vector<RouteQuery>& qs) {
  std::vector<std::vector<double>> seen;
  for (const auto& s : r.score(qs))
    if (std::find(seen.begin(), seen.end(), s.p_acceptable) == seen.end())
      seen.push_back(s.p_acceptable);
  return seen.size();
}

std::shared_ptr<const RouterModel> round_trip(const RouterModel& r, const std::string& kind,
                                              const std::string& name) {
  auto dir = temp_dir(name);
  CHECK(router_kind(r) == kind);
  save_router(r, dir);
  CHECK(fs::exists(fs::path(dir) / "router.json"));
  auto back = load_router(dir);
  REQUIRE(back);
  CHECK(back->name() == r.name());
  CHECK(back->tiers() == r.tiers());
  CHECK(router_kind(*back) == kind);
  check_same_scores(r, *back, data().heldout);
  // The directory records the kind.
  std::ifstream in(fs::path(dir) / "router.json");
  json meta = json::parse(in);
  CHECK(meta.at("kind") == kind);
  return back;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

json read_json(const fs::path& p) { return json::parse(read_text(p)); }
void write_json(const fs::path& p, const json& j) { write_text(p, j.dump(2)); }

// Error thrown by load_router(dir), with its message (fails the test when none is thrown).
std::string load_error(const std::string& dir, Status* code = nullptr) {
  try {
    load_router(dir);
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  } catch (const std::exception& e) {
    FAIL("not a routenlp::Error: " << e.what());
  }
  FAIL("load_router(" << dir << ") did not throw");
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A fresh copy of a saved directory, for corrupting.
std::string copy_of(const std::string& src, const std::string& name) {
  auto dst = temp_dir(name);
  fs::copy(src, dst, fs::copy_options::recursive);
  return dst;
}

// Rewrites one tensor of a safetensors file with `values` as float64 bit patterns.
void set_f64_tensor(const fs::path& path, const std::string& name, const std::vector<double>& values) {
  auto f = read_safetensors(path.string());
  std::vector<TensorView> views = f.tensors();
  std::string bytes(values.size() * 8, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());  // the test host is little-endian
  for (auto& v : views)
    if (v.name == name) {
      REQUIRE(v.nbytes == bytes.size());
      v.data = reinterpret_cast<const unsigned char*>(bytes.data());
    }
  write_safetensors(path.string(), views, f.metadata());
}

// A router this library did not make.
class HostRouter final : public RouterModel {
 public:
  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override {
    return std::vector<RouterScores>(batch.size(), RouterScores{{0.5, 0.5, 0.5}, 0.5, false});
  }
  std::string name() const override { return "host-router"; }
  std::vector<std::string> tiers() const override { return {"cheap", "mid", "strong"}; }
};

}  // namespace

TEST_CASE("router_io: random and always-tier round-trip", "[router][io]") {
  const auto& d = data();
  auto r = make_random_router(d.train.tiers, 12345678901234567ULL);
  round_trip(*r, "random", "random");
  CHECK(distinct_scores(*r, d.heldout) > 10);
  auto a = make_always_tier_router(d.train.tiers, 1);
  auto back = round_trip(*a, "always-tier", "always");
  CHECK(back->name() == "always-mid");
}

TEST_CASE("router_io: task prior round-trips", "[router][io]") {
  const auto& d = data();
  auto r = make_task_prior_router(d.train);
  round_trip(*r, "task-prior", "task-prior");
  CHECK(distinct_scores(*r, d.heldout) == 4);  // 3 tasks + the unseen one
}

TEST_CASE("router_io: TF-IDF logistic regression round-trips", "[router][io]") {
  const auto& d = data();
  auto r = make_tfidf_logreg_router(d.train);
  round_trip(*r, "tfidf-logreg", "logreg");
  CHECK(distinct_scores(*r, d.heldout) > 20);
  SECTION("without task features, unigrams only") {
    LogRegOptions o;
    o.task_features = false;
    o.tfidf.bigrams = false;
    o.tfidf.min_df = 1;
    auto r2 = make_tfidf_logreg_router(d.train, o);
    round_trip(*r2, "tfidf-logreg", "logreg-notask");
    CHECK(distinct_scores(*r2, d.heldout) > 5);
  }
}

TEST_CASE("router_io: kNN over TF-IDF round-trips", "[router][io]") {
  const auto& d = data();
  KnnOptions o;
  o.k = 7;
  o.same_task_only = true;
  auto r = make_knn_router(d.train, o);
  CHECK(r->name() == "knn-tfidf");
  round_trip(*r, "knn-tfidf", "knn");
  CHECK(distinct_scores(*r, d.heldout) > 10);
}

TEST_CASE("router_io: matrix factorisation round-trips", "[router][io]") {
  const auto& d = data();
  MfOptions o;
  o.dim = 8;
  o.epochs = 60;
  auto r = make_mf_router(d.train, o);
  auto back = round_trip(*r, "mf", "mf");
  CHECK(distinct_scores(*r, d.heldout) > 20);
  // Another seed scores differently, so the equality above is not trivially true.
  o.seed = 1;
  auto other = make_mf_router(d.train, o);
  CHECK(other->score_one(d.heldout[0]).p_acceptable != back->score_one(d.heldout[0]).p_acceptable);
}

TEST_CASE("router_io: stacked router round-trips with its bases", "[router][io]") {
  const auto& d = data();
  std::vector<std::shared_ptr<const RouterModel>> bases{make_task_prior_router(d.train),
                                                        make_tfidf_logreg_router(d.train)};
  auto stack = fit_stacked_router(bases, d.calib);
  CHECK(stack->name() == "stacked(task-prior+tfidf-logreg)");
  auto back = round_trip(*stack, "stacked", "stacked");
  const fs::path dir = fs::path(RN_BINARY_DIR) / "router-io" / "stacked";
  CHECK(read_json(dir / "base-0" / "router.json").at("kind") == "task-prior");
  CHECK(read_json(dir / "base-1" / "router.json").at("kind") == "tfidf-logreg");
  CHECK(distinct_scores(*stack, d.heldout) > 20);

  SECTION("every baseline kind as a base, and a stack inside a stack") {
    MfOptions mo;
    mo.dim = 4;
    mo.epochs = 20;
    std::vector<std::shared_ptr<const RouterModel>> all{
        make_random_router(d.train.tiers, 3), make_always_tier_router(d.train.tiers, 2),
        make_knn_router(d.train), make_mf_router(d.train, mo), std::move(stack)};
    auto outer = fit_stacked_router(all, d.calib);
    round_trip(*outer, "stacked", "stacked-nested");
  }
}

TEST_CASE("router_io: saving replaces an existing directory and leaves no temporaries",
          "[router][io]") {
  const auto& d = data();
  auto dir = temp_dir("replace");
  save_router(*make_task_prior_router(d.train), dir);
  save_router(*make_random_router(d.train.tiers, 9), dir);
  CHECK(load_router(dir)->name() == "random");
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(fs::path(dir).parent_path()))
    if (e.path().filename().string().rfind("replace", 0) == 0) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("router_io: routers this library cannot save are not_supported", "[router][io]") {
  const auto& d = data();
  auto expect_unsupported = [](const RouterModel& r, const std::string& name,
                               const std::string& why) {
    auto dir = temp_dir("unsupported");
    CHECK(router_kind(r).empty());
    try {
      save_router(r, dir);
      FAIL("save_router did not throw");
    } catch (const Error& e) {
      CHECK(e.code() == Status::not_supported);
      CHECK(contains(e.what(), name));
      CHECK(contains(e.what(), why));
    }
    CHECK_FALSE(fs::exists(dir));  // nothing written
  };
  HostRouter host;
  expect_unsupported(host, "host-router", "host RouterModel subclass");
  TextEmbedder emb = [](const std::vector<RouteQuery>& qs) {
    std::vector<std::vector<float>> out;
    for (const auto& q : qs) out.push_back({static_cast<float>(q.query.size()), 1.0f});
    return out;
  };
  auto knn = make_knn_router(d.train, {}, emb);
  expect_unsupported(*knn, "knn-encoder", "embedder");
  auto stack = make_stacked_router(
      {make_task_prior_router(d.train), std::make_shared<HostRouter>()},
      StackWeights(3, std::vector<double>{0.0, 1.0, 0.0}));
  expect_unsupported(*stack, "base 1 ('host-router')", "host RouterModel subclass");
}

TEST_CASE("router_io: corrupted directories give errors naming the file", "[router][io]") {
  const auto& d = data();
  auto logreg = temp_dir("bad-logreg-src");
  save_router(*make_tfidf_logreg_router(d.train), logreg);
  REQUIRE(load_router(logreg)->name() == "tfidf-logreg");
  Status code = Status::ok;

  SECTION("missing directory or router.json") {
    auto msg = load_error(logreg + "-missing", &code);
    CHECK(code == Status::io);
    CHECK(contains(msg, "router.json"));
  }
  SECTION("missing weights file") {
    auto dir = copy_of(logreg, "bad-noweights");
    fs::remove(fs::path(dir) / "weights.safetensors");
    auto msg = load_error(dir, &code);
    CHECK(code == Status::io);
    CHECK(contains(msg, "weights.safetensors"));
  }
  SECTION("missing or truncated vocabulary") {
    auto dir = copy_of(logreg, "bad-terms");
    auto terms = fs::path(dir) / "tfidf-terms.txt";
    auto text = read_text(terms);
    REQUIRE(text.size() > 10);
    write_text(terms, text.substr(0, text.rfind('\n', text.size() - 2) + 1));  // one term fewer
    auto msg = load_error(dir, &code);
    CHECK(code == Status::model);
    CHECK(contains(msg, "tfidf-terms.txt"));
    CHECK(contains(msg, "vocabulary_size"));
    write_text(terms, text.substr(0, text.size() - 1));  // last newline cut
    CHECK(contains(load_error(dir), "tfidf-terms.txt: truncated"));
    std::string crlf;  // line endings converted to \r\n: no term could match any more
    for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    write_text(terms, crlf);
    CHECK(contains(load_error(dir), "tfidf-terms.txt: line 1: not a TF-IDF term"));
    fs::remove(terms);
    CHECK(contains(load_error(dir), "tfidf-terms.txt"));
  }
  SECTION("unknown kind") {
    auto dir = copy_of(logreg, "bad-kind");
    auto j = read_json(fs::path(dir) / "router.json");
    j["kind"] = "xgboost";
    write_json(fs::path(dir) / "router.json", j);
    auto msg = load_error(dir, &code);
    CHECK(code == Status::parse);
    CHECK(contains(msg, "router.json: kind: unknown router kind \"xgboost\""));
  }
  SECTION("truncated weights") {
    auto dir = copy_of(logreg, "bad-truncated");
    auto w = fs::path(dir) / "weights.safetensors";
    auto bytes = read_text(w);
    write_text(w, bytes.substr(0, bytes.size() / 2));
    auto msg = load_error(dir, &code);
    CHECK(code == Status::parse);
    CHECK(contains(msg, "weights.safetensors"));
  }
  SECTION("NaN or infinite weight") {
    auto dir = copy_of(logreg, "bad-nan");
    auto w = fs::path(dir) / "weights.safetensors";
    set_f64_tensor(w, "bias", {0.1, std::numeric_limits<double>::quiet_NaN(), 0.2});
    auto msg = load_error(dir, &code);
    CHECK(code == Status::model);
    CHECK(contains(msg, "weights.safetensors: tensor bias: element 1 is not finite"));
    set_f64_tensor(w, "bias", {0.1, 0.2, std::numeric_limits<double>::infinity()});
    CHECK(contains(load_error(dir), "tensor bias: element 2 is not finite"));
  }
  SECTION("wrong tier count") {
    auto dir = copy_of(logreg, "bad-tiers");
    auto j = read_json(fs::path(dir) / "router.json");
    j["tiers"] = {"cheap", "mid"};
    write_json(fs::path(dir) / "router.json", j);
    auto msg = load_error(dir, &code);
    CHECK(code == Status::model);
    CHECK(contains(msg, "weights.safetensors: tensor weights: shape"));
  }
  SECTION("wrong JSON types, unknown and duplicate keys, unsupported version") {
    auto dir = copy_of(logreg, "bad-json");
    auto meta = fs::path(dir) / "router.json";
    const auto j = read_json(meta);
    auto with = [&](const char* key, json value) {
      json k = j;
      k[key] = std::move(value);
      write_json(meta, k);
      return load_error(dir);
    };
    CHECK(contains(with("task_features", "yes"), "router.json: task_features: expected true/false"));
    CHECK(contains(with("iterations", -3), "router.json: iterations: expected a non-negative integer"));
    CHECK(contains(with("format_version", 99), "router.json: format_version: unsupported"));
    CHECK(contains(with("extra", 1), "router.json: extra: unknown key"));
    CHECK(contains(with("tiers", json::array({"cheap", "cheap", "mid"})), "tiers[1]: duplicate tier"));
    json nested = j;
    nested.erase("tfidf");
    write_json(meta, nested);
    CHECK(contains(load_error(dir), "router.json: tfidf: missing"));
    auto text = j.dump();
    write_text(meta, "{\"kind\": \"random\", " + text.substr(1));
    CHECK(contains(load_error(dir), "router.json: kind: duplicate key"));
    write_text(meta, text.substr(0, text.size() / 2));
    CHECK(contains(load_error(dir, &code), "router.json: invalid JSON"));
    CHECK(code == Status::parse);
  }
}

TEST_CASE("router_io: corrupted stacked, task-prior and kNN directories", "[router][io]") {
  const auto& d = data();
  std::vector<std::shared_ptr<const RouterModel>> bases{make_task_prior_router(d.train),
                                                        make_knn_router(d.train)};
  auto src = temp_dir("bad-stack-src");
  save_router(*fit_stacked_router(bases, d.calib), src);
  REQUIRE(load_router(src)->name() == "stacked(task-prior+knn-tfidf)");
  Status code = Status::ok;

  SECTION("a base's tiers disagree with the stack's") {
    auto dir = copy_of(src, "bad-stack-tiers");
    auto p = fs::path(dir) / "base-0" / "router.json";
    auto j = read_json(p);
    j["tiers"] = {"cheap", "mid", "premium"};
    write_json(p, j);
    auto msg = load_error(dir, &code);
    CHECK(code == Status::model);
    CHECK(contains(msg, "base-0/router.json: tiers [cheap,mid,premium] disagree with"));
  }
  SECTION("stack weights: non-finite, wrong row count, wrong row width") {
    auto dir = copy_of(src, "bad-stack-weights");
    auto p = fs::path(dir) / "router.json";
    const auto text = read_text(p);
    auto j = json::parse(text);
    std::string w0 = j["weights"][0][1].dump();
    auto at = text.find(w0);
    REQUIRE(at != std::string::npos);
    write_text(p, text.substr(0, at) + "1e999" + text.substr(at + w0.size()));
    auto msg = load_error(dir, &code);
    CHECK(code == Status::parse);
    CHECK(contains(msg, "router.json"));
    auto k = j;
    k["weights"].erase(2);
    write_json(p, k);
    CHECK(contains(load_error(dir), "router.json: weights: expected an array of 3 rows"));
    k = j;
    k["weights"][1].push_back(0.5);
    write_json(p, k);
    CHECK(contains(load_error(dir), "router.json: weights[1]: 4 entries, expected 3"));
  }
  SECTION("a missing base directory") {
    auto dir = copy_of(src, "bad-stack-base");
    fs::remove_all(fs::path(dir) / "base-1");
    CHECK(contains(load_error(dir), "base-1/router.json"));
  }
  SECTION("task prior: rates row of the wrong width") {
    auto dir = copy_of(src, "bad-prior");
    auto p = fs::path(dir) / "base-0" / "router.json";
    auto j = read_json(p);
    j["rates"][0].erase(0);
    write_json(p, j);
    CHECK(contains(load_error(dir), "base-0/router.json: rates[0]: 2 entries, expected 3"));
  }
  SECTION("kNN: labels out of range and tensors missing") {
    auto dir = copy_of(src, "bad-knn");
    auto w = fs::path(dir) / "base-1" / "weights.safetensors";
    auto f = read_safetensors(w.string());
    std::vector<TensorView> views;
    std::string labels;
    for (auto v : f.tensors()) {
      if (v.name == "labels") {
        labels.assign(reinterpret_cast<const char*>(v.data), v.nbytes);
        labels[0] = 7;  // little-endian int32: element [0,0] becomes 7
        v.data = reinterpret_cast<const unsigned char*>(labels.data());
      }
      if (v.name != "vectors.values") views.push_back(v);
    }
    write_safetensors(w.string(), views, f.metadata());
    auto msg = load_error(dir, &code);
    CHECK(code == Status::model);
    CHECK(contains(msg, "base-1/weights.safetensors: tensor labels: element [0,0] is 7"));
  }
}

TEST_CASE("router_io: neural router", "[router][io][neural]") {
  const auto& d = data();
#ifdef ROUTENLP_HAVE_TORCH
  RouterTrainConfig c;
  c.model.encoder.vocab_size = 30;
  c.model.encoder.max_position_embeddings = 16;
  c.model.encoder.dim = 16;
  c.model.encoder.n_layers = 1;
  c.model.encoder.n_heads = 2;
  c.model.encoder.hidden_dim = 32;
  c.model.vocab_path = std::string(RN_TEST_DATA_DIR) + "/router/tiny-vocab.txt";
  c.model.max_length = 16;
  c.model.task_dim = 4;
  c.model.hidden = 16;
  c.epochs = 2;
  c.threads = 1;
  auto neural = std::make_shared<NeuralRouter>(NeuralRouter::train(d.data, d.pf, c));
  round_trip(*neural, "neural", "neural");
  CHECK(fs::exists(fs::path(RN_BINARY_DIR) / "router-io" / "neural" / "neural" / "router.safetensors"));
  // A bare NeuralRouter::save checkpoint loads too.
  auto bare = temp_dir("neural-bare");
  neural->save(bare);
  check_same_scores(*neural, *load_router(bare), d.heldout);
  // Its format_version must be an integer in int's range: 4294967297 had wrapped to 1 and loaded.
  for (const char* v : {"1e300", "4294967297", "1.0"}) {
    INFO("format_version = " << v);
    const json meta = read_json(fs::path(bare) / "router.json");
    json bad = meta;
    bad["format_version"] = json::parse(v);
    write_json(fs::path(bare) / "router.json", bad);
    Status code = Status::ok;
    CHECK(contains(load_error(bare, &code), "router.json: format_version: expected an integer"));
    CHECK(code == Status::parse);
    write_json(fs::path(bare) / "router.json", meta);
  }
  // The pipeline's usual choice: stacked(task-prior+tfidf-logreg+neural).
  std::vector<std::shared_ptr<const RouterModel>> bases{make_task_prior_router(d.train),
                                                        make_tfidf_logreg_router(d.train), neural};
  auto stack = fit_stacked_router(bases, d.calib);
  CHECK(stack->name() == "stacked(task-prior+tfidf-logreg+neural)");
  round_trip(*stack, "stacked", "stacked-neural");
#else
  // Without libtorch a saved neural router cannot be loaded: a clear not_supported naming the file.
  auto dir = temp_dir("neural-no-torch");
  fs::create_directories(dir);
  write_json(fs::path(dir) / "router.json",
             json{{"format", "routenlp-router-model"}, {"format_version", 1}, {"kind", "neural"},
                  {"name", "neural"}, {"tiers", d.train.tiers}, {"checkpoint", "neural"}});
  Status code = Status::ok;
  auto msg = load_error(dir, &code);
  CHECK(code == Status::not_supported);
  CHECK(contains(msg, "router.json: kind \"neural\""));
  CHECK(contains(msg, "libtorch"));
#endif
}
