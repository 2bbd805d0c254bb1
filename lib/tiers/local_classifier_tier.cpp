// LocalClassifierTier: DistilBERT encoder (lib/encoder/distilbert.hpp) + mask-mean pooling +
// linear head, trained with AdamW; the one torch translation unit of the co-optimization code.
#include "routenlp/tiers/local_classifier_tier.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "common/atomic_file.hpp"
#include "common/json_int.hpp"
#include "common/text_io.hpp"
#include "coopt/rng.hpp"
#include "encoder/distilbert.hpp"
#include "routenlp/error.hpp"
#include "routenlp/encoder/safetensors.hpp"
#include "routenlp/text/tokenizer.hpp"
#include "router/runtime_device.hpp"
#include "text/vocab_lines.hpp"

namespace fs = std::filesystem;

namespace routenlp {

namespace {

struct ClassifierNetImpl : torch::nn::Module {
  ClassifierNetImpl(const EncoderConfig& c, int64_t classes) {
    encoder = register_module("distilbert", detail::DistilBert(c));
    classifier = register_module("classifier", torch::nn::Linear(c.dim, classes));
  }
  torch::Tensor pool(const torch::Tensor& ids, const torch::Tensor& mask) {
    // fp32 pooling and head whatever the encoder's dtype (no copy for an fp32 encoder).
    torch::Tensor h = encoder->forward(ids, mask).to(torch::kFloat);  // [B,T,D]
    torch::Tensor m = mask.to(h.dtype()).unsqueeze(-1);      // [B,T,1]
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0);         // [B,D]
  }
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask) {
    return classifier->forward(pool(ids, mask));             // [B,C]
  }
  detail::DistilBert encoder{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(ClassifierNet);

using detail::ThreadGuard;

EncoderConfig default_t1_config() {
  EncoderConfig c;
  c.dim = 128;
  c.n_layers = 2;
  c.n_heads = 2;
  c.hidden_dim = 512;
  c.max_position_embeddings = 64;
  return c;
}

}  // namespace

struct LocalClassifierTier::Impl {
  LocalClassifierConfig cfg;
  EncoderConfig ec;
  std::vector<std::string> labels;
  std::map<std::string, int> label_index;
  std::string vocab_text;
  std::shared_ptr<const WordPieceTokenizer> tok;
  ClassifierNet net{nullptr};
  // Where inference runs (load(dir, runtime)); trained tiers keep the CPU default.
  LocalClassifierRuntime runtime;
  detail::ResolvedRuntime placed;
  std::unique_ptr<detail::GraphCache> graphs;

  // Logits [B,C] (fp32, on the placed device) of CPU ids/mask.
  torch::Tensor logits(const torch::Tensor& ids, const torch::Tensor& mask) {
    if (graphs)
      return graphs->run({ids, mask}, placed.device, [this](const std::vector<torch::Tensor>& in) {
        return std::vector<torch::Tensor>{net->forward(in[0], in[1])};
      })[0];
    if (placed.device.is_cpu()) return net->forward(ids, mask);
    return net->forward(ids.to(placed.device), mask.to(placed.device));
  }
  void place(const detail::ResolvedRuntime& r) { detail::place_model(*this, r); }
  void need_fp32(const char* what) const {
    if (placed.dtype != torch::kFloat || placed.int8)
      throw Error(Status::invalid_argument,
                  std::string("LocalClassifierTier::") + what +
                      ": this tier was loaded with a reduced-precision encoder for inference (its "
                      "weights are rounded); load the directory with the default runtime");
  }

  // Encodes texts to padded [B,T] ids and mask tensors.
  std::pair<torch::Tensor, torch::Tensor> encode(const std::vector<std::string>& texts) const {
    BatchEncoding b = tok->encode_batch(texts, static_cast<size_t>(cfg.max_length), true);
    auto ids = torch::from_blob(const_cast<int64_t*>(b.ids.data()),
                                {static_cast<int64_t>(b.batch), static_cast<int64_t>(b.seq_len)},
                                torch::kInt64)
                   .clone();
    auto mask = torch::from_blob(const_cast<int64_t*>(b.attention_mask.data()),
                                 {static_cast<int64_t>(b.batch), static_cast<int64_t>(b.seq_len)},
                                 torch::kInt64)
                    .clone();
    return {ids, mask};
  }

