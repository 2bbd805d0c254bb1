// save_router / load_router: every router kind this library makes, to and from a directory.
// router.json holds the kind and the small numbers (nlohmann's shortest round-trip doubles);
// arrays that grow with the vocabulary or the training set go to weights.safetensors, and the
// TF-IDF vocabulary to tfidf-terms.txt (one term a line: terms never contain a newline, and
// may hold bytes that are not UTF-8, which JSON cannot carry). Layouts: docs/router.md.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "common/atomic_file.hpp"
#include "common/text_io.hpp"
#include "router/baseline_models.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/router/stacked.hpp"
#include "routenlp/router/io.hpp"
#include "routenlp/encoder/safetensors.hpp"

namespace routenlp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kMeta = "router.json";
constexpr const char* kWeights = "weights.safetensors";
constexpr const char* kTerms = "tfidf-terms.txt";
constexpr const char* kNeuralDir = "neural";
constexpr const char* kFormat = "routenlp-router-model";
constexpr const char* kNeuralFormat = "routenlp-router";  // a bare NeuralRouter::save checkpoint
constexpr int kFormatVersion = 1;
constexpr int kMaxDepth = 8;          // stacks of stacks: bounds recursion on a crafted directory
constexpr int kMaxJsonNesting = 16;   // router.json is at most a few levels deep
constexpr size_t kMaxMetaBytes = size_t{64} << 20;
constexpr double kMaxKnnCells = 4294967296.0;  // 2^32 floats = 16 GiB of training vectors

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return "[" + s + "]";
}

std::string base_dir(size_t j) { return "base-" + std::to_string(j); }

// ---- which routers can be saved ----------------------------------------------------------------

// The kind of `r`, or "" with the reason in `why`.
std::string kind_of(const RouterModel& r, std::string& why, int depth = 0) {
  if (dynamic_cast<const NeuralRouter*>(&r)) return "neural";
  if (dynamic_cast<const detail::RandomRouter*>(&r)) return "random";
  if (dynamic_cast<const detail::AlwaysRouter*>(&r)) return "always-tier";
  if (dynamic_cast<const detail::TaskPriorRouter*>(&r)) return "task-prior";
  if (dynamic_cast<const detail::LogRegRouter*>(&r)) return "tfidf-logreg";
  if (dynamic_cast<const detail::MfRouter*>(&r)) return "mf";
  if (const auto* k = dynamic_cast<const detail::KnnRouter*>(&r)) {
    if (!k->uses_embedder()) return "knn-tfidf";
    why = "a kNN over an external embedder cannot be saved: the embedder is a host callback "
          "(e.g. NeuralRouter::embedder()), not data; save the encoder's router and rebuild the "
          "kNN with make_knn_router after loading it, or use the TF-IDF kNN";
    return "";
  }
  std::vector<std::shared_ptr<const RouterModel>> bases;
  StackWeights w;
  if (detail::stacked_parts(r, bases, w)) {
    if (depth >= kMaxDepth) {
      why = fmt::format("stacks nested deeper than {} levels", kMaxDepth);
      return "";
    }
    for (size_t j = 0; j < bases.size(); ++j) {
      std::string inner;
      if (kind_of(*bases[j], inner, depth + 1).empty()) {
        why = fmt::format("base {} ('{}'): {}", j, bases[j]->name(), inner);
        return "";
      }
    }
    return "stacked";
  }
  why = "not a router made by this library (e.g. a host RouterModel subclass)";
  return "";
}

// ---- writing -----------------------------------------------------------------------------------

// A tensor that owns its little-endian bytes.
struct OwnedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

void put_le(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Doubles go in I64 tensors holding their IEEE-754 bit patterns: the safetensors code here has
// no F64, and the bits round-trip exactly (a reader recovers them with a float64 view).
OwnedTensor f64_tensor(std::string name, std::vector<int64_t> shape, const std::vector<double>& v) {
  OwnedTensor t{std::move(name), DType::I64, std::move(shape), {}};
  t.bytes.reserve(v.size() * 8);
  for (double x : v) {
    uint64_t u;
    std::memcpy(&u, &x, 8);
    put_le(t.bytes, u, 8);
  }
  return t;
}

OwnedTensor f32_tensor(std::string name, std::vector<int64_t> shape, const std::vector<float>& v) {
  OwnedTensor t{std::move(name), DType::F32, std::move(shape), {}};
  t.bytes.reserve(v.size() * 4);
  for (float x : v) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    put_le(t.bytes, u, 4);
  }
  return t;
}

