// Neural router trainer: AdamW, linear warm-up + linear decay, mini-batches, early stopping on
// a validation slice of the train split, deterministic for a seed.
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/text_io.hpp"
#include "router/neural_impl.hpp"
#include "routenlp/error.hpp"
#include "routenlp/encoder/safetensors.hpp"

namespace routenlp {
namespace {

using detail::ThreadGuard;

struct Row {
  std::vector<int64_t> ids;  // [CLS] ... [SEP], at most max_length
  int64_t task = 0;
  std::vector<float> y, mask, quality;
};

struct Batch {
  torch::Tensor ids, attn, task;
  detail::RouterTargets t;
};

Batch make_batch(const std::vector<Row>& rows, const std::vector<size_t>& idx, size_t begin,
                 size_t end, int64_t pad_id, std::mt19937_64* task_rng, double task_dropout) {
  const auto B = static_cast<int64_t>(end - begin);
  const auto K = static_cast<int64_t>(rows[idx[begin]].y.size());
  size_t T = 2;
  for (size_t i = begin; i < end; ++i) T = std::max(T, rows[idx[i]].ids.size());
  Batch b;
  b.ids = torch::full({B, static_cast<int64_t>(T)}, pad_id, torch::kLong);
  b.attn = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);
  b.task = torch::zeros({B}, torch::kLong);
  b.t.y = torch::zeros({B, K});
  b.t.mask = torch::zeros({B, K});
  b.t.quality = torch::zeros({B, K});
  auto ids = b.ids.accessor<int64_t, 2>();
  auto attn = b.attn.accessor<int64_t, 2>();
  auto task = b.task.accessor<int64_t, 1>();
  auto y = b.t.y.accessor<float, 2>();
  auto m = b.t.mask.accessor<float, 2>();
  auto q = b.t.quality.accessor<float, 2>();
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int64_t r = 0; r < B; ++r) {
    const Row& row = rows[idx[begin + static_cast<size_t>(r)]];
    for (size_t j = 0; j < row.ids.size(); ++j) {
      ids[r][static_cast<int64_t>(j)] = row.ids[j];
      attn[r][static_cast<int64_t>(j)] = 1;
    }
    task[r] = row.task;
    if (task_rng && task_dropout > 0 && u(*task_rng) < task_dropout) task[r] = 0;
    for (int64_t k = 0; k < K; ++k) {
      y[r][k] = row.y[static_cast<size_t>(k)];
      m[r][k] = row.mask[static_cast<size_t>(k)];
      q[r][k] = row.quality[static_cast<size_t>(k)];
    }
  }
  return b;
}

// Validation loss (mean over batches weighted by rows) and mean per-tier AUC.
std::pair<double, double> validate(detail::RouterNetImpl& net, const std::vector<Row>& rows,
                                   const std::vector<size_t>& val, int64_t pad_id,
                                   const RouterLossConfig& lc) {
  torch::NoGradGuard ng;
  net.eval();
  const size_t K = rows[val[0]].y.size();
  std::vector<std::vector<double>> s(K);
  std::vector<std::vector<int>> lab(K);
  double loss = 0;
  for (size_t b = 0; b < val.size(); b += 64) {
    size_t e = std::min(val.size(), b + 64);
    auto batch = make_batch(rows, val, b, e, pad_id, nullptr, 0);
    auto out = net.forward(batch.ids, batch.attn, batch.task);
    loss += detail::router_loss(out, batch.t, lc).total.item<double>() * static_cast<double>(e - b);
    auto p = torch::sigmoid(out.acc_logits).to(torch::kDouble).contiguous();
    auto pa = p.accessor<double, 2>();
    for (size_t i = b; i < e; ++i)
      for (size_t k = 0; k < K; ++k)
        if (rows[val[i]].mask[k] > 0) {
          s[k].push_back(pa[static_cast<int64_t>(i - b)][static_cast<int64_t>(k)]);
          lab[k].push_back(rows[val[i]].y[k] > 0.5f ? 1 : 0);
        }
  }
  double auc_sum = 0;
  int auc_n = 0;
  for (size_t k = 0; k < K; ++k) {
    double a = roc_auc(s[k], lab[k]);
    if (!std::isnan(a)) {
      auc_sum += a;
      ++auc_n;
    }
  }
  return {loss / static_cast<double>(val.size()), auc_n ? auc_sum / auc_n : 0.5};
}

}  // namespace

