// FailureAnalyzer: collect cheaper-tier failures, embed, cluster (k by silhouette), rank by cost
// impact and describe each cluster; JSON report.
#include "routenlp/coopt/failure_analyzer.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/atomic_file.hpp"
#include "routenlp/encoder/encoder.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

EmbedFunction make_encoder_embed_function(std::shared_ptr<const Encoder> encoder, size_t max_length) {
  if (!encoder) throw Error(Status::invalid_argument, "make_encoder_embed_function: no encoder");
  return [encoder, max_length](const std::vector<std::string>& texts) {
    Embeddings out;
    if (texts.empty()) return out;
    std::vector<float> flat = encoder->embed(texts, max_length);
    const size_t d = static_cast<size_t>(encoder->dim());
    if (flat.size() != texts.size() * d)
      throw Error(Status::internal, "make_encoder_embed_function: unexpected embedding size");
    for (size_t i = 0; i < texts.size(); ++i)
      out.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(i * d),
                       flat.begin() + static_cast<std::ptrdiff_t>((i + 1) * d));
    return out;
  };
}

bool is_failure(const TraceRecord& r) {
  if (!r.accepted) return true;
  return r.acceptable.has_value() && !*r.acceptable;
}

namespace {

double sqdist(const std::vector<float>& a, const std::vector<double>& c) {
  double s = 0.0;
  for (size_t j = 0; j < a.size(); ++j) {
    double d = a[j] - c[j];
    s += d * d;
  }
  return s;
}

}  // namespace

FailureAnalyzer::FailureAnalyzer(EmbedFunction embed, std::string embedding_name,
                                 FailureAnalyzerOptions options)
    : embed_(std::move(embed)), embedding_name_(std::move(embedding_name)), options_(options) {
  if (options_.k_min < 1 || options_.k_max < options_.k_min)
    throw Error(Status::invalid_argument, "FailureAnalyzer: bad k range [" +
                                              std::to_string(options_.k_min) + ", " +
                                              std::to_string(options_.k_max) + "]");
  if (embedding_name_.empty()) embedding_name_ = embed_ ? "custom" : "tfidf";
}

FailureReport FailureAnalyzer::analyze_log(const std::string& path, const Dataset& queries,
                                           const PortfolioConfig* portfolio) const {
  return analyze(trace_from_decision_log(path, queries, portfolio));
}

