// Stacked router (ridge logistic regression on base routers' logits) and held-out selection.
// Bases are lookup tables of known probabilities, so the signal each carries is exact.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/stacked.hpp"

using namespace routenlp;

namespace {

// p per query text from a table; unknown queries get 0.5.
class TableRouter final : public RouterModel {
 public:
  TableRouter(std::string name, std::vector<std::string> tiers)
      : name_(std::move(name)), tiers_(std::move(tiers)) {}
  void set(const std::string& q, std::vector<double> p) { p_[q] = std::move(p); }
  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override {
    std::vector<RouterScores> out(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      auto it = p_.find(batch[i].query);
      out[i].p_acceptable = it == p_.end() ? std::vector<double>(tiers_.size(), 0.5) : it->second;
      out[i].task_unseen = batch[i].task == "unseen";
    }
    return out;
  }
  std::string name() const override { return name_; }
  std::vector<std::string> tiers() const override { return tiers_; }

 private:
  std::string name_;
  std::vector<std::string> tiers_;
  std::unordered_map<std::string, std::vector<double>> p_;
};

double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Two tiers; per query two independent signals s1, s2 ~ N(0, 1). Tier k is acceptable with
// probability sigmoid(bias_k + a1[k] * s1 + a2[k] * s2). Base "one" reports sigmoid(s1) for every tier,
// base "two" sigmoid(s2); "noise" an independent draw. Queries are named by `prefix`.
struct Mixture {
  std::shared_ptr<TableRouter> one, two, noise;
  RoutingLabels labels;
};

using Coef = std::array<double, 2>;

void add_rows(Mixture& m, size_t n, uint64_t seed, const std::string& prefix, Coef a1, Coef a2) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double bias[2] = {-0.5, 0.7};
  for (size_t i = 0; i < n; ++i) {
    std::string q = prefix + std::to_string(i);
    double s1 = g(rng), s2 = g(rng), s3 = g(rng);
    m.one->set(q, {sig(s1), sig(s1)});
    m.two->set(q, {sig(s2), sig(s2)});
    m.noise->set(q, {sig(s3), sig(s3)});
    m.labels.queries.push_back({q, "t"});
    std::vector<int8_t> acc(2);
    for (int k = 0; k < 2; ++k) acc[size_t(k)] = u(rng) < sig(bias[k] + a1[k] * s1 + a2[k] * s2) ? 1 : 0;
    if (i % 13 == 4) acc[1] = -1;  // a missing outcome: skipped for that tier
    m.labels.acceptable.push_back(acc);
  }
}

Mixture mixture(size_t n, uint64_t seed, const std::string& prefix, Coef a1, Coef a2) {
  std::vector<std::string> tiers{"cheap", "strong"};
  Mixture m{std::make_shared<TableRouter>("one", tiers), std::make_shared<TableRouter>("two", tiers),
            std::make_shared<TableRouter>("noise", tiers), {}};
  m.labels.tiers = tiers;
  add_rows(m, n, seed, prefix, a1, a2);
  return m;
}

// Labels of fresh rows from the same process, registered in the same base routers.
RoutingLabels fresh(Mixture& m, size_t n, uint64_t seed, Coef a1, Coef a2) {
  RoutingLabels keep = m.labels;
  m.labels.queries.clear();
  m.labels.acceptable.clear();
  add_rows(m, n, seed, "fresh", a1, a2);
  RoutingLabels out = m.labels;
  m.labels = keep;
  return out;
}

}  // namespace