NeuralRouter NeuralRouter::train(const Dataset& data, const PortfolioConfig& portfolio,
                                 const RouterTrainConfig& config_in, ProgressCallback progress,
                                 RouterTrainReport* report) {
  namespace fs = std::filesystem;
  const auto t0 = std::chrono::steady_clock::now();
  // Round trip through JSON: validates every range with the same messages as a config file.
  RouterTrainConfig cfg = RouterTrainConfig::from_json(config_in.to_json(), "router train config");
  auto labels = make_labels(data, portfolio, Split::train);
  if (labels.size() < 2)
    throw Error(Status::invalid_argument,
                fmt::format("router training: the train split of {} has {} queries (need >= 2)",
                            data.source.empty() ? "the dataset" : data.source, labels.size()));

  EncoderConfig ec;
  std::string vocab_path = cfg.model.vocab_path;
  if (!cfg.model.hf_dir.empty()) {
    ec = EncoderConfig::from_hf_config_json((fs::path(cfg.model.hf_dir) / "config.json").string());
    if (vocab_path.empty()) vocab_path = (fs::path(cfg.model.hf_dir) / "vocab.txt").string();
  } else {
    ec = cfg.model.encoder;
    if (vocab_path.empty()) vocab_path = default_vocab_path();
  }
  ec.validate();
  cfg.model.encoder = ec;

  std::set<std::string> task_set;
  for (const auto& q : labels.queries) task_set.insert(q.task);
  std::vector<std::string> tasks(task_set.begin(), task_set.end());

  ThreadGuard threads(cfg.threads);
  torch::manual_seed(cfg.seed);  // heads' default initialisation and dropout
  auto impl = make_router_impl(cfg, ec, labels.tiers, tasks, detail::read_file(vocab_path),
                               vocab_path);
  auto& net = *impl->net;
  if (!cfg.model.hf_dir.empty()) {
    auto f = read_safetensors((fs::path(cfg.model.hf_dir) / "model.safetensors").string());
    detail::load_weights(*net.encoder, f);
  } else {
    detail::init_weights(*net.encoder, cfg.seed);
  }

  // Pre-tokenise every training row once.
  const size_t K = labels.tiers.size();
  std::vector<Row> rows(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    auto enc = impl->tokenizer->encode(labels.queries[i].query,
                                       static_cast<size_t>(cfg.model.max_length));
    rows[i].ids.assign(enc.ids.begin(), enc.ids.end());
    rows[i].task = impl->task_id(labels.queries[i].task);
    rows[i].y.resize(K);
    rows[i].mask.resize(K);
    rows[i].quality.resize(K);
    for (size_t k = 0; k < K; ++k) {
      int8_t a = labels.acceptable[i][k];
      rows[i].y[k] = a > 0 ? 1.f : 0.f;
      rows[i].mask[k] = a >= 0 ? 1.f : 0.f;
      rows[i].quality[k] = a >= 0 ? static_cast<float>(labels.quality[i][k]) : 0.f;
    }
  }
  const int64_t pad_id = impl->tokenizer->pad_id();


  // Deterministic train / validation slice of the train split.
  std::mt19937_64 rng(cfg.seed * 0x9E3779B97F4A7C15ULL + 0x5EED);
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  auto n_val = static_cast<size_t>(std::floor(cfg.validation_fraction * static_cast<double>(rows.size())));
  if (n_val < 8 || rows.size() - n_val < 1) n_val = 0;
  std::vector<size_t> val(order.begin(), order.begin() + static_cast<long>(n_val));
  std::vector<size_t> tr(order.begin() + static_cast<long>(n_val), order.end());

  // Prior offset: smoothed log-odds (pos + 0.5) / (n + 1) per (task, tier) on the training rows (not the validation slice);
  // row 0 (unknown task) = the tier's overall rate. The acceptability head starts at zero, so
  // the untrained router predicts exactly this prior.
  if (cfg.model.prior_offset) {
    const auto T = static_cast<int64_t>(tasks.size()) + 1;
    std::vector<double> pos(static_cast<size_t>(T) * K, 0.0), cnt(static_cast<size_t>(T) * K, 0.0);
    for (size_t i : tr) {
      const Row& r = rows[i];
      for (size_t k = 0; k < K; ++k) {
        if (r.mask[k] <= 0) continue;
        for (int64_t row : {int64_t{0}, r.task}) {
          pos[static_cast<size_t>(row) * K + k] += r.y[k];
          cnt[static_cast<size_t>(row) * K + k] += 1;
        }
      }
    }
    torch::NoGradGuard ng;
    auto pl = net.prior_logit.accessor<float, 2>();
    for (int64_t t = 0; t < T; ++t)
      for (size_t k = 0; k < K; ++k) {
        size_t i = static_cast<size_t>(t) * K + k;
        double p = cnt[i] > 0 ? (pos[i] + 0.5) / (cnt[i] + 1.0)
                              : (pos[k] + 0.5) / (cnt[k] + 1.0);  // task never saw the tier
        pl[t][static_cast<int64_t>(k)] = static_cast<float>(std::log(p / (1.0 - p)));
      }
    net.acceptability->weight.zero_();
    net.acceptability->bias.zero_();
  }

  const auto bs = static_cast<size_t>(cfg.batch_size);
  const size_t steps_per_epoch = (tr.size() + bs - 1) / bs;
  const size_t total_steps = steps_per_epoch * static_cast<size_t>(cfg.epochs);
  const auto warmup = static_cast<size_t>(std::ceil(cfg.warmup_fraction * static_cast<double>(total_steps)));
  auto lr_at = [&](size_t step) {  // step is 0-based
    double s = static_cast<double>(step + 1);
    if (warmup > 0 && step < warmup) return cfg.learning_rate * s / static_cast<double>(warmup);
    double rest = static_cast<double>(total_steps - warmup);
    double frac = rest > 0 ? (static_cast<double>(total_steps) - s) / rest : 1.0;
    return cfg.learning_rate * std::max(0.0, frac);
  };

  std::vector<torch::Tensor> params;  // trainable ones (prior_logit is fixed)
  for (const auto& p : net.parameters())
    if (p.requires_grad()) params.push_back(p);
  torch::optim::AdamW opt(params,
                          torch::optim::AdamWOptions(cfg.learning_rate).weight_decay(cfg.weight_decay));
  auto all_params = net.parameters();

  RouterTrainReport rep;
  rep.train_rows = tr.size();
  rep.val_rows = val.size();
  const bool by_auc = cfg.early_stop_metric == "auc";
  double best = by_auc ? -1.0 : std::numeric_limits<double>::infinity();
  std::vector<torch::Tensor> best_state;
  int since_best = 0;
  size_t step = 0;
  auto report_progress = [&](int epoch, double loss) {
    if (!progress) return;
    Progress p;
    p.stage = "train";
    p.done = step;
    p.total = total_steps;
    p.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    p.eta_s = step > 0 ? p.elapsed_s / static_cast<double>(step) * static_cast<double>(total_steps - step) : -1.0;
    p.detail = fmt::format("epoch {}/{} loss {:.4f}", epoch, cfg.epochs, loss);
    bool go = true;
    try {
      go = progress(p);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(Status::callback, std::string("router training: progress callback threw: ") + e.what());
    } catch (...) {
      throw Error(Status::callback, "router training: progress callback threw");
    }
    if (!go) throw Error(Status::cancelled, "router training cancelled by the progress callback");
  };

  // Epoch 0 (the initial weights: with the prior offset, the task prior) is a candidate too.
  if (!val.empty()) {
    auto [vl, va] = validate(net, rows, val, pad_id, cfg.loss);
    best = by_auc ? va : vl;
    rep.best_epoch = 0;
    rep.best_val_loss = vl;
    rep.best_val_auc = va;
    torch::NoGradGuard ng;
    for (const auto& p : all_params) best_state.push_back(p.detach().clone());
  }

  for (int epoch = 1; epoch <= cfg.epochs; ++epoch) {
    std::shuffle(tr.begin(), tr.end(), rng);
    net.train();
    double loss_sum = 0;
    size_t loss_rows = 0;
    for (size_t b = 0; b < tr.size(); b += bs) {
      size_t e = std::min(tr.size(), b + bs);
      auto batch = make_batch(rows, tr, b, e, pad_id, &rng, cfg.task_dropout);
      auto out = net.forward(batch.ids, batch.attn, batch.task);
      auto lp = detail::router_loss(out, batch.t, cfg.loss);
      double lv = lp.total.item<double>();
      if (!std::isfinite(lv))
        throw Error(Status::model, fmt::format("router training diverged (loss {}) at epoch {} "
                                               "step {}; lower learning_rate", lv, epoch, step + 1));
      opt.zero_grad();
      lp.total.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      const double lr = lr_at(step);
      for (auto& g : opt.param_groups())
        static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      opt.step();
      ++step;
      loss_sum += lv * static_cast<double>(e - b);
      loss_rows += e - b;
      report_progress(epoch, loss_sum / static_cast<double>(loss_rows));
    }
    rep.train_loss.push_back(loss_sum / static_cast<double>(std::max<size_t>(1, loss_rows)));
    rep.epochs_run = epoch;
    if (val.empty()) {
      rep.best_epoch = epoch;
      continue;
    }
    auto [vl, va] = validate(net, rows, val, pad_id, cfg.loss);
    rep.val_loss.push_back(vl);
    double metric = by_auc ? va : vl;
    bool better = by_auc ? metric > best + 1e-9 : metric < best - 1e-9;
    if (better) {
      best = metric;
      rep.best_epoch = epoch;
      rep.best_val_loss = vl;
      rep.best_val_auc = va;
      since_best = 0;
      torch::NoGradGuard ng;
      best_state.clear();
      for (const auto& p : all_params) best_state.push_back(p.detach().clone());
    } else if (cfg.patience > 0 && ++since_best >= cfg.patience) {
      break;
    }
  }
  if (!best_state.empty()) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < all_params.size(); ++i) all_params[i].copy_(best_state[i]);
  }
  net.eval();
  rep.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::json m;
  m["train_rows"] = rep.train_rows;
  m["val_rows"] = rep.val_rows;
  m["epochs_run"] = rep.epochs_run;
  m["best_epoch"] = rep.best_epoch;
  m["best_val_loss"] = rep.best_val_loss;
  m["best_val_auc"] = rep.best_val_auc;
  m["train_seconds"] = rep.train_seconds;
  m["train_loss"] = rep.train_loss;
  m["val_loss"] = rep.val_loss;
  m["data_source"] = data.source;
  impl->metrics_json = m.dump();
  if (report) *report = rep;
  return NeuralRouter(std::move(impl));
}

}  // namespace routenlp
