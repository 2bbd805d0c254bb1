// Router: policies, metrics, baselines and the neural router (tiny encoder configs).
#ifdef ROUTENLP_HAVE_TORCH
#include "router/neural_impl.hpp"  // RouterLoss internals (INTERNAL test); before Catch:
#undef CHECK                       // libtorch's glog defines CHECK, which Catch redefines
#endif
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "routenlp/error.hpp"
#include "routenlp/tiers/local_classifier_tier.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/policies.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/router/io.hpp"

using namespace routenlp;

namespace {

// Synthetic routing data: 3 tiers, 3 tasks. Acceptability is a known function of the task and
// of keywords in the query:
//   tier 0 (cheap)  acceptable iff the query has "easy" and the task is not "math";
//   tier 1 (mid)    acceptable iff the query has "easy" or "medium" (any task), or task "chat";
//   tier 2 (strong) acceptable unless the query has "impossible".
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
    bool a0 = easy && q.task != "math";
    bool a1 = easy || medium || q.task == "chat";
    bool a2 = !imp;
    q.outcomes["cheap"].quality = a0 ? 1.0 : 0.0;
    q.outcomes["mid"].quality = a1 ? 1.0 : 0.0;
    if (i % 17 != 5) q.outcomes["strong"].quality = a2 ? 1.0 : 0.0;  // some missing
    q.outcomes["cheap"].cost = 0.001;
    q.outcomes["mid"].cost = 0.01;
    if (q.outcomes.count("strong")) q.outcomes["strong"].cost = 0.1;
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
      "  chat: {alpha: 0.2}\n"
      "alpha: 0.1\n",
      "synthetic.yaml");
}

double mean_auc(const std::vector<TierMetrics>& m) {
  double s = 0;
  for (const auto& x : m) s += x.auc;
  return s / static_cast<double>(m.size());
}

// Per tier: acceptable labels and labelled rows of one task (missing outcomes skipped).
std::pair<std::vector<double>, std::vector<double>> acceptable_counts(const RoutingLabels& tr,
                                                                      const std::string& task) {
  std::vector<double> pos(tr.tiers.size(), 0), n(tr.tiers.size(), 0);
  for (size_t i = 0; i < tr.size(); ++i) {
    if (tr.queries[i].task != task) continue;
    for (size_t k = 0; k < tr.tiers.size(); ++k)
      if (tr.acceptable[i][k] >= 0) {
        pos[k] += tr.acceptable[i][k];
        n[k] += 1;
      }
  }
  return {pos, n};
}

}  // namespace

TEST_CASE("roc_auc: hand examples and ties", "[router][metrics]") {
  CHECK(roc_auc({0.1, 0.2, 0.3, 0.4}, {0, 0, 1, 1}) == Approx(1.0));
  CHECK(roc_auc({0.4, 0.3, 0.2, 0.1}, {0, 0, 1, 1}) == Approx(0.0));
  CHECK(roc_auc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}) == Approx(0.5));
  // One positive tied with one negative: 0.5 credit; the other pair is ordered.
  CHECK(roc_auc({0.2, 0.5, 0.5}, {0, 0, 1}) == Approx(0.75));
  CHECK(std::isnan(roc_auc({0.1, 0.2}, {1, 1})));
  CHECK_THROWS_AS(roc_auc({0.1}, {1, 0}), Error);
}

TEST_CASE("RouteLLM threshold recipe 12: quantile .802/20 calls, conformal .81/19",
          "[router][policy]") {
  std::vector<double> s;
  for (int i = 1; i <= 100; ++i) s.push_back(i / 100.0);
  double tq = calibrate_strong_threshold(s, 0.2, ThresholdRule::quantile);
  double tc = calibrate_strong_threshold(s, 0.2, ThresholdRule::conformal);
  CHECK(tq == Approx(0.802).margin(1e-12));
  CHECK(tc == Approx(0.81).margin(1e-12));
  TwoTierPolicy q(0, 1, tq, ThresholdRule::quantile), c(0, 1, tc, ThresholdRule::conformal);
  int nq = 0, nc = 0;
  for (double x : s) {
    RouterScores sc;
    sc.p_acceptable = {1.0 - x, 0.9};  // strong score = 1 - p[weak] = x
    nq += q.decide(sc, "t").tier == 1;
    nc += c.decide(sc, "t").tier == 1;
  }
  CHECK(nq == 20);
  CHECK(nc == 19);
  CHECK(q.name() == "two-tier-quantile");
  // Conformal rank beyond n: never strong; p = 1: always strong.
  CHECK(std::isinf(calibrate_strong_threshold({0.3, 0.4}, 0.0, ThresholdRule::conformal)));
  CHECK(calibrate_strong_threshold({0.3, 0.4}, 1.0, ThresholdRule::conformal) < 0.3);
  CHECK_THROWS_AS(calibrate_strong_threshold({}, 0.2, ThresholdRule::quantile), Error);
  CHECK_THROWS_AS(calibrate_strong_threshold({0.1, NAN}, 0.2, ThresholdRule::quantile), Error);
  CHECK_THROWS_AS(TwoTierPolicy(1, 1, 0.5, ThresholdRule::quantile), Error);
}

