// Reference systems that need no model: always:<tier>, random, oracle.
#include <algorithm>
#include <cmath>

#include "eval/eval_internal.hpp"
#include "routenlp/error.hpp"

namespace routenlp::detail {

namespace {

class AlwaysSystem : public System {
 public:
  AlwaysSystem(std::string name, int tier) : name_(std::move(name)), tier_(tier) {}
  std::string name() const override { return name_; }
  void fit(const SystemContext&) override {}
  std::vector<Decision> decide(const SystemContext&, const std::vector<size_t>& rows) override {
    return std::vector<Decision>(rows.size(), single_call(tier_));
  }

 private:
  std::string name_;
  int tier_;
};

// Uniform over all tiers; its sweep sends a share p of queries to the reference tier and the
// rest to the cheapest (RouteLLM's random router for two tiers).
class RandomSystem : public System {
 public:
  explicit RandomSystem(const PortfolioConfig& c)
      : tiers_(int(c.tiers.size())), ref_(c.reference_tier_index()) {}
  std::string name() const override { return "random"; }
  void fit(const SystemContext& ctx) override { seed_ = ctx.seed; }
  double u(const SystemContext& ctx, size_t row, uint64_t salt) const {
    uint64_t h = mix_seed(mix_seed(seed_, salt), hash_string(ctx.query(row).id));
    return double(h >> 11) * (1.0 / 9007199254740992.0);
  }
  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    std::vector<Decision> out;
    for (size_t r : rows) out.push_back(single_call(std::min(tiers_ - 1, int(u(ctx, r, 1) * tiers_))));
    return out;
  }
  size_t sweep_size() const override { return 21; }
  std::string sweep_label(size_t p) const override {
    return "p_reference=" + std::to_string(double(p) / 20.0).substr(0, 4);
  }
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override {
    double share = double(p) / 20.0;
    std::vector<Decision> out;
    for (size_t r : rows) out.push_back(single_call(u(ctx, r, 2) < share ? ref_ : 0));
    return out;
  }
  std::string detail() const override { return "uniform over tiers; sweep: reference vs cheapest"; }

 private:
  int tiers_, ref_;
  uint64_t seed_ = 0;
};

// Knows every outcome: the cheapest acceptable tier, else the reference tier.
class OracleSystem : public System {
 public:
  explicit OracleSystem(const PortfolioConfig& c)
      : tiers_(int(c.tiers.size())), ref_(c.reference_tier_index()) {}
  std::string name() const override { return "oracle"; }
  void fit(const SystemContext&) override {}
  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    std::vector<Decision> out;
    for (size_t r : rows) {
      // Cheapest by this query's recorded cost (ties: lower tier index).
      int best = -1;
      for (int k = 0; k < tiers_; ++k)
        if (ctx.table->ok(r, k) && (best < 0 || ctx.table->c(r, k) < ctx.table->c(r, best)))
          best = k;
      out.push_back(single_call(best < 0 ? ref_ : best));
    }
    return out;
  }
  // Two tiers: the share s of queries with the largest quality gain go strong (the best any
  // router can do at that strong-call share). More tiers: argmax_k quality - lambda * cost.
  size_t sweep_size() const override { return tiers_ == 2 ? 101 : 41; }
  std::string sweep_label(size_t p) const override {
    if (tiers_ == 2) return "strong_share=" + std::to_string(double(p) / 100.0).substr(0, 4);
    return "lambda=" + std::to_string(lambda(p));
  }
  static double lambda(size_t p) { return p == 40 ? 0.0 : std::pow(10.0, 4.0 - 0.2 * double(p)); }
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override {
    const OutcomeTable& t = *ctx.table;
    std::vector<Decision> out(rows.size());
    if (tiers_ == 2) {
      std::vector<size_t> order(rows.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return t.q(rows[a], 1) - t.q(rows[a], 0) > t.q(rows[b], 1) - t.q(rows[b], 0);
      });
      size_t strong = size_t(std::llround(double(p) / 100.0 * double(rows.size())));
      for (size_t i = 0; i < order.size(); ++i) out[order[i]] = single_call(i < strong ? 1 : 0);
      return out;
    }
    // Costs normalised by the reference tier's mean cost on these rows.
    double ref_mean = total_cost(t, rows, ref_) / double(std::max<size_t>(1, rows.size()));
    double lam = lambda(p) / (ref_mean > 0 ? ref_mean : 1.0);
    for (size_t i = 0; i < rows.size(); ++i) {
      int best = 0;
      double bv = -1e300;
      for (int k = 0; k < tiers_; ++k) {
        double v = t.q(rows[i], k) - lam * t.c(rows[i], k);
        if (v > bv + 1e-15) {
          bv = v;
          best = k;
        }
      }
      out[i] = single_call(best);
    }
    return out;
  }
  std::string detail() const override {
    return "cheapest acceptable tier by recorded outcome, else the reference tier";
  }

 private:
  int tiers_, ref_;
};

}  // namespace

std::unique_ptr<System> make_always_system(const PortfolioConfig& config, int tier) {
  return std::make_unique<AlwaysSystem>("always:" + config.tiers[size_t(tier)].name, tier);
}
std::unique_ptr<System> make_random_system(const PortfolioConfig& config) {
  return std::make_unique<RandomSystem>(config);
}
std::unique_ptr<System> make_oracle_system(const PortfolioConfig& config) {
  return std::make_unique<OracleSystem>(config);
}

}  // namespace routenlp::detail