TEST_CASE("stack of two half-signal bases beats both on fresh rows", "[router][stack]") {
  Mixture m = mixture(3000, 11, "fit", {1.5, 1.5}, {1.5, 1.5});
  std::vector<std::shared_ptr<const RouterModel>> bases{m.one, m.two};
  auto stack = fit_stacked_router(bases, m.labels);
  CHECK(stack->name() == "stacked(one+two)");
  RoutingLabels te = fresh(m, 3000, 12, {1.5, 1.5}, {1.5, 1.5});
  double a_one = mean_tier_auc(evaluate_router(*m.one, te));
  double a_two = mean_tier_auc(evaluate_router(*m.two, te));
  double a_stack = mean_tier_auc(evaluate_router(*stack, te));
  INFO("one " << a_one << " two " << a_two << " stack " << a_stack);
  CHECK(a_stack > std::max(a_one, a_two) + 0.05);
  // Calibrated too: its Brier is below each base's on every tier.
  auto ms = evaluate_router(*stack, te), m1 = evaluate_router(*m.one, te);
  for (size_t k = 0; k < ms.size(); ++k) CHECK(ms[k].brier < m1[k].brier);
}

TEST_CASE("stack weights recover a known mixture of logits", "[router][stack]") {
  // True logits: tier 0 bias - 0.5 + 1.5 logit(p_one) + 0.5 logit(p_two); tier 1 0.7 + 0.5 / 1.5.
  Mixture m = mixture(20000, 21, "w", {1.5, 0.5}, {0.5, 1.5});
  std::vector<std::vector<RouterScores>> s(2);
  s[0] = m.one->score(m.labels.queries);
  s[1] = m.two->score(m.labels.queries);
  const double bias[2] = {-0.5, 0.7}, w1[2] = {1.5, 0.5}, w2[2] = {0.5, 1.5};
  StackOptions free;  // independent tiers, almost no ridge
  free.pool = 0;
  free.l2 = 1e-5;
  StackWeights w = fit_stack_weights(s, m.labels, free);
  REQUIRE(w.size() == 2);
  for (size_t k = 0; k < 2; ++k) {
    REQUIRE(w[k].size() == 3);
    INFO("tier " << k << ": " << w[k][0] << " " << w[k][1] << " " << w[k][2]);
    CHECK(std::fabs(w[k][0] - bias[k]) < 0.1);
    CHECK(std::fabs(w[k][1] - w1[k]) < 0.1);
    CHECK(std::fabs(w[k][2] - w2[k]) < 0.1);
  }
  // Fully pooled: one weight vector for both tiers (between the two), own biases.
  StackOptions shared = free;
  shared.pool = HUGE_VAL;
  StackWeights ws = fit_stack_weights(s, m.labels, shared);
  CHECK(ws[0][1] == ws[1][1]);
  CHECK(ws[0][2] == ws[1][2]);
  CHECK(ws[0][1] > 0.6);
  CHECK(ws[0][1] < 1.4);
  CHECK(ws[0][0] < ws[1][0]);
  // The default pooling sits in between, near the shared weights: tier 0 still leans more on
  // base one than tier 1 does.
  StackWeights wd = fit_stack_weights(s, m.labels);
  INFO("default: " << wd[0][1] << " " << wd[0][2] << " / " << wd[1][1] << " " << wd[1][2]);
  CHECK(wd[0][1] - wd[0][2] > wd[1][1] - wd[1][2] + 0.1);
  CHECK(wd[0][1] - wd[0][2] < w[0][1] - w[0][2] - 0.3);
  CHECK(wd[1][2] - wd[1][1] < w[1][2] - w[1][1] - 0.3);
  // A stronger ridge shrinks the weights.
  StackOptions strong = free;
  strong.l2 = 1.0;
  StackWeights wr = fit_stack_weights(s, m.labels, strong);
  CHECK(wr[0][1] < w[0][1] - 0.5);
  CHECK_THROWS_AS(fit_stack_weights(s, m.labels, StackOptions{-1.0}), Error);
}

