// DistillationDataGenerator: targeted (failure clusters + pool neighbours) and random selection,
// JSON Lines I/O, and the co-optimization loop's log.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "common/atomic_file.hpp"
#include "common/json_int.hpp"
#include "common/text_io.hpp"
#include "coopt/rng.hpp"
#include "routenlp/coopt/coopt.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

using nlohmann::json;

DistillationDataGenerator::DistillationDataGenerator(std::vector<PoolItem> pool, EmbedFunction embed,
                                                     TeacherFunction teacher, DistillOptions options)
    : pool_(std::move(pool)), embed_(std::move(embed)), teacher_(std::move(teacher)), options_(options) {
  if (!teacher_) throw Error(Status::invalid_argument, "DistillationDataGenerator: no teacher function");
  if (options_.member_share < 0.0 || options_.member_share > 1.0 || !std::isfinite(options_.member_share))
    throw Error(Status::invalid_argument, "DistillationDataGenerator: member_share must be in [0, 1]");
  used_.assign(pool_.size(), false);
  for (size_t i = 0; i < pool_.size(); ++i) pool_index_.emplace(pool_[i].id, i);
}

void DistillationDataGenerator::reset_used() { used_.assign(pool_.size(), false); }

Embeddings DistillationDataGenerator::embed_texts(const std::vector<std::string>& texts) {
  if (texts.empty()) return {};
  Embeddings e = embed_ ? embed_(texts) : tfidf_fn_(texts);
  if (e.size() != texts.size())
    throw Error(Status::callback, "DistillationDataGenerator: embedding function returned " +
                                      std::to_string(e.size()) + " rows for " +
                                      std::to_string(texts.size()) + " texts");
  return e;
}

void DistillationDataGenerator::ensure_pool_embedded(const std::vector<std::string>& extra) {
  if (!embed_ && !tfidf_) {
    std::vector<std::string> corpus;
    for (auto& p : pool_) corpus.push_back(p.query);
    corpus.insert(corpus.end(), extra.begin(), extra.end());
    TfidfEmbedder t;
    t.fit(corpus);
    tfidf_fn_ = t.as_function();
    tfidf_ = true;
  }
  if (pool_emb_.size() != pool_.size()) {
    std::vector<std::string> texts;
    for (auto& p : pool_) texts.push_back(p.query);
    pool_emb_ = embed_texts(texts);
  }
}

namespace {

Eigen::MatrixXd rows_to_matrix(const Embeddings& e, size_t dim) {
  Eigen::MatrixXd M(static_cast<Eigen::Index>(e.size()), static_cast<Eigen::Index>(dim));
  for (size_t i = 0; i < e.size(); ++i) {
    if (e[i].size() != dim)
      throw Error(Status::callback, "DistillationDataGenerator: embedding row " + std::to_string(i) +
                                        " has dimension " + std::to_string(e[i].size()) +
                                        ", expected " + std::to_string(dim));
    for (size_t j = 0; j < dim; ++j) M(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = e[i][j];
  }
  return M;
}

// Largest-remainder split of `total` in proportion to weights.
std::vector<size_t> apportion(size_t total, const std::vector<double>& w) {
  std::vector<size_t> out(w.size(), 0);
  double sum = std::accumulate(w.begin(), w.end(), 0.0);
  if (w.empty() || sum <= 0.0) return out;
  std::vector<std::pair<double, size_t>> rem;
  size_t given = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    double exact = static_cast<double>(total) * w[i] / sum;
    out[i] = static_cast<size_t>(std::floor(exact));
    given += out[i];
    rem.emplace_back(exact - std::floor(exact), i);
  }
  std::stable_sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t r = 0; given < total && r < rem.size(); ++r, ++given) ++out[rem[r].second];
  return out;
}

}  // namespace