FailureReport FailureAnalyzer::analyze(const std::vector<TraceRecord>& records) const {
  FailureReport rep;
  rep.records = records.size();
  rep.seed = options_.seed;
  rep.embedding = embedding_name_;
  std::vector<size_t> fidx;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (options_.tier && r.tier != *options_.tier) continue;
    if (is_failure(r)) fidx.push_back(i);
  }
  rep.failures_total = fidx.size();
  if (fidx.empty()) return rep;
  for (size_t i : fidx) rep.failures.push_back(records[i]);
  std::vector<std::string> texts;
  for (auto& f : rep.failures) texts.push_back(f.query);

  // Term statistics over every record's query (members vs the rest).
  std::vector<std::string> all_texts;
  for (auto& r : records) all_texts.push_back(r.query);
  TfidfEmbedder terms_model(TfidfEmbedder::Options{4096, 1, true});
  bool have_terms = false;
  try {
    terms_model.fit(all_texts);
    have_terms = !terms_model.vocabulary().empty();
  } catch (const Error&) {
    have_terms = false;  // no word in any query: no terms
  }

  if (embed_) {
    rep.embeddings = embed_(texts);
    if (rep.embeddings.size() != texts.size())
      throw Error(Status::callback, "FailureAnalyzer: embedding function returned " +
                                        std::to_string(rep.embeddings.size()) + " rows for " +
                                        std::to_string(texts.size()) + " texts");
  } else {
    TfidfEmbedder e(TfidfEmbedder::Options{4096, 1, true});
    try {
      e.fit(texts);
      rep.embeddings = e.transform(texts);
    } catch (const Error&) {
      rep.embeddings.assign(texts.size(), std::vector<float>(1, 0.0f));
    }
  }

  KMeansOptions ko;
  ko.restarts = options_.restarts;
  ko.seed = options_.seed;
  KMeansResult km;
  if (rep.failures.size() < std::max<size_t>(options_.min_failures, 3)) {
    ko.k = 1;
    km = kmeans(rep.embeddings, ko);
  } else {
    KSelection sel = select_k(rep.embeddings, options_.k_min, options_.k_max, ko);
    km = std::move(sel.best);
    rep.ks = sel.ks;
    rep.silhouettes = sel.silhouettes;
  }
  const int k = static_cast<int>(km.centroids.size());

  // Per-cluster statistics.
  std::vector<ClusterSummary> cl(static_cast<size_t>(k));
  for (int c = 0; c < k; ++c) {
    cl[static_cast<size_t>(c)].id = c;
    cl[static_cast<size_t>(c)].centroid = km.centroids[static_cast<size_t>(c)];
  }
  for (size_t i = 0; i < rep.failures.size(); ++i) {
    auto& s = cl[static_cast<size_t>(km.labels[i])];
    const auto& f = rep.failures[i];
    s.members.push_back(i);
    ++s.size;
    if (!f.accepted) ++s.escalated; else ++s.accepted_bad;
    s.cost_impact += std::max(0.0, f.total_cost - f.tier_cost);
  }
  // Rank: cost impact, then size, then original id; empty clusters dropped.
  std::vector<int> order;
  for (int c = 0; c < k; ++c)
    if (cl[static_cast<size_t>(c)].size > 0) order.push_back(c);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const auto& x = cl[static_cast<size_t>(a)];
    const auto& y = cl[static_cast<size_t>(b)];
    if (x.cost_impact != y.cost_impact) return x.cost_impact > y.cost_impact;
    return x.size > y.size;
  });
  std::vector<int> rank(static_cast<size_t>(k), -1);
  for (size_t r = 0; r < order.size(); ++r) rank[static_cast<size_t>(order[r])] = static_cast<int>(r);
  rep.labels.resize(rep.failures.size());
  for (size_t i = 0; i < rep.failures.size(); ++i) rep.labels[i] = rank[static_cast<size_t>(km.labels[i])];

  // Term vectors of every record (for distinguishing terms).
  Embeddings tv;
  std::vector<double> total_sum;
  if (have_terms) {
    tv = terms_model.transform(all_texts);
    total_sum.assign(terms_model.vocabulary().size(), 0.0);
    for (auto& row : tv)
      for (size_t j = 0; j < row.size(); ++j) total_sum[j] += row[j];
  }

  for (size_t r = 0; r < order.size(); ++r) {
    ClusterSummary s = std::move(cl[static_cast<size_t>(order[r])]);
    s.id = static_cast<int>(r);
    std::map<std::string, size_t> tasks;
    for (size_t m : s.members) ++tasks[rep.failures[m].task];
    s.task_mix.assign(tasks.begin(), tasks.end());
    std::stable_sort(s.task_mix.begin(), s.task_mix.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    // Examples: members closest to the centroid.
    std::vector<size_t> by_dist = s.members;
    std::stable_sort(by_dist.begin(), by_dist.end(), [&](size_t a, size_t b) {
      return sqdist(rep.embeddings[a], s.centroid) < sqdist(rep.embeddings[b], s.centroid);
    });
    for (size_t e = 0; e < by_dist.size() && e < options_.examples; ++e)
      s.examples.push_back(rep.failures[by_dist[e]].query);
    // Distinguishing terms: mean TF-IDF among members minus among all other records.
    if (have_terms) {
      const size_t V = total_sum.size();
      std::vector<double> in(V, 0.0);
      for (size_t m : s.members) {
        size_t rec = fidx[m];
        for (size_t j = 0; j < V; ++j) in[j] += tv[rec][j];
      }
      const double nin = static_cast<double>(s.members.size());
      const double nout = static_cast<double>(records.size()) - nin;
      std::vector<std::pair<std::string, double>> sc;
      for (size_t j = 0; j < V; ++j) {
        double mi = in[j] / nin;
        double mo = nout > 0 ? (total_sum[j] - in[j]) / nout : 0.0;
        double d = mi - mo;
        if (d > 0) sc.emplace_back(terms_model.vocabulary()[j], d);
      }
      std::stable_sort(sc.begin(), sc.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      if (sc.size() > options_.top_terms) sc.resize(options_.top_terms);
      s.terms = std::move(sc);
    }
    rep.clusters.push_back(std::move(s));
  }
  return rep;
}

std::string FailureReport::to_json(int indent) const {
  using nlohmann::json;
  json j;
  j["records"] = records;
  j["failures"] = failures_total;
  j["embedding"] = embedding;
  j["seed"] = seed;
  j["k_candidates"] = ks;
  j["silhouettes"] = silhouettes;
  j["k"] = clusters.size();
  json cls = json::array();
  for (const auto& c : clusters) {
    json o;
    o["id"] = c.id;
    o["size"] = c.size;
    o["escalated"] = c.escalated;
    o["accepted_bad"] = c.accepted_bad;
    o["cost_impact_usd"] = c.cost_impact;
    json tm = json::object();
    for (auto& [t, n] : c.task_mix) tm[t] = n;
    o["task_mix"] = tm;
    json terms = json::array();
    for (auto& [t, s] : c.terms) terms.push_back({{"term", t}, {"score", s}});
    o["terms"] = terms;
    o["examples"] = c.examples;
    json ids = json::array();
    for (size_t m : c.members) ids.push_back(failures[m].query_id);
    o["member_ids"] = ids;
    cls.push_back(o);
  }
  j["clusters"] = cls;
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

void FailureReport::save(const std::string& path) const {
  detail::write_file_atomic(path, to_json() + "\n");
}

}  // namespace routenlp
