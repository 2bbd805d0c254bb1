// Pipeline: validation, routing (the engine's own start rule), engines over host tiers.
#include "routenlp/pipeline/pipeline.hpp"

#include <cmath>
#include <limits>

#include "pipeline/pipeline_impl.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<std::string> names_of(const PortfolioConfig& p) {
  std::vector<std::string> out;
  for (const auto& t : p.tiers) out.push_back(t.name);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

Pipeline::Pipeline(PipelineParts parts) {
  auto impl = std::make_shared<Impl>();
  const auto tiers = names_of(parts.portfolio);
  if (tiers.empty()) throw Error(Status::invalid_argument, "pipeline: the portfolio has no tiers");
  if (parts.router && parts.router->tiers() != tiers)
    throw Error(Status::invalid_argument, "pipeline: router '" + parts.router->name() +
                                              "' scores tiers [" + joined(parts.router->tiers()) +
                                              "], the portfolio has [" + joined(tiers) + "]");
  if (parts.calibration) {
    if (!parts.calibration->calibrated())
      throw Error(Status::invalid_argument, "pipeline: the calibrator has not been calibrated");
    if (parts.calibration->thresholds()->tiers != tiers)
      throw Error(Status::invalid_argument,
                  "pipeline: the calibration's tiers [" + joined(parts.calibration->thresholds()->tiers) +
                      "] differ from the portfolio's [" + joined(tiers) + "]");
    impl->table = parts.calibration->thresholds();
  } else {
    impl->table = std::make_shared<ThresholdTable>(
        ThresholdTable::escalate_all(tiers, parts.portfolio.alpha));
  }
  if (parts.strong_share) {
    const auto& r = *parts.strong_share;
    const int K = static_cast<int>(tiers.size());
    if (!parts.router) throw Error(Status::invalid_argument, "pipeline: the strong-share rule needs a router");
    if (r.weak < 0 || r.weak >= K || r.strong < 0 || r.strong >= K || r.weak == r.strong)
      throw Error(Status::invalid_argument, "pipeline: strong-share rule tiers must be two different tiers in [0, " +
                                                std::to_string(K - 1) + "]");
    if (!std::isfinite(r.threshold))
      throw Error(Status::invalid_argument, "pipeline: strong-share threshold must be finite");
  }
  impl->tiers = tiers;
  impl->guarantee_mode = parts.calibration &&
                         parts.calibration->options().goal == CalibrationGoal::guarantee;
  impl->manifest.system = parts.system;
  impl->manifest.description = parts.description;
  impl->manifest.training_data_hash = parts.training_data_hash;
  impl->manifest.router_kind = parts.router ? router_kind(*parts.router) : "";
  impl->parts = std::move(parts);
  impl_ = std::move(impl);
}

Pipeline::Pipeline(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

const PortfolioConfig& Pipeline::portfolio() const { return impl_->parts.portfolio; }
std::shared_ptr<const RouterModel> Pipeline::router() const { return impl_->parts.router; }
std::shared_ptr<const ConformalCalibrator> Pipeline::calibration() const {
  return impl_->parts.calibration;
}
std::shared_ptr<const AcceptanceModel> Pipeline::acceptance() const {
  return impl_->parts.acceptance;
}
const std::optional<StrongShareRule>& Pipeline::strong_share() const {
  return impl_->parts.strong_share;
}
std::shared_ptr<const ThresholdTable> Pipeline::thresholds() const { return impl_->table; }
const PipelineManifest& Pipeline::manifest() const { return impl_->manifest; }
std::vector<std::string> Pipeline::tier_names() const { return impl_->tiers; }

CascadeRequest Pipeline::request(const RouteQuery& query, const std::string& request_id,
                                 const RouterScores& scores) const {
  const Impl& I = *impl_;
  CascadeRequest r;
  r.id = request_id;
  r.query = query.query;
  r.task = query.task;
  if (!scores.p_acceptable.empty()) {
    if (scores.p_acceptable.size() != I.tiers.size())
      throw Error(Status::invalid_argument,
                  "pipeline: router scores have " + std::to_string(scores.p_acceptable.size()) +
                      " tiers, the portfolio " + std::to_string(I.tiers.size()));
    r.router_p = scores.p_acceptable;
  }
  // One source of alpha: the portfolio's per-task alpha. Only guarantee-mode thresholds are
  // indexed by alpha; a task at the base alpha leaves it to the table (NaN).
  if (I.guarantee_mode) {
    const double a = I.parts.portfolio.alpha_for(query.task);
    const auto& t = *I.table;
    if (std::fabs(a - t.alphas[t.base_alpha]) > 1e-12) r.alpha = a;
  }
  if (I.parts.strong_share) {
    const auto& rule = *I.parts.strong_share;
    if (r.router_p.empty()) throw Error(Status::invalid_argument, "pipeline: the strong-share rule needs router scores");
    const double s = 1.0 - r.router_p[static_cast<size_t>(rule.weak)];
    r.start_tier = s >= rule.threshold ? rule.strong : rule.weak;
    r.max_tier = r.start_tier;
  }
  return r;
}

CascadeRequest Pipeline::request(const RouteQuery& query, const std::string& request_id) const {
  RouterScores s;
  if (impl_->parts.router) s = impl_->parts.router->score_one(query);
  return request(query, request_id, s);
}

namespace {
void check_ids(size_t ids, size_t queries) {
  if (ids != 0 && ids != queries)
    throw Error(Status::invalid_argument, "pipeline: " + std::to_string(ids) + " request ids for " +
                                              std::to_string(queries) + " queries");
}
}  // namespace

std::vector<CascadeRequest> Pipeline::requests(const std::vector<RouteQuery>& batch,
                                               const std::vector<std::string>& ids) const {
  check_ids(ids.size(), batch.size());
  std::vector<RouterScores> scores(batch.size());
  if (impl_->parts.router && !batch.empty()) scores = impl_->parts.router->score(batch);
  std::vector<CascadeRequest> out;
  out.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i)
    out.push_back(request(batch[i], ids.empty() ? std::string() : ids[i], scores[i]));
  return out;
}