template <class Int>
OwnedTensor int_tensor(std::string name, DType dtype, std::vector<int64_t> shape,
                       const std::vector<Int>& v) {
  OwnedTensor t{std::move(name), dtype, std::move(shape), {}};
  const int n = static_cast<int>(dtype_size(dtype));
  for (Int x : v) put_le(t.bytes, static_cast<uint64_t>(static_cast<int64_t>(x)), n);
  return t;
}

// Row-major copy of a dense matrix.
std::vector<double> row_major(const Eigen::MatrixXd& m) {
  std::vector<double> v;
  v.reserve(static_cast<size_t>(m.size()));
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) v.push_back(m(i, j));
  return v;
}

void write_tensors(const fs::path& path, const std::vector<OwnedTensor>& ts) {
  std::vector<TensorView> views;
  for (const auto& t : ts) {
    TensorView v;
    v.name = t.name;
    v.dtype = t.dtype;
    v.shape = t.shape;
    v.data = reinterpret_cast<const unsigned char*>(t.bytes.data());
    v.nbytes = t.bytes.size();
    views.push_back(std::move(v));
  }
  write_safetensors(path.string(), views,
                    {{"routenlp", "router-model"},
                     {"float64", "I64 tensors hold IEEE-754 float64 bit patterns"}});
}

json tfidf_json(const TfidfOptions& o) {
  return json{{"max_features", o.max_features}, {"min_df", o.min_df}, {"bigrams", o.bigrams}};
}

// The vectorizer's idf (as a tensor) and vocabulary (as a file); vocabulary_size in the JSON.
void write_tfidf(const detail::TfidfVectorizer& vec, const fs::path& dir, json& meta,
                 std::vector<OwnedTensor>& ts) {
  meta["tfidf"] = tfidf_json(detail::tfidf_options(vec.config()));
  meta["vocabulary_size"] = vec.dim();
  ts.push_back(f64_tensor("tfidf.idf", {static_cast<int64_t>(vec.dim())}, vec.idf()));
  std::string text;
  for (const auto& t : vec.vocabulary()) text += t + "\n";
  detail::write_file_atomic((dir / kTerms).string(), text);
}

