// A saved pipeline as an evaluation system: replays rows through the pipeline's own requests
// and engine, exactly as `routenlp serve` runs them.
#include <algorithm>
#include <chrono>

#include "eval/eval_internal.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/error.hpp"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/tiers/tier.hpp"

namespace routenlp {

namespace {

class PipelineSystem : public System {
 public:
  PipelineSystem(std::shared_ptr<const Pipeline> p, std::string log)
      : pipeline_(std::move(p)), log_path_(std::move(log)) {
    if (!pipeline_) throw Error(Status::invalid_argument, "make_pipeline_system: null pipeline");
  }
  std::string name() const override { return "pipeline"; }
  void fit(const SystemContext& ctx) override {
    if (ctx.config->tiers.size() != pipeline_->tier_names().size())
      throw Error(Status::invalid_argument, "pipeline system: the evaluation config is not the pipeline's portfolio");
  }

  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    // Non-owning: the dataset outlives this call and the engine made in it.
    std::shared_ptr<const Dataset> data(std::shared_ptr<const Dataset>(), ctx.data);
    std::vector<std::shared_ptr<ModelTier>> tiers;
    for (const auto& t : pipeline_->portfolio().tiers)
      tiers.push_back(std::make_shared<ReplayTier>(data, pipeline_->portfolio(), t.name));
    CascadeOptions eo;
    eo.threads = 1;
    eo.audit_rate = 0.0;
    if (!log_path_.empty()) eo.decision_log = std::make_shared<JsonlFileSink>(log_path_, false);
    auto engine = pipeline_->make_engine(tiers, eo);
    const int K = static_cast<int>(tiers.size());
    std::vector<Decision> out;
    out.reserve(rows.size());
    // Router scoring in batches of 64 (as a server's batch endpoint would), timed per query.
    const size_t B = 64;
    for (size_t b = 0; b < rows.size(); b += B) {
      std::vector<RouteQuery> batch;
      std::vector<std::string> ids;
      for (size_t i = b; i < std::min(rows.size(), b + B); ++i) {
        const Query& q = ctx.query(rows[i]);
        batch.push_back({q.query, q.task});
        ids.push_back(q.id);
      }
      const auto t0 = std::chrono::steady_clock::now();
      auto reqs = pipeline_->requests(batch, ids);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
                        double(batch.size());
      for (auto& req : reqs) {
        Decision d = detail::decision_of_replay(engine->run(req), K);
        d.router_ms = pipeline_->router() ? ms : 0.0;
        out.push_back(std::move(d));
      }
    }
    return out;
  }

  std::string detail() const override {
    const auto& m = pipeline_->manifest();
    std::string s = "saved pipeline (" + (m.system.empty() ? std::string("custom") : m.system);
    if (!m.created_utc.empty()) s += ", created " + m.created_utc;
    if (!m.router_kind.empty()) s += ", router " + m.router_kind;
    s += ")";
    if (!m.description.empty()) s += ": " + m.description;
    return s;
  }

 private:
  std::shared_ptr<const Pipeline> pipeline_;
  std::string log_path_;
};

}  // namespace

std::unique_ptr<System> make_pipeline_system(std::shared_ptr<const Pipeline> pipeline,
                                             std::string decision_log) {
  return std::make_unique<PipelineSystem>(std::move(pipeline), std::move(decision_log));
}

}  // namespace routenlp
