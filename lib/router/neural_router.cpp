// Neural router: module, loss, inference and checkpoints (safetensors + JSON metadata).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.hpp"
#include "common/json_int.hpp"
#include "common/text_io.hpp"
#include "router/neural_impl.hpp"
#include "routenlp/error.hpp"
#include "routenlp/encoder/safetensors.hpp"
#include "text/vocab_lines.hpp"

namespace routenlp {
namespace detail {

RouterNetImpl::RouterNetImpl(const EncoderConfig& ec, int64_t n_tasks, int64_t n_tiers,
                             const NeuralRouterConfig& mc)
    : pooling(mc.pooling) {
  encoder = register_module("encoder", DistilBert(ec));
  task_embedding =
      register_module("task_embedding", torch::nn::Embedding(n_tasks + 1, mc.task_dim));
  hidden = register_module("hidden", torch::nn::Linear(ec.dim + mc.task_dim, mc.hidden));
  acceptability = register_module("acceptability", torch::nn::Linear(mc.hidden, n_tiers));
  difficulty = register_module("difficulty", torch::nn::Linear(mc.hidden, 1));
  quality = register_module("quality", torch::nn::Linear(mc.hidden, n_tiers));
  dropout = register_module("dropout", torch::nn::Dropout(mc.dropout));
  prior_logit = register_parameter("prior_logit", torch::zeros({n_tasks + 1, n_tiers}),
                                   /*requires_grad=*/false);
}

torch::Tensor RouterNetImpl::pool(const torch::Tensor& ids, const torch::Tensor& mask) {
  // The pooled vector is fp32 whatever the encoder's dtype (a bf16/fp16 encoder feeds the fp32
  // heads); for an fp32 encoder .to(kFloat) is the same tensor, so training and CPU scores are
  // untouched.
  auto h = encoder->forward(ids, mask);  // [B,T,dim]
  if (pooling == Pooling::cls) return h.select(1, 0).to(torch::kFloat);
  h = h.to(torch::kFloat);
  auto m = mask.to(h.scalar_type()).unsqueeze(-1);  // [B,T,1]
  return (h * m).sum(1) / m.sum(1).clamp_min(1.0);
}

RouterOutputs RouterNetImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask,
                                     const torch::Tensor& task_ids) {
  RouterOutputs o;
  o.pooled = pool(ids, mask);
  auto z = torch::cat({o.pooled, task_embedding->forward(task_ids)}, 1);
  z = dropout->forward(torch::gelu(hidden->forward(z)));
  o.acc_logits = acceptability->forward(z) + prior_logit.index_select(0, task_ids);
  o.diff_logit = difficulty->forward(z).squeeze(1);
  o.qual_logits = quality->forward(z);
  return o;
}

LossParts router_loss(const RouterOutputs& out, const RouterTargets& t,
                      const RouterLossConfig& c) {
  LossParts p;
  const auto& s = out.acc_logits;
  auto n_obs = t.mask.sum().clamp_min(1.0);
  auto bce = (torch::binary_cross_entropy_with_logits(s, t.y, {}, {}, at::Reduction::None) *
              t.mask).sum() / n_obs;
  // Pairwise ranking within each query: every (acceptable a, unacceptable b) pair of observed
  // tiers contributes softplus(margin - (s_a - s_b)).
  auto good = (t.y * t.mask).unsqueeze(2);                 // [B,K,1]
  auto bad = ((1 - t.y) * t.mask).unsqueeze(1);            // [B,1,K]
  auto pairs = good * bad;                                 // [B,K,K]
  auto diff = s.unsqueeze(2) - s.unsqueeze(1);             // s_a - s_b
  auto rank = (torch::softplus(c.ranking_margin - diff) * pairs).sum() / pairs.sum().clamp_min(1.0);
  // Difficulty: share of observed tiers that fail (rows without outcomes masked).
  auto row_obs = t.mask.sum(1);
  auto row_has = (row_obs > 0).to(torch::kFloat);
  auto fail_share = ((1 - t.y) * t.mask).sum(1) / row_obs.clamp_min(1.0);
  auto dif = (torch::binary_cross_entropy_with_logits(out.diff_logit, fail_share, {}, {},
                                                       at::Reduction::None) *
              row_has).sum() / row_has.sum().clamp_min(1.0);
  auto qual = ((torch::sigmoid(out.qual_logits) - t.quality).pow(2) * t.mask).sum() / n_obs;
  p.total = c.bce_weight * bce + c.ranking_weight * rank + c.difficulty_weight * dif +
            c.quality_weight * qual;
  p.bce = bce.item<double>();
  p.ranking = rank.item<double>();
  p.difficulty = dif.item<double>();
  p.quality = qual.item<double>();
  return p;
}

void tokenize_batch(const WordPieceTokenizer& tok, const std::vector<RouteQuery>& batch,
                    int max_length, torch::Tensor& ids, torch::Tensor& mask) {
  std::vector<std::string> texts;
  texts.reserve(batch.size());
  for (const auto& q : batch) texts.push_back(q.query);
  auto enc = tok.encode_batch(texts, static_cast<size_t>(max_length), true);
  const auto B = static_cast<int64_t>(enc.batch), T = static_cast<int64_t>(enc.seq_len);
  ids = torch::from_blob(enc.ids.data(), {B, T}, torch::kLong).clone();
  mask = torch::from_blob(enc.attention_mask.data(), {B, T}, torch::kLong).clone();
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------

int64_t NeuralRouter::Impl::task_id(const std::string& task) const {
  auto it = std::lower_bound(tasks.begin(), tasks.end(), task);
  if (it == tasks.end() || *it != task) return 0;
  return static_cast<int64_t>(it - tasks.begin()) + 1;
}

detail::RouterOutputs NeuralRouter::Impl::run(const std::vector<RouteQuery>& batch) const {
  torch::Tensor ids, mask;
  detail::tokenize_batch(*tokenizer, batch, config.model.max_length, ids, mask);
  std::vector<int64_t> t;
  t.reserve(batch.size());
  for (const auto& q : batch) t.push_back(task_id(q.task));
  auto task = torch::tensor(t, torch::kLong);
  if (graphs) {
    // One captured graph per (batch, tokens): the whole forward, heads included, is replayed.
    auto out = graphs->run({ids, mask, task}, placed.device, [this](const std::vector<torch::Tensor>& in) {
      auto o = net->forward(in[0], in[1], in[2]);
      return std::vector<torch::Tensor>{o.acc_logits, o.diff_logit};
    });
    detail::RouterOutputs o;
    o.acc_logits = out[0];
    o.diff_logit = out[1];
    return o;
  }
  if (placed.device.is_cpu()) return net->forward(ids, mask, task);
  return net->forward(ids.to(placed.device), mask.to(placed.device), task.to(placed.device));
}

void NeuralRouter::Impl::place(const detail::ResolvedRuntime& r) { detail::place_model(*this, r); }

NeuralRouter::NeuralRouter(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {
  // The Impl is immutable from here on: pack (or snapshot the fused q/k/v of) the weights so CPU
  // fp32 inference takes the encoder's own-kernel path (docs/encoder.md "CPU kernels").
  if (impl_ && impl_->net) detail::prepare_for_inference(*impl_->net->encoder);
}
NeuralRouter::NeuralRouter(NeuralRouter&&) noexcept = default;
NeuralRouter& NeuralRouter::operator=(NeuralRouter&&) noexcept = default;
NeuralRouter::~NeuralRouter() = default;

std::vector<std::string> NeuralRouter::tiers() const { return impl_->tiers; }
std::vector<std::string> NeuralRouter::tasks() const { return impl_->tasks; }
const RouterTrainConfig& NeuralRouter::config() const { return impl_->config; }
int NeuralRouter::max_length() const { return impl_->config.model.max_length; }
std::string NeuralRouter::device() const { return impl_->runtime.device; }
RouterRuntime NeuralRouter::runtime() const { return impl_->runtime; }

std::string NeuralRouter::resolve_device(const RouterRuntime& runtime) {
  return detail::resolve_runtime(runtime.device, runtime.dtype, runtime.cuda_graphs,
                                            runtime.int8_dynamic, "neural router")
      .device.str();
}

std::vector<RouterScores> NeuralRouter::score(const std::vector<RouteQuery>& batch) const {
  std::vector<RouterScores> out(batch.size());
  if (batch.empty()) return out;
  c10::InferenceMode guard;
  auto o = impl_->run(batch);
  auto p = torch::sigmoid(o.acc_logits).to(torch::kCPU, torch::kDouble).contiguous();
  auto d = torch::sigmoid(o.diff_logit).to(torch::kCPU, torch::kDouble).contiguous();
  const auto K = static_cast<size_t>(p.size(1));
  const double* pp = p.data_ptr<double>();
  const double* dp = d.data_ptr<double>();
  for (size_t i = 0; i < batch.size(); ++i) {
    out[i].p_acceptable.assign(pp + i * K, pp + (i + 1) * K);
    out[i].difficulty = dp[i];
    out[i].task_unseen = impl_->task_id(batch[i].task) == 0;
  }
  return out;
}

std::vector<std::vector<float>> NeuralRouter::embed(const std::vector<RouteQuery>& batch) const {
  std::vector<std::vector<float>> out;
  if (batch.empty()) return out;
  c10::InferenceMode guard;
  torch::Tensor ids, mask;
  detail::tokenize_batch(*impl_->tokenizer, batch, impl_->config.model.max_length, ids, mask);
  const auto dev = impl_->placed.device;
  if (!dev.is_cpu()) {
    ids = ids.to(dev);
    mask = mask.to(dev);
  }
  auto pooled = impl_->net->pool(ids, mask).to(torch::kCPU, torch::kFloat).contiguous();
  const auto D = static_cast<size_t>(pooled.size(1));
  const float* pp = pooled.data_ptr<float>();
  for (size_t i = 0; i < batch.size(); ++i) out.emplace_back(pp + i * D, pp + (i + 1) * D);
  return out;
}

TextEmbedder NeuralRouter::embedder() const {
  auto impl = impl_;  // keeps the model alive as long as the embedder
  return [impl](const std::vector<RouteQuery>& batch) {
    NeuralRouter view{impl};
    return view.embed(batch);
  };
}

std::vector<float> NeuralRouter::parameters_flat() const {
  std::vector<float> out;
  for (const auto& kv : impl_->net->named_parameters(true)) {
    auto t = kv.value().detach().to(torch::kCPU, torch::kFloat).contiguous();
    out.insert(out.end(), t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  }
  return out;
}

// ---- checkpoints ------------------------------------------------------------------------------

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kWeights = "router.safetensors";
constexpr const char* kMeta = "router.json";
constexpr const char* kVocab = "vocab.txt";
constexpr int kFormatVersion = 1;

json metadata(const NeuralRouter::Impl& m) {
  json j;
  j["format"] = "routenlp-router";
  j["format_version"] = kFormatVersion;
  j["weights"] = kWeights;
  j["vocab"] = kVocab;
  j["tiers"] = m.tiers;
  j["tasks"] = m.tasks;
  j["encoder_config"] = json::parse(m.encoder_config.to_hf_config_json());
  j["vocab_hash"] = m.vocab_hash;
  j["train_config"] = json::parse(m.config.to_json());
  j["metrics"] = json::parse(m.metrics_json);
  return j;
}

}  // namespace

std::string NeuralRouter::metadata_json() const { return metadata(*impl_).dump(2); }

void NeuralRouter::save(const std::string& dir) const {
  if (dir.empty()) throw Error(Status::invalid_argument, "NeuralRouter::save: empty directory");
  if (impl_->placed.dtype != torch::kFloat || impl_->placed.int8)
    throw Error(Status::invalid_argument,
                "NeuralRouter::save: this router was loaded with a reduced-precision encoder for "
                "inference (its weights are rounded); save the fp32 checkpoint it came from");
  detail::write_dir_atomic(dir, "NeuralRouter::save", [&](const fs::path& tmp) {
    // Weights: every parameter by name, fp32.
    std::vector<std::pair<std::string, torch::Tensor>> ts;
    for (const auto& kv : impl_->net->named_parameters(true))
      ts.emplace_back(kv.key(), kv.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
    std::map<std::string, std::string> meta{{"format", "pt"}, {"routenlp", "router"}};
    write_safetensors((tmp / kWeights).string(), detail::tensor_views(ts), meta);
    detail::write_file_atomic((tmp / kVocab).string(), impl_->vocab_text);
    detail::write_file_atomic((tmp / kMeta).string(), metadata(*impl_).dump(2) + "\n");
  });
}

std::shared_ptr<NeuralRouter::Impl> make_router_impl(const RouterTrainConfig& config,
                                                     const EncoderConfig& ec,
                                                     std::vector<std::string> tiers,
                                                     std::vector<std::string> tasks,
                                                     std::string vocab_text,
                                                     const std::string& vocab_origin) {
  auto impl = std::make_shared<NeuralRouter::Impl>();
  impl->config = config;
  impl->encoder_config = ec;
  impl->tiers = std::move(tiers);
  impl->tasks = std::move(tasks);
  std::sort(impl->tasks.begin(), impl->tasks.end());
  if (impl->tiers.empty()) throw Error(Status::invalid_argument, "neural router: no tiers");
  if (config.model.max_length > ec.max_position_embeddings)
    throw Error(Status::invalid_argument,
                "neural router: max_length " + std::to_string(config.model.max_length) +
                    " exceeds the encoder's max_position_embeddings " +
                    std::to_string(ec.max_position_embeddings));
  // Tokenizer from the vocab bytes, split into lines as from_vocab_file does.
  try {
    impl->tokenizer =
        std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::from_tokens(detail::vocab_lines(vocab_text)));
  } catch (const Error& e) {
    throw Error(e.code(), vocab_origin + ": " + e.what());
  }
  if (static_cast<int64_t>(impl->tokenizer->vocab_size()) > ec.vocab_size)
    throw Error(Status::model, vocab_origin + ": vocabulary has " +
                                   std::to_string(impl->tokenizer->vocab_size()) +
                                   " tokens but the encoder's vocab_size is " +
                                   std::to_string(ec.vocab_size));
  impl->vocab_hash = impl->tokenizer->vocab_hash();
  impl->vocab_text = std::move(vocab_text);
  impl->net = detail::RouterNet(ec, static_cast<int64_t>(impl->tasks.size()),
                                static_cast<int64_t>(impl->tiers.size()), config.model);
  return impl;
}

NeuralRouter NeuralRouter::load(const std::string& dir) { return load(dir, RouterRuntime{}); }

NeuralRouter NeuralRouter::load(const std::string& dir, const RouterRuntime& runtime) {
  // The runtime first: a device this host cannot use fails before any file is read.
  const auto placed = detail::resolve_runtime(runtime.device, runtime.dtype, runtime.cuda_graphs,
                                            runtime.int8_dynamic, "neural router");
  fs::path d(dir);
  const std::string meta_path = (d / kMeta).string();
  json j;
  try {
    j = json::parse(detail::read_file(meta_path));
  } catch (const json::exception& e) {
    throw Error(Status::parse, meta_path + ": invalid JSON: " + e.what());
  }
  auto need = [&](const char* key) -> const json& {
    auto it = j.find(key);
    if (it == j.end()) throw Error(Status::parse, meta_path + ": " + key + ": missing");
    return *it;
  };
  if (need("format") != "routenlp-router")
    throw Error(Status::parse, meta_path + ": format: not a routenlp router checkpoint");
  if (detail::json_int<int>(need("format_version"), meta_path, "format_version") > kFormatVersion)
    throw Error(Status::parse, meta_path + ": format_version: unsupported");
  std::vector<std::string> tiers, tasks;
  try {
    tiers = need("tiers").get<std::vector<std::string>>();
    tasks = need("tasks").get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    throw Error(Status::parse, meta_path + ": tiers/tasks: " + e.what());
  }
  auto ec = EncoderConfig::from_hf_config_json_string(need("encoder_config").dump(),
                                                      meta_path + ": encoder_config");
  auto cfg = RouterTrainConfig::from_json(need("train_config").dump(), meta_path + ": train_config");
  const std::string vocab_path = (d / kVocab).string();
  auto impl = make_router_impl(cfg, ec, tiers, tasks, detail::read_file(vocab_path), vocab_path);
  if (!need("vocab_hash").is_string())
    throw Error(Status::parse, meta_path + ": vocab_hash: expected a string");
  const std::string saved_hash = need("vocab_hash").get<std::string>();
  if (impl->vocab_hash != saved_hash)
    throw Error(Status::model, vocab_path + ": vocabulary hash " + impl->vocab_hash +
                                   " differs from the checkpoint's " + saved_hash);
  if (auto it = j.find("metrics"); it != j.end()) impl->metrics_json = it->dump();
  const std::string wpath = (d / kWeights).string();
  auto f = read_safetensors(wpath);
  {
    torch::NoGradGuard ng;
    std::vector<std::string> missing;
    for (auto& kv : impl->net->named_parameters(true)) {
      const TensorView* v = f.find(kv.key());
      if (!v) {
        missing.push_back(kv.key());
        continue;
      }
      auto& p = kv.value();
      std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
      if (v->dtype != DType::F32 || v->shape != shape)
        throw Error(Status::model, wpath + ": tensor " + kv.key() + ": wrong dtype or shape");
      auto src = torch::empty(shape, torch::kFloat);
      std::memcpy(src.data_ptr<float>(), v->data, v->nbytes);
      p.copy_(src);
    }
    if (!missing.empty())
      throw Error(Status::model, wpath + ": missing tensors: " + missing.front() +
                                     (missing.size() > 1 ? " (+" + std::to_string(missing.size() - 1) + " more)" : ""));
    if (f.tensors().size() != impl->net->named_parameters(true).size())
      throw Error(Status::model, wpath + ": unexpected extra tensors");
  }
  impl->net->eval();
  // Weights are loaded in fp32 on the CPU, then moved; the NeuralRouter constructor snapshots
  // the fused q/k/v weights after the move, on the final device and dtype.
  impl->place(placed);
  return NeuralRouter(std::move(impl));
}

}  // namespace routenlp