// Writes `r` (of kind `kind`) into the existing, empty directory `dir`.
void write_dir(const RouterModel& r, const std::string& kind, const fs::path& dir) {
  json meta;
  meta["format"] = kFormat;
  meta["format_version"] = kFormatVersion;
  meta["kind"] = kind;
  meta["name"] = r.name();
  meta["tiers"] = r.tiers();
  std::vector<OwnedTensor> ts;
  const auto K = static_cast<int64_t>(r.tiers().size());
  if (kind == "neural") {
    meta["checkpoint"] = kNeuralDir;
    dynamic_cast<const NeuralRouter&>(r).save((dir / kNeuralDir).string());
  } else if (kind == "random") {
    meta["seed"] = dynamic_cast<const detail::RandomRouter&>(r).seed();
  } else if (kind == "always-tier") {
    meta["tier"] = dynamic_cast<const detail::AlwaysRouter&>(r).tier();
  } else if (kind == "task-prior") {
    const auto& m = dynamic_cast<const detail::TaskPriorRouter&>(r);
    meta["overall"] = m.overall();
    json tasks = json::array(), rates = json::array();
    for (const auto& [task, row] : m.rates()) {
      tasks.push_back(task);
      rates.push_back(row);
    }
    meta["tasks"] = tasks;
    meta["rates"] = rates;
  } else if (kind == "tfidf-logreg") {
    const auto& m = dynamic_cast<const detail::LogRegRouter&>(r);
    meta["l2"] = m.options().l2;
    meta["iterations"] = m.options().iterations;
    meta["task_features"] = m.options().task_features;
    meta["tasks"] = m.tasks().names();
    write_tfidf(m.vectorizer(), dir, meta, ts);
    const size_t cols = detail::LogRegRouter::feature_count(m.vectorizer(), m.tasks(),
                                                            m.options().task_features);
    std::vector<double> w;
    for (const auto& row : m.weights()) w.insert(w.end(), row.data(), row.data() + row.size());
    ts.push_back(f64_tensor("weights", {K, static_cast<int64_t>(cols)}, w));
    ts.push_back(f64_tensor("bias", {K}, m.biases()));
  } else if (kind == "knn-tfidf") {
    const auto& m = dynamic_cast<const detail::KnnRouter&>(r);
    meta["k"] = m.options().k;
    meta["same_task_only"] = m.options().same_task_only;
    meta["tasks"] = m.tasks().names();
    meta["rows"] = m.labels().size();
    write_tfidf(*m.vectorizer(), dir, meta, ts);
    ts.push_back(f64_tensor("overall", {K}, m.overall()));
    const auto n = static_cast<int64_t>(m.labels().size());
    std::vector<int32_t> labels, task(m.train_task().begin(), m.train_task().end());
    for (const auto& row : m.labels()) labels.insert(labels.end(), row.begin(), row.end());
    ts.push_back(int_tensor("labels", DType::I32, {n, K}, labels));
    ts.push_back(int_tensor("train_task", DType::I32, {n}, task));
    // The training vectors are TF-IDF rows: stored sparse (CSR), not as the dense matrix.
    const Eigen::MatrixXf& e = m.embeddings();
    std::vector<int64_t> offsets{0};
    std::vector<int32_t> cols;
    std::vector<float> vals;
    for (Eigen::Index i = 0; i < e.rows(); ++i) {
      for (Eigen::Index j = 0; j < e.cols(); ++j)
        if (e(i, j) != 0.0f) {
          cols.push_back(static_cast<int32_t>(j));
          vals.push_back(e(i, j));
        }
      offsets.push_back(static_cast<int64_t>(cols.size()));
    }
    const auto nnz = static_cast<int64_t>(cols.size());
    ts.push_back(int_tensor("vectors.row_offsets", DType::I64, {n + 1}, offsets));
    ts.push_back(int_tensor("vectors.columns", DType::I32, {nnz}, cols));
    ts.push_back(f32_tensor("vectors.values", {nnz}, vals));
  } else if (kind == "mf") {
    const auto& m = dynamic_cast<const detail::MfRouter&>(r);
    meta["tasks"] = m.tasks().names();
    meta["dim"] = m.projection().rows();
    write_tfidf(m.vectorizer(), dir, meta, ts);
    const auto& P = m.projection();
    const auto& V = m.tier_embeddings();
    const auto& T = m.task_embeddings();
    ts.push_back(f64_tensor("projection", {P.rows(), P.cols()}, row_major(P)));
    ts.push_back(f64_tensor("tier_embeddings", {V.rows(), V.cols()}, row_major(V)));
    ts.push_back(f64_tensor("task_embeddings", {T.rows(), T.cols()}, row_major(T)));
    ts.push_back(f64_tensor("bias", {K}, std::vector<double>(m.biases().data(),
                                                             m.biases().data() + K)));
  } else if (kind == "stacked") {
    std::vector<std::shared_ptr<const RouterModel>> bases;
    StackWeights w;
    detail::stacked_parts(r, bases, w);
    meta["bases"] = bases.size();
    meta["weights"] = w;
    for (size_t j = 0; j < bases.size(); ++j) {
      fs::path sub = dir / base_dir(j);
      std::error_code ec;
      if (!fs::create_directory(sub, ec) || ec)
        throw Error(Status::io, "cannot create directory " + sub.string() + ": " + ec.message());
      std::string why;
      write_dir(*bases[j], kind_of(*bases[j], why), sub);
    }
  } else {
    throw Error(Status::internal, "save_router: unhandled kind " + kind);
  }
  if (!ts.empty()) write_tensors(dir / kWeights, ts);
  std::string text;
  try {
    text = meta.dump(2) + "\n";
  } catch (const json::exception& e) {  // a tier or task name that is not UTF-8
    throw Error(Status::invalid_argument,
                "save_router: " + (dir / kMeta).string() + ": cannot write: " + e.what());
  }
  detail::write_file_atomic((dir / kMeta).string(), text);
}

// ---- reading -----------------------------------------------------------------------------------

