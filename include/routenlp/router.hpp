// Routers: predict, per tier, P(answer acceptable | query, task), and routing policies that turn
// those scores into a tier choice. The neural (DistilBERT) router and every baseline implement
// RouterModel, so evaluators and cascades use them interchangeably. Details: docs/router.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "routenlp/dataset.hpp"
#include "routenlp/encoder.hpp"
#include "routenlp/export.h"
#include "routenlp/portfolio.hpp"
#include "routenlp/progress.hpp"

namespace routenlp {

// What a router reads.
struct RouteQuery {
  std::string query;
  std::string task;
};

// What a router predicts for one query.
struct RouterScores {
  std::vector<double> p_acceptable;  // per tier (router's tier order), in [0,1]
  double difficulty = 0.0;           // in [0,1]; higher = more tiers expected to fail
  bool task_unseen = false;          // task absent from training: the shared "unknown" one used
};

// A policy's choice, with the scores behind it (interpretable decisions).
struct RoutingDecision {
  int tier = -1;           // index into the router's tiers()
  RouterScores scores;
  std::string policy;      // policy name
  std::string reason;      // one line: why this tier
};

// Anything that scores queries. score() is const and thread-safe for every implementation.
class RN_API RouterModel {
 public:
  virtual ~RouterModel();
  // One RouterScores per query, in order.
  virtual std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const = 0;
  virtual std::string name() const = 0;
  virtual std::vector<std::string> tiers() const = 0;
  RouterScores score_one(const RouteQuery& q) const;
};

// ---------------------------------------------------------------------------------------------
// Labels and metrics

// Per-query training/evaluation targets for a fixed tier list. acceptable[i][k]: 1, 0, or -1
// when query i has no outcome for tier k (masked everywhere).
struct RoutingLabels {
  std::vector<std::string> tiers;
  std::vector<RouteQuery> queries;
  std::vector<std::vector<int8_t>> acceptable;  // [n][tiers]
  std::vector<std::vector<double>> quality;     // [n][tiers]; NaN when missing
  size_t size() const { return queries.size(); }
};

// Labels of the queries in `split` (all queries when split is empty); tiers are the portfolio's,
// acceptable = portfolio.acceptable(task, quality).
RN_API RoutingLabels make_labels(const Dataset& data, const PortfolioConfig& portfolio,
                                 std::optional<Split> split);

struct TierMetrics {
  std::string tier;
  size_t n = 0;                // labelled queries
  double positive_rate = 0.0;  // share acceptable
  double auc = 0.5;            // ROC AUC (ties averaged); NaN when only one class is present
  double brier = 0.0;          // mean (p - y)^2
};

// ROC AUC by the rank-sum formula with averaged ranks for ties; NaN when a class is empty.
RN_API double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);
// Per-tier AUC and Brier of a router on labelled queries (tiers matched by name).
RN_API std::vector<TierMetrics> evaluate_router(const RouterModel& router,
                                                const RoutingLabels& labels,
                                                size_t batch_size = 64);

// ---------------------------------------------------------------------------------------------
// Routing policies over scores + tier costs. decide() is const and thread-safe.

class RN_API RoutingPolicy {
 public:
  virtual ~RoutingPolicy();
  virtual RoutingDecision decide(const RouterScores& scores, const std::string& task) const = 0;
  virtual std::string name() const = 0;
};

// Mean cost per call of each portfolio tier over the dataset (outcome_cost), divided by the
// largest mean, so the most expensive tier costs 1. Tiers without any outcome get their
// token price ratio when the portfolio has one, else 1.
RN_API std::vector<double> relative_tier_costs(const Dataset& data,
                                               const PortfolioConfig& portfolio);

