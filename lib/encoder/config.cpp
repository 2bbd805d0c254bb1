// EncoderConfig (HF DistilBertConfig <-> config.json); std-only so it builds without libtorch.
#include <map>
#include <sstream>

#include "common/text_io.hpp"
#include "encoder/json_lite.hpp"
#include "routenlp/encoder/encoder.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {
namespace js = detail::json;

[[noreturn]] void field_error(const std::string& origin, const std::string& key, const std::string& what) {
  throw Error(Status::parse, origin + ": field '" + key + "': " + what);
}

void get_int(const js::Value& root, const std::string& origin, const char* key, int64_t& out) {
  const js::Value* v = root.find(key);
  if (!v || v->kind == js::Value::Kind::null) return;
  int64_t x = 0;
  if (!v->as_int64(x)) {
    // Accept integral floats such as 768.0.
    if (v->is_number()) {
      double d = v->as_double();
      // Range first: converting a double outside int64_t's range (or inf) is undefined.
      if (d > -9e15 && d < 9e15 && d == static_cast<double>(static_cast<int64_t>(d))) {
        out = static_cast<int64_t>(d);
        return;
      }
    }
    field_error(origin, key, std::string("expected an integer, got ") + js::kind_name(v->kind) +
                                 (v->is_number() ? " " + v->str : ""));
  }
  out = x;
}

void get_double(const js::Value& root, const std::string& origin, const char* key, double& out) {
  const js::Value* v = root.find(key);
  if (!v || v->kind == js::Value::Kind::null) return;
  if (!v->is_number()) field_error(origin, key, std::string("expected a number, got ") + js::kind_name(v->kind));
  out = v->as_double();
}

void get_bool(const js::Value& root, const std::string& origin, const char* key, bool& out) {
  const js::Value* v = root.find(key);
  if (!v || v->kind == js::Value::Kind::null) return;
  if (!v->is_bool()) field_error(origin, key, std::string("expected true/false, got ") + js::kind_name(v->kind));
  out = v->b;
}
}  // namespace

EncoderConfig EncoderConfig::from_hf_config_json(const std::string& path) {
  return from_hf_config_json_string(detail::read_file(path), path);
}

EncoderConfig EncoderConfig::from_hf_config_json_string(const std::string& json, const std::string& origin) {
  js::Value root = js::parse(json, origin);
  if (!root.is_object()) throw Error(Status::parse, origin + ": expected a JSON object");
  if (const js::Value* mt = root.find("model_type")) {
    if (!mt->is_string() || mt->str != "distilbert")
      throw Error(Status::model, origin + ": field 'model_type': expected \"distilbert\", got " +
                                     (mt->is_string() ? "\"" + mt->str + "\"" : js::kind_name(mt->kind)));
  }
  if (const js::Value* act = root.find("activation")) {
    if (!act->is_string() || act->str != "gelu")
      throw Error(Status::not_supported,
                  origin + ": field 'activation': only \"gelu\" is supported, got " +
                      (act->is_string() ? "\"" + act->str + "\"" : js::kind_name(act->kind)));
  }
  EncoderConfig c;
  get_int(root, origin, "vocab_size", c.vocab_size);
  get_int(root, origin, "max_position_embeddings", c.max_position_embeddings);
  get_int(root, origin, "dim", c.dim);
  get_int(root, origin, "n_layers", c.n_layers);
  get_int(root, origin, "n_heads", c.n_heads);
  get_int(root, origin, "hidden_dim", c.hidden_dim);
  get_double(root, origin, "dropout", c.dropout);
  get_double(root, origin, "attention_dropout", c.attention_dropout);
  get_bool(root, origin, "sinusoidal_pos_embds", c.sinusoidal_pos_embds);
  get_int(root, origin, "pad_token_id", c.pad_token_id);
  get_double(root, origin, "initializer_range", c.initializer_range);
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(Status::model, origin + ": " + e.what());
  }
  return c;
}