// router.json with typed, checked accessors; every failure names the file and field.
class Meta {
 public:
  explicit Meta(fs::path dir) : dir_(std::move(dir)), path_((dir_ / kMeta).string()) {
    std::string text = detail::read_file(path_, kMaxMetaBytes);
    // Duplicate keys are errors (as in the project's strict JSON reader), not "last one wins".
    std::vector<std::set<std::string>> open;
    auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
      if (depth > kMaxJsonNesting) fail("<root>", "JSON nested too deeply");
      if (ev == json::parse_event_t::object_start) {
        open.emplace_back();
      } else if (ev == json::parse_event_t::object_end) {
        if (!open.empty()) open.pop_back();
      } else if (ev == json::parse_event_t::key && !open.empty()) {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!open.back().insert(key).second) fail(key, "duplicate key");
      }
      return true;
    };
    try {
      j_ = json::parse(text, cb);
    } catch (const json::exception& e) {
      throw Error(Status::parse, path_ + ": invalid JSON: " + e.what());
    }
    if (!j_.is_object()) fail("<root>", "expected an object");
  }

  const std::string& path() const { return path_; }
  const fs::path& dir() const { return dir_; }
  fs::path file(const char* name) const { return dir_ / name; }
  bool has(const char* key) const { return j_.contains(key); }

  [[noreturn]] void fail(const std::string& field, const std::string& why,
                         Status st = Status::parse) const {
    throw Error(st, path_ + ": " + field + ": " + why);
  }

  const json& need(const std::string& key) const {
    auto it = j_.find(key);
    if (it == j_.end()) fail(key, "missing");
    return *it;
  }
  void only_keys(const std::set<std::string>& allowed) const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!allowed.count(it.key())) fail(it.key(), "unknown key");
  }

  std::string str(const std::string& key) const {
    const json& v = need(key);
    if (!v.is_string()) fail(key, "expected a string");
    return v.get_ref<const std::string&>();
  }
  bool boolean(const json& v, const std::string& field) const {
    if (!v.is_boolean()) fail(field, "expected true/false");
    return v.get<bool>();
  }
  bool boolean(const std::string& key) const { return boolean(need(key), key); }
  uint64_t u64(const json& v, const std::string& field) const {
    if (!v.is_number_unsigned()) fail(field, "expected a non-negative integer");
    return v.get<uint64_t>();
  }
  uint64_t u64(const std::string& key) const { return u64(need(key), key); }
  // A non-negative integer at most `max`.
  size_t count(const json& v, const std::string& field, uint64_t max) const {
    uint64_t x = u64(v, field);
    if (x > max) fail(field, fmt::format("{} exceeds {}", x, max));
    return static_cast<size_t>(x);
  }
  size_t count(const std::string& key, uint64_t max) const { return count(need(key), key, max); }
  double number(const json& v, const std::string& field) const {
    if (!v.is_number()) fail(field, "expected a number");
    double x = v.get<double>();
    if (!std::isfinite(x)) fail(field, "not finite", Status::model);
    return x;
  }
  double number(const std::string& key) const { return number(need(key), key); }
  // An array of `n` finite numbers (any length when n is npos).
  std::vector<double> numbers(const json& v, const std::string& field,
                              size_t n = std::string::npos) const {
    if (!v.is_array()) fail(field, "expected an array of numbers");
    if (n != std::string::npos && v.size() != n)
      fail(field, fmt::format("{} entries, expected {}", v.size(), n), Status::model);
    std::vector<double> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) out.push_back(number(v[i], fmt::format("{}[{}]", field, i)));
    return out;
  }
  std::vector<std::string> strings(const std::string& key) const {
    const json& v = need(key);
    if (!v.is_array()) fail(key, "expected an array of strings");
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) fail(fmt::format("{}[{}]", key, i), "expected a string");
      out.push_back(v[i].get_ref<const std::string&>());
    }
    return out;
  }

  TfidfOptions tfidf() const {
    const json& v = need("tfidf");
    if (!v.is_object()) fail("tfidf", "expected an object");
    for (auto it = v.begin(); it != v.end(); ++it)
      if (it.key() != "max_features" && it.key() != "min_df" && it.key() != "bigrams")
        fail("tfidf." + it.key(), "unknown key");
    auto member = [&](const char* key) -> const json& {
      auto it = v.find(key);
      if (it == v.end()) fail(std::string("tfidf.") + key, "missing");
      return *it;
    };
    TfidfOptions o;
    o.max_features = count(member("max_features"), "tfidf.max_features", UINT32_MAX);
    o.min_df = count(member("min_df"), "tfidf.min_df", UINT32_MAX);
    o.bigrams = boolean(member("bigrams"), "tfidf.bigrams");
    return o;
  }

  // The training tasks: sorted, unique (the order the task columns were built in).
  detail::TaskIndex tasks() const {
    auto names = strings("tasks");
    try {
      return detail::TaskIndex(names);
    } catch (const Error& e) {
      fail("tasks", e.what());
    }
  }

 private:
  fs::path dir_;
  std::string path_;
  json j_;
};

// weights.safetensors with checked accessors; every failure names the file and tensor.
class Tensors {
 public:
  explicit Tensors(const fs::path& path) : path_(path.string()), f_(read_safetensors(path_)) {}

  [[noreturn]] void fail(const std::string& name, const std::string& why) const {
    throw Error(Status::model, path_ + ": tensor " + name + ": " + why);
  }