// (a) The cheapest tier (tiers are ordered cheapest first) whose p_acceptable >= the task's
// target; when none reaches it, the tier with the highest p (ties: the pricier).
class RN_API ThresholdPolicy : public RoutingPolicy {
 public:
  // target per task, default for the rest.
  explicit ThresholdPolicy(double default_target, std::map<std::string, double> per_task = {});
  // Targets 1 - alpha_for(task) of the portfolio, for the portfolio's tasks and "default".
  static ThresholdPolicy from_portfolio(const PortfolioConfig& portfolio);
  double target(const std::string& task) const;
  RoutingDecision decide(const RouterScores& scores, const std::string& task) const override;
  std::string name() const override { return "threshold"; }

 private:
  double default_target_;
  std::map<std::string, double> per_task_;
};

// (b) Cost-quality knob: argmax_k p_k - lambda * cost_k (ties: the cheaper tier). lambda = 0
// picks the most likely acceptable tier; large lambda the cheapest.
class RN_API CostKnobPolicy : public RoutingPolicy {
 public:
  CostKnobPolicy(double lambda, std::vector<double> tier_costs);
  RoutingDecision decide(const RouterScores& scores, const std::string& task) const override;
  std::string name() const override { return "cost-knob"; }

 private:
  double lambda_;
  std::vector<double> costs_;
};

// (c) RouteLLM-compatible two-tier routing. The strong-call score of a query is
// 1 - p_acceptable[weak] (how likely the weak tier fails); the query goes to `strong` when the
// score passes the threshold, else to `weak`.
enum class ThresholdRule {
  quantile,   // RouteLLM: t = quantile(1 - strong_pct) (linear interpolation); strong iff s >= t
  conformal,  // t = ceil((n+1)(1-strong_pct))-th smallest score; strong iff s > t
};

// Threshold for a target strong-call share over calibration scores. quantile: share ~ p;
// conformal: p - 1/(n+1) <= P(strong) <= p for an exchangeable new query.
RN_API double calibrate_strong_threshold(std::vector<double> scores, double strong_pct,
                                         ThresholdRule rule);

class RN_API TwoTierPolicy : public RoutingPolicy {
 public:
  TwoTierPolicy(int weak, int strong, double threshold, ThresholdRule rule);
  // Calibrates the threshold on the strong-call scores of `calibration` queries.
  static TwoTierPolicy calibrate(const RouterModel& router,
                                 const std::vector<RouteQuery>& calibration, int weak,
                                 int strong, double strong_pct, ThresholdRule rule);
  static double strong_score(const RouterScores& scores, int weak);
  bool goes_strong(double strong_score) const;
  double threshold() const { return threshold_; }
  RoutingDecision decide(const RouterScores& scores, const std::string& task) const override;
  std::string name() const override;

 private:
  int weak_, strong_;
  double threshold_;
  ThresholdRule rule_;
};

// Scores a batch with `router` and applies `policy` to each query.
RN_API std::vector<RoutingDecision> route_batch(const RouterModel& router,
                                                const RoutingPolicy& policy,
                                                const std::vector<RouteQuery>& batch);

// ---------------------------------------------------------------------------------------------
// Baseline routers (no libtorch needed). All are immutable after construction.

// Deterministic pseudo-random p in [0,1]: a hash of (seed, task, query, tier).
RN_API std::unique_ptr<RouterModel> make_random_router(std::vector<std::string> tiers,
                                                       uint64_t seed);
// p = 1 for tier k, 0 for the others.
RN_API std::unique_ptr<RouterModel> make_always_tier_router(std::vector<std::string> tiers,
                                                            int k);
// Empirical acceptability per (task, tier) on the training labels; an unseen task (or a tier
// never observed for the task) gets the overall rate of the tier.
RN_API std::unique_ptr<RouterModel> make_task_prior_router(const RoutingLabels& train);

// Text features for the classical baselines: lower-cased word unigrams (+ bigrams), TF-IDF
// with sublinear tf and L2 normalisation, built on the training texts.
struct TfidfOptions {
  size_t max_features = 20000;  // most frequent terms kept
  size_t min_df = 2;            // terms in fewer training documents are dropped
  bool bigrams = true;
};

