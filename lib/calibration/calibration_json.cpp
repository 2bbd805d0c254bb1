// The calibration JSON (format 2; format 1 still loads): options, provenance, the threshold
// table, plans, cell reports and curves. Strict reading: every error names the field.
#include "routenlp/calibration/calibrator.hpp"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "common/atomic_file.hpp"
#include "common/json_int.hpp"
#include "common/text_io.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

nlohmann::json num(double x) {
  if (std::isnan(x)) return nullptr;
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

double from_num(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return kNaN;
  if (j.is_string()) {
    auto s = j.get<std::string>();
    if (s == "inf") return kInf;
    if (s == "-inf") return -kInf;
  }
  if (!j.is_number()) throw Error(Status::parse, where + ": expected a number");
  return j.get<double>();
}

CellStatus parse_cell_status(const std::string& s, const std::string& where) {
  for (auto c : {CellStatus::certified, CellStatus::pooled, CellStatus::escalate_all,
                 CellStatus::too_small, CellStatus::final_tier, CellStatus::uncertified})
    if (s == cell_status_name(c)) return c;
  throw Error(Status::parse, where + ": unknown cell status '" + s + "'");
}

}  // namespace

// ---- JSON -------------------------------------------------------------------------------------

std::string ConformalCalibrator::to_json() const {
  using nlohmann::json;
  const auto& r = result();
  const ThresholdTable& t = *r.table;
  json j;
  j["format"] = "routenlp-calibration";
  // 2: adds "curves" (and options.curve_step / curve_max_alpha); version 1 files still load.
  j["format_version"] = 2;
  j["provenance"] = {{"data_hash", r.provenance.data_hash},
                     {"n", r.provenance.n},
                     {"alpha", r.provenance.alpha},
                     {"epsilon", r.provenance.epsilon},
                     {"method", r.provenance.method},
                     {"goal", r.provenance.goal},
                     {"created_utc", r.provenance.created_utc},
                     {"library_version", r.provenance.library_version}};
  json opt = {{"method", method_name(options_.method)},
              {"alpha", options_.alpha},
              {"epsilon", options_.epsilon},
              {"extra_alphas", options_.extra_alphas},
              {"cell_floor", options_.cell_floor},
              {"grid_step", options_.grid_step},
              {"min_expected_accepted", options_.min_expected_accepted},
              {"sequential", options_.sequential},
              {"goal", r.provenance.goal},
              {"quality_target", options_.quality_target},
              {"reference_tier", options_.reference_tier},
              {"allocation", allocation_name(options_.allocation)},
              {"qt_bound", bound_name(options_.qt_bound)},
              {"qt_epsilon", options_.qt_epsilon},
              {"qt_folds", options_.qt_folds},
              {"qt_task_floor", options_.qt_task_floor},
              {"qt_levels", options_.qt_levels},
              {"skip_tau", options_.skip_tau},
              {"skip_taus", options_.skip_taus},
              {"seed", options_.seed},
              {"curve_step", options_.curve_step},
              {"curve_max_alpha", options_.curve_max_alpha}};
  json tq = json::object();
  for (const auto& kv : options_.task_quality_targets) tq[kv.first] = kv.second;
  opt["task_quality_targets"] = tq;
  j["options"] = opt;
  json delta = json::array();
  for (double x : t.delta) delta.push_back(num(x));
  json ec = json::array();
  for (double x : t.expected_cost) ec.push_back(num(x));
  j["table"] = {{"tiers", t.tiers},           {"columns", t.columns},
                {"alphas", t.alphas},         {"base_alpha", t.base_alpha},
                {"delta", delta},             {"start_tier", t.start_tier},
                {"expected_cost", ec},        {"skip_tau", t.skip_tau},
                {"u_before_call", t.u_before_call},
                {"mix_column", t.mix_column}, {"mix_share", t.mix_share}};
  json cells = json::array();
  for (const auto& c : r.cells)
    cells.push_back({{"tier", c.tier},
                     {"task", c.task},
                     {"status", cell_status_name(c.status)},
                     {"guarantee", c.status == CellStatus::pooled ? "pooled"
                                   : c.status == CellStatus::certified ? "cell"
                                                                        : "none"},
                     {"source", c.source},
                     {"n", c.n},
                     {"n_bad", c.n_bad},
                     {"accepted", c.accepted},
                     {"accepted_bad", c.accepted_bad},
                     {"delta", num(c.delta)},
                     {"p_value", num(c.p_value)},
                     {"alpha", c.alpha}});
  j["cells"] = cells;
  json plans = json::array();
  for (const auto& p : r.plans) {
    json pd = json::array();
    for (double x : p.delta) pd.push_back(num(x));
    plans.push_back({{"task", p.task},
                     {"start_tier", p.start_tier},
                     {"delta", pd},
                     {"skip_tau", p.skip_tau},
                     {"mix_share", p.mix_share},
                     {"mix_start_tier", p.mix_start_tier},
                     {"mix_delta", [&] {
                        json md = json::array();
                        for (double x : p.mix_delta) md.push_back(num(x));
                        return md;
                      }()},
                     {"mix_skip_tau", p.mix_skip_tau},
                     {"level", num(p.level)},
                     {"source", p.source},
                     {"expected_cost", p.expected_cost},
                     {"quality", p.quality},
                     {"reference_quality", p.reference_quality},
                     {"reference_cost", p.reference_cost},
                     {"target", p.target},
                     {"certified", p.certified},
                     {"bound", num(p.bound)},
                     {"n_build", p.n_build},
                     {"n_test", p.n_test}});
  }
  j["plans"] = plans;
  json sels = json::array();
  for (const auto& q : r.selections)
    sels.push_back({{"group", q.group},
                    {"target", q.target},
                    {"level", num(q.level)},
                    {"certified", q.certified},
                    {"n", q.n},
                    {"folds", q.folds},
                    {"sequence", q.sequence},
                    {"passed", q.passed},
                    {"cv_quality_ratio", q.cv_quality_ratio},
                    {"cv_cost_ratio", q.cv_cost_ratio},
                    {"ratio_lower_bound", num(q.ratio_lower_bound)}});
  j["selections"] = sels;
  if (!r.curves.empty()) {
    // One array per cell; a trailing run of equal values is left out (the curve keeps its last
    // value above its grid, so the loaded curve is the same).
    json cc = json::array();
    for (const auto& c : r.curves) {
      const auto& v = c.curve.delta;
      size_t len = v.size();
      while (len > 1 && v[len - 1] == v[len - 2]) --len;
      json dv = json::array();
      for (size_t i = 0; i < len; ++i) dv.push_back(num(v[i]));
      cc.push_back({{"tier", c.tier}, {"column", c.column}, {"source", c.source}, {"delta", dv}});
    }
    // Every curve shares one grid (calibrate() builds them so).
    const auto& first = r.curves.front().curve;
    j["curves"] = {{"step", first.step},
                   {"max_alpha", first.step * static_cast<double>(first.delta.size())},
                   {"cells", cc}};
  }
  return j.dump(1);
}