TEST_CASE("stack: the formula by hand, batch equals single, thread-safe", "[router][stack]") {
  Mixture m = mixture(200, 31, "q", {1.0, 1.0}, {1.0, 1.0});
  std::vector<std::shared_ptr<const RouterModel>> bases{m.one, m.two};
  StackWeights w{{0.2, 1.0, -0.5}, {-0.1, 0.3, 2.0}};
  auto stack = make_stacked_router(bases, w);
  const auto& qs = m.labels.queries;
  auto batch = stack->score(qs);
  REQUIRE(batch.size() == qs.size());
  auto logit = [](double p) { return std::log(p / (1 - p)); };
  for (size_t i = 0; i < qs.size(); ++i) {
    RouterScores one = stack->score_one(qs[i]);
    for (size_t k = 0; k < 2; ++k) CHECK(one.p_acceptable[k] == batch[i].p_acceptable[k]);
    CHECK(one.difficulty == batch[i].difficulty);
    double p1 = m.one->score_one(qs[i]).p_acceptable[0], p2 = m.two->score_one(qs[i]).p_acceptable[0];
    CHECK(batch[i].p_acceptable[0] == Approx(sig(0.2 + logit(p1) - 0.5 * logit(p2))).epsilon(1e-12));
    CHECK(batch[i].p_acceptable[1] == Approx(sig(-0.1 + 0.3 * logit(p1) + 2.0 * logit(p2))).epsilon(1e-12));
    CHECK(batch[i].difficulty == Approx(1.0 - (batch[i].p_acceptable[0] + batch[i].p_acceptable[1]) / 2));
  }
  // Base p of 0 and 1 are clipped to [1e-4, 1 - 1e-4]: finite logits, p strictly inside (0, 1).
  auto t = std::make_shared<TableRouter>("edge", std::vector<std::string>{"cheap", "strong"});
  t->set("x", {0.0, 1.0});
  auto e = make_stacked_router({t}, {{0.0, 1.0}, {0.0, 1.0}});
  auto ex = e->score_one({"x", "unseen"});
  CHECK(ex.p_acceptable[0] == Approx(1e-4));
  CHECK(ex.p_acceptable[1] == Approx(1 - 1e-4));
  CHECK(ex.task_unseen);  // any base's flag
  // Concurrent scoring gives the same numbers.
  std::vector<std::vector<RouterScores>> par(4);
  std::vector<std::thread> th;
  for (size_t t2 = 0; t2 < par.size(); ++t2) th.emplace_back([&, t2] { par[t2] = stack->score(qs); });
  for (auto& x : th) x.join();
  for (const auto& r : par)
    for (size_t i = 0; i < qs.size(); ++i) CHECK(r[i].p_acceptable == batch[i].p_acceptable);
}

TEST_CASE("stack rejects bases with different tier lists and malformed weights", "[router][stack]") {
  auto a = std::make_shared<TableRouter>("a", std::vector<std::string>{"cheap", "strong"});
  auto b = std::make_shared<TableRouter>("b", std::vector<std::string>{"cheap", "mid"});
  auto c = std::make_shared<TableRouter>("c", std::vector<std::string>{"strong", "cheap"});
  StackWeights w{{0, 1, 1}, {0, 1, 1}};
  try {
    make_stacked_router({a, b}, w);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Status::invalid_argument);
    CHECK(std::string(e.what()).find("share the tier list") != std::string::npos);
  }
  CHECK_THROWS_AS(make_stacked_router({a, c}, w), Error);  // same tiers, other order
  CHECK_THROWS_AS(make_stacked_router({}, {}), Error);
  CHECK_THROWS_AS(make_stacked_router({a, nullptr}, w), Error);
  CHECK_THROWS_AS(make_stacked_router({a, a}, {{0, 1, 1}}), Error);      // one row for 2 tiers
  CHECK_THROWS_AS(make_stacked_router({a, a}, {{0, 1}, {0, 1}}), Error);  // 2 entries, need 3
  CHECK_NOTHROW(make_stacked_router({a, a}, w));
  RoutingLabels l;
  l.tiers = {"cheap", "mid"};
  l.queries = {{"x", "t"}};
  l.acceptable = {{1, 0}};
  CHECK_THROWS_AS(fit_stacked_router({b, a}, l), Error);
  CHECK_THROWS_AS(select_router({a, b}, l), Error);
  CHECK_THROWS_AS(select_router({a}, l), Error);  // labels' tiers differ from the router's
}