  const TensorView& get(const std::string& name, DType dtype,
                        const std::vector<int64_t>& shape) const {
    const TensorView* v = f_.find(name);
    if (!v) fail(name, "missing");
    seen_.insert(name);
    if (v->dtype != dtype)
      fail(name, fmt::format("dtype {}, expected {}", dtype_name(v->dtype), dtype_name(dtype)));
    if (v->shape != shape) fail(name, fmt::format("shape {}, expected {}", dims(v->shape), dims(shape)));
    return *v;
  }
  // Length of a rank-1 tensor (for arrays whose length only the file knows).
  int64_t length(const std::string& name) const {
    const TensorView* v = f_.find(name);
    if (!v) fail(name, "missing");
    if (v->shape.size() != 1) fail(name, fmt::format("shape {}, expected rank 1", dims(v->shape)));
    return v->shape[0];
  }

  std::vector<double> f64(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorView& v = get(name, DType::I64, shape);
    std::vector<double> out(static_cast<size_t>(v.numel()));
    for (size_t i = 0; i < out.size(); ++i) {
      uint64_t u = le(v.data + 8 * i, 8);
      std::memcpy(&out[i], &u, 8);
      if (!std::isfinite(out[i])) fail(name, fmt::format("element {} is not finite", i));
    }
    return out;
  }
  std::vector<float> f32(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorView& v = get(name, DType::F32, shape);
    std::vector<float> out(static_cast<size_t>(v.numel()));
    for (size_t i = 0; i < out.size(); ++i) {
      auto u = static_cast<uint32_t>(le(v.data + 4 * i, 4));
      std::memcpy(&out[i], &u, 4);
      if (!std::isfinite(out[i])) fail(name, fmt::format("element {} is not finite", i));
    }
    return out;
  }
  std::vector<int64_t> ints(const std::string& name, DType dtype,
                            const std::vector<int64_t>& shape) const {
    const TensorView& v = get(name, dtype, shape);
    const size_t n = dtype_size(dtype);
    std::vector<int64_t> out(static_cast<size_t>(v.numel()));
    for (size_t i = 0; i < out.size(); ++i) {
      uint64_t u = le(v.data + n * i, static_cast<int>(n));
      if (n == 4) u = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(u)));
      out[i] = static_cast<int64_t>(u);
    }
    return out;
  }
  // Every tensor in the file was asked for.
  void no_extra() const {
    for (const auto& t : f_.tensors())
      if (!seen_.count(t.name)) fail(t.name, "unexpected");
  }

 private:
  static uint64_t le(const unsigned char* p, int n) {
    uint64_t u = 0;
    for (int i = 0; i < n; ++i) u |= static_cast<uint64_t>(p[i]) << (8 * i);
    return u;
  }
  static std::string dims(const std::vector<int64_t>& s) {
    std::string out;
    for (auto d : s) out += (out.empty() ? "" : ",") + std::to_string(d);
    return "[" + out + "]";
  }
  std::string path_;
  SafetensorsFile f_;
  mutable std::set<std::string> seen_;
};

// A term tokenize_words() could have produced: lower-case ASCII letters, digits and non-ASCII
// bytes, with one inner space in a bigram. A term that can never match (e.g. one ending in the
// \r of converted line endings) would silently change scores, so it is an error.
bool plausible_term(const std::string& t) {
  if (t.empty() || t.front() == ' ' || t.back() == ' ') return false;
  int spaces = 0;
  for (unsigned char c : t) {
    if (c == ' ') {
      ++spaces;
      continue;
    }
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c >= 0x80)) return false;
  }
  return spaces <= 1;
}

detail::TfidfVectorizer read_tfidf(const Meta& meta, const Tensors& ts) {
  const size_t n = meta.count("vocabulary_size", UINT32_MAX);
  const TfidfOptions opt = meta.tfidf();
  auto idf = ts.f64("tfidf.idf", {static_cast<int64_t>(n)});
  const std::string path = meta.file(kTerms).string();
  const std::string text = detail::read_file(path);
  if (!text.empty() && text.back() != '\n')
    throw Error(Status::model, path + ": truncated (the last term has no newline)");
  std::vector<std::string> terms;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    terms.push_back(text.substr(pos, nl - pos));
    if (!plausible_term(terms.back()))
      throw Error(Status::model,
                  fmt::format("{}: line {}: not a TF-IDF term (a word, or two words and one "
                              "space; a \\r means the file's line endings were converted)",
                              path, terms.size()));
    pos = nl + 1;
  }
  if (terms.size() != n)
    throw Error(Status::model, fmt::format("{}: {} terms, but {} vocabulary_size is {}", path,
                                           terms.size(), meta.path(), n));
  try {
    return detail::TfidfVectorizer(detail::tfidf_config(opt), terms, std::move(idf));
  } catch (const Error& e) {
    throw Error(Status::model, path + ": " + e.what());
  }
}

Eigen::MatrixXd matrix(const std::vector<double>& v, int64_t rows, int64_t cols) {
  Eigen::MatrixXd m(rows, cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) m(i, j) = v[static_cast<size_t>(i * cols + j)];
  return m;
}