TEST_CASE("ThresholdPolicy picks the cheapest tier reaching the task's target",
          "[router][policy]") {
  auto pf = synthetic_portfolio();
  auto pol = ThresholdPolicy::from_portfolio(pf);
  CHECK(pol.target("qa") == Approx(0.9));
  CHECK(pol.target("chat") == Approx(0.8));
  RouterScores s;
  s.p_acceptable = {0.5, 0.85, 0.99};
  auto d = pol.decide(s, "qa");
  CHECK(d.tier == 2);
  CHECK(d.policy == "threshold");
  CHECK(d.scores.p_acceptable == s.p_acceptable);
  CHECK_FALSE(d.reason.empty());
  CHECK(pol.decide(s, "chat").tier == 1);
  // Nobody reaches the target: the highest p wins.
  s.p_acceptable = {0.5, 0.7, 0.6};
  d = pol.decide(s, "qa");
  CHECK(d.tier == 1);
  CHECK(d.reason.find("no tier") != std::string::npos);
  CHECK_THROWS_AS(ThresholdPolicy(1.5), Error);
  RouterScores bad;
  bad.p_acceptable = {NAN};
  CHECK_THROWS_AS(pol.decide(bad, "qa"), Error);
}

TEST_CASE("CostKnobPolicy trades p against cost with lambda", "[router][policy]") {
  RouterScores s;
  s.p_acceptable = {0.6, 0.8, 0.95};
  std::vector<double> cost = {0.01, 0.1, 1.0};
  CHECK(CostKnobPolicy(0.0, cost).decide(s, "t").tier == 2);
  CHECK(CostKnobPolicy(0.2, cost).decide(s, "t").tier == 1);   // .8-.02 > .95-.2, > .6-.002
  CHECK(CostKnobPolicy(10.0, cost).decide(s, "t").tier == 0);
  CHECK_THROWS_AS(CostKnobPolicy(-1, cost), Error);
  CHECK_THROWS_AS(CostKnobPolicy(0.1, {0.1, 0.2}).decide(s, "t"), Error);
}

TEST_CASE("relative_tier_costs from recorded costs", "[router][policy]") {
  auto d = synthetic(50, 1);
  auto c = relative_tier_costs(d, synthetic_portfolio());
  REQUIRE(c.size() == 3);
  CHECK(c[0] == Approx(0.01));
  CHECK(c[1] == Approx(0.1));
  CHECK(c[2] == Approx(1.0));
}

TEST_CASE("make_labels masks missing outcomes and keeps the split", "[router][labels]") {
  auto d = synthetic(100, 2);
  auto pf = synthetic_portfolio();
  auto all = make_labels(d, pf, std::nullopt);
  auto tr = make_labels(d, pf, Split::train);
  CHECK(all.size() == 100);
  CHECK(tr.size() == 60);
  CHECK(all.tiers == std::vector<std::string>{"cheap", "mid", "strong"});
  CHECK(all.acceptable[5][2] == -1);
  CHECK(std::isnan(all.quality[5][2]));
  CHECK(all.acceptable[0][2] >= 0);
}

TEST_CASE("baselines: random, always, task prior", "[router][baseline]") {
  auto d = synthetic(600, 3);
  auto pf = synthetic_portfolio();
  auto tr = make_labels(d, pf, Split::train);
  auto te = make_labels(d, pf, Split::test);

  auto rnd = make_random_router(tr.tiers, 7);
  auto a = rnd->score(te.queries), b = rnd->score(te.queries);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].p_acceptable == b[i].p_acceptable);
  for (const auto& m : evaluate_router(*rnd, te)) CHECK(std::abs(m.auc - 0.5) < 0.15);

  auto always = make_always_tier_router(tr.tiers, 1);
  auto s = always->score_one({"x", "qa"});
  CHECK(s.p_acceptable == std::vector<double>{0, 1, 0});
  CHECK(ThresholdPolicy(0.9).decide(s, "qa").tier == 1);
  CHECK_THROWS_AS(make_always_tier_router(tr.tiers, 3), Error);

  // Task prior equals the empirical rates on the training labels.
  auto prior = make_task_prior_router(tr);
  for (const char* task : kTask) {
    auto [pos, n] = acceptable_counts(tr, task);
    auto p = prior->score_one({"anything", task});
    CHECK_FALSE(p.task_unseen);
    for (size_t k = 0; k < 3; ++k) CHECK(p.p_acceptable[k] == Approx(pos[k] / n[k]));
  }
  auto u = prior->score_one({"x", "never-seen"});
  CHECK(u.task_unseen);
  // Known structure: math never passes tier 0.
  CHECK(prior->score_one({"x", "math"}).p_acceptable[0] == 0.0);
}

TEST_CASE("TF-IDF logistic regression learns the keyword rule", "[router][baseline]") {
  auto d = synthetic(1500, 4);
  auto pf = synthetic_portfolio();
  auto tr = make_labels(d, pf, Split::train);
  auto te = make_labels(d, pf, Split::test);
  LogRegOptions opt;
  opt.l2 = 1e-5;
  opt.iterations = 600;
  auto lr = make_tfidf_logreg_router(tr, opt);
  auto m = evaluate_router(*lr, te);
  for (const auto& x : m) INFO(x.tier << " auc " << x.auc);
  // strong (tier 2) depends on the keyword only: linear in TF-IDF features.
  CHECK(m[2].auc > 0.97);
  CHECK(m[1].auc > 0.9);
  auto prior_m = evaluate_router(*make_task_prior_router(tr), te);
  CHECK(mean_auc(m) > mean_auc(prior_m) + 0.1);
  auto e = lr->score_one({"", "qa"});  // empty query: bias + task only
  CHECK(e.p_acceptable.size() == 3);
  CHECK(lr->score_one({"easy", "unknown-task"}).task_unseen);
}