DistillSelection DistillationDataGenerator::targeted(const FailureReport& report, uint64_t salt) {
  DistillSelection sel;
  sel.strategy = "targeted";
  if (report.clusters.empty() || options_.budget == 0) return sel;
  std::vector<std::string> ftexts;
  for (auto& f : report.failures) ftexts.push_back(f.query);
  ensure_pool_embedded(ftexts);
  Embeddings femb = embed_texts(ftexts);
  const size_t dim = femb.empty() ? 0 : femb[0].size();
  Eigen::MatrixXd F = rows_to_matrix(femb, dim);
  Eigen::MatrixXd P = pool_emb_.empty() ? Eigen::MatrixXd(0, static_cast<Eigen::Index>(dim))
                                        : rows_to_matrix(pool_emb_, dim);
  Eigen::VectorXd pn = P.rowwise().squaredNorm();

  const size_t nc = std::min(options_.top_clusters, report.clusters.size());
  std::vector<double> w;
  bool any_cost = false;
  for (size_t c = 0; c < nc; ++c) any_cost |= report.clusters[c].cost_impact > 0.0;
  for (size_t c = 0; c < nc; ++c)
    w.push_back(any_cost ? report.clusters[c].cost_impact : static_cast<double>(report.clusters[c].size));
  std::vector<size_t> quota = apportion(options_.budget, w);
  (void)salt;  // targeted selection is deterministic given the report and the pool
  std::vector<bool> taken_member(report.failures.size(), false);

  for (size_t c = 0; c < nc; ++c) {
    const auto& cl = report.clusters[c];
    if (quota[c] == 0 || cl.members.empty()) continue;
    // Centroid in the generator's embedding space.
    Eigen::RowVectorXd cen = Eigen::RowVectorXd::Zero(static_cast<Eigen::Index>(dim));
    for (size_t m : cl.members) cen += F.row(static_cast<Eigen::Index>(m));
    cen /= static_cast<double>(cl.members.size());
    std::vector<size_t> members = cl.members;
    std::vector<double> md(report.failures.size(), 0.0);
    for (size_t m : members) md[m] = (F.row(static_cast<Eigen::Index>(m)) - cen).squaredNorm();
    std::stable_sort(members.begin(), members.end(), [&](size_t a, size_t b) { return md[a] < md[b]; });
    size_t want_members = static_cast<size_t>(std::floor(options_.member_share * static_cast<double>(quota[c])));
    size_t got = 0;
    for (size_t m : members) {
      if (got >= want_members) break;
      if (taken_member[m]) continue;
      const auto& f = report.failures[m];
      std::optional<std::string> target;
      if (f.final_tier > f.tier && !f.final_response.empty() && f.final_acceptable.value_or(true)) {
        target = f.final_response;
      } else {
        ++sel.teacher_calls;
        target = teacher_(f.query, f.task);
      }
      if (!target) continue;
      taken_member[m] = true;
      if (auto pi = pool_index_.find(f.query_id); pi != pool_index_.end()) used_[pi->second] = true;
      sel.examples.push_back({f.query_id, f.query, f.task, *target, "member", cl.id});
      ++got;
    }
    // Neighbours: round-robin over members (closest to the centroid first), each member's next
    // nearest unused pool item.
    if (P.rows() == 0) continue;
    const size_t per_member = std::max<size_t>(8, (quota[c] - got) / members.size() + 4);
    std::vector<std::vector<size_t>> nn(members.size());
    for (size_t mi = 0; mi < members.size(); ++mi) {
      Eigen::RowVectorXd x = F.row(static_cast<Eigen::Index>(members[mi]));
      Eigen::VectorXd d = pn - 2.0 * (P * x.transpose());
      std::vector<size_t> idx(static_cast<size_t>(P.rows()));
      std::iota(idx.begin(), idx.end(), 0);
      size_t take = std::min(idx.size(), per_member);
      std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(take), idx.end(),
                        [&](size_t a, size_t b) {
                          double da = d(static_cast<Eigen::Index>(a)), db = d(static_cast<Eigen::Index>(b));
                          return da < db || (da == db && a < b);
                        });
      idx.resize(take);
      nn[mi] = std::move(idx);
    }
    std::vector<size_t> pos(members.size(), 0);
    bool progress = true;
    while (got < quota[c] && progress) {
      progress = false;
      for (size_t mi = 0; mi < members.size() && got < quota[c]; ++mi) {
        while (pos[mi] < nn[mi].size()) {
          size_t p = nn[mi][pos[mi]++];
          if (used_[p]) continue;
          used_[p] = true;
          progress = true;
          ++sel.teacher_calls;
          auto target = teacher_(pool_[p].query, pool_[p].task);
          if (!target) break;
          sel.examples.push_back({pool_[p].id, pool_[p].query, pool_[p].task, *target, "neighbour", cl.id});
          ++got;
          break;
        }
      }
    }
    // Lists exhausted (tiny pool neighbourhoods): fill with the pool items nearest the centroid.
    if (got < quota[c]) {
      Eigen::VectorXd d = pn - 2.0 * (P * cen.transpose());
      std::vector<size_t> idx(static_cast<size_t>(P.rows()));
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
        return d(static_cast<Eigen::Index>(a)) < d(static_cast<Eigen::Index>(b));
      });
      for (size_t p : idx) {
        if (got >= quota[c]) break;
        if (used_[p]) continue;
        used_[p] = true;
        ++sel.teacher_calls;
        auto target = teacher_(pool_[p].query, pool_[p].task);
        if (!target) continue;
        sel.examples.push_back({pool_[p].id, pool_[p].query, pool_[p].task, *target, "neighbour", cl.id});
        ++got;
      }
    }
  }
  return sel;
}

