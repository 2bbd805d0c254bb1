// The cascade engine: tier loop, start and budget/deadline rules, audit sampling, batches on
// the pool. Its state is engine_impl.hpp; the decision log is decision_log.cpp, the Prometheus
// text engine_metrics.cpp.
#include <chrono>
#include <cmath>
#include <limits>

#include "calibration/quality_planning.hpp"
#include "cascade/engine_impl.hpp"
#include "common/hash.hpp"
#include "routenlp/cascade/decision_log.hpp"

namespace routenlp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

using detail::hash_id;

}  // namespace

CascadeEngine::CascadeEngine(std::vector<std::shared_ptr<ModelTier>> tiers,
                             std::shared_ptr<const ThresholdTable> thresholds,
                             CascadeOptions options)
    : impl_(std::make_unique<Impl>(options.threads)) {
  if (tiers.empty()) throw Error(Status::invalid_argument, "CascadeEngine: no tiers");
  for (size_t k = 0; k < tiers.size(); ++k)
    if (!tiers[k])
      throw Error(Status::invalid_argument, "CascadeEngine: tier " + std::to_string(k) + " is null");
  if (!(options.audit_rate >= 0 && options.audit_rate <= 1))
    throw Error(Status::invalid_argument, "CascadeOptions.audit_rate must be in [0,1]");
  std::vector<std::string> names;
  for (auto& t : tiers) names.push_back(t->name());
  if (!thresholds && options.online) thresholds = options.online->snapshot();
  if (!thresholds)
    thresholds = std::make_shared<ThresholdTable>(ThresholdTable::escalate_all(names));
  auto check = [&](const ThresholdTable& t) {
    if (t.tiers.size() != tiers.size())
      throw Error(Status::invalid_argument,
                  "CascadeEngine: thresholds are for " + std::to_string(t.tiers.size()) +
                      " tiers, the cascade has " + std::to_string(tiers.size()));
    for (size_t k = 0; k < tiers.size(); ++k)
      if (t.tiers[k] != names[k])
        throw Error(Status::invalid_argument, "CascadeEngine: tier " + std::to_string(k) +
                                                  " is '" + names[k] +
                                                  "' but the thresholds name '" + t.tiers[k] +
                                                  "'");
  };
  check(*thresholds);
  if (options.online) check(*options.online->snapshot());
  impl_->tiers = std::move(tiers);
  impl_->opt = std::move(options);
  impl_->table = std::move(thresholds);
  impl_->id_prefix = static_cast<uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count()) & 0xffffffffULL;
}

CascadeEngine::~CascadeEngine() = default;

size_t CascadeEngine::tier_count() const { return impl_->tiers.size(); }
const std::string& CascadeEngine::tier_name(size_t tier) const {
  if (tier >= impl_->tiers.size()) throw Error(Status::invalid_argument, "tier_name: bad tier");
  return impl_->tiers[tier]->name();
}

void CascadeEngine::set_thresholds(std::shared_ptr<const ThresholdTable> thresholds) {
  if (!thresholds) throw Error(Status::invalid_argument, "set_thresholds: null table");
  if (thresholds->tiers.size() != impl_->tiers.size())
    throw Error(Status::invalid_argument, "set_thresholds: wrong number of tiers");
  std::atomic_store(&impl_->table, std::move(thresholds));
}

std::shared_ptr<const ThresholdTable> CascadeEngine::thresholds() const {
  return impl_->current();
}

namespace detail {

int cascade_start_tier(const ThresholdTable& table, const CascadeRequest& req, int col, int K) {
  const int last = req.max_tier < 0 ? K - 1 : std::min(req.max_tier, K - 1);
  int start = req.start_tier >= 0 ? req.start_tier
                                  : (col >= 0 ? table.start_tier[static_cast<size_t>(col)] : 0);
  // The router's skip rule: start at the first tier it predicts acceptable enough.
  if (req.start_tier < 0 && col >= 0 && req.router_p.size() == static_cast<size_t>(K) &&
      table.skip_tau[static_cast<size_t>(col)] > 0)
    start = std::max(start, router_start_tier(req.router_p, table.skip_tau[static_cast<size_t>(col)]));
  return std::min(start, last);
}

bool cannot_accept(const ThresholdTable& table, const CascadeRequest& req, int k, double delta,
                   double* router_u) {
  if (!(delta > -kInf)) return true;
  if (static_cast<size_t>(k) < table.u_before_call.size() &&
      table.u_before_call[static_cast<size_t>(k)] &&
      static_cast<size_t>(k) < req.router_p.size()) {
    const double u = 1.0 - req.router_p[static_cast<size_t>(k)];
    if (router_u) *router_u = u;
    return !(u <= delta);
  }
  return false;
}

}  // namespace detail