TEST_CASE("kNN (TF-IDF fallback) and MF routers beat the prior on keywords",
          "[router][baseline]") {
  auto d = synthetic(1000, 5);
  auto pf = synthetic_portfolio();
  auto tr = make_labels(d, pf, Split::train);
  auto te = make_labels(d, pf, Split::test);
  auto prior_auc = mean_auc(evaluate_router(*make_task_prior_router(tr), te));
  auto knn = make_knn_router(tr);
  CHECK(knn->name() == "knn-tfidf");
  auto knn_auc = mean_auc(evaluate_router(*knn, te));
  CHECK(knn_auc > prior_auc);
  MfOptions mo;
  mo.seed = 1;
  auto mf = make_mf_router(tr, mo);
  auto mf_m = evaluate_router(*mf, te);
  CHECK(mean_auc(mf_m) > prior_auc + 0.05);
  // Deterministic for a seed.
  auto mf2 = make_mf_router(tr, mo);
  CHECK(mf->score_one(te.queries[0]).p_acceptable == mf2->score_one(te.queries[0]).p_acceptable);
  // Custom embedder is used and named.
  int calls = 0;
  auto emb = [&calls](const std::vector<RouteQuery>& b) {
    ++calls;
    std::vector<std::vector<float>> v;
    for (const auto& q : b)
      v.push_back({q.query.find("easy") != std::string::npos ? 1.f : 0.f,
                   q.query.find("impossible") != std::string::npos ? 1.f : 0.f, 0.1f});
    return v;
  };
  auto knn_e = make_knn_router(tr, {}, emb);
  CHECK(knn_e->name() == "knn-encoder");
  CHECK(evaluate_router(*knn_e, te)[2].auc > 0.95);
  CHECK(calls > 0);
}

TEST_CASE("route_batch gives one decision per query with scores", "[router][policy]") {
  auto d = synthetic(300, 6);
  auto pf = synthetic_portfolio();
  auto tr = make_labels(d, pf, Split::train);
  auto prior = make_task_prior_router(tr);
  auto dec = route_batch(*prior, ThresholdPolicy::from_portfolio(pf),
                         {{"a", "qa"}, {"b", "chat"}, {"c", "unseen"}});
  REQUIRE(dec.size() == 3);
  for (const auto& x : dec) {
    CHECK(x.tier >= 0);
    CHECK(x.scores.p_acceptable.size() == 3);
  }
  CHECK(dec[2].scores.task_unseen);
}