  // fn(ids, mask) for consecutive batches of at most batch_size texts (0 = 256), autograd off.
  template <class F>
  void for_each_batch(const std::vector<std::string>& texts, size_t batch_size, const F& fn) const {
    if (batch_size == 0) batch_size = 256;
    torch::NoGradGuard ng;
    for (size_t b = 0; b < texts.size(); b += batch_size) {
      const std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(b),
                                           texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), b + batch_size)));
      auto [ids, mask] = encode(chunk);
      fn(ids, mask);
    }
  }
};

namespace {

std::shared_ptr<LocalClassifierTier::Impl> make_impl(const LocalClassifierConfig& cfg, EncoderConfig ec,
                                                     std::vector<std::string> labels, std::string vocab_text,
                                                     const std::string& vocab_origin) {
  if (cfg.max_length < 2) throw Error(Status::invalid_argument, "LocalClassifierTier: max_length must be >= 2");
  if (!(cfg.cost_per_query >= 0.0) || !std::isfinite(cfg.cost_per_query))
    throw Error(Status::invalid_argument, "LocalClassifierTier: cost_per_query must be finite and >= 0");
  if (labels.size() < 2) throw Error(Status::invalid_argument, "LocalClassifierTier: need at least 2 labels");
  auto impl = std::make_shared<LocalClassifierTier::Impl>();
  impl->cfg = cfg;
  impl->cfg.max_length = static_cast<int>(std::min<int64_t>(cfg.max_length, ec.max_position_embeddings));
  // Tokenizer from the vocab text, one token per line (as from_vocab_file reads it).
  std::vector<std::string> tokens = detail::vocab_lines(vocab_text);
  if (tokens.empty()) throw Error(Status::parse, vocab_origin + ": empty vocabulary");
  impl->tok = std::make_shared<const WordPieceTokenizer>(WordPieceTokenizer::from_tokens(tokens));
  if (static_cast<int64_t>(impl->tok->vocab_size()) > ec.vocab_size)
    throw Error(Status::model, vocab_origin + ": " + std::to_string(impl->tok->vocab_size()) +
                                   " tokens but the encoder has vocab_size " + std::to_string(ec.vocab_size));
  ec.validate();
  impl->ec = ec;
  impl->labels = std::move(labels);
  for (size_t i = 0; i < impl->labels.size(); ++i) impl->label_index[impl->labels[i]] = static_cast<int>(i);
  impl->vocab_text = std::move(vocab_text);
  impl->net = ClassifierNet(ec, static_cast<int64_t>(impl->labels.size()));
  return impl;
}

// Trains impl->net in place on rows (already label-indexed).
void run_training(LocalClassifierTier::Impl& impl, const std::vector<std::string>& texts,
                  const std::vector<int64_t>& y, const ClassifierTrainConfig& tc, ProgressCallback progress,
                  ClassifierTrainReport* report) {
  if (tc.epochs < 1 || tc.batch_size < 1 || !(tc.learning_rate > 0.0))
    throw Error(Status::invalid_argument, "ClassifierTrainConfig: epochs, batch_size and learning_rate must be positive");
  auto t0 = std::chrono::steady_clock::now();
  ThreadGuard threads(tc.threads);
  torch::manual_seed(tc.seed);
  const size_t n = texts.size();
  // Pre-tokenise once.
  std::vector<Encoding> enc;
  enc.reserve(n);
  for (auto& t : texts) enc.push_back(impl.tok->encode(t, static_cast<size_t>(impl.cfg.max_length)));
  auto& net = *impl.net;
  // Dropout while training.
  for (auto& m : net.modules(false))
    if (auto* d = m->as<torch::nn::DropoutImpl>()) d->options.p(tc.dropout);
  net.train();
  torch::optim::AdamW opt(net.parameters(),
                          torch::optim::AdamWOptions(tc.learning_rate).weight_decay(tc.weight_decay));
  const size_t steps_per_epoch = (n + static_cast<size_t>(tc.batch_size) - 1) / static_cast<size_t>(tc.batch_size);
  const size_t total_steps = steps_per_epoch * static_cast<size_t>(tc.epochs);
  const size_t warm = static_cast<size_t>(std::ceil(tc.warmup_fraction * static_cast<double>(total_steps)));
  coopt::Rng rng(tc.seed ^ 0x636c617373696679ull);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  size_t step = 0;
  if (report) report->epoch_loss.clear();
  for (int ep = 0; ep < tc.epochs; ++ep) {
    for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    double loss_sum = 0.0;
    for (size_t b = 0; b < n; b += static_cast<size_t>(tc.batch_size)) {
      size_t e = std::min(n, b + static_cast<size_t>(tc.batch_size));
      size_t T = 0;
      for (size_t k = b; k < e; ++k) T = std::max(T, enc[order[k]].ids.size());
      auto ids = torch::full({static_cast<int64_t>(e - b), static_cast<int64_t>(T)}, impl.tok->pad_id(), torch::kInt64);
      auto mask = torch::zeros({static_cast<int64_t>(e - b), static_cast<int64_t>(T)}, torch::kInt64);
      auto target = torch::empty({static_cast<int64_t>(e - b)}, torch::kInt64);
      auto ia = ids.accessor<int64_t, 2>();
      auto ma = mask.accessor<int64_t, 2>();
      auto ta = target.accessor<int64_t, 1>();
      for (size_t k = b; k < e; ++k) {
        const auto& en = enc[order[k]];
        for (size_t t = 0; t < en.ids.size(); ++t) {
          ia[static_cast<int64_t>(k - b)][static_cast<int64_t>(t)] = en.ids[t];
          ma[static_cast<int64_t>(k - b)][static_cast<int64_t>(t)] = 1;
        }
        ta[static_cast<int64_t>(k - b)] = y[order[k]];
      }
      double lr_scale = step < warm ? static_cast<double>(step + 1) / static_cast<double>(warm)
                                    : std::max(0.0, static_cast<double>(total_steps - step) /
                                                        static_cast<double>(std::max<size_t>(1, total_steps - warm)));
      for (auto& g : opt.param_groups())
        static_cast<torch::optim::AdamWOptions&>(g.options()).lr(tc.learning_rate * lr_scale);
      opt.zero_grad();
      auto logits = net.forward(ids, mask);
      auto loss = torch::nn::functional::cross_entropy(logits, target);
      double lv = loss.item<double>();
      if (!std::isfinite(lv)) throw Error(Status::model, "LocalClassifierTier: training loss is not finite");
      loss.backward();
      torch::nn::utils::clip_grad_norm_(net.parameters(), 1.0);
      opt.step();
      loss_sum += lv * static_cast<double>(e - b);
      ++step;
    }
    double el = loss_sum / static_cast<double>(n);
    if (report) report->epoch_loss.push_back(el);
    if (progress) {
      Progress p;
      p.stage = "train";
      p.done = static_cast<size_t>(ep + 1);
      p.total = static_cast<size_t>(tc.epochs);
      p.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      p.eta_s = p.elapsed_s / p.done * (p.total - p.done);
      p.detail = "loss " + std::to_string(el);
      if (!progress(p)) throw Error(Status::cancelled, "LocalClassifierTier: training cancelled");
    }
  }
  net.eval();
  if (report) {
    report->rows = n;
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
}

void copy_parameters(ClassifierNetImpl& dst, ClassifierNetImpl& src) {
  torch::NoGradGuard ng;
  auto s = src.named_parameters(true);
  for (auto& p : dst.named_parameters(true)) p.value().copy_(s[p.key()]);
}

double accuracy(const LocalClassifierTier& t, const std::vector<std::string>& texts, const std::vector<int64_t>& y) {
  auto pred = t.predict(texts);
  size_t ok = 0;
  for (size_t i = 0; i < y.size(); ++i) ok += pred[i].label == y[i];
  return y.empty() ? 0.0 : static_cast<double>(ok) / static_cast<double>(y.size());
}

}  // namespace

LocalClassifierTier::LocalClassifierTier(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {
  // Immutable from here on (fine_tune trains a copy): pack (or snapshot the fused q/k/v of) the
  // weights so CPU fp32 inference takes the encoder's own-kernel path (docs/encoder.md "CPU kernels").
  if (impl_ && impl_->net) detail::prepare_for_inference(*impl_->net->encoder);
}
LocalClassifierTier::~LocalClassifierTier() = default;

std::shared_ptr<LocalClassifierTier> LocalClassifierTier::train(const std::vector<std::string>& texts,
                                                                const std::vector<std::string>& labels,
                                                                const LocalClassifierConfig& config,
                                                                const ClassifierTrainConfig& tc,
                                                                ProgressCallback progress,
                                                                ClassifierTrainReport* report) {
  if (texts.size() != labels.size())
    throw Error(Status::invalid_argument, "LocalClassifierTier::train: " + std::to_string(texts.size()) +
                                              " texts but " + std::to_string(labels.size()) + " labels");
  if (texts.empty()) throw Error(Status::invalid_argument, "LocalClassifierTier::train: no training rows");
  std::set<std::string> ls(labels.begin(), labels.end());
  EncoderConfig ec = config.encoder_config_json.empty()
                         ? default_t1_config()
                         : EncoderConfig::from_hf_config_json_string(config.encoder_config_json, "encoder_config_json");
  std::string vp = config.vocab_path.empty() ? default_vocab_path() : config.vocab_path;
  auto impl = make_impl(config, ec, std::vector<std::string>(ls.begin(), ls.end()), detail::read_file(vp), vp);
  detail::init_weights(*impl->net->encoder, tc.seed);
  torch::manual_seed(tc.seed);
  {
    torch::NoGradGuard ng;
    impl->net->classifier->weight.normal_(0.0, impl->ec.initializer_range);
    impl->net->classifier->bias.zero_();
  }
  std::vector<int64_t> y;
  for (auto& l : labels) y.push_back(impl->label_index.at(l));
  ClassifierTrainReport local;
  ClassifierTrainReport* rep = report ? report : &local;
  run_training(*impl, texts, y, tc, progress, rep);
  auto tier = std::make_shared<LocalClassifierTier>(impl);
  rep->train_accuracy = accuracy(*tier, texts, y);
  return tier;
}

std::shared_ptr<LocalClassifierTier> LocalClassifierTier::fine_tune(const std::vector<std::string>& texts,
                                                                    const std::vector<std::string>& labels,
                                                                    const ClassifierTrainConfig& tc,
                                                                    ProgressCallback progress,
                                                                    ClassifierTrainReport* report) const {
  impl_->need_fp32("fine_tune");
  if (texts.size() != labels.size())
    throw Error(Status::invalid_argument, "LocalClassifierTier::fine_tune: " + std::to_string(texts.size()) +
                                              " texts but " + std::to_string(labels.size()) + " labels");
  std::vector<std::string> x;
  std::vector<int64_t> y;
  size_t skipped = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto it = impl_->label_index.find(labels[i]);
    if (it == impl_->label_index.end()) {
      ++skipped;
      continue;
    }
    x.push_back(texts[i]);
    y.push_back(it->second);
  }
  if (x.empty())
    throw Error(Status::invalid_argument, "LocalClassifierTier::fine_tune: no row has a known label (" +
                                              std::to_string(skipped) + " skipped)");
  auto impl = make_impl(impl_->cfg, impl_->ec, impl_->labels, impl_->vocab_text, "vocab");
  copy_parameters(*impl->net, *impl_->net);
  ClassifierTrainReport local;
  ClassifierTrainReport* rep = report ? report : &local;
  run_training(*impl, x, y, tc, progress, rep);
  rep->skipped_unknown_labels = skipped;
  auto tier = std::make_shared<LocalClassifierTier>(impl);
  rep->train_accuracy = accuracy(*tier, x, y);
  return tier;
}

std::vector<ClassifierPrediction> LocalClassifierTier::predict(const std::vector<std::string>& texts,
                                                               size_t batch_size) const {
  std::vector<ClassifierPrediction> out;
  out.reserve(texts.size());
  impl_->for_each_batch(texts, batch_size, [&](const torch::Tensor& ids, const torch::Tensor& mask) {
    auto probs = torch::softmax(impl_->logits(ids, mask), 1).to(torch::kCPU);
    auto [pmax, arg] = probs.max(1);
    auto pa = pmax.accessor<float, 1>();
    auto aa = arg.accessor<int64_t, 1>();
    for (int64_t i = 0; i < pmax.size(0); ++i) {
      ClassifierPrediction p;
      p.label = static_cast<int>(aa[i]);
      p.text = impl_->labels[static_cast<size_t>(p.label)];
      p.confidence = pa[i];
      out.push_back(std::move(p));
    }
  });
  return out;
}

std::vector<std::vector<float>> LocalClassifierTier::embed(const std::vector<std::string>& texts,
                                                           size_t batch_size) const {
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  impl_->for_each_batch(texts, batch_size, [&](const torch::Tensor& ids, const torch::Tensor& mask) {
    const auto dev = impl_->placed.device;
    auto v = (dev.is_cpu() ? impl_->net->pool(ids, mask) : impl_->net->pool(ids.to(dev), mask.to(dev)))
                 .to(torch::kCPU, torch::kFloat32)
                 .contiguous();
    auto a = v.accessor<float, 2>();
    for (int64_t i = 0; i < v.size(0); ++i) {
      std::vector<float> row(static_cast<size_t>(v.size(1)));
      for (int64_t j = 0; j < v.size(1); ++j) row[static_cast<size_t>(j)] = a[i][j];
      out.push_back(std::move(row));
    }
  });
  return out;
}

const std::string& LocalClassifierTier::name() const { return impl_->cfg.name; }
const std::vector<std::string>& LocalClassifierTier::labels() const { return impl_->labels; }
const LocalClassifierConfig& LocalClassifierTier::config() const { return impl_->cfg; }
std::string LocalClassifierTier::device() const { return impl_->runtime.device; }
LocalClassifierRuntime LocalClassifierTier::runtime() const { return impl_->runtime; }
double LocalClassifierTier::expected_cost(const TierRequest&) const { return impl_->cfg.cost_per_query; }

TierResponse LocalClassifierTier::call(const TierRequest& request) {
  if (request.cancelled()) return TierResponse::failure(Status::cancelled, "cancelled");
  auto t0 = std::chrono::steady_clock::now();
  auto p = predict({request.query}).at(0);
  TierResponse r;
  r.text = p.text;
  r.confidence = p.confidence;
  r.cost = impl_->cfg.cost_per_query;
  r.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  r.input_tokens = static_cast<int64_t>(impl_->tok->encode(request.query, static_cast<size_t>(impl_->cfg.max_length)).ids.size());
  r.output_tokens = 1;
  return r;
}

void LocalClassifierTier::save(const std::string& dir) const {
  impl_->need_fp32("save");
  detail::write_dir_atomic(dir, "LocalClassifierTier::save", [&](const fs::path& tmp) {
    detail::write_file_atomic((tmp / "config.json").string(), impl_->ec.to_hf_config_json());
    detail::write_file_atomic((tmp / "vocab.txt").string(), impl_->vocab_text);
    std::vector<std::pair<std::string, torch::Tensor>> ts;
    for (auto& [n, t] : detail::export_weights(*impl_->net->encoder)) ts.emplace_back("distilbert." + n, t);
    ts.emplace_back("classifier.weight", impl_->net->classifier->weight.detach().to(torch::kCPU, torch::kFloat32).contiguous());
    ts.emplace_back("classifier.bias", impl_->net->classifier->bias.detach().to(torch::kCPU, torch::kFloat32).contiguous());
    write_safetensors((tmp / "model.safetensors").string(), detail::tensor_views(ts), {{"format", "pt"}});
    nlohmann::json j = {{"format", "routenlp-local-classifier-v1"},
                        {"labels", impl_->labels},
                        {"max_length", impl_->cfg.max_length},
                        {"cost_per_query", impl_->cfg.cost_per_query},
                        {"name", impl_->cfg.name},
                        {"pooling", "mean"}};
    detail::write_file_atomic((tmp / "labels.json").string(), j.dump(2) + "\n");
  });
}

std::shared_ptr<LocalClassifierTier> LocalClassifierTier::load(const std::string& dir) {
  return load(dir, LocalClassifierRuntime{});
}

std::shared_ptr<LocalClassifierTier> LocalClassifierTier::load(const std::string& dir,
                                                               const LocalClassifierRuntime& runtime) {
  // The runtime first: a device this host cannot use fails before any file is read.
  const auto placed = detail::resolve_runtime(runtime.device, runtime.dtype, runtime.cuda_graphs,
                                            runtime.int8_dynamic, "LocalClassifierTier");
  fs::path d(dir);
  EncoderConfig ec = EncoderConfig::from_hf_config_json((d / "config.json").string());
  const std::string lpath = (d / "labels.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(detail::read_file(lpath));
  } catch (const nlohmann::json::exception& e) {
    throw Error(Status::parse, lpath + ": invalid JSON: " + e.what());
  }
  LocalClassifierConfig cfg;
  std::vector<std::string> labels;
  try {
    if (!j.is_object() || !j.contains("labels") || !j["labels"].is_array())
      throw Error(Status::parse, lpath + ": labels: missing or not an array");
    labels = j["labels"].get<std::vector<std::string>>();
    cfg.max_length = detail::json_int_or(j, "max_length", 32, lpath);
    cfg.cost_per_query = j.value("cost_per_query", 1e-5);
    cfg.name = j.value("name", std::string("local-classifier"));
    if (j.value("pooling", std::string("mean")) != "mean")
      throw Error(Status::parse, lpath + ": pooling: only \"mean\" is supported");
  } catch (const nlohmann::json::exception& e) {
    throw Error(Status::parse, lpath + ": wrong field type: " + e.what());
  }
  const std::string vpath = (d / "vocab.txt").string();
  cfg.vocab_path = vpath;
  auto impl = make_impl(cfg, ec, labels, detail::read_file(vpath), vpath);
  const std::string wpath = (d / "model.safetensors").string();
  SafetensorsFile f = read_safetensors(wpath);
  detail::load_weights(*impl->net->encoder, f);
  torch::NoGradGuard ng;
  auto head = [&](const char* name, torch::Tensor& dst) {
    const TensorView* v = f.find(name);
    if (!v) throw Error(Status::model, wpath + ": " + name + ": missing");
    std::vector<int64_t> want(dst.sizes().begin(), dst.sizes().end());
    if (v->dtype != DType::F32 || v->shape != want)
      throw Error(Status::model, wpath + ": " + name + ": expected F32 of the head's shape (labels.json has " +
                                     std::to_string(labels.size()) + " labels)");
    auto src = torch::empty(dst.sizes(), torch::kFloat32);
    std::memcpy(src.data_ptr(), v->data, v->nbytes);
    dst.copy_(src);
  };
  head("classifier.weight", impl->net->classifier->weight);
  head("classifier.bias", impl->net->classifier->bias);
  impl->net->eval();
  impl->place(placed);  // before the constructor packs the weights (prepare_for_inference)
  return std::make_shared<LocalClassifierTier>(impl);
}

}  // namespace routenlp