struct LogRegOptions {
  TfidfOptions tfidf;
  double l2 = 1e-4;             // L2 penalty on weights (not on the bias)
  int iterations = 400;         // accelerated full-batch gradient steps
  bool task_features = true;    // one-hot task indicator features
};
// One L2-regularised logistic regression per tier on TF-IDF (+ task one-hot) features.
RN_API std::unique_ptr<RouterModel> make_tfidf_logreg_router(const RoutingLabels& train,
                                                             const LogRegOptions& options = {});

// Embeds a batch of queries (one vector per query). Must be thread-safe.
using TextEmbedder =
    std::function<std::vector<std::vector<float>>(const std::vector<RouteQuery>& batch)>;

struct KnnOptions {
  size_t k = 10;
  bool same_task_only = false;  // restrict neighbours to the query's task when it was seen
  TfidfOptions tfidf;           // used when no embedder is given
};
// p_k = share acceptable among the k most cosine-similar training queries that have an outcome
// for tier k. Uses `embedder` (e.g. NeuralRouter::embedder()) when given, else TF-IDF vectors;
// name() says which ("knn-encoder" / "knn-tfidf").
RN_API std::unique_ptr<RouterModel> make_knn_router(const RoutingLabels& train,
                                                    const KnnOptions& options = {},
                                                    TextEmbedder embedder = nullptr);

