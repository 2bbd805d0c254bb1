// End-to-end co-optimization for a classification task: LocalClassifierTier as T1, a teacher
// with a seeded error rate as the upper tier, LTT-calibrated threshold, targeted or random
// distillation (docs/coopt.md, "Co-optimization (BANKING77)" in docs/results.md).
#include "routenlp/coopt/classifier.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/hash.hpp"
#include "common/atomic_file.hpp"
#include "common/text_io.hpp"
#include "coopt/rng.hpp"
#include "routenlp/calibration/conformal.hpp"
#include "routenlp/error.hpp"

namespace fs = std::filesystem;

namespace routenlp {

// ---- CSV ---------------------------------------------------------------------------------------

std::vector<LabeledText> read_labeled_csv(const std::string& path, const std::string& text_column,
                                          const std::string& label_column) {
  std::string data = detail::read_file(path);
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> row_line;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  size_t line = 1, start_line = 1;
  auto end_field = [&] {
    row.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_row = [&] {
    end_field();
    if (!(row.size() == 1 && row[0].empty())) {
      rows.push_back(std::move(row));
      row_line.push_back(start_line);
    }
    row.clear();
    start_line = line;
  };
  for (size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < data.size() && data[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n') {
      ++line;
      end_row();
    } else if (c == '\r') {
      continue;
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  if (quoted) throw Error(Status::parse, path + ":" + std::to_string(start_line) + ": unterminated quoted field");
  if (!field.empty() || !row.empty()) end_row();
  if (rows.empty()) throw Error(Status::parse, path + ": empty file (expected a header row)");
  const auto& header = rows[0];
  auto col = [&](const std::string& name) {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    throw Error(Status::parse, path + ":1: header has no column '" + name + "'");
  };
  size_t ti = col(text_column), li = col(label_column);
  std::vector<LabeledText> out;
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::string where = path + ":" + std::to_string(row_line[r]);
    if (rows[r].size() != header.size())
      throw Error(Status::parse, where + ": " + std::to_string(rows[r].size()) + " fields, header has " +
                                     std::to_string(header.size()));
    if (rows[r][li].empty()) throw Error(Status::parse, where + ": " + label_column + ": empty label");
    out.push_back({rows[r][ti], rows[r][li]});
  }
  return out;
}

// ---- experiment --------------------------------------------------------------------------------

namespace {

// FNV-1a from a seeded offset. The offset constant lacks a digit of FNV's (1469598103934665603
// vs 14695981039346656037); kept so that classifiers keep their seeded draws.
uint64_t seeded_fnv1a(const std::string& s, uint64_t seed) {
  return detail::fnv1a64(s, 1469598103934665603ull ^ seed);
}

struct Routing {
  double delta = -std::numeric_limits<double>::infinity();  // accept iff 1 - confidence <= delta
};

using TierPtr = std::shared_ptr<LocalClassifierTier>;

}  // namespace

ClassifierCoOptResult run_classifier_coopt(const std::vector<LabeledText>& train,
                                           const std::vector<LabeledText>& eval,
                                           const ClassifierCoOptConfig& c, std::shared_ptr<LocalClassifierTier> t1,
                                           ProgressCallback progress) {
  if (c.strategy != "targeted" && c.strategy != "random")
    throw Error(Status::invalid_argument, "coopt: strategy must be 'targeted' or 'random', got '" + c.strategy + "'");
  if (c.embedding != "tfidf" && c.embedding != "t1")
    throw Error(Status::invalid_argument, "coopt: embedding must be 'tfidf' or 't1', got '" + c.embedding + "'");
  if (!(c.teacher_error >= 0.0 && c.teacher_error < 1.0))
    throw Error(Status::invalid_argument, "coopt: teacher_error must be in [0, 1)");
  const size_t need = c.initial_train + c.calibration + c.traffic;
  if (train.size() < need + 1)
    throw Error(Status::invalid_argument, "coopt: " + std::to_string(train.size()) +
                                              " training rows; the split needs more than " + std::to_string(need));
  if (eval.empty()) throw Error(Status::invalid_argument, "coopt: no evaluation rows");
  auto t_start = std::chrono::steady_clock::now();
  auto report_progress = [&](const std::string& stage, size_t done, size_t total, const std::string& detail) {
    if (!progress) return;
    Progress p;
    p.stage = stage;
    p.done = done;
    p.total = total;
    p.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    p.detail = detail;
    if (!progress(p)) throw Error(Status::cancelled, "coopt: cancelled");
  };

  // Split (seeded shuffle).
  std::vector<size_t> order(train.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  coopt::Rng rng(c.seed ^ 0x73706c6974ull);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  std::vector<LabeledText> init, calib, traffic, rest;
  for (size_t k = 0; k < order.size(); ++k) {
    const auto& row = train[order[k]];
    if (k < c.initial_train) init.push_back(row);
    else if (k < c.initial_train + c.calibration) calib.push_back(row);
    else if (k < need) traffic.push_back(row);
    else rest.push_back(row);
  }

  // Teacher: the gold label, replaced with a different one with probability teacher_error
  // (decided per text by a seeded hash, so every strategy sees the same teacher).
  std::vector<std::string> label_set;
  {
    std::map<std::string, int> ls;
    for (auto& r : train) ls[r.label];
    for (auto& [l, n] : ls) label_set.push_back(l);
  }
  std::unordered_map<std::string, std::string> gold;
  for (auto& r : train) gold.emplace(r.text, r.label);
  for (auto& r : eval) gold.emplace(r.text, r.label);
  auto teacher_label = [&, L = label_set.size()](const std::string& text) -> std::string {
    auto it = gold.find(text);
    if (it == gold.end()) throw Error(Status::internal, "coopt: teacher asked about an unknown text");
    coopt::Rng r(seeded_fnv1a(text, c.seed ^ 0x7465616368ull));
    if (r.uniform() >= c.teacher_error || L < 2) return it->second;
    size_t gi = static_cast<size_t>(std::lower_bound(label_set.begin(), label_set.end(), it->second) - label_set.begin());
    return label_set[(gi + 1 + r.below(L - 1)) % L];
  };

  ClassifierCoOptResult res;
  {
    size_t ok = 0;
    for (auto& r : eval) ok += teacher_label(r.text) == r.label;
    res.teacher_accuracy = static_cast<double>(ok) / static_cast<double>(eval.size());
  }

  // T1.
  std::vector<std::string> init_x, init_y;
  for (auto& r : init) {
    init_x.push_back(r.text);
    init_y.push_back(r.label);
  }
  if (!t1) {
    report_progress("train-t1", 0, 1, std::to_string(init.size()) + " rows");
    LocalClassifierConfig lc = c.t1;
    lc.cost_per_query = c.t1_cost;
    t1 = LocalClassifierTier::train(init_x, init_y, lc, c.t1_train);
  }
  const TierPtr t1_initial = t1;
  if (!c.out_dir.empty()) {
    fs::create_directories(c.out_dir);
    t1->save((fs::path(c.out_dir) / "t1-initial").string());
  }

  std::vector<std::string> calib_x, eval_x, traffic_x;
  for (auto& r : calib) calib_x.push_back(r.text);
  for (auto& r : eval) eval_x.push_back(r.text);
  for (auto& r : traffic) traffic_x.push_back(r.text);

  auto recalibrate = [&](const TierPtr& tier, const Routing&) {
    auto pred = tier->predict(calib_x);
    std::vector<double> u;
    std::vector<uint8_t> bad;
    for (size_t i = 0; i < pred.size(); ++i) {
      u.push_back(1.0 - pred[i].confidence);
      bad.push_back(pred[i].text != calib[i].label);
    }
    LttOptions lo;
    lo.alpha = c.alpha;
    lo.epsilon = c.epsilon;
    lo.min_expected_accepted = std::min<double>(100.0, static_cast<double>(u.size()) / 10.0);
    CellFit fit = ltt_fit(u, bad, lo);
    return Routing{fit.certified ? fit.delta : -std::numeric_limits<double>::infinity()};
  };

  int evaluations = 0;
  auto evaluate = [&](const TierPtr& tier, const Routing& routing) {
    report_progress("evaluate", static_cast<size_t>(evaluations), static_cast<size_t>(c.loop.max_iterations + 1), "");
    ++evaluations;
    CoOptEvaluation ev;
    auto pred = tier->predict(eval_x);
    double cost = 0.0, quality = 0.0, t1_ok = 0.0;
    size_t accepted = 0;
    for (size_t i = 0; i < pred.size(); ++i) {
      bool acc = 1.0 - pred[i].confidence <= routing.delta;
      std::string answer = acc ? pred[i].text : teacher_label(eval_x[i]);
      cost += c.t1_cost + (acc ? 0.0 : c.teacher_cost);
      quality += answer == eval[i].label;
      t1_ok += pred[i].text == eval[i].label;
      accepted += acc;
    }
    const double n = static_cast<double>(pred.size());
    ev.metrics.cost = cost / n;
    ev.metrics.quality = quality / n;
    ev.metrics.t1_acceptance = static_cast<double>(accepted) / n;
    ev.metrics.cost_ratio = ev.metrics.cost / c.teacher_cost;
    res.thresholds.push_back(routing.delta);
    res.t1_accuracy.push_back(t1_ok / n);
    // Traffic served by the cascade: its escalations are the failures to analyse. Accepted
    // answers carry no quality label (no audit in this experiment).
    auto tp = tier->predict(traffic_x);
    for (size_t i = 0; i < tp.size(); ++i) {
      TraceRecord r;
      r.query_id = "traffic-" + std::to_string(i);
      r.query = traffic_x[i];
      r.task = "intent";
      r.tier = 0;
      r.tier_name = tier->name();
      r.accepted = 1.0 - tp[i].confidence <= routing.delta;
      r.tier_cost = c.t1_cost;
      r.total_cost = c.t1_cost + (r.accepted ? 0.0 : c.teacher_cost);
      r.final_tier = r.accepted ? 0 : 1;
      r.final_tier_name = r.accepted ? tier->name() : "teacher";
      r.final_response = r.accepted ? tp[i].text : teacher_label(traffic_x[i]);
      ev.trace.push_back(std::move(r));
    }
    return ev;
  };

  // Embedding for the analysis and the pool: TF-IDF (fitted on all training texts) or the
  // initial T1's encoder (a fixed space across iterations).
  EmbedFunction embed;
  std::string embed_name;
  if (c.embedding == "t1") {
    embed = [t1_initial](const std::vector<std::string>& texts) { return t1_initial->embed(texts); };
    embed_name = "t1-encoder";
  } else {
    std::vector<std::string> corpus;
    for (auto& r : train) corpus.push_back(r.text);
    TfidfEmbedder tf(TfidfEmbedder::Options{c.tfidf_features, 2, true});
    tf.fit(corpus);
    embed = tf.as_function();
    embed_name = "tfidf";
  }

  std::vector<PoolItem> pool;
  for (size_t i = 0; i < traffic.size(); ++i) pool.push_back({"traffic-" + std::to_string(i), traffic[i].text, "intent"});
  for (size_t i = 0; i < rest.size(); ++i) pool.push_back({"pool-" + std::to_string(i), rest[i].text, "intent"});
  DistillOptions dopt;
  dopt.budget = c.budget;
  dopt.top_clusters = c.top_clusters;
  dopt.seed = c.seed;
  auto teacher_fn = [&](const std::string& q, const std::string&) -> std::optional<std::string> {
    return teacher_label(q);
  };
  auto gen = std::make_shared<DistillationDataGenerator>(pool, embed, teacher_fn, dopt);
  FailureAnalyzerOptions fo;
  fo.k_min = c.k_min;
  fo.k_max = c.k_max;
  fo.seed = c.seed;
  fo.restarts = c.restarts;
  FailureAnalyzer analyzer(embed, embed_name, fo);

  if (!c.out_dir.empty()) fs::create_directories(c.out_dir);
  auto out_path = [&](const std::string& name) { return (fs::path(c.out_dir) / name).string(); };

  // Each tier's cumulative fine-tuning set (initial rows + every example distilled into it).
  std::map<const LocalClassifierTier*, std::pair<std::vector<std::string>, std::vector<std::string>>> train_sets;
  train_sets[t1.get()] = {init_x, init_y};

  CoOptLoop<TierPtr, Routing>::Steps steps;
  steps.evaluate = evaluate;
  steps.analyse = [&](const std::vector<TraceRecord>& trace) {
    FailureReport rep = analyzer.analyze(trace);
    if (!c.out_dir.empty()) rep.save(out_path("failures_iter" + std::to_string(evaluations) + ".json"));
    return rep;
  };
  steps.select = [&](const FailureReport& rep, int it) {
    report_progress("select", static_cast<size_t>(it), static_cast<size_t>(c.loop.max_iterations), c.strategy);
    DistillSelection sel = c.strategy == "targeted" ? gen->targeted(rep, static_cast<uint64_t>(it))
                                                    : gen->random(static_cast<uint64_t>(it));
    res.teacher_calls_distill += sel.teacher_calls;
    if (!c.out_dir.empty()) sel.save_jsonl(out_path("distill_iter" + std::to_string(it) + ".jsonl"));
    return sel.examples;
  };
  steps.distill = [&](const TierPtr& tier, const std::vector<DistillExample>& ex) {
    auto set = train_sets.at(tier.get());
    for (auto& e : ex) {
      set.first.push_back(e.query);
      set.second.push_back(e.target);
    }
    report_progress("distill", 0, 1, std::to_string(set.first.size()) + " rows");
    TierPtr next = tier->fine_tune(set.first, set.second, c.distill_train);
    train_sets[next.get()] = std::move(set);
    return next;
  };
  steps.recalibrate = recalibrate;

  CoOptOptions lo = c.loop;
  if (lo.log_path.empty() && !c.out_dir.empty()) lo.log_path = out_path("coopt_log.jsonl");
  CoOptLoop<TierPtr, Routing> loop(steps, lo);
  Routing r0 = recalibrate(t1, Routing{});
  auto out = loop.run(t1, r0);
  res.log = out.log;
  res.stop_reason = out.stop_reason;
  res.t1 = out.tier;
  if (!c.out_dir.empty())
    detail::write_file_atomic(out_path("summary.json"), classifier_coopt_json(res, c) + "\n");
  return res;
}

std::string classifier_coopt_json(const ClassifierCoOptResult& r, const ClassifierCoOptConfig& c) {
  using nlohmann::json;
  json it = json::array();
  for (size_t i = 0; i < r.log.size(); ++i) {
    const auto& l = r.log[i];
    json o = {{"iteration", l.iteration},     {"status", l.status},
              {"cost_per_query", l.metrics.cost}, {"cost_ratio", l.metrics.cost_ratio},
              {"quality", l.metrics.quality},  {"t1_acceptance", l.metrics.t1_acceptance},
              {"gain", l.gain},                {"failures", l.failures},
              {"clusters", l.clusters},        {"examples", l.examples},
              {"seconds", l.seconds}};
    if (!l.error.empty()) o["error"] = l.error;
    it.push_back(o);
  }
  json thr = json::array();
  for (double d : r.thresholds) thr.push_back(std::isfinite(d) ? json(d) : json(nullptr));
  json j = {{"strategy", c.strategy},
            {"budget_per_iteration", c.budget},
            {"embedding", c.embedding},
            {"alpha", c.alpha},
            {"epsilon", c.epsilon},
            {"teacher_error", c.teacher_error},
            {"teacher_accuracy_measured", r.teacher_accuracy},
            {"t1_cost_usd", c.t1_cost},
            {"teacher_cost_usd", c.teacher_cost},
            {"split", {{"initial_train", c.initial_train}, {"calibration", c.calibration}, {"traffic", c.traffic}}},
            {"seed", c.seed},
            {"stop_reason", r.stop_reason},
            {"teacher_calls_distill", r.teacher_calls_distill},
            {"thresholds_u", thr},
            {"t1_accuracy", r.t1_accuracy},
            {"iterations", it}};
  return j.dump(2);
}

}  // namespace routenlp