// ---------------------------------------------------------------------------------------------
// Neural router (tiny encoder, tiny vocabulary).
#ifdef ROUTENLP_HAVE_TORCH
namespace {

RouterTrainConfig tiny_config(uint64_t seed = 0) {
  RouterTrainConfig c;
  c.model.encoder.vocab_size = 30;
  c.model.encoder.max_position_embeddings = 16;
  c.model.encoder.dim = 32;
  c.model.encoder.n_layers = 1;
  c.model.encoder.n_heads = 2;
  c.model.encoder.hidden_dim = 64;
  c.model.encoder.dropout = 0.0;
  c.model.encoder.attention_dropout = 0.0;
  c.model.vocab_path = std::string(RN_TEST_DATA_DIR) + "/router/tiny-vocab.txt";
  c.model.max_length = 16;
  c.model.task_dim = 8;
  c.model.hidden = 32;
  c.model.dropout = 0.0;
  c.epochs = 25;
  c.batch_size = 32;
  c.learning_rate = 3e-3;
  c.patience = 5;
  c.seed = seed;
  return c;
}

struct Trained {
  Dataset data = synthetic(1500, 11);
  PortfolioConfig pf = synthetic_portfolio();
  RouterTrainReport report;
  std::unique_ptr<NeuralRouter> router;
  std::vector<size_t> progress_calls{0};
  Trained() {
    size_t calls = 0;
    double last_eta = -2;
    router = std::make_unique<NeuralRouter>(NeuralRouter::train(
        data, pf, tiny_config(), [&](const Progress& p) {
          ++calls;
          last_eta = p.eta_s;
          return p.stage == "train" && p.total > 0 && p.done <= p.total;
        },
        &report));
    progress_calls[0] = calls;
    (void)last_eta;
  }
};

const Trained& trained() {
  static Trained t;
  return t;
}

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::path(RN_BINARY_DIR) / ("router-" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

}  // namespace

TEST_CASE("RouterLoss: masked BCE, pairwise ranking, difficulty by hand", "[router][loss]") {
  routenlp::detail::RouterOutputs o;
  o.acc_logits = torch::tensor({{2.0f, -1.0f, 0.0f}});
  o.diff_logit = torch::tensor({0.0f});
  o.qual_logits = torch::zeros({1, 3});
  routenlp::detail::RouterTargets t;
  t.y = torch::tensor({{1.0f, 0.0f, 1.0f}});
  t.mask = torch::tensor({{1.0f, 1.0f, 0.0f}});  // tier 2 missing: never counted
  t.quality = torch::tensor({{1.0f, 0.0f, 0.0f}});
  auto sp = [](double x) { return std::log1p(std::exp(x)); };
  RouterLossConfig c;
  c.bce_weight = 1.0;
  c.ranking_weight = 0.0;
  c.difficulty_weight = 0.0;
  auto l = routenlp::detail::router_loss(o, t, c);
  CHECK(l.bce == Approx((sp(-2.0) + sp(-1.0)) / 2).epsilon(1e-5));
  // One pair (tier 0 acceptable, tier 1 not): softplus(margin - (2 - (-1))).
  CHECK(l.ranking == Approx(sp(-3.0)).epsilon(1e-5));
  c.ranking_margin = 1.0;
  CHECK(routenlp::detail::router_loss(o, t, c).ranking == Approx(sp(-2.0)).epsilon(1e-5));
  // Difficulty target: 1 of 2 observed tiers fails; logit 0 -> BCE = log 2.
  CHECK(l.difficulty == Approx(std::log(2.0)).epsilon(1e-5));
  CHECK(l.quality == Approx((std::pow(0.5 - 1.0, 2) + std::pow(0.5, 2)) / 2).epsilon(1e-5));
  c.ranking_margin = 0.0;
  c.ranking_weight = 0.5;
  c.difficulty_weight = 0.1;
  c.quality_weight = 2.0;
  auto w = routenlp::detail::router_loss(o, t, c);
  CHECK(w.total.item<double>() ==
        Approx(l.bce + 0.5 * l.ranking + 0.1 * l.difficulty + 2.0 * l.quality).epsilon(1e-5));
  // No acceptable/unacceptable pair and no outcomes at all: terms are 0, not NaN.
  t.mask = torch::zeros({1, 3});
  auto z = routenlp::detail::router_loss(o, t, c);
  CHECK(z.bce == 0.0);
  CHECK(z.ranking == 0.0);
  CHECK(z.difficulty == 0.0);
}

TEST_CASE("neural router learns the synthetic task x keyword rule (AUC >= 0.95)",
          "[router][neural]") {
  const auto& t = trained();
  auto te = make_labels(t.data, t.pf, Split::test);
  auto m = evaluate_router(*t.router, te);
  for (const auto& x : m) {
    INFO(x.tier << " auc " << x.auc << " brier " << x.brier);
    CHECK(x.auc >= 0.95);
  }
  CHECK(t.progress_calls[0] > 0);
  CHECK(t.report.train_rows + t.report.val_rows == make_labels(t.data, t.pf, Split::train).size());
  CHECK(t.report.best_epoch >= 1);  // training beat the initial (prior-only) weights
  CHECK(t.router->tiers() == std::vector<std::string>{"cheap", "mid", "strong"});
  CHECK(t.router->tasks() == std::vector<std::string>{"chat", "math", "qa"});
  // Difficulty tracks the share of failing tiers: "impossible" harder than "easy".
  auto e = t.router->score_one({"easy alpha bravo", "qa"});
  auto h = t.router->score_one({"impossible alpha bravo", "qa"});
  CHECK(h.difficulty > e.difficulty);
}

TEST_CASE("neural router: unseen task, empty query, over-long query", "[router][neural]") {
  const auto& t = trained();
  const auto& r = *t.router;
  auto u = r.score_one({"easy alpha", "brand-new-task"});
  CHECK(u.task_unseen);
  CHECK_FALSE(r.score_one({"easy alpha", "qa"}).task_unseen);
  for (double p : u.p_acceptable) CHECK((p >= 0.0 && p <= 1.0));
  // The keyword still drives the strong tier without a known task.
  CHECK(r.score_one({"impossible alpha", "brand-new-task"}).p_acceptable[2] < u.p_acceptable[2]);

  auto e = r.score_one({"", "qa"});
  REQUIRE(e.p_acceptable.size() == 3);
  for (double p : e.p_acceptable) CHECK(std::isfinite(p));

  // Longer than max_length (16 incl. [CLS]/[SEP]): truncated to the first 14 word pieces, so it
  // scores exactly like its first 14 words.
  std::string longq, first14;
  for (int i = 0; i < 2000; ++i) {
    std::string w = i == 3 ? "impossible" : kFiller[i % 14];
    longq += w + " ";
    if (i < 14) first14 += w + " ";
  }
  auto l = r.score_one({longq, "qa"});
  auto f = r.score_one({first14, "qa"});
  CHECK(l.p_acceptable == f.p_acceptable);
  CHECK(r.max_length() == 16);
  // A max_length beyond the encoder's positions is refused at training time.
  auto bad = tiny_config();
  bad.model.max_length = 17;
  CHECK_THROWS_AS(NeuralRouter::train(t.data, t.pf, bad), Error);
}

TEST_CASE("neural router: batch scores equal single scores, 8 threads equal serial",
          "[router][neural]") {
  const auto& t = trained();
  const auto& r = *t.router;
  auto te = make_labels(t.data, t.pf, Split::test);
  std::vector<RouteQuery> qs(te.queries.begin(), te.queries.begin() + 64);
  auto serial = r.score(qs);
  for (size_t i = 0; i < 4; ++i) {
    auto one = r.score_one(qs[i]);
    for (size_t k = 0; k < 3; ++k)
      CHECK(one.p_acceptable[k] == Approx(serial[i].p_acceptable[k]).margin(1e-5));
  }
  std::vector<std::vector<RouterScores>> got(8);
  std::vector<std::thread> th;
  for (int w = 0; w < 8; ++w)
    th.emplace_back([&, w] {
      for (int rep = 0; rep < 3; ++rep) got[static_cast<size_t>(w)] = r.score(qs);
    });
  for (auto& x : th) x.join();
  for (const auto& g : got) {
    REQUIRE(g.size() == serial.size());
    for (size_t i = 0; i < g.size(); ++i) CHECK(g[i].p_acceptable == serial[i].p_acceptable);
  }
  // Policies work on its scores.
  auto dec = route_batch(r, ThresholdPolicy::from_portfolio(t.pf), qs);
  CHECK(dec.size() == qs.size());
}

TEST_CASE("neural router: save/load round trip gives identical scores", "[router][neural]") {
  const auto& t = trained();
  auto dir = temp_dir("ckpt");
  t.router->save(dir);
  CHECK(std::filesystem::exists(dir + "/router.safetensors"));
  CHECK(std::filesystem::exists(dir + "/router.json"));
  CHECK(std::filesystem::exists(dir + "/vocab.txt"));
  auto back = NeuralRouter::load(dir);
  CHECK(back.parameters_flat() == t.router->parameters_flat());
  auto te = make_labels(t.data, t.pf, Split::test);
  std::vector<RouteQuery> qs(te.queries.begin(), te.queries.begin() + 32);
  qs.push_back({"easy", "unseen-task"});
  auto a = t.router->score(qs), b = back.score(qs);
  for (size_t i = 0; i < qs.size(); ++i) {
    CHECK(a[i].p_acceptable == b[i].p_acceptable);
    CHECK(a[i].difficulty == b[i].difficulty);
    CHECK(a[i].task_unseen == b[i].task_unseen);
  }
  CHECK(back.tasks() == t.router->tasks());
  CHECK(back.metadata_json() == t.router->metadata_json());
  // Overwriting an existing checkpoint works and leaves no temporary directories.
  t.router->save(dir);
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(dir).parent_path()))
    if (e.path().filename().string().rfind("router-ckpt", 0) == 0) ++entries;
  CHECK(entries == 1);
  // Corrupt metadata and a missing checkpoint are clear errors.
  CHECK_THROWS_AS(NeuralRouter::load(dir + "-missing"), Error);
  {
    std::FILE* f = std::fopen((dir + "/router.json").c_str(), "w");
    std::fputs("{\"format\": \"something-else\"}", f);
    std::fclose(f);
  }
  CHECK_THROWS_AS(NeuralRouter::load(dir), Error);
  // A field of the wrong JSON type is an Error naming it, not a raw nlohmann exception.
  t.router->save(dir);
  {
    std::ifstream in(dir + "/router.json");
    std::string meta((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = meta.find("\"vocab_hash\"");
    REQUIRE(at != std::string::npos);
    const auto q1 = meta.find('"', meta.find(':', at));
    const auto q2 = meta.find('"', q1 + 1);
    meta.replace(q1, q2 - q1 + 1, "12345");
    std::ofstream(dir + "/router.json") << meta;
  }
  try {
    NeuralRouter::load(dir);
    FAIL("a numeric vocab_hash loaded");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("vocab_hash") != std::string::npos);
  }
}