TEST_CASE("stack: a tier without both classes gets the plain mean of the logits",
          "[router][stack]") {
  Mixture m = mixture(300, 41, "c", {1.0, 1.0}, {1.0, 1.0});
  for (auto& row : m.labels.acceptable) row[1] = 1;  // tier 1 always acceptable
  std::vector<std::vector<RouterScores>> s{m.one->score(m.labels.queries),
                                           m.two->score(m.labels.queries)};
  StackWeights w = fit_stack_weights(s, m.labels);
  CHECK(w[1] == std::vector<double>{0.0, 0.5, 0.5});
  CHECK(w[0][1] > 0.5);  // tier 0 was fitted
  CHECK(std::isnan(mean_tier_auc({TierMetrics{"a", 1, 0, NAN, 0}})));
  CHECK(std::isnan(mean_tier_auc({})));
  CHECK(mean_tier_auc({TierMetrics{"a", 1, 0, 0.6, 0}, TierMetrics{"b", 1, 0, NAN, 0},
                       TierMetrics{"c", 1, 0, 0.8, 0}}) == Approx(0.7));
}

TEST_CASE("stack anchor: little evidence keeps the stack near the anchor base", "[router][stack]") {
  // Few rows and no signal in base "two": anchored on base one, the weights stay near (1, 0);
  // unanchored, the ridge pulls both toward 0 instead.
  Mixture m = mixture(60, 71, "a", {1.0, 1.0}, {0.0, 0.0});
  std::vector<std::vector<RouterScores>> s{m.one->score(m.labels.queries),
                                           m.two->score(m.labels.queries)};
  StackOptions anchored;
  anchored.anchor = 0;
  anchored.l2 = 1.0;
  StackWeights wa = fit_stack_weights(s, m.labels, anchored);
  StackOptions plain = anchored;
  plain.anchor = -1;
  StackWeights wp = fit_stack_weights(s, m.labels, plain);
  for (size_t k = 0; k < 2; ++k) {
    INFO("tier " << k << ": anchored " << wa[k][1] << " " << wa[k][2] << ", plain " << wp[k][1]
                 << " " << wp[k][2]);
    CHECK(std::fabs(wa[k][1] - 1.0) < 0.25);
    CHECK(std::fabs(wa[k][2]) < 0.1);
    CHECK(wp[k][1] < wa[k][1] - 0.3);
  }
  // A tier without both classes falls back to the anchor alone.
  for (auto& row : m.labels.acceptable) row[1] = 0;
  StackWeights wd = fit_stack_weights(s, m.labels, anchored);
  CHECK(wd[1] == std::vector<double>{0.0, 1.0, 0.0});
}