CascadeFirstCall cascade_first_call(const ThresholdTable& table, const CascadeRequest& req) {
  const int K = static_cast<int>(table.tiers.size());
  if (K == 0) throw Error(Status::invalid_argument, "cascade_first_call: table has no tiers");
  CascadeFirstCall out;
  const int metric_col = table.column_for(req.task);
  const int col = req.id.empty() ? metric_col : table.mixed_column(metric_col, req.id);
  out.column = col;
  const size_t a = table.alpha_index(req.alpha);
  const int last = req.max_tier < 0 ? K - 1 : std::min(req.max_tier, K - 1);
  out.start_tier = detail::cascade_start_tier(table, req, col, K);
  out.first_tier = last;
  for (int k = out.start_tier; k < last; ++k) {
    const double delta = k == K - 1 ? kInf
                         : (col < 0 || a == ThresholdTable::npos)
                             ? -kInf
                             : table.at(a, static_cast<size_t>(k), static_cast<size_t>(col));
    if (!detail::cannot_accept(table, req, k, delta, nullptr)) {
      out.first_tier = k;
      break;
    }
  }
  return out;
}

CascadeResult CascadeEngine::run(const CascadeRequest& req) const {
  const Impl& I = *impl_;
  const auto t0 = Clock::now();
  const auto table = I.current();
  const int K = static_cast<int>(I.tiers.size());
  CascadeResult res;
  res.request_id = req.id.empty()
                       ? "rn-" + std::to_string(I.id_prefix) + "-" +
                             std::to_string(I.next_id.fetch_add(1, std::memory_order_relaxed))
                       : req.id;
  res.task = req.task;
  // The task's column (metrics are filed under it), or its plan's mixture partner for this
  // request id (the thresholds applied).
  const int metric_col = table->column_for(req.task);
  const int col = table->mixed_column(metric_col, res.request_id);
  const size_t a = table->alpha_index(req.alpha);
  res.alpha = a == ThresholdTable::npos ? kNaN : table->alphas[a];
  const int last = req.max_tier < 0 ? K - 1 : std::min(req.max_tier, K - 1);
  const int start = detail::cascade_start_tier(*table, req, col, K);
  const SteadyTime deadline =
      req.deadline_ms > 0
          ? t0 + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double, std::milli>(req.deadline_ms))
          : SteadyTime::max();
  const double budget = std::isnan(req.budget_usd) ? kInf : req.budget_usd;

  TierRequest tr;
  tr.request_id = res.request_id;
  tr.query = req.query;
  tr.task = req.task;
  tr.deadline = deadline;
  tr.cancel = req.cancel.get();
  std::vector<TierResponse> answers;
  answers.reserve(static_cast<size_t>(K));
  std::vector<int> answer_tiers;
  res.trace.reserve(static_cast<size_t>(last - start + 1));
  int fallback = -1;  // index into answers of the latest usable (escalated) answer
  Status last_error = Status::ok;
  std::string last_error_msg;
  bool done = false;

  auto finish_with_fallback = [&](const char* reason, Status if_none, const std::string& msg) {
    res.stop_reason = reason;
    if (fallback >= 0) {
      res.answer = answers[static_cast<size_t>(fallback)].text;
      res.tier = answer_tiers[static_cast<size_t>(fallback)];
      res.uncertain = true;
    } else {
      res.status = if_none;
      res.error = msg;
    }
    done = true;
  };

  for (int k = start; k <= last && !done; ++k) {
    TraceEntry e;
    e.tier = k;
    e.tier_name = I.tiers[static_cast<size_t>(k)]->name();
    const bool is_last = k == last;
    if (k == K - 1) {
      e.delta = kInf;
    } else if (col < 0 || a == ThresholdTable::npos) {
      e.delta = -kInf;
    } else {
      e.delta = table->at(a, static_cast<size_t>(k), static_cast<size_t>(col));
    }
    if (req.cancel && req.cancel->load()) {
      e.decision = TraceDecision::cancelled;
      res.trace.push_back(std::move(e));
      res.status = Status::cancelled;
      res.error = "request cancelled";
      res.stop_reason = "cancelled";
      done = true;
      break;
    }
    if (deadline != SteadyTime::max() && Clock::now() >= deadline) {
      e.decision = TraceDecision::skipped_deadline;
      res.trace.push_back(std::move(e));
      finish_with_fallback("deadline", Status::timeout, "deadline passed before tier " +
                                                           std::to_string(k) + " was called");
      break;
    }
    // Not called when its answer could not be accepted: the threshold accepts nothing, or u
    // comes from the router before the call (the tier gives no confidence) and exceeds delta.
    if (!is_last) {
      const bool hopeless = detail::cannot_accept(*table, req, k, e.delta, &e.uncertainty);
      if (hopeless) {
        e.decision = TraceDecision::skipped_threshold;
        res.trace.push_back(std::move(e));
        continue;
      }
    }
    tr.tier = k;
    double expect = I.tiers[static_cast<size_t>(k)]->expected_cost(tr);
    if (std::isnan(expect) && static_cast<size_t>(k) < table->expected_cost.size())
      expect = table->expected_cost[static_cast<size_t>(k)];
    if (std::isnan(expect)) expect = 0.0;
    if (res.cost + expect > budget) {
      e.decision = TraceDecision::skipped_budget;
      res.trace.push_back(std::move(e));
      finish_with_fallback("budget", Status::budget,
                           "budget exhausted before tier " + std::to_string(k));
      break;
    }
    tr.previous.clear();
    for (size_t i = 0; i < answers.size(); ++i)
      tr.previous.push_back({answer_tiers[i], &answers[i]});
    TierResponse resp;
    const auto c0 = Clock::now();
    try {
      resp = I.tiers[static_cast<size_t>(k)]->call(tr);
    } catch (const Error& ex) {
      resp = TierResponse::failure(ex.code() == Status::ok ? Status::tier : ex.code(),
                                   std::string("tier threw: ") + ex.what());
    } catch (const std::exception& ex) {
      resp = TierResponse::failure(Status::tier, std::string("tier threw: ") + ex.what());
    } catch (...) {
      resp = TierResponse::failure(Status::tier, "tier threw an unknown exception");
    }
    e.latency_ms = ms_between(c0, Clock::now());
    e.cost = std::isfinite(resp.cost) && resp.cost > 0 ? resp.cost : 0.0;
    res.cost += e.cost;
    if (!resp.ok()) {
      e.decision = TraceDecision::error;
      e.error_status = resp.status;
      e.error = resp.error;
      last_error = resp.status;
      last_error_msg = "tier " + std::to_string(k) + " (" + e.tier_name + "): " + resp.error;
      res.trace.push_back(std::move(e));
      if (is_last) {
        finish_with_fallback("errors", last_error == Status::ok ? Status::tier : last_error,
                             last_error_msg);
      }
      continue;
    }
    double u = kNaN;
    if (resp.confidence) {
      if (std::isnan(*resp.confidence)) {
        e.nan_confidence = true;
      } else if (I.opt.acceptance && I.opt.acceptance->used(k)) {
        std::vector<EarlierAnswer> earlier;
        for (size_t i = 0; i < answers.size(); ++i)
          earlier.push_back({answer_tiers[i], answers[i].text,
                             answers[i].confidence ? *answers[i].confidence : kNaN});
        const double rp = static_cast<size_t>(k) < req.router_p.size()
                              ? req.router_p[static_cast<size_t>(k)] : kNaN;
        u = 1.0 - I.opt.acceptance->p_acceptable(k, req.task, *resp.confidence, rp, resp.text,
                                                 earlier);
      } else {
        u = 1.0 - *resp.confidence;
      }
    } else if (static_cast<size_t>(k) < req.router_p.size() &&
               !std::isnan(req.router_p[static_cast<size_t>(k)])) {
      u = 1.0 - req.router_p[static_cast<size_t>(k)];
    }
    e.uncertainty = u;
    const bool pass = k == K - 1 ? !std::isnan(u) || !resp.confidence : (u <= e.delta);
    answers.push_back(std::move(resp));
    answer_tiers.push_back(k);
    if (is_last) {
      e.decision = (k == K - 1 || !pass) ? TraceDecision::final_answer : TraceDecision::accepted;
      res.answer = answers.back().text;
      res.tier = k;
      res.uncertain = !pass;
      res.stop_reason = pass && k < K - 1 ? "accepted" : "last_tier";
      res.trace.push_back(std::move(e));
      done = true;
    } else if (pass) {
      e.decision = TraceDecision::accepted;
      res.answer = answers.back().text;
      res.tier = k;
      res.stop_reason = "accepted";
      res.trace.push_back(std::move(e));
      done = true;
    } else {
      e.decision = TraceDecision::escalated;
      fallback = static_cast<int>(answers.size()) - 1;
      res.trace.push_back(std::move(e));
    }
  }
  if (!done) finish_with_fallback("errors", Status::tier, "no tier produced an answer");
  if (res.tier >= 0) res.tier_name = I.tiers[static_cast<size_t>(res.tier)]->name();
  res.latency_ms = ms_between(t0, Clock::now());

  // Metrics.
  I.requests.fetch_add(1, std::memory_order_relaxed);
  if (res.status != Status::ok) I.failed.fetch_add(1, std::memory_order_relaxed);
  const std::string column = metric_col >= 0 ? table->columns[static_cast<size_t>(metric_col)] : "*";
  ColumnCounters& cc = I.counters(column);
  for (const auto& e : res.trace)
    if (e.decision != TraceDecision::skipped_budget &&
        e.decision != TraceDecision::skipped_deadline && e.decision != TraceDecision::cancelled &&
        e.decision != TraceDecision::skipped_threshold)
      I.observe(*cc.tiers[static_cast<size_t>(e.tier)], e);
    else
      cc.tiers[static_cast<size_t>(e.tier)]->skipped.fetch_add(1, std::memory_order_relaxed);

  // Audit bookkeeping for feedback.
  if (res.status == Status::ok && I.audited(res.request_id)) {
    res.audited = true;
    bool accepted = !res.trace.empty() && res.trace.back().decision == TraceDecision::accepted;
    {
      std::lock_guard<std::mutex> l(I.audit_mu);
      if (I.audit.insert_or_assign(res.request_id, AuditNote{column, res.tier, accepted}).second)
        I.audit_order.push_back(res.request_id);
      while (I.audit.size() > I.opt.max_pending && !I.audit_order.empty()) {
        I.audit.erase(I.audit_order.front());
        I.audit_order.pop_front();
      }
      while (!I.audit_order.empty() && !I.audit.count(I.audit_order.front()))
        I.audit_order.pop_front();
      if (I.audit_order.size() > 2 * I.opt.max_pending + 16) {
        std::deque<std::string> live;
        for (auto& id : I.audit_order)
          if (I.audit.count(id)) live.push_back(id);
        I.audit_order.swap(live);
      }
    }
    if (I.opt.online) {
      DecisionNote note;
      note.task = req.task;
      // A tier not called because it could not accept escalated the request all the same.
      for (const auto& e : res.trace)
        if (e.decision == TraceDecision::escalated ||
            e.decision == TraceDecision::skipped_threshold)
          note.rejected_tiers.push_back(e.tier);
      note.answer_tier = res.tier;
      note.answer_accepted = accepted;
      if (I.opt.on_audit) {
        try {
          I.opt.on_audit(res.request_id, note);
        } catch (...) {
          // The state backend counts its own failures; the answer stands.
        }
      }
      I.opt.online->record_decision(res.request_id, std::move(note));
    }
  }
  if (I.opt.decision_log) {
    try {
      I.opt.decision_log->write(decision_to_json(res));
    } catch (...) {
      // A failing log must not fail the request; the sink reports through its own channel.
    }
  }
  return res;
}

