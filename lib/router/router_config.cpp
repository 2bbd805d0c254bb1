// RouterTrainConfig <-> JSON (no libtorch needed). Unknown keys are errors naming the key.
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "common/json_int.hpp"
#include "common/text_io.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router/neural.hpp"

namespace routenlp {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& field, const std::string& why) {
  throw Error(Status::parse, source + ": " + field + ": " + why);
}

void check_keys(const json& j, const std::set<std::string>& allowed, const std::string& source,
                const std::string& where) {
  if (!j.is_object()) fail(source, where.empty() ? "<root>" : where, "expected an object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!allowed.count(it.key()))
      fail(source, where.empty() ? it.key() : where + "." + it.key(), "unknown key");
}

template <class T>
void get(const json& j, const char* key, T& out, const std::string& source,
         const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return;
  std::string field = where.empty() ? key : where + "." + key;
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) fail(source, field, "expected true/false");
      out = it->template get<bool>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) fail(source, field, "expected a string");
      out = it->template get<std::string>();
    } else if constexpr (std::is_integral_v<T>) {
      out = detail::json_int<T>(*it, source, field);  // a JSON integer within T's range
    } else {
      if (!it->is_number()) fail(source, field, "expected a number");
      out = it->template get<T>();
      if (!std::isfinite(static_cast<double>(out))) fail(source, field, "not finite");
    }
  } catch (const json::exception& e) {
    fail(source, field, e.what());
  }
}

}  // namespace

RouterTrainConfig RouterTrainConfig::from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
    throw Error(Status::parse, source + ": invalid JSON: " + e.what());
  }
  RouterTrainConfig c;
  check_keys(j, {"model", "loss", "epochs", "batch_size", "learning_rate", "weight_decay",
                 "warmup_fraction", "patience", "early_stop_metric", "validation_fraction",
                 "task_dropout", "seed", "threads", "comment"},
             source, "");
  if (auto it = j.find("model"); it != j.end()) {
    const json& m = *it;
    check_keys(m, {"encoder", "hf_dir", "vocab_path", "max_length", "pooling", "task_dim",
                   "hidden", "dropout", "prior_offset"},
               source, "model");
    if (auto e = m.find("encoder"); e != m.end()) {
      if (!e->is_object()) fail(source, "model.encoder", "expected an object (HF config.json keys)");
      c.model.encoder = EncoderConfig::from_hf_config_json_string(e->dump(), source + ": model.encoder");
    }
    get(m, "hf_dir", c.model.hf_dir, source, "model");
    get(m, "vocab_path", c.model.vocab_path, source, "model");
    get(m, "max_length", c.model.max_length, source, "model");
    std::string pooling = c.model.pooling == Pooling::mean ? "mean" : "cls";
    get(m, "pooling", pooling, source, "model");
    if (pooling == "cls") c.model.pooling = Pooling::cls;
    else if (pooling == "mean") c.model.pooling = Pooling::mean;
    else fail(source, "model.pooling", "expected \"cls\" or \"mean\"");
    get(m, "task_dim", c.model.task_dim, source, "model");
    get(m, "hidden", c.model.hidden, source, "model");
    get(m, "dropout", c.model.dropout, source, "model");
    get(m, "prior_offset", c.model.prior_offset, source, "model");
  }
  if (auto it = j.find("loss"); it != j.end()) {
    const json& l = *it;
    check_keys(l, {"bce_weight", "ranking_weight", "ranking_margin", "difficulty_weight",
                   "quality_weight"},
               source, "loss");
    get(l, "bce_weight", c.loss.bce_weight, source, "loss");
    get(l, "ranking_weight", c.loss.ranking_weight, source, "loss");
    get(l, "ranking_margin", c.loss.ranking_margin, source, "loss");
    get(l, "difficulty_weight", c.loss.difficulty_weight, source, "loss");
    get(l, "quality_weight", c.loss.quality_weight, source, "loss");
  }
  get(j, "epochs", c.epochs, source, "");
  get(j, "batch_size", c.batch_size, source, "");
  get(j, "learning_rate", c.learning_rate, source, "");
  get(j, "weight_decay", c.weight_decay, source, "");
  get(j, "warmup_fraction", c.warmup_fraction, source, "");
  get(j, "patience", c.patience, source, "");
  get(j, "early_stop_metric", c.early_stop_metric, source, "");
  get(j, "validation_fraction", c.validation_fraction, source, "");
  get(j, "task_dropout", c.task_dropout, source, "");
  get(j, "seed", c.seed, source, "");
  get(j, "threads", c.threads, source, "");
  // Range checks.
  auto bad = [&](bool cond, const char* field, const char* why) {
    if (cond) fail(source, field, why);
  };
  bad(c.model.max_length < 2, "model.max_length", "must be >= 2");
  bad(c.model.task_dim < 1, "model.task_dim", "must be >= 1");
  bad(c.model.hidden < 1, "model.hidden", "must be >= 1");
  bad(c.model.dropout < 0 || c.model.dropout >= 1, "model.dropout", "must be in [0,1)");
  bad(c.epochs < 1, "epochs", "must be >= 1");
  bad(c.batch_size < 1, "batch_size", "must be >= 1");
  bad(!(c.learning_rate > 0), "learning_rate", "must be > 0");
  bad(c.weight_decay < 0, "weight_decay", "must be >= 0");
  bad(c.warmup_fraction < 0 || c.warmup_fraction > 1, "warmup_fraction", "must be in [0,1]");
  bad(c.patience < 0, "patience", "must be >= 0");
  bad(c.early_stop_metric != "loss" && c.early_stop_metric != "auc", "early_stop_metric",
      "expected \"loss\" or \"auc\"");
  bad(c.validation_fraction < 0 || c.validation_fraction >= 1, "validation_fraction",
      "must be in [0,1)");
  bad(c.task_dropout < 0 || c.task_dropout > 1, "task_dropout", "must be in [0,1]");
  bad(c.threads < 0, "threads", "must be >= 0");
  bad(c.loss.bce_weight < 0 || c.loss.ranking_weight < 0 || c.loss.difficulty_weight < 0 ||
          c.loss.quality_weight < 0,
      "loss", "weights must be >= 0");
  return c;
}