ConformalCalibrator ConformalCalibrator::from_json(const std::string& text,
                                                   const std::string& source) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(Status::parse, source + ": not valid JSON: " + e.what());
  }
  auto need = [&](const json& obj, const char* key, const std::string& where) -> const json& {
    if (!obj.is_object() || !obj.contains(key))
      throw Error(Status::parse, source + ": " + where + ": missing field '" + key + "'");
    return obj.at(key);
  };
  try {
    if (need(j, "format", "top level") != "routenlp-calibration")
      throw Error(Status::parse, source + ": format: not a routenlp calibration file");
    using detail::json_int;
    using detail::json_int_or;
    const int version = json_int<int>(need(j, "format_version", "top level"), source, "format_version");
    if (version < 1 || version > 2)
      throw Error(Status::parse, source + ": format_version: unsupported (" +
                                     std::to_string(version) + "; this library reads 1 and 2)");
    const json& o = need(j, "options", "top level");
    const std::string at_options = source + ": options";
    CalibrationOptions opt;
    opt.method = parse_method(need(o, "method", "options").get<std::string>());
    opt.alpha = need(o, "alpha", "options").get<double>();
    opt.epsilon = need(o, "epsilon", "options").get<double>();
    opt.extra_alphas = o.value("extra_alphas", std::vector<double>{});
    opt.cell_floor = json_int_or(o, "cell_floor", opt.cell_floor, at_options);
    opt.grid_step = o.value("grid_step", opt.grid_step);
    opt.min_expected_accepted = o.value("min_expected_accepted", opt.min_expected_accepted);
    opt.sequential = o.value("sequential", true);
    opt.goal = o.value("goal", std::string("guarantee")) == "quality_target"
                   ? CalibrationGoal::quality_target
                   : CalibrationGoal::guarantee;
    opt.quality_target = o.value("quality_target", opt.quality_target);
    opt.reference_tier = json_int_or(o, "reference_tier", -1, at_options);
    opt.allocation = parse_allocation(o.value("allocation", std::string("global")));
    opt.qt_bound = parse_bound(o.value("qt_bound", std::string("normal")));
    opt.qt_epsilon = o.value("qt_epsilon", opt.qt_epsilon);
    opt.qt_folds = json_int_or(o, "qt_folds", opt.qt_folds, at_options);
    opt.qt_task_floor = json_int_or(o, "qt_task_floor", opt.qt_task_floor, at_options);
    opt.qt_levels = json_int_or(o, "qt_levels", opt.qt_levels, at_options);
    opt.skip_tau = o.value("skip_tau", opt.skip_tau);
    opt.skip_taus = o.value("skip_taus", opt.skip_taus);
    opt.seed = json_int_or(o, "seed", opt.seed, at_options);
    opt.curve_step = o.value("curve_step", opt.curve_step);
    opt.curve_max_alpha = o.value("curve_max_alpha", opt.curve_max_alpha);
    if (o.contains("task_quality_targets"))
      for (auto& kv : o.at("task_quality_targets").items())
        opt.task_quality_targets[kv.key()] = kv.value().get<double>();
    ConformalCalibrator cal(opt);
    CalibrationResult res;
    const json& p = need(j, "provenance", "top level");
    res.provenance.data_hash = need(p, "data_hash", "provenance").get<std::string>();
    res.provenance.n = json_int<size_t>(need(p, "n", "provenance"), source + ": provenance", "n");
    res.provenance.alpha = need(p, "alpha", "provenance").get<double>();
    res.provenance.epsilon = need(p, "epsilon", "provenance").get<double>();
    res.provenance.method = need(p, "method", "provenance").get<std::string>();
    res.provenance.goal = p.value("goal", std::string("guarantee"));
    res.provenance.created_utc = p.value("created_utc", std::string());
    res.provenance.library_version = p.value("library_version", std::string());
    const json& t = need(j, "table", "top level");
    auto table = std::make_shared<ThresholdTable>();
    auto alphas = need(t, "alphas", "table").get<std::vector<double>>();
    const std::string at_table = source + ": table";
    size_t base = json_int<size_t>(need(t, "base_alpha", "table"), at_table, "base_alpha");
    table->reset_shape(need(t, "tiers", "table").get<std::vector<std::string>>(),
                       need(t, "columns", "table").get<std::vector<std::string>>(), alphas, base);
    if (table->tiers.empty() || table->columns.empty() || alphas.empty() || base >= alphas.size())
      throw Error(Status::parse, source + ": table: empty tiers/columns/alphas or bad base_alpha");
    const json& dl = need(t, "delta", "table");
    if (!dl.is_array() || dl.size() != table->delta.size())
      throw Error(Status::parse, source + ": table.delta: expected " +
                                     std::to_string(table->delta.size()) + " values");
    for (size_t i = 0; i < dl.size(); ++i)
      table->delta[i] = from_num(dl[i], source + ": table.delta[" + std::to_string(i) + "]");
    for (double& x : table->delta)
      if (std::isnan(x)) throw Error(Status::parse, source + ": table.delta: null value");
    auto st = t.contains("start_tier") ? detail::json_ints<int>(t.at("start_tier"), at_table, "start_tier")
                                       : std::vector<int>(table->columns.size(), 0);
    if (st.size() != table->columns.size())
      throw Error(Status::parse, source + ": table.start_tier: wrong length");
    for (int s : st)
      if (s < 0 || s >= static_cast<int>(table->tiers.size()))
        throw Error(Status::parse, source + ": table.start_tier: out of range");
    table->start_tier = st;
    if (t.contains("expected_cost")) {
      const json& ec = t.at("expected_cost");
      if (!ec.is_array() || ec.size() != table->tiers.size())
        throw Error(Status::parse, source + ": table.expected_cost: wrong length");
      for (size_t i = 0; i < ec.size(); ++i)
        table->expected_cost[i] = from_num(ec[i], source + ": table.expected_cost");
    }
    auto tau = t.value("skip_tau", std::vector<double>(table->columns.size(), 0.0));
    if (tau.size() != table->columns.size())
      throw Error(Status::parse, source + ": table.skip_tau: wrong length");
    for (double x : tau)
      if (!(x >= 0 && x < 1)) throw Error(Status::parse, source + ": table.skip_tau: out of [0,1)");
    table->skip_tau = tau;
    auto ubc = t.contains("u_before_call")
                   ? detail::json_ints<int>(t.at("u_before_call"), at_table, "u_before_call")
                   : std::vector<int>(table->tiers.size(), 0);
    if (ubc.size() != table->tiers.size())
      throw Error(Status::parse, source + ": table.u_before_call: wrong length");
    for (size_t k = 0; k < ubc.size(); ++k) table->u_before_call[k] = ubc[k] != 0;
    auto mc = t.contains("mix_column") ? detail::json_ints<int>(t.at("mix_column"), at_table, "mix_column")
                                       : std::vector<int>(table->columns.size(), -1);
    auto ms = t.value("mix_share", std::vector<double>(table->columns.size(), 0.0));
    if (mc.size() != table->columns.size() || ms.size() != table->columns.size())
      throw Error(Status::parse, source + ": table.mix_column/mix_share: wrong length");
    for (size_t c = 0; c < mc.size(); ++c) {
      if (mc[c] < -1 || mc[c] >= static_cast<int>(mc.size()) || mc[c] == static_cast<int>(c))
        throw Error(Status::parse, source + ": table.mix_column[" + std::to_string(c) +
                                       "]: not a column index");
      if (!(ms[c] >= 0 && ms[c] < 1) || (ms[c] > 0 && mc[c] < 0))
        throw Error(Status::parse, source + ": table.mix_share[" + std::to_string(c) +
                                       "]: must be in [0,1) with a mix_column");
    }
    table->mix_column = mc;
    table->mix_share = ms;
    size_t cell_i = 0;
    for (const auto& c : need(j, "cells", "top level")) {
      const std::string at_cell = source + ": cells[" + std::to_string(cell_i++) + "]";
      CellReport cr;
      cr.tier = json_int<int>(need(c, "tier", "cells[]"), at_cell, "tier");
      cr.task = need(c, "task", "cells[]").get<std::string>();
      cr.status = parse_cell_status(need(c, "status", "cells[]").get<std::string>(),
                                    source + ": cells[].status");
      cr.source = c.value("source", cr.task);
      cr.n = json_int_or(c, "n", size_t{0}, at_cell);
      cr.n_bad = json_int_or(c, "n_bad", size_t{0}, at_cell);
      cr.accepted = json_int_or(c, "accepted", size_t{0}, at_cell);
      cr.accepted_bad = json_int_or(c, "accepted_bad", size_t{0}, at_cell);
      cr.delta = from_num(need(c, "delta", "cells[]"), source + ": cells[].delta");
      cr.p_value = c.contains("p_value") ? from_num(c.at("p_value"), source) : 1.0;
      cr.alpha = c.value("alpha", opt.alpha);
      res.cells.push_back(cr);
    }
    size_t plan_i = 0;
    if (j.contains("plans"))
      for (const auto& pj : j.at("plans")) {
        const std::string at_plan = source + ": plans[" + std::to_string(plan_i++) + "]";
        QualityPlan qp;
        qp.task = need(pj, "task", "plans[]").get<std::string>();
        qp.start_tier = json_int_or(pj, "start_tier", 0, at_plan);
        for (const auto& x : need(pj, "delta", "plans[]")) qp.delta.push_back(from_num(x, source));
        qp.skip_tau = pj.value("skip_tau", 0.0);
        qp.mix_share = pj.value("mix_share", 0.0);
        qp.mix_start_tier = json_int_or(pj, "mix_start_tier", 0, at_plan);
        if (pj.contains("mix_delta"))
          for (const auto& x : pj.at("mix_delta")) qp.mix_delta.push_back(from_num(x, source));
        qp.mix_skip_tau = pj.value("mix_skip_tau", 0.0);
        qp.level = pj.contains("level") ? from_num(pj.at("level"), source) : 0.0;
        qp.source = pj.value("source", qp.task);
        qp.expected_cost = pj.value("expected_cost", 0.0);
        qp.quality = pj.value("quality", 0.0);
        qp.reference_quality = pj.value("reference_quality", 0.0);
        qp.reference_cost = pj.value("reference_cost", 0.0);
        qp.target = pj.value("target", 0.0);
        qp.certified = pj.value("certified", false);
        qp.bound = pj.contains("bound") ? from_num(pj.at("bound"), source) : 0.0;
        qp.n_build = json_int_or(pj, "n_build", size_t{0}, at_plan);
        qp.n_test = json_int_or(pj, "n_test", size_t{0}, at_plan);
        res.plans.push_back(qp);
      }
    size_t sel_i = 0;
    if (j.contains("selections"))
      for (const auto& sj : j.at("selections")) {
        const std::string at_sel = source + ": selections[" + std::to_string(sel_i++) + "]";
        QualitySelection q;
        q.group = need(sj, "group", "selections[]").get<std::string>();
        q.target = sj.value("target", 0.0);
        q.level = sj.contains("level") ? from_num(sj.at("level"), source) : 0.0;
        q.certified = sj.value("certified", false);
        q.n = json_int_or(sj, "n", size_t{0}, at_sel);
        q.folds = json_int_or(sj, "folds", size_t{0}, at_sel);
        q.sequence = json_int_or(sj, "sequence", size_t{0}, at_sel);
        q.passed = json_int_or(sj, "passed", size_t{0}, at_sel);
        q.cv_quality_ratio = sj.value("cv_quality_ratio", 0.0);
        q.cv_cost_ratio = sj.value("cv_cost_ratio", 0.0);
        q.ratio_lower_bound =
            sj.contains("ratio_lower_bound") ? from_num(sj.at("ratio_lower_bound"), source) : 0.0;
        res.selections.push_back(q);
      }
    if (j.contains("curves")) {
      const json& cv = j.at("curves");
      const double step = need(cv, "step", "curves").get<double>();
      const double max_alpha = need(cv, "max_alpha", "curves").get<double>();
      if (!(step > 0 && max_alpha >= step && max_alpha < 1 && max_alpha / step <= ThresholdCurve::kMaxPoints))
        throw Error(Status::parse, source + ": curves.step/max_alpha: need 0 < step <= max_alpha "
                                            "< 1 and at most 100000 grid points");
      const size_t n = ThresholdCurve::grid(step, max_alpha).size();
      const json& cells = need(cv, "cells", "curves");
      if (!cells.is_array()) throw Error(Status::parse, source + ": curves.cells: expected an array");
      for (size_t i = 0; i < cells.size(); ++i) {
        const std::string where = source + ": curves.cells[" + std::to_string(i) + "]";
        const json& cj = cells[i];
        CellCurve cc;
        cc.tier = json_int<size_t>(need(cj, "tier", "curves.cells[]"), where, "tier");
        cc.column = need(cj, "column", "curves.cells[]").get<std::string>();
        cc.source = cj.value("source", cc.column);
        if (cc.tier >= table->tiers.size() - 1)
          throw Error(Status::parse, where + ".tier: not a non-final tier");
        if (!table->column_index.count(cc.column))
          throw Error(Status::parse, where + ".column: '" + cc.column + "' is not a table column");
        const json& dv = need(cj, "delta", "curves.cells[]");
        if (!dv.is_array() || dv.empty() || dv.size() > n)
          throw Error(Status::parse, where + ".delta: expected 1 to " + std::to_string(n) +
                                         " values");
        cc.curve.step = step;
        for (const auto& x : dv) {
          double v = from_num(x, where + ".delta");
          if (std::isnan(v)) throw Error(Status::parse, where + ".delta: null value");
          cc.curve.delta.push_back(v);
        }
        cc.curve.delta.resize(n, cc.curve.delta.back());  // the trimmed trailing run
        res.curves.push_back(std::move(cc));
      }
    }
    res.table = table;
    cal.result_ = std::move(res);
    return cal;
  } catch (const json::exception& e) {
    throw Error(Status::parse, source + ": wrong type in calibration file: " + e.what());
  }
}

void ConformalCalibrator::save(const std::string& path) const {
  detail::write_file_atomic(path, to_json() + "\n");
}

ConformalCalibrator ConformalCalibrator::load(const std::string& path) {
  return from_json(detail::read_file(path), path);
}

}  // namespace routenlp