std::vector<CascadeResult> CascadeEngine::run_batch(
    const std::vector<CascadeRequest>& requests) const {
  std::vector<std::future<CascadeResult>> fs;
  fs.reserve(requests.size());
  for (const auto& r : requests) fs.push_back(run_async(r));
  std::vector<CascadeResult> out;
  out.reserve(requests.size());
  for (auto& f : fs) out.push_back(f.get());
  return out;
}

std::future<CascadeResult> CascadeEngine::run_async(CascadeRequest request) const {
  auto task = std::make_shared<std::packaged_task<CascadeResult()>>(
      [this, r = std::move(request)] { return run(r); });
  auto fut = task->get_future();
  impl_->pool.submit([task] { (*task)(); });
  return fut;
}

bool CascadeEngine::record_outcome(const std::string& request_id, bool acceptable) {
  AuditNote note;
  {
    std::lock_guard<std::mutex> l(impl_->audit_mu);
    auto it = impl_->audit.find(request_id);
    if (it == impl_->audit.end()) return false;
    note = std::move(it->second);
    impl_->audit.erase(it);
  }
  if (note.tier >= 0) {
    TierCounters& c = *impl_->counters(note.column).tiers[static_cast<size_t>(note.tier)];
    c.audited.fetch_add(1, std::memory_order_relaxed);
    if (!acceptable) c.audited_bad.fetch_add(1, std::memory_order_relaxed);
  }
  if (impl_->opt.online) impl_->opt.online->record_outcome(request_id, acceptable);
  return true;
}

void CascadeEngine::apply_outcome(const std::string& request_id, const DecisionNote& note,
                                  bool acceptable, double event_unix_s) {
  {
    std::lock_guard<std::mutex> l(impl_->audit_mu);
    impl_->audit.erase(request_id);  // the order entry goes with the next prune
  }
  auto table = impl_->current();
  if (note.answer_tier >= 0 && static_cast<size_t>(note.answer_tier) < impl_->tiers.size()) {
    const int col = table->column_for(note.task);
    const std::string column = col >= 0 ? table->columns[static_cast<size_t>(col)] : "*";
    TierCounters& c = *impl_->counters(column).tiers[static_cast<size_t>(note.answer_tier)];
    c.audited.fetch_add(1, std::memory_order_relaxed);
    if (!acceptable) c.audited_bad.fetch_add(1, std::memory_order_relaxed);
  }
  if (impl_->opt.online) {
    impl_->opt.online->discard_decision(request_id);
    impl_->opt.online->apply_outcome(note, acceptable, event_unix_s);
  }
}

}  // namespace routenlp