const std::set<std::string> kCommonKeys{"format", "format_version", "kind", "name", "tiers"};
std::set<std::string> keys_with(std::initializer_list<const char*> more) {
  std::set<std::string> s = kCommonKeys;
  s.insert(more.begin(), more.end());
  return s;
}

std::shared_ptr<const RouterModel> load_neural(const fs::path& dir, const std::string& meta_path,
                                               const RouterRuntime& rt) {
  try {
    return std::make_shared<NeuralRouter>(NeuralRouter::load(dir.string(), rt));
  } catch (const Error& e) {
    if (e.code() != Status::not_supported) throw;  // NeuralRouter::load names its own files
    throw Error(Status::not_supported, meta_path + ": kind \"neural\": " + e.what());
  }
}

std::shared_ptr<const RouterModel> load_dir(const fs::path& dir, int depth, const RouterRuntime& rt);

std::shared_ptr<const RouterModel> load_kind(const Meta& meta, const std::string& kind,
                                             const std::vector<std::string>& tiers, int depth,
                                             const RouterRuntime& rt) {
  const size_t K = tiers.size();
  const auto Ki = static_cast<int64_t>(K);
  if (kind == "neural") {
    meta.only_keys(keys_with({"checkpoint"}));
    const std::string sub = meta.str("checkpoint");
    if (sub != kNeuralDir) meta.fail("checkpoint", "expected \"" + std::string(kNeuralDir) + "\"");
    return load_neural(meta.dir() / sub, meta.path(), rt);
  }
  if (kind == "random") {
    meta.only_keys(keys_with({"seed"}));
    return std::make_shared<detail::RandomRouter>(tiers, meta.u64("seed"));
  }
  if (kind == "always-tier") {
    meta.only_keys(keys_with({"tier"}));
    const size_t k = meta.count("tier", UINT32_MAX);
    if (k >= K) meta.fail("tier", fmt::format("{} out of range for {} tiers", k, K), Status::model);
    return std::make_shared<detail::AlwaysRouter>(tiers, static_cast<int>(k));
  }
  if (kind == "task-prior") {
    meta.only_keys(keys_with({"overall", "tasks", "rates"}));
    auto overall = meta.numbers(meta.need("overall"), "overall", K);
    auto names = meta.strings("tasks");
    const json& rates = meta.need("rates");
    if (!rates.is_array() || rates.size() != names.size())
      meta.fail("rates", fmt::format("expected an array of {} rows (one per task)", names.size()),
                Status::model);
    std::map<std::string, std::vector<double>> table;
    for (size_t i = 0; i < names.size(); ++i)
      if (!table.emplace(names[i], meta.numbers(rates[i], fmt::format("rates[{}]", i), K)).second)
        meta.fail(fmt::format("tasks[{}]", i), "duplicate task '" + names[i] + "'");
    return std::make_shared<detail::TaskPriorRouter>(tiers, std::move(overall), std::move(table));
  }
  if (kind == "tfidf-logreg") {
    meta.only_keys(keys_with({"l2", "iterations", "task_features", "tasks", "tfidf",
                              "vocabulary_size"}));
    LogRegOptions opt;
    opt.l2 = meta.number("l2");
    opt.iterations = static_cast<int>(meta.count("iterations", INT32_MAX));
    opt.task_features = meta.boolean("task_features");
    auto tasks = meta.tasks();
    Tensors ts(meta.file(kWeights));
    auto vec = read_tfidf(meta, ts);
    opt.tfidf = detail::tfidf_options(vec.config());
    const auto cols = static_cast<int64_t>(
        detail::LogRegRouter::feature_count(vec, tasks, opt.task_features));
    auto w = ts.f64("weights", {Ki, cols});
    auto b = ts.f64("bias", {Ki});
    ts.no_extra();
    std::vector<Eigen::VectorXd> rows;
    for (int64_t k = 0; k < Ki; ++k)
      rows.emplace_back(Eigen::Map<const Eigen::VectorXd>(w.data() + k * cols, cols));
    return std::make_shared<detail::LogRegRouter>(tiers, opt, std::move(vec), std::move(tasks),
                                                  std::move(rows), std::move(b));
  }
  if (kind == "knn-tfidf") {
    meta.only_keys(keys_with({"k", "same_task_only", "tasks", "rows", "tfidf", "vocabulary_size"}));
    KnnOptions opt;
    opt.k = meta.count("k", UINT32_MAX);
    if (opt.k < 1) meta.fail("k", "must be >= 1", Status::model);
    opt.same_task_only = meta.boolean("same_task_only");
    auto tasks = meta.tasks();
    const size_t n = meta.count("rows", INT32_MAX);
    const auto ni = static_cast<int64_t>(n);
    if (n == 0) meta.fail("rows", "no training rows", Status::model);
    Tensors ts(meta.file(kWeights));
    auto vec = read_tfidf(meta, ts);
    opt.tfidf = detail::tfidf_options(vec.config());
    auto overall = ts.f64("overall", {Ki});
    auto lab = ts.ints("labels", DType::I32, {ni, Ki});
    auto task = ts.ints("train_task", DType::I32, {ni});
    std::vector<std::vector<int8_t>> labels(n, std::vector<int8_t>(K));
    for (size_t i = 0; i < n; ++i)
      for (size_t k = 0; k < K; ++k) {
        int64_t a = lab[i * K + k];
        if (a < -1 || a > 1) ts.fail("labels", fmt::format("element [{},{}] is {}, expected -1, 0 or 1", i, k, a));
        labels[i][k] = static_cast<int8_t>(a);
      }
    std::vector<int> train_task(n);
    for (size_t i = 0; i < n; ++i) {
      if (task[i] < -1 || task[i] >= tasks.size())
        ts.fail("train_task", fmt::format("element {} is {}, expected -1..{}", i, task[i], tasks.size() - 1));
      train_task[i] = static_cast<int>(task[i]);
    }
    // Sparse training vectors back to the dense rows that scoring multiplies with.
    const int64_t nnz = ts.length("vectors.columns");
    auto offsets = ts.ints("vectors.row_offsets", DType::I64, {ni + 1});
    auto cols = ts.ints("vectors.columns", DType::I32, {nnz});
    auto vals = ts.f32("vectors.values", {nnz});
    ts.no_extra();
    const auto d = static_cast<int64_t>(std::max<size_t>(1, vec.dim()));
    if (offsets.front() != 0 || offsets.back() != nnz)
      ts.fail("vectors.row_offsets", fmt::format("must run from 0 to {} (the number of values)", nnz));
    // Scoring keeps the training vectors dense (as a trained kNN does); refuse sizes no
    // trained router could have reached rather than fail on allocation.
    if (static_cast<double>(ni) * static_cast<double>(d) > kMaxKnnCells)
      meta.fail("rows", fmt::format("{} rows x {} terms exceed the {} dense cells a kNN router may hold",
                                    ni, d, kMaxKnnCells), Status::model);
    Eigen::MatrixXf emb = Eigen::MatrixXf::Zero(ni, d);
    for (int64_t i = 0; i < ni; ++i) {
      const auto a = offsets[static_cast<size_t>(i)], b = offsets[static_cast<size_t>(i) + 1];
      if (b < a) ts.fail("vectors.row_offsets", fmt::format("decreases at row {}", i));
      for (int64_t p = a; p < b; ++p) {
        const int64_t c = cols[static_cast<size_t>(p)];
        if (c < 0 || c >= d || (p > a && c <= cols[static_cast<size_t>(p) - 1]))
          ts.fail("vectors.columns",
                  fmt::format("entry {} ({}) out of range 0..{} or not increasing in row {}", p, c,
                              d - 1, i));
        emb(i, c) = vals[static_cast<size_t>(p)];
      }
    }
    return std::make_shared<detail::KnnRouter>(tiers, opt, std::move(vec), std::move(tasks),
                                               std::move(labels), std::move(train_task),
                                               std::move(overall), std::move(emb));
  }
  if (kind == "mf") {
    meta.only_keys(keys_with({"tasks", "dim", "tfidf", "vocabulary_size"}));
    auto tasks = meta.tasks();
    const auto r = static_cast<int64_t>(meta.count("dim", 1u << 16));
    if (r < 1) meta.fail("dim", "must be >= 1", Status::model);
    Tensors ts(meta.file(kWeights));
    auto vec = read_tfidf(meta, ts);
    const auto d = static_cast<int64_t>(std::max<size_t>(1, vec.dim()));
    const auto T = static_cast<int64_t>(tasks.size()) + 1;
    auto P = matrix(ts.f64("projection", {r, d}), r, d);
    auto V = matrix(ts.f64("tier_embeddings", {Ki, r}), Ki, r);
    auto Tm = matrix(ts.f64("task_embeddings", {T, r}), T, r);
    auto bv = ts.f64("bias", {Ki});
    ts.no_extra();
    Eigen::VectorXd b = Eigen::Map<const Eigen::VectorXd>(bv.data(), Ki);
    return std::make_shared<detail::MfRouter>(tiers, std::move(vec), std::move(tasks), std::move(P),
                                              std::move(V), std::move(Tm), std::move(b));
  }
  if (kind == "stacked") {
    meta.only_keys(keys_with({"bases", "weights"}));
    if (depth >= kMaxDepth)
      meta.fail("kind", fmt::format("stacks nested deeper than {} levels", kMaxDepth), Status::model);
    const size_t nb = meta.count("bases", 1024);
    if (nb == 0) meta.fail("bases", "no base routers", Status::model);
    const json& wj = meta.need("weights");
    if (!wj.is_array() || wj.size() != K)
      meta.fail("weights", fmt::format("expected an array of {} rows (one per tier)", K), Status::model);
    StackWeights w;
    for (size_t k = 0; k < K; ++k) w.push_back(meta.numbers(wj[k], fmt::format("weights[{}]", k), nb + 1));
    std::vector<std::shared_ptr<const RouterModel>> bases;
    for (size_t j = 0; j < nb; ++j) {
      fs::path sub = meta.dir() / base_dir(j);
      auto b = load_dir(sub, depth + 1, rt);
      if (b->tiers() != tiers)
        throw Error(Status::model, fmt::format("{}: tiers {} disagree with {}: tiers {}",
                                               (sub / kMeta).string(), join(b->tiers()),
                                               meta.path(), join(tiers)));
      bases.push_back(std::move(b));
    }
    try {
      return make_stacked_router(std::move(bases), std::move(w));
    } catch (const Error& e) {
      throw Error(Status::model, meta.path() + ": " + e.what());
    }
  }
  meta.fail("kind", "unknown router kind \"" + kind + "\"");
}