// Device placement of a loaded router (RouterRuntime). This machine may have no GPU: the CUDA
// cases check the errors when libtorch sees none, and the CPU placements check scores.
namespace {
template <class F>
Status status_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Status::ok;
}
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
RouterRuntime rt(std::string device, EncoderDType dtype = EncoderDType::fp32, bool graphs = false) {
  RouterRuntime r;
  r.device = std::move(device);
  r.dtype = dtype;
  r.cuda_graphs = graphs;
  return r;
}
}  // namespace

TEST_CASE("neural router: runtime device checks, auto on a CPU host scores as before",
          "[router][neural][device]") {
  const auto& t = trained();
  auto dir = temp_dir("device");
  t.router->save(dir);
  const bool cuda = torch::cuda::is_available();
  CHECK(t.router->device() == "cpu");  // trained routers stay on the CPU
  CHECK(NeuralRouter::resolve_device(rt("cpu")) == "cpu");
  CHECK(NeuralRouter::resolve_device(rt("auto")) == (cuda ? "cuda:0" : "cpu"));
  // Unknown or malformed device strings: invalid_argument, whatever the machine.
  for (const char* bad : {"gpu", "", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:0x", "cpu:0"}) {
    INFO(bad);
    CHECK(status_of([&] { NeuralRouter::resolve_device(rt(bad)); }) == Status::invalid_argument);
    CHECK(status_of([&] { NeuralRouter::load(dir, rt(bad)); }) == Status::invalid_argument);
  }
  CHECK(message_of([&] { NeuralRouter::load(dir, rt("gpu")); }).find("'gpu'") != std::string::npos);
  // Options the CPU cannot honour when the CPU is asked for explicitly.
  CHECK(status_of([&] { NeuralRouter::load(dir, rt("cpu", EncoderDType::fp16)); }) == Status::not_supported);
  CHECK(status_of([&] { NeuralRouter::load(dir, rt("cpu", EncoderDType::fp32, true)); }) == Status::not_supported);
  CHECK(status_of([&] { NeuralRouter::load(dir, rt("cpu", static_cast<EncoderDType>(7))); }) ==
        Status::invalid_argument);
  if (!cuda) {
    for (const char* dev : {"cuda", "cuda:0", "cuda:3"}) {
      INFO(dev);
      CHECK(status_of([&] { NeuralRouter::load(dir, rt(dev)); }) == Status::not_supported);
      CHECK(message_of([&] { NeuralRouter::load(dir, rt(dev)); }).find("'" + std::string(dev) + "'") !=
            std::string::npos);
      CHECK(status_of([&] { load_router(dir, rt(dev)); }) == Status::not_supported);
    }
  }
  auto te = make_labels(t.data, t.pf, Split::test);
  std::vector<RouteQuery> qs(te.queries.begin(), te.queries.begin() + 40);
  qs.push_back({"easy", "unseen-task"});
  const auto ref = t.router->score(qs);
  auto same_scores = [&](const RouterModel& r) {
    auto s = r.score(qs);
    REQUIRE(s.size() == ref.size());
    for (size_t i = 0; i < qs.size(); ++i) {
      CHECK(s[i].p_acceptable == ref[i].p_acceptable);
      CHECK(s[i].difficulty == ref[i].difficulty);
    }
  };
  // Default runtime and explicit CPU: bit-identical to the trained router.
  same_scores(NeuralRouter::load(dir, rt("cpu")));
  same_scores(*load_router(dir, rt("cpu")));
  if (!cuda) {
    // "auto" on a CPU host: the CPU default, with bf16 and CUDA graphs dropped (not refused).
    auto a = NeuralRouter::load(dir, rt("auto", EncoderDType::bf16, true));
    CHECK(a.device() == "cpu");
    CHECK(a.runtime().dtype == EncoderDType::fp32);
    CHECK_FALSE(a.runtime().cuda_graphs);
    same_scores(a);
    same_scores(*load_router(dir, rt("auto", EncoderDType::bf16, true)));
    CHECK(a.parameters_flat() == t.router->parameters_flat());
  }
  // load_router checks the runtime for every kind, not only neural ones.
  auto tp_dir = temp_dir("device-task-prior");
  save_router(*make_task_prior_router(make_labels(t.data, t.pf, Split::train)), tp_dir);
  CHECK(status_of([&] { load_router(tp_dir, rt("gpu")); }) == Status::invalid_argument);
  CHECK(load_router(tp_dir, rt("auto")) != nullptr);
}

TEST_CASE("neural router: bf16 encoder on the CPU keeps fp32 heads and refuses to save",
          "[router][neural][device]") {
  const auto& t = trained();
  auto dir = temp_dir("device-bf16");
  t.router->save(dir);
  auto b = NeuralRouter::load(dir, rt("cpu", EncoderDType::bf16));
  CHECK(b.device() == "cpu");
  CHECK(b.runtime().dtype == EncoderDType::bf16);
  auto te = make_labels(t.data, t.pf, Split::test);
  std::vector<RouteQuery> qs(te.queries.begin(), te.queries.begin() + 40);
  auto a = t.router->score(qs), s = b.score(qs);
  double worst = 0.0;
  for (size_t i = 0; i < qs.size(); ++i)
    for (size_t k = 0; k < a[i].p_acceptable.size(); ++k)
      worst = std::max(worst, std::fabs(a[i].p_acceptable[k] - s[i].p_acceptable[k]));
  CHECK(worst < 0.05);  // bf16 rounding of the encoder only
  CHECK(b.embed(qs).front().size() == t.router->embed(qs).front().size());
  CHECK(status_of([&] { b.save(temp_dir("device-bf16-save")); }) == Status::invalid_argument);
}

TEST_CASE("neural router: int8 encoder on the CPU stays close to fp32 and refuses to save",
          "[router][neural][device][int8]") {
  const auto& t = trained();
  auto dir = temp_dir("device-int8");
  t.router->save(dir);
  RouterRuntime r8 = rt("cpu");
  r8.int8_dynamic = true;
  auto b = NeuralRouter::load(dir, r8);
  CHECK(b.device() == "cpu");
  CHECK(b.runtime().int8_dynamic);
  CHECK(b.runtime().dtype == EncoderDType::fp32);
  auto te = make_labels(t.data, t.pf, Split::test);
  std::vector<RouteQuery> qs(te.queries.begin(), te.queries.begin() + 40);
  auto a = t.router->score(qs), s = b.score(qs);
  double worst = 0.0, moved = 0.0;
  for (size_t i = 0; i < qs.size(); ++i)
    for (size_t k = 0; k < a[i].p_acceptable.size(); ++k) {
      worst = std::max(worst, std::fabs(a[i].p_acceptable[k] - s[i].p_acceptable[k]));
      moved += std::fabs(a[i].p_acceptable[k] - s[i].p_acceptable[k]);
    }
  CHECK(worst < 0.05);  // int8 rounding of the encoder's Linear layers only
  CHECK(moved > 0.0);   // really quantized
  // Batch 1 and a batch agree (activations are quantized per token row, so padding and the other
  // queries do not change a query's quantization; the fp32 heads' GEMM may differ in the last bits).
  for (size_t i = 0; i < 3; ++i) {
    const auto one = b.score({qs[i]}).front().p_acceptable;
    for (size_t k = 0; k < one.size(); ++k) CHECK(std::fabs(one[k] - s[i].p_acceptable[k]) < 1e-6);
  }
  CHECK(status_of([&] { b.save(temp_dir("device-int8-save")); }) == Status::invalid_argument);
  // int8 is a CPU fp32 setting: refused with another dtype or an explicit CUDA device.
  RouterRuntime bad = rt("cpu", EncoderDType::bf16);
  bad.int8_dynamic = true;
  CHECK(status_of([&] { NeuralRouter::load(dir, bad); }) == Status::invalid_argument);
  bad = rt("cuda");
  bad.int8_dynamic = true;
  CHECK(status_of([&] { NeuralRouter::load(dir, bad); }) == Status::not_supported);
  // "auto" on a CPU host keeps it.
  if (!torch::cuda::is_available()) {
    RouterRuntime au = rt("auto");
    au.int8_dynamic = true;
    CHECK(NeuralRouter::load(dir, au).runtime().int8_dynamic);
  }
}

TEST_CASE("neural router: same seed gives bitwise identical weights", "[router][neural]") {
  auto data = synthetic(300, 12);
  auto pf = synthetic_portfolio();
  auto c = tiny_config(7);
  c.epochs = 2;
  c.model.dropout = 0.1;  // dropout draws must be seeded too
  auto a = NeuralRouter::train(data, pf, c);
  auto b = NeuralRouter::train(data, pf, c);
  CHECK(a.parameters_flat() == b.parameters_flat());
  c.seed = 8;
  auto d = NeuralRouter::train(data, pf, c);
  CHECK(a.parameters_flat() != d.parameters_flat());
}

TEST_CASE("neural router: cancel and throwing callbacks, config JSON", "[router][neural]") {
  auto data = synthetic(200, 13);
  auto pf = synthetic_portfolio();
  auto c = tiny_config();
  c.epochs = 1;
  try {
    NeuralRouter::train(data, pf, c, [](const Progress&) { return false; });
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.code() == Status::cancelled);
  }
  try {
    NeuralRouter::train(data, pf, c, [](const Progress&) -> bool { throw std::runtime_error("boom"); });
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.code() == Status::callback);
    CHECK(std::string(e.what()).find("boom") != std::string::npos);
  }
  auto j = c.to_json();
  auto back = RouterTrainConfig::from_json(j);
  CHECK(back.to_json() == j);
  CHECK(back.model.encoder.dim == 32);
  CHECK_THROWS_AS(RouterTrainConfig::from_json("{\"epochs\": 0}"), Error);
  CHECK_THROWS_AS(RouterTrainConfig::from_json("{\"epoch\": 3}"), Error);
  CHECK_THROWS_AS(RouterTrainConfig::from_json("{\"model\": {\"pooling\": \"max\"}}"), Error);
  CHECK_THROWS_AS(RouterTrainConfig::from_json("not json"), Error);
  // Empty train split.
  Dataset none;
  CHECK_THROWS_AS(NeuralRouter::train(none, pf, c), Error);
}