struct MfOptions {
  TfidfOptions tfidf;
  int dim = 32;              // latent size of queries and tiers
  int epochs = 150;          // full-batch Adam steps
  double learning_rate = 0.02;
  double l2 = 1e-4;
  double pairwise_weight = 1.0;  // weight of the pairwise win term (vs acceptability BCE)
  uint64_t seed = 0;
};
// RouteLLM-style matrix factorisation: s_k(q) = v_k . (P x_q + t_task) + b_k, where x_q are
// TF-IDF features, P a learned projection, t a task embedding and v_k a tier embedding;
// trained on per-tier acceptability (BCE) plus pairwise wins (tier a acceptable, b not).
RN_API std::unique_ptr<RouterModel> make_mf_router(const RoutingLabels& train,
                                                   const MfOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Neural router: DistilBERT encoder -> pooled ([CLS] or mean) (+) task embedding -> MLP ->
// per-tier acceptability logits and a difficulty head. Needs libtorch (else Error not_supported).

struct NeuralRouterConfig {
  // The bundled router's encoder: DistilBERT architecture, dim 128, 2 layers, 2 heads, FFN 512,
  // 64 positions, bert-base-uncased vocabulary size (data/configs/router-small.json).
  RN_API static EncoderConfig small_encoder();
  // Encoder architecture when training from scratch. Ignored when hf_dir is set (its
  // config.json is used). max_position_embeddings bounds max_length.
  EncoderConfig encoder = small_encoder();
  std::string hf_dir;            // start from a pretrained HF DistilBERT directory
  std::string vocab_path;        // WordPiece vocab.txt; empty = hf_dir's, else the bundled one
  int max_length = 64;           // tokens per query incl. [CLS]/[SEP]; longer ones truncated
  Pooling pooling = Pooling::cls;  // [CLS] vector or mask-weighted mean
  int task_dim = 32;             // task embedding size
  int hidden = 256;              // MLP hidden size
  // Add the training split's per-(task, tier) log-odds of acceptability to the logits (a fixed
  // offset; the network learns the residual, starting from the task prior: docs/router.md).
  bool prior_offset = true;
  double dropout = 0.1;          // in the MLP head (the encoder uses its config's dropouts)
};

struct RouterLossConfig {
  double bce_weight = 1.0;         // BCE on per-tier acceptability (missing outcomes masked)
  double ranking_weight = 0.5;     // pairwise: an acceptable tier's logit above an unacceptable one's
  double ranking_margin = 0.0;     // hinge-free: softplus(margin - (s_good - s_bad))
  double difficulty_weight = 0.1;  // BCE of the difficulty head vs the share of failing tiers
  double quality_weight = 0.0;     // MSE on per-tier quality (0 = off)
};

struct RouterTrainConfig {
  NeuralRouterConfig model;
  RouterLossConfig loss;
  // Defaults = data/configs/router-small.json (the bundled default router).
  int epochs = 8;
  int batch_size = 32;
  double learning_rate = 5e-4;     // encoder and heads
  double weight_decay = 0.01;      // AdamW
  double warmup_fraction = 0.1;    // linear warm-up over this share of steps, then linear decay
  int patience = 2;                // early stopping: epochs without improvement (0 = never stop)
  std::string early_stop_metric = "auc";  // "loss" or "auc" (mean per-tier validation AUC)
  double validation_fraction = 0.1;  // of the train split, held out for early stopping
  double task_dropout = 0.1;       // share of training rows whose task is replaced by "unknown"
  uint64_t seed = 0;
  int threads = 0;                 // torch intra-op threads during training; 0 = leave as is

  // JSON (the keys are these field names; "model", "loss" nested). Unknown keys are errors.
  RN_API static RouterTrainConfig from_json(const std::string& json_text,
                                            const std::string& source = "<string>");
  RN_API static RouterTrainConfig load(const std::string& path);
  RN_API std::string to_json() const;
};

// Where a loaded neural router runs inference (docs/router.md "Devices"). Training always
// runs on the CPU in fp32; this only places a loaded (immutable) router.
struct RouterRuntime {
  // "cpu" (default), "cuda", "cuda:N", or "auto" = CUDA device 0 when libtorch sees one, else
  // the CPU. An explicit CUDA device on a machine or build without CUDA is
  // Error(not_supported); an unknown string is Error(invalid_argument).
  std::string device = "cpu";
  // The encoder's precision; the task embedding, MLP and heads stay fp32. bf16 on the CPU runs
  // through libtorch/oneDNN (not routenlp's fp32 kernels); fp16 needs CUDA.
  EncoderDType dtype = EncoderDType::fp32;
  // CUDA only: capture the whole router forward as one CUDA graph per (batch, tokens) shape
  // and replay it. Needs a build with ROUTENLP_WITH_CUDA_GRAPHS (else Error(not_supported)).
  bool cuda_graphs = false;
  // With device "auto" resolving to the CPU, dtype and cuda_graphs are ignored (the CPU fp32
  // default runs), so one runtime serves GPU and CPU hosts alike. With an explicit "cpu" they
  // are checked as given.
};

struct RouterTrainReport {
  int epochs_run = 0;
  int best_epoch = 0;              // epoch whose weights were kept (0 = the initial weights)
  double best_val_loss = 0.0;
  double best_val_auc = 0.0;       // mean per-tier AUC on the validation rows
  double train_seconds = 0.0;
  size_t train_rows = 0, val_rows = 0;
  std::vector<double> train_loss;  // per epoch
  std::vector<double> val_loss;    // per epoch
};

class RN_API NeuralRouter : public RouterModel {
 public:
  // Trains on data's train split only (the calib split is left to the calibrator; test unused).
  // Tiers come from the portfolio, tasks from the training data. Progress: stage "train".
  static NeuralRouter train(const Dataset& data, const PortfolioConfig& portfolio,
                            const RouterTrainConfig& config, ProgressCallback progress = nullptr,
                            RouterTrainReport* report = nullptr);
  // Checkpoint directory: router.safetensors, router.json (metadata), vocab.txt. Written to a
  // temporary directory renamed into place.
  static NeuralRouter load(const std::string& dir);
  // Same, placed on runtime.device in runtime.dtype (scores on the default runtime are those
  // of load(dir)).
  static NeuralRouter load(const std::string& dir, const RouterRuntime& runtime);
  // The device `runtime` resolves to on this machine ("cpu" or "cuda:N") after the checks
  // load() makes; throws the same errors. Torch-free builds: "cpu" for "cpu"/"auto" with the
  // CPU defaults, else Error(not_supported).
  static std::string resolve_device(const RouterRuntime& runtime);
  // Error(invalid_argument) for a router loaded with a dtype other than fp32 (its weights are
  // rounded): save the fp32 checkpoint it was loaded from instead.
  void save(const std::string& dir) const;

  NeuralRouter(NeuralRouter&&) noexcept;
  NeuralRouter& operator=(NeuralRouter&&) noexcept;
  ~NeuralRouter() override;

  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override;
  std::string name() const override { return "neural"; }
  std::vector<std::string> tiers() const override;
  std::vector<std::string> tasks() const;
  // Pooled encoder representations (for the kNN baseline).
  std::vector<std::vector<float>> embed(const std::vector<RouteQuery>& batch) const;
  TextEmbedder embedder() const;
  const RouterTrainConfig& config() const;
  // Metadata JSON as saved (tiers, tasks, encoder config, vocab hash, training config, metrics).
  std::string metadata_json() const;
  // Flattened copy of every parameter (for determinism checks), in a fixed name order.
  std::vector<float> parameters_flat() const;
  int max_length() const;
  // Where inference runs: "cpu" or "cuda:N", and the encoder's dtype / CUDA-graph setting in
  // effect (after "auto" was resolved).
  std::string device() const;
  RouterRuntime runtime() const;

  struct Impl;  // internal

 private:
  explicit NeuralRouter(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Stacked router and selection on held-out rows (no libtorch needed). Details: docs/router.md.

// Weights of a stack, per tier: {bias, weight of base 0, weight of base 1, ...}.
using StackWeights = std::vector<std::vector<double>>;

// Per tier k: p_k = sigmoid(w[k][0] + sum_j w[k][1 + j] * logit(p_jk)), p_jk = base j's p for
// tier k clipped to [1e-4, 1 - 1e-4]. The bases must list the same tiers in the same order;
// Error(invalid_argument) otherwise, or when a base is null or the weights are not one row of
// 1 + bases.size() per tier. name(): "stacked(<base>+<base>+...)". score() is thread-safe when
// the bases' are.
RN_API std::unique_ptr<RouterModel> make_stacked_router(
    std::vector<std::shared_ptr<const RouterModel>> bases, StackWeights weights);

struct StackOptions {
  double l2 = 1e-2;         // ridge penalty on the base weights (not the bias), per mean log loss
  // The ridge pulls base `anchor`'s weight toward 1 and the others' toward 0 (-1: all toward 0),
  // so that with little held-out evidence the stack stays close to that base.
  int anchor = -1;
  // Each tier's weights are shrunk toward weights shared by every tier (fitted on all tiers'
  // rows together, a bias per tier) with penalty pool/2 |w_k - w_shared|^2 per mean log loss:
  // 0 = independent tiers, infinity = the shared weights for every tier (only biases differ).
  double pool = 1.0;
  int max_iterations = 50;  // Newton steps per fit
  // A tier with fewer held-out positives or negatives than this cannot be fitted: it gets the
  // anchor base (bias 0, weight 1), else the plain mean of the base logits (weights 1/bases).
  size_t min_class = 3;
};

// Ridge logistic regression, per tier, of the held-out labels on the bases' logits.
// base_scores[j][i] are base j's scores of heldout.queries[i] (tiers in heldout.tiers order);
// rows without an outcome for a tier are skipped for that tier.
RN_API StackWeights fit_stack_weights(const std::vector<std::vector<RouterScores>>& base_scores,
                                      const RoutingLabels& heldout,
                                      const StackOptions& options = {});
// Scores `heldout` with every base (fitted without those rows) and returns the fitted stack.
RN_API std::unique_ptr<RouterModel> fit_stacked_router(
    std::vector<std::shared_ptr<const RouterModel>> bases, const RoutingLabels& heldout,
    const StackOptions& options = {});

// Mean of the per-tier AUCs that are defined (NaN when none is).
RN_API double mean_tier_auc(const std::vector<TierMetrics>& metrics);

struct SelectOptions {
  // Stack configurations tried (e.g. with and without an anchor); the one with the highest
  // held-out (out-of-fold) AUC is the stack candidate (ties: the earlier).
  std::vector<StackOptions> stacks{StackOptions{}};
  bool with_stack = true;  // also consider the stack of all candidates (needs >= 2 of them)
  int folds = 5;           // K-fold cross-validation on the held-out rows for the stack's AUC
  // Choose the first entry, in order of preference, whose held-out AUC is within se_rule
  // standard errors of the best one's (the SE of their difference, by a paired bootstrap of the
  // held-out rows); se_rule 0 = the best. Order: the stack first when prefer_stack (it can
  // mimic every candidate, so a small held-out lead of one candidate is mostly noise), then the
  // candidates in the given order, then the stack when not preferred.
  double se_rule = 1.0;
  bool prefer_stack = true;
  int bootstrap = 200;     // bootstrap resamples for the standard errors
  uint64_t seed = 0;       // fold assignment and bootstrap
};

struct RouterSelection {
  std::vector<std::string> names;   // the candidates' names, then the stack's when considered
  std::vector<double> heldout_auc;  // mean per-tier AUC on the held-out rows (stack: out of fold)
  size_t candidates = 0;            // how many candidates were given
  std::vector<double> heldout_auc_se;  // bootstrap SE of (best AUC - this one's); 0 for the best
  size_t best = 0;                  // index of the highest held-out AUC
  size_t chosen = 0;                // index into names; == candidates when the stack won
  size_t stack_config = 0;          // index into SelectOptions::stacks of the stack candidate
  std::vector<double> stack_config_auc;  // held-out AUC of each stack configuration
  StackWeights stack_weights;       // refitted on all held-out rows (empty without a stack)
  std::shared_ptr<const RouterModel> model;  // the chosen router
  bool stacked() const { return chosen == candidates; }
};

// Chooses among routers fitted without the `heldout` rows by their held-out mean per-tier AUC
// (see SelectOptions for the rule); the stack of all of them competes with its K-fold
// cross-validated AUC (weights fitted on the other folds) and, when considered, is refitted on
// every held-out row. Candidates share the tier list.
RN_API RouterSelection select_router(
    const std::vector<std::shared_ptr<const RouterModel>>& candidates,
    const RoutingLabels& heldout, const SelectOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Saving and loading any router made by this library (no libtorch needed except for the neural
// kind). Directory layouts: docs/router.md "Saving and loading routers".

// Writes any router made by this library to `dir` (created; written to a temporary directory
// renamed into place): router.json names its kind ("neural", "task-prior", "tfidf-logreg",
// "mf", "knn-tfidf", "stacked", "random", "always-tier") plus the kind's own files.
// Error(not_supported) naming the router for a RouterModel this library cannot save (a host
// subclass, a kNN over an external embedder, or a stack with such a base); nothing is written
// then. Error(io) when the directory cannot be written.
RN_API void save_router(const RouterModel& router, const std::string& dir);
// Loads what save_router wrote (or a bare NeuralRouter::save checkpoint). The loaded router
// scores exactly as the saved one did. Errors name the file and field: Error(parse) for an
// unknown kind, bad JSON (numbers beyond double range included), wrong types, unknown or
// duplicate keys; Error(io) for a missing or oversized file; Error(model) for wrong shapes,
// non-finite weights or tier lists that disagree; Error(not_supported) for a neural router in
// a build without libtorch.
RN_API std::shared_ptr<const RouterModel> load_router(const std::string& dir);
// Same, with every neural router inside (the router itself or a stack's bases) placed by
// `runtime` (NeuralRouter::load(dir, runtime)). The runtime is checked first, whatever the
// kind, so an unusable device fails the same way for every router; kinds without a neural
// part then ignore it (they run on the CPU).
RN_API std::shared_ptr<const RouterModel> load_router(const std::string& dir,
                                                      const RouterRuntime& runtime);
// The kind save_router would write ("" when it cannot be saved).
RN_API std::string router_kind(const RouterModel& router);

}  // namespace routenlp