RouterTrainConfig RouterTrainConfig::load(const std::string& path) {
  return from_json(detail::read_file(path), path);
}

std::string RouterTrainConfig::to_json() const {
  json j;
  json m;
  m["encoder"] = json::parse(model.encoder.to_hf_config_json());
  m["hf_dir"] = model.hf_dir;
  m["vocab_path"] = model.vocab_path;
  m["max_length"] = model.max_length;
  m["pooling"] = model.pooling == Pooling::mean ? "mean" : "cls";
  m["task_dim"] = model.task_dim;
  m["hidden"] = model.hidden;
  m["dropout"] = model.dropout;
  m["prior_offset"] = model.prior_offset;
  j["model"] = m;
  j["loss"] = {{"bce_weight", loss.bce_weight},
               {"ranking_weight", loss.ranking_weight},
               {"ranking_margin", loss.ranking_margin},
               {"difficulty_weight", loss.difficulty_weight},
               {"quality_weight", loss.quality_weight}};
  j["epochs"] = epochs;
  j["batch_size"] = batch_size;
  j["learning_rate"] = learning_rate;
  j["weight_decay"] = weight_decay;
  j["warmup_fraction"] = warmup_fraction;
  j["patience"] = patience;
  j["early_stop_metric"] = early_stop_metric;
  j["validation_fraction"] = validation_fraction;
  j["task_dropout"] = task_dropout;
  j["seed"] = seed;
  j["threads"] = threads;
  return j.dump(2);
}

}  // namespace routenlp