TEST_CASE("neural router: mean pooling, HF directory start, kNN on its embeddings",
          "[router][neural]") {
  auto data = synthetic(400, 14);
  auto pf = synthetic_portfolio();
  auto c = tiny_config(3);
  c.epochs = 3;
  c.model.pooling = Pooling::mean;
  // An HF directory written by the encoder (random weights) is a valid starting point.
  auto hf = temp_dir("hf");
  Encoder::random_init(c.model.encoder, 5).save_hf_dir(hf);
  c.model.hf_dir = hf;
  RouterTrainReport rep;
  auto r = NeuralRouter::train(data, pf, c, nullptr, &rep);
  CHECK(rep.epochs_run >= 1);
  auto emb = r.embed({{"easy alpha", "qa"}, {"", "math"}});
  REQUIRE(emb.size() == 2);
  CHECK(emb[0].size() == 32);
  auto tr = make_labels(data, pf, Split::train);
  auto knn = make_knn_router(tr, {}, r.embedder());
  CHECK(knn->name() == "knn-encoder");
  CHECK(knn->score_one({"easy alpha", "qa"}).p_acceptable.size() == 3);
}
#endif

TEST_CASE("bundled router-small.json equals the RouterTrainConfig defaults", "[router][config]") {
  auto c = RouterTrainConfig::load(std::string(RN_REPO_DATA_DIR) + "/configs/router-small.json");
  CHECK(c.to_json() == RouterTrainConfig{}.to_json());
  CHECK(c.model.encoder.dim == 128);
  CHECK(c.model.max_length <= c.model.encoder.max_position_embeddings);
  // 1e999 overflows a double: an Error naming the file, not a stray json::out_of_range.
  try {
    RouterTrainConfig::from_json("{\"epochs\": 1e999}", "cfg.json");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Status::parse);
    CHECK(std::string(e.what()).find("cfg.json") != std::string::npos);
  }
}