DistillSelection DistillationDataGenerator::random(uint64_t salt) {
  DistillSelection sel;
  sel.strategy = "random";
  std::vector<size_t> avail;
  for (size_t i = 0; i < pool_.size(); ++i)
    if (!used_[i]) avail.push_back(i);
  coopt::Rng rng(options_.seed ^ (salt * 0xD1B54A32D192ED03ull) ^ 0x72616e646f6dull);
  size_t i = 0;
  while (sel.examples.size() < options_.budget && i < avail.size()) {
    std::swap(avail[i], avail[i + rng.below(avail.size() - i)]);
    size_t p = avail[i++];
    used_[p] = true;
    ++sel.teacher_calls;
    auto target = teacher_(pool_[p].query, pool_[p].task);
    if (!target) continue;
    sel.examples.push_back({pool_[p].id, pool_[p].query, pool_[p].task, *target, "random", -1});
  }
  return sel;
}

void DistillSelection::save_jsonl(const std::string& path) const {
  detail::AtomicFileWriter w(path);
  for (const auto& e : examples) {
    json j = {{"id", e.id},         {"query", e.query},   {"task", e.task},
              {"target", e.target}, {"source", e.source}, {"cluster", e.cluster},
              {"strategy", strategy}};
    w.stream() << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  }
  w.commit();
}

std::vector<DistillExample> load_distill_jsonl(const std::string& path) {
  detail::LineReader in(path);
  std::vector<DistillExample> out;
  std::string line;
  while (in.next(line)) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(in.line_number());
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw Error(Status::parse, where + ": invalid JSON: " + e.what());
    }
    if (!j.is_object()) throw Error(Status::parse, where + ": expected a JSON object");
    auto str = [&](const char* key, bool required) -> std::string {
      auto it = j.find(key);
      if (it == j.end()) {
        if (required) throw Error(Status::parse, where + ": " + key + ": missing");
        return "";
      }
      if (!it->is_string()) throw Error(Status::parse, where + ": " + key + ": expected a string");
      return it->get<std::string>();
    };
    DistillExample e;
    e.id = str("id", false);
    e.query = str("query", true);
    e.task = str("task", false);
    e.target = str("target", true);
    e.source = str("source", false);
    if (auto it = j.find("cluster"); it != j.end()) {
      e.cluster = detail::json_int<int>(*it, where, "cluster");
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string coopt_log_jsonl(const std::vector<CoOptIteration>& log) {
  std::ostringstream os;
  for (const auto& r : log) {
    json j = {{"iteration", r.iteration},
              {"status", r.status},
              {"cost", r.metrics.cost},
              {"quality", r.metrics.quality},
              {"t1_acceptance", r.metrics.t1_acceptance},
              {"cost_ratio", r.metrics.cost_ratio},
              {"gain", r.gain},
              {"failures", r.failures},
              {"clusters", r.clusters},
              {"examples", r.examples},
              {"seconds", r.seconds}};
    if (!r.error.empty()) j["error"] = r.error;
    os << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  }
  return os.str();
}

void save_coopt_log(const std::vector<CoOptIteration>& log, const std::string& path) {
  detail::write_file_atomic(path, coopt_log_jsonl(log));
}

}  // namespace routenlp