PipelineRoute Pipeline::route_request(const CascadeRequest& req) const {
  const Impl& I = *impl_;
  PipelineRoute out;
  out.request_id = req.id;
  out.scores.p_acceptable = req.router_p;
  CascadeFirstCall f = cascade_first_call(*I.table, req);
  out.start_tier = f.start_tier;
  out.first_tier = f.first_tier;
  out.max_tier = req.max_tier;
  out.column = f.column >= 0 ? I.table->columns[static_cast<size_t>(f.column)] : "";
  const size_t a = I.table->alpha_index(req.alpha);
  out.alpha = a == ThresholdTable::npos ? (std::isnan(req.alpha) ? kNaN : req.alpha) : I.table->alphas[a];
  const std::string& first = I.tiers[static_cast<size_t>(out.first_tier)];
  if (I.parts.strong_share) {
    out.reason = "strong-share rule: 1 - p[" + I.tiers[static_cast<size_t>(I.parts.strong_share->weak)] +
                 "] vs threshold " + std::to_string(I.parts.strong_share->threshold) + " -> " + first;
  } else if (out.first_tier == out.start_tier) {
    out.reason = "cascade starts at " + first + (out.column.empty() ? "" : " (plan of '" + out.column + "')");
  } else {
    out.reason = "cascade starts at " + I.tiers[static_cast<size_t>(out.start_tier)] +
                 "; tiers before " + first + " cannot accept this query and are not called";
  }
  return out;
}

PipelineRoute Pipeline::route(const RouteQuery& query, const std::string& request_id) const {
  RouterScores s;
  if (impl_->parts.router) s = impl_->parts.router->score_one(query);
  PipelineRoute r = route_request(request(query, request_id, s));
  r.scores = std::move(s);
  return r;
}

std::vector<PipelineRoute> Pipeline::route_batch(const std::vector<RouteQuery>& batch,
                                                 const std::vector<std::string>& ids) const {
  std::vector<RouterScores> scores(batch.size());
  if (impl_->parts.router && !batch.empty()) scores = impl_->parts.router->score(batch);
  check_ids(ids.size(), batch.size());
  std::vector<PipelineRoute> out;
  out.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    auto req = request(batch[i], ids.empty() ? std::string() : ids[i], scores[i]);
    PipelineRoute r = route_request(req);
    r.scores = std::move(scores[i]);
    out.push_back(std::move(r));
  }
  return out;
}

std::unique_ptr<CascadeEngine> Pipeline::make_engine(std::vector<std::shared_ptr<ModelTier>> tiers,
                                                     CascadeOptions options) const {
  const Impl& I = *impl_;
  if (tiers.size() != I.tiers.size())
    throw Error(Status::invalid_argument, "pipeline: " + std::to_string(tiers.size()) +
                                              " tiers given, the portfolio has " +
                                              std::to_string(I.tiers.size()) + " (" + joined(I.tiers) + ")");
  for (size_t k = 0; k < tiers.size(); ++k) {
    if (!tiers[k]) throw Error(Status::invalid_argument, "pipeline: tier " + std::to_string(k) + " is null");
    if (tiers[k]->name() != I.tiers[k])
      throw Error(Status::invalid_argument, "pipeline: tier " + std::to_string(k) + " is named '" +
                                                tiers[k]->name() + "', the portfolio's is '" +
                                                I.tiers[k] + "'");
  }
  options.acceptance = I.parts.acceptance;
  return std::make_unique<CascadeEngine>(std::move(tiers), I.table, std::move(options));
}

}  // namespace routenlp