std::shared_ptr<const RouterModel> load_dir(const fs::path& dir, int depth, const RouterRuntime& rt) {
  const Meta meta(dir);
  try {
    // A checkpoint written by NeuralRouter::save directly loads as the neural kind.
    if (meta.has("format") && meta.need("format").is_string() &&
        meta.str("format") == kNeuralFormat && !meta.has("kind"))
      return load_neural(dir, meta.path(), rt);
    if (meta.str("format") != kFormat)
      meta.fail("format", "not a routenlp router (expected \"" + std::string(kFormat) + "\")");
    const json& ver = meta.need("format_version");
    if (!ver.is_number_unsigned() || ver.get<uint64_t>() < 1 || ver.get<uint64_t>() > static_cast<uint64_t>(kFormatVersion))
      meta.fail("format_version", "unsupported (this build reads 1.." + std::to_string(kFormatVersion) + ")");
    const std::string kind = meta.str("kind");
    const std::string name = meta.str("name");
    auto tiers = meta.strings("tiers");
    if (tiers.empty()) meta.fail("tiers", "empty", Status::model);
    for (size_t k = 0; k < tiers.size(); ++k)
      for (size_t m = 0; m < k; ++m)
        if (tiers[k] == tiers[m])
          meta.fail(fmt::format("tiers[{}]", k), "duplicate tier '" + tiers[k] + "'", Status::model);
    auto r = load_kind(meta, kind, tiers, depth, rt);
    // What the files built must be what was saved (a neural checkpoint carries its own tiers).
    if (r->tiers() != tiers)
      meta.fail("tiers", fmt::format("{} but the loaded router has {}", join(tiers), join(r->tiers())),
                Status::model);
    if (r->name() != name)
      meta.fail("name", fmt::format("\"{}\" but the loaded router is \"{}\"", name, r->name()),
                Status::model);
    return r;
  } catch (const json::exception& e) {  // a check above missed a type: still name the file
    throw Error(Status::parse, meta.path() + ": " + e.what());
  }
}

}  // namespace

std::string router_kind(const RouterModel& router) {
  std::string why;
  return kind_of(router, why);
}

void save_router(const RouterModel& router, const std::string& dir) {
  std::string why;
  const std::string kind = kind_of(router, why);
  if (kind.empty())
    throw Error(Status::not_supported, "save_router: router '" + router.name() + "': " + why);
  detail::write_dir_atomic(dir, "save_router", [&](const fs::path& tmp) { write_dir(router, kind, tmp); });
}

std::shared_ptr<const RouterModel> load_router(const std::string& dir) {
  return load_router(dir, RouterRuntime{});
}

std::shared_ptr<const RouterModel> load_router(const std::string& dir, const RouterRuntime& runtime) {
  if (dir.empty()) throw Error(Status::invalid_argument, "load_router: empty directory");
  // Checked for every kind, so a device this host lacks fails whatever the artifact holds.
  NeuralRouter::resolve_device(runtime);
  return load_dir(fs::path(dir), 0, runtime);
}

}  // namespace routenlp