TEST_CASE("router config: a float or out-of-range integer field is a parse error naming it",
          "[router][config]") {
  // is_number_integer() was checked, but get<int>() wrapped: 4294967297 epochs read as 1.
  for (const char* field : {"epochs", "batch_size", "patience", "threads", "seed", "model.max_length",
                            "model.task_dim", "model.hidden"}) {
    const std::string f = field;
    const bool nested = f.rfind("model.", 0) == 0;
    const std::string key = nested ? f.substr(6) : f;
    for (const std::string v : {"1e300", "2.0", f == "seed" ? "-1" : "4294967297"}) {
      const std::string text = nested ? "{\"model\": {\"" + key + "\": " + v + "}}"
                                      : "{\"" + key + "\": " + v + "}";
      INFO(text);
      try {
        RouterTrainConfig::from_json(text, "cfg.json");
        FAIL("no error");
      } catch (const Error& e) {
        CHECK(e.code() == Status::parse);
        CHECK_THAT(e.what(), Catch::Contains("cfg.json: " + f + ": expected an integer"));
      }
    }
  }
  CHECK(RouterTrainConfig::from_json("{\"seed\": 18446744073709551615}").seed == UINT64_MAX);
}

#ifdef ROUTENLP_HAVE_TORCH
TEST_CASE("neural router: the prior offset starts from the smoothed task prior",
          "[router][neural]") {
  auto data = synthetic(300, 15);
  auto pf = synthetic_portfolio();
  auto c = tiny_config(1);
  c.epochs = 1;
  c.learning_rate = 1e-12;  // effectively untrained
  c.validation_fraction = 0.0;
  auto r = NeuralRouter::train(data, pf, c);
  auto tr = make_labels(data, pf, Split::train);
  for (const char* task : {"qa", "math", "chat"}) {
    auto [pos, n] = acceptable_counts(tr, task);
    auto s = r.score_one({"alpha easy", task});
    for (size_t k = 0; k < 3; ++k)
      CHECK(s.p_acceptable[k] == Approx((pos[k] + 0.5) / (n[k] + 1.0)).margin(1e-4));
  }
  c.model.prior_offset = false;
  auto r0 = NeuralRouter::train(data, pf, c);
  // Without the offset the untrained heads know nothing of the task: math's tier 0 (never
  // acceptable, prior ~0.005) is scored near 0.5.
  CHECK(r.score_one({"alpha", "math"}).p_acceptable[0] < 0.02);
  CHECK(r0.score_one({"alpha", "math"}).p_acceptable[0] > 0.1);
}
// The local classifier tier takes the same runtime (LocalClassifierRuntime).
TEST_CASE("LocalClassifierTier: runtime device checks, auto on a CPU host predicts as before",
          "[router][device][coopt]") {
  std::vector<std::string> texts, labels;
  const char* words[3] = {"easy", "hard", "impossible"};
  for (int i = 0; i < 60; ++i) {
    texts.push_back(std::string(words[i % 3]) + " " + kFiller[i % 14] + " " + kFiller[(i / 3) % 14]);
    labels.push_back(words[i % 3]);
  }
  LocalClassifierConfig cfg;
  cfg.encoder_config_json =
      R"({"dim":32,"n_layers":1,"n_heads":2,"hidden_dim":64,"max_position_embeddings":16,"vocab_size":30})";
  cfg.max_length = 12;
  cfg.vocab_path = std::string(RN_TEST_DATA_DIR) + "/router/tiny-vocab.txt";
  ClassifierTrainConfig tc;
  tc.epochs = 4;
  tc.batch_size = 16;
  tc.learning_rate = 3e-3;
  auto tier = LocalClassifierTier::train(texts, labels, cfg, tc);
  CHECK(tier->device() == "cpu");
  auto dir = temp_dir("device-classifier");
  tier->save(dir);
  const bool cuda = torch::cuda::is_available();
  auto lrt = [](std::string d, EncoderDType dt = EncoderDType::fp32, bool g = false) {
    LocalClassifierRuntime r;
    r.device = std::move(d);
    r.dtype = dt;
    r.cuda_graphs = g;
    return r;
  };
  CHECK(status_of([&] { LocalClassifierTier::load(dir, lrt("tpu")); }) == Status::invalid_argument);
  CHECK(status_of([&] { LocalClassifierTier::load(dir, lrt("cpu", EncoderDType::fp16)); }) == Status::not_supported);
  CHECK(status_of([&] { LocalClassifierTier::load(dir, lrt("cpu", EncoderDType::fp32, true)); }) ==
        Status::not_supported);
  if (!cuda) {
    CHECK(status_of([&] { LocalClassifierTier::load(dir, lrt("cuda")); }) == Status::not_supported);
    CHECK(message_of([&] { LocalClassifierTier::load(dir, lrt("cuda:1")); }).find("'cuda:1'") != std::string::npos);
  }
  const auto ref = tier->predict(texts);
  auto same = [&](const LocalClassifierTier& t) {
    auto p = t.predict(texts);
    REQUIRE(p.size() == ref.size());
    for (size_t i = 0; i < p.size(); ++i) {
      CHECK(p[i].label == ref[i].label);
      CHECK(p[i].confidence == Approx(ref[i].confidence).margin(1e-5));  // as the save/load test
    }
  };
  same(*LocalClassifierTier::load(dir, lrt("cpu")));
  if (!cuda) {
    auto a = LocalClassifierTier::load(dir, lrt("auto", EncoderDType::bf16, true));
    CHECK(a->device() == "cpu");
    CHECK(a->runtime().dtype == EncoderDType::fp32);
    same(*a);
  }
  // bf16 on the CPU: the encoder rounded, the head fp32; weights cannot be saved or tuned.
  auto b = LocalClassifierTier::load(dir, lrt("cpu", EncoderDType::bf16));
  auto pb = b->predict(texts);
  for (size_t i = 0; i < pb.size(); ++i) CHECK(std::fabs(pb[i].confidence - ref[i].confidence) < 0.05);
  CHECK(b->embed({texts[0]}).front().size() == 32);
  CHECK(status_of([&] { b->save(temp_dir("device-classifier-bf16")); }) == Status::invalid_argument);
  CHECK(status_of([&] { b->fine_tune({texts[0]}, {labels[0]}, tc); }) == Status::invalid_argument);
}
#endif