std::string EncoderConfig::to_hf_config_json() const {
  // Keys sorted like transformers' save_pretrained output.
  std::map<std::string, std::string> kv;
  kv["activation"] = "\"gelu\"";
  kv["architectures"] = "[\n    \"DistilBertModel\"\n  ]";
  kv["attention_dropout"] = js::number(attention_dropout);
  kv["dim"] = std::to_string(dim);
  kv["dropout"] = js::number(dropout);
  kv["hidden_dim"] = std::to_string(hidden_dim);
  kv["initializer_range"] = js::number(initializer_range);
  kv["max_position_embeddings"] = std::to_string(max_position_embeddings);
  kv["model_type"] = "\"distilbert\"";
  kv["n_heads"] = std::to_string(n_heads);
  kv["n_layers"] = std::to_string(n_layers);
  kv["pad_token_id"] = std::to_string(pad_token_id);
  kv["qa_dropout"] = "0.1";
  kv["seq_classif_dropout"] = "0.2";
  kv["sinusoidal_pos_embds"] = sinusoidal_pos_embds ? "true" : "false";
  kv["tie_weights_"] = "true";
  kv["torch_dtype"] = "\"float32\"";
  kv["vocab_size"] = std::to_string(vocab_size);
  std::string out = "{\n";
  size_t i = 0;
  for (const auto& p : kv) {
    out += "  " + js::quote(p.first) + ": " + p.second + (++i < kv.size() ? ",\n" : "\n");
  }
  return out + "}\n";
}

void EncoderConfig::validate() const {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw Error(Status::model, "encoder config: " + msg);
  };
  need(vocab_size > 0 && vocab_size <= (int64_t(1) << 31), "vocab_size must be in 1..2^31");
  need(max_position_embeddings > 0 && max_position_embeddings <= 1 << 20,
       "max_position_embeddings must be in 1..2^20");
  need(dim > 0 && dim <= 1 << 16, "dim must be in 1..65536");
  need(n_layers > 0 && n_layers <= 256, "n_layers must be in 1..256");
  need(n_heads > 0 && dim % n_heads == 0,
       "dim (" + std::to_string(dim) + ") must be a positive multiple of n_heads (" + std::to_string(n_heads) + ")");
  need(hidden_dim > 0 && hidden_dim <= 1 << 18, "hidden_dim must be in 1..262144");
  need(dropout >= 0 && dropout < 1, "dropout must be in [0, 1)");
  need(attention_dropout >= 0 && attention_dropout < 1, "attention_dropout must be in [0, 1)");
  need(pad_token_id >= 0 && pad_token_id < vocab_size, "pad_token_id must be a valid token id");
  need(initializer_range > 0 && initializer_range < 10, "initializer_range must be in (0, 10)");
  need(!sinusoidal_pos_embds || dim % 2 == 0, "sinusoidal_pos_embds needs an even dim");
}

EncoderConfig EncoderConfig::small() {
  EncoderConfig c;  // bert-base-uncased vocabulary size, HF defaults for the rest
  c.max_position_embeddings = 64;
  c.dim = 128;
  c.n_layers = 2;
  c.n_heads = 2;
  c.hidden_dim = 512;
  return c;
}

EncoderConfig EncoderConfig::distilbert_base() { return EncoderConfig{}; }

}  // namespace routenlp

#ifndef ROUTENLP_HAVE_TORCH
// Built without libtorch: the Encoder exists but cannot be created.
namespace routenlp {
struct Encoder::Impl {};
namespace {
[[noreturn]] void no_torch() {
  throw Error(Status::not_supported, "routenlp was built without libtorch (ROUTENLP_WITH_TORCH=OFF): no encoder");
}
}  // namespace
Encoder Encoder::load_hf_dir(const std::string&, const EncoderOptions&) { no_torch(); }
Encoder Encoder::random_init(const EncoderConfig&, uint64_t, const EncoderOptions&) { no_torch(); }
Encoder::Encoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;
Encoder::~Encoder() = default;
std::vector<float> Encoder::embed(const std::vector<std::string>&, size_t) const { no_torch(); }
std::vector<float> Encoder::embed_ids(const std::vector<int64_t>&, const std::vector<int64_t>&, size_t, size_t) const { no_torch(); }
std::vector<float> Encoder::forward_ids(const std::vector<int64_t>&, const std::vector<int64_t>&, size_t, size_t) const { no_torch(); }
void Encoder::save_hf_dir(const std::string&) const { no_torch(); }
int Encoder::dim() const { no_torch(); }
const EncoderConfig& Encoder::config() const { no_torch(); }
const EncoderOptions& Encoder::options() const { no_torch(); }
std::string Encoder::device() const { no_torch(); }
EncoderDType Encoder::dtype() const { no_torch(); }
bool Encoder::has_tokenizer() const { no_torch(); }
}  // namespace routenlp
#endif