TEST_CASE("selection on held-out rows picks the informative base over noise", "[router][stack]") {
  Mixture m = mixture(1000, 51, "s", {2.0, 2.0}, {0.0, 0.0});  // only base "one" carries signal
  SelectOptions no_stack;
  no_stack.with_stack = false;
  for (double se_rule : {0.0, 1.0})
    for (auto order : {0, 1}) {
      std::vector<std::shared_ptr<const RouterModel>> c =
          order == 0 ? std::vector<std::shared_ptr<const RouterModel>>{m.noise, m.one}
                     : std::vector<std::shared_ptr<const RouterModel>>{m.one, m.noise};
      no_stack.se_rule = se_rule;
      RouterSelection sel = select_router(c, m.labels, no_stack);
      REQUIRE(sel.names.size() == 2);
      CHECK(sel.model->name() == "one");
      CHECK(sel.names[sel.chosen] == "one");
      CHECK(sel.chosen == sel.best);
      CHECK_FALSE(sel.stacked());
      CHECK(sel.stack_weights.empty());
      size_t noise = order == 0 ? 0 : 1;
      CHECK(std::fabs(sel.heldout_auc[noise] - 0.5) < 0.05);
      CHECK(sel.heldout_auc[1 - noise] > 0.7);
      // The noise is far more than one standard error behind.
      CHECK(sel.heldout_auc_se[noise] > 0.005);
      CHECK(sel.heldout_auc_se[noise] < 0.05);
      CHECK(sel.heldout_auc_se[1 - noise] == 0.0);
    }
  // With the stack competing: never the noise; the stack's out-of-fold AUC is close to "one"'s
  // (its fit ignores the noise), so either may be chosen.
  RouterSelection sel = select_router({m.noise, m.one}, m.labels);
  REQUIRE(sel.names.size() == 3);
  CHECK(sel.names[2] == "stacked(noise+one)");
  CHECK(sel.chosen != 0);
  CHECK(sel.model->name() == sel.names[sel.chosen]);
  CHECK(std::fabs(sel.heldout_auc[2] - sel.heldout_auc[1]) < 0.02);
  CHECK(sel.stack_weights.size() == 2);
  CHECK(std::fabs(sel.stack_weights[0][1]) < 0.2 * sel.stack_weights[0][2]);
  // Several stack configurations: the one with the better out-of-fold AUC competes. Anchored
  // on the noise base with a strong ridge, the stack is worse than plain and is not taken.
  SelectOptions two;
  StackOptions bad;
  bad.anchor = 0;  // the noise
  bad.l2 = 3.0;
  two.stacks = {bad, StackOptions{}};
  RouterSelection tw = select_router({m.noise, m.one}, m.labels, two);
  REQUIRE(tw.stack_config_auc.size() == 2);
  CHECK(tw.stack_config_auc[0] < tw.stack_config_auc[1] - 0.02);
  CHECK(tw.stack_config == 1);
  CHECK(tw.heldout_auc[2] == tw.stack_config_auc[1]);
  CHECK(tw.stack_weights == sel.stack_weights);  // the same fit as the default configuration
  two.stacks.clear();
  CHECK_THROWS_AS(select_router({m.noise, m.one}, m.labels, two), Error);
  // Not preferred and with se_rule 0, the stack must strictly beat "one" on held-out rows.
  SelectOptions plain;
  plain.prefer_stack = false;
  plain.se_rule = 0;
  RouterSelection p = select_router({m.noise, m.one}, m.labels, plain);
  CHECK(p.chosen == (p.heldout_auc[2] > p.heldout_auc[1] ? 2u : 1u));
  // Prefer the simpler candidate within the SE rule: a weaker but real signal listed first wins
  // over a slightly better one only when the gap is within the standard error.
  plain.with_stack = false;
  plain.se_rule = 1.0;
  Mixture w = mixture(400, 79, "w", {1.0, 1.0}, {1.0, 1.0});  // two equal signals
  RouterSelection near = select_router({w.two, w.one}, w.labels, plain);
  INFO(near.heldout_auc[0] << " " << near.heldout_auc[1] << " se " << near.heldout_auc_se[0]);
  REQUIRE(near.best == 1);  // by chance, for this seed
  CHECK(near.heldout_auc[1] - near.heldout_auc[0] > 0.005);
  CHECK(near.chosen == 0);  // within one SE: the first listed
  plain.se_rule = 0;
  CHECK(select_router({w.two, w.one}, w.labels, plain).chosen == 1);
}

TEST_CASE("selection picks the stack when two bases each carry half the signal",
          "[router][stack]") {
  Mixture m = mixture(1000, 61, "h", {1.5, 1.5}, {1.5, 1.5});
  RouterSelection sel = select_router({m.one, m.two}, m.labels);
  INFO(sel.heldout_auc[0] << " " << sel.heldout_auc[1] << " " << sel.heldout_auc[2]);
  CHECK(sel.stacked());
  CHECK(sel.chosen == 2);
  CHECK(sel.heldout_auc[2] > std::max(sel.heldout_auc[0], sel.heldout_auc[1]) + 0.05);
  REQUIRE(sel.model);
  CHECK(sel.model->name() == "stacked(one+two)");
  // The same seed gives the same folds and numbers.
  RouterSelection again = select_router({m.one, m.two}, m.labels);
  CHECK(again.heldout_auc == sel.heldout_auc);
  CHECK(again.stack_weights == sel.stack_weights);
}
